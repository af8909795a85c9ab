package bootstrap_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/deploy"
)

// TestApplyRoleRevokesHandAddedIngress: an inbound rule added by hand to the
// worker security group (egress only by design) is revoked by an apply
// signed with exactly the bootstrap apply role, in a managed and in an
// existing VPC; the plan role sees it.
func TestApplyRoleRevokesHandAddedIngress(t *testing.T) {
	t.Parallel()
	for _, managed := range []bool{false, true} {
		t.Run(fmt.Sprintf("managed=%v", managed), func(t *testing.T) {
			ctx := context.Background()
			x := newLPWorld(t, managed)
			if _, err := deploy.Apply(ctx, x.as("apply", x.appDoc, x.env("512"))); err != nil {
				t.Fatal(err)
			}
			c := ec2.NewFromConfig(x.w.Config())
			groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
				{Name: aws.String("group-name"), Values: []string{"deploybot-lp-worker"}}}})
			if err != nil || len(groups.SecurityGroups) != 1 {
				t.Fatalf("worker group: %+v, %v", groups, err)
			}
			id := groups.SecurityGroups[0].GroupId
			if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: id, IpPermissions: []ec2types.IpPermission{
				{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}}}}}); err != nil {
				t.Fatal(err)
			}
			r, err := deploy.Plan(ctx, x.as("plan", x.planDoc, x.env("512")))
			if err != nil {
				t.Fatal(err)
			}
			if s := r.Plan.Summary(); s.Change != 1 {
				t.Fatalf("plan of the drift: %+v, want one change", s)
			}
			if _, err := deploy.Apply(ctx, x.as("apply", x.appDoc, x.env("512"))); err != nil {
				t.Fatal(err)
			}
			after, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(id)}})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(after.SecurityGroups[0].IpPermissions); n != 0 {
				t.Fatalf("%d inbound rules left", n)
			}
			for _, call := range x.w.Calls() {
				if awserrCode(call.ErrCode) {
					t.Errorf("denied: %s.%s as %s", call.Service, call.Operation, call.Principal)
				}
			}
		})
	}
}
