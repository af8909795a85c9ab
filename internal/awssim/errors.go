package awssim

import (
	"errors"

	"github.com/aws/smithy-go"
)

func asAPIError(err error, target *smithy.APIError) bool { return errors.As(err, target) }

// Err returns a client-fault API error with the given code, for errors the SDK
// does not model as a typed exception (e.g. EC2's DependencyViolation).
// Prefer the SDK's typed exception where one exists (types.ResourceNotFoundException...).
func Err(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}
