package kinds_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	prefectapi "github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// These tests drive the work pool kind against the simulated Prefect API
// the way a team uses a pool: made by hand with its own template, edited in
// the UI (a PATCH of the whole template, as the UI sends it), and adopted,
// drift-checked and reset by deploybot.

// client is a Prefect API client with the world's key: the UI's or a
// person's CLI.
func (c *computeWorld) client() *prefectapi.Client {
	c.t.Helper()
	return c.x.APIs.Prefect.(*prefectapi.Client)
}

// poolTemplate is the pool's template as Prefect holds it.
func (c *computeWorld) poolTemplate(name string) map[string]any {
	c.t.Helper()
	wp, err := c.client().ReadWorkPool(context.Background(), name)
	if err != nil {
		c.t.Fatal(err)
	}
	return wp.BaseJobTemplate
}

// richTemplate is a team's own template: prefect-aws's, plus a variable of
// its own used by a job configuration it changed, and defaults of its own
// for variables deploybot does not own.
func richTemplate() map[string]any {
	t := prefect.DefaultTemplate()
	job := t["job_configuration"].(map[string]any)
	trr := job["task_run_request"].(map[string]any)
	trr["enableExecuteCommand"] = "{{ exec_enabled }}"
	trr["propagateTags"] = "TASK_DEFINITION"
	props := t["variables"].(map[string]any)["properties"].(map[string]any)
	props["exec_enabled"] = map[string]any{"type": "boolean", "title": "ECS Exec", "default": true}
	props["launch_type"].(map[string]any)["default"] = "FARGATE_SPOT"
	props["family"].(map[string]any)["default"] = "team-flows"
	props["cloudwatch_logs_prefix"].(map[string]any)["default"] = "team"
	// A number whose text a float64 would change.
	props["exec_enabled"].(map[string]any)["x-weight"] = json.Number("0.10000000000000000001")
	return t
}

// withoutOwnedDefaults is t with the default of every variable deploybot
// owns taken out: what deploybot must leave exactly as it was.
func withoutOwnedDefaults(t map[string]any) map[string]any {
	b, _ := json.Marshal(t)
	var c map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	_ = dec.Decode(&c)
	props := c["variables"].(map[string]any)["properties"].(map[string]any)
	for _, k := range prefect.OwnedVariables {
		if p, ok := props[k].(map[string]any); ok {
			delete(p, "default")
		}
	}
	return c
}

func TestWorkPoolKeepsWhatItDoesNotOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey, freshPool, func(e *config.Environment) { e.Prefect.CreateWorkPool = false })
	desc := "the data team's pool"
	if _, err := c.client().CreateWorkPool(ctx, prefectapi.WorkPoolCreate{Name: "fresh-pool", Type: "ecs", Description: &desc, BaseJobTemplate: richTemplate()}); err != nil {
		t.Fatal(err)
	}
	before := withoutOwnedDefaults(c.poolTemplate("fresh-pool"))

	r := c.res(stack.AddrWorkPool)
	k := c.kind(r)
	for _, d := range r.DependsOn {
		c.ensure(d)
	}
	live := c.read(r)
	diff := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs)
	// The plan shows every default deploybot sets, each on its own line.
	want := []string{"defaults.cloudwatch_logs_options", "defaults.cluster", "defaults.configure_cloudwatch_logs", "defaults.cpu",
		"defaults.execution_role_arn", "defaults.image", "defaults.match_latest_revision_in_family", "defaults.memory",
		"defaults.network_configuration", "defaults.prefect_api_key_secret_arn", "defaults.task_role_arn", "defaults.vpc_id"}
	if d := cmp.Diff(want, changePaths(diff)); d != "" {
		t.Fatalf("plan of an adopted pool (-want +got):\n%s", d)
	}
	if _, err := k.Update(ctx, c.x, r, live, c.refs(r), diff); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, withoutOwnedDefaults(c.poolTemplate("fresh-pool"))); d != "" {
		t.Fatalf("apply changed what deploybot does not own (-before +after):\n%s", d)
	}
	live = c.read(r)
	if d := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs); len(d) > 0 {
		t.Fatalf("plan right after apply:%s", describeChanges(d))
	}
	props := c.poolTemplate("fresh-pool")["variables"].(map[string]any)["properties"].(map[string]any)
	net := props["network_configuration"].(map[string]any)
	if net["title"] != "Network Configuration" || net["type"] != "object" {
		t.Errorf("network_configuration lost its type or title: %v", net)
	}
	if got := prefect.ShowValue(net["default"]); !strings.Contains(got, `"securityGroups":["sg-`) || !strings.Contains(got, `"assignPublicIp":"ENABLED"`) {
		t.Errorf("network_configuration default = %s", got)
	}

	// Someone points the pool at another cluster in the Prefect UI, and
	// touches a key of their own too.
	edited := c.poolTemplate("fresh-pool")
	eprops := edited["variables"].(map[string]any)["properties"].(map[string]any)
	eprops["cluster"].(map[string]any)["default"] = "default"
	eprops["family"].(map[string]any)["default"] = "team-flows-v2"
	if err := c.client().UpdateWorkPool(ctx, "fresh-pool", prefectapi.WorkPoolUpdate{BaseJobTemplate: edited}); err != nil {
		t.Fatal(err)
	}
	before = withoutOwnedDefaults(c.poolTemplate("fresh-pool"))
	live = c.read(r)
	diff = computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs)
	if len(diff) != 1 || diff[0].Path != "defaults.cluster" || diff[0].Before != "default" || diff[0].After != c.st.Names.ClusterARN {
		t.Fatalf("drift = %s, want defaults.cluster only", describeChanges(diff))
	}
	if _, err := k.Update(ctx, c.x, r, live, c.refs(r), diff); err != nil {
		t.Fatal(err)
	}
	if d := computeDiff(must(k.Desired(r, c.refs(r))), c.read(r).Attrs); len(d) > 0 {
		t.Fatalf("drift not put back:%s", describeChanges(d))
	}
	if d := cmp.Diff(before, withoutOwnedDefaults(c.poolTemplate("fresh-pool"))); d != "" {
		t.Fatalf("putting the drift back changed the team's own keys (-before +after):\n%s", d)
	}

	// Destroy: deploybot did not create the pool, so it stays, with
	// prefect-aws's defaults for what deploybot set and the team's keys.
	live = c.read(r)
	reason := resource.CapabilitiesOf(k).ExplainDelete.DeleteReason(live)
	if !strings.Contains(reason, "did not create this work pool: destroy keeps it and resets only the defaults deploybot sets (cloudwatch_logs_options, cluster,") {
		t.Errorf("destroy reason = %q", reason)
	}
	if err := k.Delete(ctx, c.x, r, live); err != nil {
		t.Fatal(err)
	}
	after := c.poolTemplate("fresh-pool")
	if d := cmp.Diff(before, withoutOwnedDefaults(after)); d != "" {
		t.Fatalf("destroy changed the team's own keys (-before +after):\n%s", d)
	}
	aprops := after["variables"].(map[string]any)["properties"].(map[string]any)
	for _, k := range prefect.OwnedVariables {
		want := properties(prefect.DefaultTemplate())[k]["default"]
		if got := aprops[k].(map[string]any)["default"]; prefect.ShowValue(got) != prefect.ShowValue(want) {
			t.Errorf("after destroy %s default = %v, want prefect-aws's %v", k, got, want)
		}
	}
}

func properties(t map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, v := range t["variables"].(map[string]any)["properties"].(map[string]any) {
		out[k] = v.(map[string]any)
	}
	return out
}

// TestWorkPoolEmptyTemplate: a pool created with {name, type} and no worker
// synced yet has an empty template; deploybot writes prefect-aws's whole
// default template with its defaults, which a worker can use.
func TestWorkPoolEmptyTemplate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey) // simtest.WithPool: created empty
	if tpl := c.poolTemplate("staging-pool"); len(tpl) != 0 {
		t.Fatalf("the pool's template is %v, want empty", tpl)
	}
	r := c.res(stack.AddrWorkPool)
	for _, d := range r.DependsOn {
		c.ensure(d)
	}
	k := c.kind(r)
	live := c.read(r)
	diff := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs)
	if len(diff) != 12 {
		t.Fatalf("an empty template's plan = %s, want the 12 defaults deploybot sets", describeChanges(diff))
	}
	if _, err := k.Update(ctx, c.x, r, live, c.refs(r), diff); err != nil {
		t.Fatal(err)
	}
	got := withoutOwnedDefaults(c.poolTemplate("staging-pool"))
	if d := cmp.Diff(withoutOwnedDefaults(prefect.DefaultTemplate()), got); d != "" {
		t.Fatalf("the template written is not prefect-aws's default (-default +written):\n%s", d)
	}
}

// TestWorkPoolCreatedByDeploybot: with create_work_pool, the pool is
// created marked as the environment's, and only then does a destroy delete
// it; a pool marked for another environment is refused.
func TestWorkPoolCreatedByDeploybot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey, freshPool)
	c.ensure(stack.AddrWorkPool)
	wp, err := c.client().ReadWorkPool(ctx, "fresh-pool")
	if err != nil {
		t.Fatal(err)
	}
	if wp.Description == nil || *wp.Description != prefect.Description("staging") || !strings.Contains(*wp.Description, "(deploybot:environment=staging)") {
		t.Fatalf("description = %v", wp.Description)
	}
	r := c.res(stack.AddrWorkPool)
	live := c.read(r)
	if reason := resource.CapabilitiesOf(c.kind(r)).ExplainDelete.DeleteReason(live); !strings.Contains(reason, "deploybot created this work pool for the environment (its description says so): destroy deletes it") {
		t.Errorf("destroy reason = %q", reason)
	}

	other := newComputeWorld(t, computeKey, freshPool, func(e *config.Environment) { e.Name = "production" })
	desc := prefect.Description("staging")
	if _, err := other.client().CreateWorkPool(ctx, prefectapi.WorkPoolCreate{Name: "fresh-pool", Type: "ecs", Description: &desc}); err != nil {
		t.Fatal(err)
	}
	pr := other.res(stack.AddrWorkPool)
	if _, err := other.kind(pr).Read(ctx, other.x, pr); err == nil || !strings.Contains(err.Error(), `was created by deploybot for environment "staging": two environments cannot share a pool`) {
		t.Fatalf("read of another environment's pool: %v", err)
	}

	if err := c.kind(r).Delete(ctx, c.x, r, live); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client().ReadWorkPool(ctx, "fresh-pool"); prefectapi.StatusOf(err) != 404 {
		t.Fatalf("the pool deploybot created is still there after destroy: %v", err)
	}
}

// TestWorkPoolNotRead: without a Prefect client (no key) the pool is not
// read, with a reason, rather than failing; a pool of another type is an
// error; a missing pool without create_work_pool cannot be created.
func TestWorkPoolNotRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey)
	r := c.res(stack.AddrWorkPool)
	noKey := *c.x
	noKey.APIs.Prefect = nil
	_, err := c.kind(r).Read(ctx, &noKey, r)
	var unread *resource.UnreadableError
	if !errors.As(err, &unread) || !strings.Contains(unread.Reason, "no Prefect API key was given") {
		t.Fatalf("read without a key: %v", err)
	}
	wrong, err := prefectapi.New(c.prefect.URL(), "pnu_notthekey00000000000000000000000000", prefectapi.WithClock(c.clk))
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := *c.x
	wrongKey.APIs.Prefect = wrong
	if _, err := c.kind(r).Read(ctx, &wrongKey, r); !errors.As(err, &unread) || !strings.Contains(unread.Reason, "Prefect refused the credentials") {
		t.Fatalf("read with a wrong key: %v", err)
	}

	pc := newComputeWorld(t, computeKey, func(e *config.Environment) { e.Prefect.WorkPool = "process-pool" })
	pc.prefect.AddWorkPool("process-pool", "process", false)
	pr := pc.res(stack.AddrWorkPool)
	if _, err := pc.kind(pr).Read(ctx, pc.x, pr); err == nil || !strings.Contains(err.Error(), `is of type "process", not ecs`) {
		t.Fatalf("read of a process pool: %v", err)
	}

	hobby := newComputeWorld(t, computeKey, freshPool)
	hobby.prefect.SetHybridPoolsAllowed(false)
	hr := hobby.res(stack.AddrWorkPool)
	for _, d := range hr.DependsOn {
		hobby.ensure(d)
	}
	if _, err := hobby.kind(hr).Create(ctx, hobby.x, hr, hobby.refs(hr)); err == nil || !strings.Contains(err.Error(), "does not allow hybrid (ecs) work pools") {
		t.Fatalf("create on a Hobby plan: %v", err)
	}

	mc := newComputeWorld(t, computeKey, freshPool, func(e *config.Environment) { e.Prefect.CreateWorkPool = false })
	mr := mc.res(stack.AddrWorkPool)
	for _, d := range mr.DependsOn {
		mc.ensure(d)
	}
	if _, err := mc.kind(mr).Create(ctx, mc.x, mr, mc.refs(mr)); err == nil || !strings.Contains(err.Error(), "set prefect.create_work_pool: true") {
		t.Fatalf("create without create_work_pool: %v", err)
	}
}
