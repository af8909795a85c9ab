package awssim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/deploybot/deploybot/internal/clock"
)

var simStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestWorld(t *testing.T) (*World, *clock.Virtual) {
	t.Helper()
	c := clock.NewVirtual(simStart)
	return New(c), c
}

// errCode returns the AWS error code of err ("" for nil), failing the test
// for errors that are not API errors.
func errCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode()
}

func errMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

var bg = context.Background()
