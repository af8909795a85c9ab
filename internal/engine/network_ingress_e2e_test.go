package engine_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/render"
)

// TestE2EWorkerSecurityGroupIngressDrift: the worker security group is
// egress only (docs/design.md). An inbound rule added by hand shows in the plan
// as exactly one change, the apply revokes it, and the next plan has no
// change; reading ingress costs no call beyond the DescribeSecurityGroups
// the group's Read already makes.
func TestE2EWorkerSecurityGroupIngressDrift(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		perms  []ec2types.IpPermission
		before string
		shown  string // a rule of before as the plan text shows it
	}{
		{name: "ssh from a CIDR", perms: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}}}},
			before: `["tcp:22-22:203.0.113.0/24"]`, shown: "tcp 22 from 203.0.113.0/24"},
		{name: "two rules", perms: []ec2types.IpPermission{
			{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(4200), ToPort: aws.Int32(4200), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
			{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.20.0.0/16")}}}},
			before: `["-1:0-0:10.20.0.0/16","tcp:4200-4200:0.0.0.0/0"]`, shown: "tcp 4200 from 0.0.0.0/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newNetE2E(t)
			env := x.env("net", "none", "2")
			x.apply(env)
			base := x.plan(env)
			x.wantNone("plan right after apply has changes", netChanges(base.Plan))

			c := ec2.NewFromConfig(x.w.Config())
			ctx := context.Background()
			groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
				{Name: aws.String("group-name"), Values: []string{"deploybot-net-worker"}}}})
			if err != nil || len(groups.SecurityGroups) != 1 {
				t.Fatalf("worker group: %v %v", groups, err)
			}
			id := groups.SecurityGroups[0].GroupId
			if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: id, IpPermissions: tc.perms}); err != nil {
				t.Fatal(err)
			}

			x.resetCalls()
			p := x.plan(env)
			sgReads := 0
			for _, call := range x.w.Calls() {
				if call.Operation == "DescribeSecurityGroups" {
					sgReads++
				}
			}
			if sgReads != 1 {
				t.Errorf("the plan described security groups %d times, want 1", sgReads)
			}
			if d := cmp.Diff([]string{"~ security_group.worker"}, netChanges(p.Plan)); d != "" {
				t.Fatalf("plan after adding an inbound rule (-want +got):\n%s", d)
			}
			ch := netChange(p.Plan, "security_group.worker")
			want := []plan.FieldChange{{Path: "ingress", Before: tc.before, After: "[]"}}
			if d := cmp.Diff(want, ch.Fields); d != "" {
				t.Errorf("security_group.worker fields (-want +got):\n%s", d)
			}
			var text bytes.Buffer
			if err := render.Text(&text, p.Plan, render.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			// The rule as a reviewer reads it (render shows rules, not their encoding).
			for _, line := range []string{"~ security_group.worker (deploybot-net-worker)\n", "~ ingress", tc.shown, "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."} {
				if !strings.Contains(text.String(), line) {
					t.Errorf("the plan text lacks %q:\n%s", line, text.String())
				}
			}

			x.resetCalls()
			x.apply(env)
			var writes []string
			for _, call := range x.w.Calls() {
				if call.Write {
					writes = append(writes, call.Operation+" "+call.ErrCode)
				}
			}
			if d := cmp.Diff([]string{"RevokeSecurityGroupIngress "}, writes); d != "" {
				t.Errorf("writes of the apply (-want +got):\n%s", d)
			}
			after, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(id)}})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(after.SecurityGroups[0].IpPermissions); n != 0 {
				t.Errorf("%d inbound rules left after the apply: %+v", n, after.SecurityGroups[0].IpPermissions)
			}
			x.wantNone("plan after the revoke has changes", netChanges(x.plan(env).Plan))
		})
	}
}
