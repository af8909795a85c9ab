package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/simtest"
)

var key = fakekey.Prefect("Deploy")

var envYAML = configtest.Head{Name: "demo", APIURL: configtest.DemoWorkspace, CreatePool: true}.YAML() + `worker:
  image: IMAGE
  cpu: 512
  memory: 1024
network:
  mode: existing
  vpc_id: VPC
  subnet_ids: [SUBNETS]
  assign_public_ip: true
health_gate:
  timeout: 5m
`

type e2e struct {
	t       testing.TB
	w       *awssim.World
	clk     *clock.Virtual
	sim     *prefectsim.Server
	vpc     string
	subnets []string
	// events are the progress of the runs, which must not carry the key.
	events event.Recorder
}

func newE2E(t testing.TB) *e2e {
	// Workers come from the world's tasks (awssim.World.Tasks).
	world := simtest.New(t, simtest.WithPrefectKey(key), simtest.WithPrefect())
	vpc, subnets := world.AWS.SeedExistingVPC("10.50.0.0/16", 2, true)
	return &e2e{t: t, w: world.AWS, clk: world.Clock, sim: world.Prefect, vpc: vpc, subnets: subnets}
}

func (x *e2e) options(image string) deploy.Options {
	x.t.Helper()
	y := strings.NewReplacer("IMAGE", image, "VPC", x.vpc, "SUBNETS", strings.Join(x.subnets, ", ")).Replace(envYAML)
	env, err := config.Load(configtest.Write(x.t, "demo.yaml", y))
	if err != nil {
		x.t.Fatal(err)
	}
	// The worker in the simulated task reaches the simulated Prefect API
	// only at its address (a loopback http URL, which a file may not name).
	env.Prefect.APIURL = x.sim.URL()
	client, err := deploy.NewPrefect(x.sim.URL(), key, prefect.WithClock(x.clk))
	if err != nil {
		x.t.Fatal(err)
	}
	return deploy.Options{
		Env:        env,
		Credential: secret.New(key),
		Engine:     &engine.Engine{AWS: awsapi.New(x.w.Config()), Clock: x.clk, Kinds: kinds.All()},
		Prefect:    client,
		Force:      true,
		Events:     &x.events,
	}
}

func (x *e2e) noLeak(res *deploy.Result, err error) {
	x.t.Helper()
	var outs []string
	if err != nil {
		outs = append(outs, err.Error())
	}
	b, _ := json.Marshal(res)
	outs = append(outs, string(b))
	if res != nil && res.Report != nil {
		b, _ = json.Marshal(res.Report)
		outs = append(outs, string(b))
	}
	outs = append(outs, x.events.Lines()...)
	for _, o := range outs {
		if strings.Contains(o, key) {
			x.t.Fatalf("the Prefect API key leaked: %s", o)
		}
	}
}

// TestDeployThroughTheGate runs the whole apply against the simulated AWS
// account and Prefect API: a first deploy passes the gate, an update passes
// it with the new revision's worker, a revision that never heartbeats is
// rolled back (exit 3), and destroy leaves nothing behind.
func TestDeployThroughTheGate(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	ctx := context.Background()

	res, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1"))
	x.noLeak(res, err)
	if err != nil {
		t.Fatalf("first deploy: %v\n%s", err, strings.Join(x.events.Lines(), "\n"))
	}
	if res.Report.Status != plan.StatusSucceeded || res.Report.Gate == nil || !res.Report.Gate.Passed {
		t.Fatalf("first deploy report: %+v gate %+v", res.Report, res.Report.Gate)
	}
	// The preflight only reads; the pool is the stack's, created by the
	// apply under the lock.
	if res.Preflight == nil || !res.Preflight.PoolMissing {
		t.Fatalf("preflight: %+v", res.Preflight)
	}
	created := false
	for _, s := range res.Report.Steps {
		created = created || s.Address == "prefect_work_pool.main" && s.Action == plan.Create && s.Status == "done"
	}
	if !created {
		t.Fatalf("the apply did not create the work pool: %+v", res.Report.Steps)
	}

	res, err = deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1"))
	x.noLeak(res, err)
	if err != nil || res.Report.Status != plan.StatusNoChanges || res.Report.Gate != nil {
		t.Fatalf("no-change deploy: %v %+v", err, res.Report)
	}

	res, err = deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.2"))
	x.noLeak(res, err)
	if err != nil || res.Report.Status != plan.StatusSucceeded || !strings.HasSuffix(res.Report.Deployment.TaskDefinition, ":2") {
		t.Fatalf("update: %v %+v", err, res.Report)
	}

	x.w.SetImageBehavior("prefecthq/prefect-aws:silent", awssim.ImageBehavior{NoHeartbeat: true})
	res, err = deploy.Apply(ctx, x.options("prefecthq/prefect-aws:silent"))
	x.noLeak(res, err)
	if exit.CodeOf(err) != exit.GateFailed || res.Report.Status != plan.StatusRolledBack {
		t.Fatalf("silent revision: exit %d, %v, %+v", exit.CodeOf(err), err, res.Report)
	}
	if g := res.Report.Gate; g == nil || !g.RolledBack || !strings.HasSuffix(g.RolledBackTo, ":2") {
		t.Fatalf("gate: %+v", res.Report.Gate)
	}

	res, err = deploy.Destroy(ctx, x.options("prefecthq/prefect-aws:3.2"))
	x.noLeak(res, err)
	if err != nil || res.Report.Status != plan.StatusSucceeded {
		t.Fatalf("destroy: %v %+v", err, res.Report)
	}
	x.clk.Advance(time.Minute) // the force-deleted secret's purge
	if left := x.w.TaggedFor("demo"); len(left) != 0 {
		t.Fatalf("destroy left %+v", left)
	}
}

func TestBadKeyFailsPreflightWithoutAWSWrite(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	o := x.options("prefecthq/prefect-aws:3.1")
	client, err := deploy.NewPrefect(x.sim.URL(), "pnu_wrongkey", prefect.WithClock(x.clk))
	if err != nil {
		t.Fatal(err)
	}
	o.Prefect = client
	x.w.ResetCalls()
	res, err := deploy.Apply(context.Background(), o)
	x.noLeak(res, err)
	if err == nil || !strings.Contains(err.Error(), "prefect preflight failed, nothing was changed in AWS") {
		t.Fatalf("err = %v", err)
	}
	// The account check (STS, which changes nothing) comes first; nothing after.
	for _, c := range x.w.CallsBesideAccountCheck() {
		t.Fatalf("%s.%s called after a failed preflight", c.Service, c.Operation)
	}
}

// TestTwoAppliesAtOnce: exactly one proceeds; the other fails fast naming
// the holder, and changes nothing.
func TestTwoAppliesAtOnce(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	type outcome struct {
		res *deploy.Result
		err error
	}
	results := make(chan outcome, 2)
	// Both runs finish preflight before either goes for the lock, so they
	// really race for it; and neither goes on until both have tried, so the
	// winner cannot finish and release before the loser asks (which made
	// the loser see no lock and no changes, 1 run in 30).
	var bothPreflighted, bothTried sync.WaitGroup
	bothPreflighted.Add(2)
	bothTried.Add(2)
	for i := 0; i < 2; i++ {
		o := x.options("prefecthq/prefect-aws:3.1")
		o.Prefect = barrierPrefect{Prefect: o.Prefect, wg: &bothPreflighted}
		ssmLock := deploy.SSMLock(o.Engine.AWS.SSM, x.clk, lock.Holder{Who: fmt.Sprintf("run-%d", i), Run: "test"})
		o.Lock = func(ctx context.Context, env *config.Environment) (deploy.Lease, error) {
			l, err := ssmLock(ctx, env)
			bothTried.Done()
			bothTried.Wait()
			return l, err
		}
		go func() {
			res, err := deploy.Apply(context.Background(), o)
			results <- outcome{res, err}
		}()
	}
	var ok, held int
	for i := 0; i < 2; i++ {
		r := <-results
		x.noLeak(r.res, r.err)
		switch {
		case r.err == nil && r.res.Report.Status == plan.StatusSucceeded:
			ok++
		case lock.IsHeld(r.err) && r.res.Report.Status == plan.StatusRefused:
			held++
			if !strings.Contains(r.err.Error(), "environment demo is locked by run-") {
				t.Fatalf("held error does not name the holder: %v", r.err)
			}
			if len(r.res.Report.Steps) != 0 {
				t.Fatalf("the refused apply did steps: %+v", r.res.Report.Steps)
			}
		default:
			t.Fatalf("unexpected outcome: %v %+v", r.err, r.res.Report)
		}
	}
	if ok != 1 || held != 1 {
		t.Fatalf("%d succeeded, %d refused; want one each", ok, held)
	}
}

type barrierPrefect struct {
	deploy.Prefect
	wg *sync.WaitGroup
}

func (b barrierPrefect) Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error) {
	pf, err := b.Prefect.Preflight(ctx, env)
	b.wg.Done()
	b.wg.Wait()
	return pf, err
}

// TestCrashLoopingRevisionIsReportedWithItsStoppedTasks: when ECS's circuit
// breaker fails the new revision (its tasks crash), the apply is a failed
// gate (exit 3) that names the stopped tasks' reasons and exit codes and
// what ECS rolled back to; a first deploy that crashes has nothing to roll
// back to and says so.
func TestCrashLoopingRevisionIsReportedWithItsStoppedTasks(t *testing.T) {
	t.Parallel()
	for _, first := range []bool{true, false} {
		t.Run(fmt.Sprintf("first=%v", first), func(t *testing.T) {
			x := newE2E(t)
			if !first {
				if _, err := deploy.Apply(context.Background(), x.options("prefecthq/prefect-aws:3.1")); err != nil {
					t.Fatal(err)
				}
			}
			res, err := deploy.Apply(context.Background(), x.options("prefecthq/prefect-aws:3-crashloop"))
			x.noLeak(res, err)
			var gerr *deploy.GateError
			if !errors.As(err, &gerr) || exit.CodeOf(err) != exit.GateFailed {
				t.Fatalf("err = %v (exit %d), want a failed gate, exit 3", err, exit.CodeOf(err))
			}
			rep := res.Report
			if rep.Deployment == nil || rep.Gate == nil || len(rep.Gate.StoppedTasks) == 0 {
				t.Fatalf("report lacks the deployment or the stopped tasks: %+v", rep)
			}
			st := rep.Gate.StoppedTasks[0]
			if st.ExitCode == nil || *st.ExitCode != 1 || st.StoppedReason == "" {
				t.Fatalf("stopped task without reason or exit code: %+v", st)
			}
			if first {
				if !rep.Gate.NothingToRollBack || rep.Status != plan.StatusFailed || !strings.Contains(err.Error(), "nothing to roll back") {
					t.Fatalf("first deploy: status %s, gate %+v, err %v", rep.Status, rep.Gate, err)
				}
				return
			}
			if !rep.Gate.RolledBack || rep.Status != plan.StatusRolledBack || !strings.HasSuffix(rep.Gate.RolledBackTo, ":1") {
				t.Fatalf("status %s, gate %+v", rep.Status, rep.Gate)
			}
		})
	}
}

// TestDeployWithoutTheServiceDeploymentsAPI: apply on an endpoint without
// ListServiceDeployments/DescribeServiceDeployments (LocalStack-style,
// issue 11 item 12) deploys, passes the gate, and reports a crash-looping
// revision rolled back, from the service's deployments[].rolloutState.
func TestDeployWithoutTheServiceDeploymentsAPI(t *testing.T) {
	x := newE2E(t)
	x.w.SetUnsupported(awssim.LocalStack, "ECS.ListServiceDeployments", "ECS.DescribeServiceDeployments")
	ctx := context.Background()
	res, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1"))
	x.noLeak(res, err)
	if err != nil || res.Report.Status != plan.StatusSucceeded || res.Report.Gate == nil || !res.Report.Gate.Passed {
		t.Fatalf("first deploy: %v\n%s", err, strings.Join(x.events.Lines(), "\n"))
	}
	res, err = deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3-crashloop"))
	x.noLeak(res, err)
	if exit.CodeOf(err) != exit.GateFailed || res.Report.Status != plan.StatusRolledBack ||
		res.Report.Gate == nil || !strings.HasSuffix(res.Report.Gate.RolledBackTo, ":1") || len(res.Report.Gate.StoppedTasks) == 0 {
		t.Fatalf("crash loop: exit %d, %v, %+v", exit.CodeOf(err), err, res.Report.Gate)
	}
	if !strings.Contains(strings.Join(x.events.Lines(), "\n"), "rolloutState") {
		t.Errorf("the progress does not say it followed rolloutState")
	}
}

// TestGateTimeoutBoundsTheRollback: health_gate.timeout bounds the whole
// gate, rollback included (issue 11 item 21: with timeout 30s and a previous
// worker that did not come back, the gate reported "failed after 11m1s"
// while holding the lock). The apply fails the gate (exit 3) within 30s of
// the deployment, and the report says the rollback was not confirmed.
func TestGateTimeoutBoundsTheRollback(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	ctx := context.Background()
	if _, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1")); err != nil {
		t.Fatal(err)
	}
	// from now on revision 1's image starts but its worker never reaches
	// Prefect, so the rollback's new task never comes back ONLINE
	x.w.SetImageBehavior("prefecthq/prefect-aws:3.1", awssim.ImageBehavior{NoHeartbeat: true})
	x.w.SetImageBehavior("prefecthq/prefect-aws:silent", awssim.ImageBehavior{NoHeartbeat: true})
	o := x.options("prefecthq/prefect-aws:silent")
	o.Env.HealthGate.Timeout = 30 * time.Second
	res, err := deploy.Apply(ctx, o)
	x.noLeak(res, err)
	g := res.Report.Gate
	if exit.CodeOf(err) != exit.GateFailed || g == nil || g.Passed {
		t.Fatalf("exit %d, %v, gate %+v", exit.CodeOf(err), err, g)
	}
	if g.Duration > 30*time.Second {
		t.Errorf("the gate took %s with health_gate.timeout 30s", g.Duration)
	}
	// The new revision never registers, so ECS's circuit breaker rolls it
	// back during the apply (the health check proves registration) and
	// revision 1's task that never stopped keeps serving; ECS's rollback
	// deployment, whose new task cannot reach Prefect either, fails.
	if g.Rollback == nil || g.RestoredWorkerOnline || !g.Rollback.ByECS ||
		(g.Rollback.Outcome != plan.RollbackNotComplete && g.Rollback.Outcome != plan.RollbackWorkerNotBack && g.Rollback.Outcome != plan.RollbackFailed) {
		t.Fatalf("rollback %+v: want it reported as not confirmed\nreason: %s\ndeployment %+v", g.Rollback, g.Reason, res.Report.Deployment)
	}
	if g.Rollback.Outcome == plan.RollbackFailed {
		if !strings.Contains(g.Reason, "ROLLBACK_FAILED") || !strings.Contains(g.Reason, "still lists the previous revision's worker") {
			t.Errorf("reason %q does not say ECS's rollback failed and the old worker still serves", g.Reason)
		}
	} else if !strings.Contains(g.Reason, "30s") {
		t.Errorf("reason %q does not name the timeout", g.Reason)
	}
}

// TestAnotherAccountIsRefusedFirst is issue 11 item 2 against the simulated
// account and Prefect API: with credentials of another account, apply and
// destroy make no call but STS's GetCallerIdentity: the Prefect preflight
// (which would create the missing work pool, create_work_pool: true) and
// the SSM lock do not run.
func TestAnotherAccountIsRefusedFirst(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"apply", "destroy"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			x := newE2E(t)
			o := x.options("prefecthq/prefect-aws:3.1")
			x.w.Account = "210987654321"
			x.w.ResetCalls()
			x.sim.ResetRequests()
			var err error
			if op == "apply" {
				_, err = deploy.Apply(context.Background(), o)
			} else {
				_, err = deploy.Destroy(context.Background(), o)
			}
			var mismatch *engine.AccountMismatchError
			if !errors.As(err, &mismatch) || mismatch.Got != "210987654321" {
				t.Fatalf("err = %v, want the account mismatch", err)
			}
			for _, c := range x.w.CallsBesideAccountCheck() {
				t.Errorf("%s.%s was called with another account's credentials", c.Service, c.Operation)
			}
			if n := len(x.sim.Requests()); n != 0 {
				t.Errorf("%d Prefect requests before the account check", n)
			}
			if st := x.sim.PoolStatus("demo-pool"); st != "" {
				t.Errorf("the work pool was created (%s)", st)
			}
		})
	}
}
