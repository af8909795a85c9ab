package awssim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
)

// ec2Env is a world, its clock and a real EC2 client talking to it.
type ec2Env struct {
	w   *World
	clk *clock.Virtual
	c   *ec2.Client
	ctx context.Context
}

func newEC2Env(t *testing.T) *ec2Env {
	t.Helper()
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w := New(clk)
	return &ec2Env{w: w, clk: clk, c: ec2.NewFromConfig(w.Config()), ctx: context.Background()}
}

// newEC2Subnet is an account with one VPC, 10.0.0.0/16, and one subnet in
// it, 10.0.0.0/24 in us-east-1a.
func newEC2Subnet(t *testing.T) (e *ec2Env, vpc, subnet string) {
	t.Helper()
	e = newEC2Env(t)
	vpc = e.vpc(t, "10.0.0.0/16")
	return e, vpc, e.subnet(t, vpc, "10.0.0.0/24", "us-east-1a")
}

// sg creates a security group in vpc.
func (e *ec2Env) sg(t *testing.T, vpc string) *ec2.CreateSecurityGroupOutput {
	t.Helper()
	sg, err := e.c.CreateSecurityGroup(e.ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("w"), Description: aws.String("d"), VpcId: &vpc})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func tagSpec(rt types.ResourceType, name string) []types.TagSpecification {
	return []types.TagSpecification{{ResourceType: rt, Tags: []types.Tag{
		{Key: aws.String("Name"), Value: aws.String(name)}, {Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}}
}

func (e *ec2Env) vpc(t *testing.T, cidr string) string {
	t.Helper()
	out, err := e.c.CreateVpc(e.ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr), TagSpecifications: tagSpec(types.ResourceTypeVpc, "v")})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Vpc.VpcId
}

func (e *ec2Env) subnet(t *testing.T, vpc, cidr, az string) string {
	t.Helper()
	out, err := e.c.CreateSubnet(e.ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(az)})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Subnet.SubnetId
}

func (e *ec2Env) igw(t *testing.T, vpc string) string {
	t.Helper()
	out, err := e.c.CreateInternetGateway(e.ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.InternetGateway.InternetGatewayId
	if _, err := e.c.AttachInternetGateway(e.ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: &id, VpcId: &vpc}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *ec2Env) eip(t *testing.T) string {
	t.Helper()
	out, err := e.c.AllocateAddress(e.ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc, TagSpecifications: tagSpec(types.ResourceTypeElasticIp, "e")})
	if err != nil {
		t.Fatal(err)
	}
	return *out.AllocationId
}

func (e *ec2Env) nat(t *testing.T, subnet, alloc string) string {
	t.Helper()
	out, err := e.c.CreateNatGateway(e.ctx, &ec2.CreateNatGatewayInput{SubnetId: &subnet, AllocationId: &alloc})
	if err != nil {
		t.Fatal(err)
	}
	return *out.NatGateway.NatGatewayId
}

func (e *ec2Env) natState(t *testing.T, id string) types.NatGatewayState {
	t.Helper()
	out, err := e.c.DescribeNatGateways(e.ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.NatGateways[0].State
}

// taskENI places a Fargate task ENI like the ECS simulator does.
func (e *ec2Env) taskENI(subnet, sg string, public bool) *ENI {
	e.w.Mu.Lock()
	defer e.w.Mu.Unlock()
	return e.w.TaskENI(subnet, []string{sg}, "arn:aws:ecs:us-east-1:123456789012:attachment/x", public)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := awserr.Code(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func TestEC2VPCAndSubnetErrors(t *testing.T) {
	t.Parallel()
	e := newEC2Env(t)
	vpc := e.vpc(t, "10.0.0.0/16")
	e.subnet(t, vpc, "10.0.0.0/20", "us-east-1a")
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"vpc cidr too large", call(e.ctx, e.c.CreateVpc, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/8")}), "InvalidVpc.Range"},
		{"vpc cidr not a cidr", call(e.ctx, e.c.CreateVpc, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.1/16")}), "InvalidParameterValue"},
		{"unknown vpc", call(e.ctx, e.c.DescribeVpcs, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-404"}}), "InvalidVpcID.NotFound"},
		{"subnet outside the vpc", call(e.ctx, e.c.CreateSubnet, &ec2.CreateSubnetInput{VpcId: &vpc, CidrBlock: aws.String("10.1.0.0/24")}), "InvalidSubnet.Range"},
		{"subnet overlapping another", call(e.ctx, e.c.CreateSubnet, &ec2.CreateSubnetInput{VpcId: &vpc, CidrBlock: aws.String("10.0.8.0/24")}), "InvalidSubnet.Conflict"},
		{"subnet in an unknown az", call(e.ctx, e.c.CreateSubnet, &ec2.CreateSubnetInput{VpcId: &vpc, CidrBlock: aws.String("10.0.32.0/24"), AvailabilityZone: aws.String("us-east-1z")}), "InvalidParameterValue"},
		{"subnet in an unknown vpc", call(e.ctx, e.c.CreateSubnet, &ec2.CreateSubnetInput{VpcId: aws.String("vpc-404"), CidrBlock: aws.String("10.0.32.0/24")}), "InvalidVpcID.NotFound"},
		{"two vpc attributes at once", call(e.ctx, e.c.ModifyVpcAttribute, &ec2.ModifyVpcAttributeInput{VpcId: &vpc,
			EnableDnsSupport: &types.AttributeBooleanValue{Value: aws.Bool(true)}, EnableDnsHostnames: &types.AttributeBooleanValue{Value: aws.Bool(true)}}), "InvalidParameterCombination"},
		{"tag spec of the wrong type", call(e.ctx, e.c.CreateVpc, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16"), TagSpecifications: tagSpec(types.ResourceTypeSubnet, "x")}), "InvalidParameterValue"},
		{"unknown filter", call(e.ctx, e.c.DescribeSubnets, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}}), "InvalidParameterValue"},
		{"unknown subnet", call(e.ctx, e.c.DeleteSubnet, &ec2.DeleteSubnetInput{SubnetId: aws.String("subnet-404")}), "InvalidSubnetID.NotFound"},
		{"tags on an unknown resource", call(e.ctx, e.c.CreateTags, &ec2.CreateTagsInput{Resources: []string{"igw-404"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}), "InvalidInternetGatewayID.NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, tc.call(), tc.code) })
	}
}

func TestEC2VPCDefaultsAttributesAndFilters(t *testing.T) {
	t.Parallel()
	e := newEC2Env(t)
	vpc := e.vpc(t, "10.0.0.0/16")
	e.vpc(t, "10.1.0.0/16")
	get := func(a types.VpcAttributeName) bool {
		out, err := e.c.DescribeVpcAttribute(e.ctx, &ec2.DescribeVpcAttributeInput{VpcId: &vpc, Attribute: a})
		if err != nil {
			t.Fatal(err)
		}
		if out.EnableDnsSupport != nil {
			return *out.EnableDnsSupport.Value
		}
		return *out.EnableDnsHostnames.Value
	}
	if !get(types.VpcAttributeNameEnableDnsSupport) || get(types.VpcAttributeNameEnableDnsHostnames) {
		t.Fatal("a new VPC has DNS support on and DNS hostnames off")
	}
	if _, err := e.c.ModifyVpcAttribute(e.ctx, &ec2.ModifyVpcAttributeInput{VpcId: &vpc, EnableDnsHostnames: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	if !get(types.VpcAttributeNameEnableDnsHostnames) {
		t.Fatal("DNS hostnames did not change")
	}
	// The main route table and default security group come with the VPC.
	rts, _ := e.c.DescribeRouteTables(e.ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("association.main"), Values: []string{"true"}}}})
	if len(rts.RouteTables) != 1 || *rts.RouteTables[0].Routes[0].GatewayId != "local" {
		t.Fatalf("main route table = %+v", rts.RouteTables)
	}
	sgs, _ := e.c.DescribeSecurityGroups(e.ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	if len(sgs.SecurityGroups) != 1 {
		t.Fatalf("default security groups = %d", len(sgs.SecurityGroups))
	}
	wantCode(t, "delete default sg", func() error {
		_, err := e.c.DeleteSecurityGroup(e.ctx, &ec2.DeleteSecurityGroupInput{GroupId: sgs.SecurityGroups[0].GroupId})
		return err
	}(), "CannotDelete")
	// Filters: tag:Name, tag-key, wildcards.
	for _, tc := range []struct {
		filter types.Filter
		want   int
	}{
		{types.Filter{Name: aws.String("tag:Name"), Values: []string{"v"}}, 2},
		{types.Filter{Name: aws.String("tag:Name"), Values: []string{"nope"}}, 0},
		{types.Filter{Name: aws.String("tag-key"), Values: []string{"deploybot:*"}}, 2},
		{types.Filter{Name: aws.String("cidr"), Values: []string{"10.1.*"}}, 1},
		{types.Filter{Name: aws.String("vpc-id"), Values: []string{vpc, "vpc-404"}}, 1},
	} {
		out, err := e.c.DescribeVpcs(e.ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{tc.filter}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Vpcs) != tc.want {
			t.Errorf("filter %s=%v: %d vpcs, want %d", *tc.filter.Name, tc.filter.Values, len(out.Vpcs), tc.want)
		}
	}
	azs, err := e.c.DescribeAvailabilityZones(e.ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, z := range azs.AvailabilityZones {
		names = append(names, *z.ZoneName)
	}
	if d := cmp.Diff([]string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}, names); d != "" {
		t.Fatalf("azs (-want +got):\n%s", d)
	}
}

func TestEC2DeleteVPCAndSubnetDependencies(t *testing.T) {
	t.Parallel()
	e, vpc, sn := newEC2Subnet(t)
	sg := e.sg(t, vpc)
	rt, _ := e.c.CreateRouteTable(e.ctx, &ec2.CreateRouteTableInput{VpcId: &vpc})
	assoc, err := e.c.AssociateRouteTable(e.ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: &sn})
	if err != nil {
		t.Fatal(err)
	}
	igw := e.igw(t, vpc)
	eni := e.taskENI(sn, *sg.GroupId, false)

	deleteVPC := call(e.ctx, e.c.DeleteVpc, &ec2.DeleteVpcInput{VpcId: &vpc})
	deleteSubnet := call(e.ctx, e.c.DeleteSubnet, &ec2.DeleteSubnetInput{SubnetId: &sn})
	deleteSG := func() error {
		_, err := e.c.DeleteSecurityGroup(e.ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId})
		return err
	}
	deleteRT := func() error {
		_, err := e.c.DeleteRouteTable(e.ctx, &ec2.DeleteRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId})
		return err
	}

	wantCode(t, "delete vpc with everything", deleteVPC(), "DependencyViolation")
	wantCode(t, "delete subnet with an ENI", deleteSubnet(), "DependencyViolation")
	wantCode(t, "delete sg with an ENI", deleteSG(), "DependencyViolation")
	wantCode(t, "delete associated route table", deleteRT(), "DependencyViolation")

	// The task stops: its ENI lingers (§5.1), still blocking, then goes.
	e.w.Mu.Lock()
	e.w.ReleaseTaskENI(eni.ID)
	e.w.Mu.Unlock()
	wantCode(t, "delete sg with a lingering ENI", deleteSG(), "DependencyViolation")
	enis, _ := e.c.DescribeNetworkInterfaces(e.ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{*sg.GroupId}}}})
	if len(enis.NetworkInterfaces) != 1 || enis.NetworkInterfaces[0].Status != "available" || !strings.Contains(*enis.NetworkInterfaces[0].Description, "attachment/") {
		t.Fatalf("lingering ENI = %+v", enis.NetworkInterfaces)
	}
	e.clk.Advance(DefaultTimings().ENILinger)
	if err := deleteSG(); err != nil {
		t.Fatalf("delete sg after the linger: %v", err)
	}
	wantCode(t, "delete sg twice", deleteSG(), "InvalidGroup.NotFound")
	if err := deleteSubnet(); err != nil {
		t.Fatalf("delete subnet: %v", err)
	}
	wantCode(t, "delete vpc with route table and igw", deleteVPC(), "DependencyViolation")
	wantCode(t, "disassociate unknown", func() error {
		_, err := e.c.DisassociateRouteTable(e.ctx, &ec2.DisassociateRouteTableInput{AssociationId: assoc.AssociationId})
		return err
	}(), "InvalidAssociationID.NotFound") // went with the subnet
	if err := deleteRT(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete attached igw", func() error {
		_, err := e.c.DeleteInternetGateway(e.ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: &igw})
		return err
	}(), "DependencyViolation")
	wantCode(t, "delete vpc with attached igw", deleteVPC(), "DependencyViolation")
	if _, err := e.c.DetachInternetGateway(e.ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: &igw, VpcId: &vpc}); err != nil {
		t.Fatal(err)
	}
	if err := deleteVPC(); err != nil {
		t.Fatalf("delete empty vpc: %v", err)
	}
	wantCode(t, "delete vpc twice", deleteVPC(), "InvalidVpcID.NotFound")
}

func TestEC2InternetGatewayAndRouteErrors(t *testing.T) {
	t.Parallel()
	e := newEC2Env(t)
	vpc := e.vpc(t, "10.0.0.0/16")
	other := e.vpc(t, "10.1.0.0/16")
	sn := e.subnet(t, vpc, "10.0.0.0/24", "us-east-1a")
	igw := e.igw(t, vpc)
	rt, _ := e.c.CreateRouteTable(e.ctx, &ec2.CreateRouteTableInput{VpcId: &vpc})
	otherRT, _ := e.c.CreateRouteTable(e.ctx, &ec2.CreateRouteTableInput{VpcId: &other})
	rtID := rt.RouteTable.RouteTableId
	if _, err := e.c.CreateRoute(e.ctx, &ec2.CreateRouteInput{RouteTableId: rtID, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: &igw}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AssociateRouteTable(e.ctx, &ec2.AssociateRouteTableInput{RouteTableId: rtID, SubnetId: &sn}); err != nil {
		t.Fatal(err)
	}
	sg, _ := e.c.CreateSecurityGroup(e.ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("w"), Description: aws.String("d"), VpcId: &vpc})
	eni := e.taskENI(sn, *sg.GroupId, true)

	tests := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"attach twice", call(e.ctx, e.c.AttachInternetGateway, &ec2.AttachInternetGatewayInput{InternetGatewayId: &igw, VpcId: &other}), "Resource.AlreadyAssociated", ""},
		{"detach from the wrong vpc", call(e.ctx, e.c.DetachInternetGateway, &ec2.DetachInternetGatewayInput{InternetGatewayId: &igw, VpcId: &other}), "Gateway.NotAttached", ""},
		{"detach with a mapped public address", call(e.ctx, e.c.DetachInternetGateway, &ec2.DetachInternetGatewayInput{InternetGatewayId: &igw, VpcId: &vpc}), "DependencyViolation", "Network " + vpc + " has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."},
		{"unknown igw", call(e.ctx, e.c.DescribeInternetGateways, &ec2.DescribeInternetGatewaysInput{InternetGatewayIds: []string{"igw-404"}}), "InvalidInternetGatewayID.NotFound", ""},
		{"route exists", call(e.ctx, e.c.CreateRoute, &ec2.CreateRouteInput{RouteTableId: rtID, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: &igw}), "RouteAlreadyExists", ""},
		{"route to a gateway of another vpc", call(e.ctx, e.c.CreateRoute, &ec2.CreateRouteInput{RouteTableId: otherRT.RouteTable.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: &igw}), "InvalidParameterValue", ""},
		{"route to an unknown nat", call(e.ctx, e.c.CreateRoute, &ec2.CreateRouteInput{RouteTableId: rtID, DestinationCidrBlock: aws.String("10.9.0.0/16"), NatGatewayId: aws.String("nat-404")}), "NatGatewayNotFound", ""},
		{"delete a missing route", call(e.ctx, e.c.DeleteRoute, &ec2.DeleteRouteInput{RouteTableId: rtID, DestinationCidrBlock: aws.String("10.9.0.0/16")}), "InvalidRoute.NotFound", ""},
		{"associate a subnet twice", call(e.ctx, e.c.AssociateRouteTable, &ec2.AssociateRouteTableInput{RouteTableId: rtID, SubnetId: &sn}), "Resource.AlreadyAssociated", ""},
		{"associate across vpcs", call(e.ctx, e.c.AssociateRouteTable, &ec2.AssociateRouteTableInput{RouteTableId: otherRT.RouteTable.RouteTableId, SubnetId: &sn}), "InvalidParameterValue", ""},
		{"delete associated route table", call(e.ctx, e.c.DeleteRouteTable, &ec2.DeleteRouteTableInput{RouteTableId: rtID}), "DependencyViolation", ""},
		{"unknown route table", call(e.ctx, e.c.DeleteRouteTable, &ec2.DeleteRouteTableInput{RouteTableId: aws.String("rtb-404")}), "InvalidRouteTableID.NotFound", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantCode(t, tc.name, err, tc.code)
			if tc.msg != "" && awserr.Message(err) != tc.msg {
				t.Fatalf("message = %q, want %q", awserr.Message(err), tc.msg)
			}
		})
	}
	// Once the task's ENI is gone, detach works; a second detach is NotAttached.
	e.w.Mu.Lock()
	e.w.ReleaseTaskENI(eni.ID)
	e.w.Mu.Unlock()
	e.clk.Advance(DefaultTimings().ENILinger)
	if _, err := e.c.DetachInternetGateway(e.ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: &igw, VpcId: &vpc}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.DetachInternetGateway(e.ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: &igw, VpcId: &vpc})
	wantCode(t, "detach twice", err, "Gateway.NotAttached")
	// The route to the detached gateway is a blackhole now.
	out, _ := e.c.DescribeRouteTables(e.ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{*rtID}})
	if st := out.RouteTables[0].Routes[1].State; st != types.RouteStateBlackhole {
		t.Fatalf("route state = %s, want blackhole", st)
	}
}

func TestEC2NATGatewayAndEIPLifecycle(t *testing.T) {
	t.Parallel()
	e, vpc, pub := newEC2Subnet(t)
	e.igw(t, vpc)
	alloc := e.eip(t)
	token := "deploybot-staging-nat-a"
	create := func(alloc string) (*ec2.CreateNatGatewayOutput, error) {
		return e.c.CreateNatGateway(e.ctx, &ec2.CreateNatGatewayInput{SubnetId: &pub, AllocationId: &alloc, ClientToken: &token,
			TagSpecifications: tagSpec(types.ResourceTypeNatgateway, "n")})
	}
	first, err := create(alloc)
	if err != nil {
		t.Fatal(err)
	}
	nat := *first.NatGateway.NatGatewayId
	again, err := create(alloc)
	if err != nil || *again.NatGateway.NatGatewayId != nat {
		t.Fatalf("same ClientToken must return the same gateway: %v %v", again, err)
	}
	_, err = create(e.eip(t))
	wantCode(t, "same token, other parameters", err, "IdempotentParameterMismatch")
	_, err = e.c.CreateNatGateway(e.ctx, &ec2.CreateNatGatewayInput{SubnetId: &pub, AllocationId: &alloc})
	wantCode(t, "address already associated", err, "Resource.AlreadyAssociated")

	if st := e.natState(t, nat); st != types.NatGatewayStatePending {
		t.Fatalf("new NAT state = %s", st)
	}
	e.clk.Advance(DefaultTimings().NATPendingFor)
	if st := e.natState(t, nat); st != types.NatGatewayStateAvailable {
		t.Fatalf("NAT state after %s = %s", DefaultTimings().NATPendingFor, st)
	}
	release := func() error {
		_, err := e.c.ReleaseAddress(e.ctx, &ec2.ReleaseAddressInput{AllocationId: &alloc})
		return err
	}
	wantCode(t, "release while the NAT uses it", release(), "InvalidIPAddress.InUse")
	_, err = e.c.DeleteSubnet(e.ctx, &ec2.DeleteSubnetInput{SubnetId: &pub})
	wantCode(t, "delete subnet with a NAT", err, "DependencyViolation")

	if _, err := e.c.DeleteNatGateway(e.ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: &nat}); err != nil {
		t.Fatal(err)
	}
	if st := e.natState(t, nat); st != types.NatGatewayStateDeleting {
		t.Fatalf("state after delete = %s", st)
	}
	err = release()
	wantCode(t, "release while the NAT is deleting", err, "AuthFailure")
	if awserr.Message(err) != "You do not have permission to access the specified resource." {
		t.Fatalf("message = %q", awserr.Message(err))
	}
	e.clk.Advance(DefaultTimings().NATDeletingFor)
	if st := e.natState(t, nat); st != types.NatGatewayStateDeleted {
		t.Fatalf("state after %s = %s, want deleted (still described)", DefaultTimings().NATDeletingFor, st)
	}
	if err := release(); err != nil {
		t.Fatalf("release after the NAT is deleted: %v", err)
	}
	wantCode(t, "release twice", release(), "InvalidAllocationID.NotFound")
	e.clk.Advance(DefaultTimings().NATDeletedVisibleFor)
	_, err = e.c.DescribeNatGateways(e.ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{nat}})
	wantCode(t, "NAT forgotten", err, "NatGatewayNotFound")
	_, err = e.c.DeleteNatGateway(e.ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: aws.String("nat-404")})
	wantCode(t, "delete unknown NAT", err, "NatGatewayNotFound")
	if _, err := e.c.DeleteSubnet(e.ctx, &ec2.DeleteSubnetInput{SubnetId: &pub}); err != nil {
		t.Fatalf("delete subnet after its NAT: %v", err)
	}
}

func TestEC2NATWithoutInternetGatewayFails(t *testing.T) {
	t.Parallel()
	e, _, sn := newEC2Subnet(t)
	alloc := e.eip(t)
	nat := e.nat(t, sn, alloc)
	e.clk.Advance(DefaultTimings().NATPendingFor)
	out, err := e.c.DescribeNatGateways(e.ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{nat}})
	if err != nil {
		t.Fatal(err)
	}
	g := out.NatGateways[0]
	if g.State != types.NatGatewayStateFailed || aws.ToString(g.FailureCode) != "Gateway.NotAttached" {
		t.Fatalf("NAT = %s %s, want failed Gateway.NotAttached", g.State, aws.ToString(g.FailureCode))
	}
	// Its address is free again.
	if _, err := e.c.ReleaseAddress(e.ctx, &ec2.ReleaseAddressInput{AllocationId: &alloc}); err != nil {
		t.Fatal(err)
	}
}

func TestEC2SecurityGroupErrors(t *testing.T) {
	t.Parallel()
	e := newEC2Env(t)
	vpc := e.vpc(t, "10.0.0.0/16")
	sg := e.sg(t, vpc)
	all := []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
	https := []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"duplicate name in the vpc", call(e.ctx, e.c.CreateSecurityGroup, &ec2.CreateSecurityGroupInput{GroupName: aws.String("w"), Description: aws.String("d"), VpcId: &vpc}), "InvalidGroup.Duplicate"},
		{"egress rule exists", call(e.ctx, e.c.AuthorizeSecurityGroupEgress, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: sg.GroupId, IpPermissions: all}), "InvalidPermission.Duplicate"},
		{"revoke a missing rule", call(e.ctx, e.c.RevokeSecurityGroupEgress, &ec2.RevokeSecurityGroupEgressInput{GroupId: sg.GroupId, IpPermissions: https}), "InvalidPermission.NotFound"},
		{"unknown group", call(e.ctx, e.c.DescribeSecurityGroups, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-404"}}), "InvalidGroup.NotFound"},
		{"group in an unknown vpc", call(e.ctx, e.c.CreateSecurityGroup, &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("d"), VpcId: aws.String("vpc-404")}), "InvalidVpcID.NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, tc.call(), tc.code) })
	}
	// Egress: swap all-traffic for https only.
	if _, err := e.c.AuthorizeSecurityGroupEgress(e.ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: sg.GroupId, IpPermissions: https}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.RevokeSecurityGroupEgress(e.ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: sg.GroupId, IpPermissions: all}); err != nil {
		t.Fatal(err)
	}
	out, _ := e.c.DescribeSecurityGroups(e.ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{*sg.GroupId}})
	eg := out.SecurityGroups[0].IpPermissionsEgress
	if len(eg) != 1 || *eg[0].IpProtocol != "tcp" || *eg[0].FromPort != 443 {
		t.Fatalf("egress = %+v", eg)
	}
}

func TestEC2NetworkInterfaceFilters(t *testing.T) {
	t.Parallel()
	e := newEC2Env(t)
	vpc, subnets := e.w.SeedExistingVPC("10.5.0.0/16", 2, true)
	other, otherSubnets := e.w.SeedExistingVPC("10.6.0.0/16", 1, false)
	e.taskENI(subnets[0], "sg-a", true)
	e.taskENI(subnets[1], "sg-b", false)
	e.taskENI(otherSubnets[0], "sg-a", false)
	for _, tc := range []struct {
		name, value string
		want        int
	}{
		{"group-id", "sg-a", 2},
		{"subnet-id", subnets[1], 1},
		{"vpc-id", vpc, 2},
		{"vpc-id", other, 1},
		{"status", "in-use", 3},
		{"description", "*attachment/*", 3},
	} {
		out, err := e.c.DescribeNetworkInterfaces(e.ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String(tc.name), Values: []string{tc.value}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.NetworkInterfaces) != tc.want {
			t.Errorf("%s=%s: %d ENIs, want %d", tc.name, tc.value, len(out.NetworkInterfaces), tc.want)
		}
	}
	_, err := e.c.DescribeNetworkInterfaces(e.ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-404"}})
	wantCode(t, "unknown eni", err, "InvalidNetworkInterfaceID.NotFound")
}

func TestEC2InternetReach(t *testing.T) {
	t.Parallel()
	e, vpc, pub := newEC2Subnet(t)
	priv := e.subnet(t, vpc, "10.0.1.0/24", "us-east-1a")
	igw := e.igw(t, vpc)
	pubRT, _ := e.c.CreateRouteTable(e.ctx, &ec2.CreateRouteTableInput{VpcId: &vpc})
	privRT, _ := e.c.CreateRouteTable(e.ctx, &ec2.CreateRouteTableInput{VpcId: &vpc})
	e.c.AssociateRouteTable(e.ctx, &ec2.AssociateRouteTableInput{RouteTableId: pubRT.RouteTable.RouteTableId, SubnetId: &pub})
	e.c.AssociateRouteTable(e.ctx, &ec2.AssociateRouteTableInput{RouteTableId: privRT.RouteTable.RouteTableId, SubnetId: &priv})
	reach := func(subnet string, public bool) (bool, string) {
		e.w.Mu.Lock()
		defer e.w.Mu.Unlock()
		return e.w.InternetReach(subnet, public)
	}
	steps := []struct {
		name    string
		do      func()
		subnet  string
		public  bool
		want    bool
		because string
	}{
		{"public subnet without a default route", nil, pub, true, false, "no route to 0.0.0.0/0"},
		{"public subnet with a public IP", func() {
			e.c.CreateRoute(e.ctx, &ec2.CreateRouteInput{RouteTableId: pubRT.RouteTable.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: &igw})
		}, pub, true, true, ""},
		{"public subnet without a public IP", nil, pub, false, false, "no public IP"},
		{"private subnet with a pending NAT", func() {
			nat := e.nat(t, pub, e.eip(t))
			e.c.CreateRoute(e.ctx, &ec2.CreateRouteInput{RouteTableId: privRT.RouteTable.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), NatGatewayId: &nat})
		}, priv, false, false, "pending"},
		{"private subnet with an available NAT", func() { e.clk.Advance(DefaultTimings().NATPendingFor) }, priv, false, true, ""},
		{"unknown subnet", nil, "subnet-404", true, false, "does not exist"},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		ok, why := reach(s.subnet, s.public)
		if ok != s.want || !strings.Contains(why, s.because) {
			t.Errorf("%s: reach = %v %q, want %v containing %q", s.name, ok, why, s.want, s.because)
		}
	}
}

func TestEC2InventoryListsNetworkResources(t *testing.T) {
	t.Parallel()
	e, vpc, sn := newEC2Subnet(t)
	e.igw(t, vpc)
	e.nat(t, sn, e.eip(t))
	var kinds []string
	for _, it := range e.w.Inventory() {
		if it.Service == "ec2" {
			kinds = append(kinds, it.Type)
		}
	}
	want := []string{"elastic-ip", "internet-gateway", "nat-gateway", "network-interface", "subnet", "vpc"}
	if d := cmp.Diff(want, kinds); d != "" {
		t.Fatalf("inventory types (-want +got):\n%s", d)
	}
	if got := e.w.TaggedFor("staging"); len(got) != 2 { // the VPC and the EIP carry the tag
		t.Fatalf("tagged for staging = %+v", got)
	}
}
