package ec2

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// RouteSpec is one route: Destination CIDR → Target (an internet gateway or
// NAT gateway id).
type RouteSpec struct {
	Destination string
	Target      resource.Ref
}

// RouteTableSpec is a route table with its routes (besides the VPC's local
// route) and the subnets associated with it. Routes and associations are
// attributes of the route table rather than resources of their own: a moved
// subnet or a default route re-pointed at a new NAT gateway is then an
// in-place update of one resource (Associate/Disassociate, ReplaceRoute),
// shown as a field change, and reading it takes a single
// DescribeRouteTables call.
type RouteTableSpec struct {
	VPC     resource.Ref
	Routes  []RouteSpec
	Subnets []resource.Ref
}

// RouteTableModel is what a plan compares of a route table:
// "route.<destination>" is the target id, "associations" the sorted subnet
// ids (known after apply while any of them is).
type RouteTableModel struct {
	VPC          string            `attr:"vpc_id,forcenew"`
	Routes       map[string]string `attr:"route"`
	Associations string            `attr:"associations"`
}

// RouteTable is the route table kind. Routes and associations change in
// place; the VPC cannot.
var RouteTable = resource.Define[RouteTableSpec, RouteTableModel, ec2types.RouteTable, awsapi.EC2API](KindRouteTable, rtKind{routeTableFinder}, connect)

type rtKind struct {
	finder[RouteTableSpec, ec2types.RouteTable, RouteTableModel, ec2types.RouteTable]
}

type (
	routeTable = resource.Typed[RouteTableSpec]
	foundRT    = resource.Found[RouteTableModel, ec2types.RouteTable]
)

func (rtKind) Desired(r *routeTable, refs resource.Refs) RouteTableModel {
	s := r.Spec
	m := RouteTableModel{VPC: s.VPC.Resolve(refs), Routes: map[string]string{}}
	for _, ro := range s.Routes {
		m.Routes[ro.Destination] = ro.Target.Resolve(refs)
	}
	subnets := resource.ResolveAll(refs, s.Subnets)
	if unknown(subnets...) {
		m.Associations = plan.Unknown
	} else {
		m.Associations = resource.Set(subnets).AttrValue()
	}
	return m
}

// routeTableFinder finds route tables: one DescribeRouteTables by Name tags, or by id.
var routeTableFinder = finder[RouteTableSpec, ec2types.RouteTable, RouteTableModel, ec2types.RouteTable]{op: "DescribeRouteTables", idFilter: "route-table-id", arnType: "ec2:route-table",
	describe: func(ctx context.Context, x *x, f []ec2types.Filter) ([]ec2types.RouteTable, error) {
		out, err := x.API.DescribeRouteTables(ctx, &awsec2.DescribeRouteTablesInput{Filters: f})
		return itemsOf(out, err, func(o *awsec2.DescribeRouteTablesOutput) []ec2types.RouteTable { return o.RouteTables })
	},
	found: rtFound,
}

func rtFound(rt ec2types.RouteTable) *foundRT {
	id := aws.ToString(rt.RouteTableId)
	return &foundRT{ID: id, Tags: awstags.EC2Map(rt.Tags), Detail: rt,
		Model:   RouteTableModel{VPC: aws.ToString(rt.VpcId), Routes: rtRoutes(rt), Associations: resource.Set(rtSubnets(rt)).AttrValue()},
		Outputs: resource.Outputs{"id": id, "vpc_id": aws.ToString(rt.VpcId)}}
}

// rtRoutes returns the table's routes other than the VPC's local one,
// destination → target id.
func rtRoutes(rt ec2types.RouteTable) map[string]string {
	m := map[string]string{}
	for _, ro := range rt.Routes {
		dest := aws.ToString(ro.DestinationCidrBlock)
		target := aws.ToString(ro.NatGatewayId)
		if target == "" {
			target = aws.ToString(ro.GatewayId)
		}
		if dest == "" || target == "local" || ro.Origin == ec2types.RouteOriginCreateRouteTable {
			continue
		}
		m[dest] = target
	}
	return m
}

// rtSubnets returns the subnets explicitly associated with the table.
func rtSubnets(rt ec2types.RouteTable) []string {
	var out []string
	for _, as := range rt.Associations {
		if s := aws.ToString(as.SubnetId); s != "" && !aws.ToBool(as.Main) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func (rtKind) Create(ctx context.Context, x *x, r *routeTable, refs resource.Refs) (resource.Outputs, error) {
	vpc := r.Spec.VPC.Resolve(refs)
	if unknown(vpc) {
		return nil, fmt.Errorf("create route table %s: the VPC id is not known", r.Name)
	}
	out, err := x.API.CreateRouteTable(ctx, &awsec2.CreateRouteTableInput{VpcId: aws.String(vpc),
		TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeRouteTable, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateRouteTable %s in %s: %w", r.Name, vpc, err)
	}
	if err := reconcileRoutes(ctx, x, *out.RouteTable, r.Spec, refs); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": aws.ToString(out.RouteTable.RouteTableId), "vpc_id": vpc}, nil
}

func (rtKind) Update(ctx context.Context, x *x, r *routeTable, d *resource.Delta[RouteTableModel, ec2types.RouteTable], refs resource.Refs) (resource.Outputs, error) {
	if err := reconcileRoutes(ctx, x, d.Found.Detail, r.Spec, refs); err != nil {
		return nil, err
	}
	return updateTags(ctx, x, d)
}

// reconcileRoutes makes the table's routes and associations those of the spec.
func reconcileRoutes(ctx context.Context, x *x, rt ec2types.RouteTable, s *RouteTableSpec, refs resource.Refs) error {
	id := aws.ToString(rt.RouteTableId)
	have := rtRoutes(rt)
	want := map[string]string{}
	for _, ro := range s.Routes {
		target := ro.Target.Resolve(refs)
		if unknown(target) {
			return fmt.Errorf("route %s in %s: the target of %s is not known", ro.Destination, id, ro.Target.Address)
		}
		want[ro.Destination] = target
	}
	for _, dest := range slices.Sorted(maps.Keys(want)) {
		target := want[dest]
		if have[dest] == target {
			continue
		}
		in := &awsec2.CreateRouteInput{RouteTableId: aws.String(id), DestinationCidrBlock: aws.String(dest)}
		rin := &awsec2.ReplaceRouteInput{RouteTableId: aws.String(id), DestinationCidrBlock: aws.String(dest)}
		if strings.HasPrefix(target, "nat-") {
			in.NatGatewayId, rin.NatGatewayId = aws.String(target), aws.String(target)
		} else {
			in.GatewayId, rin.GatewayId = aws.String(target), aws.String(target)
		}
		var err error
		if _, exists := have[dest]; exists {
			_, err = x.API.ReplaceRoute(ctx, rin)
		} else {
			_, err = x.API.CreateRoute(ctx, in)
			if awserr.Code(err) == "RouteAlreadyExists" {
				_, err = x.API.ReplaceRoute(ctx, rin)
			}
		}
		if err != nil {
			return fmt.Errorf("route %s → %s in %s: %w", dest, target, id, err)
		}
	}
	for _, dest := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[dest]; ok {
			continue
		}
		_, err := x.API.DeleteRoute(ctx, &awsec2.DeleteRouteInput{RouteTableId: aws.String(id), DestinationCidrBlock: aws.String(dest)})
		if err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteRoute %s in %s: %w", dest, id, err)
		}
	}

	wantSubnets := map[string]bool{}
	for _, sn := range s.Subnets {
		v := sn.Resolve(refs)
		if unknown(v) {
			return fmt.Errorf("associate %s: the id of %s is not known", id, sn.Address)
		}
		wantSubnets[v] = true
	}
	for _, as := range rt.Associations {
		sn := aws.ToString(as.SubnetId)
		if sn == "" || aws.ToBool(as.Main) || wantSubnets[sn] {
			delete(wantSubnets, sn)
			continue
		}
		_, err := x.API.DisassociateRouteTable(ctx, &awsec2.DisassociateRouteTableInput{AssociationId: as.RouteTableAssociationId})
		if err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DisassociateRouteTable %s from %s: %w", sn, id, err)
		}
	}
	for _, sn := range slices.Sorted(maps.Keys(wantSubnets)) {
		if err := associate(ctx, x, id, sn); err != nil {
			return err
		}
	}
	return nil
}

// associate associates subnet with table id. A subnet still associated
// with another table (one of ours on its way out, e.g. nat single → per-az
// moves the private subnets to their zone's table) is moved: disassociated
// there first, since an association cannot be created twice.
func associate(ctx context.Context, x *x, id, subnet string) error {
	_, err := x.API.AssociateRouteTable(ctx, &awsec2.AssociateRouteTableInput{RouteTableId: aws.String(id), SubnetId: aws.String(subnet)})
	if awserr.Code(err) != "Resource.AlreadyAssociated" {
		if err != nil {
			return fmt.Errorf("AssociateRouteTable %s with %s: %w", subnet, id, err)
		}
		return nil
	}
	out, derr := x.API.DescribeRouteTables(ctx, &awsec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
		{Name: aws.String("association.subnet-id"), Values: []string{subnet}}}})
	if derr != nil {
		return fmt.Errorf("AssociateRouteTable %s with %s: %w (and DescribeRouteTables: %v)", subnet, id, err, derr)
	}
	for _, other := range out.RouteTables {
		for _, as := range other.Associations {
			if aws.ToString(as.SubnetId) != subnet {
				continue
			}
			if aws.ToString(other.RouteTableId) == id {
				return nil // already ours
			}
			if _, err := x.API.DisassociateRouteTable(ctx, &awsec2.DisassociateRouteTableInput{AssociationId: as.RouteTableAssociationId}); err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("move %s from %s to %s: %w", subnet, aws.ToString(other.RouteTableId), id, err)
			}
		}
	}
	if _, err := x.API.AssociateRouteTable(ctx, &awsec2.AssociateRouteTableInput{RouteTableId: aws.String(id), SubnetId: aws.String(subnet)}); err != nil {
		return fmt.Errorf("AssociateRouteTable %s with %s: %w", subnet, id, err)
	}
	return nil
}

// Delete disassociates the table's subnets, then deletes it (an associated
// table cannot be deleted: DependencyViolation, docs/research/aws-ecs.md §5.3
// "non-main route tables (disassociate first)").
func (rtKind) Delete(ctx context.Context, x *x, r *routeTable, live *foundRT) error {
	return deleteOurs(r, live, "route table", func(id string) error { return deleteRouteTable(ctx, x, r.Address, id) })
}

// deleteRouteTable disassociates table id's subnets and deletes it.
func deleteRouteTable(ctx context.Context, x *x, address, id string) error {
	// Read it again: associations may have changed since the plan.
	out, err := x.API.DescribeRouteTables(ctx, &awsec2.DescribeRouteTablesInput{RouteTableIds: []string{id}})
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("DescribeRouteTables %s: %w", id, err)
	}
	for _, rt := range out.RouteTables {
		for _, as := range rt.Associations {
			if aws.ToBool(as.Main) {
				return fmt.Errorf("route table %s is its VPC's main route table; deploybot does not delete it", id)
			}
			if _, err := x.API.DisassociateRouteTable(ctx, &awsec2.DisassociateRouteTableInput{AssociationId: as.RouteTableAssociationId}); err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("DisassociateRouteTable %s: %w", aws.ToString(as.RouteTableAssociationId), err)
			}
		}
	}
	return awserr.IgnoreNotFound(retryBlocked(ctx, x, address, "delete route table "+id, x.Clock.Now(), rtDeleteBudget, awserr.IsCode("DependencyViolation"), nil, func() error {
		return errOf(x.API.DeleteRouteTable(ctx, &awsec2.DeleteRouteTableInput{RouteTableId: aws.String(id)}))
	}))
}
