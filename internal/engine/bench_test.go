package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// Performance targets of issues 2 and 3, measured with go test -bench (never
// with timed assertions). Every AWS call takes benchLatency of real time
// (awssim.World.Latency); in the apply benchmark, simulated waits (NAT
// gateway pending, IAM propagation, Cloud Map operations, the ECS
// deployment) take real time too, per simulated second (benchClocks).
// Metrics besides ns/op:
//
//   - aws-calls/op: AWS calls per operation (awssim's call log);
//   - round-trips/op: wall time per operation divided by benchLatency;
//   - x-critical-path: apply wall time / its longest dependency chain;
//   - x-single: wall time of 20 environments planned together / of one.
//
// The figures and the commands that produced them: BENCHMARKS.md.
// BenchmarkPlanNoChanges in e2e_test.go is issue 2's existing-mode target.

const (
	benchLatency = 50 * time.Millisecond
)

// benchNet is a simulated account for managed-network environments, on
// the clock a benchmark asks for (harness_test.go).
type benchNet struct{ *account }

// newBenchNet makes an empty account on a clock.Virtual (waits take no real
// time until waitsTakeRealTime).
func newBenchNet(tb testing.TB) *benchNet {
	return newBenchNetOn(tb, newTestClock())
}

func newBenchNetOn(tb testing.TB, clk clock.Clock) *benchNet {
	return &benchNet{newAccount(tb, clk, benchKey)}
}

// benchNetworks are the managed networks the plan and apply benchmarks
// measure (BENCHMARKS.md).
var benchNetworks = []struct {
	nat string
	azs int
}{{"single", 2}, {"per-az", 2}, {"per-az", 3}}

// benchClock is a clock an apply benchmark runs on, with the real time a
// simulated second of waiting takes on it.
type benchClock struct {
	name             string
	realPerSimSecond time.Duration
}

// benchClocks: clock.Virtual with RealPerSimSecond at 1 ms per simulated
// second (the project's test clock; its waits are counted in polls, each a
// 50 ms call plus its sleep), and proportionalClock at 10 ms per simulated
// second (a NAT gateway's 90 s pending then takes 0.9 s, 18 calls' worth:
// waits weigh in the apply as they do against AWS).
var benchClocks = []benchClock{{"virtual", time.Millisecond}, {"proportional", 10 * time.Millisecond}}

func (c benchClock) make() clock.Clock {
	if c.name == "proportional" {
		return newProportionalClock(c.realPerSimSecond)
	}
	return newTestClock()
}

// waitsTakeRealTime makes every AWS call from now on take benchLatency, and
// every simulated wait on a clock.Virtual take realPerSimSecond of real time
// per simulated second (a proportionalClock's waits always take real time).
func (x *benchNet) waitsTakeRealTime(realPerSimSecond time.Duration) {
	x.callLatency(benchLatency)
	if v, ok := x.clk.(*clock.Virtual); ok {
		v.RealPerSimSecond = realPerSimSecond
	}
}

// env loads a managed-network environment file (netEnvYAML of
// network_e2e_test.go) named name with the given nat and zone count.
func (x *benchNet) env(name, nat string, azs int) *config.Environment {
	x.tb.Helper()
	return x.managedEnv(name, nat, fmt.Sprint(azs))
}

// proportionalClock is simulated time that runs at a fixed rate against real
// time: perSimSecond of real time per simulated second, for every
// goroutine at once. A simulated wait (a NAT gateway pending for 90 s) then
// takes the same real time however many other steps wait beside it, and
// simulated time passes during AWS calls too. clock.Virtual instead moves
// its time only when someone sleeps, and every concurrent sleeper pushes it
// forward: concurrent waits end sooner than the same wait alone, which
// flatters an apply against its steps measured alone (BENCHMARKS.md).
type proportionalClock struct {
	simStart     time.Time
	realStart    time.Time
	perSimSecond time.Duration
}

func newProportionalClock(perSimSecond time.Duration) *proportionalClock {
	return &proportionalClock{simStart: testStart, realStart: time.Now(), perSimSecond: perSimSecond}
}

func (c *proportionalClock) Now() time.Time {
	real := time.Since(c.realStart)
	return c.simStart.Add(time.Duration(float64(real) / float64(c.perSimSecond) * float64(time.Second)))
}

func (c *proportionalClock) Sleep(ctx context.Context, d time.Duration) error {
	return clock.Real{}.Sleep(ctx, time.Duration(d.Seconds()*float64(c.perSimSecond)))
}

// benchPlansWithoutChanges applies env, then times b.N plans of it with
// benchLatency per AWS call, failing on any change; it reports
// aws-calls/op and returns the wall time of the b.N plans.
func benchPlansWithoutChanges(b *testing.B, x *account, env *config.Environment) time.Duration {
	x.apply(env)
	return benchPlans(b, x, x.stack(env), func(p *engine.Planned) {
		if p.Plan.HasChanges() || len(p.Plan.Unread) > 0 {
			b.Fatalf("a plan right after apply has changes %v or did not read %+v", summary(p.Plan), p.Plan.Unread)
		}
	})
}

// benchPlans times b.N plans of st with benchLatency per AWS call, passing
// each to check; it reports aws-calls/op and prefect-calls/op and returns
// the wall time of the b.N plans.
func benchPlans(b *testing.B, x *account, st *stack.Stack, check func(*engine.Planned)) time.Duration {
	e := x.engine()
	x.callLatency(benchLatency)
	x.resetCalls()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		check(x.planWith(e, st))
	}
	wall := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(x.w.Calls()))/float64(b.N), "aws-calls/op")
	b.ReportMetric(float64(x.prefectCalls())/float64(b.N), "prefect-calls/op")
	return wall
}

func reportRoundTrips(b *testing.B, wall time.Duration, n int) {
	b.ReportMetric(float64(wall)/float64(n)/float64(benchLatency), "round-trips/op")
}

// BenchmarkPlanNoChangesManaged (issue 3): a no-change plan of the full
// managed-network stack right after its apply. Target: within 8 round trips
// (400 ms at 50 ms per call).
func BenchmarkPlanNoChangesManaged(b *testing.B) {
	for _, tc := range benchNetworks {
		b.Run(fmt.Sprintf("nat=%s/azs=%d", tc.nat, tc.azs), func(b *testing.B) {
			x := newBenchNet(b)
			wall := benchPlansWithoutChanges(b, x.account, x.env("bench", tc.nat, tc.azs))
			reportRoundTrips(b, wall, b.N)
		})
	}
}

// timedKind measures the real time each Create, Update and Delete of a
// resource takes, by address.
type timedKind struct {
	resource.Kind
	mu   *sync.Mutex
	took map[string]time.Duration
}

// Capabilities are those of the kind timed: a wrapper that hid them would
// change what the engine does (subnets would get no zone, plans would read
// EC2 resources one by one).
func (k timedKind) Capabilities() resource.Capabilities { return resource.CapabilitiesOf(k.Kind) }

func (k timedKind) add(addr string, start time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.took[addr] += time.Since(start)
}

func (k timedKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	defer k.add(r.Address, time.Now())
	return k.Kind.Create(ctx, x, r, refs)
}

func (k timedKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	defer k.add(r.Address, time.Now())
	return k.Kind.Update(ctx, x, r, live, refs, changed)
}

func (k timedKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	defer k.add(r.Address, time.Now())
	return k.Kind.Delete(ctx, x, r, live)
}

// aloneCache keeps stepDurationsAlone's measurements for the process: the
// testing package calls a benchmark function more than once (b.N = 1 first,
// and once per -count).
var aloneCache sync.Map

// stepDurationsAlone applies env to an empty account one step at a time
// (Concurrency 1), with the benchmark's latency and simulated waits, and
// returns the real time each resource's step took: what it takes when it
// runs alone. A step's waits are its own (a role waits for IAM propagation
// in its create, a NAT gateway until it is available, the service until its
// deployment completes), so a step alone is what it costs on any schedule.
// The measurement is made once per process (aloneCache).
func stepDurationsAlone(b *testing.B, c benchClock, nat string, azs int) map[string]time.Duration {
	b.Helper()
	key := fmt.Sprintf("%s/%s/%d", c.name, nat, azs)
	if took, ok := aloneCache.Load(key); ok {
		return took.(map[string]time.Duration)
	}
	x := newBenchNetOn(b, c.make())
	env := x.env("bench", nat, azs)
	st := x.stack(env)
	took := map[string]time.Duration{}
	var mu sync.Mutex
	ks := map[resource.KindName]resource.Kind{}
	for name, k := range kinds.All() {
		ks[name] = timedKind{Kind: k, mu: &mu, took: took}
	}
	e := &engine.Engine{AWS: awsapi.New(x.w.Config()), Prefect: x.prefectClient(), Clock: x.clk, Kinds: ks, Concurrency: 1}
	p := x.planWith(e, st)
	x.waitsTakeRealTime(c.realPerSimSecond)
	if _, err := e.Apply(context.Background(), p); err != nil {
		b.Fatalf("sequential apply: %v", err)
	}
	aloneCache.Store(key, took)
	return took
}

// criticalPath is the longest chain of st's dependency graph (the engine's:
// a resource's step starts when every resource in its DependsOn is done),
// weighted by each resource's step duration; chain lists it from the root.
func criticalPath(st *stack.Stack, took map[string]time.Duration) (total time.Duration, chain []string) {
	deps := map[string][]string{}
	for _, r := range st.Resources {
		deps[r.Address] = r.DependsOn
	}
	finish := map[string]time.Duration{}
	via := map[string]string{}
	var visit func(a string) time.Duration
	visit = func(a string) time.Duration {
		if f, ok := finish[a]; ok {
			return f
		}
		var ready time.Duration
		for _, d := range deps[a] {
			if f := visit(d); f > ready {
				ready, via[a] = f, d
			}
		}
		finish[a] = ready + took[a]
		return finish[a]
	}
	last := ""
	for _, r := range st.Resources {
		if f := visit(r.Address); f > total {
			total, last = f, r.Address
		}
	}
	for a := last; a != ""; a = via[a] {
		chain = append([]string{fmt.Sprintf("%s %s", a, took[a].Round(time.Millisecond))}, chain...)
	}
	return total, chain
}

// BenchmarkApplyManaged (issue 3): a fresh apply of the full managed stack,
// AWS calls at 50 ms and simulated waits taking real time (benchClocks).
// x-critical-path is its wall time over its longest dependency chain, each
// step weighted by its duration when run alone (stepDurationsAlone). Target
// <= 1.2: IAM, logs, secret and the cluster are created while the network
// is still coming up.
func BenchmarkApplyManaged(b *testing.B) {
	for _, tc := range benchNetworks {
		for _, c := range benchClocks {
			b.Run(fmt.Sprintf("nat=%s/azs=%d/clock=%s", tc.nat, tc.azs, c.name), func(b *testing.B) {
				x0 := newBenchNet(b)
				took := stepDurationsAlone(b, c, tc.nat, tc.azs)
				cp, chain := criticalPath(x0.stack(x0.env("bench", tc.nat, tc.azs)), took)
				b.Logf("steps alone: %s", strings.Join(sortedDurations(took), ", "))
				b.Logf("critical path %s: %s", cp.Round(time.Millisecond), strings.Join(chain, " → "))
				var wall time.Duration
				calls := 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					x := newBenchNetOn(b, c.make())
					env := x.env("bench", tc.nat, tc.azs)
					e := x.engine()
					p := x.planWith(e, x.stack(env))
					x.waitsTakeRealTime(c.realPerSimSecond)
					x.resetCalls()
					b.StartTimer()
					start := time.Now()
					rep, err := e.Apply(context.Background(), p)
					wall += time.Since(start)
					b.StopTimer()
					if err != nil || rep.Status != plan.StatusSucceeded {
						b.Fatalf("apply: %v", err)
					}
					calls += len(x.w.Calls())
				}
				b.ReportMetric(float64(calls)/float64(b.N), "aws-calls/op")
				reportRoundTrips(b, wall, b.N)
				b.ReportMetric(float64(cp)/float64(time.Millisecond), "critical-path-ms")
				b.ReportMetric(float64(wall)/float64(b.N)/float64(cp), "x-critical-path")
			})
		}
	}
}

// benchEnvironments is how many environments the many-environments
// benchmark plans together (issue 3: 20 environments planned together take
// under 2x one).
const benchEnvironments = 20

// BenchmarkPlanManyEnvironments (issue 3): 20 managed-network environments
// planned together, one engine each (as the Action plans every affected
// environment), against one of them planned alone, right after their
// applies. x-single = wall(20) / wall(1); target < 2. ns/op and
// round-trips/op are those of the 20.
//
// accounts=1 puts the 20 environments in one simulated account, as a team
// would; accounts=20 gives each its own. awssim serialises every call of an
// account under one lock (World.Mu) and first brings all of the account's
// lazy state up to the clock, so in one account the simulator's own CPU
// time grows with the number of environments; with an account each, what
// remains is deploybot's (and the SDK's) own concurrency.
func BenchmarkPlanManyEnvironments(b *testing.B) {
	for _, accounts := range []int{1, benchEnvironments} {
		b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
			stacks := make([]*stack.Stack, benchEnvironments)
			engines := make([]*engine.Engine, benchEnvironments)
			var worlds []*benchNet
			var x *benchNet
			for i := range stacks {
				if i < accounts {
					x = newBenchNet(b)
					worlds = append(worlds, x)
				}
				env := x.env(fmt.Sprintf("env%02d", i), "single", 2)
				x.apply(env)
				stacks[i], engines[i] = x.stack(env), x.engine()
			}
			for _, w := range worlds {
				w.callLatency(benchLatency)
				w.resetCalls()
			}
			// The 20 applies leave garbage; collect it before timing so
			// that the first iterations do not pay for the setup.
			runtime.GC()
			planAll := func(n int) {
				var wg sync.WaitGroup
				errs := make([]error, n)
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p, err := engines[i].Plan(context.Background(), stacks[i])
						if err == nil && p.Plan.HasChanges() {
							err = fmt.Errorf("changes: %v", summary(p.Plan))
						}
						errs[i] = err
					}()
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						b.Fatalf("plan %s: %v", stacks[i].Environment, err)
					}
				}
			}
			var one, all time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				start := time.Now()
				planAll(1)
				one += time.Since(start)
				b.StartTimer()
				start = time.Now()
				planAll(benchEnvironments)
				all += time.Since(start)
			}
			b.StopTimer()
			calls, prefectCalls := 0, 0
			for _, w := range worlds {
				calls += len(w.w.Calls())
				prefectCalls += w.prefectCalls()
			}
			b.ReportMetric(float64(calls)/float64(b.N*(benchEnvironments+1)), "aws-calls/env")
			b.ReportMetric(float64(prefectCalls)/float64(b.N*(benchEnvironments+1)), "prefect-calls/env")
			reportRoundTrips(b, all, b.N)
			b.ReportMetric(float64(one)/float64(b.N)/float64(benchLatency), "round-trips-single")
			b.ReportMetric(float64(all)/float64(one), "x-single")
		})
	}
}

// sortedDurations lists took as "address duration", longest first (for
// -v runs that want to see where an apply's time goes).
func sortedDurations(took map[string]time.Duration) []string {
	keys := make([]string, 0, len(took))
	for k := range took {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return took[keys[i]] > took[keys[j]] })
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s %s", k, took[k].Round(time.Millisecond))
	}
	return out
}

var benchKey = fakekey.Prefect("Bench")
