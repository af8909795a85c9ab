package gate

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/prefectsim"
)

// fakeECS is a small ECS service model on a virtual clock, enough for the
// gate: rolling deployments (100/200: the new task starts before the old one
// stops), a circuit breaker with rollback (3 failed tasks, docs/research/aws-ecs.md §4.1),
// stopped tasks with reasons, service events, and the service deployments
// API. Its tasks feed the Prefect simulator. Unimplemented ECS operations
// panic through the nil embedded interface, so an unexpected call fails loudly.
type fakeECS struct {
	awsapi.ECSAPI

	mu      sync.Mutex
	clk     clock.Clock
	simNow  time.Time
	cluster string
	service string
	tds     map[string]revision
	deps    []*fakeDeployment // newest first
	tasks   []*fakeTask
	events  []types.ServiceEvent
	calls   []string
	writes  int
	seq     int
	// extra tasks outside the service (e.g. a worker someone runs by hand)
	extra []prefectsim.Task
	// reuseHost: a task of a revision whose first task has stopped gets
	// that task's hostname (Fargate hands a freed private IP out again, and
	// the worker's name ends in the hostname), so its worker row predates it.
	reuseHost bool
	// nextHost gives the next task of a revision (by task definition) that
	// hostname: an IP an earlier task had, long gone.
	nextHost map[string]string
	// onUpdate is called with the task definition of each UpdateService.
	onUpdate func(td string)
}

// revision is a task definition as far as the fake cares.
type revision struct {
	arn      string
	prefix   string
	apiURL   string
	key      string
	auth     string // PREFECT_API_AUTH_STRING for a self-hosted server with basic auth
	pool     string
	internet bool
	behavior prefectsim.ImageBehavior
}

type fakeDeployment struct {
	id, arn, td string
	created     time.Time
	primary     bool
	rollout     types.DeploymentRolloutState
	reason      string
	status      types.ServiceDeploymentStatus
	statusWhy   string
	failures    int
	rollbackOf  *fakeDeployment // the failed deployment this one rolls back
	finished    time.Time
}

type fakeTask struct {
	arn, td, host  string
	dep            *fakeDeployment
	created        time.Time
	started        time.Time // zero until RUNNING
	stopped        time.Time // zero while not stopped
	stopCode       types.TaskStopCode
	stoppedReason  string
	exitCode       *int32
	containerWhy   string
	willFailToPull bool
}

const (
	provisioning = 10 * time.Second // PROVISIONING+PENDING before RUNNING
	stableAfter  = 30 * time.Second // RUNNING this long: the deployment is COMPLETED
	tick         = time.Second
)

func newFakeECS(clk clock.Clock, revs ...revision) *fakeECS {
	f := &fakeECS{clk: clk, simNow: clk.Now(), cluster: "deploybot-staging", service: "worker", tds: map[string]revision{}}
	for _, r := range revs {
		f.tds[r.arn] = r
	}
	return f
}

// deploy starts a deployment of td as UpdateService would, without recording
// a call (the engine's deploy is not the gate's business).
func (f *fakeECS) deploy(td string) *fakeDeployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	return f.startDeployment(td, nil)
}

func (f *fakeECS) startDeployment(td string, rollbackOf *fakeDeployment) *fakeDeployment {
	f.seq++
	d := &fakeDeployment{
		id:  fmt.Sprintf("ecs-svc/%019d", f.seq),
		arn: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:service-deployment/%s/%s/d%d", f.cluster, f.service, f.seq),
		td:  td, created: f.simNow, primary: true, rollout: types.DeploymentRolloutStateInProgress,
		status: types.ServiceDeploymentStatusInProgress, rollbackOf: rollbackOf,
	}
	for _, o := range f.deps {
		o.primary = false
		if o.status == types.ServiceDeploymentStatusInProgress && rollbackOf == nil {
			o.status, o.statusWhy = types.ServiceDeploymentStatusStopped, "Service deployment was superseded by a new one."
		}
	}
	f.deps = append([]*fakeDeployment{d}, f.deps...)
	f.event(fmt.Sprintf("(service %s) has started a deployment (deployment %s) of %s.", f.service, d.id, shortTD(td)))
	return d
}

func (f *fakeECS) event(msg string) {
	f.seq++
	f.events = append([]types.ServiceEvent{{CreatedAt: aws.Time(f.simNow), Id: aws.String(fmt.Sprint(f.seq)), Message: aws.String(msg)}}, f.events...)
}

// advance runs the model second by second up to the clock's now.
func (f *fakeECS) advance() {
	now := f.clk.Now()
	for !f.simNow.After(now) {
		f.step()
		f.simNow = f.simNow.Add(tick)
	}
}

func (f *fakeECS) primary() *fakeDeployment {
	for _, d := range f.deps {
		if d.primary {
			return d
		}
	}
	return nil
}

func (f *fakeECS) step() {
	now := f.simNow
	// task lifecycles
	for _, t := range f.tasks {
		if !t.stopped.IsZero() {
			continue
		}
		rev := f.tds[t.td]
		if t.started.IsZero() && now.Sub(t.created) >= provisioning {
			if t.willFailToPull {
				f.stop(t, types.TaskStopCodeTaskFailedToStart, "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/prefecthq/prefect-aws:nope: not found", nil, "")
				continue
			}
			t.started = now
		}
		if !t.started.IsZero() && rev.behavior.CrashAfter > 0 && now.Sub(t.started) >= rev.behavior.CrashAfter {
			f.stop(t, types.TaskStopCodeEssentialContainerExited, "Essential container in task exited", aws.Int32(rev.behavior.ExitCode), "")
		}
	}
	p := f.primary()
	if p == nil {
		return
	}
	// the primary deployment wants one running task
	var live *fakeTask
	for _, t := range f.tasks {
		if t.dep == p && t.stopped.IsZero() {
			live = t
		}
	}
	if live == nil && p.rollout == types.DeploymentRolloutStateInProgress || live == nil && p.rollout == types.DeploymentRolloutStateCompleted {
		f.seq++
		t := &fakeTask{
			arn: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/%s/%032x", f.cluster, f.seq),
			td:  p.td, host: fmt.Sprintf("ip-10-0-1-%d", f.seq), dep: p, created: now,
			willFailToPull: f.tds[p.td].behavior.PullFails,
		}
		if h, ok := f.nextHost[p.td]; ok {
			t.host = h
			delete(f.nextHost, p.td)
		}
		if f.reuseHost {
			for _, old := range f.tasks {
				if old.td == p.td && !old.stopped.IsZero() {
					t.host = old.host
					break
				}
			}
		}
		f.tasks = append(f.tasks, t)
		f.event(fmt.Sprintf("(service %s) has started 1 tasks: (task %s).", f.service, t.arn[len(t.arn)-32:]))
		return
	}
	if p.rollout == types.DeploymentRolloutStateInProgress && live != nil && !live.started.IsZero() && now.Sub(live.started) >= stableAfter {
		p.rollout = types.DeploymentRolloutStateCompleted
		p.status = types.ServiceDeploymentStatusSuccessful
		p.finished = now
		if p.rollbackOf != nil {
			p.rollbackOf.status = types.ServiceDeploymentStatusRollbackSuccessful
		}
		// drain the other deployments
		for _, t := range f.tasks {
			if t.dep != p && t.stopped.IsZero() {
				f.stop(t, types.TaskStopCodeServiceSchedulerInitiated, "Scaling activity initiated by (deployment "+p.id+")", aws.Int32(0), "")
			}
		}
		var keep []*fakeDeployment
		for _, d := range f.deps {
			if d == p {
				keep = append(keep, d)
			}
		}
		f.deps = keep
		f.event(fmt.Sprintf("(service %s) (deployment %s) deployment completed.", f.service, p.id))
		f.event(fmt.Sprintf("(service %s) has reached a steady state.", f.service))
	}
}

func (f *fakeECS) stop(t *fakeTask, code types.TaskStopCode, reason string, exit *int32, why string) {
	t.stopped, t.stopCode, t.stoppedReason, t.exitCode, t.containerWhy = f.simNow, code, reason, exit, why
	d := t.dep
	if code == types.TaskStopCodeServiceSchedulerInitiated || d == nil || !d.primary || d.rollout != types.DeploymentRolloutStateInProgress {
		if code != types.TaskStopCodeServiceSchedulerInitiated {
			f.event(fmt.Sprintf("(service %s) has stopped 1 running tasks: (task %s).", f.service, t.arn[len(t.arn)-32:]))
		}
		return
	}
	f.event(fmt.Sprintf("(service %s) has stopped 1 running tasks: (task %s).", f.service, t.arn[len(t.arn)-32:]))
	d.failures++
	// circuit breaker: 3 failures with one replica; rollback needs a
	// previous COMPLETED deployment (docs/research/aws-ecs.md §4.1)
	if d.failures >= 3 {
		d.rollout, d.reason = types.DeploymentRolloutStateFailed, "ECS deployment circuit breaker: tasks failed to start."
		f.event(fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", f.service, d.id))
		var prev *fakeDeployment
		for _, o := range f.deps {
			if o != d && o.rollout == types.DeploymentRolloutStateCompleted {
				prev = o
			}
		}
		if prev == nil {
			d.status, d.statusWhy = types.ServiceDeploymentStatusStopped, d.reason
			d.primary = false
			return
		}
		// the service deployment says why, as awssim's and ECS's do
		d.status, d.statusWhy = types.ServiceDeploymentStatusRollbackInProgress, d.reason
		f.event(fmt.Sprintf("(service %s) rolling back to deployment %s.", f.service, prev.id))
		f.startDeployment(prev.td, d)
	}
}

func (f *fakeECS) record(op string, write bool) {
	f.calls = append(f.calls, op)
	if write {
		f.writes++
	}
	f.advance()
}

// Tasks feeds the Prefect simulator (prefectsim.TaskSource).
func (f *fakeECS) Tasks() []prefectsim.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	out := append([]prefectsim.Task(nil), f.extra...)
	for _, t := range f.tasks {
		rev := f.tds[t.td]
		status := "PROVISIONING"
		switch {
		case !t.stopped.IsZero():
			status = "STOPPED"
		case !t.started.IsZero():
			status = "RUNNING"
		}
		out = append(out, prefectsim.Task{
			ARN: t.arn, Cluster: f.cluster, Service: f.service, TaskDefinitionARN: t.td, LastStatus: status, Hostname: t.host,
			Env:       map[string]string{"DEPLOYBOT_WORK_POOL": rev.pool, "DEPLOYBOT_WORKER_PREFIX": rev.prefix, "PREFECT_API_URL": rev.apiURL},
			Secrets:   map[string]string{"PREFECT_API_KEY": rev.key},
			StartedAt: t.started, StoppedAt: t.stopped, Internet: rev.internet, Behavior: rev.behavior,
		})
	}
	return out
}

func (f *fakeECS) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeServices", false)
	svc := types.Service{ServiceName: aws.String(f.service), Events: append([]types.ServiceEvent(nil), f.events...)}
	for _, d := range f.deps {
		st := "ACTIVE"
		if d.primary {
			st = "PRIMARY"
		}
		svc.Deployments = append(svc.Deployments, types.Deployment{Id: aws.String(d.id), Status: aws.String(st), TaskDefinition: aws.String(d.td),
			RolloutState: d.rollout, RolloutStateReason: aws.String(d.reason), CreatedAt: aws.Time(d.created)})
	}
	return &ecs.DescribeServicesOutput{Services: []types.Service{svc}}, nil
}

func (f *fakeECS) ListTasks(ctx context.Context, in *ecs.ListTasksInput, _ ...func(*ecs.Options)) (*ecs.ListTasksOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListTasks", false)
	var arns []string
	for _, t := range f.tasks {
		stopped := !t.stopped.IsZero()
		if stopped == (in.DesiredStatus == types.DesiredStatusStopped) {
			arns = append(arns, t.arn)
		}
	}
	return &ecs.ListTasksOutput{TaskArns: arns}, nil
}

func (f *fakeECS) DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, _ ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeTasks", false)
	if len(in.Tasks) > 100 {
		return nil, fmt.Errorf("InvalidParameterException: too many tasks")
	}
	out := &ecs.DescribeTasksOutput{}
	for _, arn := range in.Tasks {
		for _, t := range f.tasks {
			if t.arn != arn {
				continue
			}
			task := types.Task{TaskArn: aws.String(t.arn), TaskDefinitionArn: aws.String(t.td), CreatedAt: aws.Time(t.created)}
			if !t.stopped.IsZero() {
				task.StoppedAt, task.StopCode, task.StoppedReason = aws.Time(t.stopped), t.stopCode, aws.String(t.stoppedReason)
				c := types.Container{Name: aws.String("worker"), ExitCode: t.exitCode}
				if t.containerWhy != "" {
					c.Reason = aws.String(t.containerWhy)
				}
				task.Containers = []types.Container{c}
			}
			out.Tasks = append(out.Tasks, task)
		}
	}
	return out, nil
}

func (f *fakeECS) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, _ ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("UpdateService", true)
	td := aws.ToString(in.TaskDefinition)
	if _, ok := f.tds[td]; !ok {
		return nil, fmt.Errorf("ClientException: TaskDefinition not found")
	}
	if f.onUpdate != nil {
		f.onUpdate(td)
	}
	f.startDeployment(td, nil)
	return &ecs.UpdateServiceOutput{}, nil
}

func (f *fakeECS) ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListServiceDeployments", false)
	out := &ecs.ListServiceDeploymentsOutput{}
	all := append([]*fakeDeployment(nil), f.deps...)
	for _, t := range f.tasks { // drained deployments stay listed
		if t.dep != nil && !containsDep(all, t.dep) {
			all = append(all, t.dep)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].created.After(all[j].created) })
	for _, d := range all {
		if in.CreatedAt != nil && in.CreatedAt.After != nil && !d.created.After(*in.CreatedAt.After) {
			continue
		}
		out.ServiceDeployments = append(out.ServiceDeployments, types.ServiceDeploymentBrief{
			ServiceDeploymentArn: aws.String(d.arn), CreatedAt: aws.Time(d.created), Status: d.status, StatusReason: aws.String(d.statusWhy)})
	}
	return out, nil
}

func containsDep(l []*fakeDeployment, d *fakeDeployment) bool {
	for _, x := range l {
		if x == d {
			return true
		}
	}
	return false
}

func (f *fakeECS) DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeServiceDeployments", false)
	out := &ecs.DescribeServiceDeploymentsOutput{}
	seen := map[*fakeDeployment]bool{}
	for _, t := range f.tasks {
		if t.dep != nil {
			seen[t.dep] = true
		}
	}
	for _, d := range f.deps {
		seen[d] = true
	}
	for _, arn := range in.ServiceDeploymentArns {
		for d := range seen {
			if d.arn == arn {
				out.ServiceDeployments = append(out.ServiceDeployments, types.ServiceDeployment{
					ServiceDeploymentArn: aws.String(d.arn), CreatedAt: aws.Time(d.created), Status: d.status, StatusReason: aws.String(d.statusWhy)})
			}
		}
	}
	return out, nil
}

func (f *fakeECS) DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeTaskDefinition", false)
	rev, ok := f.tds[aws.ToString(in.TaskDefinition)]
	if !ok {
		return nil, fmt.Errorf("ClientException: Unable to describe task definition")
	}
	return &ecs.DescribeTaskDefinitionOutput{TaskDefinition: &types.TaskDefinition{
		TaskDefinitionArn: aws.String(rev.arn),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("worker"), Environment: []types.KeyValuePair{
			{Name: aws.String("DEPLOYBOT_WORK_POOL"), Value: aws.String(rev.pool)},
			{Name: aws.String("DEPLOYBOT_WORKER_PREFIX"), Value: aws.String(rev.prefix)},
			{Name: aws.String("PREFECT_API_URL"), Value: aws.String(rev.apiURL)},
		}}},
	}}, nil
}
