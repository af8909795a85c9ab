package ec2

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/resource"
)

// VPCSpec is the managed VPC. DNS support and hostnames are on, so that
// Cloud Map private DNS names resolve inside it.
type VPCSpec struct {
	CIDR               string
	EnableDNSSupport   bool
	EnableDNSHostnames bool
}

// VPCModel is what a plan compares of a VPC. The DNS attributes take a
// call each and are read only for a VPC that is ours.
type VPCModel struct {
	CIDR         string `attr:"cidr,forcenew"`
	DNSSupport   *bool  `attr:"enable_dns_support"`
	DNSHostnames *bool  `attr:"enable_dns_hostnames"`
}

// VPC is the managed VPC kind. Its CIDR cannot change in place: a new CIDR
// is a new VPC, and with it new subnets, gateways, route tables, security
// group and (through the subnets) a replaced ECS service.
var VPC = resource.Define[VPCSpec, VPCModel, struct{}, awsapi.EC2API](KindVPC, vpcKind{vpcFinder}, connect)

type vpcKind struct {
	finder[VPCSpec, ec2types.Vpc, VPCModel, struct{}]
}

type (
	vpc      = resource.Typed[VPCSpec]
	foundVPC = resource.Found[VPCModel, struct{}]
)

func (vpcKind) Desired(r *vpc, _ resource.Refs) VPCModel {
	return VPCModel{CIDR: r.Spec.CIDR, DNSSupport: aws.Bool(r.Spec.EnableDNSSupport), DNSHostnames: aws.Bool(r.Spec.EnableDNSHostnames)}
}

// vpcFinder finds VPCs: one DescribeVpcs by Name tags, or by id.
var vpcFinder = finder[VPCSpec, ec2types.Vpc, VPCModel, struct{}]{op: "DescribeVpcs", idFilter: "vpc-id", arnType: "ec2:vpc",
	describe: func(ctx context.Context, x *x, f []ec2types.Filter) ([]ec2types.Vpc, error) {
		out, err := x.API.DescribeVpcs(ctx, &awsec2.DescribeVpcsInput{Filters: f})
		return itemsOf(out, err, func(o *awsec2.DescribeVpcsOutput) []ec2types.Vpc { return o.Vpcs })
	},
	found: vpcFound,
	more:  vpcDNS,
}

func vpcFound(v ec2types.Vpc) *foundVPC {
	id := aws.ToString(v.VpcId)
	return &foundVPC{ID: id, Tags: awstags.EC2Map(v.Tags), Model: VPCModel{CIDR: aws.ToString(v.CidrBlock)},
		Outputs: resource.Outputs{"id": id, "cidr": aws.ToString(v.CidrBlock)}}
}

// vpcDNS reads the DNS attributes of a VPC that is ours: they take one call
// each, made at once.
func vpcDNS(ctx context.Context, x *x, f *foundVPC) error {
	id := f.ID
	var wg sync.WaitGroup
	var errs [2]error
	var vals [2]bool
	for i, a := range []ec2types.VpcAttributeName{ec2types.VpcAttributeNameEnableDnsSupport, ec2types.VpcAttributeNameEnableDnsHostnames} {
		wg.Go(func() {
			o, err := x.API.DescribeVpcAttribute(ctx, &awsec2.DescribeVpcAttributeInput{VpcId: aws.String(id), Attribute: a})
			if err != nil {
				errs[i] = fmt.Errorf("DescribeVpcAttribute %s %s: %w", id, a, err)
				return
			}
			switch {
			case o.EnableDnsSupport != nil:
				vals[i] = aws.ToBool(o.EnableDnsSupport.Value)
			case o.EnableDnsHostnames != nil:
				vals[i] = aws.ToBool(o.EnableDnsHostnames.Value)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	f.Model.DNSSupport, f.Model.DNSHostnames = aws.Bool(vals[0]), aws.Bool(vals[1])
	return nil
}

func (vpcKind) Create(ctx context.Context, x *x, r *vpc, _ resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	out, err := x.API.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String(s.CIDR),
		TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeVpc, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateVpc %s: %w", s.CIDR, err)
	}
	id := aws.ToString(out.Vpc.VpcId)
	// EC2 creates a VPC with DNS support on and hostnames off; change only
	// what differs (support first: hostnames need it).
	if err := setDNS(ctx, x, id, s, !s.EnableDNSSupport, s.EnableDNSHostnames); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "cidr": s.CIDR}, nil
}

func setDNS(ctx context.Context, x *x, id string, s *VPCSpec, support, hostnames bool) error {
	if support {
		if _, err := x.API.ModifyVpcAttribute(ctx, &awsec2.ModifyVpcAttributeInput{VpcId: aws.String(id),
			EnableDnsSupport: &ec2types.AttributeBooleanValue{Value: aws.Bool(s.EnableDNSSupport)}}); err != nil {
			return fmt.Errorf("ModifyVpcAttribute %s enableDnsSupport: %w", id, err)
		}
	}
	if hostnames {
		if _, err := x.API.ModifyVpcAttribute(ctx, &awsec2.ModifyVpcAttributeInput{VpcId: aws.String(id),
			EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(s.EnableDNSHostnames)}}); err != nil {
			return fmt.Errorf("ModifyVpcAttribute %s enableDnsHostnames: %w", id, err)
		}
	}
	return nil
}

func (vpcKind) Update(ctx context.Context, x *x, r *vpc, d *resource.Delta[VPCModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	if err := setDNS(ctx, x, d.Found.ID, r.Spec, !resource.Equal(d.Desired.DNSSupport, d.Live.DNSSupport),
		!resource.Equal(d.Desired.DNSHostnames, d.Live.DNSHostnames)); err != nil {
		return nil, err
	}
	return updateTags(ctx, x, d)
}

// Delete retries DependencyViolation while the last of the VPC's contents
// (lingering ENIs, a NAT gateway finishing its delete) go away
// (docs/research/aws-ecs.md §5 DeleteVpc row, §5.3 step 8).
func (vpcKind) Delete(ctx context.Context, x *x, r *vpc, live *foundVPC) error {
	return deleteOurs(r, live, "VPC", func(id string) error {
		return awserr.IgnoreNotFound(retryBlocked(ctx, x, r.Address, "delete VPC "+id, x.Clock.Now(), vpcDeleteBudget, awserr.IsCode("DependencyViolation"),
			func(ctx context.Context) string { return vpcContents(ctx, x, id) },
			func() error { return errOf(x.API.DeleteVpc(ctx, &awsec2.DeleteVpcInput{VpcId: aws.String(id)})) }))
	})
}

// vpcContents names what is still in a VPC, for the error of a delete whose
// budget ran out.
func vpcContents(ctx context.Context, x *x, vpc string) string {
	var parts []string
	if list, err := enis(ctx, x, "vpc-id", vpc); err == nil && len(list) > 0 {
		parts = append(parts, describeENIs(list))
	}
	f := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}
	if out, err := x.API.DescribeSubnets(ctx, &awsec2.DescribeSubnetsInput{Filters: f}); err == nil {
		for _, s := range out.Subnets {
			parts = append(parts, "subnet "+aws.ToString(s.SubnetId))
		}
	}
	if out, err := x.API.DescribeSecurityGroups(ctx, &awsec2.DescribeSecurityGroupsInput{Filters: f}); err == nil {
		for _, g := range out.SecurityGroups {
			if aws.ToString(g.GroupName) != "default" {
				parts = append(parts, "security group "+aws.ToString(g.GroupId))
			}
		}
	}
	attached := []ec2types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpc}}}
	if out, err := x.API.DescribeInternetGateways(ctx, &awsec2.DescribeInternetGatewaysInput{Filters: attached}); err == nil {
		for _, g := range out.InternetGateways {
			parts = append(parts, "internet gateway "+aws.ToString(g.InternetGatewayId))
		}
	}
	return strings.Join(parts, ", ")
}
