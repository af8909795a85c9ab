package resources

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// SecurityGroupKind is the worker security group (egress only), in the
// managed VPC or in the VPC an existing-mode file names. Name, description
// and VPC cannot change in place (EC2 has no API for it); egress rules and
// tags can. Nothing may connect in (docs/design.md: "worker security group
// (egress only)"), so the desired ingress is none: an inbound rule someone
// adds by hand shows in the plan and the apply revokes it.
type SecurityGroupKind struct{}

func (SecurityGroupKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := netMustSpec[stack.SecurityGroupSpec](r)
	a := resource.Attrs{
		"name":        {Value: s.Name, ForceNew: true},
		"description": {Value: s.Description, ForceNew: true},
		"vpc_id":      {Value: s.VPC.Resolve(refs), ForceNew: true},
		"egress":      {Value: sgRulesJSON(s.Egress)},
		"ingress":     {Value: netJSONList(nil)},
	}
	return netTagAttrs(a, r.Tags)
}

func (SecurityGroupKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := netSpec[stack.SecurityGroupSpec](r)
	if err != nil {
		return nil, err
	}
	filters := []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{s.Name}}}
	if s.VPC.Address == "" && s.VPC.Literal != "" {
		filters = append(filters, ec2types.Filter{Name: aws.String("vpc-id"), Values: []string{s.VPC.Literal}})
	}
	out, err := x.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("DescribeSecurityGroups %s: %w", s.Name, err)
	}
	sg, ours, found := netPick(r, out.SecurityGroups,
		func(g ec2types.SecurityGroup) string { return aws.ToString(g.GroupId) },
		func(g ec2types.SecurityGroup) map[string]string { return netTagMap(g.Tags) })
	if !found {
		return nil, nil
	}
	// In a managed VPC (not known before it exists) a group of the same name
	// in some other VPC does not block us; in a given VPC it does, since
	// CreateSecurityGroup would fail with InvalidGroup.Duplicate.
	if !ours && s.VPC.Address != "" {
		return nil, nil
	}
	return sgLive(sg, ours), nil
}

func sgLive(sg ec2types.SecurityGroup, ours bool) *resource.Live {
	tags := netTagMap(sg.Tags)
	a := resource.Attrs{
		"name":        {Value: aws.ToString(sg.GroupName), ForceNew: true},
		"description": {Value: aws.ToString(sg.Description), ForceNew: true},
		"vpc_id":      {Value: aws.ToString(sg.VpcId), ForceNew: true},
		"egress":      {Value: sgRulesJSON(sgRules(sg.IpPermissionsEgress))},
		// From the same DescribeSecurityGroups answer: no extra call.
		"ingress": {Value: netJSONList(sgIngressRules(sg.IpPermissions))},
	}
	netTagAttrs(a, tags)
	id := aws.ToString(sg.GroupId)
	return &resource.Live{ID: id, Ours: ours, Attrs: a, Raw: sg,
		Outputs: resource.Outputs{"id": id, "arn": aws.ToString(sg.SecurityGroupArn), "vpc_id": aws.ToString(sg.VpcId), "name": aws.ToString(sg.GroupName)}}
}

func (k SecurityGroupKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := netSpec[stack.SecurityGroupSpec](r)
	if err != nil {
		return nil, err
	}
	vpc := s.VPC.Resolve(refs)
	if netUnknown(vpc) {
		return nil, fmt.Errorf("create security group %s: the VPC id is not known", s.Name)
	}
	out, err := x.AWS.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(s.Name), Description: aws.String(s.Description), VpcId: aws.String(vpc),
		TagSpecifications: netTagSpec(ec2types.ResourceTypeSecurityGroup, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateSecurityGroup %s in %s: %w", s.Name, vpc, err)
	}
	id := aws.ToString(out.GroupId)
	// A new group allows all egress; make the rules exactly the spec's.
	if err := sgSetEgress(ctx, x, id, []string{"-1:0-0:0.0.0.0/0"}, s.Egress); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "arn": aws.ToString(out.SecurityGroupArn), "vpc_id": vpc, "name": s.Name}, nil
}

func (SecurityGroupKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := netSpec[stack.SecurityGroupSpec](r)
	if err != nil {
		return nil, err
	}
	sg, _ := live.Raw.(ec2types.SecurityGroup)
	if netChanged(changed, "egress") {
		if err := sgSetEgress(ctx, x, live.ID, sgRules(sg.IpPermissionsEgress), s.Egress); err != nil {
			return nil, err
		}
	}
	if netChanged(changed, "ingress") {
		if err := sgRevokeIngress(ctx, x, live.ID, sg.IpPermissions); err != nil {
			return nil, err
		}
	}
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// sgSetEgress revokes the rules in have that are not in want and authorizes
// the missing ones.
func sgSetEgress(ctx context.Context, x *resource.Ctx, id string, have, want []string) error {
	var add, drop []ec2types.IpPermission
	for _, rule := range want {
		if !sgHas(have, rule) {
			p, err := sgPermission(rule)
			if err != nil {
				return err
			}
			add = append(add, p)
		}
	}
	for _, rule := range have {
		if !sgHas(want, rule) {
			p, err := sgPermission(rule)
			if err != nil {
				return err
			}
			drop = append(drop, p)
		}
	}
	if len(add) > 0 {
		_, err := x.AWS.EC2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: add})
		if err != nil && awserr.Code(err) != "InvalidPermission.Duplicate" {
			return fmt.Errorf("AuthorizeSecurityGroupEgress %s: %w", id, err)
		}
	}
	if len(drop) > 0 {
		_, err := x.AWS.EC2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: drop})
		if err != nil && awserr.Code(err) != "InvalidPermission.NotFound" {
			return fmt.Errorf("RevokeSecurityGroupEgress %s: %w", id, err)
		}
	}
	return nil
}

// Delete waits for the network interfaces that use the group to go away
// (Fargate task ENIs outlive their tasks, docs/research/aws-ecs.md §5.1), then
// deletes it, retrying DependencyViolation / InvalidGroup.InUse within the
// provider's 15-minute budget (§5). When the budget runs out, the error names
// the ENIs still holding the group.
func (SecurityGroupKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("security group %s (%s) exists without this environment's tags; deploybot does not delete it", r.Name, live.ID)
	}
	id := live.ID
	started := x.Clock.Now()
	deadline := started.Add(x.Wait(netSGDeleteBudget))
	if _, err := netWaitENIsGone(ctx, x, r.Address, "group-id", id, deadline); err != nil {
		return err
	}
	blocker := func(ctx context.Context) string {
		enis, err := netENIs(ctx, x, "group-id", id)
		if err != nil {
			return ""
		}
		return netDescribeENIs(enis)
	}
	err := netRetryUntil(ctx, x, r.Address, "delete security group "+id, started, deadline,
		netIsCode("DependencyViolation", "InvalidGroup.InUse"), blocker, func() error {
			_, err := x.AWS.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
			return err
		})
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	return nil
}

// sgRevokeIngress revokes every inbound rule of the group, as its plan read
// them (whatever their source: CIDR, IPv6 range, security group or prefix
// list). In a non-default VPC a revoke that names a rule no longer there
// fails with InvalidPermission.NotFound and revokes nothing (EC2 API
// reference, RevokeSecurityGroupIngress); the rules then changed since the
// plan, so the group is described again and what it has now is revoked.
func sgRevokeIngress(ctx context.Context, x *resource.Ctx, id string, perms []ec2types.IpPermission) error {
	if len(perms) == 0 {
		return nil
	}
	_, err := x.AWS.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms})
	if awserr.Code(err) == "InvalidPermission.NotFound" {
		out, derr := x.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
		if derr != nil {
			return fmt.Errorf("DescribeSecurityGroups %s: %w", id, derr)
		}
		perms = nil
		for _, g := range out.SecurityGroups {
			perms = append(perms, g.IpPermissions...)
		}
		if len(perms) == 0 {
			return nil
		}
		_, err = x.AWS.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms})
	}
	if err != nil {
		return fmt.Errorf("RevokeSecurityGroupIngress %s: %w", id, err)
	}
	return nil
}

// sgIngressRules flattens inbound IpPermissions into "proto:from-to:source"
// rules for the plan, where source is an IPv4 or IPv6 CIDR, a security group
// id or a prefix list id: any inbound rule is drift, whatever it allows.
func sgIngressRules(perms []ec2types.IpPermission) []string {
	var out []string
	for _, p := range perms {
		proto := aws.ToString(p.IpProtocol)
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		if proto == "-1" || proto == "all" {
			proto, from, to = "-1", 0, 0
		}
		rule := func(source string) { out = append(out, fmt.Sprintf("%s:%d-%d:%s", proto, from, to, source)) }
		for _, rg := range p.IpRanges {
			rule(aws.ToString(rg.CidrIp))
		}
		for _, rg := range p.Ipv6Ranges {
			rule(aws.ToString(rg.CidrIpv6))
		}
		for _, g := range p.UserIdGroupPairs {
			rule(aws.ToString(g.GroupId))
		}
		for _, pl := range p.PrefixListIds {
			rule(aws.ToString(pl.PrefixListId))
		}
	}
	sort.Strings(out)
	return out
}

func sgHas(list []string, rule string) bool {
	for _, r := range list {
		if sgNorm(r) == sgNorm(rule) {
			return true
		}
	}
	return false
}

// sgRules flattens IpPermissions into "proto:from-to:cidr" rules
// (stack.SecurityGroupSpec's form); protocol "-1" has no ports.
func sgRules(perms []ec2types.IpPermission) []string {
	var out []string
	for _, p := range perms {
		proto := aws.ToString(p.IpProtocol)
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		if proto == "-1" || proto == "all" {
			proto, from, to = "-1", 0, 0
		}
		for _, rg := range p.IpRanges {
			out = append(out, fmt.Sprintf("%s:%d-%d:%s", proto, from, to, aws.ToString(rg.CidrIp)))
		}
	}
	sort.Strings(out)
	return out
}

func sgPermission(rule string) (ec2types.IpPermission, error) {
	parts := strings.SplitN(rule, ":", 3)
	if len(parts) != 3 {
		return ec2types.IpPermission{}, fmt.Errorf("security group rule %q: want proto:from-to:cidr", rule)
	}
	from, to, ok := strings.Cut(parts[1], "-")
	f, err1 := strconv.Atoi(from)
	t, err2 := strconv.Atoi(to)
	if !ok || err1 != nil || err2 != nil {
		return ec2types.IpPermission{}, fmt.Errorf("security group rule %q: ports must be from-to", rule)
	}
	p := ec2types.IpPermission{IpProtocol: aws.String(parts[0]), IpRanges: []ec2types.IpRange{{CidrIp: aws.String(parts[2])}}}
	if parts[0] != "-1" {
		p.FromPort, p.ToPort = aws.Int32(int32(f)), aws.Int32(int32(t))
	}
	return p, nil
}

// sgRulesJSON normalises rules for diffing: protocol "-1" drops its ports.
func sgRulesJSON(rules []string) string {
	norm := make([]string, 0, len(rules))
	for _, r := range rules {
		norm = append(norm, sgNorm(r))
	}
	return netJSONList(norm)
}

// sgNorm writes protocol "-1" (all traffic) without ports, as EC2 shows it.
func sgNorm(rule string) string {
	if strings.HasPrefix(rule, "-1:") || strings.HasPrefix(rule, "all:") {
		return "-1:0-0:" + rule[strings.LastIndex(rule, ":")+1:]
	}
	return rule
}
