package awssim

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// TestSetUnsupported: the switched-off operation answers as the chosen
// endpoint does (HTTP status, error code, the SDK's retries), the others
// keep working, and switching nothing off restores it.
func TestSetUnsupported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		endpoint Endpoint
		status   int
		code     string // "" when the body is no AWS error
		attempts int    // the SDK retries a 500, not a 400 or 501
	}{
		{"LocalStack", LocalStack, 501, "InternalFailure", 1},
		{"AWS without the operation", AWSUnknownOperation, 400, "UnknownOperationException", 1},
		{"moto_server", Moto, 500, "", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, _ := newTestWorld(t, WithUnsupported(tc.endpoint, "ECS.ListServiceDeployments", "ECS.DescribeServiceDeployments"))
			c := ecs.NewFromConfig(w.Config())
			_, err := c.ListServiceDeployments(bg, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("s")})
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status {
				t.Fatalf("err = %v, want an HTTP %d response error", err, tc.status)
			}
			var ae smithy.APIError
			switch {
			case tc.code != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tc.code):
				t.Fatalf("err = %v, want code %s", err, tc.code)
			case tc.code == "":
				var de *smithy.DeserializationError
				if !errors.As(err, &de) || errors.As(err, &ae) {
					t.Fatalf("err = %v, want an undecodable body and no API error", err)
				}
			}
			n := 0
			for _, call := range w.Calls() {
				if call.Operation == "ListServiceDeployments" {
					n++
				}
			}
			if n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			if _, err := c.DescribeClusters(bg, &ecs.DescribeClustersInput{Clusters: []string{"c"}}); err != nil {
				t.Errorf("DescribeClusters with ListServiceDeployments off: %v", err)
			}
			w.SetUnsupported(tc.endpoint)
			if _, err := c.ListServiceDeployments(bg, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("s")}); errors.As(err, &re) {
				t.Errorf("after switching it back on: %v", err)
			}
		})
	}
}
