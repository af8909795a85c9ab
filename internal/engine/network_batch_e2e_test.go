package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/plan"
)

// ec2Calls counts the EC2 operations in the world's call log.
func (x *netE2E) ec2Calls() map[string]int {
	out := map[string]int{}
	for _, c := range x.w.Calls() {
		if c.Service == "EC2" {
			out[c.Operation]++
		}
	}
	return out
}

// TestPlanReadsEachEC2TypeOnce: a plan of a managed environment makes one
// Describe call per EC2 type, however many subnets, route tables, EIPs and
// NAT gateways the stack and its leftovers (another nat or zone setting)
// have; the VPC's two DNS attributes take one call each once it exists.
func TestPlanReadsEachEC2TypeOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nat, azs string
		applied  bool
	}{
		{"single", "2", true},
		{"per-az", "2", true},
		{"per-az", "3", true},
		{"none", "2", true},
		{"single", "2", false},
		{"per-az", "3", false},
	}
	for _, tc := range tests {
		name := "nat=" + tc.nat + "/azs=" + tc.azs
		if !tc.applied {
			name += "/empty-account"
		}
		t.Run(name, func(t *testing.T) {
			x := newNetE2E(t)
			env := x.env("net", tc.nat, tc.azs)
			want := map[string]int{"DescribeAvailabilityZones": 1, "DescribeVpcs": 1, "DescribeSubnets": 1,
				"DescribeInternetGateways": 1, "DescribeRouteTables": 1, "DescribeAddresses": 1,
				"DescribeNatGateways": 1, "DescribeSecurityGroups": 1}
			if tc.applied {
				x.apply(env)
				want["DescribeVpcAttribute"] = 2
			}
			x.resetCalls()
			p := x.plan(env)
			if tc.applied && p.Plan.HasChanges() {
				t.Fatalf("plan after apply has changes: %v", netChanges(p.Plan))
			}
			if d := cmp.Diff(want, x.ec2Calls()); d != "" {
				t.Errorf("EC2 calls of one plan (-want +got):\n%s", d)
			}
		})
	}
}

// TestPlanFindsSameNameResourcesWithoutOurTags: resources someone else made
// under our Name tags, without our environment tag, are found by the batch
// reads: alone under a name the file asks for, a conflict; beside ours,
// ours is the one planned (no change); under a leftover's name, left alone
// (an apply deletes only what is ours, a destroy notes it).
func TestPlanFindsSameNameResourcesWithoutOurTags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		applied       bool
		foreign       string // "subnet" or "eip"
		foreignName   string
		op            plan.Operation
		wantChanges   []string // changes other than creates
		wantNoteAbout string
	}{
		{name: "alone under a desired name: a conflict", foreign: "subnet", foreignName: "deploybot-net-public-a",
			op: plan.OpApply, wantChanges: []string{"× subnet.public_a"}},
		{name: "beside ours: ours is planned", applied: true, foreign: "subnet", foreignName: "deploybot-net-public-a",
			op: plan.OpApply},
		{name: "beside ours, an EIP: ours is planned", applied: true, foreign: "eip", foreignName: "deploybot-net-nat-a",
			op: plan.OpApply},
		{name: "under a leftover's name: not deleted", applied: true, foreign: "eip", foreignName: "deploybot-net-nat-b",
			op: plan.OpApply},
		{name: "under a desired name, destroy: noted and left alone", foreign: "subnet", foreignName: "deploybot-net-public-a",
			op: plan.OpDestroy, wantNoteAbout: "subnet.public_a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newNetE2E(t)
			ctx := context.Background()
			env := x.env("net", "single", "2")
			if tc.applied {
				x.apply(env)
			}
			c := ec2.NewFromConfig(x.w.Config())
			tags := func(rt ec2types.ResourceType) []ec2types.TagSpecification {
				return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{
					{Key: aws.String("Name"), Value: aws.String(tc.foreignName)}, {Key: aws.String("owner"), Value: aws.String("someone-else")}}}}
			}
			switch tc.foreign {
			case "subnet":
				vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.99.0.0/16")})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.99.1.0/24"),
					AvailabilityZone: aws.String("us-east-1a"), TagSpecifications: tags(ec2types.ResourceTypeSubnet)}); err != nil {
					t.Fatal(err)
				}
			case "eip":
				if _, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc,
					TagSpecifications: tags(ec2types.ResourceTypeElasticIp)}); err != nil {
					t.Fatal(err)
				}
			}

			st := x.stack(env)
			var p *engine.Planned
			var err error
			if tc.op == plan.OpDestroy {
				p, err = x.engine().PlanDestroy(ctx, st)
			} else {
				p, err = x.engine().Plan(ctx, st)
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range p.Plan.Changes {
				if ch.Action != plan.NoOp && ch.Action != plan.Create {
					got = append(got, ch.Action.Symbol()+" "+ch.Address)
				}
			}
			if d := cmp.Diff(tc.wantChanges, got); d != "" {
				t.Errorf("changes other than creates (-want +got):\n%s", d)
			}
			noted := false
			for _, n := range p.Plan.Notes {
				noted = noted || strings.Contains(n, tc.wantNoteAbout+" \""+tc.foreignName+"\"")
			}
			if tc.wantNoteAbout != "" && !noted {
				t.Errorf("no note about %s: %q", tc.wantNoteAbout, p.Plan.Notes)
			}
		})
	}
}
