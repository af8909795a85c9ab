package kinds_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	prefectapi "github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/stack"
)

// TestSmokeDeploymentLifecycle drives the health gate's smoke deployment
// against the simulated Prefect API: created in the pool with the pull step
// that writes its flow, read back without a difference, a change made by
// hand (the queue, in the UI) shown and put back with the same id, a
// deployment of the same name that is not this environment's refused, and
// deleted (twice: the second finds nothing).
func TestSmokeDeploymentLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey)
	// the pool, and what the pool's defaults name: its runs carry them
	deps := append([]string{stack.AddrWorkPool}, c.res(stack.AddrWorkPool).DependsOn...)
	slices.Sort(deps)
	if d := cmp.Diff(deps, c.res(stack.AddrSmokeDeployment).DependsOn); d != "" {
		t.Fatalf("depends on (-want +got):\n%s", d)
	}
	r, out := c.create(ctx, stack.AddrSmokeDeployment)
	k := c.kind(r)
	d, err := c.client().ReadDeploymentByName(ctx, prefect.SmokeFlow, "staging")
	if err != nil || d == nil || d.ID != out["id"] {
		t.Fatalf("the deployment as Prefect holds it: %+v, %v (outputs %v)", d, err, out)
	}
	if *d.WorkPoolName != "staging-pool" || *d.WorkQueueName != stack.SmokeWorkQueue || *d.Entrypoint != prefect.SmokeEntrypoint ||
		!d.EnforceParameterSchema || d.ParameterOpenAPISchema["type"] != "object" || d.Labels["deploybot:environment"] != "staging" {
		t.Errorf("deployment = %+v", d)
	}
	// Its runs get the pool's defaults as the file asks for them, at the
	// smoke run's own size: they prove them before the pool has them.
	pool := must(c.kind(c.res(stack.AddrWorkPool)).Desired(c.res(stack.AddrWorkPool), c.refs(c.res(stack.AddrWorkPool))))
	jv := d.JobVariables
	if fmt.Sprintf("%v %v", jv["cpu"], jv["memory"]) != "256 512" || jv["image"] == nil ||
		jv["cluster"] == nil || !strings.Contains(fmt.Sprint(pool), fmt.Sprint(jv["cluster"])) || jv["network_configuration"] == nil {
		t.Errorf("job variables = %v; the pool's desired defaults %v", jv, pool)
	}
	script := d.PullSteps[0]["prefect.deployments.steps.run_shell_script"].(map[string]any)["script"].(string)
	if !strings.HasPrefix(script, `python -c "import base64,pathlib;pathlib.Path('smoke.py').write_bytes(base64.b64decode('`) {
		t.Errorf("pull step script = %s", script)
	}
	live := c.read(r)
	if diff := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs); len(diff) > 0 {
		t.Fatalf("plan right after the create:%s", describeChanges(diff))
	}

	// Someone moves it to the default queue in the UI.
	f, _ := c.client().CreateFlow(ctx, prefect.SmokeFlow)
	if _, _, err := c.client().UpsertDeployment(ctx, prefectapi.DeploymentCreate{Name: "staging", FlowID: f.ID, WorkPoolName: "staging-pool",
		WorkQueueName: "default", Entrypoint: prefect.SmokeEntrypoint, PullSteps: d.PullSteps, Parameters: map[string]any{},
		ParameterOpenAPISchema: d.ParameterOpenAPISchema, EnforceParameterSchema: true, JobVariables: d.JobVariables,
		Tags: []string{"deploybot"}, Labels: map[string]string{"deploybot:environment": "staging", "deploybot:stack": "prefect-worker",
			"managed-by": "deploybot", "team": "data"}}); err != nil {
		t.Fatal(err)
	}
	live = c.read(r)
	diff := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs)
	if paths := changePaths(diff); len(paths) != 1 || paths[0] != "work_queue" {
		t.Fatalf("drift = %s, want work_queue", describeChanges(diff))
	}
	if _, err := k.Update(ctx, c.x, r, live, c.refs(r), diff); err != nil {
		t.Fatal(err)
	}
	again, _ := c.client().ReadDeploymentByName(ctx, prefect.SmokeFlow, "staging")
	if again.ID != d.ID || *again.WorkQueueName != stack.SmokeWorkQueue {
		t.Fatalf("after putting it back: %+v (id was %s)", again, d.ID)
	}

	if err := k.Delete(ctx, c.x, r, c.read(r)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.client().ReadDeploymentByName(ctx, prefect.SmokeFlow, "staging"); got != nil || err != nil {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
	if err := k.Delete(ctx, c.x, r, nil); err != nil {
		t.Fatalf("delete of what is gone: %v", err)
	}
}

// TestSmokeDeploymentOfAnotherEnvironment: a deployment named like ours
// without this environment's label is not taken over (the plan shows a
// conflict).
func TestSmokeDeploymentOfAnotherEnvironment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey)
	r := c.withDeps(stack.AddrSmokeDeployment)
	f, _ := c.client().CreateFlow(ctx, prefect.SmokeFlow)
	if _, _, err := c.client().UpsertDeployment(ctx, prefectapi.DeploymentCreate{Name: "staging", FlowID: f.ID, WorkPoolName: "staging-pool",
		Parameters: map[string]any{}, JobVariables: map[string]any{}, Labels: map[string]string{"deploybot:environment": "other"}}); err != nil {
		t.Fatal(err)
	}
	if live := c.read(r); live == nil || live.Ours {
		t.Fatalf("another environment's deployment read as %+v", live)
	}
}

// TestSmokeDeploymentFollowsFlowRun: health_gate.flow_run: false leaves the
// smoke deployment out of the stack and makes it a leftover, so that an
// apply (and a destroy) deletes one an earlier apply made.
func TestSmokeDeploymentFollowsFlowRun(t *testing.T) {
	t.Parallel()
	off := false
	c := newComputeWorld(t, computeKey, func(e *config.Environment) { e.HealthGate.FlowRun = &off })
	if c.st.Resource(stack.AddrSmokeDeployment) != nil {
		t.Fatal("the smoke deployment is in a stack with health_gate.flow_run: false")
	}
	found := false
	for _, l := range c.st.Leftovers {
		found = found || l.Address == stack.AddrSmokeDeployment
	}
	if !found {
		t.Fatal("the smoke deployment is not a leftover with health_gate.flow_run: false")
	}
}
