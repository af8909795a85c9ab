package awssim

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Internet gateways and route tables.

func init() {
	Handle(createInternetGateway)
	Handle(attachInternetGateway)
	Handle(detachInternetGateway)
	Handle(deleteInternetGateway)
	Handle(describeInternetGateways)
	Handle(createRouteTable)
	Handle(describeRouteTables)
	Handle(deleteRouteTable)
	Handle(createRoute)
	Handle(replaceRoute)
	Handle(deleteRoute)
	Handle(associateRouteTable)
	Handle(disassociateRouteTable)
}

func (w *World) igwByID(id string) (*InternetGateway, error) {
	return ec2Find(w.ec2NetState().IGWs, id, "InvalidInternetGatewayID.NotFound", "internetGateway")
}

func createInternetGateway(_ context.Context, w *World, in *ec2.CreateInternetGatewayInput) (*ec2.CreateInternetGatewayOutput, error) {
	w.ec2Tick()
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeInternetGateway)
	if err != nil {
		return nil, err
	}
	g := &InternetGateway{ID: w.NewID("igw"), Tags: tags}
	w.ec2NetState().IGWs[g.ID] = g
	return &ec2.CreateInternetGatewayOutput{InternetGateway: w.igwOut(g)}, nil
}

func (w *World) igwOut(g *InternetGateway) *types.InternetGateway {
	out := &types.InternetGateway{InternetGatewayId: aws.String(g.ID), OwnerId: aws.String(w.Account), Tags: ec2Tags(g.Tags)}
	if g.VPCID != "" {
		// EC2 reports an attached internet gateway as "available".
		out.Attachments = []types.InternetGatewayAttachment{{VpcId: aws.String(g.VPCID), State: types.AttachmentStatus("available")}}
	}
	return out
}

func attachInternetGateway(_ context.Context, w *World, in *ec2.AttachInternetGatewayInput) (*ec2.AttachInternetGatewayOutput, error) {
	w.ec2Tick()
	g, err := w.igwByID(aws.ToString(in.InternetGatewayId))
	if err != nil {
		return nil, err
	}
	vpcID := aws.ToString(in.VpcId)
	if _, err := w.vpcByID(vpcID); err != nil {
		return nil, err
	}
	if g.VPCID != "" {
		return nil, Err("Resource.AlreadyAssociated", fmt.Sprintf("resource %s is already attached to network %s", g.ID, g.VPCID))
	}
	for _, o := range w.ec2NetState().IGWs {
		if o.VPCID == vpcID {
			return nil, Err("InvalidParameterValue", fmt.Sprintf("Network %s already has an internet gateway attached", vpcID))
		}
	}
	g.VPCID = vpcID
	return &ec2.AttachInternetGatewayOutput{}, nil
}

// detachInternetGateway refuses while any interface in the VPC has a public
// address mapped (docs/research/aws-ecs.md §5 IGW row: lingering task ENIs and
// NAT gateways' interfaces keep theirs until they are gone).
func detachInternetGateway(_ context.Context, w *World, in *ec2.DetachInternetGatewayInput) (*ec2.DetachInternetGatewayOutput, error) {
	w.ec2Tick()
	g, err := w.igwByID(aws.ToString(in.InternetGatewayId))
	if err != nil {
		return nil, err
	}
	vpcID := aws.ToString(in.VpcId)
	if g.VPCID == "" || g.VPCID != vpcID {
		return nil, Err("Gateway.NotAttached", fmt.Sprintf("resource %s is not attached to network %s", g.ID, vpcID))
	}
	for _, id := range sortedKeys(w.EC2State().ENIs) {
		if e := w.EC2State().ENIs[id]; e.VPCID == vpcID && e.PublicIP != "" {
			return nil, Err("DependencyViolation", fmt.Sprintf("Network %s has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.", vpcID))
		}
	}
	g.VPCID = ""
	return &ec2.DetachInternetGatewayOutput{}, nil
}

func deleteInternetGateway(_ context.Context, w *World, in *ec2.DeleteInternetGatewayInput) (*ec2.DeleteInternetGatewayOutput, error) {
	w.ec2Tick()
	g, err := w.igwByID(aws.ToString(in.InternetGatewayId))
	if err != nil {
		return nil, err
	}
	if g.VPCID != "" {
		return nil, ec2DependencyViolation("internetGateway", g.ID)
	}
	delete(w.ec2NetState().IGWs, g.ID)
	return &ec2.DeleteInternetGatewayOutput{}, nil
}

func describeInternetGateways(_ context.Context, w *World, in *ec2.DescribeInternetGatewaysInput) (*ec2.DescribeInternetGatewaysOutput, error) {
	w.ec2Tick()
	igws, err := describeEC2(ec2Describe[InternetGateway]{all: w.ec2NetState().IGWs, ids: in.InternetGatewayIds, byID: w.igwByID,
		filters: in.Filters, tags: (*InternetGateway).tagMap, attr: w.igwFilter},
		func(g *InternetGateway) types.InternetGateway { return *w.igwOut(g) })
	return &ec2.DescribeInternetGatewaysOutput{InternetGateways: igws}, err
}

// igwFilter answers DescribeInternetGateways' filters; a detached gateway
// has no attachment values.
func (w *World) igwFilter(g *InternetGateway, name string) ([]string, bool) {
	switch name {
	case "internet-gateway-id":
		return ec2One(g.ID), true
	case "attachment.vpc-id":
		if g.VPCID == "" {
			return nil, true
		}
		return ec2One(g.VPCID), true
	case "attachment.state":
		if g.VPCID == "" {
			return nil, true
		}
		return ec2One("available"), true
	case "owner-id":
		return ec2One(w.Account), true
	}
	return nil, false
}

func (w *World) rtByID(id string) (*RouteTable, error) {
	return ec2Find(w.ec2NetState().RouteTables, id, "InvalidRouteTableID.NotFound", "routeTable")
}

func createRouteTable(_ context.Context, w *World, in *ec2.CreateRouteTableInput) (*ec2.CreateRouteTableOutput, error) {
	w.ec2Tick()
	v, err := w.vpcByID(aws.ToString(in.VpcId))
	if err != nil {
		return nil, err
	}
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeRouteTable)
	if err != nil {
		return nil, err
	}
	rt := &RouteTable{ID: w.NewID("rtb"), VPCID: v.ID, Routes: []Route{{Destination: v.CIDR, Target: "local"}},
		Associations: map[string]string{}, Tags: tags}
	w.ec2NetState().RouteTables[rt.ID] = rt
	out := w.rtOut(rt)
	return &ec2.CreateRouteTableOutput{RouteTable: &out}, nil
}

// routeState is "blackhole" when the target is gone (a deleted NAT gateway,
// a detached internet gateway), as EC2 shows it.
func (w *World) routeState(rt *RouteTable, r Route) types.RouteState {
	n := w.ec2NetState()
	switch {
	case strings.HasPrefix(r.Target, "igw-"):
		if g, ok := n.IGWs[r.Target]; !ok || g.VPCID != rt.VPCID {
			return types.RouteStateBlackhole
		}
	case strings.HasPrefix(r.Target, "nat-"):
		if g, ok := n.NATs[r.Target]; !ok || g.State == types.NatGatewayStateDeleted || g.State == types.NatGatewayStateFailed || g.State == types.NatGatewayStateDeleting {
			return types.RouteStateBlackhole
		}
	}
	return types.RouteStateActive
}

func (w *World) rtOut(rt *RouteTable) types.RouteTable {
	out := types.RouteTable{RouteTableId: aws.String(rt.ID), VpcId: aws.String(rt.VPCID), OwnerId: aws.String(w.Account), Tags: ec2Tags(rt.Tags)}
	for _, r := range rt.Routes {
		ro := types.Route{DestinationCidrBlock: aws.String(r.Destination), State: w.routeState(rt, r), Origin: types.RouteOriginCreateRoute}
		switch {
		case r.Target == "local":
			ro.GatewayId, ro.Origin = aws.String("local"), types.RouteOriginCreateRouteTable
		case strings.HasPrefix(r.Target, "nat-"):
			ro.NatGatewayId = aws.String(r.Target)
		default:
			ro.GatewayId = aws.String(r.Target)
		}
		out.Routes = append(out.Routes, ro)
	}
	assoc := func(id, subnet string, main bool) types.RouteTableAssociation {
		a := types.RouteTableAssociation{RouteTableAssociationId: aws.String(id), RouteTableId: aws.String(rt.ID), Main: aws.Bool(main),
			AssociationState: &types.RouteTableAssociationState{State: types.RouteTableAssociationStateCodeAssociated}}
		if subnet != "" {
			a.SubnetId = aws.String(subnet)
		}
		return a
	}
	if rt.Main {
		out.Associations = append(out.Associations, assoc(rt.MainAssocID, "", true))
	}
	for _, id := range sortedKeys(rt.Associations) {
		out.Associations = append(out.Associations, assoc(id, rt.Associations[id], false))
	}
	return out
}

func describeRouteTables(_ context.Context, w *World, in *ec2.DescribeRouteTablesInput) (*ec2.DescribeRouteTablesOutput, error) {
	w.ec2Tick()
	tables, err := describeEC2(ec2Describe[RouteTable]{all: w.ec2NetState().RouteTables, ids: in.RouteTableIds, byID: w.rtByID,
		filters: in.Filters, tags: (*RouteTable).tagMap, attr: w.rtFilter}, w.rtOut)
	return &ec2.DescribeRouteTablesOutput{RouteTables: tables}, err
}

// rtFilter answers DescribeRouteTables' filters.
func (w *World) rtFilter(rt *RouteTable, name string) ([]string, bool) {
	switch name {
	case "route-table-id":
		return ec2One(rt.ID), true
	case "vpc-id":
		return ec2One(rt.VPCID), true
	case "association.main":
		return ec2One(ec2BoolStr(rt.Main)), true
	case "association.subnet-id":
		var v []string
		for _, s := range rt.Associations {
			v = append(v, s)
		}
		return v, true
	case "association.route-table-association-id":
		v := sortedKeys(rt.Associations)
		if rt.Main {
			v = append(v, rt.MainAssocID)
		}
		return v, true
	case "route.destination-cidr-block":
		var v []string
		for _, r := range rt.Routes {
			v = append(v, r.Destination)
		}
		return v, true
	case "route.gateway-id", "route.nat-gateway-id":
		var v []string
		for _, r := range rt.Routes {
			v = append(v, r.Target)
		}
		return v, true
	case "owner-id":
		return ec2One(w.Account), true
	}
	return nil, false
}

// deleteRouteTable refuses the main table and any table still associated
// with a subnet (DependencyViolation), as EC2 does.
func deleteRouteTable(_ context.Context, w *World, in *ec2.DeleteRouteTableInput) (*ec2.DeleteRouteTableOutput, error) {
	w.ec2Tick()
	rt, err := w.rtByID(aws.ToString(in.RouteTableId))
	if err != nil {
		return nil, err
	}
	if rt.Main || len(rt.Associations) > 0 {
		return nil, ec2DependencyViolation("routeTable", rt.ID)
	}
	delete(w.ec2NetState().RouteTables, rt.ID)
	return &ec2.DeleteRouteTableOutput{}, nil
}

// routeTarget checks a route's target the way EC2 does: an internet gateway
// must be attached to the table's VPC; a NAT gateway must exist in it.
func (w *World) routeTarget(rt *RouteTable, gatewayID, natID *string) (string, error) {
	switch {
	case aws.ToString(gatewayID) != "" && aws.ToString(natID) != "":
		return "", Err("InvalidParameterCombination", "More than one target specified for the route")
	case aws.ToString(gatewayID) != "":
		id := *gatewayID
		g, err := w.igwByID(id)
		if err != nil {
			return "", Err("InvalidGatewayID.NotFound", fmt.Sprintf("The gateway ID '%s' does not exist", id))
		}
		if g.VPCID != rt.VPCID {
			return "", Err("InvalidParameterValue", fmt.Sprintf("route table %s and network gateway %s belong to different networks", rt.ID, id))
		}
		return id, nil
	case aws.ToString(natID) != "":
		id := *natID
		g, err := w.natByID(id)
		if err != nil || g.State == types.NatGatewayStateDeleted {
			return "", natNotFound(id)
		}
		if g.VPCID != rt.VPCID {
			return "", Err("InvalidParameterValue", fmt.Sprintf("route table %s and NAT gateway %s belong to different networks", rt.ID, id))
		}
		return id, nil
	}
	return "", Err("InvalidParameterCombination", "No route target specified")
}

func createRoute(_ context.Context, w *World, in *ec2.CreateRouteInput) (*ec2.CreateRouteOutput, error) {
	w.ec2Tick()
	rt, err := w.rtByID(aws.ToString(in.RouteTableId))
	if err != nil {
		return nil, err
	}
	dest, err := ec2Need(in.DestinationCidrBlock, "DestinationCidrBlock")
	if err != nil {
		return nil, err
	}
	if _, ok := ec2ParseCIDR(dest); !ok {
		return nil, Err("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter destinationCidrBlock is invalid.", dest))
	}
	target, err := w.routeTarget(rt, in.GatewayId, in.NatGatewayId)
	if err != nil {
		return nil, err
	}
	for _, r := range rt.Routes {
		if r.Destination == dest {
			return nil, Err("RouteAlreadyExists", fmt.Sprintf("The route identified by %s already exists.", dest))
		}
	}
	rt.Routes = append(rt.Routes, Route{Destination: dest, Target: target})
	return &ec2.CreateRouteOutput{Return: aws.Bool(true)}, nil
}

func replaceRoute(_ context.Context, w *World, in *ec2.ReplaceRouteInput) (*ec2.ReplaceRouteOutput, error) {
	w.ec2Tick()
	rt, err := w.rtByID(aws.ToString(in.RouteTableId))
	if err != nil {
		return nil, err
	}
	dest := aws.ToString(in.DestinationCidrBlock)
	target, err := w.routeTarget(rt, in.GatewayId, in.NatGatewayId)
	if err != nil {
		return nil, err
	}
	for i, r := range rt.Routes {
		if r.Destination == dest && r.Target != "local" {
			rt.Routes[i].Target = target
			return &ec2.ReplaceRouteOutput{}, nil
		}
	}
	return nil, Err("InvalidRoute.NotFound", fmt.Sprintf("no route with destination-cidr-block %s in route table %s", dest, rt.ID))
}

func deleteRoute(_ context.Context, w *World, in *ec2.DeleteRouteInput) (*ec2.DeleteRouteOutput, error) {
	w.ec2Tick()
	rt, err := w.rtByID(aws.ToString(in.RouteTableId))
	if err != nil {
		return nil, err
	}
	dest := aws.ToString(in.DestinationCidrBlock)
	for i, r := range rt.Routes {
		if r.Destination == dest {
			if r.Target == "local" {
				return nil, Err("InvalidParameterValue", fmt.Sprintf("cannot remove local route %s in route table %s", dest, rt.ID))
			}
			rt.Routes = append(rt.Routes[:i], rt.Routes[i+1:]...)
			return &ec2.DeleteRouteOutput{}, nil
		}
	}
	return nil, Err("InvalidRoute.NotFound", fmt.Sprintf("no route with destination-cidr-block %s in route table %s", dest, rt.ID))
}

func associateRouteTable(_ context.Context, w *World, in *ec2.AssociateRouteTableInput) (*ec2.AssociateRouteTableOutput, error) {
	w.ec2Tick()
	rt, err := w.rtByID(aws.ToString(in.RouteTableId))
	if err != nil {
		return nil, err
	}
	sn, err := w.subnetByID(aws.ToString(in.SubnetId))
	if err != nil {
		return nil, err
	}
	if sn.VPCID != rt.VPCID {
		return nil, Err("InvalidParameterValue", fmt.Sprintf("route table %s and subnet %s belong to different networks", rt.ID, sn.ID))
	}
	for _, o := range w.ec2NetState().RouteTables {
		for _, s := range o.Associations {
			if s == sn.ID {
				return nil, Err("Resource.AlreadyAssociated", fmt.Sprintf("the specified association for route table %s conflicts with an existing association", o.ID))
			}
		}
	}
	id := w.NewID("rtbassoc")
	rt.Associations[id] = sn.ID
	return &ec2.AssociateRouteTableOutput{AssociationId: aws.String(id),
		AssociationState: &types.RouteTableAssociationState{State: types.RouteTableAssociationStateCodeAssociated}}, nil
}

func disassociateRouteTable(_ context.Context, w *World, in *ec2.DisassociateRouteTableInput) (*ec2.DisassociateRouteTableOutput, error) {
	w.ec2Tick()
	id := aws.ToString(in.AssociationId)
	for _, rt := range w.ec2NetState().RouteTables {
		if rt.Main && rt.MainAssocID == id {
			return nil, Err("InvalidParameterValue", fmt.Sprintf("cannot disassociate the main route table association %s", id))
		}
		if _, ok := rt.Associations[id]; ok {
			delete(rt.Associations, id)
			return &ec2.DisassociateRouteTableOutput{}, nil
		}
	}
	return nil, Err("InvalidAssociationID.NotFound", fmt.Sprintf("The association ID '%s' does not exist", id))
}
