package prefectsim

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return m
}

func (f *fixture) must(t *testing.T, r req, want int) map[string]any {
	t.Helper()
	status, _, body := f.do(t, r)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, status, body, want)
	}
	if body == "" {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return m
}

// TestEmbeddedCopiesMatchTheResearch: the schemas and the default template
// the simulator embeds are the files of docs/research/prefect-openapi/.
func TestEmbeddedCopiesMatchTheResearch(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile("../../docs/research/prefect-openapi/flow-runs-endpoints.json")
	if err != nil {
		t.Fatal(err)
	}
	embedded, _ := openapiFiles.ReadFile("openapi/flow-runs-endpoints.json")
	if !bytes.Equal(orig, embedded) {
		t.Error("openapi/flow-runs-endpoints.json differs from docs/research/prefect-openapi/flow-runs-endpoints.json")
	}
	raw, err := os.ReadFile("../../docs/research/prefect-openapi/ecs-default-base-job-template.json")
	if err != nil {
		t.Fatal(err)
	}
	var withProvenance struct {
		Template map[string]any `json:"base_job_template"`
	}
	if err := json.Unmarshal(raw, &withProvenance); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(withProvenance.Template, ecsDefaultTemplate()); d != "" {
		t.Errorf("the embedded ECS default template differs (-research +embedded):\n%s", d)
	}
}

// TestBaseJobTemplateLikePrefect (§A.1, §A.4): create stores the template
// given and validates its defaults; PATCH replaces the whole template and
// checks only its structure; the first ECS worker to sync fills an empty one
// with its default.
func TestBaseJobTemplateLikePrefect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tmpl := ecsDefaultTemplate()
	props := tmpl["variables"].(map[string]any)["properties"].(map[string]any)
	props["cpu"].(map[string]any)["default"] = "lots"
	b, _ := json.Marshal(map[string]any{"name": "bad-defaults", "type": "ecs", "base_job_template": tmpl})
	status, _, body := f.do(t, req{method: "POST", path: "/work_pools/", body: string(b)})
	if status != 422 || !strings.Contains(body, `Validation failed for work pool's job variable defaults: Validation failed for field 'cpu'. Failure reason: 'lots' is not valid under any of the given schemas`) {
		t.Fatalf("create with an invalid default: %d %s", status, body)
	}
	// PATCH checks structure only: the same invalid default is stored.
	f.must(t, req{method: "PATCH", path: "/work_pools/ecs-pool", body: `{"base_job_template":` + mustJSON(tmpl) + `}`}, 204)
	got := f.must(t, req{method: "GET", path: "/work_pools/ecs-pool"}, 200)["base_job_template"].(map[string]any)
	if v := got["variables"].(map[string]any)["properties"].(map[string]any)["cpu"].(map[string]any)["default"]; v != "lots" {
		t.Fatalf("PATCHed default = %v", v)
	}
	for _, tt := range []struct{ name, template, msg string }{
		{"no variables", `{"job_configuration":{"cluster":"{{ cluster }}"}}`, "must contain both a `job_configuration` key and a `variables` key"},
		{"undeclared placeholder", `{"job_configuration":{"cluster":"{{ cluster }}"},"variables":{"properties":{}}}`, "undeclared variable(s): cluster."},
	} {
		status, _, body := f.do(t, req{method: "PATCH", path: "/work_pools/ecs-pool", body: `{"base_job_template":` + tt.template + `}`})
		if status != 422 || !strings.Contains(body, `"type":"value_error"`) || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: %d %s", tt.name, status, body)
		}
	}
	// A replaced template is the whole new one.
	f.must(t, req{method: "PATCH", path: "/work_pools/ecs-pool", body: `{"base_job_template":{"job_configuration":{"cluster":"{{ cluster }}"},"variables":{"properties":{"cluster":{"type":"string"}}}}}`}, 204)
	got = f.must(t, req{method: "GET", path: "/work_pools/ecs-pool"}, 200)["base_job_template"].(map[string]any)
	if len(got["job_configuration"].(map[string]any)) != 1 {
		t.Fatalf("PATCH merged instead of replacing: %v", got)
	}

	// An empty template is filled by the first worker's sync.
	f.must(t, req{method: "POST", path: "/work_pools/", body: `{"name":"fresh","type":"ecs"}`}, 201)
	if got := f.must(t, req{method: "GET", path: "/work_pools/fresh"}, 200)["base_job_template"]; len(got.(map[string]any)) != 0 {
		t.Fatalf("a new pool's template: %v", got)
	}
	task := workerTask("ip-1", t0)
	task.Env["PREFECT_API_URL"] = f.s.URL()
	task.Env["DEPLOYBOT_WORK_POOL"] = "fresh"
	f.tasks = []Task{task}
	f.clk.Advance(time.Minute)
	got = f.must(t, req{method: "GET", path: "/work_pools/fresh"}, 200)["base_job_template"].(map[string]any)
	if d := cmp.Diff(ecsDefaultTemplate(), got); d != "" {
		t.Fatalf("after the first sync (-want +got):\n%s", d)
	}
}

// withECSTemplate gives the fixture's pool the ECS worker's default
// template, as a worker's first sync would.
func (f *fixture) withECSTemplate(t *testing.T) {
	t.Helper()
	f.must(t, req{method: "PATCH", path: "/work_pools/ecs-pool", body: `{"base_job_template":` + mustJSON(ecsDefaultTemplate()) + `}`}, 204)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// smokeDeployment is §D.2's deployment body for flow and pool.
func smokeDeployment(flowID, pool string) string {
	return `{"name":"smoke","flow_id":"` + flowID + `","work_pool_name":"` + pool + `","work_queue_name":"default","entrypoint":"smoke.py:smoke",` +
		`"pull_steps":[{"prefect.deployments.steps.run_shell_script":{"id":"write-smoke-flow","stream_output":true,"script":"python -c \"print(1)\""}}],` +
		`"parameters":{},"parameter_openapi_schema":{"type":"object","properties":{}},"enforce_parameter_schema":false,"job_variables":{"cpu":256},"paused":false,"tags":["deploybot"]}`
}

// TestFlowsAndDeployments (§C.1, §C.2): flows are created or got by name;
// deployments are upserted on (flow_id, name) with only the fields sent,
// job_variables replaced only when not empty.
func TestFlowsAndDeployments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withECSTemplate(t)
	fl := f.must(t, req{method: "POST", path: "/flows/", body: `{"name":"deploybot-smoke","tags":[],"labels":{}}`}, 201)
	again := f.must(t, req{method: "POST", path: "/flows/", body: `{"name":"deploybot-smoke"}`}, 200)
	if fl["id"] != again["id"] {
		t.Fatalf("second create: %v vs %v", fl["id"], again["id"])
	}
	f.must(t, req{method: "GET", path: "/flows/name/deploybot-smoke"}, 200)
	f.must(t, req{method: "GET", path: "/flows/name/nope"}, 404)
	flowID := fl["id"].(string)

	d := f.must(t, req{method: "POST", path: "/deployments/", body: smokeDeployment(flowID, "ecs-pool")}, 201)
	if d["work_pool_name"] != "ecs-pool" || d["entrypoint"] != "smoke.py:smoke" || d["work_queue_name"] != "default" {
		t.Fatalf("deployment %v", d)
	}
	// Upsert: same id; fields not sent keep their value; an empty
	// job_variables does not replace them.
	u := f.must(t, req{method: "POST", path: "/deployments/", body: `{"name":"smoke","flow_id":"` + flowID + `","description":"updated","job_variables":{}}`}, 200)
	if u["id"] != d["id"] || u["description"] != "updated" || u["entrypoint"] != "smoke.py:smoke" || u["job_variables"].(map[string]any)["cpu"] != float64(256) {
		t.Fatalf("upsert %v", u)
	}
	got := f.must(t, req{method: "GET", path: "/deployments/" + d["id"].(string)}, 200)
	if got["description"] != "updated" {
		t.Fatalf("GET after upsert: %v", got)
	}
	f.must(t, req{method: "GET", path: "/deployments/name/deploybot-smoke/smoke"}, 200)

	tests := []struct {
		name, body string
		status     int
		has        string
	}{
		{"unknown pool", strings.Replace(smokeDeployment(flowID, "ecs-pool"), `"ecs-pool"`, `"nope"`, 1), 404, `Work pool \"nope\" not found.`},
		{"invalid job variables", strings.Replace(smokeDeployment(flowID, "ecs-pool"), `{"cpu":256}`, `{"cpu":"big"}`, 1), 422,
			"Error creating deployment: Validation failed for field 'cpu'"},
		{"unknown field", `{"name":"x","flow_id":"` + flowID + `","infra_overrides":{}}`, 422, `"extra_forbidden"`},
		{"no name", `{"flow_id":"` + flowID + `"}`, 422, `"missing"`},
		{"unknown flow", `{"name":"x","flow_id":"00000000-0000-4000-8000-000000000000"}`, 409, "Data integrity conflict"},
	}
	for _, tt := range tests {
		status, _, body := f.do(t, req{method: "POST", path: "/deployments/", body: tt.body})
		if status != tt.status || !strings.Contains(body, tt.has) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, status, body, tt.status, tt.has)
		}
	}
	if u := f.s.Unexpected(); len(u) != 0 {
		t.Fatalf("unexpected requests: %v", u)
	}
}

func newDeployment(t *testing.T, f *fixture) (flowID, depID string) {
	t.Helper()
	fl := f.must(t, req{method: "POST", path: "/flows/", body: `{"name":"deploybot-smoke"}`}, 201)
	d := f.must(t, req{method: "POST", path: "/deployments/", body: smokeDeployment(fl["id"].(string), "ecs-pool")}, 201)
	return fl["id"].(string), d["id"].(string)
}

// TestFlowRunsLikePrefect (§C.3-§C.6): create_flow_run with an idempotency
// key, queues and job variables; SCHEDULED then Late; the orchestration
// rules of set_state; filters; deleting a deployment deletes its scheduled
// runs only.
func TestFlowRunsLikePrefect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withECSTemplate(t)
	flowID, depID := newDeployment(t, f)
	create := `{"name":"smoke-d1","idempotency_key":"deploybot-smoke-d1","work_queue_name":"smoke-d1","job_variables":{"cpu":256,"memory":512}}`
	run := f.must(t, req{method: "POST", path: "/deployments/" + depID + "/create_flow_run", body: create}, 201)
	id := run["id"].(string)
	if run["state_type"] != "SCHEDULED" || run["state_name"] != "Scheduled" || run["work_queue_name"] != "smoke-d1" || run["flow_id"] != flowID ||
		run["labels"].(map[string]any)["prefect.deployment.id"] != depID || run["job_variables"].(map[string]any)["memory"] != float64(512) {
		t.Fatalf("run %v", run)
	}
	if again := f.must(t, req{method: "POST", path: "/deployments/" + depID + "/create_flow_run", body: create}, 200); again["id"] != id {
		t.Fatalf("idempotent create gave %v", again["id"])
	}
	pool := f.must(t, req{method: "GET", path: "/work_pools/ecs-pool"}, 200)
	_ = pool
	f.clk.Advance(14 * time.Second)
	if r := f.must(t, req{method: "GET", path: "/flow_runs/" + id}, 200); r["state_name"] != "Scheduled" {
		t.Fatalf("after 14 s: %v", r["state_name"])
	}
	f.clk.Advance(time.Second)
	if r := f.must(t, req{method: "GET", path: "/flow_runs/" + id}, 200); r["state_type"] != "SCHEDULED" || r["state_name"] != "Late" {
		t.Fatalf("after 15 s: %v %v", r["state_type"], r["state_name"])
	}

	for _, tt := range []struct {
		name, body, want string
		code             int
	}{
		{"unknown field", `{"name":"x","infra_overrides":{}}`, `"extra_forbidden"`, 422},
		{"invalid job variables", `{"job_variables":{"launch_type":"LAMBDA"}}`, "Error creating flow run: Validation failed for field 'launch_type'", 422},
	} {
		status, _, body := f.do(t, req{method: "POST", path: "/deployments/" + depID + "/create_flow_run", body: tt.body})
		if status != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s", tt.name, status, body)
		}
	}
	f.must(t, req{method: "POST", path: "/deployments/00000000-0000-4000-8000-000000000000/create_flow_run", body: `{}`}, 404)

	type step struct {
		state, name string
		force       bool
		status      string // ACCEPT | REJECT | ABORT
		after       string // state type after
	}
	steps := []step{
		{state: "PENDING", status: "ACCEPT", after: "PENDING"},
		{state: "PENDING", status: "ABORT", after: "PENDING"},
		{state: "PENDING", name: "Submitting", status: "ACCEPT", after: "PENDING"},
		{state: "RUNNING", status: "ACCEPT", after: "RUNNING"},
		{state: "CANCELLING", status: "ACCEPT", after: "CANCELLING"},
		{state: "RUNNING", status: "REJECT", after: "CANCELLING"},
		{state: "CANCELLED", status: "ACCEPT", after: "CANCELLED"},
		{state: "CRASHED", status: "ABORT", after: "CANCELLED"},
		{state: "CRASHED", force: true, status: "ACCEPT", after: "CRASHED"},
	}
	for i, st := range steps {
		body := `{"state":{"type":"` + st.state + `"` + map[bool]string{true: `,"name":"` + st.name + `"`, false: ""}[st.name != ""] + `},"force":` + map[bool]string{true: "true", false: "false"}[st.force] + `}`
		status, _, raw := f.do(t, req{method: "POST", path: "/flow_runs/" + id + "/set_state", body: body})
		res := decode(t, raw)
		if res["status"] != st.status || (status == 201) != (st.status == "ACCEPT") {
			t.Fatalf("step %d %+v: %d %s", i, st, status, raw)
		}
		if r := f.must(t, req{method: "GET", path: "/flow_runs/" + id}, 200); r["state_type"] != st.after {
			t.Fatalf("step %d %+v: run is %v", i, st, r["state_type"])
		}
	}

	// Cancelling a scheduled run with no infrastructure cancels it at once.
	other := f.must(t, req{method: "POST", path: "/deployments/" + depID + "/create_flow_run", body: `{}`}, 201)
	raw := f.must(t, req{method: "POST", path: "/flow_runs/" + other["id"].(string) + "/set_state", body: `{"state":{"type":"CANCELLING","message":"deploybot timeout"}}`}, 200)
	if raw["status"] != "REJECT" || raw["state"].(map[string]any)["type"] != "CANCELLED" ||
		raw["details"].(map[string]any)["reason"] != "Scheduled flow run has no infrastructure to terminate." {
		t.Fatalf("cancel a scheduled run: %v", raw)
	}

	// Filters.
	scheduled := f.must(t, req{method: "POST", path: "/deployments/" + depID + "/create_flow_run", body: `{"name":"waiting"}`}, 201)
	status, _, list := f.do(t, req{method: "POST", path: "/flow_runs/filter",
		body: `{"flow_runs":{"deployment_id":{"any_":["` + depID + `"]},"state":{"type":{"not_any_":["COMPLETED","FAILED","CRASHED","CANCELLED"]}}},"limit":20}`})
	var runs []map[string]any
	_ = json.Unmarshal([]byte(list), &runs)
	if status != 200 || len(runs) != 1 || runs[0]["id"] != scheduled["id"] {
		t.Fatalf("filter: %d %s", status, list)
	}
	if status, _, body := f.do(t, req{method: "POST", path: "/flow_runs/filter", body: `{"flow_runs":{"state":{"type":{"any_":["DONE"]}}}}`}); status != 422 {
		t.Fatalf("filter on an unknown state type: %d %s", status, body)
	}

	// Deleting the deployment deletes its scheduled run, not the others.
	f.must(t, req{method: "DELETE", path: "/deployments/" + depID}, 204)
	f.must(t, req{method: "GET", path: "/flow_runs/" + scheduled["id"].(string)}, 404)
	f.must(t, req{method: "GET", path: "/flow_runs/" + id}, 200)
	f.must(t, req{method: "DELETE", path: "/deployments/" + depID}, 404)
	f.must(t, req{method: "DELETE", path: "/flow_runs/" + id}, 204)
	f.must(t, req{method: "GET", path: "/flow_runs/" + id}, 404)
	if u := f.s.Unexpected(); len(u) != 0 {
		t.Fatalf("unexpected requests: %v", u)
	}
}

func TestLogsFilter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.s.mu.Lock()
	f.s.addLog("11111111-1111-4111-8111-111111111111", "prefect.flow_runs", 20, t0.Add(2*time.Second), "second")
	f.s.addLog("11111111-1111-4111-8111-111111111111", "prefect.flow_runs", 10, t0.Add(time.Second), "debug")
	f.s.addLog("11111111-1111-4111-8111-111111111111", "prefect.flow_runs", 40, t0, "first")
	f.s.addLog("22222222-2222-4222-8222-222222222222", "prefect.flow_runs", 20, t0, "other run")
	f.s.mu.Unlock()
	status, _, body := f.do(t, req{method: "POST", path: "/logs/filter",
		body: `{"logs":{"flow_run_id":{"any_":["11111111-1111-4111-8111-111111111111"]},"level":{"ge_":20}},"sort":"TIMESTAMP_ASC","offset":0,"limit":200}`})
	var logs []map[string]any
	_ = json.Unmarshal([]byte(body), &logs)
	var msgs []string
	for _, l := range logs {
		msgs = append(msgs, l["message"].(string))
	}
	if status != 200 || !cmp.Equal(msgs, []string{"first", "second"}) {
		t.Fatalf("%d %s", status, body)
	}
	if status, _, _ := f.do(t, req{method: "POST", path: "/logs/filter", body: `{"logs":{"flow_run":{}}}`}); status != 422 {
		t.Fatalf("unknown log filter key: %d", status)
	}
}

func TestUnexpectedRequestsAreRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.do(t, req{method: "GET", path: "/flow_runs/not-a-uuid"})
	f.do(t, req{method: "POST", path: "/flows", body: `{"name":"x"}`})
	f.do(t, req{method: "PUT", path: "/flows/"})
	u := f.s.Unexpected()
	if len(u) != 3 || !strings.Contains(u[0], "no such route") || !strings.Contains(u[1], "307") || !strings.Contains(u[2], "method not allowed") {
		t.Fatalf("unexpected %v", u)
	}
}
