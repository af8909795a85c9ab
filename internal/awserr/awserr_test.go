package awserr

import (
	"errors"
	"fmt"
	"testing"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

func apiErr(code, msg string) error {
	return fmt.Errorf("wrapped: %w", &smithy.OperationError{ServiceID: "X", OperationName: "Y",
		Err: &smithy.GenericAPIError{Code: code, Message: msg}})
}

func TestClassification(t *testing.T) {
	for _, c := range []struct {
		err                                     error
		notFound, dep, throttle, exists, denied bool
	}{
		{err: apiErr("ResourceNotFoundException", ""), notFound: true},
		{err: &ecstypes.ClusterNotFoundException{}, notFound: true},
		{err: apiErr("ClientException", "Unable to describe task definition."), notFound: true},
		{err: apiErr("ClientException", "Too many concurrent attempts")},
		{err: apiErr("DependencyViolation", "has a dependent object"), dep: true},
		{err: apiErr("InvalidParameterException", "The service cannot be stopped while deployments are active."), dep: true},
		{err: apiErr("InvalidParameterException", "something else")},
		{err: apiErr("RequestLimitExceeded", ""), throttle: true},
		{err: apiErr("Throttling", "Rate exceeded"), throttle: true},
		{err: apiErr("EntityAlreadyExists", ""), exists: true},
		{err: apiErr("UnauthorizedOperation", ""), denied: true},
		{err: errors.New("plain"), notFound: false},
	} {
		if IsNotFound(c.err) != c.notFound || IsDependency(c.err) != c.dep || IsThrottle(c.err) != c.throttle ||
			IsAlreadyExists(c.err) != c.exists || IsAccessDenied(c.err) != c.denied {
			t.Errorf("%v: notFound=%v dep=%v throttle=%v exists=%v denied=%v", c.err,
				IsNotFound(c.err), IsDependency(c.err), IsThrottle(c.err), IsAlreadyExists(c.err), IsAccessDenied(c.err))
		}
	}
	if Code(apiErr("X", "m")) != "X" || Message(apiErr("X", "m")) != "m" || Code(nil) != "" {
		t.Error("Code/Message")
	}
	gone, other := apiErr("InvalidVpcID.NotFound", ""), apiErr("DependencyViolation", "")
	if IgnoreNotFound(gone) != nil || IgnoreNotFound(other) != other || IgnoreNotFound(nil) != nil {
		t.Error("IgnoreNotFound")
	}
}
