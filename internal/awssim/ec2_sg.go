package awssim

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Security groups and network interfaces.

func init() {
	Handle(createSecurityGroup)
	Handle(describeSecurityGroups)
	Handle(deleteSecurityGroup)
	Handle(authorizeSecurityGroupEgress)
	Handle(revokeSecurityGroupEgress)
	Handle(authorizeSecurityGroupIngress)
	Handle(revokeSecurityGroupIngress)
	Handle(describeNetworkInterfaces)
}

func createSecurityGroup(_ context.Context, w *World, in *ec2.CreateSecurityGroupInput) (*ec2.CreateSecurityGroupOutput, error) {
	w.ec2Tick()
	name, err := ec2Need(in.GroupName, "GroupName")
	if err != nil {
		return nil, err
	}
	desc, err := ec2Need(in.Description, "GroupDescription")
	if err != nil {
		return nil, err
	}
	v, err := ec2NeedByID(in.VpcId, "VpcId", w.vpcByID)
	if err != nil {
		return nil, err
	}
	vpcID := v.ID
	if strings.HasPrefix(strings.ToLower(name), "sg-") || name == "default" {
		return nil, Err("InvalidParameterValue", "Group names may not be in the format sg-* and may not be 'default'.")
	}
	s := w.EC2State()
	for _, sg := range s.SecurityGroups {
		if sg.VPCID == vpcID && sg.Name == name {
			return nil, Err("InvalidGroup.Duplicate", fmt.Sprintf("The security group '%s' already exists for VPC '%s'", name, vpcID))
		}
	}
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeSecurityGroup)
	if err != nil {
		return nil, err
	}
	// A new VPC security group allows all egress until told otherwise.
	sg := &SecurityGroup{ID: w.NewID("sg"), Name: name, Description: desc, VPCID: vpcID, Tags: tags, Egress: []string{"-1:0-0:0.0.0.0/0"}}
	s.SecurityGroups[sg.ID] = sg
	return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(sg.ID), SecurityGroupArn: aws.String(w.sgARN(sg.ID)), Tags: ec2Tags(tags)}, nil
}

func (w *World) sgARN(id string) string {
	return "arn:aws:ec2:" + w.Region + ":" + w.Account + ":security-group/" + id
}

func (w *World) sgByID(id string) (*SecurityGroup, error) {
	if sg, ok := w.EC2State().SecurityGroups[id]; ok {
		return sg, nil
	}
	return nil, Err("InvalidGroup.NotFound", fmt.Sprintf("The security group '%s' does not exist", id))
}

// SGRule is a security group rule in ec2_state.go's "proto:from-to:cidr" form
// ("-1:0-0:0.0.0.0/0" is all traffic).
func SGRule(p types.IpPermission, cidr string) string {
	proto := aws.ToString(p.IpProtocol)
	if proto == "all" {
		proto = "-1"
	}
	from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
	if proto == "-1" {
		from, to = 0, 0
	}
	return fmt.Sprintf("%s:%d-%d:%s", proto, from, to, cidr)
}

// SGPermission is the inverse of SGRule.
func SGPermission(rule string) (types.IpPermission, error) {
	parts := strings.SplitN(rule, ":", 3)
	if len(parts) != 3 {
		return types.IpPermission{}, fmt.Errorf("rule %q: want proto:from-to:cidr", rule)
	}
	ports := strings.SplitN(parts[1], "-", 2)
	if len(ports) != 2 {
		return types.IpPermission{}, fmt.Errorf("rule %q: want from-to ports", rule)
	}
	from, err1 := strconv.Atoi(ports[0])
	to, err2 := strconv.Atoi(ports[1])
	if err1 != nil || err2 != nil {
		return types.IpPermission{}, fmt.Errorf("rule %q: ports are not numbers", rule)
	}
	p := types.IpPermission{IpProtocol: aws.String(parts[0]), IpRanges: []types.IpRange{{CidrIp: aws.String(parts[2])}}}
	if parts[0] != "-1" {
		p.FromPort, p.ToPort = aws.Int32(int32(from)), aws.Int32(int32(to))
	}
	return p, nil
}

func sgRulesOf(perms []types.IpPermission) ([]string, error) {
	var out []string
	for _, p := range perms {
		if len(p.IpRanges) == 0 {
			return nil, Err("InvalidParameterValue", "The request must contain an IPv4 CIDR range (this simulation supports CIDR rules only)")
		}
		for _, r := range p.IpRanges {
			c := aws.ToString(r.CidrIp)
			if _, ok := ec2ParseCIDR(c); !ok {
				return nil, Err("InvalidParameterValue", fmt.Sprintf("CIDR block %s is malformed", c))
			}
			out = append(out, SGRule(p, c))
		}
	}
	return out, nil
}

// sgPermissionsOf groups rules back into IpPermissions, one per protocol and
// port range, as DescribeSecurityGroups shows them.
func sgPermissionsOf(rules []string) []types.IpPermission {
	var out []types.IpPermission
	idx := map[string]int{}
	sorted := append([]string(nil), rules...)
	sort.Strings(sorted)
	for _, r := range sorted {
		p, err := SGPermission(r)
		if err != nil {
			continue
		}
		key := r[:strings.LastIndex(r, ":")]
		if i, ok := idx[key]; ok {
			out[i].IpRanges = append(out[i].IpRanges, p.IpRanges...)
			continue
		}
		idx[key] = len(out)
		out = append(out, p)
	}
	return out
}

func (w *World) sgOut(sg *SecurityGroup) types.SecurityGroup {
	return types.SecurityGroup{GroupId: aws.String(sg.ID), GroupName: aws.String(sg.Name), Description: aws.String(sg.Description),
		VpcId: aws.String(sg.VPCID), OwnerId: aws.String(w.Account), SecurityGroupArn: aws.String(w.sgARN(sg.ID)),
		IpPermissions: sgPermissionsOf(sg.Ingress), IpPermissionsEgress: sgPermissionsOf(sg.Egress), Tags: ec2Tags(sg.Tags)}
}

func describeSecurityGroups(_ context.Context, w *World, in *ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error) {
	w.ec2Tick()
	d := ec2Describe[SecurityGroup]{all: w.EC2State().SecurityGroups, ids: in.GroupIds, byID: w.sgByID,
		filters: in.Filters, tags: (*SecurityGroup).tagMap, attr: w.sgFilter}
	if len(in.GroupNames) > 0 {
		d.keep = func(sg *SecurityGroup) bool { return slices.Contains(in.GroupNames, sg.Name) }
	}
	groups, err := describeEC2(d, w.sgOut)
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: groups}, err
}

// sgFilter answers DescribeSecurityGroups' filters.
func (w *World) sgFilter(sg *SecurityGroup, name string) ([]string, bool) {
	switch name {
	case "group-id":
		return ec2One(sg.ID), true
	case "group-name":
		return ec2One(sg.Name), true
	case "vpc-id":
		return ec2One(sg.VPCID), true
	case "description":
		return ec2One(sg.Description), true
	case "owner-id":
		return ec2One(w.Account), true
	case "egress.ip-permission.cidr":
		var v []string
		for _, r := range sg.Egress {
			v = append(v, r[strings.LastIndex(r, ":")+1:])
		}
		return v, true
	}
	return nil, false
}

// deleteSecurityGroup refuses while any network interface uses the group,
// including Fargate task ENIs that linger after their task stopped
// (docs/research/aws-ecs.md §5 and §5.1): DependencyViolation "resource sg-… has
// a dependent object". The default group cannot be deleted at all.
func deleteSecurityGroup(_ context.Context, w *World, in *ec2.DeleteSecurityGroupInput) (*ec2.DeleteSecurityGroupOutput, error) {
	w.ec2Tick()
	s := w.EC2State()
	id := aws.ToString(in.GroupId)
	if id == "" && aws.ToString(in.GroupName) != "" {
		// By name works only for EC2-Classic / default VPC groups.
		return nil, Err("InvalidGroup.NotFound", fmt.Sprintf("The security group '%s' does not exist in default VPC", aws.ToString(in.GroupName)))
	}
	sg, err := w.sgByID(id)
	if err != nil {
		return nil, err
	}
	if sg.Name == "default" {
		return nil, Err("CannotDelete", fmt.Sprintf("the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id))
	}
	for _, e := range s.ENIs {
		if slices.Contains(e.GroupIDs, id) {
			return nil, Err("DependencyViolation", fmt.Sprintf("resource %s has a dependent object", id))
		}
	}
	delete(s.SecurityGroups, id)
	return &ec2.DeleteSecurityGroupOutput{GroupId: aws.String(id), Return: aws.Bool(true)}, nil
}

func authorizeSecurityGroupEgress(_ context.Context, w *World, in *ec2.AuthorizeSecurityGroupEgressInput) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	w.ec2Tick()
	rules, err := w.sgAuthorize(in.GroupId, true, in.IpPermissions)
	return &ec2.AuthorizeSecurityGroupEgressOutput{Return: aws.Bool(true), SecurityGroupRules: rules}, err
}

func revokeSecurityGroupEgress(_ context.Context, w *World, in *ec2.RevokeSecurityGroupEgressInput) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	w.ec2Tick()
	if err := w.sgRevoke(in.GroupId, true, in.IpPermissions); err != nil {
		return nil, err
	}
	return &ec2.RevokeSecurityGroupEgressOutput{Return: aws.Bool(true)}, nil
}

// authorizeSecurityGroupIngress adds inbound rules. deploybot never calls
// it (its worker group is egress only); tests use it to make the drift a
// person adding a rule by hand would make.
func authorizeSecurityGroupIngress(_ context.Context, w *World, in *ec2.AuthorizeSecurityGroupIngressInput) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	w.ec2Tick()
	perms := sgIngressPermissions(in.IpPermissions, in.IpProtocol, in.FromPort, in.ToPort, in.CidrIp)
	rules, err := w.sgAuthorize(in.GroupId, false, perms)
	return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true), SecurityGroupRules: rules}, err
}

// revokeSecurityGroupIngress removes inbound rules. In a non-default VPC a
// rule that does not match an existing one exactly is
// InvalidPermission.NotFound and nothing is revoked (EC2 API reference,
// RevokeSecurityGroupIngress).
func revokeSecurityGroupIngress(_ context.Context, w *World, in *ec2.RevokeSecurityGroupIngressInput) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	w.ec2Tick()
	perms := sgIngressPermissions(in.IpPermissions, in.IpProtocol, in.FromPort, in.ToPort, in.CidrIp)
	if err := w.sgRevoke(in.GroupId, false, perms); err != nil {
		return nil, err
	}
	return &ec2.RevokeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
}

// sgIngressPermissions returns the permissions of an ingress call: its
// IpPermissions, else the flat form (IpProtocol, FromPort, ToPort, CidrIp).
func sgIngressPermissions(perms []types.IpPermission, proto *string, from, to *int32, cidr *string) []types.IpPermission {
	if len(perms) > 0 || proto == nil {
		return perms
	}
	p := types.IpPermission{IpProtocol: proto, FromPort: from, ToPort: to}
	if cidr != nil {
		p.IpRanges = []types.IpRange{{CidrIp: cidr}}
	}
	return []types.IpPermission{p}
}

// sgRuleList finds group groupID (InvalidGroup.NotFound) and returns it
// with its egress or its ingress rules, to change in place.
func (w *World) sgRuleList(groupID *string, egress bool) (*SecurityGroup, *[]string, error) {
	sg, err := w.sgByID(aws.ToString(groupID))
	if err != nil {
		return nil, nil, err
	}
	if egress {
		return sg, &sg.Egress, nil
	}
	return sg, &sg.Ingress, nil
}

// sgAuthorize adds the rules of perms to the group's egress or ingress
// rules, all or none: InvalidPermission.Duplicate when one is there already.
func (w *World) sgAuthorize(groupID *string, egress bool, perms []types.IpPermission) ([]types.SecurityGroupRule, error) {
	sg, have, err := w.sgRuleList(groupID, egress)
	if err != nil {
		return nil, err
	}
	rules, err := sgRulesOf(perms)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if slices.Contains(*have, r) {
			return nil, Err("InvalidPermission.Duplicate", fmt.Sprintf("the specified rule \"peer: %s, %s, ALLOW\" already exists", r[strings.LastIndex(r, ":")+1:], r[:strings.LastIndex(r, ":")]))
		}
	}
	var out []types.SecurityGroupRule
	for _, r := range rules {
		*have = append(*have, r)
		out = append(out, types.SecurityGroupRule{GroupId: aws.String(sg.ID),
			SecurityGroupRuleId: aws.String(w.NewID("sgr")), IsEgress: aws.Bool(egress)})
	}
	return out, nil
}

// sgRevoke removes the rules of perms from the group's egress or ingress
// rules, all or none: InvalidPermission.NotFound when one is not there (a
// non-default VPC).
func (w *World) sgRevoke(groupID *string, egress bool, perms []types.IpPermission) error {
	_, have, err := w.sgRuleList(groupID, egress)
	if err != nil {
		return err
	}
	rules, err := sgRulesOf(perms)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if !slices.Contains(*have, r) {
			return Err("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
		}
	}
	for _, r := range rules {
		for i, h := range *have {
			if h == r {
				*have = append((*have)[:i], (*have)[i+1:]...)
				break
			}
		}
	}
	return nil
}

func describeNetworkInterfaces(_ context.Context, w *World, in *ec2.DescribeNetworkInterfacesInput) (*ec2.DescribeNetworkInterfacesOutput, error) {
	w.ec2Tick()
	enis, err := describeEC2(ec2Describe[ENI]{all: w.EC2State().ENIs, ids: in.NetworkInterfaceIds, byID: w.eniByID,
		filters: in.Filters, attr: eniFilter}, w.eniOut)
	return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: enis}, err
}

func (w *World) eniByID(id string) (*ENI, error) {
	return ec2Find(w.EC2State().ENIs, id, "InvalidNetworkInterfaceID.NotFound", "networkInterface")
}

// eniFilter answers DescribeNetworkInterfaces' filters.
func eniFilter(e *ENI, name string) ([]string, bool) {
	switch name {
	case "network-interface-id":
		return ec2One(e.ID), true
	case "group-id":
		return e.GroupIDs, true
	case "subnet-id":
		return ec2One(e.SubnetID), true
	case "vpc-id":
		return ec2One(e.VPCID), true
	case "status":
		return ec2One(e.Status), true
	case "description":
		return ec2One(e.Description), true
	case "requester-id":
		return ec2One(e.RequesterID), true
	case "interface-type":
		return ec2One(e.InterfaceType), true
	case "association.public-ip":
		return ec2One(e.PublicIP), true
	case "private-ip-address", "addresses.private-ip-address":
		return ec2One(e.PrivateIP), true
	}
	return nil, false
}

func (w *World) eniOut(e *ENI) types.NetworkInterface {
	ni := types.NetworkInterface{NetworkInterfaceId: aws.String(e.ID), SubnetId: aws.String(e.SubnetID), VpcId: aws.String(e.VPCID),
		Description: aws.String(e.Description), RequesterId: aws.String(e.RequesterID), RequesterManaged: aws.Bool(true),
		InterfaceType: types.NetworkInterfaceType(e.InterfaceType), Status: types.NetworkInterfaceStatus(e.Status),
		PrivateIpAddress: aws.String(e.PrivateIP), OwnerId: aws.String(w.Account)}
	if sn, ok := w.EC2State().Subnets[e.SubnetID]; ok {
		ni.AvailabilityZone = aws.String(sn.AZ)
	}
	for _, g := range e.GroupIDs {
		gi := types.GroupIdentifier{GroupId: aws.String(g)}
		if sg, ok := w.EC2State().SecurityGroups[g]; ok {
			gi.GroupName = aws.String(sg.Name)
		}
		ni.Groups = append(ni.Groups, gi)
	}
	if e.PublicIP != "" {
		ni.Association = &types.NetworkInterfaceAssociation{PublicIp: aws.String(e.PublicIP), IpOwnerId: aws.String("amazon")}
	}
	return ni
}
