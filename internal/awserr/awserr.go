// Package awserr is the one place that classifies AWS errors, from the SDK's
// typed exceptions and smithy.APIError codes (docs/research/aws-ecs.md §5).
package awserr

import (
	"errors"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"
)

// Code returns the AWS error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Message returns the AWS error message of err, or "".
func Message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

var notFound = map[string]bool{
	"ResourceNotFoundException":          true, // logs, secretsmanager
	"NoSuchEntity":                       true, // iam
	"ClusterNotFoundException":           true,
	"ServiceNotFoundException":           true,
	"ServiceNotActiveException":          true,
	"NamespaceNotFound":                  true, // servicediscovery
	"ServiceNotFound":                    true,
	"InstanceNotFound":                   true,
	"OperationNotFound":                  true,
	"ObjectNotFoundException":            true, // application autoscaling
	"ParameterNotFound":                  true, // ssm
	"InvalidVpcID.NotFound":              true,
	"InvalidSubnetID.NotFound":           true,
	"InvalidGroup.NotFound":              true,
	"InvalidGroupId.NotFound":            true,
	"InvalidInternetGatewayID.NotFound":  true,
	"InvalidRouteTableID.NotFound":       true,
	"InvalidAllocationID.NotFound":       true,
	"NatGatewayNotFound":                 true,
	"InvalidNetworkInterfaceID.NotFound": true,
	"InvalidAssociationID.NotFound":      true,
	"InvalidRoute.NotFound":              true,
	"Gateway.NotAttached":                true,
	// SQS's JSON protocol carries the query protocol's code in
	// x-amzn-query-error, which the SDK reports (internal/awssim/sqs.go);
	// without that header the code is the exception's name.
	"AWS.SimpleQueueService.NonExistentQueue": true,
	"QueueDoesNotExist":                       true,
}

// IsNotFound: the resource is not there (a state, not a failure).
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	if notFound[Code(err)] {
		return true
	}
	// ECS answers a missing task definition with ClientException "Unable to describe task definition."
	return Code(err) == "ClientException" && strings.Contains(Message(err), "Unable to describe task definition")
}

// IgnoreNotFound is err, or nil when it says the resource is not there: the
// error of a delete, for which what is gone already is done.
func IgnoreNotFound(err error) error {
	if IsNotFound(err) {
		return nil
	}
	return err
}

var throttles = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "RequestThrottled": true, "ThrottledException": true,
	"ConcurrentModificationException": true,
}

// IsThrottle: the call was throttled.
func IsThrottle(err error) bool { return throttles[Code(err)] }

// dependency codes: something still uses the resource; retry within a budget.
var dependency = map[string]bool{
	"DependencyViolation":                        true,
	"InvalidGroup.InUse":                         true,
	"ResourceInUse":                              true,
	"DeleteConflict":                             true,
	"ClusterContainsServicesException":           true,
	"ClusterContainsTasksException":              true,
	"ClusterContainsContainerInstancesException": true,
	"UpdateInProgressException":                  true,
	"DuplicateRequest":                           true,
	"OperationAbortedException":                  true,
	"InvalidIPAddress.InUse":                     true,
}

// IsDependency: the delete (or change) is blocked by something that is going
// away; docs/research/aws-ecs.md §5 retries these within a budget.
func IsDependency(err error) bool {
	if dependency[Code(err)] {
		return true
	}
	// "The service cannot be stopped while deployments are active."
	return Code(err) == "InvalidParameterException" && strings.Contains(Message(err), "deployments are active")
}

// IsAlreadyExists: a create found the name taken.
func IsAlreadyExists(err error) bool {
	switch Code(err) {
	case "EntityAlreadyExists", "ResourceAlreadyExistsException", "ResourceExistsException",
		"NamespaceAlreadyExists", "ServiceAlreadyExists", "InvalidGroup.Duplicate", "ParameterAlreadyExists":
		return true
	}
	return false
}

// IsAccessDenied: the credentials may not do this.
func IsAccessDenied(err error) bool {
	switch Code(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError":
		return true
	}
	return false
}

// IsNoCredentials: the SDK's credential chain found no credentials at all
// (no profile, no environment variables, no SSO session, no instance role).
func IsNoCredentials(err error) bool {
	if err == nil || Code(err) != "" {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "get credentials:") || strings.Contains(m, "failed to retrieve credentials") ||
		strings.Contains(m, "failed to refresh cached credentials")
}

// CredentialsHint says how to give deploybot AWS credentials.
const CredentialsHint = "no AWS credentials found: deploybot uses the AWS SDK's default chain; " +
	"set AWS_PROFILE (after `aws sso login` for SSO profiles), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or run where an instance or task role is available (in GitHub Actions deploybot assumes the roles by OIDC)"

// IsUnsupportedOperation: the endpoint does not implement the operation
// (an AWS-compatible endpoint that lags AWS's API, or an AWS endpoint
// without a newer operation), so a caller with another way to learn the
// same thing should take it. The answers it knows:
//   - AWS JSON protocols: 400/404 UnknownOperationException
//     (https://github.com/aws/aws-sdk-js/issues/425); query protocols: InvalidAction;
//   - LocalStack: 501 InternalFailure "API action 'X' for service 'y' not yet
//     implemented or pro feature" (https://github.com/localstack/localstack/issues/6721);
//     any other 501 Not Implemented (RFC 9110 §15.6.2);
//   - moto_server: 500 with an HTML page instead of an AWS error
//     (https://github.com/getmoto/moto/issues/956), which the SDK cannot decode.
//
// A 500 that carries an AWS error code is a server error, not this.
func IsUnsupportedOperation(err error) bool {
	if err == nil {
		return false
	}
	switch Code(err) {
	case "UnknownOperationException", "InvalidAction", "NotImplemented", "NotImplementedException":
		return true
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) {
		return false
	}
	if re.HTTPStatusCode() == http.StatusNotImplemented {
		return true
	}
	var undecodable *smithy.DeserializationError
	return re.HTTPStatusCode() >= 500 && Code(err) == "" && errors.As(err, &undecodable)
}

// CodeWithMessage returns a predicate for the errors a retry waits out: the
// error code is code and, when fragments are given, the message contains
// one of them (AWS reuses codes such as InvalidParameterException for
// errors that time fixes and errors that it does not).
func CodeWithMessage(code string, fragments ...string) func(error) bool {
	return func(err error) bool {
		if Code(err) != code {
			return false
		}
		if len(fragments) == 0 {
			return true
		}
		msg := Message(err)
		for _, f := range fragments {
			if strings.Contains(msg, f) {
				return true
			}
		}
		return false
	}
}

// IsCode returns a predicate for errors with one of codes.
func IsCode(codes ...string) func(error) bool {
	return func(err error) bool {
		c := Code(err)
		for _, want := range codes {
			if c == want {
				return true
			}
		}
		return false
	}
}

// AnyOf combines predicates.
func AnyOf(ps ...func(error) bool) func(error) bool {
	return func(err error) bool {
		for _, p := range ps {
			if p(err) {
				return true
			}
		}
		return false
	}
}
