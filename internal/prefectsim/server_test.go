package prefectsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/fakekey"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var key = fakekey.Prefect("Sim")

type fixture struct {
	clk   *clock.Virtual
	s     *Server
	tasks []Task
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{clk: clock.NewVirtual(t0)}
	f.s = New(nil, append([]Option{WithClock(f.clk), WithKey(key), WithTaskSource(TaskSourceFunc(func() []Task { return f.tasks }))}, opts...)...)
	t.Cleanup(f.s.Close)
	f.s.AddWorkPool("ecs-pool", "ecs", false)
	return f
}

type req struct {
	method, path string // path relative to the Cloud workspace URL unless it starts with "http"
	body         string
	auth         []string // Authorization header values; nil: "Bearer <key>"
	chunked      bool
}

func (f *fixture) do(t *testing.T, r req) (int, http.Header, string) {
	t.Helper()
	url := r.path
	if !strings.HasPrefix(url, "http") {
		url = f.s.URL() + r.path
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(strings.NewReader(r.body)) // unknown length: chunked
		}
	}
	hr, err := http.NewRequest(r.method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.auth == nil {
		hr.Header.Set("Authorization", "Bearer "+key)
	}
	for _, a := range r.auth {
		if a != "" {
			hr.Header.Add("Authorization", a)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, strings.TrimSpace(string(b))
}

// TestRejectsWhatPrefectRejects: status codes and bodies for what a real
// Prefect server refuses.
func TestRejectsWhatPrefectRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithAuthString("admin:pw"))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw"))
	tests := []struct {
		name     string
		r        req
		status   int
		body     string // exact JSON (compared parsed), or "" to skip
		location string
	}{
		{name: "unknown filter key", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{"workers":{"name":{"any_":["x"]}}}`},
			status: 422, body: `{"detail":[{"type":"extra_forbidden","loc":["body","workers","name"],"msg":"Extra inputs are not permitted","input":{"any_":["x"]}}]}`},
		{name: "unknown key in a nested filter", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{"workers":{"last_heartbeat_time":{"since_":"2026-01-01T00:00:00Z"}}}`},
			status: 422, body: `{"detail":[{"type":"extra_forbidden","loc":["body","workers","last_heartbeat_time","since_"],"msg":"Extra inputs are not permitted","input":"2026-01-01T00:00:00Z"}]}`},
		{name: "bad status value", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{"workers":{"status":{"any_":["HEALTHY"]}}}`},
			status: 422, body: `{"detail":[{"type":"enum","loc":["body","workers","status","any_",0],"msg":"Input should be 'ONLINE' or 'OFFLINE'","input":"HEALTHY"}]}`},
		{name: "negative offset", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{"offset":-1}`},
			status: 422, body: `{"detail":[{"type":"greater_than_equal","loc":["body","offset"],"msg":"Input should be greater than or equal to 0","input":-1}]}`},
		{name: "limit over 200", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{"limit":201}`},
			status: 422, body: `{"detail":"Invalid limit: must be less than or equal to 200."}`},
		{name: "limit 200 is fine", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{"limit":200}`}, status: 200, body: `[]`},
		{name: "pool filter with unknown key", r: req{method: "POST", path: "/work_pools/filter", body: `{"work_pools":{"status":{"any_":["READY"]}}}`}, status: 422},
		{name: "create without the trailing slash", r: req{method: "POST", path: "/work_pools", body: `{"name":"x","type":"ecs"}`},
			status: 307, location: "/work_pools/"},
		{name: "filter with a trailing slash", r: req{method: "POST", path: "/work_pools/filter/", body: `{}`}, status: 307, location: "/work_pools/filter"},
		{name: "workers filter with a trailing slash", r: req{method: "POST", path: "/work_pools/ecs-pool/workers/filter/", body: `{}`},
			status: 307, location: "/work_pools/ecs-pool/workers/filter"},
		{name: "read pool with a trailing slash", r: req{method: "GET", path: "/work_pools/ecs-pool/"}, status: 307, location: "/work_pools/ecs-pool"},
		{name: "me without the trailing slash", r: req{method: "GET", path: "http-root:/api/me"}, status: 307, location: "/api/me/"},
		{name: "no key", r: req{method: "GET", path: "/work_pools/ecs-pool", auth: []string{""}},
			status: 401, body: `{"detail":"Invalid authentication credentials"}`},
		{name: "wrong key", r: req{method: "GET", path: "/work_pools/ecs-pool", auth: []string{"Bearer pnu_wrong"}}, status: 401},
		{name: "basic auth on Cloud", r: req{method: "GET", path: "/work_pools/ecs-pool", auth: []string{basic}}, status: 401},
		{name: "bearer and basic at once", r: req{method: "GET", path: "/work_pools/ecs-pool", auth: []string{"Bearer " + key, basic}}, status: 401},
		{name: "self-hosted: basic works", r: req{method: "GET", path: "http-self:/work_pools/ecs-pool", auth: []string{basic}}, status: 200},
		{name: "self-hosted: a key where the auth string is needed", r: req{method: "GET", path: "http-self:/work_pools/ecs-pool"},
			status: 401, body: `{"exception_message":"Unauthorized"}`},
		{name: "self-hosted: both at once", r: req{method: "GET", path: "http-self:/work_pools/ecs-pool", auth: []string{"Bearer " + key, basic}}, status: 401},
		{name: "self-hosted: /health is exempt from auth", r: req{method: "GET", path: "http-self:/health", auth: []string{""}}, status: 200, body: `true`},
		{name: "missing pool", r: req{method: "GET", path: "/work_pools/nope"}, status: 404, body: `{"detail":"Work pool \"nope\" not found."}`},
		{name: "workers of a missing pool", r: req{method: "POST", path: "/work_pools/nope/workers/filter", body: `{}`}, status: 404},
		{name: "delete a missing worker", r: req{method: "DELETE", path: "/work_pools/ecs-pool/workers/ghost"}, status: 404, body: `{"detail":"Worker not found."}`},
		{name: "create without a name", r: req{method: "POST", path: "/work_pools/", body: `{"type":"ecs"}`},
			status: 422, body: `{"detail":[{"type":"missing","loc":["body","name"],"msg":"Field required","input":{"type":"ecs"}}]}`},
		{name: "create with an unknown field", r: req{method: "POST", path: "/work_pools/", body: `{"name":"x","kind":"ecs"}`}, status: 422},
		{name: "create a duplicate", r: req{method: "POST", path: "/work_pools/", body: `{"name":"ecs-pool","type":"ecs"}`},
			status: 409, body: `{"detail":"A work pool with this name already exists."}`},
		{name: "create a reserved name", r: req{method: "POST", path: "/work_pools/", body: `{"name":"prefect-x","type":"ecs"}`}, status: 403},
		{name: "create with a bad name", r: req{method: "POST", path: "/work_pools/", body: `{"name":"a/b","type":"ecs"}`}, status: 422},
		{name: "POST without Content-Length", r: req{method: "POST", path: "/work_pools/filter", body: `{}`, chunked: true}, status: 411},
		{name: "wrong method", r: req{method: "PUT", path: "/work_pools/ecs-pool", body: `{}`}, status: 405},
		{name: "unknown path", r: req{method: "GET", path: "/flows/nope"}, status: 404},
		{name: "another workspace", r: req{method: "GET", path: "http-root:/api/accounts/" + DefaultAccountID + "/workspaces/11111111-2222-4333-8444-555555555555/work_pools/ecs-pool"}, status: 404},
	}
	root := strings.TrimSuffix(f.s.SelfHostedURL(), "/api")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			if p, ok := strings.CutPrefix(r.path, "http-self:"); ok {
				r.path = f.s.SelfHostedURL() + p
			}
			if p, ok := strings.CutPrefix(r.path, "http-root:"); ok {
				r.path = root + p
			}
			status, hdr, body := f.do(t, r)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			if tt.body != "" {
				var got, want any
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				_ = json.Unmarshal([]byte(tt.body), &want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if tt.location != "" && !strings.HasSuffix(hdr.Get("Location"), tt.location) {
				t.Errorf("Location = %q, want ...%s", hdr.Get("Location"), tt.location)
			}
		})
	}
	for _, r := range f.s.Requests() {
		if strings.Contains(fmt.Sprintf("%+v", r), key) || strings.Contains(fmt.Sprintf("%+v", r), "admin:pw") {
			t.Fatalf("the request log holds a credential: %+v", r)
		}
	}
}

func workerTask(host string, started time.Time) Task {
	return Task{
		ARN: "arn:aws:ecs:us-east-1:123456789012:task/c/" + host, LastStatus: "RUNNING", Hostname: host,
		Env:     map[string]string{"DEPLOYBOT_WORK_POOL": "ecs-pool", "DEPLOYBOT_WORKER_PREFIX": "staging-1234abcd"},
		Secrets: map[string]string{"PREFECT_API_KEY": key}, StartedAt: started, Internet: true,
	}
}

// TestWorkerLifecycle: heartbeats every 30 s from 15 s after the task
// started until it stopped; ONLINE while the last one is younger than 90 s
// (ref §1.4); the pool READY while a worker is ONLINE.
func TestWorkerLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	task := workerTask("ip-10-0-1-5", t0.Add(10*time.Second))
	task.Env["PREFECT_API_URL"] = f.s.URL() + "/"
	f.tasks = []Task{task}
	const name = "staging-1234abcd-ip-10-0-1-5"
	steps := []struct {
		at         time.Duration
		stop       bool
		wantStatus string // "" no worker row
		wantLastHB time.Duration
		wantPool   string
	}{
		{at: 20 * time.Second, wantStatus: "", wantPool: "NOT_READY"},
		{at: 25 * time.Second, wantStatus: "ONLINE", wantLastHB: 25 * time.Second, wantPool: "READY"},
		{at: 54 * time.Second, wantStatus: "ONLINE", wantLastHB: 25 * time.Second, wantPool: "READY"},
		{at: 55 * time.Second, wantStatus: "ONLINE", wantLastHB: 55 * time.Second, wantPool: "READY"},
		{at: 100 * time.Second, stop: true, wantStatus: "ONLINE", wantLastHB: 85 * time.Second, wantPool: "READY"},
		{at: 174 * time.Second, wantStatus: "ONLINE", wantLastHB: 85 * time.Second, wantPool: "READY"},
		{at: 175 * time.Second, wantStatus: "OFFLINE", wantLastHB: 85 * time.Second, wantPool: "NOT_READY"},
		{at: time.Hour, wantStatus: "OFFLINE", wantLastHB: 85 * time.Second, wantPool: "NOT_READY"},
	}
	for _, st := range steps {
		f.clk.Advance(t0.Add(st.at).Sub(f.clk.Now()))
		if st.stop {
			f.tasks[0].LastStatus, f.tasks[0].StoppedAt = "STOPPED", f.clk.Now()
		}
		ws := f.s.Workers("ecs-pool")
		got := ""
		var last time.Time
		if len(ws) == 1 && ws[0].Name == name {
			got, last = ws[0].Status, ws[0].LastHeartbeat
			if !ws[0].Created.Equal(t0.Add(25 * time.Second)) {
				t.Errorf("at %s: created = %s, want the first heartbeat", st.at, ws[0].Created)
			}
		} else if len(ws) != 0 {
			t.Fatalf("at %s: workers = %+v", st.at, ws)
		}
		if got != st.wantStatus || (got != "" && !last.Equal(t0.Add(st.wantLastHB))) {
			t.Errorf("at %s: status %q last %s, want %q %s", st.at, got, last, st.wantStatus, t0.Add(st.wantLastHB))
		}
		if p := f.s.PoolStatus("ecs-pool"); p != st.wantPool {
			t.Errorf("at %s: pool %s, want %s", st.at, p, st.wantPool)
		}
	}
	f.s.SetPaused("ecs-pool", true)
	if p := f.s.PoolStatus("ecs-pool"); p != "PAUSED" {
		t.Errorf("paused pool status = %s", p)
	}
}

// TestBrokenTasksNeverHeartbeat: a wrong key, URL or network, or an image
// that never gets there, leaves no worker row.
func TestBrokenTasksNeverHeartbeat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Task, *Server)
		want   bool
	}{
		{"healthy", func(*Task, *Server) {}, true},
		{"self-hosted URL", func(t *Task, s *Server) { t.Env["PREFECT_API_URL"] = s.SelfHostedURL() }, true},
		{"no heartbeat", func(t *Task, _ *Server) { t.Behavior.NoHeartbeat = true }, false},
		{"no internet", func(t *Task, _ *Server) { t.Internet = false }, false},
		{"wrong key", func(t *Task, _ *Server) { t.Secrets["PREFECT_API_KEY"] = "pnu_wrong" }, false},
		{"no key", func(t *Task, _ *Server) { delete(t.Secrets, "PREFECT_API_KEY") }, false},
		{"another Prefect", func(t *Task, _ *Server) {
			t.Env["PREFECT_API_URL"] = "https://api.prefect.cloud/api/accounts/x/workspaces/y"
		}, false},
		{"image pull fails", func(t *Task, _ *Server) { t.Behavior.PullFails = true; t.StartedAt = time.Time{} }, false},
		{"still provisioning", func(t *Task, _ *Server) { t.LastStatus = "PROVISIONING" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			task := workerTask("ip-10-0-1-5", t0)
			task.Env["PREFECT_API_URL"] = f.s.URL()
			tt.mutate(&task, f.s)
			f.tasks = []Task{task}
			f.clk.Advance(2 * time.Minute)
			if got := len(f.s.Workers("ecs-pool")) == 1; got != tt.want {
				t.Fatalf("worker row = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSelfHostedWorkersNeedTheAuthString(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithAuthString("admin:pw"))
	good := workerTask("ip-1", t0)
	good.Env["PREFECT_API_URL"] = f.s.SelfHostedURL()
	good.Secrets = map[string]string{"PREFECT_API_AUTH_STRING": "admin:pw"}
	bad := workerTask("ip-2", t0)
	bad.Env["PREFECT_API_URL"] = f.s.SelfHostedURL()
	f.tasks = []Task{good, bad}
	f.clk.Advance(time.Minute)
	ws := f.s.Workers("ecs-pool")
	if len(ws) != 1 || ws[0].Name != "staging-1234abcd-ip-1" {
		t.Fatalf("workers = %+v", ws)
	}
}

func TestHeartbeatIntoMissingPoolCreatesIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	task := workerTask("ip-1", t0)
	task.Env["PREFECT_API_URL"] = f.s.URL()
	task.Env["DEPLOYBOT_WORK_POOL"] = "new-pool"
	f.tasks = []Task{task}
	f.clk.Advance(time.Minute)
	status, _, body := f.do(t, req{method: "GET", path: "/work_pools/new-pool"})
	if status != 200 || !strings.Contains(body, `"type":"ecs"`) || !strings.Contains(body, `"status":"READY"`) {
		t.Fatalf("%d %s", status, body)
	}
}

// TestDeletedWorkerComesBackOnlyWithNewHeartbeats (ref §1.4: DELETE removes
// the row; a live worker's next heartbeat upserts it again).
func TestDeletedWorkerComesBackOnlyWithNewHeartbeats(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	task := workerTask("ip-1", t0)
	task.Env["PREFECT_API_URL"] = f.s.URL()
	f.tasks = []Task{task}
	f.clk.Advance(time.Minute) // heartbeats at 15 s, 45 s
	if status, _, _ := f.do(t, req{method: "DELETE", path: "/work_pools/ecs-pool/workers/staging-1234abcd-ip-1"}); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if ws := f.s.Workers("ecs-pool"); len(ws) != 0 {
		t.Fatalf("after delete: %+v", ws)
	}
	f.clk.Advance(20 * time.Second) // 80 s: the next heartbeat came at 75 s
	ws := f.s.Workers("ecs-pool")
	if len(ws) != 1 || !ws[0].Created.Equal(t0.Add(75*time.Second)) {
		t.Fatalf("after the next heartbeat: %+v", ws)
	}
	// a stopped task's row stays deleted
	f.tasks[0].LastStatus, f.tasks[0].StoppedAt = "STOPPED", f.clk.Now()
	f.do(t, req{method: "DELETE", path: "/work_pools/ecs-pool/workers/staging-1234abcd-ip-1"})
	f.clk.Advance(time.Hour)
	if ws := f.s.Workers("ecs-pool"); len(ws) != 0 {
		t.Fatalf("a deleted row of a stopped task came back: %+v", ws)
	}
}

func TestFilterSemantics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, n := range []string{"old-1", "old-2"} {
		f.do(t, req{method: "POST", path: "/work_pools/ecs-pool/workers/heartbeat", body: `{"name":"` + n + `"}`})
	}
	f.clk.Advance(5 * time.Minute)
	f.do(t, req{method: "POST", path: "/work_pools/ecs-pool/workers/heartbeat", body: `{"name":"new-1","heartbeat_interval_seconds":30}`})
	after := t0.Add(time.Minute).Format(time.RFC3339)
	tests := []struct {
		body string
		want []string
	}{
		{`{}`, []string{"new-1", "old-1", "old-2"}}, // newest heartbeat first
		{`{"workers":{"status":{"any_":["ONLINE"]}}}`, []string{"new-1"}},
		{`{"workers":{"status":{"not_any_":["ONLINE"]}}}`, []string{"old-1", "old-2"}},
		{`{"workers":{"last_heartbeat_time":{"after_":"` + after + `"}}}`, []string{"new-1"}},
		{`{"workers":{"last_heartbeat_time":{"before_":"` + t0.Format(time.RFC3339) + `"}}}`, []string{"old-1", "old-2"}}, // inclusive
		{`{"workers":{"operator":"or_","status":{"any_":["ONLINE"]},"last_heartbeat_time":{"before_":"` + t0.Format(time.RFC3339) + `"}}}`, []string{"new-1", "old-1", "old-2"}},
		{`{"offset":1,"limit":1}`, []string{"old-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			status, _, body := f.do(t, req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: tt.body})
			if status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			var ws []struct{ Name string }
			_ = json.Unmarshal([]byte(body), &ws)
			var got []string
			for _, w := range ws {
				got = append(got, w.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestResponsesFollowTheOpenAPI checks every field name the simulator sends
// against WorkerResponse and WorkPoolResponse in the reference schema (a copy
// in testdata), required fields included.
func TestResponsesFollowTheOpenAPI(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/schemas-core.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
				Enum       []string                   `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.do(t, req{method: "POST", path: "/work_pools/ecs-pool/workers/heartbeat", body: `{"name":"w"}`})
	_, _, poolBody := f.do(t, req{method: "GET", path: "/work_pools/ecs-pool"})
	_, _, workersBody := f.do(t, req{method: "POST", path: "/work_pools/ecs-pool/workers/filter", body: `{}`})
	var pool map[string]any
	var workers []map[string]any
	_ = json.Unmarshal([]byte(poolBody), &pool)
	_ = json.Unmarshal([]byte(workersBody), &workers)
	if len(workers) != 1 {
		t.Fatalf("workers: %s", workersBody)
	}
	for _, c := range []struct {
		schema string
		obj    map[string]any
		enums  map[string]string // field -> enum schema
	}{
		{"WorkPoolResponse", pool, map[string]string{"status": "WorkPoolStatus"}},
		{"WorkerResponse", workers[0], map[string]string{"status": "WorkerStatus"}},
	} {
		sc := doc.Components.Schemas[c.schema]
		var extra, missing []string
		for k := range c.obj {
			if _, ok := sc.Properties[k]; !ok {
				extra = append(extra, k)
			}
		}
		for k := range sc.Properties {
			if _, ok := c.obj[k]; !ok {
				missing = append(missing, k)
			}
		}
		sort.Strings(extra)
		sort.Strings(missing)
		if len(extra)+len(missing) > 0 {
			t.Errorf("%s: fields not in the schema %v, schema fields not sent %v", c.schema, extra, missing)
		}
		for field, enum := range c.enums {
			v, _ := c.obj[field].(string)
			if !contains(doc.Components.Schemas[enum].Enum, v) {
				t.Errorf("%s.%s = %q, not in %v", c.schema, field, v, doc.Components.Schemas[enum].Enum)
			}
		}
		for _, k := range []string{"created", "updated", "last_heartbeat_time"} {
			if s, ok := c.obj[k].(string); ok {
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
					t.Errorf("%s.%s = %q is not a date-time", c.schema, k, s)
				}
			}
		}
	}
}

func TestFaultsAndRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.s.InjectFault(503, "3", 1)
	f.s.InjectFault(429, "", 1)
	get := func() (int, string) {
		status, hdr, _ := f.do(t, req{method: "GET", path: "/work_pools/ecs-pool"})
		return status, hdr.Get("Retry-After")
	}
	for _, want := range []struct {
		status int
		ra     string
	}{{503, "3"}, {429, ""}, {200, ""}} {
		if s, ra := get(); s != want.status || ra != want.ra {
			t.Fatalf("got %d Retry-After %q, want %d %q", s, ra, want.status, want.ra)
		}
	}
	f.s.SetRateLimit(5) // 3 requests this minute so far
	f.clk.Advance(15 * time.Second)
	get()
	get()
	if s, ra := get(); s != 429 || ra != "45" {
		t.Fatalf("over the limit: %d Retry-After %q, want 429 45", s, ra)
	}
	f.clk.Advance(45 * time.Second)
	if s, _ := get(); s != 200 {
		t.Fatalf("next minute: %d", s)
	}
	perMinute := f.s.RequestsPerMinute()
	if perMinute[t0] != 6 || perMinute[t0.Add(time.Minute)] != 1 {
		t.Errorf("per minute = %v", perMinute)
	}
	if got := f.s.MaxRequestsPerMinute(); got != 6 {
		t.Errorf("max per minute = %d", got)
	}
}

func TestMaxRequestsPerMinuteIsASlidingWindow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// 4 requests at :50 and 4 at 1:10: two fixed minutes of 4, one sliding 60 s of 8
	f.clk.Advance(50 * time.Second)
	for i := 0; i < 4; i++ {
		f.do(t, req{method: "GET", path: "/work_pools/ecs-pool"})
	}
	f.clk.Advance(20 * time.Second)
	for i := 0; i < 4; i++ {
		f.do(t, req{method: "GET", path: "/work_pools/ecs-pool"})
	}
	if got := f.s.MaxRequestsPerMinute(); got != 8 {
		t.Fatalf("MaxRequestsPerMinute = %d, want 8", got)
	}
}
