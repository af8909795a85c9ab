package resources

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// EIPKind is the Elastic IP of a NAT gateway. An address cannot be changed,
// only released and allocated anew.
type EIPKind struct{}

func (EIPKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	return netTagAttrs(resource.Attrs{"domain": {Value: "vpc", ForceNew: true}}, r.Tags)
}

func (k EIPKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	return netReadOne(ctx, x, k, r)
}

// ReadAll reads every address of rs with one DescribeAddresses by their
// Name tags (resource.BatchReader).
func (EIPKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	out, err := x.AWS.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: netByNamesFilter(rs)})
	if err != nil {
		return nil, fmt.Errorf("DescribeAddresses %s: %w", strings.Join(netNames(rs), ", "), err)
	}
	return netMatch(rs, out.Addresses, func(a ec2types.Address) string { return aws.ToString(a.AllocationId) },
		func(a ec2types.Address) map[string]string { return netTagMap(a.Tags) }, eipLive)
}

func eipLive(a ec2types.Address, ours bool) (*resource.Live, error) {
	id := aws.ToString(a.AllocationId)
	return &resource.Live{ID: id, Ours: ours, Raw: a,
		Outputs: resource.Outputs{"id": id, "public_ip": aws.ToString(a.PublicIp)},
		Attrs:   netTagAttrs(resource.Attrs{"domain": {Value: string(a.Domain), ForceNew: true}}, netTagMap(a.Tags))}, nil
}

func (EIPKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	out, err := x.AWS.EC2.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc,
		TagSpecifications: netTagSpec(ec2types.ResourceTypeElasticIp, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("AllocateAddress %s: %w", r.Name, err)
	}
	return resource.Outputs{"id": aws.ToString(out.AllocationId), "public_ip": aws.ToString(out.PublicIp)}, nil
}

func (EIPKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// eipReleaseRace is EC2's answer to releasing an address whose NAT gateway
// is still deleting (docs/research/aws-ecs.md §5 EIP row, eformat/sno-for-100#5).
// Matched with its message, since AuthFailure also means bad credentials.
const eipReleaseRace = "You do not have permission to access the specified resource."

// Delete releases the address, retrying while a NAT gateway still holds it
// (AuthFailure while it is deleting, InvalidIPAddress.InUse before);
// InvalidAllocationID.NotFound means it is already released.
func (EIPKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("Elastic IP %s (%s) exists without this environment's tags; deploybot does not release it", r.Name, live.ID)
	}
	id := live.ID
	retryable := func(err error) bool {
		return awserr.Code(err) == "InvalidIPAddress.InUse" ||
			(awserr.Code(err) == "AuthFailure" && awserr.Message(err) == eipReleaseRace)
	}
	err := netRetry(ctx, x, r.Address, "release Elastic IP "+id, netEIPReleaseBudget, retryable,
		func(ctx context.Context) string { return eipHolder(ctx, x, id) },
		func() error {
			_, err := x.AWS.EC2.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(id)})
			return err
		})
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	return nil
}

// eipHolder names the NAT gateway that still holds an address.
func eipHolder(ctx context.Context, x *resource.Ctx, alloc string) string {
	out, err := x.AWS.EC2.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{
		{Name: aws.String("state"), Values: []string{"pending", "available", "deleting"}}}})
	if err != nil {
		return ""
	}
	var parts []string
	for _, g := range out.NatGateways {
		for _, a := range g.NatGatewayAddresses {
			if aws.ToString(a.AllocationId) == alloc {
				parts = append(parts, fmt.Sprintf("NAT gateway %s (%s)", aws.ToString(g.NatGatewayId), g.State))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// NATGatewayKind is a public NAT gateway. Its subnet and address cannot
// change in place. "state" is desired "available": a gateway found still
// pending (a re-run after a crash) is waited for, so that the private route
// leads somewhere before the worker starts.
type NATGatewayKind struct{}

func (NATGatewayKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := netMustSpec[stack.NATGatewaySpec](r)
	return netTagAttrs(resource.Attrs{
		"subnet_id":         {Value: s.Subnet.Resolve(refs), ForceNew: true},
		"allocation_id":     {Value: s.Allocation.Resolve(refs), ForceNew: true},
		"connectivity_type": {Value: "public", ForceNew: true},
		"state":             {Value: string(ec2types.NatGatewayStateAvailable)},
	}, r.Tags)
}

func (k NATGatewayKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	return netReadOne(ctx, x, k, r)
}

// ReadAll reads every NAT gateway of rs with one DescribeNatGateways by
// their Name tags (resource.BatchReader).
func (NATGatewayKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	// Deleted and failed gateways stay visible for about an hour; they are
	// gone for our purposes. A deleting one is too (a new one may be made;
	// its create waits for the address to be free).
	out, err := x.AWS.EC2.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: append(netByNamesFilter(rs),
		ec2types.Filter{Name: aws.String("state"), Values: []string{"pending", "available"}})})
	if err != nil {
		return nil, fmt.Errorf("DescribeNatGateways %s: %w", strings.Join(netNames(rs), ", "), err)
	}
	return netMatch(rs, out.NatGateways, func(g ec2types.NatGateway) string { return aws.ToString(g.NatGatewayId) },
		func(g ec2types.NatGateway) map[string]string { return netTagMap(g.Tags) },
		func(g ec2types.NatGateway, ours bool) (*resource.Live, error) { return natLive(g, ours), nil })
}

func natLive(g ec2types.NatGateway, ours bool) *resource.Live {
	id := aws.ToString(g.NatGatewayId)
	alloc := ""
	for _, a := range g.NatGatewayAddresses {
		if alloc == "" || aws.ToBool(a.IsPrimary) {
			alloc = aws.ToString(a.AllocationId)
		}
	}
	return &resource.Live{ID: id, Ours: ours, Raw: g,
		Outputs: resource.Outputs{"id": id, "subnet_id": aws.ToString(g.SubnetId)},
		Attrs: netTagAttrs(resource.Attrs{
			"subnet_id":         {Value: aws.ToString(g.SubnetId), ForceNew: true},
			"allocation_id":     {Value: alloc, ForceNew: true},
			"connectivity_type": {Value: string(g.ConnectivityType), ForceNew: true},
			"state":             {Value: string(g.State)},
		}, netTagMap(g.Tags))}
}

func (NATGatewayKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := netSpec[stack.NATGatewaySpec](r)
	if err != nil {
		return nil, err
	}
	subnet, alloc := s.Subnet.Resolve(refs), s.Allocation.Resolve(refs)
	if netUnknown(subnet, alloc) {
		return nil, fmt.Errorf("create NAT gateway %s: subnet %q or allocation %q is not known", r.Name, subnet, alloc)
	}
	// The ClientToken makes the SDK's own retries of this call idempotent
	// (docs/research/aws-ecs.md §6); a re-run after a crash finds the gateway by
	// its Name tag instead, so the token only needs to be unique per attempt.
	token := fmt.Sprintf("%s-%d", r.Name, x.Clock.Now().UnixNano())
	if len(token) > 64 {
		token = token[len(token)-64:]
	}
	var out *ec2.CreateNatGatewayOutput
	// The address may still be held by a NAT gateway of ours that is
	// deleting (a replacement, or a re-run after a crashed destroy).
	err = netRetry(ctx, x, r.Address, "create NAT gateway "+r.Name, 2*netNATPendingGuess, netIsCode("Resource.AlreadyAssociated"),
		func(ctx context.Context) string { return eipHolder(ctx, x, alloc) },
		func() error {
			var err error
			out, err = x.AWS.EC2.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{SubnetId: aws.String(subnet), AllocationId: aws.String(alloc),
				ConnectivityType: ec2types.ConnectivityTypePublic, ClientToken: aws.String(token),
				TagSpecifications: netTagSpec(ec2types.ResourceTypeNatgateway, r.Tags)})
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("CreateNatGateway %s in %s: %w", r.Name, subnet, err)
	}
	id := aws.ToString(out.NatGateway.NatGatewayId)
	if err := natWaitAvailable(ctx, x, r.Address, id); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "subnet_id": subnet}, nil
}

// netNATPendingGuess is how long a NAT gateway usually takes to change
// state (create or delete: a minute or two).
const netNATPendingGuess = time.Minute

// natWaitAvailable polls every 10 s (the provider's interval) until the
// gateway is available; failed is an error with EC2's failure message.
func natWaitAvailable(ctx context.Context, x *resource.Ctx, address, id string) error {
	budget := x.Wait(netNATCreateBudget)
	deadline := x.Clock.Now().Add(budget)
	x.Say(address, "waiting for NAT gateway "+id+" to become available")
	for {
		out, err := x.AWS.EC2.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{id}})
		state := ec2types.NatGatewayState("")
		switch {
		case awserr.IsNotFound(err):
			// Not visible yet right after create (eventual consistency).
		case err != nil:
			return fmt.Errorf("DescribeNatGateways %s: %w", id, err)
		case len(out.NatGateways) > 0:
			g := out.NatGateways[0]
			state = g.State
			switch g.State {
			case ec2types.NatGatewayStateAvailable:
				return nil
			case ec2types.NatGatewayStateFailed, ec2types.NatGatewayStateDeleting, ec2types.NatGatewayStateDeleted:
				return fmt.Errorf("NAT gateway %s is %s: %s: %s", id, g.State, aws.ToString(g.FailureCode), aws.ToString(g.FailureMessage))
			}
		}
		if !x.Clock.Now().Before(deadline) {
			return fmt.Errorf("NAT gateway %s is still %q after %s; re-run to keep waiting", id, state, budget)
		}
		if err := x.Clock.Sleep(ctx, netPollEvery); err != nil {
			return err
		}
	}
}

func (NATGatewayKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	if netChanged(changed, "state") {
		if err := natWaitAvailable(ctx, x, r.Address, live.ID); err != nil {
			return nil, err
		}
	}
	if err := netUpdateTags(ctx, x, live.ID, r, changed); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// Delete deletes the gateway and waits until it is `deleted`, polling every
// 10 s (docs/research/aws-ecs.md §5 NAT row: the provider's waitNATGatewayDeleted),
// so that its address can be released and its subnet deleted next.
// NatGatewayNotFound means it is gone.
func (NATGatewayKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !live.Ours {
		return fmt.Errorf("NAT gateway %s (%s) exists without this environment's tags; deploybot does not delete it", r.Name, live.ID)
	}
	id := live.ID
	if _, err := x.AWS.EC2.DeleteNatGateway(ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: aws.String(id)}); err != nil {
		if awserr.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("DeleteNatGateway %s: %w", id, err)
	}
	budget := x.Wait(netNATDeleteBudget)
	deadline := x.Clock.Now().Add(budget)
	x.Say(r.Address, "waiting for NAT gateway "+id+" to be deleted")
	for {
		out, err := x.AWS.EC2.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{id}})
		if awserr.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("DescribeNatGateways %s: %w", id, err)
		}
		state := ec2types.NatGatewayStateDeleted
		if len(out.NatGateways) > 0 {
			state = out.NatGateways[0].State
		}
		if state == ec2types.NatGatewayStateDeleted || state == ec2types.NatGatewayStateFailed {
			return nil
		}
		if !x.Clock.Now().Before(deadline) {
			return fmt.Errorf("NAT gateway %s is still %s after %s; re-run to continue once it is deleted", id, state, budget)
		}
		if err := x.Clock.Sleep(ctx, netPollEvery); err != nil {
			return err
		}
	}
}
