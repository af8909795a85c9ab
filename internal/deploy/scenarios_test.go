package deploy_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
)

// The deploy scenarios of issue 10, through the real apply, gate, simulated
// ECS and simulated Prefect (whose workers run flow runs with the AWS SDK
// against the simulated account): a good deploy, a revision whose worker
// never reaches Prefect, a crash-looping image, and a revision whose worker
// is ONLINE but whose flow runs cannot start. For each, what the pool went
// through (the seconds it had no ONLINE worker of a revision that can run
// flows) and how long from the merge to the verdict. The figures are in
// internal/engine/BENCHMARKS.md (BenchmarkDeployScenarios); the test holds
// the outcomes and the pool never being without a working worker.

// scenario is one deploy over revision 1 (prefecthq/prefect-aws:3.1).
type scenario struct {
	name string
	// image is revision 2's worker image, flowImage its flow runs' image
	// ("" = the worker's), behavior how the image runs.
	image, flowImage string
	behavior         *awssim.ImageBehavior
	flowBehavior     *awssim.ImageBehavior
	// want: the apply's status, exit code, and who rolled back.
	status   plan.Status
	exit     exit.Code
	byECS    bool
	reasonIn string
	// workerWorks: revision 2's worker itself can run flows (only what the
	// smoke run proves is broken), so it counts as a working worker while
	// the pool keeps its defaults.
	workerWorks bool
}

var scenarios = []scenario{
	{name: "a good deploy", image: "prefecthq/prefect-aws:3.2", status: plan.StatusSucceeded, exit: 0,
		reasonIn: "COMPLETED", workerWorks: true},
	{name: "a worker that never reaches Prefect", image: "prefecthq/prefect-aws:3-no-prefect", behavior: &awssim.ImageBehavior{NoHeartbeat: true},
		status: plan.StatusRolledBack, exit: 3, byECS: true, reasonIn: "circuit breaker"},
	{name: "a crash-looping image", image: "prefecthq/prefect-aws:3-crash", behavior: &awssim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1},
		status: plan.StatusRolledBack, exit: 3, byECS: true, reasonIn: "circuit breaker"},
	{name: "a crash loop after registering", image: "prefecthq/prefect-aws:3-crashloop", // awssim's: exits 20 s after starting
		status: plan.StatusRolledBack, exit: 3, byECS: true, reasonIn: "circuit breaker"},
	// The deploy also points the flow runs at an image no registry has (a
	// mistyped tag): the worker registers and ECS calls it healthy, but the
	// smoke flow run cannot start. A change to the pool's defaults takes
	// effect for the whole pool at once, the old worker's runs included, so
	// the apply writes them only after the smoke run passed with them (the
	// smoke deployment carries them as its job variables): the failed gate
	// leaves the pool as it was, and every worker's flow runs keep working.
	{name: "a worker online whose flow runs cannot start", image: "prefecthq/prefect-aws:3.2", flowImage: "prefecthq/prefect:3-flows-does-not-exist",
		status: plan.StatusRolledBack, exit: 3, reasonIn: "smoke flow run", workerWorks: true},
}

// outcome is what one scenario measured.
type outcome struct {
	res *deploy.Result
	err error
	// gap is how long the pool had no ONLINE worker of a working revision,
	// verdict the time from the merge (the apply's start) to its end.
	gap, verdict time.Duration
	// after is how a flow run after a rollback ended, and on which worker;
	// prev is revision 1's worker prefix.
	after, prev string
	// poolWrites counts the PATCHes of the work pool (with a flowImage).
	poolWrites int
}

// run deploys revision 1, then the scenario's revision 2.
func (sc scenario) run(t testing.TB) outcome {
	x := newE2E(t)
	if sc.behavior != nil {
		x.w.SetImageBehavior(sc.image, *sc.behavior)
	}
	ctx := context.Background()
	if res, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1")); err != nil || res.Report.Status != plan.StatusSucceeded {
		t.Fatalf("revision 1: %v %+v", err, res.Report)
	}
	x.clk.Advance(time.Minute)
	o := x.options(sc.image)
	if sc.flowImage != "" {
		o.Env.FlowRuns.Image = sc.flowImage
	}
	start := x.clk.Now()
	res, err := deploy.Apply(ctx, o)
	x.noLeak(res, err)
	end := x.clk.Now()
	// revision 1's prefix, and revision 2's when it works
	good := []string{prefixOf(t, res.Report.Deployment.PreviousTaskDefinition, x)}
	if sc.workerWorks {
		good = append(good, res.Report.Deployment.WorkerPrefix)
	}
	// A flow image no registry has breaks every worker's flow runs from
	// the PATCH that sets it until the PATCH that puts the old one back.
	var broken [][2]time.Time
	var patches []time.Time
	if sc.flowImage != "" {
		for _, r := range x.sim.Requests() {
			if r.Method == "PATCH" && strings.HasSuffix(r.Path, "/work_pools/demo-pool") && !r.At.Before(start) {
				patches = append(patches, r.At)
			}
		}
		for i := 0; i < len(patches); i += 2 {
			until := end.Add(time.Second)
			if i+1 < len(patches) {
				until = patches[i+1]
			}
			broken = append(broken, [2]time.Time{patches[i], until})
		}
	}
	out := outcome{res: res, err: err, verdict: end.Sub(start), gap: x.gap(start, end, good, broken), prev: good[0], poolWrites: len(patches)}
	if sc.status == plan.StatusRolledBack {
		out.after = x.flowRunAfter(t)
	}
	return out
}

// flowRunAfter runs a team's deployment of the smoke flow (the smoke
// deployment's flow and pull step, but no job variables of its own: only
// the pool's defaults) after the apply and says how it ended: flow runs
// must work on the revision and with the pool the rollback left.
func (x *e2e) flowRunAfter(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	c, err := prefect.New(x.sim.URL(), key, prefect.WithClock(x.clk))
	if err != nil {
		t.Fatal(err)
	}
	smoke, err := c.ReadDeploymentByName(ctx, "deploybot-smoke", "demo")
	if err != nil || smoke == nil || smoke.Entrypoint == nil || smoke.WorkPoolName == nil {
		t.Fatalf("smoke deployment: %+v, %v", smoke, err)
	}
	d, _, err := c.UpsertDeployment(ctx, prefect.DeploymentCreate{Name: "a team's", FlowID: smoke.FlowID, WorkPoolName: *smoke.WorkPoolName,
		Entrypoint: *smoke.Entrypoint, PullSteps: smoke.PullSteps, Parameters: map[string]any{},
		ParameterOpenAPISchema: map[string]any{"type": "object", "properties": map[string]any{}}, EnforceParameterSchema: true,
		JobVariables: map[string]any{}, Tags: []string{}, Labels: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := c.CreateFlowRun(ctx, d.ID, prefect.FlowRunCreate{Name: "after the rollback", Parameters: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60 && !prefect.Terminal(r.StateType); i++ {
		x.clk.Advance(5 * time.Second)
		if r, err = c.ReadFlowRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	return r.StateType + " on " + r.WorkerName()
}

// gap counts the seconds in [from, to] at which the pool had no ONLINE
// worker whose name starts with one of the good prefixes, or none could
// run flows (an instant inside one of the broken windows).
func (x *e2e) gap(from, to time.Time, good []string, broken [][2]time.Time) time.Duration {
	var without time.Duration
	for at := from; !at.After(to); at = at.Add(time.Second) {
		inBroken := false
		for _, w := range broken {
			inBroken = inBroken || !at.Before(w[0]) && at.Before(w[1])
		}
		if inBroken {
			without += time.Second
			continue
		}
		ok := false
		for _, name := range x.sim.WorkersOnlineAt("demo-pool", at) {
			for _, p := range good {
				ok = ok || strings.HasPrefix(name, p+"-")
			}
		}
		if !ok {
			without += time.Second
		}
	}
	return without
}

// prefixOf is a revision's worker prefix, read from its task definition.
func prefixOf(t testing.TB, td string, x *e2e) string {
	t.Helper()
	for _, task := range x.w.Tasks() {
		if task.TaskDefinitionARN == td && task.Env["DEPLOYBOT_WORKER_PREFIX"] != "" {
			return task.Env["DEPLOYBOT_WORKER_PREFIX"]
		}
	}
	t.Fatalf("no task of %s", td)
	return ""
}

func TestDeployScenarios(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			o := sc.run(t)
			rep := o.res.Report
			if got := exit.CodeOf(o.err); got != sc.exit || rep.Status != sc.status {
				t.Fatalf("exit %d, status %s, want %d %s: %v\ngate %+v", got, rep.Status, sc.exit, sc.status, o.err, rep.Gate)
			}
			g := rep.Gate
			if g == nil || !strings.Contains(g.Reason, sc.reasonIn) {
				t.Fatalf("gate %+v, want its reason to name %q", g, sc.reasonIn)
			}
			if sc.status == plan.StatusRolledBack {
				if g.Rollback == nil || g.Rollback.ByECS != sc.byECS || !g.RestoredWorkerOnline {
					t.Fatalf("rollback %+v (by ECS: want %v)", g.Rollback, sc.byECS)
				}
			}
			if sc.flowImage != "" {
				fr := g.FlowRun
				if fr == nil || fr.State == "COMPLETED" || fr.Worker == "" || !fr.NewRevision || fr.Task == "" {
					t.Fatalf("flow run %+v", fr)
				}
				// The smoke run failed with the new defaults: the pool never got them.
				if o.poolWrites != 0 {
					t.Errorf("the work pool was written %d times by a deploy whose smoke run failed", o.poolWrites)
				}
			}
			if sc.status == plan.StatusRolledBack {
				if !strings.HasPrefix(o.after, "COMPLETED on "+o.prev+"-") {
					t.Errorf("a flow run after the rollback: %s, want COMPLETED on a worker of %s", o.after, o.prev)
				}
			}
			if o.gap != 0 {
				t.Errorf("the pool had no ONLINE worker that could run flows for %s (merge to verdict %s)", o.gap, o.verdict)
			}
			t.Logf("%s: %s; without a working worker %s; merge to verdict %s", sc.name, rep.Status, o.gap, o.verdict)
		})
	}
}

// BenchmarkDeployScenarios reports, per scenario, the seconds the pool had
// no ONLINE worker that could run flows and the simulated time from the
// merge to the verdict (internal/engine/BENCHMARKS.md).
func BenchmarkDeployScenarios(b *testing.B) {
	for _, sc := range scenarios {
		b.Run(strings.ReplaceAll(sc.name, " ", "_"), func(b *testing.B) {
			var gap, verdict time.Duration
			for i := 0; i < b.N; i++ {
				o := sc.run(b)
				if got := o.res.Report.Status; got != sc.status {
					b.Fatalf("%s: status %s, want %s", sc.name, got, sc.status)
				}
				gap, verdict = o.gap, o.verdict
			}
			b.ReportMetric(gap.Seconds(), "s-without-worker")
			b.ReportMetric(verdict.Seconds(), "s-merge-to-verdict")
		})
	}
}

// overhead is what an apply adds to what AWS and Prefect take: the apply's
// time (simulated, from its start to its verdict) minus the ECS rollout
// (the service deployment's createdAt to its finishedAt, as ECS reports
// them) and minus the smoke flow run's own time (its creation to its end,
// as Prefect reports them).
type overhead struct {
	apply, rollout, flowRun time.Duration
}

func (o overhead) added() time.Duration { return o.apply - o.rollout - o.flowRun }

// imageUpdate applies revision 1 (fresh: its IAM roles are created), then
// an image update, and measures both.
func imageUpdate(t testing.TB, flowRun bool) (fresh, update overhead) {
	x := newE2E(t)
	ctx := context.Background()
	measure := func(image string) overhead {
		o := x.options(image)
		o.Env.HealthGate.FlowRun = &flowRun
		start := x.clk.Now()
		res, err := deploy.Apply(ctx, o)
		if err != nil || res.Report.Status != plan.StatusSucceeded {
			t.Fatalf("%s: %v %+v", image, err, res.Report)
		}
		m := overhead{apply: x.clk.Now().Sub(start)}
		d := res.Report.Deployment
		out, err := o.Engine.AWS.ECS.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{d.ARN}})
		if err != nil || len(out.ServiceDeployments) != 1 || out.ServiceDeployments[0].FinishedAt == nil {
			t.Fatalf("service deployment %s: %v %+v", d.ARN, err, out)
		}
		sd := out.ServiceDeployments[0]
		m.rollout = sd.FinishedAt.Sub(*sd.CreatedAt)
		if fr := res.Report.Gate.FlowRun; fr != nil {
			m.flowRun = fr.Duration
		} else if flowRun {
			t.Fatalf("no smoke flow run: %+v", res.Report.Gate)
		}
		return m
	}
	fresh = measure("prefecthq/prefect-aws:3.1")
	x.clk.Advance(time.Minute)
	return fresh, measure("prefecthq/prefect-aws:3.2")
}

// BenchmarkApplyOverhead reports what deploybot adds to an apply beyond
// the ECS rollout and the smoke flow run (issue 10 item 5: at most 5 s for
// an image update), with and without the smoke flow run, for a fresh
// apply and an image update (internal/engine/BENCHMARKS.md).
func BenchmarkApplyOverhead(b *testing.B) {
	for _, flowRun := range []bool{true, false} {
		b.Run(fmt.Sprintf("flow_run=%v", flowRun), func(b *testing.B) {
			var fresh, update overhead
			for i := 0; i < b.N; i++ {
				fresh, update = imageUpdate(b, flowRun)
			}
			b.ReportMetric(update.added().Seconds(), "s-added-update")
			b.ReportMetric(update.apply.Seconds(), "s-apply-update")
			b.ReportMetric(update.rollout.Seconds(), "s-rollout-update")
			b.ReportMetric(update.flowRun.Seconds(), "s-flowrun-update")
			b.ReportMetric(fresh.added().Seconds(), "s-added-fresh")
			b.ReportMetric(fresh.apply.Seconds(), "s-apply-fresh")
		})
	}
}

// TestPrefectOutageKeepsDeployedWorkers (issue 10, Done means): the worker
// as deploybot deploys it (its task definition's own health check) stays
// running through a Prefect outage: once registered, its check defers to
// the worker's /health, which stays 200 for 300 s after the last poll
// (docs/research/prefect-flow-runs.md §E.1). A four-minute outage, short of
// the 12 failed syncs (6 minutes) after which the worker itself exits, must
// not make ECS replace it; after the outage, the same task's worker is
// ONLINE again.
func TestPrefectOutageKeepsDeployedWorkers(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	if res, err := deploy.Apply(context.Background(), x.options("prefecthq/prefect-aws:3.1")); err != nil || res.Report.Status != plan.StatusSucceeded {
		t.Fatalf("deploy: %v %+v", err, res.Report)
	}
	running := func() []string {
		var out []string
		for _, task := range x.w.Tasks() {
			if task.LastStatus == "RUNNING" && task.Env["DEPLOYBOT_WORKER_PREFIX"] != "" {
				out = append(out, task.ARN)
			}
		}
		return out
	}
	before := running()
	if len(before) != 1 {
		t.Fatalf("workers running before the outage: %v", before)
	}
	outage := x.clk.Now()
	x.sim.SetAvailable(false)
	for i := 0; i < 24; i++ {
		x.clk.Advance(10 * time.Second)
		if now := running(); len(now) != 1 || now[0] != before[0] {
			t.Fatalf("%ds into the outage ECS runs %v, want %s still", (i+1)*10, now, before[0])
		}
	}
	x.sim.SetAvailable(true)
	x.clk.Advance(time.Minute)
	for _, task := range x.w.Tasks() {
		if task.Env["DEPLOYBOT_WORKER_PREFIX"] != "" && !task.StoppedAt.IsZero() && task.StoppedAt.After(outage) {
			t.Errorf("a worker task stopped: %s", task.StoppedReason)
		}
	}
	if online := x.sim.WorkersOnlineAt("demo-pool", x.clk.Now()); len(online) == 0 {
		t.Error("no worker ONLINE after the outage")
	}
}

// TestSmokeFlowRunThatNeverStartsIsCancelled: with the work pool paused
// (docs/research/prefect-flow-runs.md §C: workers take no runs of a paused
// pool), the smoke flow run stays SCHEDULED; the gate's wait has its own
// bound, cancels the run, says no worker picked it up, and rolls back.
func TestSmokeFlowRunThatNeverStartsIsCancelled(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	ctx := context.Background()
	if res, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1")); err != nil || res.Report.Status != plan.StatusSucceeded {
		t.Fatalf("revision 1: %v %+v", err, res.Report)
	}
	req, _ := http.NewRequest(http.MethodPatch, x.sim.URL()+"/work_pools/demo-pool", strings.NewReader(`{"is_paused": true}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("pause the pool: %v %v", r, err)
	}
	res, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.2"))
	x.noLeak(res, err)
	if got := exit.CodeOf(err); got != 3 || res.Report.Status != plan.StatusRolledBack {
		t.Fatalf("exit %d, status %s: %v", got, res.Report.Status, err)
	}
	g := res.Report.Gate
	fr := g.FlowRun
	if fr == nil || !fr.Cancelled || fr.Worker != "" || !strings.Contains(g.Reason, "did not finish within") || !strings.Contains(g.Reason, "no worker of work pool") {
		t.Fatalf("gate %s; flow run %+v", g.Reason, fr)
	}
	c, err := prefect.New(x.sim.URL(), key, prefect.WithClock(x.clk))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.ReadFlowRun(ctx, fr.ID); err != nil || r.StateType != prefect.StateCancelled {
		t.Fatalf("the run in Prefect: %+v %v", r, err)
	}
}
