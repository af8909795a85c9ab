package kinds_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/deploybot/deploybot/internal/awssim"
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
	var subnets []resource.Resource
	for _, r := range np.Resources {
		if r.Kind == "subnet" {
			subnets = append(subnets, r)
		}
	}
	resolved, err := resource.CapabilitiesOf(ec2.Subnet).Resolve.Resolve(context.Background(), x, subnets)
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
	ctx := context.Background()
	_, x, _ := netWorld(t)
	np := netPlacement(t, x, netManagedEnv("single", "10.20.0.0/16"))
	netApply(t, ctx, x, np.Resources)
	lives, _ := netReadAll(t, ctx, x, np.Resources)

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
		var r *resource.Resource
		for i := range changed.Resources {
			if changed.Resources[i].Address == addr {
				r = &changed.Resources[i]
			}
		}
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
	for i := range changed.Resources {
		if r := &changed.Resources[i]; r.Address == "eip.nat_a" {
			if d := netDiff(must(ks[r.Kind].Desired(r, resource.Refs{})), lives[r.Address].Attrs); len(d) != 0 {
				t.Errorf("eip changes: %+v", d)
			}
		}
	}
}

func TestNATSwitchMovesSubnetsBetweenRouteTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, x, _ := netWorld(t)
	single := netPlacement(t, x, netManagedEnv("single", "10.20.0.0/16"))
	netApply(t, ctx, x, single.Resources)

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
	for _, r := range single.Resources {
		if r.Address == "route_table.private" {
			if err := (ec2.RouteTable).Delete(ctx, x, &r, old[r.Address]); err != nil {
				t.Fatal(err)
			}
		}
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
	_, x, _ := netWorld(t)
	np := netPlacement(t, x, netManagedEnv("single", "10.20.0.0/16"))
	netApply(t, ctx, x, np.Resources)
	lives, refs := netReadAll(t, ctx, x, np.Resources)
	rt := lives["route_table.private"]
	// Drift: someone removed the default route by hand.
	if _, err := x.APIs.AWS.EC2.DeleteRoute(ctx, &awsec2.DeleteRouteInput{RouteTableId: aws.String(rt.ID), DestinationCidrBlock: aws.String("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	lives, _ = netReadAll(t, ctx, x, np.Resources)
	var r *resource.Resource
	for i := range np.Resources {
		if np.Resources[i].Address == "route_table.private" {
			r = &np.Resources[i]
		}
	}
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

func TestSubnetDeleteWaitsForENIsAndNamesThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		budget  float64
		wantErr bool
	}{
		{"ENI gone within the budget", 1, false},
		{"budget too small", 0.05, true}, // 0.05 × 20 min = 60 s < 90 s linger
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w, x, _ := netWorld(t)
			np := netPlacement(t, x, netManagedEnv("none", "10.20.0.0/16"))
			netApply(t, ctx, x, np.Resources)
			lives, refs := netReadAll(t, ctx, x, np.Resources)
			subnet := refs.Get("subnet.public_a", "id")
			w.Mu.Lock()
			eni := w.TaskENI(subnet, []string{refs.Get("security_group.worker", "id")}, "arn:aws:ecs:us-east-1:123456789012:attachment/abc", true)
			w.ReleaseTaskENI(eni.ID)
			w.Mu.Unlock()
			var r resource.Resource
			for _, rr := range np.Resources {
				if rr.Address == "subnet.public_a" {
					r = rr
				}
			}
			x.Budget = tc.budget
			err := ec2.Subnet.Delete(ctx, x, &r, lives[r.Address])
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error when the budget runs out")
			}
			for _, s := range []string{eni.ID, "attachment/abc", subnet, "re-run", "still blocked after 1m0s"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestEIPReleaseRacesADeletingNAT(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		budget  float64
		wantErr bool
	}{
		{"release waits out the NAT's delete", 1, false},
		{"budget too small names the NAT", 0.1, true}, // 0.1 × 5 min = 30 s < 60 s deleting
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w, x, clk := netWorld(t)
			np := netPlacement(t, x, netManagedEnv("single", "10.20.0.0/16"))
			netApply(t, ctx, x, np.Resources)
			lives, refs := netReadAll(t, ctx, x, np.Resources)
			nat := refs.Get("nat_gateway.a", "id")
			// Someone (or a crashed run) started the NAT's delete but did not
			// wait for it.
			if _, err := x.APIs.AWS.EC2.DeleteNatGateway(ctx, &awsec2.DeleteNatGatewayInput{NatGatewayId: aws.String(nat)}); err != nil {
				t.Fatal(err)
			}
			var r resource.Resource
			for _, rr := range np.Resources {
				if rr.Address == "eip.nat_a" {
					r = rr
				}
			}
			start := clk.Now()
			x.Budget = tc.budget
			err := ec2.EIP.Delete(ctx, x, &r, lives[r.Address])
			sawAuthFailure := false
			for _, c := range w.Calls() {
				if c.Operation == "ReleaseAddress" && c.ErrCode == "AuthFailure" {
					sawAuthFailure = true
				}
			}
			if !sawAuthFailure {
				t.Fatal("the release never met the deleting NAT (AuthFailure)")
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if clk.Now().Sub(start) < awssim.DefaultTimings().NATDeletingFor {
					t.Fatalf("released after %s, before the NAT was deleted", clk.Now().Sub(start))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), nat) || !strings.Contains(err.Error(), "deleting") {
				t.Fatalf("err = %v, want one naming %s (deleting)", err, nat)
			}
		})
	}
}

func TestInternetGatewayDetachWaitsForMappedAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, x, clk := netWorld(t)
	np := netPlacement(t, x, netManagedEnv("none", "10.20.0.0/16"))
	netApply(t, ctx, x, np.Resources)
	lives, refs := netReadAll(t, ctx, x, np.Resources)
	w.Mu.Lock()
	eni := w.TaskENI(refs.Get("subnet.public_b", "id"), []string{refs.Get("security_group.worker", "id")}, "arn:aws:ecs:us-east-1:123456789012:attachment/t", true)
	w.ReleaseTaskENI(eni.ID)
	w.Mu.Unlock()
	var r resource.Resource
	for _, rr := range np.Resources {
		if rr.Address == "internet_gateway.main" {
			r = rr
		}
	}
	start := clk.Now()
	if err := (ec2.InternetGateway).Delete(ctx, x, &r, lives[r.Address]); err != nil {
		t.Fatal(err)
	}
	if clk.Now().Sub(start) < awssim.DefaultTimings().ENILinger {
		t.Fatal("detached before the task's public address was gone")
	}
	if live, _ := (ec2.InternetGateway).Read(ctx, x, &r); live != nil {
		t.Fatal("gateway still there")
	}
}

func TestNATCreateWaitsUntilAvailableAndPendingIsAChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, x, clk := netWorld(t)
	np := netPlacement(t, x, netManagedEnv("single", "10.20.0.0/16"))
	start := clk.Now()
	netApply(t, ctx, x, np.Resources)
	if clk.Now().Sub(start) < awssim.DefaultTimings().NATPendingFor {
		t.Fatalf("apply took %s of simulated time; the NAT is pending for %s", clk.Now().Sub(start), awssim.DefaultTimings().NATPendingFor)
	}
	// A NAT found pending (a re-run after a crash) shows state as a change,
	// and Update waits for it.
	lives, refs := netReadAll(t, ctx, x, np.Resources)
	live := lives["nat_gateway.a"]
	live.Attrs["state"] = resource.Attr{Value: "pending"}
	var r resource.Resource
	for _, rr := range np.Resources {
		if rr.Address == "nat_gateway.a" {
			r = rr
		}
	}
	d := netDiff(must(ec2.NATGateway.Desired(&r, refs)), live.Attrs)
	if len(d) != 1 || d[0].Path != "state" || d[0].ForcesReplacement {
		t.Fatalf("diff = %+v", d)
	}
	if _, err := (ec2.NATGateway).Update(ctx, x, &r, live, refs, []plan.FieldChange{d[0]}); err != nil {
		t.Fatal(err)
	}
}
