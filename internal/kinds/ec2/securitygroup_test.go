package ec2

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
)

// Inbound rules of every source kind show in the plan, not only IPv4 CIDRs.
func TestSecurityGroupIngressRulesOfEverySource(t *testing.T) {
	t.Parallel()
	perms := []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges:         []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("by hand")}},
			Ipv6Ranges:       []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-0abc"), UserId: aws.String("123456789012")}},
			PrefixListIds:    []ec2types.PrefixListId{{PrefixListId: aws.String("pl-0123")}}},
		{IpProtocol: aws.String("-1"), FromPort: aws.Int32(-1), ToPort: aws.Int32(-1), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
		{IpProtocol: aws.String("icmp"), FromPort: aws.Int32(8), ToPort: aws.Int32(-1), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
	}
	want := []string{"-1:0-0:10.0.0.0/8", "icmp:8--1:10.0.0.0/8", "tcp:443-443:0.0.0.0/0", "tcp:443-443:::/0", "tcp:443-443:pl-0123", "tcp:443-443:sg-0abc"}
	if d := cmp.Diff(want, sgIngressRules(perms)); d != "" {
		t.Errorf("rules (-want +got):\n%s", d)
	}
	if got := sgIngressRules(nil); got != nil {
		t.Errorf("no permissions: %v", got)
	}
}
