package stack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
)

func managedEnv(nat string, azs int, cidr string) *config.Environment {
	return &config.Environment{File: "environments/staging.yaml", Name: "staging",
		AWS:     config.AWS{AccountID: "123456789012", Region: "us-east-1"},
		Network: config.Network{Mode: "managed", CIDR: cidr, AvailabilityZones: azs, NAT: nat}}
}

func TestManagedNetworkShape(t *testing.T) {
	tests := []struct {
		nat        string
		azs        int
		resources  []string
		subnets    []string
		publicIP   bool
		serviceDep []string
		notes      int
	}{
		{nat: "none", azs: 2,
			resources: []string{"vpc.main", "subnet.public_a", "subnet.private_a", "subnet.public_b", "subnet.private_b",
				"internet_gateway.main", "route_table.public", "route_table.private", "security_group.worker"},
			subnets: []string{"subnet.public_a", "subnet.public_b"}, publicIP: true, serviceDep: []string{"route_table.public"}, notes: 1},
		{nat: "single", azs: 2,
			resources: []string{"vpc.main", "subnet.public_a", "subnet.private_a", "subnet.public_b", "subnet.private_b",
				"internet_gateway.main", "route_table.public", "eip.nat_a", "nat_gateway.a", "route_table.private", "security_group.worker"},
			subnets: []string{"subnet.private_a", "subnet.private_b"}, serviceDep: []string{"route_table.private"}},
		{nat: "per-az", azs: 3,
			resources: []string{"vpc.main", "subnet.public_a", "subnet.private_a", "subnet.public_b", "subnet.private_b",
				"subnet.public_c", "subnet.private_c", "internet_gateway.main", "route_table.public",
				"eip.nat_a", "nat_gateway.a", "eip.nat_b", "nat_gateway.b", "eip.nat_c", "nat_gateway.c",
				"route_table.private_a", "route_table.private_b", "route_table.private_c", "security_group.worker"},
			subnets:    []string{"subnet.private_a", "subnet.private_b", "subnet.private_c"},
			serviceDep: []string{"route_table.private_a", "route_table.private_b", "route_table.private_c"}},
	}
	for _, tc := range tests {
		t.Run(tc.nat, func(t *testing.T) {
			np, err := Network(managedEnv(tc.nat, tc.azs, "10.20.0.0/16"), map[string]string{"deploybot:environment": "staging"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			known := map[string]bool{}
			for _, r := range np.Resources {
				got = append(got, r.Address)
				// Dependencies come first, so the list is already in a
				// valid creation order.
				for _, d := range r.DependsOn {
					if !known[d] {
						t.Errorf("%s depends on %s, which is not before it", r.Address, d)
					}
				}
				known[r.Address] = true
				if r.Tags["Name"] != r.Name || !strings.HasPrefix(r.Name, "deploybot-staging-") || r.Tags["deploybot:environment"] != "staging" {
					t.Errorf("%s: name %q, tags %v", r.Address, r.Name, r.Tags)
				}
			}
			if d := cmp.Diff(tc.resources, got); d != "" {
				t.Errorf("resources (-want +got):\n%s", d)
			}
			var subnets []string
			for _, s := range np.Subnets {
				subnets = append(subnets, s.Address)
			}
			if d := cmp.Diff(tc.subnets, subnets); d != "" {
				t.Errorf("placement subnets (-want +got):\n%s", d)
			}
			if np.AssignPublicIP != tc.publicIP || len(np.Notes) != tc.notes {
				t.Errorf("public IP %v notes %v", np.AssignPublicIP, np.Notes)
			}
			if d := cmp.Diff(tc.serviceDep, np.ServiceDependsOn); d != "" {
				t.Errorf("service depends on (-want +got):\n%s", d)
			}
			if np.VPC.Address != "vpc.main" || np.SecurityGroups[0].Address != "security_group.worker" {
				t.Errorf("vpc %+v sg %+v", np.VPC, np.SecurityGroups)
			}
		})
	}
}

func TestManagedNetworkCIDRsAndRoutes(t *testing.T) {
	np, err := Network(managedEnv("per-az", 2, "10.20.0.0/16"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cidrs := map[string]string{}
	azs := map[string]int{}
	for _, r := range np.Resources {
		if s, ok := r.Spec.(*ec2.SubnetSpec); ok {
			cidrs[r.Address] = s.CIDR
			azs[r.Address] = s.ZoneIndex
			if s.AvailabilityZone != "" {
				t.Errorf("%s: zone %q named by the stack; only AWS knows the region's zone names", r.Address, s.AvailabilityZone)
			}
		}
	}
	wantCIDRs := map[string]string{"subnet.public_a": "10.20.0.0/20", "subnet.public_b": "10.20.16.0/20",
		"subnet.private_a": "10.20.32.0/20", "subnet.private_b": "10.20.48.0/20"}
	if d := cmp.Diff(wantCIDRs, cidrs); d != "" {
		t.Errorf("subnet CIDRs (-want +got):\n%s", d)
	}
	wantZones := map[string]int{"subnet.public_a": 0, "subnet.public_b": 1, "subnet.private_a": 0, "subnet.private_b": 1}
	if d := cmp.Diff(wantZones, azs); d != "" {
		t.Errorf("subnet zone indexes (-want +got):\n%s", d)
	}
	for _, r := range np.Resources {
		rt, ok := r.Spec.(*ec2.RouteTableSpec)
		if !ok {
			continue
		}
		var route, subnets string
		for _, ro := range rt.Routes {
			route += ro.Destination + "→" + ro.Target.Address
		}
		for _, s := range rt.Subnets {
			subnets += s.Address + " "
		}
		want := map[string]string{
			"route_table.public":    "0.0.0.0/0→internet_gateway.main|subnet.public_a subnet.public_b ",
			"route_table.private_a": "0.0.0.0/0→nat_gateway.a|subnet.private_a ",
			"route_table.private_b": "0.0.0.0/0→nat_gateway.b|subnet.private_b ",
		}[r.Address]
		if got := route + "|" + subnets; got != want {
			t.Errorf("%s: %s, want %s", r.Address, got, want)
		}
	}
	vpc := np.Resources[0].Spec.(*ec2.VPCSpec)
	if !vpc.EnableDNSHostnames || !vpc.EnableDNSSupport || vpc.CIDR != "10.20.0.0/16" {
		t.Errorf("vpc = %+v", vpc)
	}
}

func TestManagedNetworkCIDRTooSmall(t *testing.T) {
	_, err := Network(managedEnv("none", 2, "10.20.0.0/26"), nil)
	if err == nil || !strings.Contains(err.Error(), "network.cidr") || !strings.Contains(err.Error(), "environments/staging.yaml") {
		t.Fatalf("err = %v, want a network.cidr error naming the file", err)
	}
}

func TestOptionalNetworkResources(t *testing.T) {
	tests := []struct {
		nat      string
		azs      int
		contains []string
		not      []string
	}{
		{nat: "none", azs: 2,
			contains: []string{"eip.nat_a", "nat_gateway.a", "nat_gateway.f", "route_table.private_a", "subnet.public_c", "subnet.private_f"},
			not:      []string{"vpc.main", "subnet.public_a", "route_table.private", "security_group.worker"}},
		{nat: "single", azs: 3,
			contains: []string{"eip.nat_b", "nat_gateway.b", "route_table.private_a", "subnet.public_d"},
			not:      []string{"nat_gateway.a", "eip.nat_a", "route_table.private", "subnet.private_c"}},
		{nat: "per-az", azs: 2,
			contains: []string{"route_table.private", "nat_gateway.c", "route_table.private_c"},
			not:      []string{"nat_gateway.a", "nat_gateway.b", "route_table.private_b"}},
	}
	for _, tc := range tests {
		t.Run(tc.nat, func(t *testing.T) {
			got := map[string]bool{}
			for _, r := range OptionalNetworkResources(managedEnv(tc.nat, tc.azs, "10.20.0.0/16"), nil) {
				if got[r.Address] {
					t.Errorf("%s listed twice", r.Address)
				}
				got[r.Address] = true
			}
			for _, a := range tc.contains {
				if !got[a] {
					t.Errorf("missing %s", a)
				}
			}
			for _, a := range tc.not {
				if got[a] {
					t.Errorf("%s is in the stack, not optional", a)
				}
			}
		})
	}
	existing := managedEnv("none", 2, "")
	existing.Network.Mode = "existing"
	if rs := OptionalNetworkResources(existing, nil); len(rs) != 0 {
		t.Errorf("existing mode: %d optional network resources", len(rs))
	}
}
