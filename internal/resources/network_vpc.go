package resources

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// VPCKind is the managed VPC. Its CIDR cannot change in place: a new CIDR is
// a new VPC, and with it new subnets, gateways, route tables, security group
// and (through the subnets) a replaced ECS service.
type VPCKind struct{}

func (VPCKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	s := netMustSpec[stack.VPCSpec](r)
	return netTagAttrs(resource.Attrs{
		"cidr":                 {Value: s.CIDR, ForceNew: true},
		"enable_dns_support":   {Value: fmt.Sprint(s.EnableDNSSupport)},
		"enable_dns_hostnames": {Value: fmt.Sprint(s.EnableDNSHostnames)},
	}, r.Tags)
}

func (k VPCKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	return netReadOne(ctx, x, k, r)
}

// ReadAll reads the VPCs of rs with one DescribeVpcs by their Name tags
// (resource.BatchReader; a stack has one), then the DNS attributes of ours.
func (VPCKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	out, err := x.AWS.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: netByNamesFilter(rs)})
	if err != nil {
		return nil, fmt.Errorf("DescribeVpcs %s: %w", strings.Join(netNames(rs), ", "), err)
	}
	return netMatch(rs, out.Vpcs, func(v ec2types.Vpc) string { return aws.ToString(v.VpcId) },
		func(v ec2types.Vpc) map[string]string { return netTagMap(v.Tags) },
		func(v ec2types.Vpc, ours bool) (*resource.Live, error) { return vpcLive(ctx, x, v, ours) })
}

func vpcLive(ctx context.Context, x *resource.Ctx, v ec2types.Vpc, ours bool) (*resource.Live, error) {
	id := aws.ToString(v.VpcId)
	live := &resource.Live{ID: id, Ours: ours, Raw: v,
		Outputs: resource.Outputs{"id": id, "cidr": aws.ToString(v.CidrBlock)},
		Attrs:   netTagAttrs(resource.Attrs{"cidr": {Value: aws.ToString(v.CidrBlock), ForceNew: true}}, netTagMap(v.Tags))}
	if !ours {
		return live, nil
	}
	// The two DNS attributes take one call each; make them at once.
	var wg sync.WaitGroup
	var errs [2]error
	var vals [2]bool
	for i, a := range []ec2types.VpcAttributeName{ec2types.VpcAttributeNameEnableDnsSupport, ec2types.VpcAttributeNameEnableDnsHostnames} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := x.AWS.EC2.DescribeVpcAttribute(ctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String(id), Attribute: a})
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
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	live.Attrs["enable_dns_support"] = resource.Attr{Value: fmt.Sprint(vals[0])}
	live.Attrs["enable_dns_hostnames"] = resource.Attr{Value: fmt.Sprint(vals[1])}
	return live, nil
}

func (VPCKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	s, err := netSpec[stack.VPCSpec](r)
	if err != nil {
		return nil, err
	}
	out, err := x.AWS.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(s.CIDR),
		TagSpecifications: netTagSpec(ec2types.ResourceTypeVpc, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateVpc %s: %w", s.CIDR, err)
	}
	id := aws.ToString(out.Vpc.VpcId)
	// EC2 creates a VPC with DNS support on and hostnames off; change only
	// what differs (support first: hostnames need it).
	if err := vpcSetDNS(ctx, x, id, s, !s.EnableDNSSupport, s.EnableDNSHostnames); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "cidr": s.CIDR}, nil
}

func vpcSetDNS(ctx context.Context, x *resource.Ctx, id string, s *stack.VPCSpec, support, hostnames bool) error {
	if support {
		if _, err := x.AWS.EC2.ModifyVpcAttribute(ctx, &ec2.ModifyVpcAttributeInput{VpcId: aws.String(id),
			EnableDnsSupport: &ec2types.AttributeBooleanValue{Value: aws.Bool(s.EnableDNSSupport)}}); err != nil {
			return fmt.Errorf("ModifyVpcAttribute %s enableDnsSupport: %w", id, err)
		}
	}
	if hostnames {
		if _, err := x.AWS.EC2.ModifyVpcAttribute(ctx, &ec2.ModifyVpcAttributeInput{VpcId: aws.String(id),
			EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(s.EnableDNSHostnames)}}); err != nil {
			return fmt.Errorf("ModifyVpcAttribute %s enableDnsHostnames: %w", id, err)
		}
	}
	return nil
}

func (VPCKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := netSpec[stack.VPCSpec](r)
	if err != nil {
		return nil, err
	}
	if err := vpcSetDNS(ctx, x, live.ID, s, netChanged(changed, "enable_dns_support"), netChanged(changed, "enable_dns_hostnames")); err != nil {
		return nil, err
	}
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// Delete retries DependencyViolation while the last of the VPC's contents
// (lingering ENIs, a NAT gateway finishing its delete) go away
// (docs/research/aws-ecs.md §5 DeleteVpc row, §5.3 step 8).
func (VPCKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("VPC %s (%s) exists without this environment's tags; deploybot does not delete it", r.Name, live.ID)
	}
	id := live.ID
	err := netRetry(ctx, x, r.Address, "delete VPC "+id, netVPCDeleteBudget, netIsCode("DependencyViolation"),
		func(ctx context.Context) string { return vpcContents(ctx, x, id) },
		func() error {
			_, err := x.AWS.EC2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)})
			return err
		})
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	return nil
}

// vpcContents names what is still in a VPC, for the error of a delete whose
// budget ran out.
func vpcContents(ctx context.Context, x *resource.Ctx, vpc string) string {
	var parts []string
	if enis, err := netENIs(ctx, x, "vpc-id", vpc); err == nil && len(enis) > 0 {
		parts = append(parts, netDescribeENIs(enis))
	}
	f := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}
	if out, err := x.AWS.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: f}); err == nil {
		for _, s := range out.Subnets {
			parts = append(parts, "subnet "+aws.ToString(s.SubnetId))
		}
	}
	if out, err := x.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: f}); err == nil {
		for _, g := range out.SecurityGroups {
			if aws.ToString(g.GroupName) != "default" {
				parts = append(parts, "security group "+aws.ToString(g.GroupId))
			}
		}
	}
	attached := []ec2types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpc}}}
	if out, err := x.AWS.EC2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: attached}); err == nil {
		for _, g := range out.InternetGateways {
			parts = append(parts, "internet gateway "+aws.ToString(g.InternetGatewayId))
		}
	}
	return strings.Join(parts, ", ")
}

// SubnetKind is one subnet of the managed VPC. CIDR, availability zone and
// VPC cannot change in place.
type SubnetKind struct{}

// Resolve names each subnet's availability zone: the ZoneIndex-th of the
// region's zones, sorted by name, that are available, are availability
// zones (not Local or Wavelength zones) and need no opt-in — the zones
// Terraform's aws_availability_zones data source gives with the same
// filters. One DescribeAvailabilityZones serves every subnet of the plan. A
// subnet that exists keeps its zone unless this mapping names another one
// (then its availability_zone diff replaces it, as any ForceNew field does).
// More zones asked for than the region has fails the plan, naming
// network.availability_zones of the file.
func (SubnetKind) Resolve(ctx context.Context, x *resource.Ctx, rs []resource.Resource) ([]resource.Resource, error) {
	need := 0 // zones needed: the highest index to resolve, plus one
	for i := range rs {
		s, err := netSpec[stack.SubnetSpec](&rs[i])
		if err != nil {
			return nil, err
		}
		if s.AvailabilityZone == "" {
			need = max(need, s.ZoneIndex+1)
		}
	}
	if need == 0 {
		return rs, nil
	}
	region := ""
	if x.Env != nil {
		region = x.Env.AWS.Region
	}
	zones, err := subnetZones(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("look up the availability zones of %s (ec2 DescribeAvailabilityZones): %w", region, err)
	}
	if need > len(zones) {
		return nil, subnetTooFewZones(x.Env, need, region, zones)
	}
	out := make([]resource.Resource, len(rs))
	for i, r := range rs {
		s := netMustSpec[stack.SubnetSpec](&r)
		if s.AvailabilityZone == "" {
			c := *s
			c.AvailabilityZone = zones[s.ZoneIndex]
			r.Spec = &c
		}
		out[i] = r
	}
	return out, nil
}

// subnetZones lists the names of the region's zones a managed subnet may go
// in, sorted.
func subnetZones(ctx context.Context, x *resource.Ctx) ([]string, error) {
	out, err := x.AWS.EC2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{Filters: []ec2types.Filter{
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

// subnetTooFewZones says that env asks for more zones than its region has,
// at the file's network.availability_zones.
func subnetTooFewZones(env *config.Environment, need int, region string, zones []string) error {
	p := config.Problem{Field: "network.availability_zones"}
	if env != nil {
		p.File, p.Line = env.File, env.Lines["network.availability_zones"]
		if env.Network.AvailabilityZones > 0 {
			need = env.Network.AvailabilityZones
		}
	}
	have := "none"
	if len(zones) > 0 {
		have = "only " + strings.Join(zones, ", ")
	}
	p.Message = fmt.Sprintf("%d availability zones asked for, but region %s has %d available to this account (%s); set it to %d or fewer, or use another region",
		need, region, len(zones), have, len(zones))
	return errors.New(p.String())
}

func (SubnetKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := netMustSpec[stack.SubnetSpec](r)
	az := s.AvailabilityZone
	if az == "" {
		az = plan.Unknown // not resolved (Resolve was not called)
	}
	return netTagAttrs(resource.Attrs{
		"cidr":              {Value: s.CIDR, ForceNew: true},
		"availability_zone": {Value: az, ForceNew: true},
		"vpc_id":            {Value: s.VPC.Resolve(refs), ForceNew: true},
	}, r.Tags)
}

func (k SubnetKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	return netReadOne(ctx, x, k, r)
}

// ReadAll reads every subnet of rs with one DescribeSubnets by their Name
// tags (resource.BatchReader).
func (SubnetKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	out, err := x.AWS.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: netByNamesFilter(rs)})
	if err != nil {
		return nil, fmt.Errorf("DescribeSubnets %s: %w", strings.Join(netNames(rs), ", "), err)
	}
	return netMatch(rs, out.Subnets, func(s ec2types.Subnet) string { return aws.ToString(s.SubnetId) },
		func(s ec2types.Subnet) map[string]string { return netTagMap(s.Tags) }, subnetLive)
}

func subnetLive(sn ec2types.Subnet, ours bool) (*resource.Live, error) {
	id := aws.ToString(sn.SubnetId)
	return &resource.Live{ID: id, Ours: ours, Raw: sn,
		Outputs: resource.Outputs{"id": id, "cidr": aws.ToString(sn.CidrBlock), "availability_zone": aws.ToString(sn.AvailabilityZone), "vpc_id": aws.ToString(sn.VpcId)},
		Attrs: netTagAttrs(resource.Attrs{
			"cidr":              {Value: aws.ToString(sn.CidrBlock), ForceNew: true},
			"availability_zone": {Value: aws.ToString(sn.AvailabilityZone), ForceNew: true},
			"vpc_id":            {Value: aws.ToString(sn.VpcId), ForceNew: true},
		}, netTagMap(sn.Tags))}, nil
}

func (SubnetKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := netSpec[stack.SubnetSpec](r)
	if err != nil {
		return nil, err
	}
	vpc := s.VPC.Resolve(refs)
	if netUnknown(vpc) {
		return nil, fmt.Errorf("create subnet %s: the VPC id is not known", r.Name)
	}
	if s.AvailabilityZone == "" {
		return nil, fmt.Errorf("create subnet %s: its availability zone (index %d) was not resolved", r.Name, s.ZoneIndex)
	}
	out, err := x.AWS.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(s.CIDR),
		AvailabilityZone: aws.String(s.AvailabilityZone), TagSpecifications: netTagSpec(ec2types.ResourceTypeSubnet, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateSubnet %s in %s: %w", s.CIDR, vpc, err)
	}
	id := aws.ToString(out.Subnet.SubnetId)
	return resource.Outputs{"id": id, "cidr": s.CIDR, "availability_zone": s.AvailabilityZone, "vpc_id": vpc}, nil
}

func (SubnetKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// Delete waits for the subnet's network interfaces to go (task ENIs linger
// after the service is gone, a NAT gateway's goes when it is deleted;
// docs/research/aws-ecs.md §5.1), then deletes it, retrying DependencyViolation.
// When the budget runs out the error names the interfaces still there.
func (SubnetKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("subnet %s (%s) exists without this environment's tags; deploybot does not delete it", r.Name, live.ID)
	}
	id := live.ID
	started := x.Clock.Now()
	deadline := started.Add(x.Wait(netSubnetDeleteBudget))
	if _, err := netWaitENIsGone(ctx, x, r.Address, "subnet-id", id, deadline); err != nil {
		return err
	}
	err := netRetryUntil(ctx, x, r.Address, "delete subnet "+id, started, deadline, netIsCode("DependencyViolation"),
		func(ctx context.Context) string {
			parts := []string{}
			if enis, err := netENIs(ctx, x, "subnet-id", id); err == nil && len(enis) > 0 {
				parts = append(parts, netDescribeENIs(enis))
			}
			if out, err := x.AWS.EC2.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{
				{Name: aws.String("subnet-id"), Values: []string{id}}, {Name: aws.String("state"), Values: []string{"pending", "available", "deleting"}}}}); err == nil {
				for _, g := range out.NatGateways {
					parts = append(parts, fmt.Sprintf("NAT gateway %s (%s)", aws.ToString(g.NatGatewayId), g.State))
				}
			}
			return strings.Join(parts, ", ")
		},
		func() error {
			_, err := x.AWS.EC2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(id)})
			return err
		})
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	return nil
}

// InternetGatewayKind is the managed VPC's internet gateway. It moves with
// its VPC: a new VPC gets a new gateway (the old one must be detached before
// the old VPC can go, which a replacement's delete does first).
type InternetGatewayKind struct{}

func (InternetGatewayKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := netMustSpec[stack.InternetGatewaySpec](r)
	return netTagAttrs(resource.Attrs{"vpc_id": {Value: s.VPC.Resolve(refs), ForceNew: true}}, r.Tags)
}

func (k InternetGatewayKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	return netReadOne(ctx, x, k, r)
}

// ReadAll reads the gateways of rs with one DescribeInternetGateways by
// their Name tags (resource.BatchReader; a stack has one).
func (InternetGatewayKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	out, err := x.AWS.EC2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: netByNamesFilter(rs)})
	if err != nil {
		return nil, fmt.Errorf("DescribeInternetGateways %s: %w", strings.Join(netNames(rs), ", "), err)
	}
	return netMatch(rs, out.InternetGateways, func(g ec2types.InternetGateway) string { return aws.ToString(g.InternetGatewayId) },
		func(g ec2types.InternetGateway) map[string]string { return netTagMap(g.Tags) }, igwLive)
}

func igwLive(g ec2types.InternetGateway, ours bool) (*resource.Live, error) {
	id := aws.ToString(g.InternetGatewayId)
	vpc := ""
	for _, a := range g.Attachments {
		vpc = aws.ToString(a.VpcId)
	}
	return &resource.Live{ID: id, Ours: ours, Raw: g, Outputs: resource.Outputs{"id": id, "vpc_id": vpc},
		Attrs: netTagAttrs(resource.Attrs{"vpc_id": {Value: vpc, ForceNew: true}}, netTagMap(g.Tags))}, nil
}

func (InternetGatewayKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := netSpec[stack.InternetGatewaySpec](r)
	if err != nil {
		return nil, err
	}
	vpc := s.VPC.Resolve(refs)
	if netUnknown(vpc) {
		return nil, fmt.Errorf("create internet gateway %s: the VPC id is not known", r.Name)
	}
	out, err := x.AWS.EC2.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{TagSpecifications: netTagSpec(ec2types.ResourceTypeInternetGateway, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateInternetGateway %s: %w", r.Name, err)
	}
	id := aws.ToString(out.InternetGateway.InternetGatewayId)
	if err := igwAttach(ctx, x, r.Address, id, vpc); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "vpc_id": vpc}, nil
}

// igwAttach attaches, retrying InvalidInternetGatewayID.NotFound right
// after create (EC2's eventual consistency; docs/research/aws-ecs.md §5 IGW row).
func igwAttach(ctx context.Context, x *resource.Ctx, address, id, vpc string) error {
	err := netRetry(ctx, x, address, "attach internet gateway "+id, netIGWBudget, netIsCode("InvalidInternetGatewayID.NotFound"), nil, func() error {
		_, err := x.AWS.EC2.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(id), VpcId: aws.String(vpc)})
		return err
	})
	if err != nil {
		return fmt.Errorf("AttachInternetGateway %s to %s: %w", id, vpc, err)
	}
	return nil
}

func (InternetGatewayKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// Delete detaches (retrying DependencyViolation while public addresses are
// still mapped in the VPC: lingering task ENIs, a NAT gateway's interface;
// Gateway.NotAttached means done) and deletes, each within the provider's
// 20-minute budget (docs/research/aws-ecs.md §5 IGW row).
func (InternetGatewayKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("internet gateway %s (%s) exists without this environment's tags; deploybot does not delete it", r.Name, live.ID)
	}
	id := live.ID
	if vpc := live.Outputs["vpc_id"]; vpc != "" {
		err := netRetry(ctx, x, r.Address, "detach internet gateway "+id+" from "+vpc, netIGWBudget, netIsCode("DependencyViolation"),
			func(ctx context.Context) string {
				enis, err := netENIs(ctx, x, "vpc-id", vpc)
				if err != nil {
					return ""
				}
				var mapped []ec2types.NetworkInterface
				for _, e := range enis {
					if e.Association != nil && aws.ToString(e.Association.PublicIp) != "" {
						mapped = append(mapped, e)
					}
				}
				return netDescribeENIs(mapped) + " with public addresses"
			},
			func() error {
				_, err := x.AWS.EC2.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(id), VpcId: aws.String(vpc)})
				return err
			})
		if err != nil && !awserr.IsNotFound(err) { // Gateway.NotAttached counts as not found
			return err
		}
	}
	err := netRetry(ctx, x, r.Address, "delete internet gateway "+id, netIGWBudget, netIsCode("DependencyViolation"), nil, func() error {
		_, err := x.AWS.EC2.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(id)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	return nil
}
