package ec2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// SubnetSpec is one subnet in one availability zone.
type SubnetSpec struct {
	VPC  resource.Ref
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
	// Zones says where the zones were asked for, for the error of a region
	// that has fewer: the region, how many the file asks for, and the
	// file's network.availability_zones (File, Line and Field of Problem).
	Zones ZoneRequest
}

// ZoneRequest is where a stack's availability zones come from.
type ZoneRequest struct {
	Region string
	Asked  int
	Field  config.Problem
}

// SubnetModel is what a plan compares of a subnet: none of it can change
// in place.
type SubnetModel struct {
	CIDR             string `attr:"cidr,forcenew"`
	AvailabilityZone string `attr:"availability_zone,forcenew"`
	VPC              string `attr:"vpc_id,forcenew"`
}

// Subnet is the subnet kind of the managed VPC.
var Subnet = resource.Define[SubnetSpec, SubnetModel, struct{}, awsapi.EC2API](KindSubnet, subnetKind{subnetFinder}, connect)

type subnetKind struct {
	finder[SubnetSpec, ec2types.Subnet, SubnetModel, struct{}]
}

type (
	subnet      = resource.Typed[SubnetSpec]
	foundSubnet = resource.Found[SubnetModel, struct{}]
)

// Resolve names each subnet's availability zone: the ZoneIndex-th of the
// region's zones, sorted by name, that are available, are availability
// zones (not Local or Wavelength zones) and need no opt-in — the zones
// Terraform's aws_availability_zones data source gives with the same
// filters. One DescribeAvailabilityZones serves every subnet of the plan. A
// subnet that exists keeps its zone unless this mapping names another one
// (then its availability_zone diff replaces it, as any ForceNew field does).
// More zones asked for than the region has fails the plan, naming
// network.availability_zones of the file.
func (subnetKind) Resolve(ctx context.Context, x *x, rs []*subnet) ([]*SubnetSpec, error) {
	need := 0 // zones needed: the highest index to resolve, plus one
	var req ZoneRequest
	for _, r := range rs {
		if r.Spec.AvailabilityZone == "" {
			need = max(need, r.Spec.ZoneIndex+1)
			req = r.Spec.Zones
		}
	}
	out := make([]*SubnetSpec, len(rs))
	for i, r := range rs {
		out[i] = r.Spec
	}
	if need == 0 {
		return out, nil
	}
	zones, err := subnetZones(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("look up the availability zones of %s (ec2 DescribeAvailabilityZones): %w", req.Region, err)
	}
	if need > len(zones) {
		return nil, tooFewZones(req, need, zones)
	}
	for i, r := range rs {
		if r.Spec.AvailabilityZone == "" {
			c := *r.Spec
			c.AvailabilityZone = zones[c.ZoneIndex]
			out[i] = &c
		}
	}
	return out, nil
}

// subnetZones lists the names of the region's zones a managed subnet may go
// in, sorted.
func subnetZones(ctx context.Context, x *x) ([]string, error) {
	out, err := x.API.DescribeAvailabilityZones(ctx, &awsec2.DescribeAvailabilityZonesInput{Filters: []ec2types.Filter{
		{Name: aws.String("state"), Values: []string{"available"}},
		{Name: aws.String("zone-type"), Values: []string{"availability-zone"}},
		{Name: aws.String("opt-in-status"), Values: []string{"opt-in-not-required"}},
	}})
	if err != nil {
		return nil, err
	}
	var zones []string
	for _, z := range out.AvailabilityZones {
		zones = append(zones, aws.ToString(z.ZoneName))
	}
	sort.Strings(zones)
	return zones, nil
}

// tooFewZones says that the file asks for more zones than its region has,
// at the file's network.availability_zones.
func tooFewZones(req ZoneRequest, need int, zones []string) error {
	p := req.Field
	if p.Field == "" {
		p.Field = "network.availability_zones"
	}
	if req.Asked > 0 {
		need = req.Asked
	}
	have := "none"
	if len(zones) > 0 {
		have = "only " + strings.Join(zones, ", ")
	}
	p.Message = fmt.Sprintf("%d availability zones asked for, but region %s has %d available to this account (%s); set it to %d or fewer, or use another region",
		need, req.Region, len(zones), have, len(zones))
	return errors.New(p.String())
}

func (subnetKind) Desired(r *subnet, refs resource.Refs) SubnetModel {
	az := r.Spec.AvailabilityZone
	if az == "" {
		az = plan.Unknown // not resolved (Resolve was not called)
	}
	return SubnetModel{CIDR: r.Spec.CIDR, AvailabilityZone: az, VPC: r.Spec.VPC.Resolve(refs)}
}

// subnetFinder finds subnets: one DescribeSubnets by Name tags, or by id.
var subnetFinder = finder[SubnetSpec, ec2types.Subnet, SubnetModel, struct{}]{op: "DescribeSubnets", idFilter: "subnet-id", arnType: "ec2:subnet",
	describe: func(ctx context.Context, x *x, f []ec2types.Filter) ([]ec2types.Subnet, error) {
		out, err := x.API.DescribeSubnets(ctx, &awsec2.DescribeSubnetsInput{Filters: f})
		return itemsOf(out, err, func(o *awsec2.DescribeSubnetsOutput) []ec2types.Subnet { return o.Subnets })
	},
	found: subnetFound,
}

func subnetFound(sn ec2types.Subnet) *foundSubnet {
	id := aws.ToString(sn.SubnetId)
	return &foundSubnet{ID: id, ARN: aws.ToString(sn.SubnetArn), Tags: awstags.EC2Map(sn.Tags),
		Model:   SubnetModel{CIDR: aws.ToString(sn.CidrBlock), AvailabilityZone: aws.ToString(sn.AvailabilityZone), VPC: aws.ToString(sn.VpcId)},
		Outputs: resource.Outputs{"id": id, "cidr": aws.ToString(sn.CidrBlock), "availability_zone": aws.ToString(sn.AvailabilityZone), "vpc_id": aws.ToString(sn.VpcId)}}
}

func (subnetKind) Create(ctx context.Context, x *x, r *subnet, refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	vpc := s.VPC.Resolve(refs)
	if unknown(vpc) {
		return nil, fmt.Errorf("create subnet %s: the VPC id is not known", r.Name)
	}
	if s.AvailabilityZone == "" {
		return nil, fmt.Errorf("create subnet %s: its availability zone (index %d) was not resolved", r.Name, s.ZoneIndex)
	}
	out, err := x.API.CreateSubnet(ctx, &awsec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(s.CIDR),
		AvailabilityZone: aws.String(s.AvailabilityZone), TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeSubnet, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateSubnet %s in %s: %w", s.CIDR, vpc, err)
	}
	id := aws.ToString(out.Subnet.SubnetId)
	return resource.Outputs{"id": id, "cidr": s.CIDR, "availability_zone": s.AvailabilityZone, "vpc_id": vpc}, nil
}

// Delete waits for the subnet's network interfaces to go (task ENIs linger
// after the service is gone, a NAT gateway's goes when it is deleted;
// docs/research/aws-ecs.md §5.1), then deletes it, retrying
// DependencyViolation. When the budget runs out the error names the
// interfaces still there.
func (subnetKind) Delete(ctx context.Context, x *x, r *subnet, live *foundSubnet) error {
	return deleteOurs(r, live, "subnet", func(id string) error { return deleteSubnet(ctx, x, r.Address, id) })
}

// deleteSubnet waits for subnet id's interfaces to go, and deletes it.
func deleteSubnet(ctx context.Context, x *x, address, id string) error {
	start := x.Clock.Now()
	if err := waitENIsGone(ctx, x, address, "subnet-id", id, start, subnetDeleteBudget); err != nil {
		return err
	}
	return awserr.IgnoreNotFound(retryBlocked(ctx, x, address, "delete subnet "+id, start, subnetDeleteBudget, awserr.IsCode("DependencyViolation"),
		func(ctx context.Context) string {
			var parts []string
			if list, err := enis(ctx, x, "subnet-id", id); err == nil && len(list) > 0 {
				parts = append(parts, describeENIs(list))
			}
			if out, err := x.API.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{
				{Name: aws.String("subnet-id"), Values: []string{id}}, {Name: aws.String("state"), Values: []string{"pending", "available", "deleting"}}}}); err == nil {
				for _, g := range out.NatGateways {
					parts = append(parts, fmt.Sprintf("NAT gateway %s (%s)", aws.ToString(g.NatGatewayId), g.State))
				}
			}
			return strings.Join(parts, ", ")
		},
		func() error {
			return errOf(x.API.DeleteSubnet(ctx, &awsec2.DeleteSubnetInput{SubnetId: aws.String(id)}))
		}))
}
