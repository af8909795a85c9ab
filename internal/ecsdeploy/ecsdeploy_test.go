package ecsdeploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/simtest"
)

var bg = context.Background()

// account is a simulated account with a worker stack (internal/simtest):
// network, roles, secret and cluster for one Fargate service, driven
// through the real ECS client.
type account struct {
	t     *testing.T
	clk   *clock.Virtual
	w     *awssim.World
	stack *simtest.WorkerStack
	ecs   *ecs.Client
	svc   Service
}

func newAccount(t *testing.T, opts ...awssim.Option) *account {
	t.Helper()
	world := simtest.New(t, simtest.WithAWS(opts...), simtest.WithPool("ecs-pool"))
	ws := world.NewWorkerStack(t, "staging", "ecs-pool", "")
	return &account{t: t, clk: world.Clock, w: world.AWS, stack: ws, ecs: ws.ECS, svc: Service{Cluster: ws.Cluster, Name: "worker"}}
}

// register makes a revision of the worker's family running image.
func (a *account) register(image string) string {
	a.t.Helper()
	return a.stack.RegisterWorker(a.t, image, fmt.Sprintf("staging-%08x", len(image)), nil)
}

// create starts the service on td, as the service kind does.
func (a *account) create(td string) *Deployment {
	a.t.Helper()
	since := a.clk.Now()
	out, err := a.ecs.CreateService(bg, &ecs.CreateServiceInput{
		Cluster: aws.String(a.svc.Cluster), ServiceName: aws.String(a.svc.Name), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(1), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: a.stack.Subnets, SecurityGroups: []string{a.stack.SecurityGroup}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return &Deployment{Service: a.svc, TaskDefinition: td, Since: since, ID: PrimaryDeploymentID(out.Service.Deployments)}
}

// update points the service at td, as the service kind does.
func (a *account) update(td, previous string) *Deployment {
	a.t.Helper()
	since := a.clk.Now()
	out, err := a.ecs.UpdateService(bg, &ecs.UpdateServiceInput{Cluster: aws.String(a.svc.Cluster), Service: aws.String(a.svc.Name), TaskDefinition: aws.String(td)})
	if err != nil {
		a.t.Fatal(err)
	}
	return &Deployment{Service: a.svc, TaskDefinition: td, Previous: previous, Since: since, ID: PrimaryDeploymentID(out.Service.Deployments)}
}

func (a *account) watcher() *Watcher { return NewWatcher(a.ecs, a.clk) }

func (a *account) wait(d *Deployment, budget time.Duration) (Status, error) {
	return a.watcher().Wait(bg, d, WaitOptions{Interval: 15 * time.Second, Budget: budget})
}

func (a *account) primary() string {
	a.t.Helper()
	v, err := a.watcher().Service(bg, a.svc)
	if err != nil {
		a.t.Fatal(err)
	}
	return v.Primary
}

// endpoints: the simulated account as AWS, and as each kind of endpoint
// without the service deployments API.
var endpoints = []struct {
	name     string
	endpoint awssim.Endpoint // 0: AWS with the API
}{
	{"service deployments API", 0},
	{"LocalStack without it", awssim.LocalStack},
	{"AWS endpoint without it", awssim.AWSUnknownOperation},
	{"moto_server without it", awssim.Moto},
}

// without is the account option that switches the API off on endpoint e.
func without(e awssim.Endpoint) []awssim.Option {
	if e == 0 {
		return nil
	}
	return []awssim.Option{awssim.WithUnsupported(e, "ECS.ListServiceDeployments", "ECS.DescribeServiceDeployments")}
}

func wantSource(e awssim.Endpoint) Source {
	if e == 0 {
		return FromServiceDeployments
	}
	return FromRolloutState
}

// TestWait judges each way a deployment ends, in ECS's own terms, the same
// with the service deployments API and without it (rolloutState).
func TestWait(t *testing.T) {
	t.Parallel()
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			t.Run("first deploy succeeds", func(t *testing.T) {
				t.Parallel()
				a := newAccount(t, without(ep.endpoint)...)
				d := a.create(a.register("prefecthq/prefect-aws:3.1"))
				st, err := a.wait(d, 10*time.Minute)
				if err != nil || st.State != Successful || st.Source != wantSource(ep.endpoint) || st.Running != 1 {
					t.Fatalf("status %+v, err %v", st, err)
				}
			})
			t.Run("an update succeeds", func(t *testing.T) {
				t.Parallel()
				a := newAccount(t, without(ep.endpoint)...)
				v1 := a.register("prefecthq/prefect-aws:3.1")
				if _, err := a.wait(a.create(v1), 10*time.Minute); err != nil {
					t.Fatal(err)
				}
				v2 := a.register("prefecthq/prefect-aws:3.2")
				st, err := a.wait(a.update(v2, v1), 10*time.Minute)
				if err != nil || st.State != Successful || a.primary() != v2 {
					t.Fatalf("status %+v, err %v, primary %s", st, err, a.primary())
				}
			})
			t.Run("the circuit breaker rolls a crash loop back", func(t *testing.T) {
				t.Parallel()
				a := newAccount(t, without(ep.endpoint)...)
				v1 := a.register("prefecthq/prefect-aws:3.1")
				if _, err := a.wait(a.create(v1), 10*time.Minute); err != nil {
					t.Fatal(err)
				}
				v2 := a.register("prefecthq/prefect-aws:3-crashloop")
				st, err := a.wait(a.update(v2, v1), 30*time.Minute)
				f := AsFailure(err)
				if f == nil || f.State != RolledBack || st.State != RolledBack {
					t.Fatalf("status %+v, err %v; want a ROLLBACK_SUCCESSFUL failure", st, err)
				}
				if len(f.StoppedTasks) < 3 || f.StoppedTasks[0].ExitCode == nil || *f.StoppedTasks[0].ExitCode != 1 ||
					f.StoppedTasks[0].StopCode != string(ecstypes.TaskStopCodeEssentialContainerExited) {
					t.Errorf("stopped tasks %+v: want the 3 failed launches, exit code 1", f.StoppedTasks)
				}
				if !strings.Contains(f.Reason, "circuit breaker") || len(f.Events) == 0 {
					t.Errorf("reason %q, events %v", f.Reason, f.Events)
				}
				if a.primary() != v1 {
					t.Errorf("service runs %s, want %s", a.primary(), v1)
				}
			})
			t.Run("a first deploy that fails has nothing to roll back to", func(t *testing.T) {
				t.Parallel()
				a := newAccount(t, without(ep.endpoint)...)
				d := a.create(a.register("example/does-not-exist:1"))
				_, err := a.wait(d, 30*time.Minute)
				f := AsFailure(err)
				if f == nil || f.State != Stopped || len(f.StoppedTasks) == 0 || !strings.Contains(f.Error(), "CannotPullContainerError") {
					t.Fatalf("err %v; want STOPPED with the pull error", err)
				}
				if f.StoppedTasks[0].StopCode != string(ecstypes.TaskStopCodeTaskFailedToStart) {
					t.Errorf("stop code %s", f.StoppedTasks[0].StopCode)
				}
			})
			t.Run("not done within the budget", func(t *testing.T) {
				t.Parallel()
				a := newAccount(t, without(ep.endpoint)...)
				d := a.create(a.register("prefecthq/prefect-aws:3.1"))
				start := a.clk.Now()
				_, err := a.wait(d, 20*time.Second)
				f := AsFailure(err)
				if f == nil || f.State != TimedOut || !strings.Contains(f.Reason, "not done after 20s") {
					t.Fatalf("err %v; want TIMED_OUT after 20s", err)
				}
				if took := a.clk.Now().Sub(start); took > 20*time.Second {
					t.Errorf("waited %s past a 20s budget", took)
				}
			})
			t.Run("a newer deployment replaces it", func(t *testing.T) {
				t.Parallel()
				a := newAccount(t, without(ep.endpoint)...)
				v1 := a.register("prefecthq/prefect-aws:3.1")
				if _, err := a.wait(a.create(v1), 10*time.Minute); err != nil {
					t.Fatal(err)
				}
				d := a.update(a.register("prefecthq/prefect-aws:3.2"), v1)
				w := a.watcher()
				if st, err := w.Look(bg, d); err != nil || st.State.Done() {
					t.Fatalf("first look %+v %v", st, err)
				}
				a.clk.Advance(5 * time.Second)
				a.update(a.register("prefecthq/prefect-aws:3.3"), v1)
				_, err := w.Wait(bg, d, WaitOptions{Interval: 15 * time.Second, Budget: 10 * time.Minute})
				if f := AsFailure(err); f == nil || f.State != Stopped {
					t.Fatalf("err %v; want the replaced deployment STOPPED", err)
				}
			})
		})
	}
}

// TestWaitSaysWhenItFallsBack: the fallback is said once, naming the
// endpoint's answer, and the looks after it read DescribeServices only.
func TestWaitSaysWhenItFallsBack(t *testing.T) {
	t.Parallel()
	a := newAccount(t, without(awssim.LocalStack)...)
	d := a.create(a.register("prefecthq/prefect-aws:3.1"))
	var said []string
	a.w.ResetCalls()
	_, err := a.watcher().Wait(bg, d, WaitOptions{Interval: 15 * time.Second, Budget: 10 * time.Minute,
		Fallback: func(why string) { said = append(said, why) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(said) != 1 || !strings.Contains(said[0], "501") || !strings.Contains(said[0], "InternalFailure") || !strings.Contains(said[0], "rolloutState") {
		t.Fatalf("fallback said %q", said)
	}
	n := map[string]int{}
	for _, c := range a.w.Calls() {
		n[c.Operation]++
	}
	if n["ListServiceDeployments"] != 1 || n["DescribeServiceDeployments"] != 0 || n["DescribeServices"] < 2 {
		t.Errorf("calls %v: want one ListServiceDeployments, then DescribeServices", n)
	}
}

// TestWaitStopsOnAPIErrors: an error that is not an unsupported operation
// (here, a denied call) is the caller's, not a fallback.
func TestWaitStopsOnAPIErrors(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	d := &Deployment{Service: Service{Cluster: "no-such-cluster", Name: "worker"}, TaskDefinition: "td", Since: a.clk.Now()}
	w := a.watcher()
	_, err := w.Wait(bg, d, WaitOptions{Interval: 15 * time.Second, Budget: time.Minute})
	if err == nil || AsFailure(err) != nil || w.Fallback() != "" {
		t.Fatalf("err %v, fallback %q; want the API error and no fallback", err, w.Fallback())
	}
}

// TestRollBack points the service back at the previous revision and
// watches that deployment to SUCCESSFUL, with and without the API.
func TestRollBack(t *testing.T) {
	t.Parallel()
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			a := newAccount(t, without(ep.endpoint)...)
			v1 := a.register("prefecthq/prefect-aws:3.1")
			if _, err := a.wait(a.create(v1), 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			v2 := a.register("prefecthq/prefect-aws:3.2")
			if _, err := a.wait(a.update(v2, v1), 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			w := a.watcher()
			d, err := w.RollBack(bg, a.svc, v1, v2)
			if err != nil {
				t.Fatal(err)
			}
			if d.ID == "" || d.TaskDefinition != v1 || d.Previous != v2 {
				t.Fatalf("rollback deployment %+v", d)
			}
			st, err := w.Wait(bg, d, WaitOptions{Interval: 10 * time.Second, Budget: 10 * time.Minute})
			if err != nil || st.State != Successful || a.primary() != v1 {
				t.Fatalf("status %+v, err %v, primary %s", st, err, a.primary())
			}
			var re interface{ error }
			if _, err := w.RollBack(bg, Service{Cluster: a.svc.Cluster, Name: "gone"}, v1, v2); err == nil || !errors.As(err, &re) {
				t.Errorf("rollback of a missing service: %v", err)
			}
		})
	}
}

// TestStoppedTasks: one revision's stopped tasks, newest first, with
// reasons and exit codes; failures count every failed one, Max bounds the list.
func TestStoppedTasks(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	v1 := a.register("prefecthq/prefect-aws:3.1")
	if _, err := a.wait(a.create(v1), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	v2 := a.register("prefecthq/prefect-aws:3-crashloop")
	d := a.update(v2, v1)
	_, _ = a.wait(d, 30*time.Minute)
	w := a.watcher()
	all, err := w.StoppedTasks(bg, a.svc, TaskFilter{TaskDefinition: v2})
	if err != nil {
		t.Fatal(err)
	}
	if all.Failures < 3 || len(all.Tasks) != all.Failures {
		t.Fatalf("%d failures, %d tasks; want the circuit breaker's 3 or more", all.Failures, len(all.Tasks))
	}
	for i, st := range all.Tasks {
		if st.ExitCode == nil || *st.ExitCode != 1 || st.StoppedReason == "" || st.TaskARN == "" {
			t.Errorf("task %d: %+v", i, st)
		}
	}
	one, err := w.StoppedTasks(bg, a.svc, TaskFilter{TaskDefinition: v2, Max: 1})
	if err != nil || len(one.Tasks) != 1 || one.Failures != all.Failures || one.Tasks[0].TaskARN != all.Tasks[0].TaskARN {
		t.Errorf("Max 1: %+v %v", one, err)
	}
	if none, _ := w.StoppedTasks(bg, a.svc, TaskFilter{TaskDefinition: v1}); none.Failures != 0 {
		t.Errorf("revision 1 (drained, not failed): %+v", none)
	}
}

func TestFailureMessage(t *testing.T) {
	t.Parallel()
	f := &Failure{Service: Service{Cluster: "deploybot-staging", Name: "worker"}, State: RolledBack, Reason: "circuit breaker",
		StoppedTasks: []plan.StoppedTask{{StoppedReason: "Essential container in task exited", ContainerReason: "exit 1"}},
		Events:       []Event{{Message: "(service worker) rolling back to deployment ecs-svc/1"}}}
	want := "ECS deployment of deploybot-staging/worker ended ROLLBACK_SUCCESSFUL: circuit breaker; stopped task: Essential container in task exited (exit 1); event: (service worker) rolling back to deployment ecs-svc/1"
	if got := f.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
