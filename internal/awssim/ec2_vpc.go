package awssim

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// VPCs, subnets, availability zones and tags.

func init() {
	Handle(createVpc)
	Handle(describeVpcs)
	Handle(deleteVpc)
	Handle(modifyVpcAttribute)
	Handle(describeVpcAttribute)
	Handle(createSubnet)
	Handle(describeSubnets)
	Handle(deleteSubnet)
	Handle(modifySubnetAttribute)
	Handle(describeAvailabilityZones)
	Handle(createTags)
	Handle(deleteTags)
}

func createVpc(_ context.Context, w *World, in *ec2.CreateVpcInput) (*ec2.CreateVpcOutput, error) {
	w.ec2Tick()
	cidr, err := ec2Need(in.CidrBlock, "CidrBlock")
	if err != nil {
		return nil, err
	}
	p, ok := ec2ParseCIDR(cidr)
	if !ok {
		return nil, Err("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", cidr))
	}
	if p.Bits() < 16 || p.Bits() > 28 {
		return nil, Err("InvalidVpc.Range", fmt.Sprintf("The CIDR '%s' is invalid.", cidr))
	}
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeVpc)
	if err != nil {
		return nil, err
	}
	v := w.addVPC(cidr, tags)
	return &ec2.CreateVpcOutput{Vpc: w.vpcOut(v)}, nil
}

// addVPC creates a VPC with what EC2 creates along with it: the main route
// table (local route only) and the default security group (all egress).
// DNS support is on and DNS hostnames off, EC2's defaults for a non-default
// VPC. Callers hold w.Mu.
func (w *World) addVPC(cidr string, tags map[string]string) *VPC {
	s := w.EC2State()
	n := w.ec2NetState()
	v := &VPC{ID: w.NewID("vpc"), CIDR: cidr, State: "available", Tags: tags, EnableDNSSupport: true}
	s.VPCs[v.ID] = v
	rt := &RouteTable{ID: w.NewID("rtb"), VPCID: v.ID, Main: true, MainAssocID: w.NewID("rtbassoc"),
		Routes: []Route{{Destination: cidr, Target: "local"}}, Associations: map[string]string{}, Tags: map[string]string{}}
	n.RouteTables[rt.ID] = rt
	sg := &SecurityGroup{ID: w.NewID("sg"), Name: "default", Description: "default VPC security group", VPCID: v.ID,
		Tags: map[string]string{}, Egress: []string{"-1:0-0:0.0.0.0/0"}}
	s.SecurityGroups[sg.ID] = sg
	return v
}

func (w *World) vpcOut(v *VPC) *types.Vpc {
	return &types.Vpc{VpcId: aws.String(v.ID), CidrBlock: aws.String(v.CIDR), State: types.VpcState(v.State),
		IsDefault: aws.Bool(v.IsDefault), OwnerId: aws.String(w.Account), InstanceTenancy: types.TenancyDefault,
		DhcpOptionsId: aws.String("dopt-00000000000000001"), Tags: ec2Tags(v.Tags),
		CidrBlockAssociationSet: []types.VpcCidrBlockAssociation{{CidrBlock: aws.String(v.CIDR),
			AssociationId:  aws.String("vpc-cidr-assoc-" + v.ID[4:]),
			CidrBlockState: &types.VpcCidrBlockState{State: types.VpcCidrBlockStateCodeAssociated}}}}
}

func (w *World) vpcByID(id string) (*VPC, error) {
	return ec2Find(w.EC2State().VPCs, id, "InvalidVpcID.NotFound", "vpc")
}

func describeVpcs(_ context.Context, w *World, in *ec2.DescribeVpcsInput) (*ec2.DescribeVpcsOutput, error) {
	w.ec2Tick()
	vpcs, err := describeEC2(ec2Describe[VPC]{all: w.EC2State().VPCs, ids: in.VpcIds, byID: w.vpcByID,
		filters: in.Filters, tags: (*VPC).tagMap, attr: w.vpcFilter},
		func(v *VPC) types.Vpc { return *w.vpcOut(v) })
	return &ec2.DescribeVpcsOutput{Vpcs: vpcs}, err
}

// vpcFilter answers DescribeVpcs' filters.
func (w *World) vpcFilter(v *VPC, name string) ([]string, bool) {
	switch name {
	case "vpc-id":
		return ec2One(v.ID), true
	case "cidr", "cidr-block-association.cidr-block":
		return ec2One(v.CIDR), true
	case "state":
		return ec2One(v.State), true
	case "is-default", "isDefault":
		return ec2One(ec2BoolStr(v.IsDefault)), true
	case "owner-id":
		return ec2One(w.Account), true
	}
	return nil, false
}

// deleteVpc refuses while anything is still in the VPC (docs/research/aws-ecs.md
// §5: DeleteVpc → DependencyViolation): subnets, ENIs, NAT gateways, security
// groups other than default, route tables other than the main one, and an
// attached internet gateway.
func deleteVpc(_ context.Context, w *World, in *ec2.DeleteVpcInput) (*ec2.DeleteVpcOutput, error) {
	w.ec2Tick()
	v, err := ec2NeedByID(in.VpcId, "VpcId", w.vpcByID)
	if err != nil {
		return nil, err
	}
	id := v.ID
	if dep := w.vpcDependency(id); dep != "" {
		return nil, ec2DependencyViolation("vpc", id)
	}
	s := w.EC2State()
	n := w.ec2NetState()
	for sgID, sg := range s.SecurityGroups {
		if sg.VPCID == id {
			delete(s.SecurityGroups, sgID)
		}
	}
	for rtID, rt := range n.RouteTables {
		if rt.VPCID == id {
			delete(n.RouteTables, rtID)
		}
	}
	delete(s.VPCs, id)
	return &ec2.DeleteVpcOutput{}, nil
}

// vpcDependency names the first thing that keeps VPC id from being deleted,
// or "".
func (w *World) vpcDependency(id string) string {
	s := w.EC2State()
	n := w.ec2NetState()
	for _, sn := range sortedKeys(s.Subnets) {
		if s.Subnets[sn].VPCID == id {
			return sn
		}
	}
	for _, e := range sortedKeys(s.ENIs) {
		if s.ENIs[e].VPCID == id {
			return e
		}
	}
	for _, g := range sortedKeys(n.NATs) {
		if nat := n.NATs[g]; nat.VPCID == id && nat.State != types.NatGatewayStateDeleted && nat.State != types.NatGatewayStateFailed {
			return g
		}
	}
	for _, g := range sortedKeys(s.SecurityGroups) {
		if sg := s.SecurityGroups[g]; sg.VPCID == id && sg.Name != "default" {
			return g
		}
	}
	for _, r := range sortedKeys(n.RouteTables) {
		if rt := n.RouteTables[r]; rt.VPCID == id && !rt.Main {
			return r
		}
	}
	for _, g := range sortedKeys(n.IGWs) {
		if n.IGWs[g].VPCID == id {
			return g
		}
	}
	return ""
}

func modifyVpcAttribute(_ context.Context, w *World, in *ec2.ModifyVpcAttributeInput) (*ec2.ModifyVpcAttributeOutput, error) {
	w.ec2Tick()
	v, err := ec2NeedByID(in.VpcId, "VpcId", w.vpcByID)
	if err != nil {
		return nil, err
	}
	set := 0
	for _, a := range []*types.AttributeBooleanValue{in.EnableDnsSupport, in.EnableDnsHostnames, in.EnableNetworkAddressUsageMetrics} {
		if a != nil {
			set++
		}
	}
	// EC2 accepts exactly one attribute per call.
	if set != 1 {
		return nil, Err("InvalidParameterCombination", "Fields for multiple attribute types specified: enableDnsSupport, enableDnsHostnames")
	}
	switch {
	case in.EnableDnsSupport != nil:
		v.EnableDNSSupport = aws.ToBool(in.EnableDnsSupport.Value)
	case in.EnableDnsHostnames != nil:
		if aws.ToBool(in.EnableDnsHostnames.Value) && !v.EnableDNSSupport {
			return nil, Err("InvalidParameterValue", "Cannot enable DNS hostnames without DNS support")
		}
		v.EnableDNSHosts = aws.ToBool(in.EnableDnsHostnames.Value)
	}
	return &ec2.ModifyVpcAttributeOutput{}, nil
}

func describeVpcAttribute(_ context.Context, w *World, in *ec2.DescribeVpcAttributeInput) (*ec2.DescribeVpcAttributeOutput, error) {
	w.ec2Tick()
	v, err := ec2NeedByID(in.VpcId, "VpcId", w.vpcByID)
	if err != nil {
		return nil, err
	}
	out := &ec2.DescribeVpcAttributeOutput{VpcId: aws.String(v.ID)}
	switch in.Attribute {
	case types.VpcAttributeNameEnableDnsSupport:
		out.EnableDnsSupport = &types.AttributeBooleanValue{Value: aws.Bool(v.EnableDNSSupport)}
	case types.VpcAttributeNameEnableDnsHostnames:
		out.EnableDnsHostnames = &types.AttributeBooleanValue{Value: aws.Bool(v.EnableDNSHosts)}
	case types.VpcAttributeNameEnableNetworkAddressUsageMetrics:
		out.EnableNetworkAddressUsageMetrics = &types.AttributeBooleanValue{Value: aws.Bool(false)}
	default:
		return nil, Err("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter attribute is invalid.", in.Attribute))
	}
	return out, nil
}

// createSubnet checks what EC2 checks: the CIDR is inside the VPC's
// (InvalidSubnet.Range) and overlaps no other subnet of it
// (InvalidSubnet.Conflict); the AZ is one of the region's.
func createSubnet(_ context.Context, w *World, in *ec2.CreateSubnetInput) (*ec2.CreateSubnetOutput, error) {
	w.ec2Tick()
	vpcID, err := ec2Need(in.VpcId, "VpcId")
	if err != nil {
		return nil, err
	}
	cidr, err := ec2Need(in.CidrBlock, "CidrBlock")
	if err != nil {
		return nil, err
	}
	v, err := w.vpcByID(vpcID)
	if err != nil {
		return nil, err
	}
	p, ok := ec2ParseCIDR(cidr)
	if !ok {
		return nil, Err("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", cidr))
	}
	vp, _ := ec2ParseCIDR(v.CIDR)
	if !ec2CidrContains(vp, p) || p.Bits() > 28 {
		return nil, Err("InvalidSubnet.Range", fmt.Sprintf("The CIDR '%s' is invalid.", cidr))
	}
	s := w.EC2State()
	for _, id := range sortedKeys(s.Subnets) {
		o := s.Subnets[id]
		if o.VPCID != vpcID {
			continue
		}
		if op, _ := ec2ParseCIDR(o.CIDR); op.Overlaps(p) {
			return nil, Err("InvalidSubnet.Conflict", fmt.Sprintf("The CIDR '%s' conflicts with another subnet", cidr))
		}
	}
	azs := w.azsOf()
	az := aws.ToString(in.AvailabilityZone)
	if az == "" {
		// EC2 picks an AZ; deterministically, the least used one.
		az = azs[len(s.Subnets)%len(azs)]
	} else if !slices.Contains(azs, az) {
		return nil, Err("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: %s.", az, strings.Join(azs, ", ")))
	}
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeSubnet)
	if err != nil {
		return nil, err
	}
	sn := &Subnet{ID: w.NewID("subnet"), VPCID: vpcID, CIDR: cidr, AZ: az, State: "available", Tags: tags}
	s.Subnets[sn.ID] = sn
	return &ec2.CreateSubnetOutput{Subnet: w.subnetOut(sn)}, nil
}

func (w *World) subnetOut(sn *Subnet) *types.Subnet {
	p, _ := ec2ParseCIDR(sn.CIDR)
	free := int32(1<<(32-p.Bits())) - 5 // EC2 reserves 5 addresses per subnet
	for _, e := range w.EC2State().ENIs {
		if e.SubnetID == sn.ID {
			free--
		}
	}
	return &types.Subnet{SubnetId: aws.String(sn.ID), VpcId: aws.String(sn.VPCID), CidrBlock: aws.String(sn.CIDR),
		AvailabilityZone: aws.String(sn.AZ), AvailabilityZoneId: aws.String(w.azID(sn.AZ)), State: types.SubnetState(sn.State),
		MapPublicIpOnLaunch: aws.Bool(sn.MapPublicIPOnLaunch), DefaultForAz: aws.Bool(false), AvailableIpAddressCount: aws.Int32(free),
		OwnerId:   aws.String(w.Account),
		SubnetArn: aws.String("arn:aws:ec2:" + w.Region + ":" + w.Account + ":subnet/" + sn.ID), Tags: ec2Tags(sn.Tags)}
}

func (w *World) azID(az string) string {
	for i, a := range w.azsOf() {
		if a == az {
			return fmt.Sprintf("%s-az%d", ec2RegionShort(w.Region), i+1)
		}
	}
	return ""
}

func ec2RegionShort(region string) string {
	// us-east-1 → use1, eu-west-2 → euw2: AWS's zone-id prefix.
	var b []byte
	parts := strings.Split(region, "-")
	if len(parts) == 3 {
		b = append(b, parts[0]...)
		b = append(b, parts[1][0])
		b = append(b, parts[2]...)
		return string(b)
	}
	return region
}

func (w *World) subnetByID(id string) (*Subnet, error) {
	return ec2Find(w.EC2State().Subnets, id, "InvalidSubnetID.NotFound", "subnet")
}

func describeSubnets(_ context.Context, w *World, in *ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
	w.ec2Tick()
	subnets, err := describeEC2(ec2Describe[Subnet]{all: w.EC2State().Subnets, ids: in.SubnetIds, byID: w.subnetByID,
		filters: in.Filters, tags: (*Subnet).tagMap, attr: w.subnetFilter},
		func(sn *Subnet) types.Subnet { return *w.subnetOut(sn) })
	return &ec2.DescribeSubnetsOutput{Subnets: subnets}, err
}

// subnetFilter answers DescribeSubnets' filters.
func (w *World) subnetFilter(sn *Subnet, name string) ([]string, bool) {
	switch name {
	case "subnet-id":
		return ec2One(sn.ID), true
	case "vpc-id":
		return ec2One(sn.VPCID), true
	case "cidr-block", "cidr", "cidrBlock":
		return ec2One(sn.CIDR), true
	case "availability-zone", "availabilityZone":
		return ec2One(sn.AZ), true
	case "availability-zone-id":
		return ec2One(w.azID(sn.AZ)), true
	case "state":
		return ec2One(sn.State), true
	case "map-public-ip-on-launch":
		return ec2One(ec2BoolStr(sn.MapPublicIPOnLaunch)), true
	case "default-for-az":
		return ec2One("false"), true
	case "owner-id":
		return ec2One(w.Account), true
	}
	return nil, false
}

// deleteSubnet refuses while ENIs (including lingering Fargate task ENIs,
// docs/research/aws-ecs.md §5.1) or NAT gateways are in the subnet.
func deleteSubnet(_ context.Context, w *World, in *ec2.DeleteSubnetInput) (*ec2.DeleteSubnetOutput, error) {
	w.ec2Tick()
	sn, err := ec2NeedByID(in.SubnetId, "SubnetId", w.subnetByID)
	if err != nil {
		return nil, err
	}
	id := sn.ID
	s := w.EC2State()
	for _, e := range s.ENIs {
		if e.SubnetID == id {
			return nil, ec2DependencyViolation("subnet", id)
		}
	}
	for _, g := range w.ec2NetState().NATs {
		if g.SubnetID == id && (g.State == types.NatGatewayStatePending || g.State == types.NatGatewayStateAvailable || g.State == types.NatGatewayStateDeleting) {
			return nil, ec2DependencyViolation("subnet", id)
		}
	}
	// Explicit route table associations go with the subnet, as in EC2.
	for _, rt := range w.ec2NetState().RouteTables {
		for a, sn := range rt.Associations {
			if sn == id {
				delete(rt.Associations, a)
			}
		}
	}
	delete(s.Subnets, id)
	return &ec2.DeleteSubnetOutput{}, nil
}

func modifySubnetAttribute(_ context.Context, w *World, in *ec2.ModifySubnetAttributeInput) (*ec2.ModifySubnetAttributeOutput, error) {
	w.ec2Tick()
	sn, err := ec2NeedByID(in.SubnetId, "SubnetId", w.subnetByID)
	if err != nil {
		return nil, err
	}
	if in.MapPublicIpOnLaunch != nil {
		sn.MapPublicIPOnLaunch = aws.ToBool(in.MapPublicIpOnLaunch.Value)
	}
	return &ec2.ModifySubnetAttributeOutput{}, nil
}

func describeAvailabilityZones(_ context.Context, w *World, in *ec2.DescribeAvailabilityZonesInput) (*ec2.DescribeAvailabilityZonesOutput, error) {
	w.ec2Tick()
	zones := map[string]*string{}
	for _, az := range w.azsOf() {
		zones[az] = aws.String(az)
	}
	// ZoneNames only select here: an unknown name is not an error.
	out, err := describeEC2(ec2Describe[string]{all: zones, ids: in.ZoneNames, filters: in.Filters, attr: w.zoneFilter},
		func(az *string) types.AvailabilityZone {
			return types.AvailabilityZone{ZoneName: aws.String(*az),
				ZoneId: aws.String(w.azID(*az)), RegionName: aws.String(w.Region), State: types.AvailabilityZoneStateAvailable,
				ZoneType: aws.String("availability-zone"), OptInStatus: types.AvailabilityZoneOptInStatusOptInNotRequired,
				GroupName: aws.String(w.Region), NetworkBorderGroup: aws.String(w.Region)}
		})
	return &ec2.DescribeAvailabilityZonesOutput{AvailabilityZones: out}, err
}

// zoneFilter answers DescribeAvailabilityZones' filters.
func (w *World) zoneFilter(az *string, name string) ([]string, bool) {
	switch name {
	case "zone-name":
		return ec2One(*az), true
	case "zone-id":
		return ec2One(w.azID(*az)), true
	case "state":
		return ec2One("available"), true
	case "region-name":
		return ec2One(w.Region), true
	case "zone-type":
		return ec2One("availability-zone"), true
	case "opt-in-status":
		return ec2One("opt-in-not-required"), true
	}
	return nil, false
}

func createTags(_ context.Context, w *World, in *ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error) {
	w.ec2Tick()
	maps, err := w.ec2TagMapsOf(in.Resources)
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		for _, t := range in.Tags {
			m[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

func deleteTags(_ context.Context, w *World, in *ec2.DeleteTagsInput) (*ec2.DeleteTagsOutput, error) {
	w.ec2Tick()
	maps, err := w.ec2TagMapsOf(in.Resources)
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		for _, t := range in.Tags {
			k := aws.ToString(t.Key)
			// A tag with a value is deleted only if the value matches.
			if t.Value != nil && m[k] != *t.Value {
				continue
			}
			delete(m, k)
		}
	}
	return &ec2.DeleteTagsOutput{}, nil
}
