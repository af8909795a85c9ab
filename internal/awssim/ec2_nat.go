package awssim

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Elastic IPs and NAT gateways (docs/research/aws-ecs.md §5 "EC2 NAT delete" and
// "EC2 EIP release" rows, §5.3 step 8).

func init() {
	Handle(allocateAddress)
	Handle(releaseAddress)
	Handle(describeAddresses)
	Handle(createNatGateway)
	Handle(deleteNatGateway)
	Handle(describeNatGateways)
}

func (w *World) addressByID(id string) (*Address, error) {
	return ec2Find(w.ec2NetState().Addresses, id, "InvalidAllocationID.NotFound", "allocation")
}

func allocateAddress(_ context.Context, w *World, in *ec2.AllocateAddressInput) (*ec2.AllocateAddressOutput, error) {
	w.ec2Tick()
	if in.Domain != "" && in.Domain != types.DomainTypeVpc {
		return nil, Err("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter domain is invalid.", in.Domain))
	}
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeElasticIp)
	if err != nil {
		return nil, err
	}
	n := w.NextSeq("eip")
	a := &Address{AllocationID: w.NewID("eipalloc"), PublicIP: fmt.Sprintf("198.51.%d.%d", 100+n/250, n%250+1), Tags: tags}
	w.ec2NetState().Addresses[a.AllocationID] = a
	return &ec2.AllocateAddressOutput{AllocationId: aws.String(a.AllocationID), PublicIp: aws.String(a.PublicIP),
		Domain: types.DomainTypeVpc, NetworkBorderGroup: aws.String(w.Region), PublicIpv4Pool: aws.String("amazon")}, nil
}

// releaseAddress models the race the reference describes: while the NAT
// gateway that holds the address is `deleting`, EC2 answers AuthFailure "You
// do not have permission to access the specified resource."
// (eformat/sno-for-100#5); while it is pending or available the address is in
// use; once released, the id is InvalidAllocationID.NotFound.
func releaseAddress(_ context.Context, w *World, in *ec2.ReleaseAddressInput) (*ec2.ReleaseAddressOutput, error) {
	w.ec2Tick()
	if aws.ToString(in.AllocationId) == "" {
		return nil, Err("InvalidParameterValue", "You must specify an allocation id when releasing a VPC elastic IP address")
	}
	a, err := w.addressByID(*in.AllocationId)
	if err != nil {
		return nil, err
	}
	if a.NATID != "" {
		g := w.ec2NetState().NATs[a.NATID]
		if g != nil && g.State == types.NatGatewayStateDeleting {
			return nil, Err("AuthFailure", "You do not have permission to access the specified resource.")
		}
		return nil, Err("InvalidIPAddress.InUse", fmt.Sprintf("Address %s is in use.", a.AllocationID))
	}
	delete(w.ec2NetState().Addresses, a.AllocationID)
	return &ec2.ReleaseAddressOutput{}, nil
}

func (w *World) addressOut(a *Address) types.Address {
	out := types.Address{AllocationId: aws.String(a.AllocationID), PublicIp: aws.String(a.PublicIP), Domain: types.DomainTypeVpc,
		NetworkBorderGroup: aws.String(w.Region), PublicIpv4Pool: aws.String("amazon"), Tags: ec2Tags(a.Tags)}
	if a.NATID != "" {
		out.AssociationId = aws.String(a.AssociationID)
		out.NetworkInterfaceId = aws.String(a.ENIID)
		out.NetworkInterfaceOwnerId = aws.String(w.Account)
		if e, ok := w.EC2State().ENIs[a.ENIID]; ok {
			out.PrivateIpAddress = aws.String(e.PrivateIP)
		}
	}
	return out
}

func describeAddresses(_ context.Context, w *World, in *ec2.DescribeAddressesInput) (*ec2.DescribeAddressesOutput, error) {
	w.ec2Tick()
	d := ec2Describe[Address]{all: w.ec2NetState().Addresses, ids: in.AllocationIds, byID: w.addressByID,
		filters: in.Filters, tags: (*Address).tagMap, attr: w.addressFilter}
	if len(in.PublicIps) > 0 {
		d.keep = func(a *Address) bool { return slices.Contains(in.PublicIps, a.PublicIP) }
	}
	addresses, err := describeEC2(d, w.addressOut)
	return &ec2.DescribeAddressesOutput{Addresses: addresses}, err
}

// addressFilter answers DescribeAddresses' filters.
func (w *World) addressFilter(a *Address, name string) ([]string, bool) {
	switch name {
	case "allocation-id":
		return ec2One(a.AllocationID), true
	case "public-ip":
		return ec2One(a.PublicIP), true
	case "domain":
		return ec2One("vpc"), true
	case "association-id":
		return ec2One(a.AssociationID), true
	case "network-interface-id":
		return ec2One(a.ENIID), true
	case "network-border-group":
		return ec2One(w.Region), true
	}
	return nil, false
}

// createNatGateway makes a public NAT gateway that is `pending` for
// NATPendingFor, then `available` — or `failed` (Gateway.NotAttached) if the
// VPC has no internet gateway attached by then, as EC2 does. A repeated
// ClientToken returns the same gateway (idempotency, docs/research/aws-ecs.md §6).
func createNatGateway(_ context.Context, w *World, in *ec2.CreateNatGatewayInput) (*ec2.CreateNatGatewayOutput, error) {
	w.ec2Tick()
	n := w.ec2NetState()
	token := aws.ToString(in.ClientToken)
	if id, ok := n.natTokens[token]; ok && token != "" {
		g := n.NATs[id]
		if g != nil && (g.State == types.NatGatewayStateDeleted || g.SubnetID != aws.ToString(in.SubnetId) || g.AllocationID != aws.ToString(in.AllocationId)) {
			return nil, Err("IdempotentParameterMismatch", "The client token you have provided is associated with a resource that is already deleted or has different parameters. Please use a different client token.")
		}
		if g != nil {
			out := w.natOut(g)
			return &ec2.CreateNatGatewayOutput{NatGateway: &out, ClientToken: in.ClientToken}, nil
		}
	}
	if in.ConnectivityType != "" && in.ConnectivityType != types.ConnectivityTypePublic {
		return nil, Err("InvalidParameterValue", "this simulation supports public NAT gateways only")
	}
	sn, err := ec2NeedByID(in.SubnetId, "SubnetId", w.subnetByID)
	if err != nil {
		return nil, err
	}
	a, err := ec2NeedByID(in.AllocationId, "AllocationId", w.addressByID)
	if err != nil {
		return nil, err
	}
	allocID := a.AllocationID
	if a.NATID != "" {
		return nil, Err("Resource.AlreadyAssociated", fmt.Sprintf("Elastic IP address [%s] is already associated", allocID))
	}
	tags, err := ec2TagsFor(in.TagSpecifications, types.ResourceTypeNatgateway)
	if err != nil {
		return nil, err
	}
	now := w.Clock.Now()
	g := &NatGateway{ID: w.NewID("nat"), SubnetID: sn.ID, VPCID: sn.VPCID, AllocationID: allocID,
		State: types.NatGatewayStatePending, Created: now, ReadyAt: now.Add(w.timings.NATPendingFor), Tags: tags}
	// The gateway's own interface holds the Elastic IP: a mapped public
	// address in the VPC (it blocks detaching the internet gateway).
	seq := w.NextSeq("ip")
	eni := &ENI{ID: w.NewID("eni"), SubnetID: sn.ID, VPCID: sn.VPCID, Description: "Interface for NAT Gateway " + g.ID,
		RequesterID: "amazon-nat-gateway", InterfaceType: "nat_gateway", Status: "in-use",
		PrivateIP: "10.0." + strconv.Itoa(seq/250) + "." + strconv.Itoa(seq%250+4), PublicIP: a.PublicIP}
	w.EC2State().ENIs[eni.ID] = eni
	g.ENIID = eni.ID
	a.NATID, a.ENIID, a.AssociationID = g.ID, eni.ID, w.NewID("eipassoc")
	n.NATs[g.ID] = g
	if token != "" {
		n.natTokens[token] = g.ID
	}
	out := w.natOut(g)
	return &ec2.CreateNatGatewayOutput{NatGateway: &out, ClientToken: in.ClientToken}, nil
}

// natFail turns a pending gateway whose VPC has no attached internet gateway
// into `failed`, releasing its interface and address. Callers hold w.Mu.
func (w *World) natFail(g *NatGateway) {
	g.State = types.NatGatewayStateFailed
	g.FailureCode = "Gateway.NotAttached"
	g.FailureMessage = fmt.Sprintf("Network %s has no Internet gateway attached", g.VPCID)
	g.ForgetAt = g.ReadyAt.Add(w.timings.NATDeletedVisibleFor)
	w.natRelease(g)
}

// natRelease removes a failed or deleted gateway's interface and frees its
// Elastic IP. Callers hold w.Mu.
func (w *World) natRelease(g *NatGateway) {
	delete(w.EC2State().ENIs, g.ENIID)
	if a, ok := w.ec2NetState().Addresses[g.AllocationID]; ok && a.NATID == g.ID {
		a.NATID, a.ENIID, a.AssociationID = "", "", ""
	}
}

func (w *World) vpcHasIGW(vpcID string) bool {
	for _, g := range w.ec2NetState().IGWs {
		if g.VPCID == vpcID {
			return true
		}
	}
	return false
}

func (w *World) natOut(g *NatGateway) types.NatGateway {
	out := types.NatGateway{NatGatewayId: aws.String(g.ID), SubnetId: aws.String(g.SubnetID), VpcId: aws.String(g.VPCID),
		State: g.State, ConnectivityType: types.ConnectivityTypePublic, CreateTime: aws.Time(g.Created), Tags: ec2Tags(g.Tags)}
	if !g.DeleteRequested.IsZero() {
		out.DeleteTime = aws.Time(g.DeleteRequested)
	}
	if g.FailureCode != "" {
		out.FailureCode, out.FailureMessage = aws.String(g.FailureCode), aws.String(g.FailureMessage)
	}
	addr := types.NatGatewayAddress{AllocationId: aws.String(g.AllocationID), NetworkInterfaceId: aws.String(g.ENIID), IsPrimary: aws.Bool(true)}
	if a, ok := w.ec2NetState().Addresses[g.AllocationID]; ok {
		addr.PublicIp = aws.String(a.PublicIP)
	}
	switch g.State {
	case types.NatGatewayStatePending:
		addr.Status = types.NatGatewayAddressStatusAssociating
	case types.NatGatewayStateAvailable:
		addr.Status = types.NatGatewayAddressStatusSucceeded
	case types.NatGatewayStateDeleting:
		addr.Status = types.NatGatewayAddressStatusDisassociating
	default:
		addr.Status = types.NatGatewayAddressStatusFailed
	}
	out.NatGatewayAddresses = []types.NatGatewayAddress{addr}
	return out
}

// deleteNatGateway moves the gateway to `deleting` for NATDeletingFor, then
// `deleted` (still described for NATDeletedVisibleFor). Unknown ids are
// NatGatewayNotFound; deleting one already deleted or deleting is a no-op.
func deleteNatGateway(_ context.Context, w *World, in *ec2.DeleteNatGatewayInput) (*ec2.DeleteNatGatewayOutput, error) {
	w.ec2Tick()
	id := aws.ToString(in.NatGatewayId)
	g, err := w.natByID(id)
	if err != nil {
		return nil, err
	}
	switch g.State {
	case types.NatGatewayStatePending, types.NatGatewayStateAvailable:
		now := w.Clock.Now()
		g.State, g.DeleteRequested, g.GoneAt = types.NatGatewayStateDeleting, now, now.Add(w.timings.NATDeletingFor)
	case types.NatGatewayStateFailed:
		g.State, g.ForgetAt = types.NatGatewayStateDeleted, w.Clock.Now().Add(w.timings.NATDeletedVisibleFor)
	}
	return &ec2.DeleteNatGatewayOutput{NatGatewayId: aws.String(id)}, nil
}

func describeNatGateways(_ context.Context, w *World, in *ec2.DescribeNatGatewaysInput) (*ec2.DescribeNatGatewaysOutput, error) {
	w.ec2Tick()
	// Deleted gateways are still described for NATDeletedVisibleFor.
	gateways, err := describeEC2(ec2Describe[NatGateway]{all: w.ec2NetState().NATs, ids: in.NatGatewayIds, byID: w.natByID,
		filters: in.Filter, tags: (*NatGateway).tagMap, attr: natFilter}, w.natOut)
	return &ec2.DescribeNatGatewaysOutput{NatGateways: gateways}, err
}

// natByID finds a NAT gateway that EC2 still describes, deleted ones too.
func (w *World) natByID(id string) (*NatGateway, error) {
	if g, ok := w.ec2NetState().NATs[id]; ok {
		return g, nil
	}
	return nil, natNotFound(id)
}

func natNotFound(id string) error {
	return Err("NatGatewayNotFound", fmt.Sprintf("The Nat Gateway %s was not found", id))
}

// natFilter answers DescribeNatGateways' filters.
func natFilter(g *NatGateway, name string) ([]string, bool) {
	switch name {
	case "nat-gateway-id":
		return ec2One(g.ID), true
	case "state":
		return ec2One(string(g.State)), true
	case "subnet-id":
		return ec2One(g.SubnetID), true
	case "vpc-id":
		return ec2One(g.VPCID), true
	}
	return nil, false
}
