package awssim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
)

// Regions have gaps in their zone letters (us-west-1: b and c for most
// accounts; ap-northeast-1: a, c and d), and CreateSubnet refuses a zone the
// region does not have with EC2's own error.
func TestEC2AvailabilityZonesPerRegion(t *testing.T) {
	t.Parallel()
	filters := []types.Filter{
		{Name: aws.String("state"), Values: []string{"available"}},
		{Name: aws.String("zone-type"), Values: []string{"availability-zone"}},
		{Name: aws.String("opt-in-status"), Values: []string{"opt-in-not-required"}},
	}
	tests := []struct {
		region  string
		filters []types.Filter
		want    []string
		bad     string // a zone CreateSubnet refuses
		wantErr string
	}{
		{region: "us-east-1", filters: filters, want: []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}, bad: "us-east-1g",
			wantErr: "Value (us-east-1g) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f."},
		{region: "us-west-1", filters: filters, want: []string{"us-west-1b", "us-west-1c"}, bad: "us-west-1a",
			wantErr: "Value (us-west-1a) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: us-west-1b, us-west-1c."},
		{region: "ap-northeast-1", filters: filters, want: []string{"ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"}, bad: "ap-northeast-1b",
			wantErr: "Value (ap-northeast-1b) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: ap-northeast-1a, ap-northeast-1c, ap-northeast-1d."},
		{region: "eu-west-1", want: []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}, bad: "eu-west-1d",
			wantErr: "Value (eu-west-1d) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: eu-west-1a, eu-west-1b, eu-west-1c."},
		// A filter no zone matches.
		{region: "us-west-1", filters: []types.Filter{{Name: aws.String("zone-type"), Values: []string{"local-zone"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			w := New(clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
			w.Region = tc.region
			c := ec2.NewFromConfig(w.Config())
			ctx := context.Background()
			out, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{Filters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, z := range out.AvailabilityZones {
				names = append(names, aws.ToString(z.ZoneName))
				if aws.ToString(z.RegionName) != tc.region {
					t.Errorf("%s: region %q", aws.ToString(z.ZoneName), aws.ToString(z.RegionName))
				}
			}
			if d := cmp.Diff(tc.want, names); d != "" {
				t.Fatalf("zones (-want +got):\n%s", d)
			}
			if tc.bad == "" {
				return
			}
			vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/24"), AvailabilityZone: aws.String(tc.bad)})
			if awserr.Code(err) != "InvalidParameterValue" || awserr.Message(err) != tc.wantErr {
				t.Fatalf("CreateSubnet in %s: %v\nwant InvalidParameterValue: %s", tc.bad, err, tc.wantErr)
			}
			for i, az := range tc.want {
				sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i+1)),
					AvailabilityZone: aws.String(az)})
				if err != nil {
					t.Fatalf("CreateSubnet in %s: %v", az, err)
				}
				if got := aws.ToString(sn.Subnet.AvailabilityZone); got != az {
					t.Errorf("subnet created in %s, asked for %s", got, az)
				}
			}
		})
	}
}
