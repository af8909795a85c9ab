package awssim

import (
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func init() {
	RegisterInventory(ec2Inventory)
	registerAdvancer(func(w *World) { w.ec2Tick() })
}

// InternetReach answers whether a task in subnetID reaches the internet
// (Docker Hub, Prefect Cloud), and if not, why: docs/research/aws-ecs.md §7 —
// in a public subnet the task needs a public IP (otherwise
// "ResourceInitializationError … i/o timeout"); in a private one the default
// route must go to a working NAT gateway that itself sits in a subnet routed
// to an attached internet gateway. Callers hold w.Mu.
func (w *World) InternetReach(subnetID string, publicIP bool) (bool, string) {
	w.ec2Tick()
	sn, ok := w.EC2State().Subnets[subnetID]
	if !ok {
		return false, "subnet " + subnetID + " does not exist"
	}
	target, rt := w.defaultRoute(sn)
	n := w.ec2NetState()
	switch {
	case target == "":
		return false, fmt.Sprintf("subnet %s: route table %s has no route to 0.0.0.0/0", subnetID, rt)
	case len(target) > 4 && target[:4] == "igw-":
		if g, ok := n.IGWs[target]; !ok || g.VPCID != sn.VPCID {
			return false, fmt.Sprintf("subnet %s: route table %s sends 0.0.0.0/0 to %s, which is not attached to %s (blackhole)", subnetID, rt, target, sn.VPCID)
		}
		if !publicIP {
			return false, fmt.Sprintf("subnet %s is public (0.0.0.0/0 → %s) but the task has no public IP; enable assignPublicIp or use a private subnet with a NAT gateway", subnetID, target)
		}
		return true, ""
	case len(target) > 4 && target[:4] == "nat-":
		g, ok := n.NATs[target]
		if !ok || g.State != types.NatGatewayStateAvailable {
			state := "missing"
			if ok {
				state = string(g.State)
			}
			return false, fmt.Sprintf("subnet %s: 0.0.0.0/0 → NAT gateway %s, which is %s", subnetID, target, state)
		}
		natSubnet, ok := w.EC2State().Subnets[g.SubnetID]
		if !ok {
			return false, fmt.Sprintf("NAT gateway %s: its subnet %s is gone", target, g.SubnetID)
		}
		up, natRT := w.defaultRoute(natSubnet)
		if ig, ok := n.IGWs[up]; !ok || ig.VPCID != natSubnet.VPCID {
			return false, fmt.Sprintf("NAT gateway %s sits in subnet %s whose route table %s has no 0.0.0.0/0 route to an attached internet gateway", target, g.SubnetID, natRT)
		}
		return true, ""
	}
	return false, fmt.Sprintf("subnet %s: 0.0.0.0/0 → %s does not lead to the internet", subnetID, target)
}

// routeTableOf returns the route table of a subnet: its explicit
// association, else the VPC's main table.
func (w *World) routeTableOf(sn *Subnet) *RouteTable {
	n := w.ec2NetState()
	var main *RouteTable
	for _, id := range sortedKeys(n.RouteTables) {
		rt := n.RouteTables[id]
		if rt.VPCID != sn.VPCID {
			continue
		}
		for _, s := range rt.Associations {
			if s == sn.ID {
				return rt
			}
		}
		if rt.Main {
			main = rt
		}
	}
	return main
}

// defaultRoute returns the target of the subnet's 0.0.0.0/0 route ("" when
// none) and the route table's id.
func (w *World) defaultRoute(sn *Subnet) (target, rtID string) {
	rt := w.routeTableOf(sn)
	if rt == nil {
		return "", "(none)"
	}
	for _, r := range rt.Routes {
		if r.Destination == "0.0.0.0/0" {
			return r.Target, rt.ID
		}
	}
	return "", rt.ID
}

// SeedExistingVPC creates, outside any API call, a VPC of the kind an
// existing-mode environment points at: azs subnets carved from cidr, one
// per AZ. public: an attached internet gateway and a main route table with
// 0.0.0.0/0 → it (tasks need assign_public_ip). Not public: no route out.
// The VPC is untagged, like one a user made by hand.
func (w *World) SeedExistingVPC(cidr string, azs int, public bool) (vpcID string, subnetIDs []string) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	v := w.addVPC(cidr, map[string]string{"Name": "existing"})
	v.EnableDNSHosts = true
	p := netip.MustParsePrefix(cidr)
	bits := p.Bits() + 4 // up to 16 subnets
	zones := w.azsOf()
	s := w.EC2State()
	for i := 0; i < azs; i++ {
		sub := ec2Carve(p, bits, i)
		sn := &Subnet{ID: w.NewID("subnet"), VPCID: v.ID, CIDR: sub.String(), AZ: zones[i%len(zones)], State: "available",
			MapPublicIPOnLaunch: public, Tags: map[string]string{"Name": fmt.Sprintf("existing-%d", i)}}
		s.Subnets[sn.ID] = sn
		subnetIDs = append(subnetIDs, sn.ID)
	}
	if public {
		n := w.ec2NetState()
		g := &InternetGateway{ID: w.NewID("igw"), VPCID: v.ID, Tags: map[string]string{}}
		n.IGWs[g.ID] = g
		for _, rt := range n.RouteTables {
			if rt.VPCID == v.ID && rt.Main {
				rt.Routes = append(rt.Routes, Route{Destination: "0.0.0.0/0", Target: g.ID})
			}
		}
	}
	return v.ID, subnetIDs
}

// SeedDefaultVPC creates, outside any API call, the default VPC an account
// comes with (https://docs.aws.amazon.com/vpc/latest/userguide/default-vpc.html):
// 172.31.0.0/16, an internet gateway, and one default subnet (a /20 that
// assigns public IPs) per Availability Zone. Accounts made by awssim.New
// have none, as when it was deleted; Prefect's ECS worker uses it when a
// flow run's job has neither vpc_id nor network_configuration
// (docs/research/prefect-flow-runs.md §A.6).
func (w *World) SeedDefaultVPC() (vpcID string, subnetIDs []string) {
	w.Mu.Lock()
	zones := w.azsOf()
	w.Mu.Unlock()
	vpcID, subnetIDs = w.SeedExistingVPC("172.31.0.0/16", len(zones), true)
	w.Mu.Lock()
	defer w.Mu.Unlock()
	s := w.EC2State()
	s.VPCs[vpcID].IsDefault = true
	s.VPCs[vpcID].Tags = map[string]string{}
	for i, id := range subnetIDs {
		sn := s.Subnets[id]
		sn.CIDR = ec2Carve(netip.MustParsePrefix("172.31.0.0/16"), 20, i).String()
		sn.Tags = map[string]string{}
	}
	return vpcID, subnetIDs
}

// SeedSecurityGroup creates, outside any API call, a security group in vpcID
// with one rule: all egress to anywhere (what a worker's group has).
func (w *World) SeedSecurityGroup(vpcID, name string) string {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	id := w.NewID("sg")
	w.EC2State().SecurityGroups[id] = &SecurityGroup{ID: id, Name: name, VPCID: vpcID, Egress: []string{"-1:0-0:0.0.0.0/0"}, Tags: map[string]string{}}
	return id
}

// ec2Carve returns the i-th sub-prefix of length bits inside p.
func ec2Carve(p netip.Prefix, bits, i int) netip.Prefix {
	a := p.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	base += uint32(i) << (32 - bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)}), bits)
}

// ec2Inventory lists the EC2 resources a destroy must leave behind none of
// (ENIs are listed too: a lingering one is not an orphan of ours, but a test
// may want to see it). The default route table and security group of a VPC
// go with it and are not listed.
func ec2Inventory(w *World) []Item {
	w.ec2Tick()
	s := w.EC2State()
	n := w.ec2NetState()
	var items []Item
	add := func(typ, id string, tags map[string]string) {
		items = append(items, Item{Service: "ec2", Type: typ, ID: id, Tags: copyTags(tags)})
	}
	for _, id := range sortedKeys(s.VPCs) {
		add("vpc", id, s.VPCs[id].Tags)
	}
	for _, id := range sortedKeys(s.Subnets) {
		add("subnet", id, s.Subnets[id].Tags)
	}
	for _, id := range sortedKeys(s.SecurityGroups) {
		if sg := s.SecurityGroups[id]; sg.Name != "default" {
			add("security-group", id, sg.Tags)
		}
	}
	for _, id := range sortedKeys(s.ENIs) {
		add("network-interface", id, nil)
	}
	for _, id := range sortedKeys(n.IGWs) {
		add("internet-gateway", id, n.IGWs[id].Tags)
	}
	for _, id := range sortedKeys(n.RouteTables) {
		if rt := n.RouteTables[id]; !rt.Main {
			add("route-table", id, rt.Tags)
		}
	}
	for _, id := range sortedKeys(n.Addresses) {
		add("elastic-ip", id, n.Addresses[id].Tags)
	}
	for _, id := range sortedKeys(n.NATs) {
		// A deleted NAT gateway is still described for a while but is gone.
		if g := n.NATs[id]; g.State != types.NatGatewayStateDeleted && g.State != types.NatGatewayStateFailed {
			add("nat-gateway", id, g.Tags)
		}
	}
	return items
}
