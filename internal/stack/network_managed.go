package stack

import (
	"fmt"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/resource"
)

// Specs of the managed network's resources (issue 3). The resource kinds in
// internal/resources read them.

// VPCSpec is the managed VPC. DNS support and hostnames are on, so that Cloud
// Map private DNS names resolve inside it.
type VPCSpec struct {
	CIDR               string
	EnableDNSSupport   bool
	EnableDNSHostnames bool
}

// SubnetSpec is one subnet in one availability zone.
type SubnetSpec struct {
	VPC  Ref
	CIDR string
	// ZoneIndex is the subnet's zone among the region's available
	// availability zones sorted by name (0 is the first). Zone names cannot
	// be derived from the region: regions have gaps (us-west-1 has only b
	// and c for most accounts, ap-northeast-1 a, c and d) and names are
	// mapped per account, so the subnet kind resolves the index to a name
	// from DescribeAvailabilityZones when planning (resource.Resolver).
	ZoneIndex int
	// AvailabilityZone is the zone's name: empty as built, set when
	// resolved.
	AvailabilityZone string
	Public           bool
}

// InternetGatewaySpec is the VPC's internet gateway, attached to VPC.
type InternetGatewaySpec struct {
	VPC Ref
}

// RouteSpec is one route: Destination CIDR → Target (an internet gateway or
// NAT gateway id).
type RouteSpec struct {
	Destination string
	Target      Ref
}

// RouteTableSpec is a route table with its routes (besides the VPC's local
// route) and the subnets associated with it. Routes and associations are
// attributes of the route table rather than resources of their own: a moved
// subnet or a default route re-pointed at a new NAT gateway is then an
// in-place update of one resource (Associate/Disassociate, ReplaceRoute),
// shown as a field change, and reading it takes a single
// DescribeRouteTables call.
type RouteTableSpec struct {
	VPC     Ref
	Routes  []RouteSpec
	Subnets []Ref
}

// EIPSpec is an Elastic IP for a NAT gateway (domain vpc).
type EIPSpec struct{}

// NATGatewaySpec is a public NAT gateway in a public subnet with its EIP.
type NATGatewaySpec struct {
	Subnet     Ref
	Allocation Ref
}

// NATPriceNote is the plan note of nat: none (docs/research/aws-ecs.md §7).
const NATPriceNote = "network.nat is none: the worker runs in the public subnets with a public IP " +
	"(assignPublicIp ENABLED) and reaches Prefect Cloud and its image registry through the internet gateway. " +
	"This is the cheap, supported path: a public IPv4 address costs about $3.65/month, a NAT gateway about " +
	"$32.85/month plus $0.045/GB (us-east-1), and Prefect's own ECS guide runs the worker with a public IP. " +
	"Nothing can connect in: the worker's security group allows egress only. Set nat: single or per-az to " +
	"run the worker in private subnets instead."

// managedAZLetter is the letter of the i-th availability zone ("a", "b", ...),
// used in addresses and Name tags. It is the zone's index, not the letter of
// its name: subnet.public_a of a us-west-1 environment is in us-west-1b.
func managedAZLetter(i int) string { return string(rune('a' + i)) }

// buildManagedNetwork builds the managed network of env: a VPC; public and
// private subnets over network.availability_zones zones with CIDRs carved by
// config.SubnetCIDRs; an internet gateway; a public route table (0.0.0.0/0 →
// IGW); a private route table — one with nat single, one per zone with
// per-az, each 0.0.0.0/0 → its NAT gateway (none: local routes only); NAT
// gateways with their EIPs in the public subnets; and the worker security
// group. nat none places the worker in the public subnets with a public IP.
func buildManagedNetwork(env *config.Environment, tags map[string]string) (NetworkPlacement, error) {
	n := env.Network
	public, private, err := config.SubnetCIDRs(n.CIDR, n.AvailabilityZones)
	if err != nil {
		return NetworkPlacement{}, fmt.Errorf("%s: network.cidr: %w", env.File, err)
	}
	name := func(part string) string { return fmt.Sprintf("deploybot-%s-%s", env.Name, part) }
	var rs []resource.Resource
	add := func(address, kind, part string, deps []string, spec any) Ref {
		rs = append(rs, resource.Resource{Address: address, Kind: kind, Name: name(part), DependsOn: deps, Spec: spec, Tags: withName(tags, name(part))})
		return Ref{Address: address, Key: "id"}
	}

	vpc := add("vpc.main", "vpc", "vpc", nil, &VPCSpec{CIDR: n.CIDR, EnableDNSSupport: true, EnableDNSHostnames: true})
	var publicSubnets, privateSubnets []Ref
	var publicAddrs, privateAddrs []string
	for i := range public {
		l := managedAZLetter(i)
		publicAddrs = append(publicAddrs, "subnet.public_"+l)
		publicSubnets = append(publicSubnets, add("subnet.public_"+l, "subnet", "public-"+l, []string{"vpc.main"},
			&SubnetSpec{VPC: vpc, CIDR: public[i], ZoneIndex: i, Public: true}))
		privateAddrs = append(privateAddrs, "subnet.private_"+l)
		privateSubnets = append(privateSubnets, add("subnet.private_"+l, "subnet", "private-"+l, []string{"vpc.main"},
			&SubnetSpec{VPC: vpc, CIDR: private[i], ZoneIndex: i}))
	}
	igw := add("internet_gateway.main", "internet_gateway", "igw", []string{"vpc.main"}, &InternetGatewaySpec{VPC: vpc})
	add("route_table.public", "route_table", "public", append([]string{"vpc.main", "internet_gateway.main"}, publicAddrs...),
		&RouteTableSpec{VPC: vpc, Routes: []RouteSpec{{Destination: "0.0.0.0/0", Target: igw}}, Subnets: publicSubnets})

	// NAT gateways: one in the first zone (single) or one per zone (per-az),
	// each in its zone's public subnet, which routes to the IGW.
	var nats []Ref
	natZones := 0
	switch n.NAT {
	case "single":
		natZones = 1
	case "per-az":
		natZones = len(public)
	}
	for i := 0; i < natZones; i++ {
		l := managedAZLetter(i)
		eip := add("eip.nat_"+l, "eip", "nat-"+l, nil, &EIPSpec{})
		nats = append(nats, add("nat_gateway."+l, "nat_gateway", "nat-"+l,
			[]string{"subnet.public_" + l, "eip.nat_" + l, "internet_gateway.main", "route_table.public"},
			&NATGatewaySpec{Subnet: publicSubnets[i], Allocation: Ref{Address: eip.Address, Key: "id"}}))
	}
	var privateTables []string
	switch {
	case n.NAT == "per-az":
		for i := range private {
			l := managedAZLetter(i)
			addr := "route_table.private_" + l
			privateTables = append(privateTables, addr)
			add(addr, "route_table", "private-"+l, []string{"vpc.main", "nat_gateway." + l, privateAddrs[i]},
				&RouteTableSpec{VPC: vpc, Routes: []RouteSpec{{Destination: "0.0.0.0/0", Target: nats[i]}}, Subnets: privateSubnets[i : i+1]})
		}
	default:
		spec := &RouteTableSpec{VPC: vpc, Subnets: privateSubnets}
		deps := append([]string{"vpc.main"}, privateAddrs...)
		if len(nats) == 1 {
			spec.Routes = []RouteSpec{{Destination: "0.0.0.0/0", Target: nats[0]}}
			deps = append(deps, "nat_gateway.a")
		}
		privateTables = []string{"route_table.private"}
		add("route_table.private", "route_table", "private", deps, spec)
	}

	sg := workerSecurityGroup(env, vpc, tags, []string{"vpc.main"})
	rs = append(rs, sg)

	np := NetworkPlacement{Resources: rs, VPC: vpc, SecurityGroups: []Ref{{Address: sg.Address, Key: "id"}}}
	if n.NAT == "none" {
		np.Subnets = publicSubnets
		np.AssignPublicIP = true
		// The service's tasks need the default route to the IGW in place.
		np.ServiceDependsOn = []string{"route_table.public"}
		np.Notes = []string{NATPriceNote}
	} else {
		np.Subnets = privateSubnets
		// The tasks need their zone's route to an available NAT gateway.
		np.ServiceDependsOn = privateTables
	}
	return np, nil
}

// OptionalNetworkResources are the network resources env's stack could have
// under another network.nat or network.availability_zones setting but does not
// now: every NAT gateway, EIP, subnet and route table of nat single and per-az
// over the most zones config allows (config.MaxAZs), minus the addresses the
// current stack has. The engine reads them with the stack and deletes those
// that exist and are ours, so that turning a NAT off or dropping a zone does
// not leave a billed NAT gateway and its Elastic IP behind (and destroy
// removes them too). Existing mode has none: only the worker security group,
// which the engine already treats as optional.
func OptionalNetworkResources(env *config.Environment, tags map[string]string) []resource.Resource {
	if env == nil || env.Network.Mode == "existing" {
		return nil
	}
	have := map[string]bool{}
	current, err := buildManagedNetwork(env, tags)
	if err != nil {
		return nil
	}
	for _, r := range current.Resources {
		have[r.Address] = true
	}
	var out []resource.Resource
	for _, nat := range []string{"single", "per-az"} {
		full := *env
		full.Network.NAT = nat
		full.Network.AvailabilityZones = config.MaxAZs
		np, err := buildManagedNetwork(&full, tags)
		if err != nil {
			continue
		}
		for _, r := range np.Resources {
			if !have[r.Address] {
				have[r.Address] = true
				out = append(out, r)
			}
		}
	}
	return out
}
