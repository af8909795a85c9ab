package kinds_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/kinds/ec2"
)

func sgTCP(port int32, cidr string) ec2types.IpPermission {
	return ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr)}}}
}

// The worker group's desired ingress is none. Inbound rules added by hand
// are drift the apply revokes — also when they changed again between the
// plan and the apply (EC2 then refuses the whole revoke with
// InvalidPermission.NotFound, and the group is read again).
func TestSecurityGroupIngressDriftIsRevoked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// added before the plan reads the group, and changes after it.
		added         []ec2types.IpPermission
		revokedLater  []ec2types.IpPermission
		addedLater    []ec2types.IpPermission
		before        string
		wantEC2Writes []string
	}{
		{name: "one rule", added: []ec2types.IpPermission{sgTCP(22, "203.0.113.0/24")},
			before: `["tcp:22-22:203.0.113.0/24"]`, wantEC2Writes: []string{"RevokeSecurityGroupIngress "}},
		{name: "changed after the plan", added: []ec2types.IpPermission{sgTCP(22, "203.0.113.0/24"), sgTCP(80, "0.0.0.0/0")},
			revokedLater: []ec2types.IpPermission{sgTCP(22, "203.0.113.0/24")}, addedLater: []ec2types.IpPermission{sgTCP(443, "198.51.100.7/32")},
			before:        `["tcp:22-22:203.0.113.0/24","tcp:80-80:0.0.0.0/0"]`,
			wantEC2Writes: []string{"RevokeSecurityGroupIngress InvalidPermission.NotFound", "RevokeSecurityGroupIngress "}},
		{name: "gone after the plan", added: []ec2types.IpPermission{sgTCP(22, "203.0.113.0/24")},
			revokedLater: []ec2types.IpPermission{sgTCP(22, "203.0.113.0/24")},
			before:       `["tcp:22-22:203.0.113.0/24"]`, wantEC2Writes: []string{"RevokeSecurityGroupIngress InvalidPermission.NotFound"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := sgInExistingVPC(t)
			w, x, r := f.w, f.x, f.r
			k := ec2.SecurityGroup
			id := aws.String(f.create(t, ctx))
			c := awsec2.NewFromConfig(w.Config())
			if _, err := c.AuthorizeSecurityGroupIngress(ctx, &awsec2.AuthorizeSecurityGroupIngressInput{GroupId: id, IpPermissions: tc.added}); err != nil {
				t.Fatal(err)
			}
			live, err := k.Read(ctx, x, r)
			if err != nil {
				t.Fatal(err)
			}
			changed := netDiff(must(k.Desired(r, nil)), live.Attrs)
			if d := cmp.Diff([]string{"ingress"}, paths(changed)); d != "" {
				t.Fatalf("changed (-want +got):\n%s", d)
			}
			if changed[0].Before != tc.before || changed[0].After != "[]" {
				t.Errorf("ingress %s -> %s, want %s -> []", changed[0].Before, changed[0].After, tc.before)
			}
			if len(tc.revokedLater) > 0 {
				if _, err := c.RevokeSecurityGroupIngress(ctx, &awsec2.RevokeSecurityGroupIngressInput{GroupId: id, IpPermissions: tc.revokedLater}); err != nil {
					t.Fatal(err)
				}
			}
			if len(tc.addedLater) > 0 {
				if _, err := c.AuthorizeSecurityGroupIngress(ctx, &awsec2.AuthorizeSecurityGroupIngressInput{GroupId: id, IpPermissions: tc.addedLater}); err != nil {
					t.Fatal(err)
				}
			}
			w.ResetCalls()
			if _, err := k.Update(ctx, x, r, live, nil, changed); err != nil {
				t.Fatal(err)
			}
			var writes []string
			for _, call := range w.Calls() {
				if call.Write {
					writes = append(writes, call.Operation+" "+call.ErrCode)
				}
			}
			if d := cmp.Diff(tc.wantEC2Writes, writes); d != "" {
				t.Errorf("writes (-want +got):\n%s", d)
			}
			live, err = k.Read(ctx, x, r)
			if err != nil {
				t.Fatal(err)
			}
			if d := netDiff(must(k.Desired(r, nil)), live.Attrs); len(d) != 0 {
				t.Fatalf("plan after the update is not empty: %+v", d)
			}
		})
	}
}
