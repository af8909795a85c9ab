package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/plan"
	prefectapi "github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/stack"
)

// The work pool as a resource of the stack, through the engine: planned
// with the AWS reads, its defaults field by field, drift put back, and
// nothing applied blind.

func fields(c plan.Change) map[string]string {
	out := map[string]string{}
	for _, f := range c.Fields {
		out[f.Path] = f.After
	}
	return out
}

// TestE2EWorkPoolDefaults: the plan of a new environment lists the pool's
// defaults; after the apply a plan shows no change; a default changed by
// hand (the Prefect UI) is drift the apply puts back.
func TestE2EWorkPoolDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newWorld(t)
	env := x.env("demo")
	p := x.plan(env)
	i := indexOf(p.Plan, stack.AddrWorkPool)
	if i < 0 || p.Plan.Changes[i].Action != plan.Create {
		t.Fatalf("the new environment's plan does not create the pool: %v", summary(p.Plan))
	}
	got := fields(p.Plan.Changes[i])
	names := stack.NamesFor(env)
	want := map[string]string{
		"type":                                     "ecs",
		"defaults.cluster":                         names.ClusterARN,
		"defaults.vpc_id":                          x.vpc,
		"defaults.network_configuration":           `{"assignPublicIp":"ENABLED","securityGroups":["(known after apply)"],"subnets":["` + strings.Join(x.subnets, `","`) + `"]}`,
		"defaults.execution_role_arn":              names.FlowExecutionRoleARN,
		"defaults.task_role_arn":                   names.FlowTaskRoleARN,
		"defaults.prefect_api_key_secret_arn":      plan.Unknown,
		"defaults.configure_cloudwatch_logs":       "true",
		"defaults.cloudwatch_logs_options":         `{"awslogs-create-group":"false","awslogs-group":"/deploybot/demo/flow-runs","awslogs-region":"us-east-1","awslogs-stream-prefix":"flow-run"}`,
		"defaults.image":                           "prefecthq/prefect-aws:3.1",
		"defaults.cpu":                             "1024",
		"defaults.memory":                          "2048",
		"defaults.match_latest_revision_in_family": "true",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("the pool's defaults in the plan (-want +got):\n%s", d)
	}

	x.apply(env)
	x.wantConverged("plan right after apply", env)
	if _, ok := got["defaults.prefect_api_auth_string_secret_arn"]; ok {
		t.Error("the auth string's secret is set with an API key: prefect-aws would drop PREFECT_API_KEY")
	}

	// Someone points the pool at the account's default cluster and gives
	// flow runs a public IP, in the Prefect UI.
	client := x.prefectClient()
	wp, err := client.ReadWorkPool(ctx, "demo-pool")
	if err != nil {
		t.Fatal(err)
	}
	props := wp.BaseJobTemplate["variables"].(map[string]any)["properties"].(map[string]any)
	props["cluster"].(map[string]any)["default"] = "default"
	delete(props["vpc_id"].(map[string]any), "default")
	if err := client.UpdateWorkPool(ctx, "demo-pool", prefectapi.WorkPoolUpdate{BaseJobTemplate: wp.BaseJobTemplate}); err != nil {
		t.Fatal(err)
	}
	drift := x.plan(env)
	if d := cmp.Diff([]string{"~ prefect_work_pool.main defaults.cluster defaults.vpc_id"}, summary(drift.Plan)); d != "" {
		t.Fatalf("drift plan (-want +got):\n%s", d)
	}
	var shown []string
	for _, f := range drift.Plan.Changes[indexOf(drift.Plan, stack.AddrWorkPool)].Fields {
		shown = append(shown, f.Path+": "+f.Before+" -> "+f.After)
	}
	if d := cmp.Diff([]string{"defaults.cluster: default -> " + names.ClusterARN, "defaults.vpc_id:  -> " + x.vpc}, shown); d != "" {
		t.Fatalf("the drift's values (-want +got):\n%s", d)
	}
	x.apply(env)
	x.wantConverged("drift not put back", env)

	// A destroy deletes the pool deploybot created (the file says
	// create_work_pool: true), and says so.
	st := x.destroyStack(env)
	e := x.engine()
	dp, err := e.PlanDestroy(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	c := dp.Plan.Changes[indexOf(dp.Plan, stack.AddrWorkPool)]
	if c.Action != plan.Delete || !strings.Contains(c.Reason, "deploybot created this work pool") {
		t.Fatalf("destroy plan of the pool: %+v", c)
	}
	if _, err := e.Destroy(ctx, dp); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ReadWorkPool(ctx, "demo-pool"); prefectapi.StatusOf(err) != 404 {
		t.Fatalf("the pool deploybot created survived the destroy: %v", err)
	}
}

// TestE2EWorkPoolNotCreatedByDeploybot: a pool the team made, with a
// template of its own, keeps everything but deploybot's defaults through
// apply and destroy, and a destroy only resets those.
func TestE2EWorkPoolNotCreatedByDeploybot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newWorld(t)
	env := x.env("team", "  create_work_pool: true\n", "")
	client := x.prefectClient()
	tpl := prefect.DefaultTemplate()
	props := tpl["variables"].(map[string]any)["properties"].(map[string]any)
	props["family"].(map[string]any)["default"] = "team-flows"
	props["team_queue"] = map[string]any{"type": "string", "default": "nightly"}
	desc := "the team's own pool"
	if _, err := client.CreateWorkPool(ctx, prefectapi.WorkPoolCreate{Name: "team-pool", Type: "ecs", Description: &desc, BaseJobTemplate: tpl}); err != nil {
		t.Fatal(err)
	}
	x.apply(env)
	x.wantConverged("plan right after apply", env)
	wp, err := client.ReadWorkPool(ctx, "team-pool")
	if err != nil {
		t.Fatal(err)
	}
	// Everything but the defaults deploybot owns is as the team left it:
	// its job configuration, every variable's declaration, its own defaults.
	if d := cmp.Diff(withoutOwnedDefaults(t, tpl), withoutOwnedDefaults(t, wp.BaseJobTemplate)); d != "" {
		t.Fatalf("the apply changed what deploybot does not own (-before +after):\n%s", d)
	}

	dp, err := x.engine().PlanDestroy(ctx, x.destroyStack(env))
	if err != nil {
		t.Fatal(err)
	}
	c := dp.Plan.Changes[indexOf(dp.Plan, stack.AddrWorkPool)]
	if want := "deploybot did not create this work pool: destroy keeps it and resets only the defaults deploybot sets (" +
		"cloudwatch_logs_options, cluster, configure_cloudwatch_logs, cpu, execution_role_arn, image, match_latest_revision_in_family, " +
		"memory, network_configuration, prefect_api_key_secret_arn, task_role_arn, vpc_id) to prefect-aws's"; c.Action != plan.Delete || !strings.HasPrefix(c.Reason, want) {
		t.Fatalf("destroy plan of the pool: %s %q, want a delete saying %q", c.Action, c.Reason, want)
	}
	if _, err := x.engine().Destroy(ctx, dp); err != nil {
		t.Fatal(err)
	}
	wp, err = client.ReadWorkPool(ctx, "team-pool")
	if err != nil {
		t.Fatalf("the team's pool is gone after destroy: %v", err)
	}
	// The team's template is back as it was: deploybot's defaults reset
	// to prefect-aws's, the rest untouched.
	if d := cmp.Diff(normalJSON(t, tpl), normalJSON(t, wp.BaseJobTemplate)); d != "" {
		t.Fatalf("the destroy did not give the team its template back (-before +after):\n%s", d)
	}
	if wp.Description == nil || *wp.Description != desc {
		t.Fatalf("the description changed: %v", wp.Description)
	}
}

// withoutOwnedDefaults is a template with the defaults deploybot owns
// taken out, as normalised JSON.
func withoutOwnedDefaults(t *testing.T, tpl map[string]any) any {
	t.Helper()
	c, _ := normalJSON(t, tpl).(map[string]any)
	props, _ := c["variables"].(map[string]any)["properties"].(map[string]any)
	for _, k := range prefect.OwnedVariables {
		if p, ok := props[k].(map[string]any); ok {
			delete(p, "default")
		}
	}
	return c
}

// normalJSON is v through JSON, so that numbers compare alike whichever
// way they were decoded.
func normalJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestE2EPlanWithoutPrefect: a plan without Prefect credentials (a fork, a
// plan job without the key) plans the AWS side and says the pool was not
// read; such a plan is not applied.
func TestE2EPlanWithoutPrefect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newWorld(t)
	env := x.env("demo")
	e := x.engine()
	e.Prefect = nil
	p, err := e.Plan(ctx, x.stack(env))
	if err != nil {
		t.Fatalf("a plan without Prefect credentials failed: %v", err)
	}
	// the pool and the health gate's smoke deployment
	unread := map[string]string{}
	for _, u := range p.Plan.Unread {
		unread[u.Address] = u.Reason
	}
	if len(unread) != 2 || !strings.Contains(unread[stack.AddrWorkPool], "no Prefect API key was given") ||
		!strings.Contains(unread[stack.AddrSmokeDeployment], "no Prefect credentials were given") {
		t.Fatalf("unread = %+v", p.Plan.Unread)
	}
	if indexOf(p.Plan, stack.AddrWorkPool) >= 0 || indexOf(p.Plan, stack.AddrSmokeDeployment) >= 0 || indexOf(p.Plan, "ecs_service.worker") < 0 {
		t.Fatalf("plan without Prefect: %v", summary(p.Plan))
	}
	with := x.plan(env)
	if with.Plan.Fingerprint == p.Plan.Fingerprint {
		t.Error("the plan that could not read the pool has the fingerprint of the one that did")
	}
	_, err = e.Apply(ctx, p)
	var unreadErr *engine.UnreadError
	if !errors.As(err, &unreadErr) || !strings.Contains(err.Error(), "refusing to apply: the plan could not read") ||
		!strings.Contains(err.Error(), "prefect_work_pool.main") {
		t.Fatalf("apply of a plan that could not read the pool: %v", err)
	}
	if w := x.writes(); len(w) != 0 {
		t.Fatalf("the refused apply wrote: %v", w)
	}
}

// TestE2EDestroyWithoutPrefect: a destroy without Prefect credentials tears
// the AWS side down and leaves the pool as it is (it says so); a destroy
// run again with them finishes the pool.
func TestE2EDestroyWithoutPrefect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)
	e := x.engine()
	e.Prefect = nil
	p, err := e.PlanDestroy(ctx, x.destroyStack(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Plan.Unread) != 2 || indexOf(p.Plan, stack.AddrWorkPool) >= 0 || indexOf(p.Plan, stack.AddrSmokeDeployment) >= 0 {
		t.Fatalf("destroy plan without Prefect: unread %+v, changes %v", p.Plan.Unread, summary(p.Plan))
	}
	if _, err := e.Destroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	x.advance(time.Minute)
	x.wantNone("destroy left", inventory(x.w, "demo"))
	if _, err := x.prefectClient().ReadWorkPool(ctx, "demo-pool"); err != nil {
		t.Fatalf("the pool is gone after a destroy that could not read it: %v", err)
	}
	x.destroy(env)
	x.wantNoPool(env)
}

// wantNoPool fails the test unless the pool deploybot created for env and
// the smoke deployment in it are gone from Prefect.
func (x *account) wantNoPool(env *config.Environment) {
	x.tb.Helper()
	ctx := context.Background()
	if _, err := x.prefectClient().ReadWorkPool(ctx, env.Prefect.WorkPool); prefectapi.StatusOf(err) != 404 {
		x.tb.Fatalf("the destroy did not delete the pool deploybot created: %v", err)
	}
	if d, err := x.prefectClient().ReadDeploymentByName(ctx, "deploybot-smoke", env.Name); d != nil || err != nil {
		x.tb.Fatalf("the destroy left the smoke deployment: %+v, %v", d, err)
	}
}
