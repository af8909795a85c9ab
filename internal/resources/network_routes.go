package resources

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// RouteTableKind is a route table of the managed VPC with its routes and
// subnet associations as attributes (stack.RouteTableSpec says why):
// "route.<destination>" is the target id, "associations" the sorted subnet
// ids. Both change in place; the VPC cannot.
type RouteTableKind struct{}

func (RouteTableKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := netMustSpec[stack.RouteTableSpec](r)
	a := resource.Attrs{"vpc_id": {Value: s.VPC.Resolve(refs), ForceNew: true}}
	for _, ro := range s.Routes {
		a["route."+ro.Destination] = resource.Attr{Value: ro.Target.Resolve(refs)}
	}
	var subnets []string
	unknown := false
	for _, sn := range s.Subnets {
		v := sn.Resolve(refs)
		unknown = unknown || netUnknown(v)
		subnets = append(subnets, v)
	}
	if unknown {
		a["associations"] = resource.Attr{Value: plan.Unknown}
	} else {
		a["associations"] = resource.Attr{Value: netJSONList(subnets)}
	}
	return netTagAttrs(a, r.Tags)
}

func (k RouteTableKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	return netReadOne(ctx, x, k, r)
}

// ReadAll reads every route table of rs with one DescribeRouteTables by
// their Name tags (resource.BatchReader).
func (RouteTableKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	out, err := x.AWS.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: netByNamesFilter(rs)})
	if err != nil {
		return nil, fmt.Errorf("DescribeRouteTables %s: %w", strings.Join(netNames(rs), ", "), err)
	}
	return netMatch(rs, out.RouteTables, func(t ec2types.RouteTable) string { return aws.ToString(t.RouteTableId) },
		func(t ec2types.RouteTable) map[string]string { return netTagMap(t.Tags) },
		func(t ec2types.RouteTable, ours bool) (*resource.Live, error) { return rtLive(t, ours), nil })
}

func rtLive(rt ec2types.RouteTable, ours bool) *resource.Live {
	id := aws.ToString(rt.RouteTableId)
	a := resource.Attrs{"vpc_id": {Value: aws.ToString(rt.VpcId), ForceNew: true}}
	for dest, target := range rtRoutes(rt) {
		a["route."+dest] = resource.Attr{Value: target}
	}
	a["associations"] = resource.Attr{Value: netJSONList(rtSubnets(rt))}
	netTagAttrs(a, netTagMap(rt.Tags))
	return &resource.Live{ID: id, Ours: ours, Raw: rt, Attrs: a, Outputs: resource.Outputs{"id": id, "vpc_id": aws.ToString(rt.VpcId)}}
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

func (k RouteTableKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := netSpec[stack.RouteTableSpec](r)
	if err != nil {
		return nil, err
	}
	vpc := s.VPC.Resolve(refs)
	if netUnknown(vpc) {
		return nil, fmt.Errorf("create route table %s: the VPC id is not known", r.Name)
	}
	out, err := x.AWS.EC2.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(vpc),
		TagSpecifications: netTagSpec(ec2types.ResourceTypeRouteTable, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("CreateRouteTable %s in %s: %w", r.Name, vpc, err)
	}
	if err := rtReconcile(ctx, x, r, *out.RouteTable, s, refs); err != nil {
		return nil, err
	}
	id := aws.ToString(out.RouteTable.RouteTableId)
	return resource.Outputs{"id": id, "vpc_id": vpc}, nil
}

func (RouteTableKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := netSpec[stack.RouteTableSpec](r)
	if err != nil {
		return nil, err
	}
	rt, ok := live.Raw.(ec2types.RouteTable)
	if !ok {
		return nil, fmt.Errorf("update %s: no live route table", r.Address)
	}
	if err := rtReconcile(ctx, x, r, rt, s, refs); err != nil {
		return nil, err
	}
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// rtReconcile makes the table's routes and associations those of the spec.
func rtReconcile(ctx context.Context, x *resource.Ctx, r *resource.Resource, rt ec2types.RouteTable, s *stack.RouteTableSpec, refs resource.Refs) error {
	id := aws.ToString(rt.RouteTableId)
	have := rtRoutes(rt)
	want := map[string]string{}
	for _, ro := range s.Routes {
		target := ro.Target.Resolve(refs)
		if netUnknown(target) {
			return fmt.Errorf("route %s in %s: the target of %s is not known", ro.Destination, id, ro.Target.Address)
		}
		want[ro.Destination] = target
	}
	for _, dest := range netSortedKeys(want) {
		target := want[dest]
		if have[dest] == target {
			continue
		}
		in := &ec2.CreateRouteInput{RouteTableId: aws.String(id), DestinationCidrBlock: aws.String(dest)}
		rin := &ec2.ReplaceRouteInput{RouteTableId: aws.String(id), DestinationCidrBlock: aws.String(dest)}
		if strings.HasPrefix(target, "nat-") {
			in.NatGatewayId, rin.NatGatewayId = aws.String(target), aws.String(target)
		} else {
			in.GatewayId, rin.GatewayId = aws.String(target), aws.String(target)
		}
		var err error
		if _, exists := have[dest]; exists {
			_, err = x.AWS.EC2.ReplaceRoute(ctx, rin)
		} else {
			_, err = x.AWS.EC2.CreateRoute(ctx, in)
			if awserr.Code(err) == "RouteAlreadyExists" {
				_, err = x.AWS.EC2.ReplaceRoute(ctx, rin)
			}
		}
		if err != nil {
			return fmt.Errorf("route %s → %s in %s: %w", dest, target, id, err)
		}
	}
	for _, dest := range netSortedKeys(have) {
		if _, ok := want[dest]; ok {
			continue
		}
		_, err := x.AWS.EC2.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(id), DestinationCidrBlock: aws.String(dest)})
		if err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteRoute %s in %s: %w", dest, id, err)
		}
	}

	wantSubnets := map[string]bool{}
	for _, sn := range s.Subnets {
		v := sn.Resolve(refs)
		if netUnknown(v) {
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
		_, err := x.AWS.EC2.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: as.RouteTableAssociationId})
		if err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DisassociateRouteTable %s from %s: %w", sn, id, err)
		}
	}
	for _, sn := range netSortedKeys(wantSubnets) {
		if err := rtAssociate(ctx, x, id, sn); err != nil {
			return err
		}
	}
	return nil
}

// rtAssociate associates subnet with table id. A subnet still associated with
// another table (one of ours on its way out, e.g. nat single → per-az moves
// the private subnets to their zone's table) is moved: disassociated there
// first, since an association cannot be created twice.
func rtAssociate(ctx context.Context, x *resource.Ctx, id, subnet string) error {
	_, err := x.AWS.EC2.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(id), SubnetId: aws.String(subnet)})
	if awserr.Code(err) != "Resource.AlreadyAssociated" {
		if err != nil {
			return fmt.Errorf("AssociateRouteTable %s with %s: %w", subnet, id, err)
		}
		return nil
	}
	out, derr := x.AWS.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
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
			if _, err := x.AWS.EC2.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: as.RouteTableAssociationId}); err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("move %s from %s to %s: %w", subnet, aws.ToString(other.RouteTableId), id, err)
			}
		}
	}
	if _, err := x.AWS.EC2.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(id), SubnetId: aws.String(subnet)}); err != nil {
		return fmt.Errorf("AssociateRouteTable %s with %s: %w", subnet, id, err)
	}
	return nil
}

// Delete disassociates the table's subnets, then deletes it (an associated
// table cannot be deleted: DependencyViolation, docs/research/aws-ecs.md §5.3
// "non-main route tables (disassociate first)").
func (RouteTableKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("route table %s (%s) exists without this environment's tags; deploybot does not delete it", r.Name, live.ID)
	}
	id := live.ID
	// Read it again: associations may have changed since the plan.
	out, err := x.AWS.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{id}})
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
			if _, err := x.AWS.EC2.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: as.RouteTableAssociationId}); err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("DisassociateRouteTable %s: %w", aws.ToString(as.RouteTableAssociationId), err)
			}
		}
	}
	err = netRetry(ctx, x, r.Address, "delete route table "+id, netRTDeleteBudget, netIsCode("DependencyViolation"), nil, func() error {
		_, err := x.AWS.EC2.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: aws.String(id)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	return nil
}

func netSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
