package ec2

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/resource"
)

// InternetGatewaySpec is the VPC's internet gateway, attached to VPC.
type InternetGatewaySpec struct {
	VPC resource.Ref
}

// InternetGatewayModel is what a plan compares of an internet gateway.
type InternetGatewayModel struct {
	VPC string `attr:"vpc_id,forcenew"`
}

// InternetGateway is the managed VPC's internet gateway. It moves with its
// VPC: a new VPC gets a new gateway (the old one must be detached before
// the old VPC can go, which a replacement's delete does first).
var InternetGateway = resource.Define[InternetGatewaySpec, InternetGatewayModel, struct{}, awsapi.EC2API](KindInternetGateway, igwKind{igwFinder}, connect)

type igwKind struct {
	finder[InternetGatewaySpec, ec2types.InternetGateway, InternetGatewayModel, struct{}]
}

type (
	igw      = resource.Typed[InternetGatewaySpec]
	foundIGW = resource.Found[InternetGatewayModel, struct{}]
)

func (igwKind) Desired(r *igw, refs resource.Refs) InternetGatewayModel {
	return InternetGatewayModel{VPC: r.Spec.VPC.Resolve(refs)}
}

// igwFinder finds internet gateways: one DescribeInternetGateways by Name tags, or by id.
var igwFinder = finder[InternetGatewaySpec, ec2types.InternetGateway, InternetGatewayModel, struct{}]{op: "DescribeInternetGateways", idFilter: "internet-gateway-id", arnType: "ec2:internet-gateway",
	describe: func(ctx context.Context, x *x, f []ec2types.Filter) ([]ec2types.InternetGateway, error) {
		out, err := x.API.DescribeInternetGateways(ctx, &awsec2.DescribeInternetGatewaysInput{Filters: f})
		return itemsOf(out, err, func(o *awsec2.DescribeInternetGatewaysOutput) []ec2types.InternetGateway { return o.InternetGateways })
	},
	found: igwFound,
}

func igwFound(g ec2types.InternetGateway) *foundIGW {
	id := aws.ToString(g.InternetGatewayId)
	vpc := ""
	for _, a := range g.Attachments {
		vpc = aws.ToString(a.VpcId)
	}
	return &foundIGW{ID: id, Tags: awstags.EC2Map(g.Tags), Model: InternetGatewayModel{VPC: vpc},
		Outputs: resource.Outputs{"id": id, "vpc_id": vpc}}
}

func (igwKind) Create(ctx context.Context, x *x, r *igw, refs resource.Refs) (resource.Outputs, error) {
	vpc := r.Spec.VPC.Resolve(refs)
	if unknown(vpc) {
		return nil, fmt.Errorf("create internet gateway %s: the VPC id is not known", r.Name)
	}
	out, err := x.API.CreateInternetGateway(ctx, &awsec2.CreateInternetGatewayInput{TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeInternetGateway, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateInternetGateway %s: %w", r.Name, err)
	}
	id := aws.ToString(out.InternetGateway.InternetGatewayId)
	// Attaching right after the create may not find the gateway yet
	// (EC2's eventual consistency; docs/research/aws-ecs.md §5 IGW row).
	err = retryBlocked(ctx, x, r.Address, "attach internet gateway "+id, x.Clock.Now(), igwBudget, awserr.IsCode("InvalidInternetGatewayID.NotFound"), nil, func() error {
		return errOf(x.API.AttachInternetGateway(ctx, &awsec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(id), VpcId: aws.String(vpc)}))
	})
	if err != nil {
		return nil, fmt.Errorf("AttachInternetGateway %s to %s: %w", id, vpc, err)
	}
	return resource.Outputs{"id": id, "vpc_id": vpc}, nil
}

// Delete detaches (retrying DependencyViolation while public addresses are
// still mapped in the VPC: lingering task ENIs, a NAT gateway's interface;
// Gateway.NotAttached means done) and deletes, each within the provider's
// 20-minute budget (docs/research/aws-ecs.md §5 IGW row).
func (igwKind) Delete(ctx context.Context, x *x, r *igw, live *foundIGW) error {
	return deleteOurs(r, live, "internet gateway", func(id string) error {
		if vpc := live.Outputs["vpc_id"]; vpc != "" {
			if err := detachIGW(ctx, x, r.Address, id, vpc); err != nil {
				return err
			}
		}
		return awserr.IgnoreNotFound(retryBlocked(ctx, x, r.Address, "delete internet gateway "+id, x.Clock.Now(), igwBudget, awserr.IsCode("DependencyViolation"), nil, func() error {
			return errOf(x.API.DeleteInternetGateway(ctx, &awsec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(id)}))
		}))
	})
}

// detachIGW detaches gateway id from vpc, naming the interfaces with public
// addresses that are in the way when it cannot; Gateway.NotAttached counts
// as not found, and so as detached.
func detachIGW(ctx context.Context, x *x, address, id, vpc string) error {
	mapped := func(ctx context.Context) string {
		list, err := enis(ctx, x, "vpc-id", vpc)
		if err != nil {
			return ""
		}
		var mapped []ec2types.NetworkInterface
		for _, e := range list {
			if e.Association != nil && aws.ToString(e.Association.PublicIp) != "" {
				mapped = append(mapped, e)
			}
		}
		return describeENIs(mapped) + " with public addresses"
	}
	return awserr.IgnoreNotFound(retryBlocked(ctx, x, address, "detach internet gateway "+id+" from "+vpc, x.Clock.Now(), igwBudget, awserr.IsCode("DependencyViolation"), mapped, func() error {
		return errOf(x.API.DetachInternetGateway(ctx, &awsec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(id), VpcId: aws.String(vpc)}))
	}))
}
