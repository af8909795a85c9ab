package gate

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
)

// The preflight and the gate in one apply: what deploy runs, in order, on
// one Prefect client.

var preflightInput = prefect.PreflightInput{WorkPool: testPool, File: "environments/staging.yaml"}

// TestKeyAppearsInNoOutput runs the failure paths and the longest gate and
// looks for the key (and a basic-auth password) in everything deploybot could
// print: errors, progress, the report as JSON, and the simulator's request log.
func TestKeyAppearsInNoOutput(t *testing.T) {
	t.Parallel()
	badKey := fakekey.Prefect("Wrong")
	var out strings.Builder
	ctx := context.Background()

	s := newScenario(t, scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}})
	rep := s.gate(t)
	fmt.Fprintf(&out, "%+v\n%s\n", rep, strings.Join(s.progress, "\n"))
	for _, key := range []string{badKey, testKey} {
		s.sim.RevokeKey(testKey)
		c, _ := prefect.New(s.sim.URL(), key, prefect.WithClock(s.clk))
		if _, err := c.Preflight(ctx, preflightInput); err != nil {
			fmt.Fprintln(&out, err)
		}
		if _, err := Run(ctx, s.ecs, c, s.in, Options{Clock: s.clk}); err != nil {
			fmt.Fprintln(&out, err)
		}
	}
	fmt.Fprintf(&out, "%+v\n", s.sim.Requests())

	// self-hosted basic auth, wrong password and unreachable server
	sh := prefectsim.New(nil, prefectsim.WithClock(s.clk), prefectsim.WithAuthString("admin:hunter2secret"))
	c, _ := prefect.New(sh.SelfHostedURL(), "", prefect.WithBasicAuth("admin", "wrongpassword99"), prefect.WithClock(s.clk))
	if _, err := c.Preflight(ctx, preflightInput); err != nil {
		fmt.Fprintln(&out, err)
	}
	fmt.Fprintf(&out, "%+v\n", sh.Requests())
	sh.Close()
	if _, err := c.Preflight(ctx, preflightInput); err != nil { // the server is gone
		fmt.Fprintln(&out, err)
	}

	text := out.String()
	if !strings.Contains(text, "401") || !strings.Contains(text, "connection refused") {
		t.Fatalf("the failure paths did not run:\n%s", text)
	}
	for _, secret := range []string{testKey, badKey, "hunter2secret", "wrongpassword99",
		base64.StdEncoding.EncodeToString([]byte("admin:wrongpassword99"))} {
		if strings.Contains(text, secret) {
			t.Errorf("output contains a credential %q", secret)
		}
	}
}

// TestBadKeyFailsPreflightBeforeAnyAWSWrite follows the apply order: the
// preflight runs before the first AWS call, so a bad key costs no AWS write.
func TestBadKeyFailsPreflightBeforeAnyAWSWrite(t *testing.T) {
	t.Parallel()
	s := newScenario(t, scenarioOpts{})
	s.ecs.mu.Lock()
	s.ecs.calls, s.ecs.writes = nil, 0
	s.ecs.mu.Unlock()
	apply := func(c *prefect.Client) error {
		if _, err := c.Preflight(context.Background(), preflightInput); err != nil {
			return err
		}
		_, err := s.ecs.UpdateService(context.Background(), nil)
		return err
	}
	c, _ := prefect.New(s.sim.URL(), "pnu_notAValidKey", prefect.WithClock(s.clk))
	err := apply(c)
	if err == nil || !strings.Contains(err.Error(), "wrong or expired") {
		t.Fatalf("err = %v", err)
	}
	if len(s.ecs.calls) != 0 || s.ecs.writes != 0 {
		t.Fatalf("AWS calls after a failed preflight: %v", s.ecs.calls)
	}
}

// TestBadKeyFailsPreflightWithNoAWSWrite on the simulated account: the world's
// call log shows no write after the preflight refused the key.
func TestBadKeyFailsPreflightWithNoAWSWrite(t *testing.T) {
	t.Parallel()
	f := newWorldFixture(t, testKey)
	f.w.ResetCalls()
	c, _ := prefect.New(f.sim.URL(), "pnu_expiredKey000", prefect.WithClock(f.clk))
	_, err := c.Preflight(context.Background(), preflightInput)
	if err == nil || !strings.Contains(err.Error(), "wrong or expired") {
		t.Fatalf("err = %v", err)
	}
	if calls := f.w.Calls(); len(calls) != 0 {
		t.Fatalf("AWS calls: %+v", calls)
	}
}
