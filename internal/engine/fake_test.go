package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// fakeSpec is the desired state of a fake resource.
type fakeSpec struct {
	Attrs     map[string]string
	ForceNew  map[string]bool
	Sensitive map[string]bool
	// Uses maps an attr path to "address.output" of a dependency.
	Uses map[string]string
	// NewARNOnUpdate: an update gives a new "arn" (like a task definition revision).
	NewARNOnUpdate bool
}

type fakeObj struct {
	id    string
	gen   int
	attrs map[string]string
	ours  bool
}

// fakeAccount is an in-memory account for fake kinds: it logs every write,
// measures how many writes run at once, and fails or throttles on request.
type fakeAccount struct {
	mu      sync.Mutex
	objs    map[string]*fakeObj
	log     []string
	created map[string]int // creates per address: ids stay deterministic under concurrency
	running int
	maxRun  int
	// fail["create b.x"] makes that write fail.
	fail map[string]error
	// throttle["create b.x"] is how many times that write is throttled first.
	throttle map[string]int
	// barrier, when > 0, makes each create wait until that many creates run at
	// once (or every expected one has started), proving concurrency.
	barrier     int
	barrierCond *sync.Cond
	timedOut    bool
}

// setBarrier makes creates wait for n of them to run at once; a guard ends
// the wait after 5s so that a missing concurrency fails the test instead of
// hanging it (not a timing assertion).
func (a *fakeAccount) setBarrier(t *testing.T, n int) {
	a.barrier = n
	timer := time.AfterFunc(5*time.Second, func() {
		a.mu.Lock()
		a.timedOut = true
		a.barrierCond.Broadcast()
		a.mu.Unlock()
	})
	t.Cleanup(func() { timer.Stop() })
}

func newFakeAccount() *fakeAccount {
	a := &fakeAccount{objs: map[string]*fakeObj{}, created: map[string]int{}, fail: map[string]error{}, throttle: map[string]int{}}
	a.barrierCond = sync.NewCond(&a.mu)
	return a
}

func (a *fakeAccount) writes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.log...)
}

func (a *fakeAccount) begin(op, addr string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := op + " " + addr
	if n := a.throttle[key]; n > 0 {
		a.throttle[key] = n - 1
		return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	}
	if err := a.fail[key]; err != nil {
		return err
	}
	a.running++
	a.maxRun = max(a.maxRun, a.running)
	if op == "create" && a.barrier > 0 {
		a.barrierCond.Broadcast()
		for a.maxRun < a.barrier && !a.timedOut {
			a.barrierCond.Wait()
		}
	}
	return nil
}

func (a *fakeAccount) end(op, addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running--
	a.log = append(a.log, op+" "+addr)
}

type fakeKind struct{ a *fakeAccount }

func spec(r *resource.Resource) *fakeSpec { return r.Spec.(*fakeSpec) }

func (k fakeKind) outputs(o *fakeObj) resource.Outputs {
	return resource.Outputs{"id": o.id, "arn": fmt.Sprintf("arn:%s:%d", o.id, o.gen)}
}

func (k fakeKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	k.a.mu.Lock()
	defer k.a.mu.Unlock()
	o := k.a.objs[r.Address]
	if o == nil {
		return nil, nil
	}
	s := spec(r)
	attrs := resource.Attrs{}
	for p, v := range o.attrs {
		attrs[p] = resource.Attr{Value: v, ForceNew: s.ForceNew[p], Sensitive: s.Sensitive[p]}
	}
	return &resource.Live{ID: o.id, Ours: o.ours, Attrs: attrs, Outputs: k.outputs(o)}, nil
}

func (k fakeKind) Desired(r *resource.Resource, refs resource.Refs) (resource.Attrs, error) {
	return k.attrs(r, refs), nil
}

func (k fakeKind) attrs(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := spec(r)
	attrs := resource.Attrs{}
	for p, v := range s.Attrs {
		attrs[p] = resource.Attr{Value: v, ForceNew: s.ForceNew[p], Sensitive: s.Sensitive[p]}
	}
	for p, use := range s.Uses {
		i := strings.LastIndex(use, ".")
		attrs[p] = resource.Attr{Value: refs.Get(use[:i], use[i+1:]), ForceNew: s.ForceNew[p]}
	}
	return attrs
}

func (k fakeKind) materialise(r *resource.Resource, refs resource.Refs) map[string]string {
	out := map[string]string{}
	for p, a := range k.attrs(r, refs) {
		out[p] = a.Value
	}
	return out
}

func (k fakeKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	if err := k.a.begin("create", r.Address); err != nil {
		return nil, err
	}
	defer k.a.end("create", r.Address)
	for p, v := range k.materialise(r, refs) {
		if v == plan.Unknown {
			return nil, fmt.Errorf("create %s: %s is unknown at apply time", r.Address, p)
		}
	}
	k.a.mu.Lock()
	defer k.a.mu.Unlock()
	if k.a.objs[r.Address] != nil {
		return nil, &smithy.GenericAPIError{Code: "ResourceAlreadyExistsException", Message: r.Address + " exists"}
	}
	k.a.created[r.Address]++
	o := &fakeObj{id: fmt.Sprintf("%s-%d", r.Name, k.a.created[r.Address]), gen: 1, attrs: k.materialise(r, refs), ours: true}
	k.a.objs[r.Address] = o
	return k.outputs(o), nil
}

func (k fakeKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	if err := k.a.begin("update", r.Address); err != nil {
		return nil, err
	}
	defer k.a.end("update", r.Address)
	k.a.mu.Lock()
	defer k.a.mu.Unlock()
	o := k.a.objs[r.Address]
	o.attrs = k.materialise(r, refs)
	if spec(r).NewARNOnUpdate {
		o.gen++
	}
	return k.outputs(o), nil
}

func (k fakeKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if err := k.a.begin("delete", r.Address); err != nil {
		return err
	}
	defer k.a.end("delete", r.Address)
	k.a.mu.Lock()
	defer k.a.mu.Unlock()
	delete(k.a.objs, r.Address)
	return nil
}

// fakeTaskDefKind says that its updates change "arn", as a task definition's do.
type fakeTaskDefKind struct{ fakeKind }

func (fakeTaskDefKind) OutputsChangedByUpdate(*resource.Resource) []string { return []string{"arn"} }

type fakeSTS struct {
	awsapi.STSAPI
	account string
}

func (f fakeSTS) GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String(f.account)}, nil
}

// progressLog records progress lines as a terminal shows them.
type progressLog struct{ event.Recorder }

func (p *progressLog) all() []string { return p.Lines() }

type fixture struct {
	acct     *fakeAccount
	eng      *Engine
	env      *config.Environment
	progress *progressLog
	clk      *clock.Virtual
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	acct := newFakeAccount()
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pl := &progressLog{}
	k := fakeKind{acct}
	eng := &Engine{
		AWS:    &awsapi.Clients{STS: fakeSTS{account: "123456789012"}},
		Clock:  clk,
		Kinds:  map[resource.KindName]resource.Kind{"fake": k, "fake_taskdef": fakeTaskDefKind{k}},
		Events: pl,
	}
	env := &config.Environment{Name: "test", File: "environments/test.yaml",
		AWS: config.AWS{AccountID: "123456789012", Region: "us-east-1"}, Network: config.Network{Mode: "existing"}}
	return &fixture{acct: acct, eng: eng, env: env, progress: pl, clk: clk}
}

// res builds a fake resource "fake.NAME".
func res(name string, attrs map[string]string, deps ...string) resource.Resource {
	s := &fakeSpec{Attrs: attrs, ForceNew: map[string]bool{}, Sensitive: map[string]bool{}, Uses: map[string]string{}}
	for _, d := range deps {
		s.Uses["uses."+d] = d + ".arn"
	}
	return resource.Resource{Address: "fake." + name, Kind: "fake", Name: name, DependsOn: deps, Spec: s}
}

// stack is the fixture's environment with rs as its resources and
// leftovers as what it no longer asks for.
func (f *fixture) stack(rs []resource.Resource, leftovers ...resource.Resource) *stack.Stack {
	st := &stack.Stack{Environment: f.env.Name, File: f.env.File, Account: f.env.AWS.AccountID, Region: f.env.AWS.Region,
		Resources: rs, Leftovers: leftovers}
	if f.env.Protect {
		st.Guards = append(st.Guards, stack.ProtectGuard(f.env.Name, f.env.File, f.env.Lines["protect"]))
	}
	return st
}

func (f *fixture) plan(t *testing.T, rs []resource.Resource) *Planned {
	t.Helper()
	p, err := f.eng.plan(context.Background(), f.stack(rs), plan.OpApply)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func (f *fixture) planDestroy(t *testing.T, rs []resource.Resource) *Planned {
	t.Helper()
	p, err := f.eng.plan(context.Background(), f.stack(rs), plan.OpDestroy)
	if err != nil {
		t.Fatalf("plan destroy: %v", err)
	}
	return p
}

func (f *fixture) apply(t *testing.T, rs []resource.Resource) *plan.Report {
	t.Helper()
	r, err := f.eng.Apply(context.Background(), f.plan(t, rs))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return r
}

func actions(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Action.Symbol()+" "+c.Address)
	}
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
