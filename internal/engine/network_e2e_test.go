package engine_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/plan"
)

// End-to-end tests of managed-network environments (issue 3): empty account
// → apply → no-change plan → update → destroy → nothing tagged left, for
// nat none, single and per-az, on the simulated account.

var netE2EKey = fakekey.Prefect("NetE2E")

var netEnvYAML = envYAMLHead + `network:
  mode: managed
  cidr: 10.20.0.0/16
  availability_zones: AZS
  nat: NAT
tags:
  team: data-platform
`

// netE2E is an empty account for managed-network environments (netEnvYAML).
type netE2E struct{ *account }

func newNetE2E(t *testing.T, opts ...awssim.Option) *netE2E {
	return &netE2E{newAccount(t, newTestClock(), netE2EKey, opts...)}
}

// env loads a managed-network environment file named name with the given
// nat and zone count, with edits applied as "old" → "new" replacements.
func (x *account) managedEnv(name, nat, azs string, edits ...string) *config.Environment {
	x.tb.Helper()
	return x.load(name, strings.NewReplacer("NAME", name, "NAT", nat, "AZS", azs).Replace(netEnvYAML), edits...)
}

func (x *netE2E) env(name, nat string, azs string, edits ...string) *config.Environment {
	x.tb.Helper()
	return x.managedEnv(name, nat, azs, edits...)
}

// changes lists the plan's changes as "<symbol> <address>".
func netChanges(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Action != plan.NoOp {
			out = append(out, c.Action.Symbol()+" "+c.Address)
		}
	}
	sort.Strings(out)
	return out
}

// netLeft lists what is left in the account for env: everything tagged
// for it, and every EC2 resource at all (ENIs carry no tags).
func netLeft(w *awssim.World, env string) []string {
	var out []string
	for _, it := range w.Inventory() {
		if it.Tags["deploybot:environment"] == env || it.Service == "ec2" {
			out = append(out, it.Service+" "+it.Type+" "+it.ID)
		}
	}
	return out
}

func netExpected(nat string, azs int) []string {
	out := []string{"+ vpc.main", "+ internet_gateway.main", "+ route_table.public", "+ security_group.worker", "+ security_group.flow_runs"}
	for i := 0; i < azs; i++ {
		l := string(rune('a' + i))
		out = append(out, "+ subnet.public_"+l, "+ subnet.private_"+l)
	}
	switch nat {
	case "none":
		out = append(out, "+ route_table.private")
	case "single":
		out = append(out, "+ route_table.private", "+ eip.nat_a", "+ nat_gateway.a")
	case "per-az":
		for i := 0; i < azs; i++ {
			l := string(rune('a' + i))
			out = append(out, "+ route_table.private_"+l, "+ eip.nat_"+l, "+ nat_gateway."+l)
		}
	}
	return out
}

func TestE2EManagedNetworkLifecycle(t *testing.T) {
	t.Parallel()
	for _, nat := range []string{"none", "single", "per-az"} {
		t.Run(nat, func(t *testing.T) {
			x := newNetE2E(t)
			env := x.env("net", nat, "2")
			p := x.plan(env)
			var network []string
			for _, c := range netChanges(p.Plan) {
				if !strings.Contains(c, "ecs_") && !strings.Contains(c, "iam_") && !strings.Contains(c, "log_") &&
					!strings.Contains(c, "secret") && !strings.Contains(c, "service_discovery") && !strings.Contains(c, "task_definition") &&
					!strings.Contains(c, "autoscaling") && !strings.Contains(c, "sqs_") && !strings.Contains(c, "event_rule") &&
					!strings.Contains(c, "prefect_") {
					network = append(network, c)
				}
			}
			want := netExpected(nat, 2)
			sort.Strings(want)
			if d := cmp.Diff(want, network); d != "" {
				t.Fatalf("network part of the first plan (-want +got):\n%s", d)
			}
			if nat == "none" && !strings.Contains(strings.Join(p.Plan.Notes, "\n"), "public IP") {
				t.Errorf("nat none: the plan does not say why the worker gets a public IP: %v", p.Plan.Notes)
			}

			rep := x.apply(env)
			if rep.Status != plan.StatusSucceeded {
				t.Fatalf("apply status %s", rep.Status)
			}
			x.wantNone("plan right after apply has changes", netChanges(x.plan(env).Plan))

			// Update: a tag on everything; only tags change, in place.
			env2 := x.env("net", nat, "2", "team: data-platform", "team: platform")
			up := x.plan(env2)
			for _, c := range up.Plan.Changes {
				if c.Action == plan.NoOp {
					continue
				}
				if c.Action != plan.Update {
					t.Errorf("%s: %s, want an in-place update", c.Address, c.Action)
				}
			}
			for _, a := range []string{"vpc.main", "subnet.private_b", "route_table.public", "security_group.worker"} {
				if c := netChange(up.Plan, a); c == nil || c.Action != plan.Update || len(c.Fields) != 1 || c.Fields[0].Path != "tags.team" {
					t.Errorf("%s: %+v, want only tags.team", a, c)
				}
			}
			x.apply(env2)
			x.wantNone("plan after the update has changes", netChanges(x.plan(env2).Plan))

			x.destroy(env2)
			x.wantNone("left after destroy", netLeft(x.w, "net"))
		})
	}
}

func netChange(p *plan.Plan, address string) *plan.Change {
	for i := range p.Changes {
		if p.Changes[i].Address == address {
			return &p.Changes[i]
		}
	}
	return nil
}

func TestE2EManagedNATAddedLater(t *testing.T) {
	t.Parallel()
	x := newNetE2E(t)
	x.apply(x.env("net", "none", "2"))
	env2 := x.env("net", "single", "2")
	p := x.plan(env2)
	got := netChanges(p.Plan)
	for _, want := range []string{"+ eip.nat_a", "+ nat_gateway.a", "~ route_table.private"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("plan %v lacks %q", got, want)
		}
	}
	x.apply(env2)
	x.wantNone("plan after adding a NAT has changes", netChanges(x.plan(env2).Plan))
	x.destroy(env2)
	x.wantNone("left after destroy", netLeft(x.w, "net"))
}

// netCounts counts live EC2 resources by type (a deleted NAT gateway that is
// still described does not count).
func netCounts(w *awssim.World) map[string]int {
	m := map[string]int{}
	for _, it := range w.Inventory() {
		if it.Service == "ec2" {
			m[it.Type]++
		}
	}
	return m
}

// TestE2EManagedCrashAfterEveryWrite: an apply of a nat single environment
// dies after each of its writes in turn; a re-run converges with exactly one
// VPC, NAT gateway and Elastic IP, and nothing else than a clean apply makes.
func TestE2EManagedCrashAfterEveryWrite(t *testing.T) {
	t.Parallel()
	clean := newNetE2E(t)
	env := clean.env("net", "single", "2")
	clean.apply(env)
	n := len(clean.writes())
	want := netCounts(clean.w)
	delete(want, "network-interface") // the task's ENI is there or lingering
	for k := 1; k < n; k++ {
		t.Run(fmt.Sprint("after write ", k), func(t *testing.T) {
			x := newNetE2E(t)
			env := x.env("net", "single", "2")
			x.crashAfterWrite(k, "apply", x.tryApply, env)
			x.advance(5 * time.Minute)
			x.apply(env)
			x.wantConverged("not converged", env)
			got := netCounts(x.w)
			delete(got, "network-interface")
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("EC2 resources after crash and re-run (-clean +got):\n%s", d)
			}
		})
	}
}

// TestE2EManagedDestroyCrashAfterEveryWrite: a destroy dies after each of
// its writes in turn; a re-run finishes it and leaves nothing.
func TestE2EManagedDestroyCrashAfterEveryWrite(t *testing.T) {
	t.Parallel()
	probe := newNetE2E(t)
	env := probe.env("net", "single", "2")
	probe.apply(env)
	before := len(probe.writes())
	probe.destroy(env)
	n := len(probe.writes()) - before
	for k := 1; k < n; k++ {
		t.Run(fmt.Sprint("after write ", k), func(t *testing.T) {
			x := newNetE2E(t)
			env := x.env("net", "single", "2")
			x.apply(env)
			x.crashAfterWrite(k, "destroy", x.tryDestroy, env)
			x.advance(time.Minute)
			x.destroy(env)
			x.wantNone("left after crash and re-run", netLeft(x.w, "net"))
			x.wantNoPool(env)
		})
	}
}

func TestE2EManagedThrottledAndLingeringENIs(t *testing.T) {
	t.Parallel()
	// Task ENIs that outlive their tasks far longer than the security
	// group's 15-minute delete budget (docs/research/aws-ecs.md §5).
	x := newNetE2E(t, awssim.WithTimings(func(t *awssim.Timings) { t.ENILinger = 6 * time.Hour }))
	env := x.env("net", "single", "2")
	x.w.SetFaults(awssim.Faults{ThrottleFraction: 0.3, Seed: 7})
	x.apply(env)
	x.wantNone("not converged", netChanges(x.plan(env).Plan))
	throttled := 0
	for _, c := range x.w.Calls() {
		if c.ErrCode == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no EC2 call was throttled")
	}
	x.w.SetFaults(awssim.Faults{})

	// The destroy runs out of budget while the task's ENI lingers, and says
	// which ENI blocks it.
	_, err := x.tryDestroy(env)
	if err == nil || !strings.Contains(err.Error(), "eni-") || !strings.Contains(err.Error(), "attachment/") || !strings.Contains(err.Error(), "re-run") {
		t.Fatalf("destroy with a 6h ENI linger: %v; want an error naming the lingering ENI", err)
	}
	// A re-run once the ENI is gone finishes.
	x.advance(x.w.Timings().ENILinger)
	x.destroy(env)
	x.wantNone("left after the re-run", netLeft(x.w, "net"))
}
func TestE2EManagedCIDRChangeReplacesNetworkAndService(t *testing.T) {
	t.Parallel()
	x := newNetE2E(t)
	x.apply(x.env("net", "none", "2"))
	env2 := x.env("net", "none", "2", "cidr: 10.20.0.0/16", "cidr: 10.30.0.0/16")
	p := x.plan(env2)
	for _, a := range []string{"vpc.main", "subnet.public_a", "subnet.private_b", "internet_gateway.main", "route_table.public", "security_group.worker"} {
		c := netChange(p.Plan, a)
		if c == nil || c.Action != plan.Replace || c.Reason == "" {
			t.Errorf("%s: %+v, want a replacement with a reason", a, c)
		}
	}
	if c := netChange(p.Plan, "vpc.main"); c == nil || !strings.Contains(c.Reason, "cidr") {
		t.Errorf("vpc.main reason: %+v", c)
	}
	if c := netChange(p.Plan, "ecs_service.worker"); c == nil || (c.Action != plan.Replace && c.Action != plan.Update) {
		t.Errorf("ecs_service.worker: %+v, want it to move to the new network", c)
	}
	x.apply(env2)
	x.wantNone("plan after the CIDR change has changes", netChanges(x.plan(env2).Plan))
	x.destroy(env2)
	x.wantNone("left after destroy", netLeft(x.w, "net"))
}

func TestE2EManagedNATRemovedLater(t *testing.T) {
	t.Parallel()
	x := newNetE2E(t)
	x.apply(x.env("net", "single", "2"))
	env2 := x.env("net", "none", "2")
	p := x.plan(env2)
	t.Logf("plan: %v", netChanges(p.Plan))
	rep := x.apply(env2)
	for _, st := range rep.Steps {
		t.Logf("step %s %s %s %v %s", st.Address, st.Action, st.Status, st.Duration, st.Error)
	}
	t.Logf("status %s err %s progress:\n%s", rep.Status, rep.Error, x.progressText())
	x.wantNone("plan after removing the NAT has changes", netChanges(x.plan(env2).Plan))
	x.destroy(env2)
	x.wantNone("left after destroy", netLeft(x.w, "net"))
}
