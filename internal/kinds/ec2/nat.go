package ec2

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// EIPSpec is an Elastic IP for a NAT gateway (domain vpc).
type EIPSpec struct{}

// EIPModel is what a plan compares of an address.
type EIPModel struct {
	Domain string `attr:"domain,forcenew"`
}

// EIP is the Elastic IP kind. An address cannot be changed, only released
// and allocated anew.
var EIP = resource.Define[EIPSpec, EIPModel, struct{}, awsapi.EC2API](KindEIP, eipKind{eipFinder}, connect)

type eipKind struct {
	finder[EIPSpec, ec2types.Address, EIPModel, struct{}]
}

type (
	eip      = resource.Typed[EIPSpec]
	foundEIP = resource.Found[EIPModel, struct{}]
)

func (eipKind) Desired(*eip, resource.Refs) EIPModel { return EIPModel{Domain: "vpc"} }

// eipFinder finds Elastic IPs: one DescribeAddresses by Name tags, or by id.
var eipFinder = finder[EIPSpec, ec2types.Address, EIPModel, struct{}]{op: "DescribeAddresses", idFilter: "allocation-id", arnType: "ec2:elastic-ip",
	describe: func(ctx context.Context, x *x, f []ec2types.Filter) ([]ec2types.Address, error) {
		out, err := x.API.DescribeAddresses(ctx, &awsec2.DescribeAddressesInput{Filters: f})
		return itemsOf(out, err, func(o *awsec2.DescribeAddressesOutput) []ec2types.Address { return o.Addresses })
	},
	found: eipFound,
}

func eipFound(a ec2types.Address) *foundEIP {
	id := aws.ToString(a.AllocationId)
	return &foundEIP{ID: id, Tags: awstags.EC2Map(a.Tags), Model: EIPModel{Domain: string(a.Domain)},
		Outputs: resource.Outputs{"id": id, "public_ip": aws.ToString(a.PublicIp)}}
}

func (eipKind) Create(ctx context.Context, x *x, r *eip, _ resource.Refs) (resource.Outputs, error) {
	out, err := x.API.AllocateAddress(ctx, &awsec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc,
		TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeElasticIp, r.Tags)})
	if err != nil {
		return nil, fmt.Errorf("AllocateAddress %s: %w", r.Name, err)
	}
	return resource.Outputs{"id": aws.ToString(out.AllocationId), "public_ip": aws.ToString(out.PublicIp)}, nil
}

// eipReleaseRace is EC2's answer to releasing an address whose NAT gateway
// is still deleting (docs/research/aws-ecs.md §5 EIP row, eformat/sno-for-100#5).
// Matched with its message, since AuthFailure also means bad credentials.
const eipReleaseRace = "You do not have permission to access the specified resource."

// Delete releases the address, retrying while a NAT gateway still holds it
// (AuthFailure while it is deleting, InvalidIPAddress.InUse before);
// InvalidAllocationID.NotFound means it is already released.
func (eipKind) Delete(ctx context.Context, x *x, r *eip, live *foundEIP) error {
	retryable := func(err error) bool {
		return awserr.Code(err) == "InvalidIPAddress.InUse" ||
			(awserr.Code(err) == "AuthFailure" && awserr.Message(err) == eipReleaseRace)
	}
	return deleteOurs(r, live, "Elastic IP", func(id string) error {
		return awserr.IgnoreNotFound(retryBlocked(ctx, x, r.Address, "release Elastic IP "+id, x.Clock.Now(), eipReleaseBudget, retryable,
			func(ctx context.Context) string { return eipHolder(ctx, x, id) },
			func() error {
				return errOf(x.API.ReleaseAddress(ctx, &awsec2.ReleaseAddressInput{AllocationId: aws.String(id)}))
			}))
	})
}

// eipHolder names the NAT gateway that still holds an address.
func eipHolder(ctx context.Context, x *x, alloc string) string {
	out, err := x.API.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{
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

// NATGatewaySpec is a public NAT gateway in a public subnet with its EIP.
type NATGatewaySpec struct {
	Subnet     resource.Ref
	Allocation resource.Ref
}

// NATGatewayModel is what a plan compares of a NAT gateway. Its subnet and
// address cannot change in place. State is desired "available": a gateway
// found still pending (a re-run after a crash) is waited for, so that the
// private route leads somewhere before the worker starts.
type NATGatewayModel struct {
	Subnet           string `attr:"subnet_id,forcenew"`
	Allocation       string `attr:"allocation_id,forcenew"`
	ConnectivityType string `attr:"connectivity_type,forcenew"`
	State            string `attr:"state"`
}

// NATGateway is the NAT gateway kind.
var NATGateway = resource.Define[NATGatewaySpec, NATGatewayModel, struct{}, awsapi.EC2API](KindNATGateway, natKind{natFinder}, connect)

type natKind struct {
	finder[NATGatewaySpec, ec2types.NatGateway, NATGatewayModel, struct{}]
}

type (
	nat      = resource.Typed[NATGatewaySpec]
	foundNAT = resource.Found[NATGatewayModel, struct{}]
)

func (natKind) Desired(r *nat, refs resource.Refs) NATGatewayModel {
	return NATGatewayModel{Subnet: r.Spec.Subnet.Resolve(refs), Allocation: r.Spec.Allocation.Resolve(refs),
		ConnectivityType: "public", State: string(ec2types.NatGatewayStateAvailable)}
}

// natFinder finds NAT gateways: one DescribeNatGateways by Name tags, or by id.
var natFinder = finder[NATGatewaySpec, ec2types.NatGateway, NATGatewayModel, struct{}]{op: "DescribeNatGateways", idFilter: "nat-gateway-id", arnType: "ec2:natgateway",
	// Deleted and failed gateways stay visible for about an hour: they are
	// gone for our purposes. A deleting one is too (a new one may be made;
	// its create waits for the address to be free).
	filter: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"pending", "available"}}},
	describe: func(ctx context.Context, x *x, f []ec2types.Filter) ([]ec2types.NatGateway, error) {
		out, err := x.API.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{Filter: f})
		return itemsOf(out, err, func(o *awsec2.DescribeNatGatewaysOutput) []ec2types.NatGateway { return o.NatGateways })
	},
	found: natFound,
}

func natFound(g ec2types.NatGateway) *foundNAT {
	id := aws.ToString(g.NatGatewayId)
	alloc := ""
	for _, a := range g.NatGatewayAddresses {
		if alloc == "" || aws.ToBool(a.IsPrimary) {
			alloc = aws.ToString(a.AllocationId)
		}
	}
	return &foundNAT{ID: id, Tags: awstags.EC2Map(g.Tags),
		Model: NATGatewayModel{Subnet: aws.ToString(g.SubnetId), Allocation: alloc,
			ConnectivityType: string(g.ConnectivityType), State: string(g.State)},
		Outputs: resource.Outputs{"id": id, "subnet_id": aws.ToString(g.SubnetId)}}
}

func (natKind) Create(ctx context.Context, x *x, r *nat, refs resource.Refs) (resource.Outputs, error) {
	subnet, alloc := r.Spec.Subnet.Resolve(refs), r.Spec.Allocation.Resolve(refs)
	if unknown(subnet, alloc) {
		return nil, fmt.Errorf("create NAT gateway %s: subnet %q or allocation %q is not known", r.Name, subnet, alloc)
	}
	// The ClientToken makes the SDK's own retries of this call idempotent
	// (docs/research/aws-ecs.md §6); a re-run after a crash finds the gateway by
	// its Name tag instead, so the token only needs to be unique per attempt.
	token := fmt.Sprintf("%s-%d", r.Name, x.Clock.Now().UnixNano())
	if len(token) > 64 {
		token = token[len(token)-64:]
	}
	var out *awsec2.CreateNatGatewayOutput
	// The address may still be held by a NAT gateway of ours that is
	// deleting (a replacement, or a re-run after a crashed destroy).
	err := retryBlocked(ctx, x, r.Address, "create NAT gateway "+r.Name, x.Clock.Now(), 2*natPendingGuess, awserr.IsCode("Resource.AlreadyAssociated"),
		func(ctx context.Context) string { return eipHolder(ctx, x, alloc) },
		func() error {
			var err error
			out, err = x.API.CreateNatGateway(ctx, &awsec2.CreateNatGatewayInput{SubnetId: aws.String(subnet), AllocationId: aws.String(alloc),
				ConnectivityType: ec2types.ConnectivityTypePublic, ClientToken: aws.String(token),
				TagSpecifications: awstags.EC2Spec(ec2types.ResourceTypeNatgateway, r.Tags)})
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("CreateNatGateway %s in %s: %w", r.Name, subnet, err)
	}
	id := aws.ToString(out.NatGateway.NatGatewayId)
	if err := waitAvailable(ctx, x, r.Address, id); err != nil {
		return nil, err
	}
	return resource.Outputs{"id": id, "subnet_id": subnet}, nil
}

// waitAvailable polls every 10 s (the provider's interval) until the
// gateway is available; failed is an error with EC2's failure message.
func waitAvailable(ctx context.Context, x *x, address, id string) error {
	x.Say(address, "waiting for NAT gateway "+id+" to become available")
	o := x.Waits(address, natCreateBudget, pollEvery)
	state, err := retry.Until(ctx, o, "NAT gateway "+id+" to become available", func() (ec2types.NatGatewayState, bool, error) {
		out, err := x.API.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{NatGatewayIds: []string{id}})
		switch {
		case awserr.IsNotFound(err):
			// Not visible yet right after create (eventual consistency).
			return "", false, nil
		case err != nil:
			return "", false, fmt.Errorf("DescribeNatGateways %s: %w", id, err)
		case len(out.NatGateways) == 0:
			return "", false, nil
		}
		g := out.NatGateways[0]
		switch g.State {
		case ec2types.NatGatewayStateAvailable:
			return g.State, true, nil
		case ec2types.NatGatewayStateFailed, ec2types.NatGatewayStateDeleting, ec2types.NatGatewayStateDeleted:
			return g.State, false, fmt.Errorf("NAT gateway %s is %s: %s: %s", id, g.State, aws.ToString(g.FailureCode), aws.ToString(g.FailureMessage))
		}
		return g.State, false, nil
	})
	if retry.IsTimeout(err) {
		return fmt.Errorf("NAT gateway %s is still %q after %s; re-run to keep waiting", id, state, o.Budget)
	}
	return err
}

func (natKind) Update(ctx context.Context, x *x, r *nat, d *resource.Delta[NATGatewayModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	if d.Desired.State != d.Live.State {
		if err := waitAvailable(ctx, x, r.Address, d.Found.ID); err != nil {
			return nil, err
		}
	}
	return updateTags(ctx, x, d)
}

// Delete deletes the gateway and waits until it is `deleted`, polling
// every 10 s (docs/research/aws-ecs.md §5 NAT row: the provider's
// waitNATGatewayDeleted), so that its address can be released and its
// subnet deleted next. NatGatewayNotFound means it is gone.
func (natKind) Delete(ctx context.Context, x *x, r *nat, live *foundNAT) error {
	return deleteOurs(r, live, "NAT gateway", func(id string) error { return deleteNAT(ctx, x, r.Address, id) })
}

// deleteNAT deletes gateway id and waits until it is deleted.
func deleteNAT(ctx context.Context, x *x, address, id string) error {
	if _, err := x.API.DeleteNatGateway(ctx, &awsec2.DeleteNatGatewayInput{NatGatewayId: aws.String(id)}); err != nil {
		if awserr.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("DeleteNatGateway %s: %w", id, err)
	}
	x.Say(address, "waiting for NAT gateway "+id+" to be deleted")
	o := x.Waits(address, natDeleteBudget, pollEvery)
	state, err := retry.Until(ctx, o, "NAT gateway "+id+" to be deleted", func() (ec2types.NatGatewayState, bool, error) {
		out, err := x.API.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{NatGatewayIds: []string{id}})
		if awserr.IsNotFound(err) {
			return ec2types.NatGatewayStateDeleted, true, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("DescribeNatGateways %s: %w", id, err)
		}
		state := ec2types.NatGatewayStateDeleted
		if len(out.NatGateways) > 0 {
			state = out.NatGateways[0].State
		}
		return state, state == ec2types.NatGatewayStateDeleted || state == ec2types.NatGatewayStateFailed, nil
	})
	if retry.IsTimeout(err) {
		return fmt.Errorf("NAT gateway %s is still %s after %s; re-run to continue once it is deleted", id, state, o.Budget)
	}
	return err
}
