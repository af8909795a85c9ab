package engine_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
	"github.com/deploybot/deploybot/internal/stack"
)

// The harness every end-to-end test and benchmark of this package runs on:
// one simulated AWS account, environment files loaded from YAML, engines
// with the real resource kinds, and plan, apply and destroy that fail the
// test on error. world (existing network, e2e_test.go), netE2E (managed
// network, network_e2e_test.go) and benchNet (bench_test.go) add only how
// their environment files look.

// envYAMLHead begins every test environment file: the account, the
// Prefect workspace and the worker's basics, with NAME for the name.
// envYAML and netEnvYAML add the network part.
var envYAMLHead = configtest.Head{Name: "NAME", CreatePool: true}.YAML() + `worker:
  image: prefecthq/prefect-aws:3.1
  cpu: 512
  memory: 1024
  desired_count: 1
`

// testStart is when every simulated account's clock starts.
var testStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newTestClock() *clock.Virtual { return clock.NewVirtual(testStart) }

// account is a simulated AWS account; stacks are built with key as the
// Prefect API key.
type account struct {
	tb  testing.TB
	w   *awssim.World
	clk clock.Clock
	key string
	// prefect is the Prefect API the environments' work pools are in; it
	// accepts key.
	prefect *prefectsim.Server
	// prefectLatency is added to every Prefect request, as w.Latency is to
	// every AWS call (benchmarks: prefectLatency = w.Latency).
	prefectLatency atomic.Int64
	// events is what the engines reported (from many goroutines).
	events event.Recorder
}

func newAccount(tb testing.TB, clk clock.Clock, key string, opts ...awssim.Option) *account {
	w := awssim.New(clk, opts...)
	sim := prefectsim.New(w, prefectsim.WithKey(key))
	tb.Cleanup(sim.Close)
	tb.Cleanup(func() {
		if u := sim.Unexpected(); len(u) > 0 {
			tb.Errorf("requests the simulated Prefect API does not know: %v", u)
		}
	})
	return &account{tb: tb, w: w, clk: clk, key: key, prefect: sim}
}

// prefectClient is the engine's Prefect API client: its writes count as
// the process's, so that a crash injected after the k-th write stops
// Prefect's too (simtest.ProcessTransport).
func (x *account) prefectClient() *prefect.Client {
	x.tb.Helper()
	c, err := prefect.New(x.prefect.URL(), x.key, prefect.WithClock(x.clk),
		prefect.WithHTTPClient(&http.Client{Transport: simtest.ProcessTransport{AWS: x.w,
			Latency: func() time.Duration { return time.Duration(x.prefectLatency.Load()) }}}))
	if err != nil {
		x.tb.Fatal(err)
	}
	return c
}

// advance moves simulated time on; the account must run on a clock.Virtual.
func (x *account) advance(d time.Duration) {
	x.clk.(*clock.Virtual).Advance(d)
}

// load loads the environment file y, named name, with edits applied as
// "old" → "new" replacements (each must match).
func (x *account) load(name, y string, edits ...string) *config.Environment {
	x.tb.Helper()
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(y, edits[i]) {
			x.tb.Fatalf("edit %q matches nothing", edits[i])
		}
		y = strings.ReplaceAll(y, edits[i], edits[i+1])
	}
	env, err := config.Load(configtest.Write(x.tb, name+".yaml", y))
	if err != nil {
		x.tb.Fatalf("load: %v", err)
	}
	return env
}

// engine returns an engine on the account that records its progress.
func (x *account) engine() *engine.Engine {
	return &engine.Engine{AWS: awsapi.New(x.w.Config()), Prefect: x.prefectClient(), Clock: x.clk, Kinds: kinds.All(), Events: &x.events}
}

// progress returns what the account's engines have reported so far.
func (x *account) progress() []string { return x.events.Lines() }

func (x *account) progressText() string { return strings.Join(x.progress(), "\n") }

// stack builds env's stack with the account's key.
func (x *account) stack(env *config.Environment) *stack.Stack {
	x.tb.Helper()
	st, err := stack.Build(env, x.key)
	if err != nil {
		x.tb.Fatal(err)
	}
	return st
}

// destroyStack builds env's stack for a destroy (no key; the secret is
// deleted without a recovery window).
func (x *account) destroyStack(env *config.Environment) *stack.Stack {
	x.tb.Helper()
	st, err := stack.Build(env, "", stack.ForceDeleteSecret)
	if err != nil {
		x.tb.Fatal(err)
	}
	return st
}

func (x *account) plan(env *config.Environment) *engine.Planned {
	x.tb.Helper()
	return x.planWith(x.engine(), x.stack(env))
}

func (x *account) planWith(e *engine.Engine, st *stack.Stack) *engine.Planned {
	x.tb.Helper()
	p, err := e.Plan(context.Background(), st)
	if err != nil {
		x.tb.Fatalf("plan %s: %v", st.Environment, err)
	}
	return p
}

// tryApply plans env (failing the test on error) and applies the plan.
func (x *account) tryApply(env *config.Environment) (*plan.Report, error) {
	x.tb.Helper()
	return x.engine().Apply(context.Background(), x.plan(env))
}

// tryDestroy plans env's destroy (failing the test on error) and runs it.
func (x *account) tryDestroy(env *config.Environment) (*plan.Report, error) {
	x.tb.Helper()
	e := x.engine()
	p, err := e.PlanDestroy(context.Background(), x.destroyStack(env))
	if err != nil {
		x.tb.Fatalf("plan destroy %s: %v", env.Name, err)
	}
	return e.Destroy(context.Background(), p)
}

// crashAfterWrite runs what (x.tryApply or x.tryDestroy) on env with the
// deploybot process dying after the k-th write (awssim.Faults
// StopAfterWrites; plans write nothing, so the count is the run's), fails
// the test if the run survives, then lifts the fault.
func (x *account) crashAfterWrite(k int, what string, run func(*config.Environment) (*plan.Report, error), env *config.Environment) {
	x.tb.Helper()
	x.w.SetFaults(awssim.Faults{StopAfterWrites: k})
	if _, err := run(env); err == nil {
		x.tb.Fatalf("%s survived a crash after write %d", what, k)
	}
	x.w.SetFaults(awssim.Faults{})
}

func (x *account) apply(env *config.Environment) *plan.Report {
	x.tb.Helper()
	rep, err := x.tryApply(env)
	if err != nil {
		x.tb.Fatalf("apply %s: %v\nprogress:\n%s", env.Name, err, x.progressText())
	}
	return rep
}

func (x *account) destroy(env *config.Environment) *plan.Report {
	x.tb.Helper()
	rep, err := x.tryDestroy(env)
	if err != nil {
		x.tb.Fatalf("destroy %s: %v\nprogress:\n%s", env.Name, err, x.progressText())
	}
	// Secrets Manager purges a force-deleted secret asynchronously, within
	// seconds (awssim.Timings.SecretForceDeletePurge).
	x.advance(time.Minute)
	return rep
}

// wantNone fails the test when items, things that should not be (changes
// in a plan, resources left), is not empty.
func (x *account) wantNone(what string, items []string) {
	x.tb.Helper()
	if len(items) != 0 {
		x.tb.Fatalf("%s:\n%s", what, strings.Join(items, "\n"))
	}
}

// wantConverged fails the test unless a plan of env read everything, the
// work pool and the smoke deployment in Prefect included, and changes
// nothing: a plan that could not read the pool lists no change for it
// either (it says so in Unread), which is not convergence.
func (x *account) wantConverged(what string, env *config.Environment) {
	x.tb.Helper()
	p := x.plan(env)
	if len(p.Plan.Unread) > 0 {
		x.tb.Fatalf("%s: the plan could not read %+v", what, p.Plan.Unread)
	}
	for _, addr := range []string{stack.AddrWorkPool, stack.AddrSmokeDeployment} {
		if i := indexOf(p.Plan, addr); i < 0 || p.Plan.Changes[i].Action != plan.NoOp {
			x.tb.Fatalf("%s: the plan does not show %s unchanged: %v", what, addr, summary(p.Plan))
		}
	}
	x.wantNone(what, summary(p.Plan))
}

// writes lists the successful writes so far as "service.Operation": the
// account's, then the Prefect API's ("Prefect.METHOD path"), which count
// together towards a crash (simtest.ProcessTransport).
func (x *account) writes() []string {
	var out []string
	for _, c := range x.w.Calls() {
		if c.Write && c.ErrCode == "" {
			out = append(out, c.Service+"."+c.Operation)
		}
	}
	for _, r := range x.prefect.Requests() {
		if r.Method != http.MethodGet && !strings.HasSuffix(strings.TrimSuffix(r.Path, "/"), "/filter") && r.Status < 300 {
			out = append(out, "Prefect."+r.Method+" "+r.Path)
		}
	}
	return out
}

// callLatency makes every AWS call and every Prefect request from now on
// take d of real time.
func (x *account) callLatency(d time.Duration) {
	x.w.Latency = d
	x.prefectLatency.Store(int64(d))
}

// prefectCalls is how many requests the Prefect API has had since the last
// resetCalls.
func (x *account) prefectCalls() int { return len(x.prefect.Requests()) }

// resetCalls forgets the calls so far, the account's and the Prefect API's.
func (x *account) resetCalls() {
	x.w.ResetCalls()
	x.prefect.ResetRequests()
}
