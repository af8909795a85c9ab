package kinds_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/resource"
)

// netBatchRead reads rs the way a plan does: one ReadAll per kind that is
// a resource.BatchReader, with every resource of that kind.
func netBatchRead(t *testing.T, ctx context.Context, x *resource.Ctx, rs []resource.Resource) map[string]*resource.Live {
	t.Helper()
	ks := kinds.All()
	byKind := map[resource.KindName][]*resource.Resource{}
	for i := range rs {
		byKind[rs[i].Kind] = append(byKind[rs[i].Kind], &rs[i])
	}
	out := map[string]*resource.Live{}
	for kind, krs := range byKind {
		br := resource.CapabilitiesOf(ks[kind]).Batch
		ok := br != nil
		if !ok {
			continue
		}
		lives, err := br.ReadAll(ctx, x, krs)
		if err != nil {
			t.Fatalf("ReadAll %s: %v", kind, err)
		}
		for a, l := range lives {
			out[a] = l
		}
	}
	return out
}

// netEC2Ops counts the EC2 operations in w's call log.
func netEC2Ops(w *awssim.World) map[string]int {
	out := map[string]int{}
	for _, c := range w.Calls() {
		if c.Service == "EC2" {
			out[c.Operation]++
		}
	}
	return out
}

// TestReadAllAgreesWithRead: for every network kind with ReadAll, what one
// ReadAll of all its resources finds is what Read finds for each, with one
// Describe call per kind: ours after an apply, nothing in an empty account,
// and, under another environment's tag, every resource found as not ours
// (a conflict).
func TestReadAllAgreesWithRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		nat      string
		applied  bool
		otherEnv bool // read the resources as another environment's
		wantOurs bool
	}{
		{name: "single, applied", nat: "single", applied: true, wantOurs: true},
		{name: "per-az, applied", nat: "per-az", applied: true, wantOurs: true},
		{name: "per-az, empty account", nat: "per-az"},
		{name: "per-az, same names without our tag", nat: "per-az", applied: true, otherEnv: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w, x, _ := netWorld(t)
			np := netPlacement(t, x, netManagedEnv(tc.nat, "10.20.0.0/16"))
			if tc.applied {
				netApply(t, ctx, x, np.Resources)
			}
			rs := np.Resources
			if tc.otherEnv {
				rs = nil
				for _, r := range np.Resources {
					tags := map[string]string{}
					for k, v := range r.Tags {
						tags[k] = v
					}
					tags[resource.TagEnvironment] = "other"
					r.Tags = tags
					rs = append(rs, r)
				}
			}
			var batched []resource.Resource
			for _, r := range rs {
				if resource.CapabilitiesOf(kinds.All()[r.Kind]).Batch != nil {
					batched = append(batched, r)
				}
			}

			w.ResetCalls()
			got := netBatchRead(t, ctx, x, batched)
			wantOps := map[string]int{"DescribeVpcs": 1, "DescribeSubnets": 1, "DescribeInternetGateways": 1,
				"DescribeRouteTables": 1, "DescribeAddresses": 1, "DescribeNatGateways": 1, "DescribeSecurityGroups": 1}
			if tc.wantOurs {
				wantOps["DescribeVpcAttribute"] = 2
			}
			if d := cmp.Diff(wantOps, netEC2Ops(w)); d != "" {
				t.Errorf("EC2 calls of the batch reads (-want +got):\n%s", d)
			}

			want := map[string]*resource.Live{}
			ks := kinds.All()
			for i := range batched {
				r := &batched[i]
				live, err := ks[r.Kind].Read(ctx, x, r)
				if err != nil {
					t.Fatalf("read %s: %v", r.Address, err)
				}
				if live != nil {
					want[r.Address] = live
				}
				// A security group of a managed VPC under another
				// environment's tag is not in the way: the stack's VPC is
				// not that one (securitygroup.go ReadAll).
				wantFound := tc.applied && !(tc.otherEnv && r.Kind == ec2.KindSecurityGroup)
				if wantFound != (live != nil) || (live != nil && live.Ours != tc.wantOurs) {
					t.Errorf("%s: Read = %+v, want found %v, ours %v", r.Address, live, tc.applied, tc.wantOurs)
				}
			}
			if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(resource.Live{})); d != "" {
				t.Errorf("ReadAll vs Read (-Read +ReadAll):\n%s", d)
			}
		})
	}
}

// TestReadAllSkipsDeletingAndDeletedNATs: a NAT gateway that is deleting or
// deleted is absent for ReadAll as for Read (a new one may be made), while
// its sibling that is available is found.
func TestReadAllSkipsDeletingAndDeletedNATs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := netApplied(t, ctx, "per-az")
	x, clk := n.x, n.clk
	nats := []*resource.Resource{netResource(t, n.np.Resources, "nat_gateway.a"), netResource(t, n.np.Resources, "nat_gateway.b")}
	before, err := resource.CapabilitiesOf(ec2.NATGateway).Batch.ReadAll(ctx, x, nats)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"nat_gateway.a", "nat_gateway.b"}, slices.Sorted(maps.Keys(before))); d != "" {
		t.Fatalf("NAT gateways found (-want +got):\n%s", d)
	}
	if _, err := x.APIs.AWS.EC2.DeleteNatGateway(ctx, &awsec2.DeleteNatGatewayInput{NatGatewayId: aws.String(before["nat_gateway.a"].ID)}); err != nil {
		t.Fatal(err)
	}
	for _, stage := range []string{"deleting", "deleted"} {
		if stage == "deleted" {
			clk.Advance(2 * awssim.DefaultTimings().NATDeletingFor)
			out, err := x.APIs.AWS.EC2.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{NatGatewayIds: []string{before["nat_gateway.a"].ID}})
			if err != nil || len(out.NatGateways) != 1 || out.NatGateways[0].State != ec2types.NatGatewayStateDeleted {
				t.Fatalf("the deleted gateway should still be visible as deleted: %+v %v", out, err)
			}
		}
		got, err := resource.CapabilitiesOf(ec2.NATGateway).Batch.ReadAll(ctx, x, nats)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"nat_gateway.b"}, slices.Sorted(maps.Keys(got))); d != "" {
			t.Errorf("%s: NAT gateways found (-want +got):\n%s", stage, d)
		}
		one, err := ec2.NATGateway.Read(ctx, x, nats[0])
		if err != nil || one != nil {
			t.Errorf("%s: Read %s = %+v, %v; want absent", stage, nats[0].Address, one, err)
		}
	}
}
