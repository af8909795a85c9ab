package stack

import (
	"fmt"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/resource"
)

// netShape is what shapes a managed network: its CIDR, how many zones it
// spans and its NAT setting. The stack builds the file's shape, and the
// others' for the resources they would have (OptionalNetworkResources).
type netShape struct {
	CIDR string
	AZs  int
	NAT  string
}

func shapeOf(env *config.Environment) netShape {
	return netShape{CIDR: env.Network.CIDR, AZs: env.Network.AvailabilityZones, NAT: env.Network.NAT}
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

// managedNetwork builds the managed network of env in the given shape: a
// VPC; public and private subnets over shape.AZs zones with CIDRs carved by
// config.SubnetCIDRs; an internet gateway; a public route table (0.0.0.0/0
// → IGW); a private route table — one with nat single, one per zone with
// per-az, each 0.0.0.0/0 → its NAT gateway (none: local routes only); NAT
// gateways with their EIPs in the public subnets; and the worker security
// group. nat none places the worker in the public subnets with a public IP.
func managedNetwork(env *config.Environment, n netShape, tags map[string]string) (NetworkPlacement, error) {
	public, private, err := config.SubnetCIDRs(n.CIDR, n.AZs)
	if err != nil {
		return NetworkPlacement{}, fmt.Errorf("%s: network.cidr: %w", env.File, err)
	}
	name := func(part string) string { return fmt.Sprintf("deploybot-%s-%s", env.Name, part) }
	var rs []resource.Resource
	add := func(r resource.Resource) resource.Ref {
		rs = append(rs, r)
		return resource.Ref{Address: r.Address, Key: "id"}
	}
	zones := ec2.ZoneRequest{Region: env.AWS.Region, Asked: env.Network.AvailabilityZones,
		Field: config.Problem{File: env.File, Line: env.Lines["network.availability_zones"], Field: "network.availability_zones"}}

	vpc := add(ec2.VPC.New("vpc.main", name("vpc"), nil, &ec2.VPCSpec{CIDR: n.CIDR, EnableDNSSupport: true, EnableDNSHostnames: true}, withName(tags, name("vpc"))))
	var publicSubnets, privateSubnets []resource.Ref
	var publicAddrs, privateAddrs []string
	for i := range public {
		l := managedAZLetter(i)
		publicAddrs = append(publicAddrs, "subnet.public_"+l)
		publicSubnets = append(publicSubnets, add(ec2.Subnet.New("subnet.public_"+l, name("public-"+l), []string{"vpc.main"},
			&ec2.SubnetSpec{VPC: vpc, CIDR: public[i], ZoneIndex: i, Public: true, Zones: zones}, withName(tags, name("public-"+l)))))
		privateAddrs = append(privateAddrs, "subnet.private_"+l)
		privateSubnets = append(privateSubnets, add(ec2.Subnet.New("subnet.private_"+l, name("private-"+l), []string{"vpc.main"},
			&ec2.SubnetSpec{VPC: vpc, CIDR: private[i], ZoneIndex: i, Zones: zones}, withName(tags, name("private-"+l)))))
	}
	igw := add(ec2.InternetGateway.New("internet_gateway.main", name("igw"), []string{"vpc.main"}, &ec2.InternetGatewaySpec{VPC: vpc}, withName(tags, name("igw"))))
	add(ec2.RouteTable.New("route_table.public", name("public"), append([]string{"vpc.main", "internet_gateway.main"}, publicAddrs...),
		&ec2.RouteTableSpec{VPC: vpc, Routes: []ec2.RouteSpec{{Destination: "0.0.0.0/0", Target: igw}}, Subnets: publicSubnets}, withName(tags, name("public"))))

	// NAT gateways: one in the first zone (single) or one per zone (per-az),
	// each in its zone's public subnet, which routes to the IGW.
	var nats []resource.Ref
	natZones := 0
	switch n.NAT {
	case "single":
		natZones = 1
	case "per-az":
		natZones = len(public)
	}
	for i := 0; i < natZones; i++ {
		l := managedAZLetter(i)
		eip := add(ec2.EIP.New("eip.nat_"+l, name("nat-"+l), nil, &ec2.EIPSpec{}, withName(tags, name("nat-"+l))))
		nats = append(nats, add(ec2.NATGateway.New("nat_gateway."+l, name("nat-"+l),
			[]string{"subnet.public_" + l, "eip.nat_" + l, "internet_gateway.main", "route_table.public"},
			&ec2.NATGatewaySpec{Subnet: publicSubnets[i], Allocation: eip}, withName(tags, name("nat-"+l)))))
	}
	var privateTables []string
	switch {
	case n.NAT == "per-az":
		for i := range private {
			l := managedAZLetter(i)
			addr := "route_table.private_" + l
			privateTables = append(privateTables, addr)
			add(ec2.RouteTable.New(addr, name("private-"+l), []string{"vpc.main", "nat_gateway." + l, privateAddrs[i]},
				&ec2.RouteTableSpec{VPC: vpc, Routes: []ec2.RouteSpec{{Destination: "0.0.0.0/0", Target: nats[i]}}, Subnets: privateSubnets[i : i+1]}, withName(tags, name("private-"+l))))
		}
	default:
		spec := &ec2.RouteTableSpec{VPC: vpc, Subnets: privateSubnets}
		deps := append([]string{"vpc.main"}, privateAddrs...)
		if len(nats) == 1 {
			spec.Routes = []ec2.RouteSpec{{Destination: "0.0.0.0/0", Target: nats[0]}}
			deps = append(deps, "nat_gateway.a")
		}
		privateTables = []string{"route_table.private"}
		add(ec2.RouteTable.New("route_table.private", name("private"), deps, spec, withName(tags, name("private"))))
	}

	sg := workerSecurityGroup(env.Name, vpc, tags, []string{"vpc.main"})
	rs = append(rs, sg)

	np := NetworkPlacement{Resources: rs, VPC: vpc, SecurityGroups: []resource.Ref{{Address: sg.Address, Key: "id"}}}
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
	current, err := managedNetwork(env, shapeOf(env), tags)
	if err != nil {
		return nil
	}
	for _, r := range current.Resources {
		have[r.Address] = true
	}
	var out []resource.Resource
	for _, nat := range []string{"single", "per-az"} {
		np, err := managedNetwork(env, netShape{CIDR: env.Network.CIDR, AZs: config.MaxAZs, NAT: nat}, tags)
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
