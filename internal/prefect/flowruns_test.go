package prefect

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
)

func smokeDeployment(flowID string) DeploymentCreate {
	return DeploymentCreate{Name: "staging", FlowID: flowID, WorkPoolName: testPool, WorkQueueName: "deploybot-smoke",
		Entrypoint: "smoke.py:smoke", PullSteps: []map[string]any{{"prefect.deployments.steps.run_shell_script": map[string]any{"script": "true"}}},
		Parameters: map[string]any{}, ParameterOpenAPISchema: map[string]any{"type": "object", "properties": map[string]any{}},
		EnforceParameterSchema: true, JobVariables: map[string]any{}, Tags: []string{"deploybot"}, Labels: map[string]string{}}
}

// TestFlowRunCalls runs each call against the simulated Prefect API with
// the status codes Prefect answers: a create that finds what exists, an
// upsert that updates, an idempotent flow run, a cancel, and the 404s read
// as absent.
func TestFlowRunCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clock.NewVirtual(t0)
	sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey))
	defer sim.Close()
	sim.AddWorkPool(testPool, "ecs", false)
	c, err := New(sim.URL(), testKey, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}

	f1, err := c.CreateFlow(ctx, "deploybot-smoke")
	if err != nil {
		t.Fatal(err)
	}
	f2, err := c.CreateFlow(ctx, "deploybot-smoke")
	if err != nil || f2.ID != f1.ID {
		t.Fatalf("second create of the flow: %+v, %v; want the same id %s", f2, err, f1.ID)
	}

	if d, err := c.ReadDeploymentByName(ctx, "deploybot-smoke", "staging"); d != nil || err != nil {
		t.Fatalf("a missing deployment reads as %+v, %v; want nil, nil", d, err)
	}
	d1, created, err := c.UpsertDeployment(ctx, smokeDeployment(f1.ID))
	if err != nil || !created {
		t.Fatalf("first upsert: created=%v err=%v", created, err)
	}
	spec := smokeDeployment(f1.ID)
	spec.Description = "changed"
	d2, created, err := c.UpsertDeployment(ctx, spec)
	if err != nil || created || d2.ID != d1.ID || d2.Description == nil || *d2.Description != "changed" {
		t.Fatalf("second upsert: %+v created=%v err=%v; want the same deployment, updated", d2, created, err)
	}
	byName, err := c.ReadDeploymentByName(ctx, "deploybot-smoke", "staging")
	if err != nil || byName.ID != d1.ID || *byName.WorkQueueName != "deploybot-smoke" || !byName.EnforceParameterSchema {
		t.Fatalf("read by name: %+v, %v", byName, err)
	}
	bad := smokeDeployment(f1.ID)
	bad.WorkPoolName = "no-such-pool"
	if _, _, err := c.UpsertDeployment(ctx, bad); StatusOf(err) != http.StatusNotFound {
		t.Errorf("upsert into a missing pool: %v, want 404", err)
	}

	run := FlowRunCreate{Name: "smoke-1", IdempotencyKey: "deploybot-smoke/staging/dep-1", WorkQueueName: "deploybot-smoke", Parameters: map[string]any{}}
	r1, created, err := c.CreateFlowRun(ctx, d1.ID, run)
	if err != nil || !created || r1.StateType != StateScheduled {
		t.Fatalf("create flow run: %+v created=%v err=%v", r1, created, err)
	}
	r2, created, err := c.CreateFlowRun(ctx, d1.ID, run)
	if err != nil || created || r2.ID != r1.ID {
		t.Fatalf("same idempotency key: %+v created=%v err=%v; want the same run, not created", r2, created, err)
	}
	if _, _, err := c.CreateFlowRun(ctx, "00000000-0000-4000-8000-000000000000", run); StatusOf(err) != http.StatusNotFound {
		t.Errorf("flow run of a missing deployment: %v, want 404", err)
	}
	got, err := c.ReadFlowRun(ctx, r1.ID)
	if err != nil || got.Name != "smoke-1" || got.WorkerName() != "" || got.Infrastructure() != "" {
		t.Fatalf("read flow run: %+v, %v", got, err)
	}

	// A SCHEDULED run without infrastructure is cancelled at once (Prefect
	// rejects CANCELLING and puts it in CANCELLED).
	o, err := c.CancelFlowRun(ctx, r1.ID, "deploybot: the health gate's time ran out")
	if err != nil || o.State == nil || o.State.Type != StateCancelled {
		t.Fatalf("cancel: %+v, %v", o, err)
	}
	if o2, err := c.CancelFlowRun(ctx, r1.ID, "again"); err != nil || o2.Status != "ABORT" {
		t.Errorf("cancelling a cancelled run: %+v, %v; want ABORT", o2, err)
	}
	if logs, err := c.ReadFlowRunLogs(ctx, r1.ID, LevelInfo, 20); err != nil || len(logs) != 0 {
		t.Errorf("logs of a run that never ran: %v, %v", logs, err)
	}

	if deleted, err := c.DeleteDeployment(ctx, d1.ID); err != nil || !deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	if deleted, err := c.DeleteDeployment(ctx, d1.ID); err != nil || deleted {
		t.Errorf("delete again: deleted=%v err=%v; want false, nil", deleted, err)
	}
	if got := c.FlowRunURL(r1.ID); got != strings.TrimSuffix(sim.URL(), "/api/accounts/"+acct+"/workspaces/"+ws)+"/account/"+acct+"/workspace/"+ws+"/runs/flow-run/"+r1.ID {
		t.Errorf("FlowRunURL = %s", got)
	}
}

// TestClockSkew: the client learns how far Prefect's clock is from its own
// from the Date header of Prefect's answers.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{0, 90 * time.Second, -2 * time.Minute} {
		clk := clock.NewVirtual(t0)
		sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey), prefectsim.WithClockSkew(skew))
		sim.AddWorkPool(testPool, "ecs", false)
		c, _ := New(sim.URL(), testKey, WithClock(clk))
		if got, known := c.ClockSkew(); got != 0 || known {
			t.Errorf("skew before any answer = %s, %v", got, known)
		}
		if _, err := c.ReadWorkPool(context.Background(), testPool); err != nil {
			t.Fatal(err)
		}
		if got, known := c.ClockSkew(); got != skew || !known {
			t.Errorf("server %s ahead: ClockSkew = %s, %v", skew, got, known)
		}
		sim.Close()
	}
}

// TestAuthStringEndToEnd: a self-hosted server with an auth string accepts
// WithAuthString, sent as Basic base64 of the string, and refuses a key.
func TestAuthStringEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	world := simtest.New(t, simtest.WithPrefect(prefectsim.WithAuthString("admin:pa:ss")), simtest.WithPool(testPool))
	sim := world.Prefect
	good, err := New(sim.SelfHostedURL(), "", WithAuthString("admin:pa:ss"), WithClock(world.Clock))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.ReadWorkPool(ctx, testPool); err != nil {
		t.Fatalf("with the auth string: %v", err)
	}
	reqs := sim.Requests()
	if reqs[len(reqs)-1].Auth != "Basic" {
		t.Errorf("scheme sent: %q", reqs[len(reqs)-1].Auth)
	}
	keyOnly, _ := New(sim.SelfHostedURL(), world.PrefectKey, WithClock(world.Clock))
	if _, err := keyOnly.ReadWorkPool(ctx, testPool); StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("with a key against basic auth: %v, want 401", err)
	}
	wrong, _ := New(sim.SelfHostedURL(), "", WithAuthString("admin:nope"), WithClock(world.Clock))
	_, err = wrong.ReadWorkPool(ctx, testPool)
	if StatusOf(err) != http.StatusUnauthorized || strings.Contains(err.Error(), "nope") ||
		strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte("admin:nope"))) {
		t.Errorf("wrong auth string: %v", err)
	}
}
