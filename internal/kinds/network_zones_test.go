package kinds_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// Subnet zones come from DescribeAvailabilityZones, not from the region's
// name: regions have gaps (us-west-1 b and c, ap-northeast-1 a, c and d).
func TestSubnetResolveNamesZonesFromAWS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region string
		azs    int
		// preset names a zone already in the spec of subnet.private_a.
		preset string
		want   map[string]string // address → zone
		err    string
	}{
		{region: "us-east-1", azs: 2, want: map[string]string{
			"subnet.public_a": "us-east-1a", "subnet.private_a": "us-east-1a", "subnet.public_b": "us-east-1b", "subnet.private_b": "us-east-1b"}},
		{region: "us-west-1", azs: 2, want: map[string]string{
			"subnet.public_a": "us-west-1b", "subnet.private_a": "us-west-1b", "subnet.public_b": "us-west-1c", "subnet.private_b": "us-west-1c"}},
		{region: "ap-northeast-1", azs: 3, want: map[string]string{
			"subnet.public_a": "ap-northeast-1a", "subnet.private_a": "ap-northeast-1a", "subnet.public_b": "ap-northeast-1c",
			"subnet.private_b": "ap-northeast-1c", "subnet.public_c": "ap-northeast-1d", "subnet.private_c": "ap-northeast-1d"}},
		{region: "eu-west-1", azs: 3, want: map[string]string{
			"subnet.public_a": "eu-west-1a", "subnet.private_a": "eu-west-1a", "subnet.public_b": "eu-west-1b",
			"subnet.private_b": "eu-west-1b", "subnet.public_c": "eu-west-1c", "subnet.private_c": "eu-west-1c"}},
		{region: "us-west-1", azs: 2, preset: "us-west-1c", want: map[string]string{
			"subnet.public_a": "us-west-1b", "subnet.private_a": "us-west-1c", "subnet.public_b": "us-west-1c", "subnet.private_b": "us-west-1c"}},
		{region: "us-west-1", azs: 3,
			err: "environments/staging.yaml:19: network.availability_zones: 3 availability zones asked for, but region us-west-1 has 2 available to this account (only us-west-1b, us-west-1c); set it to 2 or fewer, or use another region"},
		{region: "ap-northeast-1", azs: 4,
			err: "environments/staging.yaml:19: network.availability_zones: 4 availability zones asked for, but region ap-northeast-1 has 3 available to this account (only ap-northeast-1a, ap-northeast-1c, ap-northeast-1d); set it to 3 or fewer, or use another region"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%d%s", tc.region, tc.azs, tc.preset), func(t *testing.T) {
			w, x, _ := netWorld(t)
			w.Region = tc.region
			env := netManagedEnv("none", "10.20.0.0/16")
			env.AWS.Region, env.Network.AvailabilityZones = tc.region, tc.azs
			env.Lines = map[string]int{"network.availability_zones": 19}
			np, err := stack.Network(env, stack.Tags(env))
			if err != nil {
				t.Fatal(err)
			}
			var subnets []resource.Resource
			for _, r := range np.Resources {
				if r.Kind == "subnet" {
					if r.Address == "subnet.private_a" && tc.preset != "" {
						s := *r.Spec.(*ec2.SubnetSpec)
						s.AvailabilityZone = tc.preset
						r.Spec = &s
					}
					subnets = append(subnets, r)
				}
			}
			before := subnetZonesOf(subnets)
			w.ResetCalls()
			got, err := resource.CapabilitiesOf(ec2.Subnet).Resolve.Resolve(context.Background(), x, subnets)
			if n := len(w.Calls()); n != 1 {
				t.Errorf("%d calls, want one DescribeAvailabilityZones for all %d subnets", n, len(subnets))
			}
			if d := cmp.Diff(before, subnetZonesOf(subnets)); d != "" {
				t.Errorf("Resolve changed the resources it was given (-before +after):\n%s", d)
			}
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error:\n%v\nwant:\n%s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, subnetZonesOf(got)); d != "" {
				t.Errorf("zones (-want +got):\n%s", d)
			}
		})
	}
}

func subnetZonesOf(rs []resource.Resource) map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		m[r.Address] = r.Spec.(*ec2.SubnetSpec).AvailabilityZone
	}
	return m
}

// A subnet whose zone the engine did not resolve is not created in a
// guessed zone, and its plan shows the zone as unknown.
func TestSubnetUnresolvedZone(t *testing.T) {
	t.Parallel()
	_, x, _ := netWorld(t)
	env := netManagedEnv("none", "10.20.0.0/16")
	np, err := stack.Network(env, stack.Tags(env))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range np.Resources {
		if r.Address != "subnet.public_a" {
			continue
		}
		if got := must((ec2.Subnet).Desired(&r, resource.Refs{}))["availability_zone"].Value; got != plan.Unknown {
			t.Errorf("desired availability_zone %q, want %q", got, plan.Unknown)
		}
		if _, err := (ec2.Subnet).Create(context.Background(), x, &r, resource.Refs{"vpc.main": {"id": "vpc-1"}}); err == nil {
			t.Fatal("created a subnet whose zone was not resolved")
		}
		return
	}
	t.Fatal("no subnet.public_a")
}
