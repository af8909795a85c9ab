package awserr

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// wire answers every request with one canned HTTP response, so the real
// SDK client's retryer and deserializers turn it into the error a caller
// sees (no network: it is the client's transport).
type wire struct {
	status int
	ctype  string
	body   string
	calls  int
}

func (w *wire) Do(r *http.Request) (*http.Response, error) {
	w.calls++
	return &http.Response{StatusCode: w.status, Header: http.Header{"Content-Type": {w.ctype}},
		Body: io.NopCloser(bytes.NewBufferString(w.body)), Request: r}, nil
}

// TestIsUnsupportedOperationOnTheWire: the answers of endpoints that lack
// an operation, as the real ECS client reports them, are unsupported
// operations; AWS errors of an operation that exists are not.
func TestIsUnsupportedOperationOnTheWire(t *testing.T) {
	const jsonType = "application/x-amz-json-1.1"
	for _, tc := range []struct {
		name        string
		w           wire
		unsupported bool
	}{
		{"AWS: unknown operation", wire{status: 400, ctype: jsonType,
			body: `{"__type":"com.amazon.coral.service#UnknownOperationException","message":null}`}, true},
		{"an emulator: 404 unknown operation", wire{status: 404, ctype: jsonType,
			body: `{"__type":"UnknownOperationException","message":"Unknown operation: AmazonEC2ContainerServiceV20141113.ListServiceDeployments"}`}, true},
		{"LocalStack: 501 not yet implemented", wire{status: 501, ctype: jsonType,
			body: `{"__type":"InternalFailure","message":"API action 'ListServiceDeployments' for service 'ecs' not yet implemented or pro feature - please check https://docs.localstack.cloud/references/coverage/ for further information"}`}, true},
		{"moto_server: 500 HTML page", wire{status: 500, ctype: "text/html",
			body: "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>"}, true},
		{"ECS server error", wire{status: 500, ctype: jsonType, body: `{"__type":"ServerException","message":"Service Unavailable"}`}, false},
		{"access denied", wire{status: 400, ctype: jsonType, body: `{"__type":"AccessDeniedException","message":"not authorized to perform: ecs:ListServiceDeployments"}`}, false},
		{"service not found", wire{status: 400, ctype: jsonType, body: `{"__type":"ServiceNotFoundException","message":"Service not found."}`}, false},
		{"throttled", wire{status: 400, ctype: jsonType, body: `{"__type":"ThrottlingException","message":"Rate exceeded"}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			c := ecs.New(ecs.Options{Region: "us-east-1", HTTPClient: &w, Credentials: aws.AnonymousCredentials{},
				RetryMaxAttempts: 1}) // the retries are not what is classified
			_, err := c.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("s")})
			if err == nil {
				t.Fatal("no error")
			}
			if got := IsUnsupportedOperation(err); got != tc.unsupported {
				t.Errorf("IsUnsupportedOperation(%v) = %v, want %v", err, got, tc.unsupported)
			}
		})
	}
	if IsUnsupportedOperation(nil) {
		t.Error("nil is unsupported")
	}
}
