package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/goldenfile"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const (
	testPool = "ecs-pool"
	tdV1     = "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:1"
	tdV2     = "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:2"
	prefixV1 = "staging-aaaaaaaa"
	prefixV2 = "staging-bbbbbbbb"
)

// scenario is one deploy of revision 2 over revision 1 (or a first deploy):
// a virtual clock, the Prefect simulator fed by a fake ECS service, a client.
type scenario struct {
	clk      *clock.Virtual
	sim      *prefectsim.Server
	ecs      *fakeECS
	client   *prefect.Client
	in       Input
	progress []string
}

type scenarioOpts struct {
	behavior    prefectsim.ImageBehavior // revision 2's image
	firstDeploy bool                     // no revision 1
	waitBefore  time.Duration            // time between the deploy and the gate (the engine's deployment wait)
	extra       []prefectsim.Task
	// selfHosted: the server's auth string ("user:pass"); the workers and
	// the client use the self-hosted URL with basic auth.
	selfHosted string
	// samePrefix: revision 2 differs only at the task level (e.g. cpu), so
	// its workers carry revision 1's prefix
	samePrefix bool
	// skew: the Prefect server's clock runs this far ahead of AWS's and
	// deploybot's (negative: behind)
	skew time.Duration
}

func newScenario(t *testing.T, o scenarioOpts) *scenario {
	t.Helper()
	s := &scenario{clk: clock.NewVirtual(t0)}
	var f *fakeECS
	simOpts := []prefectsim.Option{prefectsim.WithClock(s.clk), prefectsim.WithKey(testKey),
		prefectsim.WithTaskSource(prefectsim.TaskSourceFunc(func() []prefectsim.Task { return f.Tasks() }))}
	if o.selfHosted != "" {
		simOpts = append(simOpts, prefectsim.WithAuthString(o.selfHosted))
	}
	if o.skew != 0 {
		simOpts = append(simOpts, prefectsim.WithClockSkew(o.skew))
	}
	s.sim = prefectsim.New(nil, simOpts...)
	t.Cleanup(s.sim.Close)
	s.sim.AddWorkPool(testPool, "ecs", false)
	apiURL, key, copts := s.sim.URL(), testKey, []prefect.Option{prefect.WithClock(s.clk)}
	if o.selfHosted != "" {
		user, pass, _ := strings.Cut(o.selfHosted, ":")
		apiURL, key, copts = s.sim.SelfHostedURL(), "", append(copts, prefect.WithBasicAuth(user, pass))
	}
	v1 := revision{arn: tdV1, prefix: prefixV1, apiURL: apiURL, key: testKey, auth: o.selfHosted, pool: testPool, internet: true}
	v2 := v1
	v2.arn, v2.prefix, v2.behavior = tdV2, prefixV2, o.behavior
	if o.samePrefix {
		v2.prefix = prefixV1
	}
	f = newFakeECS(s.clk, v1, v2)
	f.extra = o.extra
	s.ecs = f
	prev := ""
	if !o.firstDeploy {
		f.deploy(tdV1)
		s.clk.Advance(5 * time.Minute)
		prev = tdV1
	}
	s.in = scenarioInput(f, prev, v2.prefix, s.clk.Now())
	f.deploy(tdV2)
	s.clk.Advance(o.waitBefore)
	c, err := prefect.New(apiURL, key, copts...)
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	return s
}

// scenarioTimeout is the scenarios' health_gate.timeout: 5 minutes for the
// stages, 5 kept for a rollback (RollbackReserve).
const scenarioTimeout = 10 * time.Minute

// scenarioInput is what deploy gives the gate for revision 2's deployment
// over prev, started at since.
func scenarioInput(f *fakeECS, prev, prefix string, since time.Time) Input {
	return Input{WorkPool: testPool, Timeout: scenarioTimeout, MinWorkers: 1, WorkerPrefix: prefix, Previous: prev,
		Deployment:       ecsdeploy.Deployment{Service: ecsdeploy.Service{Cluster: f.cluster, Name: f.service}, TaskDefinition: tdV2, Since: since},
		PruneEnvironment: "staging"}
}

func (s *scenario) run(progress func(string)) (*plan.GateReport, error) {
	return Run(context.Background(), s.ecs, s.client, s.in, Options{Clock: s.clk, Events: lines(progress)})
}

func (s *scenario) gate(t *testing.T) *plan.GateReport {
	t.Helper()
	rep, err := s.run(func(line string) { s.progress = append(s.progress, line) })
	if err != nil {
		t.Fatalf("gate could not run: %v", err)
	}
	return rep
}

func (s *scenario) ecsWrites() []string {
	s.ecs.mu.Lock()
	defer s.ecs.mu.Unlock()
	var w []string
	for _, c := range s.ecs.calls {
		if c == "UpdateService" {
			w = append(w, c)
		}
	}
	return w
}

func TestGate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts scenarioOpts
		// expectations
		passed, rolledBack, restored, nothingToRollBack bool
		updateServiceCalls                              int
		reasonHas                                       []string
		stopCode                                        string
		maxDuration                                     time.Duration // 0: no bound
		minDuration                                     time.Duration
	}{
		{
			name: "good deploy passes", opts: scenarioOpts{},
			passed: true, reasonHas: []string{"1 worker(s) of deploybot-staging-worker:2 ONLINE", prefixV2 + "-ip-"},
			maxDuration: time.Minute,
		},
		{
			name: "good deploy passes after the engine waited for the deployment", opts: scenarioOpts{waitBefore: 2 * time.Minute},
			passed: true, maxDuration: 15 * time.Second,
		},
		{
			name: "same prefix (task-level change): a good deploy passes on a new row", opts: scenarioOpts{samePrefix: true},
			passed: true, maxDuration: time.Minute,
		},
		// Prefect's times are judged against Prefect's clock (its Date
		// header), not deploybot's: a server 90 s out of step passes a
		// good deploy and still fails a broken one.
		{name: "Prefect's clock 90 s behind: a good deploy passes", opts: scenarioOpts{skew: -90 * time.Second}, passed: true, maxDuration: time.Minute},
		{name: "Prefect's clock 90 s ahead: a good deploy passes", opts: scenarioOpts{skew: 90 * time.Second}, passed: true, maxDuration: time.Minute},
		{name: "Prefect's clock 90 s behind, same prefix: a good deploy passes", opts: scenarioOpts{skew: -90 * time.Second, samePrefix: true},
			passed: true, maxDuration: time.Minute},
		{
			name:       "Prefect's clock 90 s ahead: a revision that never heartbeats is still rolled back",
			opts:       scenarioOpts{skew: 90 * time.Second, behavior: prefectsim.ImageBehavior{NoHeartbeat: true}},
			rolledBack: true, restored: true, updateServiceCalls: 1, minDuration: 5 * time.Minute,
		},
		{
			name:       "same prefix: the old worker's heartbeats do not pass a broken revision",
			opts:       scenarioOpts{samePrefix: true, behavior: prefectsim.ImageBehavior{NoHeartbeat: true}},
			rolledBack: true, restored: true, updateServiceCalls: 1, minDuration: 5 * time.Minute,
		},
		{
			name:       "revision that never heartbeats is rolled back and the old worker is back",
			opts:       scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}},
			rolledBack: true, restored: true, updateServiceCalls: 1, minDuration: 5 * time.Minute,
			reasonHas: []string{"only 0 of 1 worker(s) of deploybot-staging-worker:2 (prefix " + prefixV2 + ") came ONLINE", "within 5m0s",
				"rolled back to deploybot-staging-worker:1 and its worker " + prefixV1 + "-ip-", "is ONLINE again"},
		},
		{
			name:       "crash loop fails fast with the stopped reason",
			opts:       scenarioOpts{behavior: prefectsim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1}},
			rolledBack: true, restored: true, updateServiceCalls: 1, stopCode: "EssentialContainerExited",
			reasonHas:   []string{"2 tasks of deploybot-staging-worker:2 stopped", "Essential container in task exited", "exit code 1"},
			maxDuration: 2 * time.Minute, // the first failure signal, far inside the 5m timeout plus the rollback
		},
		{
			name:       "image pull failure fails fast",
			opts:       scenarioOpts{behavior: prefectsim.ImageBehavior{PullFails: true}},
			rolledBack: true, restored: true, updateServiceCalls: 1, stopCode: "TaskFailedToStart",
			reasonHas: []string{"CannotPullContainerError"}, maxDuration: 2 * time.Minute,
		},
		{
			name:       "circuit breaker already rolled back: no UpdateService, wait for ECS's rollback",
			opts:       scenarioOpts{behavior: prefectsim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1}, waitBefore: 3 * time.Minute},
			rolledBack: true, restored: true, updateServiceCalls: 0,
			reasonHas: []string{"ECS rolled the deployment of deploybot-staging-worker:2 back", "circuit breaker: tasks failed to start"},
		},
		{
			name:              "first deploy that fails has nothing to roll back to",
			opts:              scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}, firstDeploy: true},
			nothingToRollBack: true, reasonHas: []string{"nothing to roll back to: this was the first deploy"},
		},
		{
			name: "the old worker alone keeps the pool READY and does not pass",
			opts: scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}, extra: []prefectsim.Task{{
				ARN: "arn:aws:ecs:us-east-1:123456789012:task/manual/1", LastStatus: "RUNNING", Hostname: "ip-10-0-9-1",
				Env:     map[string]string{"DEPLOYBOT_WORK_POOL": testPool, "DEPLOYBOT_WORKER_PREFIX": prefixV1},
				Secrets: map[string]string{"PREFECT_API_KEY": testKey}, StartedAt: t0, Internet: true,
			}}},
			rolledBack: true, restored: true, updateServiceCalls: 1, reasonHas: []string{"only 0 of 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScenario(t, tt.opts)
			for i := range s.ecs.extra { // the hand-run worker talks to this scenario's server
				s.ecs.extra[i].Env["PREFECT_API_URL"] = s.sim.URL()
			}
			var poolStatuses []string
			s.sim.ResetRequests()
			rep, err := s.run(func(line string) {
				s.progress = append(s.progress, line)
				if strings.HasPrefix(line, "health gate: 0/1") {
					poolStatuses = append(poolStatuses, s.sim.PoolStatus(testPool))
				}
			})
			if err != nil {
				t.Fatalf("gate could not run: %v", err)
			}
			if rep.Passed != tt.passed || rep.RolledBack != tt.rolledBack || rep.RestoredWorkerOnline != tt.restored || rep.NothingToRollBack != tt.nothingToRollBack {
				t.Fatalf("passed=%v rolledBack=%v restored=%v nothing=%v, want %v %v %v %v\nreason: %s\nprogress:\n%s",
					rep.Passed, rep.RolledBack, rep.RestoredWorkerOnline, rep.NothingToRollBack,
					tt.passed, tt.rolledBack, tt.restored, tt.nothingToRollBack, rep.Reason, strings.Join(s.progress, "\n"))
			}
			for _, want := range tt.reasonHas {
				if !strings.Contains(rep.Reason, want) {
					t.Errorf("reason %q lacks %q", rep.Reason, want)
				}
			}
			if got := len(s.ecsWrites()); got != tt.updateServiceCalls {
				t.Errorf("UpdateService calls = %d, want %d", got, tt.updateServiceCalls)
			}
			if tt.rolledBack && rep.RolledBackTo != tdV1 {
				t.Errorf("RolledBackTo = %q", rep.RolledBackTo)
			}
			if tt.stopCode != "" {
				if len(rep.StoppedTasks) == 0 || rep.StoppedTasks[0].StopCode != tt.stopCode {
					t.Errorf("stopped tasks = %+v, want stop code %s", rep.StoppedTasks, tt.stopCode)
				}
				if len(rep.ServiceEvents) == 0 {
					t.Errorf("no service events in the report")
				}
			}
			if tt.maxDuration > 0 && rep.Duration > tt.maxDuration {
				t.Errorf("gate took %s of simulated time, want at most %s", rep.Duration, tt.maxDuration)
			}
			if rep.Duration < tt.minDuration {
				t.Errorf("gate took %s, want at least %s", rep.Duration, tt.minDuration)
			}
			if rep.WorkPoolURL != s.client.WorkPoolURL(testPool) || rep.WorkPoolURL == "" {
				t.Errorf("WorkPoolURL = %q", rep.WorkPoolURL)
			}
			if !tt.passed && len(s.progress) == 0 {
				t.Errorf("no progress while waiting")
			}
			for _, r := range s.sim.Requests() {
				if r.Status != http.StatusOK && r.Status != http.StatusNoContent {
					t.Errorf("request answered %d: %+v", r.Status, r)
				}
				if want := map[bool]string{true: "Basic", false: "Bearer"}[tt.opts.selfHosted != ""]; r.Auth != want {
					t.Errorf("request authenticated with %q, want %q", r.Auth, want)
				}
			}
			if tt.opts.extra != nil {
				if len(poolStatuses) == 0 {
					t.Fatal("no polls observed")
				}
				for _, st := range poolStatuses {
					if st != "READY" {
						t.Fatalf("pool status while waiting = %v, want READY throughout (the old worker's heartbeat)", poolStatuses)
					}
				}
			}
		})
	}
}

func mustClient(t *testing.T, s *scenario) *prefect.Client {
	t.Helper()
	c, err := prefect.New(s.sim.URL(), testKey, prefect.WithClock(s.clk))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGateProgressSaysWhatItSees(t *testing.T) {
	t.Parallel()
	s := newScenario(t, scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}})
	s.gate(t)
	first := s.progress[0]
	for _, want := range []string{"health gate: 0/1 worker(s) of deploybot-staging-worker:2 (prefix " + prefixV2 + ")", "pool \"ecs-pool\"",
		"no worker has heartbeated since the deploy started", "5m0s left"} {
		if !strings.Contains(first, want) {
			t.Errorf("first progress line %q lacks %q", first, want)
		}
	}
	// later lines show the old worker, still heartbeating, for what it is
	later := strings.Join(s.progress[1:], "\n")
	for _, want := range []string{prefixV1 + "-ip-", "ONLINE (heartbeat", "[not this revision]", "4m50s left", "0s left"} {
		if !strings.Contains(later, want) {
			t.Errorf("progress lacks %q:\n%s", want, later)
		}
	}
}

func TestGatePrunesOfflineWorkersOfOlderRevisions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prune  *bool
		pruned int
		left   []string
	}{
		{name: "default prunes", pruned: 1, left: []string{"prod-12345678-ip-10-0-9-9", "staging-eu-ip-10-0-9-9"}},
		{name: "prune_offline_workers: false keeps them", prune: new(bool), pruned: 0,
			left: []string{"prod-12345678-ip-10-0-9-9", "staging-0000beef-ip-10-0-9-9", "staging-eu-ip-10-0-9-9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey))
			defer sim.Close()
			sim.AddWorkPool(testPool, "ecs", false)
			// rows an earlier revision of staging, another environment and an
			// unrelated worker left behind, OFFLINE by the time of the deploy
			for _, n := range []string{"staging-0000beef-ip-10-0-9-9", "prod-12345678-ip-10-0-9-9", "staging-eu-ip-10-0-9-9"} {
				simtest.Heartbeat(t, sim, testKey, testPool, n)
			}
			clk.Advance(10 * time.Minute)
			s := newScenarioOn(t, clk, sim, false, nil)
			if tt.prune != nil && !*tt.prune {
				s.in.PruneEnvironment = ""
			}
			rep := s.gate(t)
			if !rep.Passed || rep.PrunedWorkers != tt.pruned {
				t.Fatalf("passed=%v pruned=%d, want pruned=%d (%s)", rep.Passed, rep.PrunedWorkers, tt.pruned, rep.Reason)
			}
			var offline []string
			for _, w := range sim.Workers(testPool) {
				if w.Status == "OFFLINE" {
					offline = append(offline, w.Name)
				}
			}
			if strings.Join(offline, ",") != strings.Join(tt.left, ",") {
				t.Errorf("offline workers left = %v, want %v", offline, tt.left)
			}
		})
	}
}

// newScenarioOn is a good deploy on an existing clock and simulator;
// samePrefix as in scenarioOpts; edit, when set, changes the fake ECS
// before revision 2 is deployed.
func newScenarioOn(t *testing.T, clk *clock.Virtual, sim *prefectsim.Server, samePrefix bool, edit func(*fakeECS)) *scenario {
	t.Helper()
	v1 := revision{arn: tdV1, prefix: prefixV1, apiURL: sim.URL(), key: testKey, pool: testPool, internet: true}
	v2 := v1
	v2.arn, v2.prefix = tdV2, prefixV2
	if samePrefix {
		v2.prefix = prefixV1
	}
	f := newFakeECS(clk, v1, v2)
	s := &scenario{clk: clk, sim: sim, ecs: f}
	sim.SetTaskSource(f)
	f.deploy(tdV1)
	clk.Advance(5 * time.Minute)
	s.in = scenarioInput(f, tdV1, v2.prefix, clk.Now())
	if edit != nil {
		edit(f)
	}
	f.deploy(tdV2)
	s.client = mustClient(t, s)
	return s
}

// TestGatePollingStaysFarInsideCloudRateLimit measures requests per simulated
// minute over the longest gate (timeout, rollback, old worker back) and
// asserts the bound: Prefect Cloud's lowest plan allows 625 API requests per
// minute (ref §2.4); the gate must use at most 2 % of it.
func TestGatePollingStaysFarInsideCloudRateLimit(t *testing.T) {
	t.Parallel()
	const hobbyLimit = 625
	const bound = hobbyLimit * 2 / 100 // 12 requests/minute
	tests := []struct {
		name string
		opts scenarioOpts
	}{
		{"timeout and rollback", scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}}},
		{"crash loop and rollback", scenarioOpts{behavior: prefectsim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1}}},
		{"pass", scenarioOpts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScenario(t, tt.opts)
			s.sim.SetRateLimit(hobbyLimit)
			s.sim.ResetRequests()
			rep := s.gate(t)
			reqs := s.sim.Requests()
			if len(reqs) == 0 {
				t.Fatal("no requests measured")
			}
			for _, r := range reqs {
				if r.Status == http.StatusTooManyRequests {
					t.Fatalf("the gate was rate limited: %+v", r)
				}
			}
			got := s.sim.MaxRequestsPerMinute()
			t.Logf("%s: %d requests over %s, at most %d in any minute", tt.name, len(reqs), rep.Duration, got)
			if got > bound {
				t.Errorf("max requests per simulated minute = %d, want <= %d (2%% of %d)", got, bound, hobbyLimit)
			}
			// 60 s / PollInterval polls per minute, one request each
			if got > int(time.Minute/PollInterval)+1 {
				t.Errorf("max requests per minute = %d, more than one per poll", got)
			}
		})
	}
}

func TestGateHonoursRetryAfterWhilePolling(t *testing.T) {
	t.Parallel()
	s := newScenario(t, scenarioOpts{})
	s.sim.InjectFault(http.StatusTooManyRequests, "7", 2)
	before := s.clk.Now()
	rep := s.gate(t)
	if !rep.Passed {
		t.Fatalf("gate failed: %s", rep.Reason)
	}
	reqs := s.sim.Requests()
	var throttledAt []time.Time
	for _, r := range reqs {
		if r.At.Before(before) {
			continue
		}
		if r.Status == http.StatusTooManyRequests {
			throttledAt = append(throttledAt, r.At)
		}
	}
	if len(throttledAt) != 2 || throttledAt[1].Sub(throttledAt[0]) != 7*time.Second {
		t.Fatalf("429s at %v, want two, 7s apart", throttledAt)
	}
	for _, r := range reqs {
		if r.At.After(throttledAt[1]) && r.At.Sub(throttledAt[1]) < 7*time.Second {
			t.Fatalf("request %v came before Retry-After elapsed", r)
		}
	}
}

func TestGateCouldNotRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*scenario)
		errHas string
	}{
		{"revoked key", func(s *scenario) { s.sim.RevokeKey(testKey) }, "401 Unauthorized: Invalid authentication credentials"},
		{"pool deleted", func(s *scenario) { s.in.WorkPool = "gone" }, `404 Not Found: Work pool "gone" not found.`},
		{"no deployment", func(s *scenario) { s.in.Deployment.TaskDefinition = "" }, "must name the cluster, service and task definition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScenario(t, scenarioOpts{})
			tt.mutate(s)
			_, err := s.run(nil)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Fatal("error leaks the key")
			}
			if n := len(s.ecsWrites()); n != 0 {
				t.Fatalf("%d ECS writes", n)
			}
		})
	}
}

// TestGateReportGolden pins the report of the crash-loop scenario, the one a
// user reads most carefully. Run with -update to rewrite.
func TestGateReportGolden(t *testing.T) {
	t.Parallel()
	s := newScenario(t, scenarioOpts{behavior: prefectsim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1}})
	rep := s.gate(t)
	rep.WorkPoolURL = strings.Replace(rep.WorkPoolURL, hostOf(s.sim.URL()), "http://prefect.sim", 1)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n-- progress --\n" + strings.Join(s.progress, "\n") + "\n")
	goldenfile.Check(t, "testdata/gate_crash_loop.golden", b.Bytes(), *update, nil)
}

func hostOf(u string) string {
	i := strings.Index(u, "/api")
	return u[:i]
}

var testKey = fakekey.Prefect("Gate")

// lines passes each progress event's message to f (nil: none).
func lines(f func(string)) event.Sink {
	if f == nil {
		return nil
	}
	return event.Func(func(e event.Event) { f(e.Message) })
}
