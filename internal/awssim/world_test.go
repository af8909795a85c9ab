package awssim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/deploybot/deploybot/internal/clock"
)

func TestRealClientTalksToWorld(t *testing.T) {
	t.Parallel()
	w := New(clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	c := sts.NewFromConfig(w.Config())
	out, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *out.Account != DefaultAccount {
		t.Fatalf("account = %s", *out.Account)
	}
	if got := w.Calls(); len(got) != 1 || got[0].Operation != "GetCallerIdentity" || got[0].Principal == "" {
		t.Fatalf("calls = %+v", got)
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	t.Parallel()
	w := New(clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	w.SetFaults(Faults{ThrottleFraction: 0.3, Seed: 7})
	c := sts.NewFromConfig(w.Config())
	for i := 0; i < 200; i++ {
		if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	throttled := 0
	for _, c := range w.Calls() {
		if c.ErrCode == "Throttling" {
			throttled++
		}
	}
	if throttled < 40 {
		t.Fatalf("only %d throttled calls; the fault switch is not working", throttled)
	}
}

func TestUnknownOperationIsAnError(t *testing.T) {
	t.Parallel()
	w := New(clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	w.SetFaults(Faults{StopAfterWrites: 0})
	c := sts.NewFromConfig(w.Config())
	_, err := c.DecodeAuthorizationMessage(context.Background(), &sts.DecodeAuthorizationMessageInput{EncodedMessage: new(string)})
	if err == nil {
		t.Fatal("want error for an operation the world does not simulate")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		t.Fatalf("unsimulated op must not look like an AWS API error: %v", err)
	}
}
