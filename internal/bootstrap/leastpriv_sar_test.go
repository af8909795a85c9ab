package bootstrap_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/bootstrap"
)

// The simulated account enforces dependent actions from its own table,
// transcribed from AWS's documentation (internal/awssim/dependent.go), and
// bootstrap grants them from another (internal/bootstrap/policy.go). When
// one table served both, a wrong entry was enforced exactly as it was
// granted and the least-privilege proof passed. These tests corrupt
// bootstrap's table and watch the proof fail, naming the permission.

// newLPWorldWith is newLPWorld with bootstrap's dependent-action table
// replaced by table.
func newLPWorldWith(t *testing.T, managed bool, table map[string][]string) *lpWorld {
	t.Helper()
	x := newLPWorld(t, managed)
	res, err := bootstrap.Build(x.env("512"), bootstrap.WithDependentActions(bootstrap.Options{Repo: "acme/infra"}, table))
	if err != nil {
		t.Fatal(err)
	}
	x.planDoc, x.appDoc = res.PlanRole.Policy, res.ApplyRole.Policy
	return x
}

func TestLeastPrivilegeProofCatchesAWrongDependentAction(t *testing.T) {
	t.Parallel()
	const namespace = "servicediscovery:CreatePrivateDnsNamespace"
	tests := []struct {
		name    string
		corrupt func(table map[string][]string)
		want    string // the permission the proof reports missing
	}{
		{"an entry removed", func(m map[string][]string) { delete(m, namespace) }, "route53:CreateHostedZone"},
		{"an action left out of an entry", func(m map[string][]string) { m[namespace] = dropAction(m[namespace], "ec2:DescribeRegions") }, "ec2:DescribeRegions"},
		{"a misspelt action", func(m map[string][]string) {
			m[namespace] = replaceAction(m[namespace], "route53:ListHostedZonesByName", "route53:ListHostedZoneByName")
		}, "route53:ListHostedZonesByName"},
		{"an entry under the wrong action", func(m map[string][]string) {
			m["application-autoscaling:PutScalingPolicies"] = m["application-autoscaling:PutScalingPolicy"]
			delete(m, "application-autoscaling:PutScalingPolicy")
		}, "cloudwatch:PutMetricAlarm"},
		{"the target service's permissions left out", func(m map[string][]string) {
			delete(m, "application-autoscaling:RegisterScalableTarget")
		}, "ecs:DescribeServices"},
	}
	for _, tc := range tests {
		for _, managed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/managed=%v", tc.name, managed), func(t *testing.T) {
				t.Parallel()
				table := bootstrap.DependentActions()
				tc.corrupt(table)
				x := newLPWorldWith(t, managed, table)
				err := x.lifecycle(x.planDoc, x.appDoc)
				if err == nil {
					t.Fatal("the lifecycle succeeded with a corrupted dependent-action table: the proof cannot catch it")
				}
				if !awserr.IsAccessDenied(err) && !strings.Contains(err.Error(), "not authorized") {
					t.Fatalf("failed, but not for lack of permission: %v", err)
				}
				if !strings.Contains(err.Error(), "perform: "+tc.want+" ") {
					t.Errorf("the failure does not name %s: %v", tc.want, err)
				}
			})
		}
	}
	// The uncorrupted table passes (TestLifecycleWithBootstrapPolicies
	// proves it in full); here only that the same helper builds it.
	x := newLPWorldWith(t, true, bootstrap.DependentActions())
	if err := x.lifecycle(x.planDoc, x.appDoc); err != nil {
		t.Fatalf("bootstrap's own table: %v", err)
	}
}

func dropAction(xs []string, x string) []string {
	var out []string
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}

func replaceAction(xs []string, old, new string) []string {
	out := append([]string(nil), xs...)
	for i, y := range out {
		if y == old {
			out[i] = new
		}
	}
	return out
}
