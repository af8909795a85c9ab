package awssim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Endpoint is how an AWS-compatible endpoint answers an operation it does
// not implement. deploybot's README promises LocalStack-style endpoints,
// which lag AWS's newest APIs (ECS ListServiceDeployments and
// DescribeServiceDeployments, 2025, among them).
type Endpoint int

const (
	// LocalStack answers 501 with code InternalFailure and "API action 'X'
	// for service 'y' not yet implemented or pro feature"
	// (https://github.com/localstack/localstack/issues/6721, #10137; the
	// SDK does not retry a 501).
	LocalStack Endpoint = iota + 1
	// AWSUnknownOperation is AWS's own answer to an operation its endpoint
	// does not know (an endpoint or partition without the newest API):
	// 400 UnknownOperationException (https://github.com/aws/aws-sdk-js/issues/425,
	// https://github.com/aws/aws-sdk-net/issues/1536).
	AWSUnknownOperation
	// Moto is moto_server: the action raises NotImplementedError and the
	// server answers 500 with an HTML page, which is no AWS error at all
	// (https://github.com/getmoto/moto/issues/956); the SDK retries the 500
	// and then fails to decode the body.
	Moto
)

// WithUnsupported makes a new account answer the given operations as
// endpoint does (SetUnsupported).
func WithUnsupported(endpoint Endpoint, operations ...string) Option {
	return func(w *World) { w.SetUnsupported(endpoint, operations...) }
}

// SetUnsupported makes the account answer the given operations
// ("ECS.ListServiceDeployments") the way endpoint does when it lacks them;
// no operations restores them all. The switch is for testing deploybot's
// fallbacks, not a model of AWS itself.
func (w *World) SetUnsupported(endpoint Endpoint, operations ...string) {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	w.unsupported = map[string]Endpoint{}
	for _, op := range operations {
		w.unsupported[op] = endpoint
	}
}

// unsupportedError is the error the SDK would give for op on an endpoint
// that lacks it, or nil. Callers hold w.faultsMu.
func (w *World) unsupportedError(service, op string) error {
	endpoint, ok := w.unsupported[service+"."+op]
	if !ok {
		return nil
	}
	switch endpoint {
	case LocalStack:
		return responseError(http.StatusNotImplemented, &smithy.GenericAPIError{Code: "InternalFailure",
			Message: fmt.Sprintf("API action '%s' for service '%s' not yet implemented or pro feature - please check https://docs.localstack.cloud/references/coverage/ for further information", op, strings.ToLower(service)),
			Fault:   smithy.FaultServer})
	case AWSUnknownOperation:
		return responseError(http.StatusBadRequest, &smithy.GenericAPIError{Code: "UnknownOperationException", Fault: smithy.FaultClient})
	default: // Moto
		return responseError(http.StatusInternalServerError, &smithy.DeserializationError{
			Err:      errors.New("invalid character '<' looking for beginning of value"),
			Snapshot: []byte("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>500 Internal Server Error</title>"),
		})
	}
}

// responseError wraps err as the SDK's deserializers do, so that the HTTP
// status is visible to its retryer and to callers (awshttp.ResponseError).
func responseError(status int, err error) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}}, Err: err},
		RequestID:     "00000000-0000-0000-0000-000000000000",
	}
}
