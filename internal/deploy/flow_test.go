package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/gate"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/stack"
)

// events is the order in which the flow touched the lock, Prefect and AWS.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// specKind stands in for every real kind: a resource's attrs are its spec
// as JSON, so any change of the environment file shows as a change.
type specKind struct {
	ev    *events
	mu    *sync.Mutex
	state map[string]string
	fail  map[string]error
}

func (k specKind) attrs(r *resource.Resource) resource.Attrs {
	b, _ := json.Marshal(r.Spec)
	return resource.Attrs{"spec": {Value: string(b)}}
}

func (k specKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.state[r.Address]
	if !ok {
		return nil, nil
	}
	return &resource.Live{ID: r.Name, Ours: true, Attrs: resource.Attrs{"spec": {Value: v}}, Outputs: k.outputs(r)}, nil
}

func (k specKind) outputs(r *resource.Resource) resource.Outputs {
	o := resource.Outputs{"arn": "arn:" + r.Address, "id": r.Name}
	if r.Kind == ecs.KindService {
		o["task_definition"] = "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:2"
		o["cluster"] = "deploybot-demo"
	}
	return o
}

// deployed hands back the ECS deployment a change of the service starts,
// as the service kind does.
func (k specKind) deployed(x *resource.Ctx, r *resource.Resource) {
	if r.Kind != ecs.KindService || x.Outcome == nil {
		return
	}
	spec, err := ecs.Service.Spec(r)
	if err != nil {
		panic(err)
	}
	x.Outcome(&ecs.Deployment{Info: plan.DeploymentInfo{
		Cluster: "deploybot-demo", Service: "worker", DeploymentID: "ecs-svc/123",
		TaskDefinition:         "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:2",
		PreviousTaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:1",
		StartedAt:              time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Status: "SUCCESSFUL",
		WorkerPrefix: spec.WorkerPrefix,
	}})
}

func (k specKind) Desired(r *resource.Resource, refs resource.Refs) (resource.Attrs, error) {
	return k.attrs(r), nil
}

func (k specKind) write(op string, r *resource.Resource) error {
	k.ev.add(op + " " + r.Address)
	if err := k.fail[op+" "+r.Address]; err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if op == "delete" {
		delete(k.state, r.Address)
	} else {
		k.state[r.Address] = k.attrs(r)["spec"].Value
	}
	return nil
}

func (k specKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	k.deployed(x, r)
	return k.outputs(r), k.write("create", r)
}

func (k specKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	k.deployed(x, r)
	return k.outputs(r), k.write("update", r)
}

func (k specKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	return k.write("delete", r)
}

type stsStub struct{ awsapi.STSAPI }

func (stsStub) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("123456789012")}, nil
}

type prefectStub struct {
	ev        *events
	preflight error
	gate      *plan.GateReport
	gateIn    gate.Input
}

func (p *prefectStub) Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error) {
	p.ev.add("preflight")
	if p.preflight != nil {
		return nil, p.preflight
	}
	return &prefect.Preflight{WorkPoolURL: "https://prefect.example/pool", Warnings: []string{"work pool is paused"}}, nil
}

// API is none: the flow's kinds are stubs that need no Prefect client.
func (p *prefectStub) API() any { return nil }

func (p *prefectStub) Gate(ctx context.Context, ecs awsapi.ECSAPI, in gate.Input, o gate.Options) (*plan.GateReport, error) {
	p.ev.add("gate")
	p.gateIn = in
	if p.gate != nil {
		return p.gate, nil
	}
	return &plan.GateReport{Passed: true, Reason: "ok"}, nil
}

type leaseStub struct{ ev *events }

func (l leaseStub) Release(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	l.ev.add("unlock")
	return nil
}

type flowFixture struct {
	ev      *events
	kind    specKind
	prefect *prefectStub
	opts    Options
}

func newFlow(t *testing.T) *flowFixture {
	ev := &events{}
	k := specKind{ev: ev, mu: &sync.Mutex{}, state: map[string]string{}, fail: map[string]error{}}
	kinds := map[resource.KindName]resource.Kind{}
	for _, name := range []resource.KindName{"security_group", "ecs_cluster", "log_group", "iam_role", "secret", "task_definition",
		"ecs_service", "service_discovery_namespace", "service_discovery_service", "autoscaling_target", "autoscaling_policy",
		"sqs_queue", "event_rule", "prefect_work_pool", "prefect_deployment"} {
		kinds[name] = k
	}
	pf := &prefectStub{ev: ev}
	env := &config.Environment{
		Name: "demo", File: "environments/demo.yaml",
		AWS:     config.AWS{AccountID: "123456789012", Region: "us-east-1"},
		Prefect: config.Prefect{APIURL: "https://prefect.example/api", WorkPool: "demo-pool"},
		Worker:  config.Worker{Image: "prefecthq/prefect-aws:3", CPU: 512, Memory: 1024, DesiredCount: 1, LogRetentionDays: 30},
		Network: config.Network{Mode: "existing", VPCID: "vpc-0a1b2c3d", SubnetIDs: []string{"subnet-0a1b2c3d"}},
	}
	return &flowFixture{ev: ev, kind: k, prefect: pf, opts: Options{
		Env:        env,
		Credential: secret.New("pnu_flowtestkey"),
		Engine:     &engine.Engine{AWS: &awsapi.Clients{STS: stsStub{}}, Clock: clock.NewVirtual(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)), Kinds: kinds},
		Prefect:    pf,
		Lock: func(ctx context.Context, env *config.Environment) (Lease, error) {
			ev.add("lock")
			return leaseStub{ev}, nil
		},
	}}
}

// phases drops the individual resource writes to one "writes" marker.
func phases(log []string) []string {
	var out []string
	for _, l := range log {
		if strings.HasPrefix(l, "create ") || strings.HasPrefix(l, "update ") || strings.HasPrefix(l, "delete ") {
			l = "writes"
		}
		if len(out) > 0 && out[len(out)-1] == l {
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestApplyFlowOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		setup      func(f *flowFixture)
		wantPhases []string
		wantStatus plan.Status
		wantCode   int
	}{
		{
			name:       "good deploy",
			wantPhases: []string{"preflight", "lock", "writes", "gate", "unlock"},
			wantStatus: plan.StatusSucceeded,
		},
		{
			name:       "preflight fails before any write",
			setup:      func(f *flowFixture) { f.prefect.preflight = errors.New("the API key was rejected (401)") },
			wantPhases: []string{"preflight"},
			wantStatus: plan.StatusFailed, wantCode: 1,
		},
		{
			name:       "apply step fails: no gate, lock released",
			setup:      func(f *flowFixture) { f.kind.fail["create ecs_cluster.main"] = errors.New("boom") },
			wantPhases: []string{"preflight", "lock", "writes", "unlock"},
			wantStatus: plan.StatusFailed, wantCode: 1,
		},
		{
			name: "gate fails and rolls back",
			setup: func(f *flowFixture) {
				f.prefect.gate = &plan.GateReport{Passed: false, Reason: "no worker came online", RolledBack: true, RolledBackTo: "deploybot-demo-worker:1"}
			},
			wantPhases: []string{"preflight", "lock", "writes", "gate", "unlock"},
			wantStatus: plan.StatusRolledBack, wantCode: 3,
		},
		{
			name: "lock held: nothing else happens",
			setup: func(f *flowFixture) {
				f.opts.Lock = func(ctx context.Context, env *config.Environment) (Lease, error) {
					f.ev.add("lock")
					return nil, errors.New("environment demo is locked by alice@laptop until 09:30")
				}
			},
			wantPhases: []string{"preflight", "lock"},
			wantStatus: plan.StatusRefused, wantCode: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			res, err := Apply(context.Background(), f.opts)
			if d := cmp.Diff(tt.wantPhases, phases(f.ev.all())); d != "" {
				t.Fatalf("phases (-want +got):\n%s", d)
			}
			if res.Report == nil || res.Report.Status != tt.wantStatus {
				t.Fatalf("report %+v, err %v", res.Report, err)
			}
			if got := int(exit.CodeOf(err)); got != tt.wantCode {
				t.Fatalf("exit code %d, want %d (err %v)", got, tt.wantCode, err)
			}
			if err != nil && res.Report.Error == "" {
				t.Fatal("a failed apply's report has no error")
			}
		})
	}
}

func TestApplyHandsTheDeploymentToTheGate(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	res, err := Apply(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	in := f.prefect.gateIn
	want := gate.Input{
		WorkPool: "demo-pool",
		Deployment: ecsdeploy.Deployment{Service: ecsdeploy.Service{Cluster: "deploybot-demo", Name: "worker"}, ID: "ecs-svc/123",
			TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:2",
			Since:          time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		Previous:         "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:1",
		PruneEnvironment: "demo",
		// health_gate.flow_run's default: the smoke flow run, one per deploy
		FlowRun: &gate.FlowRunInput{Flow: "deploybot-smoke", Deployment: "demo",
			IdempotencyKey: "deploybot-smoke/demo/deploybot-demo-worker:2/ecs-svc/123", RunName: "deploybot-smoke deploybot-demo-worker:2"},
	}
	if !strings.HasPrefix(in.WorkerPrefix, "demo-") || len(in.WorkerPrefix) != len("demo-")+8 {
		t.Fatalf("worker prefix %q", in.WorkerPrefix)
	}
	in.WorkerPrefix = ""
	if diff := cmp.Diff(want, in, cmpopts.IgnoreUnexported(ecsdeploy.Deployment{})); diff != "" {
		t.Fatalf("gate input (-want +got):\n%s", diff)
	}
	if res.Report.Gate == nil || res.Report.Gate.WorkPoolURL != "https://prefect.example/pool" {
		t.Fatalf("gate report %+v", res.Report.Gate)
	}
	if d := cmp.Diff([]string{"work pool is paused"}, res.Warnings); d != "" {
		t.Fatalf("warnings (-want +got):\n%s", d)
	}
	// A second apply changes nothing, starts no deployment, runs no gate.
	f.ev.log = nil
	res, err = Apply(context.Background(), f.opts)
	if err != nil || res.Report.Status != plan.StatusNoChanges {
		t.Fatalf("second apply: %v %+v", err, res.Report)
	}
	if d := cmp.Diff([]string{"preflight", "lock", "unlock"}, f.ev.all()); d != "" {
		t.Fatalf("second apply (-want +got):\n%s", d)
	}
}

func TestApplyRefusesUnreviewedReplacement(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	if _, err := Apply(context.Background(), f.opts); err != nil {
		t.Fatal(err)
	}
	reviewed, err := Plan(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	// The live service now differs in a way the engine can only replace.
	f.kind.mu.Lock()
	f.kind.state["ecs_service.worker"] = "something else"
	f.kind.mu.Unlock()
	f.opts.Engine.Kinds["ecs_service"] = forceNewKind{f.kind}
	f.opts.ReviewedPlan = reviewed.Plan
	f.ev.log = nil
	res, err := Apply(context.Background(), f.opts)
	var se *StaleError
	if !errors.As(err, &se) || res.Report.Status != plan.StatusRefused {
		t.Fatalf("err = %v, report %+v", err, res.Report)
	}
	if _, ok := se.Unreviewed["ecs_service.worker"]; !ok {
		t.Fatalf("unreviewed: %v", se.Unreviewed)
	}
	if d := cmp.Diff([]string{"preflight", "lock", "unlock"}, f.ev.all()); d != "" {
		t.Fatalf("a refused apply did (-want +got):\n%s", d)
	}
}

type forceNewKind struct{ specKind }

func (k forceNewKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	l, err := k.specKind.Read(ctx, x, r)
	if l != nil {
		a := l.Attrs["spec"]
		a.ForceNew = true
		l.Attrs["spec"] = a
	}
	return l, err
}

func (k forceNewKind) Desired(r *resource.Resource, refs resource.Refs) (resource.Attrs, error) {
	a := k.specKind.attrs(r)
	s := a["spec"]
	s.ForceNew = true
	a["spec"] = s
	return a, nil
}

func TestCancelledApplyStillReleasesTheLock(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.opts.Prefect = &cancellingPrefect{prefectStub: f.prefect, cancel: cancel}
	_, err := Apply(ctx, f.opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	log := f.ev.all()
	if log[len(log)-1] != "unlock" {
		t.Fatalf("the lock was not released after SIGTERM: %v", log)
	}
}

// cancellingPrefect cancels the run during preflight, as a SIGTERM would.
type cancellingPrefect struct {
	*prefectStub
	cancel func()
}

func (c *cancellingPrefect) Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error) {
	pf, err := c.prefectStub.Preflight(ctx, env)
	c.cancel()
	return pf, err
}

func TestDestroyFlow(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	if _, err := Apply(context.Background(), f.opts); err != nil {
		t.Fatal(err)
	}
	f.ev.log = nil
	res, err := Destroy(context.Background(), f.opts)
	if err != nil || res.Report.Status != plan.StatusSucceeded {
		t.Fatalf("destroy: %v %+v", err, res.Report)
	}
	if d := cmp.Diff([]string{"lock", "writes", "unlock"}, phases(f.ev.all())); d != "" {
		t.Fatalf("phases (-want +got):\n%s", d)
	}
	if len(f.kind.state) != 0 {
		t.Fatalf("left: %v", f.kind.state)
	}

	f.opts.Env.Protect = true
	f.ev.log = nil
	res, err = Destroy(context.Background(), f.opts)
	var pe *stack.ProtectedError
	if !errors.As(err, &pe) || res.Report.Status != plan.StatusRefused || len(f.ev.all()) != 0 {
		t.Fatalf("protected: %v %+v %v", err, res.Report, f.ev.all())
	}
}
