package ec2

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/resource"
)

// SecurityGroupSpec is the worker security group: egress only (the worker
// only calls out, to Prefect and the image registry; nothing connects in).
type SecurityGroupSpec struct {
	Name        string
	Description string
	VPC         resource.Ref
	// Egress rules "proto:from-to:cidr"; the worker needs all egress.
	Egress []string
}

// SecurityGroupModel is what a plan compares of a security group. Name,
// description and VPC cannot change in place (EC2 has no API for it);
// egress rules and tags can. Nothing may connect in (docs/design.md:
// "worker security group (egress only)"), so the desired ingress is none:
// an inbound rule someone adds by hand shows in the plan and the apply
// revokes it.
type SecurityGroupModel struct {
	Name        string       `attr:"name,forcenew"`
	Description string       `attr:"description,forcenew"`
	VPC         string       `attr:"vpc_id,forcenew"`
	Egress      resource.Set `attr:"egress"`
	Ingress     resource.Set `attr:"ingress"`
}

// Normalize writes protocol "-1" (all traffic) without ports, as EC2 shows it.
func (m *SecurityGroupModel) Normalize() {
	egress := make(resource.Set, len(m.Egress))
	for i, r := range m.Egress {
		egress[i] = sgNorm(r)
	}
	m.Egress = egress
}

// SecurityGroup is the worker security group kind, in the managed VPC or in
// the VPC an existing-mode file names.
var SecurityGroup = resource.Define[SecurityGroupSpec, SecurityGroupModel, ec2types.SecurityGroup, awsapi.EC2API](KindSecurityGroup, sgKind{}, connect)

type sgKind struct{}

type (
	securityGroup = resource.Typed[SecurityGroupSpec]
	foundSG       = resource.Found[SecurityGroupModel, ec2types.SecurityGroup]
)

func (sgKind) Desired(r *securityGroup, refs resource.Refs) SecurityGroupModel {
	s := r.Spec
	return SecurityGroupModel{Name: s.Name, Description: s.Description, VPC: s.VPC.Resolve(refs), Egress: s.Egress}
}

// Read is ReadAll of the one group, so that a single read and a plan's
// batch read are the same code.
func (k sgKind) Read(ctx context.Context, x *x, r *securityGroup) (*foundSG, error) {
	found, err := k.ReadAll(ctx, x, []*securityGroup{r})
	if err != nil {
		return nil, err
	}
	return found[r.Address], nil
}

// ReadAll reads the security groups of rs (the worker's and the flow
// runs') with one DescribeSecurityGroups by their group names, in the VPC
// the file names when they all name the same one.
func (sgKind) ReadAll(ctx context.Context, x *x, rs []*securityGroup) (map[string]*foundSG, error) {
	var groupNames []string
	vpcs := map[string]bool{}
	for _, r := range rs {
		groupNames = append(groupNames, r.Spec.Name)
		if r.Spec.VPC.Address == "" && r.Spec.VPC.Literal != "" {
			vpcs[r.Spec.VPC.Literal] = true
		} else {
			vpcs[""] = true
		}
	}
	sort.Strings(groupNames)
	filters := []ec2types.Filter{{Name: aws.String("group-name"), Values: groupNames}}
	if len(vpcs) == 1 && !vpcs[""] {
		for v := range vpcs {
			filters = append(filters, ec2types.Filter{Name: aws.String("vpc-id"), Values: []string{v}})
		}
	}
	var groups []ec2types.SecurityGroup
	p := awsec2.NewDescribeSecurityGroupsPaginator(x.API, &awsec2.DescribeSecurityGroupsInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeSecurityGroups %s: %w", strings.Join(groupNames, ", "), err)
		}
		groups = append(groups, page.SecurityGroups...)
	}
	out := map[string]*foundSG{}
	for _, r := range rs {
		s := r.Spec
		var mine []*foundSG
		for _, g := range groups {
			if aws.ToString(g.GroupName) != s.Name {
				continue
			}
			if s.VPC.Address == "" && s.VPC.Literal != "" && aws.ToString(g.VpcId) != s.VPC.Literal {
				continue
			}
			mine = append(mine, sgFound(g))
		}
		sg, ours := pick(r.Tags, mine)
		if sg == nil {
			continue
		}
		// In a managed VPC (not known before it exists) a group of the same
		// name in some other VPC does not block us; in a given VPC it does,
		// since CreateSecurityGroup would fail with InvalidGroup.Duplicate.
		if !ours && s.VPC.Address != "" {
			continue
		}
		out[r.Address] = sg
	}
	return out, nil
}

func sgFound(sg ec2types.SecurityGroup) *foundSG {
	id := aws.ToString(sg.GroupId)
	return &foundSG{ID: id, ARN: aws.ToString(sg.SecurityGroupArn), Tags: awstags.EC2Map(sg.Tags), Detail: sg,
		Model: SecurityGroupModel{Name: aws.ToString(sg.GroupName), Description: aws.ToString(sg.Description), VPC: aws.ToString(sg.VpcId),
			Egress: sgRules(sg.IpPermissionsEgress),
			// From the same DescribeSecurityGroups answer: no extra call.
			Ingress: sgIngressRules(sg.IpPermissions)},
		Outputs: resource.Outputs{"id": id, "arn": aws.ToString(sg.SecurityGroupArn), "vpc_id": aws.ToString(sg.VpcId), "name": aws.ToString(sg.GroupName)}}
}

func (sgKind) Create(ctx context.Context, x *x, r *securityGroup, refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	vpc := s.VPC.Resolve(refs)
	if unknown(vpc) {
		return nil, fmt.Errorf("create security group %s: the VPC id is not known", s.Name)
	}
	out, err := x.API.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{
		GroupName: aws.String(s.Name), Description: aws.String(s.Description), VpcId: aws.String(vpc),
		TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeSecurityGroup, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateSecurityGroup %s in %s: %w", s.Name, vpc, err)
	}
	id := aws.ToString(out.GroupId)
	// A new group allows all egress; make the rules exactly the spec's.
	if err := setEgress(ctx, x, id, []string{"-1:0-0:0.0.0.0/0"}, s.Egress); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "arn": aws.ToString(out.SecurityGroupArn), "vpc_id": vpc, "name": s.Name}, nil
}

func (sgKind) Update(ctx context.Context, x *x, r *securityGroup, d *resource.Delta[SecurityGroupModel, ec2types.SecurityGroup], _ resource.Refs) (resource.Outputs, error) {
	sg := d.Found.Detail
	if !resource.Equal(d.Desired.Egress, d.Live.Egress) {
		if err := setEgress(ctx, x, d.Found.ID, sgRules(sg.IpPermissionsEgress), r.Spec.Egress); err != nil {
			return nil, err
		}
	}
	if !resource.Equal(d.Desired.Ingress, d.Live.Ingress) {
		if err := revokeIngress(ctx, x, d.Found.ID, sg.IpPermissions); err != nil {
			return nil, err
		}
	}
	return updateTags(ctx, x, d)
}

// setEgress revokes the rules in have that are not in want and authorizes
// the missing ones.
func setEgress(ctx context.Context, x *x, id string, have, want []string) error {
	add, err := sgMissing(want, have)
	if err != nil {
		return err
	}
	drop, err := sgMissing(have, want)
	if err != nil {
		return err
	}
	if len(add) > 0 {
		_, err := x.API.AuthorizeSecurityGroupEgress(ctx, &awsec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: add})
		if err != nil && awserr.Code(err) != "InvalidPermission.Duplicate" {
			return fmt.Errorf("AuthorizeSecurityGroupEgress %s: %w", id, err)
		}
	}
	if len(drop) > 0 {
		_, err := x.API.RevokeSecurityGroupEgress(ctx, &awsec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: drop})
		if err != nil && awserr.Code(err) != "InvalidPermission.NotFound" {
			return fmt.Errorf("RevokeSecurityGroupEgress %s: %w", id, err)
		}
	}
	return nil
}

// Delete waits for the network interfaces that use the group to go away
// (Fargate task ENIs outlive their tasks, docs/research/aws-ecs.md §5.1),
// then deletes it, retrying DependencyViolation / InvalidGroup.InUse within
// the provider's 15-minute budget (§5). When the budget runs out, the error
// names the ENIs still holding the group.
func (sgKind) Delete(ctx context.Context, x *x, r *securityGroup, live *foundSG) error {
	return deleteOurs(r, live, "security group", func(id string) error { return deleteSG(ctx, x, r.Address, id) })
}

// deleteSG waits for the interfaces that use group id to go, and deletes it.
func deleteSG(ctx context.Context, x *x, address, id string) error {
	start := x.Clock.Now()
	if err := waitENIsGone(ctx, x, address, "group-id", id, start, sgDeleteBudget); err != nil {
		return err
	}
	blocker := func(ctx context.Context) string {
		list, err := enis(ctx, x, "group-id", id)
		if err != nil {
			return ""
		}
		return describeENIs(list)
	}
	return awserr.IgnoreNotFound(retryBlocked(ctx, x, address, "delete security group "+id, start, sgDeleteBudget,
		awserr.IsCode("DependencyViolation", "InvalidGroup.InUse"), blocker, func() error {
			return errOf(x.API.DeleteSecurityGroup(ctx, &awsec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}))
		}))
}

// ARNTypes: the group is found by its ARN among what is tagged for the
// environment.
func (sgKind) ARNTypes() []string { return []string{"ec2:security-group"} }

// Adopt reads the group arn names by its id: a group tagged for the
// environment that the stack no longer has (it moved to another VPC).
func (sgKind) Adopt(ctx context.Context, x *x, arn string) (*securityGroup, *foundSG, error) {
	out, err := x.API.DescribeSecurityGroups(ctx, &awsec2.DescribeSecurityGroupsInput{GroupIds: []string{idOfARN(arn)}})
	if awserr.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("DescribeSecurityGroups %s: %w", idOfARN(arn), err)
	}
	for _, g := range out.SecurityGroups {
		f := sgFound(g)
		return &securityGroup{Name: aws.ToString(g.GroupName), Tags: f.Tags,
			Spec: &SecurityGroupSpec{Name: aws.ToString(g.GroupName), Description: aws.ToString(g.Description),
				VPC: resource.Ref{Literal: aws.ToString(g.VpcId)}}}, f, nil
	}
	return nil, nil, nil
}

// revokeIngress revokes every inbound rule of the group, as its plan read
// them (whatever their source: CIDR, IPv6 range, security group or prefix
// list). In a non-default VPC a revoke that names a rule no longer there
// fails with InvalidPermission.NotFound and revokes nothing (EC2 API
// reference, RevokeSecurityGroupIngress); the rules then changed since the
// plan, so the group is described again and what it has now is revoked.
func revokeIngress(ctx context.Context, x *x, id string, perms []ec2types.IpPermission) error {
	if len(perms) == 0 {
		return nil
	}
	_, err := x.API.RevokeSecurityGroupIngress(ctx, &awsec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms})
	if awserr.Code(err) == "InvalidPermission.NotFound" {
		out, derr := x.API.DescribeSecurityGroups(ctx, &awsec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
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
		_, err = x.API.RevokeSecurityGroupIngress(ctx, &awsec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms})
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
		proto, from, to := sgProto(p)
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

// sgProto is a permission's protocol and ports; "-1" (all traffic) has none.
func sgProto(p ec2types.IpPermission) (string, int32, int32) {
	proto := aws.ToString(p.IpProtocol)
	if proto == "-1" || proto == "all" {
		return "-1", 0, 0
	}
	return proto, aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
}

// sgMissing is the permissions of the rules of from that list lacks.
func sgMissing(from, list []string) ([]ec2types.IpPermission, error) {
	var out []ec2types.IpPermission
	for _, rule := range from {
		if !sgHas(list, rule) {
			p, err := sgPermission(rule)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
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
// (SecurityGroupSpec's form).
func sgRules(perms []ec2types.IpPermission) []string {
	var out []string
	for _, p := range perms {
		proto, from, to := sgProto(p)
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

// sgNorm writes protocol "-1" (all traffic) without ports, as EC2 shows it.
func sgNorm(rule string) string {
	if strings.HasPrefix(rule, "-1:") || strings.HasPrefix(rule, "all:") {
		return "-1:0-0:" + rule[strings.LastIndex(rule, ":")+1:]
	}
	return rule
}
