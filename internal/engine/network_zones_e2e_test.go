package engine_test

import (
	"context"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/plan"
)

// netZoneCalls counts the DescribeAvailabilityZones calls so far.
func (x *netE2E) netZoneCalls() int {
	n := 0
	for _, c := range x.w.Calls() {
		if c.Operation == "DescribeAvailabilityZones" {
			n++
		}
	}
	return n
}

// netSubnetZones lists "Name zone" of every subnet tagged for env.
func (x *netE2E) netSubnetZones(env string) []string {
	x.tb.Helper()
	out, err := ec2.NewFromConfig(x.w.Config()).DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:deploybot:environment"), Values: []string{env}}}})
	if err != nil {
		x.tb.Fatal(err)
	}
	var got []string
	for _, s := range out.Subnets {
		name := ""
		for _, t := range s.Tags {
			if aws.ToString(t.Key) == "Name" {
				name = aws.ToString(t.Value)
			}
		}
		got = append(got, name+" "+aws.ToString(s.AvailabilityZone))
	}
	sort.Strings(got)
	return got
}

// TestE2EManagedZonesComeFromAWS: us-west-1 has only zones b and c for most
// accounts. A two-zone environment there puts its subnets in b and c (the
// zones DescribeAvailabilityZones gives, asked once per plan, not
// <region>a and b), and plans no change afterwards; three zones fail the
// plan naming the region, its zones and the file's field, before any
// write; a destroy needs no zones and is not blocked by that.
func TestE2EManagedZonesComeFromAWS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nat  string
		want []string
	}{
		{nat: "none", want: []string{"deploybot-west-private-a us-west-1b", "deploybot-west-private-b us-west-1c",
			"deploybot-west-public-a us-west-1b", "deploybot-west-public-b us-west-1c"}},
		{nat: "per-az", want: []string{"deploybot-west-private-a us-west-1b", "deploybot-west-private-b us-west-1c",
			"deploybot-west-public-a us-west-1b", "deploybot-west-public-b us-west-1c"}},
	}
	for _, tc := range tests {
		t.Run(tc.nat, func(t *testing.T) {
			x := newNetE2E(t)
			x.w.Region = "us-west-1"
			env := x.env("west", tc.nat, "2", "region: us-east-1", "region: us-west-1")

			p := x.plan(env)
			if n := x.netZoneCalls(); n != 1 {
				t.Errorf("the plan asked for the zones %d times, want once", n)
			}
			for _, a := range []string{"subnet.public_a", "subnet.private_b"} {
				c := netChange(p.Plan, a)
				if c == nil || c.Action != plan.Create {
					t.Fatalf("%s: %+v, want a create", a, c)
				}
				want := map[string]string{"subnet.public_a": "us-west-1b", "subnet.private_b": "us-west-1c"}[a]
				found := false
				for _, f := range c.Fields {
					if f.Path == "availability_zone" {
						found = true
						if f.After != want {
							t.Errorf("%s: the plan shows zone %q, want %q", a, f.After, want)
						}
					}
				}
				if !found {
					t.Errorf("%s: the plan does not show its zone: %+v", a, c.Fields)
				}
			}

			x.apply(env)
			if d := cmp.Diff(tc.want, x.netSubnetZones("west")); d != "" {
				t.Errorf("subnets (-want +got):\n%s", d)
			}
			before := x.netZoneCalls()
			x.wantNone("plan right after apply has changes", netChanges(x.plan(env).Plan))
			if n := x.netZoneCalls() - before; n != 1 {
				t.Errorf("the no-change plan asked for the zones %d times, want once", n)
			}

			three := x.env("west", tc.nat, "3", "region: us-east-1", "region: us-west-1")
			st := x.stack(three)
			writes := len(x.writes())
			_, err := x.engine().Plan(context.Background(), st)
			wantErr := three.File + ":19: network.availability_zones: 3 availability zones asked for, but region us-west-1 has 2 available to this account (only us-west-1b, us-west-1c); set it to 2 or fewer, or use another region"
			if err == nil || err.Error() != wantErr {
				t.Fatalf("plan of 3 zones in us-west-1:\n%v\nwant:\n%s", err, wantErr)
			}
			if len(x.writes()) != writes {
				t.Errorf("the failed plan wrote")
			}

			x.destroy(three)
			x.wantNone("left after destroy", netLeft(x.w, "west"))
		})
	}
}
