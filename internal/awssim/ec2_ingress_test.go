package awssim

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
)

// Inbound rules: authorize adds, a duplicate is InvalidPermission.Duplicate;
// in a non-default VPC a revoke naming any rule that is not there is
// InvalidPermission.NotFound and revokes nothing (EC2 API reference,
// RevokeSecurityGroupIngress).
func TestEC2SecurityGroupIngress(t *testing.T) {
	t.Parallel()
	tcp := func(port int32, cidr string) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}
	}
	ssh, web, other := tcp(22, "203.0.113.0/24"), tcp(80, "0.0.0.0/0"), tcp(443, "0.0.0.0/0")
	tests := []struct {
		name   string
		revoke []types.IpPermission
		code   string
		left   []string
	}{
		{name: "one of two", revoke: []types.IpPermission{ssh}, left: []string{"tcp:80-80:0.0.0.0/0"}},
		{name: "both", revoke: []types.IpPermission{ssh, web}},
		{name: "one missing among them", revoke: []types.IpPermission{ssh, other}, code: "InvalidPermission.NotFound",
			left: []string{"tcp:22-22:203.0.113.0/24", "tcp:80-80:0.0.0.0/0"}},
		{name: "same ports, other source", revoke: []types.IpPermission{tcp(22, "0.0.0.0/0")}, code: "InvalidPermission.NotFound",
			left: []string{"tcp:22-22:203.0.113.0/24", "tcp:80-80:0.0.0.0/0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEC2Env(t)
			vpc := e.vpc(t, "10.0.0.0/16")
			sg, err := e.c.CreateSecurityGroup(e.ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("w"), Description: aws.String("d"), VpcId: &vpc})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.c.AuthorizeSecurityGroupIngress(e.ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{ssh, web}}); err != nil {
				t.Fatal(err)
			}
			_, err = e.c.AuthorizeSecurityGroupIngress(e.ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{web}})
			wantCode(t, "authorize a rule that exists", err, "InvalidPermission.Duplicate")

			_, err = e.c.RevokeSecurityGroupIngress(e.ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: tc.revoke})
			wantCode(t, tc.name, err, tc.code)
			out, err := e.c.DescribeSecurityGroups(e.ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{*sg.GroupId}})
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, p := range out.SecurityGroups[0].IpPermissions {
				for _, r := range p.IpRanges {
					left = append(left, SGRule(p, *r.CidrIp))
				}
			}
			if d := cmp.Diff(tc.left, left); d != "" {
				t.Errorf("inbound rules left (-want +got):\n%s", d)
			}
			if eg := out.SecurityGroups[0].IpPermissionsEgress; len(eg) != 1 {
				t.Errorf("egress changed: %+v", eg)
			}
		})
	}
}
