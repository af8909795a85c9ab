package kinds_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

func netManagedEnv(nat, cidr string) *config.Environment {
	return &config.Environment{File: "environments/staging.yaml", Name: "staging",
		AWS:     config.AWS{AccountID: awssim.DefaultAccount, Region: "us-east-1"},
		Network: config.Network{Mode: "managed", CIDR: cidr, AvailabilityZones: 2, NAT: nat},
		Tags:    map[string]string{"team": "data"}}
}

// netPlacement builds env's network and resolves its subnets' zones from
// x's account, as the engine does when it plans.
func netPlacement(t *testing.T, x *resource.Ctx, env *config.Environment) stack.NetworkPlacement {
	t.Helper()
	np, err := stack.Network(env, stack.Tags(env))
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := resource.CapabilitiesOf(ec2.Subnet).Resolve.Resolve(context.Background(), x, netOfKind(np.Resources, ec2.KindSubnet))
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]resource.Resource{}
	for _, r := range resolved {
		byAddr[r.Address] = r
	}
	for i, r := range np.Resources {
		if rr, ok := byAddr[r.Address]; ok {
			np.Resources[i] = rr
		}
	}
	return np
}

// netApply creates every resource in order (the stack lists dependencies
// first), the way the engine does for an empty account, and returns the refs.
func netApply(t *testing.T, ctx context.Context, x *resource.Ctx, rs []resource.Resource) resource.Refs {
	t.Helper()
	ks := kinds.All()
	refs := resource.Refs{}
	for i := range rs {
		r := &rs[i]
		out, err := ks[r.Kind].Create(ctx, x, r, refs)
		if err != nil {
			t.Fatalf("create %s: %v", r.Address, err)
		}
		refs[r.Address] = out
	}
	return refs
}

// netReadAll reads every resource (no dependency between reads) and returns
// the lives and their outputs as refs.
func netReadAll(t *testing.T, ctx context.Context, x *resource.Ctx, rs []resource.Resource) (map[string]*resource.Live, resource.Refs) {
	t.Helper()
	ks := kinds.All()
	lives := map[string]*resource.Live{}
	refs := resource.Refs{}
	for i := range rs {
		r := &rs[i]
		live, err := ks[r.Kind].Read(ctx, x, r)
		if err != nil {
			t.Fatalf("read %s: %v", r.Address, err)
		}
		lives[r.Address] = live
		if live != nil {
			refs[r.Address] = live.Outputs
		}
	}
	return lives, refs
}

// netStack is a managed network applied to an empty simulated account, as
// most network tests start: the world, the kind context and its clock, the
// placement, and what a read after the apply finds.
type netStack struct {
	w     *awssim.World
	x     *resource.Ctx
	clk   *clock.Virtual
	np    stack.NetworkPlacement
	lives map[string]*resource.Live
	refs  resource.Refs
	// applyTook is the simulated time the apply took.
	applyTook time.Duration
}

// netApplied applies the managed network of nat to a new account.
func netApplied(t *testing.T, ctx context.Context, nat string) *netStack {
	t.Helper()
	w, x, clk := netWorld(t)
	n := &netStack{w: w, x: x, clk: clk, np: netPlacement(t, x, netManagedEnv(nat, "10.20.0.0/16"))}
	start := clk.Now()
	netApply(t, ctx, x, n.np.Resources)
	n.applyTook = clk.Now().Sub(start)
	n.lives, n.refs = netReadAll(t, ctx, x, n.np.Resources)
	return n
}

// netResource is the resource of rs at address.
func netResource(t *testing.T, rs []resource.Resource, address string) *resource.Resource {
	t.Helper()
	for i := range rs {
		if rs[i].Address == address {
			return &rs[i]
		}
	}
	t.Fatalf("no %s", address)
	return nil
}

// netOfKind is the resources of rs of kind.
func netOfKind(rs []resource.Resource, kind resource.KindName) []resource.Resource {
	var out []resource.Resource
	for _, r := range rs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func TestManagedNetworkKindsCreateReadDestroy(t *testing.T) {
	t.Parallel()
	for _, nat := range []string{"none", "single", "per-az"} {
		t.Run(nat, func(t *testing.T) {
			ctx := context.Background()
			w, x, _ := netWorld(t)
			env := netManagedEnv(nat, "10.20.0.0/16")
			np := netPlacement(t, x, env)
			lives, _ := netReadAll(t, ctx, x, np.Resources)
			for a, l := range lives {
				if l != nil {
					t.Fatalf("%s exists in an empty account", a)
				}
			}
			netApply(t, ctx, x, np.Resources)

			// Plan after apply: every resource found, ours, and no change.
			lives, refs := netReadAll(t, ctx, x, np.Resources)
			ks := kinds.All()
			for i := range np.Resources {
				r := &np.Resources[i]
				live := lives[r.Address]
				if live == nil || !live.Ours {
					t.Fatalf("%s after apply: %+v", r.Address, live)
				}
				if d := netDiff(must(ks[r.Kind].Desired(r, refs)), live.Attrs); len(d) != 0 {
					t.Errorf("%s: plan after apply is not empty: %+v", r.Address, d)
				}
			}

			// The worker's placement reaches the internet.
			w.Mu.Lock()
			for _, s := range np.Subnets {
				if ok, why := w.InternetReach(s.Resolve(refs), np.AssignPublicIP); !ok {
					t.Errorf("worker subnet %s: no internet: %s", s.Address, why)
				}
			}
			w.Mu.Unlock()

			// Destroy in reverse order; then nothing tagged for staging is left.
			for i := len(np.Resources) - 1; i >= 0; i-- {
				r := &np.Resources[i]
				if err := ks[r.Kind].Delete(ctx, x, r, lives[r.Address]); err != nil {
					t.Fatalf("delete %s: %v", r.Address, err)
				}
			}
			if left := w.TaggedFor("staging"); len(left) != 0 {
				t.Fatalf("left after destroy: %+v", left)
			}
			// Deleting again (a re-run) succeeds.
			for i := len(np.Resources) - 1; i >= 0; i-- {
				r := &np.Resources[i]
				if err := ks[r.Kind].Delete(ctx, x, r, lives[r.Address]); err != nil {
					t.Fatalf("second delete %s: %v", r.Address, err)
				}
			}
		})
	}
}

func TestCIDRChangeReplacesTheNetwork(t *testing.T) {
	t.Parallel()
	n := netApplied(t, context.Background(), "single")
	x, lives := n.x, n.lives

	// New CIDR: the VPC is replaced, so every dependent sees an unknown VPC
	// id (planRefs gives a replaced dependency no outputs).
	changed := netPlacement(t, x, netManagedEnv("single", "10.30.0.0/16"))
	ks := kinds.All()
	tests := map[string]string{ // address → the field forcing replacement
		"vpc.main":              "cidr",
		"subnet.public_a":       "cidr",
		"internet_gateway.main": "vpc_id",
		"route_table.public":    "vpc_id",
		"security_group.worker": "vpc_id",
	}
	for addr, field := range tests {
		r := netResource(t, changed.Resources, addr)
		d := netDiff(must(ks[r.Kind].Desired(r, resource.Refs{})), lives[addr].Attrs)
		found := false
		for _, f := range d {
			if f.Path == field && f.ForcesReplacement {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: changes %+v, want %s forcing replacement", addr, d, field)
		}
	}
	// The EIP does not depend on the VPC: it stays.
	r := netResource(t, changed.Resources, "eip.nat_a")
	if d := netDiff(must(ks[r.Kind].Desired(r, resource.Refs{})), lives[r.Address].Attrs); len(d) != 0 {
		t.Errorf("eip changes: %+v", d)
	}
}

func TestNATSwitchMovesSubnetsBetweenRouteTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := netApplied(t, ctx, "single")
	w, x, single := n.w, n.x, n.np

	// nat: per-az adds nat b and per-zone private tables; the old
	// route_table.private still holds the associations when they are made.
	perAZ := netPlacement(t, x, netManagedEnv("per-az", "10.20.0.0/16"))
	lives, refs := netReadAll(t, ctx, x, perAZ.Resources)
	ks := kinds.All()
	for i := range perAZ.Resources {
		r := &perAZ.Resources[i]
		if lives[r.Address] != nil {
			continue
		}
		out, err := ks[r.Kind].Create(ctx, x, r, refs)
		if err != nil {
			t.Fatalf("create %s: %v", r.Address, err)
		}
		refs[r.Address] = out
	}
	old, _ := netReadAll(t, ctx, x, single.Resources)
	private := netResource(t, single.Resources, "route_table.private")
	if err := (ec2.RouteTable).Delete(ctx, x, private, old[private.Address]); err != nil {
		t.Fatal(err)
	}
	lives, refs = netReadAll(t, ctx, x, perAZ.Resources)
	for i := range perAZ.Resources {
		r := &perAZ.Resources[i]
		if d := netDiff(must(ks[r.Kind].Desired(r, refs)), lives[r.Address].Attrs); len(d) != 0 {
			t.Errorf("%s: %+v", r.Address, d)
		}
	}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	for _, s := range perAZ.Subnets {
		if ok, why := w.InternetReach(s.Resolve(refs), false); !ok {
			t.Errorf("%s: %s", s.Address, why)
		}
	}
}

func TestRouteUpdateRepointsAndReassociates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := netApplied(t, ctx, "single")
	x, np, refs := n.x, n.np, n.refs
	rt := n.lives["route_table.private"]
	// Drift: someone removed the default route by hand.
	if _, err := x.APIs.AWS.EC2.DeleteRoute(ctx, &awsec2.DeleteRouteInput{RouteTableId: aws.String(rt.ID), DestinationCidrBlock: aws.String("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	lives, _ := netReadAll(t, ctx, x, np.Resources)
	r := netResource(t, np.Resources, "route_table.private")
	k := ec2.RouteTable
	d := netDiff(must(k.Desired(r, refs)), lives[r.Address].Attrs)
	if len(d) != 1 || d[0].Path != "route.0.0.0.0/0" || d[0].ForcesReplacement {
		t.Fatalf("drift = %+v, want an in-place route change", d)
	}
	if _, err := k.Update(ctx, x, r, lives[r.Address], refs, d); err != nil {
		t.Fatal(err)
	}
	lives, _ = netReadAll(t, ctx, x, np.Resources)
	if d := netDiff(must(k.Desired(r, refs)), lives[r.Address].Attrs); len(d) != 0 {
		t.Fatalf("after update: %+v", d)
	}
}

// taskENI puts a stopped Fargate task's ENI in subnet address (with the
// worker's group and a public address): it lingers for
// awssim.DefaultTimings().ENILinger.
func (n *netStack) taskENI(address, attachment string) string {
	n.w.Mu.Lock()
	defer n.w.Mu.Unlock()
	eni := n.w.TaskENI(n.refs.Get(address, "id"), []string{n.refs.Get("security_group.worker", "id")},
		"arn:aws:ecs:us-east-1:123456789012:attachment/"+attachment, true)
	n.w.ReleaseTaskENI(eni.ID)
	return eni.ID
}

// TestDeleteWaitsOutWhatIsInTheWay: a delete that something else still
// blocks (a task's lingering ENI, a NAT gateway that is deleting) waits for
// it within its budget; with too small a budget it fails naming what is in
// the way and that a re-run continues.
func TestDeleteWaitsOutWhatIsInTheWay(t *testing.T) {
	t.Parallel()
	subnetENI := func(t *testing.T, ctx context.Context, n *netStack) []string {
		return []string{n.taskENI("subnet.public_a", "abc"), "attachment/abc", n.refs.Get("subnet.public_a", "id"), "re-run", "still blocked after 1m0s"}
	}
	// Someone (or a crashed run) started the NAT's delete but did not wait
	// for it.
	deletingNAT := func(t *testing.T, ctx context.Context, n *netStack) []string {
		nat := n.refs.Get("nat_gateway.a", "id")
		if _, err := n.x.APIs.AWS.EC2.DeleteNatGateway(ctx, &awsec2.DeleteNatGatewayInput{NatGatewayId: aws.String(nat)}); err != nil {
			t.Fatal(err)
		}
		return []string{nat, "deleting"}
	}
	tests := []struct {
		name, nat, address string
		budget             float64
		// block puts something in the way and returns what the error names
		// when the budget runs out.
		block   func(t *testing.T, ctx context.Context, n *netStack) []string
		wantErr bool
		// met is a call and error code the delete meets on its way.
		met string
		// waits is how long a delete that succeeds takes at least.
		waits time.Duration
	}{
		{name: "subnet: ENI gone within the budget", nat: "none", address: "subnet.public_a", budget: 1, block: subnetENI},
		{name: "subnet: budget too small", nat: "none", address: "subnet.public_a", budget: 0.05, block: subnetENI, wantErr: true}, // 0.05 × 20 min = 60 s < 90 s linger
		{name: "eip: release waits out the NAT's delete", nat: "single", address: "eip.nat_a", budget: 1, block: deletingNAT,
			met: "ReleaseAddress AuthFailure", waits: awssim.DefaultTimings().NATDeletingFor},
		{name: "eip: budget too small names the NAT", nat: "single", address: "eip.nat_a", budget: 0.1, block: deletingNAT, wantErr: true,
			met: "ReleaseAddress AuthFailure"}, // 0.1 × 5 min = 30 s < 60 s deleting
		{name: "internet gateway: detach waits for mapped addresses", nat: "none", address: "internet_gateway.main", budget: 1,
			block: func(t *testing.T, ctx context.Context, n *netStack) []string {
				n.taskENI("subnet.public_b", "t")
				return nil
			}, waits: awssim.DefaultTimings().ENILinger},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			n := netApplied(t, ctx, tc.nat)
			mention := tc.block(t, ctx, n)
			r := netResource(t, n.np.Resources, tc.address)
			k := kinds.All()[r.Kind]
			start := n.clk.Now()
			n.x.Budget = tc.budget
			err := k.Delete(ctx, n.x, r, n.lives[r.Address])
			if tc.met != "" {
				met := false
				for _, c := range n.w.Calls() {
					met = met || c.Operation+" "+c.ErrCode == tc.met
				}
				if !met {
					t.Fatalf("the delete never met %s", tc.met)
				}
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if took := n.clk.Now().Sub(start); took < tc.waits {
					t.Fatalf("deleted after %s, before what was in the way was gone (%s)", took, tc.waits)
				}
				if live, _ := k.Read(ctx, n.x, r); live != nil {
					t.Fatalf("%s still there", r.Address)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error when the budget runs out")
			}
			for _, s := range mention {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestNATCreateWaitsUntilAvailableAndPendingIsAChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := netApplied(t, ctx, "single")
	if n.applyTook < awssim.DefaultTimings().NATPendingFor {
		t.Fatalf("apply took %s of simulated time; the NAT is pending for %s", n.applyTook, awssim.DefaultTimings().NATPendingFor)
	}
	// A NAT found pending (a re-run after a crash) shows state as a change,
	// and Update waits for it.
	live := n.lives["nat_gateway.a"]
	live.Attrs["state"] = resource.Attr{Value: "pending"}
	r := netResource(t, n.np.Resources, "nat_gateway.a")
	d := netDiff(must(ec2.NATGateway.Desired(r, n.refs)), live.Attrs)
	if len(d) != 1 || d[0].Path != "state" || d[0].ForcesReplacement {
		t.Fatalf("diff = %+v", d)
	}
	if _, err := (ec2.NATGateway).Update(ctx, n.x, r, live, n.refs, []plan.FieldChange{d[0]}); err != nil {
		t.Fatal(err)
	}
}
