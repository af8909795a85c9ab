package gate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
)

// worldFixture is the gate against the real ECS simulator, driven through the
// real ecs client: a service of revision 1 is running (circuit breaker with
// rollback), revision 2 is deployed with UpdateService, then the gate runs.
// The Prefect simulator's workers come from the world's tasks.
type worldFixture struct {
	clk   *clock.Virtual
	w     *awssim.World
	sim   *prefectsim.Server
	ecs   *ecs.Client
	stack *simtest.WorkerStack
}

func newWorldFixture(t *testing.T, key string, opts ...awssim.Option) *worldFixture {
	t.Helper()
	world := simtest.New(t, simtest.WithPrefectKey(key), simtest.WithPool(testPool), simtest.WithAWS(opts...))
	f := &worldFixture{clk: world.Clock, w: world.AWS, sim: world.Prefect}
	f.stack = world.NewWorkerStack(t, "staging", testPool, "")
	f.ecs = f.stack.ECS
	return f
}

// register follows the worker identity contract (docs/ARCHITECTURE.md).
func (f *worldFixture) register(t *testing.T, image, prefix string) string {
	t.Helper()
	return f.stack.RegisterWorker(t, image, prefix, nil)
}

func (f *worldFixture) createService(t *testing.T, td string) {
	t.Helper()
	f.stack.CreateService(t, td, 1)
}

func (f *worldFixture) writes() []string {
	var out []string
	for _, c := range f.w.Calls() {
		if c.Write {
			out = append(out, c.Service+"."+c.Operation)
		}
	}
	return out
}

// TestGateAgainstTheECSSimulator runs the gate's cases on the simulated
// account: real ECS deployments, circuit breaker, stopped tasks and the
// service deployments API, through the real SDK client.
func TestGateAgainstTheECSSimulator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		image       string
		behavior    *awssim.ImageBehavior // set for image in w.Images
		firstDeploy bool
		waitBefore  time.Duration
		passed      bool
		rolledBack  bool
		restored    bool
		nothing     bool
		updates     int // UpdateService calls by the gate
		reasonHas   string
		stopHas     string
		maxDuration time.Duration
	}{
		{name: "good deploy passes", image: "prefecthq/prefect-aws:0.7.11", passed: true, maxDuration: 2 * time.Minute},
		{name: "never heartbeats: rolled back, old worker back", image: "prefecthq/prefect-aws:hangs",
			behavior: &awssim.ImageBehavior{NoHeartbeat: true}, rolledBack: true, restored: true, updates: 1, reasonHas: "came ONLINE"},
		{name: "crash loop fails fast", image: "prefecthq/prefect-aws:crashloop", rolledBack: true, restored: true, updates: 1,
			reasonHas: "stopped", stopHas: "Essential container", maxDuration: 4 * time.Minute},
		{name: "image pull failure fails fast", image: "prefecthq/prefect-aws:does-not-exist", rolledBack: true, restored: true, updates: 1,
			reasonHas: "CannotPullContainerError", stopHas: "CannotPullContainerError", maxDuration: 4 * time.Minute},
		{name: "circuit breaker rolled back before the gate", image: "prefecthq/prefect-aws:does-not-exist", waitBefore: 10 * time.Minute,
			rolledBack: true, restored: true, updates: 0, reasonHas: "ECS rolled the deployment"},
		{name: "first deploy fails: nothing to roll back to", image: "prefecthq/prefect-aws:hangs", behavior: &awssim.ImageBehavior{NoHeartbeat: true},
			firstDeploy: true, nothing: true, reasonHas: "nothing to roll back to: this was the first deploy"},
	}
	for _, ep := range []struct {
		name string
		opts []awssim.Option
	}{
		{"service deployments API", nil},
		// an endpoint without it: the gate follows rolloutState (issue 11 item 12)
		{"LocalStack without it", []awssim.Option{awssim.WithUnsupported(awssim.LocalStack, "ECS.ListServiceDeployments", "ECS.DescribeServiceDeployments")}},
	} {
		for _, tt := range tests {
			t.Run(ep.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				f := newWorldFixture(t, testKey, ep.opts...)
				if tt.behavior != nil {
					f.w.SetImageBehavior(tt.image, *tt.behavior)
				}
				prev := ""
				v2 := ""
				start := f.clk.Now()
				if tt.firstDeploy {
					v2 = f.register(t, tt.image, prefixV2)
					f.createService(t, v2)
				} else {
					prev = f.register(t, "prefecthq/prefect-aws:0.7.10", prefixV1)
					f.createService(t, prev)
					f.clk.Advance(5 * time.Minute)
					if ws := f.sim.Workers(testPool); len(ws) != 1 || ws[0].Status != "ONLINE" {
						t.Fatalf("revision 1's worker: %+v", ws)
					}
					v2 = f.register(t, tt.image, prefixV2)
					start = f.clk.Now()
					if _, err := f.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker"), TaskDefinition: aws.String(v2)}); err != nil {
						t.Fatal(err)
					}
				}
				f.clk.Advance(tt.waitBefore)
				writesBefore := len(f.writes())
				c, err := prefect.New(f.sim.URL(), testKey, prefect.WithClock(f.clk))
				if err != nil {
					t.Fatal(err)
				}
				var progress []string
				in := Input{WorkPool: testPool, Timeout: 5 * time.Minute, MinWorkers: 1, Previous: prev, PruneEnvironment: "staging",
					Deployment: ecsdeploy.Deployment{Service: ecsdeploy.Service{Cluster: "deploybot-staging", Name: "worker"}, TaskDefinition: v2, Since: start}}
				rep, err := Run(ctx, f.ecs, c, in, Options{Clock: f.clk, Events: lines(func(s string) { progress = append(progress, s) })})
				if err != nil {
					t.Fatalf("gate could not run: %v", err)
				}
				if rep.Passed != tt.passed || rep.RolledBack != tt.rolledBack || rep.RestoredWorkerOnline != tt.restored || rep.NothingToRollBack != tt.nothing {
					t.Fatalf("passed=%v rolledBack=%v restored=%v nothing=%v\nreason: %s\nprogress:\n%s", rep.Passed, rep.RolledBack,
						rep.RestoredWorkerOnline, rep.NothingToRollBack, rep.Reason, strings.Join(progress, "\n"))
				}
				if !strings.Contains(rep.Reason, tt.reasonHas) {
					t.Errorf("reason %q lacks %q", rep.Reason, tt.reasonHas)
				}
				if tt.stopHas != "" && (len(rep.StoppedTasks) == 0 || !strings.Contains(rep.StoppedTasks[0].StoppedReason, tt.stopHas)) {
					t.Errorf("stopped tasks %+v lack %q", rep.StoppedTasks, tt.stopHas)
				}
				if tt.maxDuration > 0 && rep.Duration > tt.maxDuration {
					t.Errorf("gate took %s, want at most %s", rep.Duration, tt.maxDuration)
				}
				if rep.Duration > in.Timeout {
					t.Errorf("gate took %s, more than its timeout %s", rep.Duration, in.Timeout)
				}
				writes := f.writes()[writesBefore:]
				if len(writes) != tt.updates {
					t.Errorf("the gate's AWS writes = %v, want %d UpdateService", writes, tt.updates)
				}
				if rep.RolledBack {
					out, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker"}})
					if err != nil || aws.ToString(out.Services[0].TaskDefinition) != prev {
						t.Errorf("service runs %s after the rollback, want %s (%v)", aws.ToString(out.Services[0].TaskDefinition), prev, err)
					}
				}
				if max := f.sim.MaxRequestsPerMinute(); max > 12 {
					t.Errorf("%d Prefect requests in one minute", max)
				}
			})
		}
	}
}
