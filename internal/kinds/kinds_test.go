package kinds_test

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/kinds/logs"
	"github.com/deploybot/deploybot/internal/kinds/secretsmanager"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/simtest"
	"github.com/deploybot/deploybot/internal/stack"
)

var computeKey = fakekey.Prefect("Compute")

// computeWorld is a simulated account with an existing VPC, the desired
// stack of an existing-mode environment in it, and a tiny engine (ensure)
// that creates a resource after its dependencies.
type computeWorld struct {
	t       testing.TB
	w       *awssim.World
	clk     *clock.Virtual
	x       *resource.Ctx
	env     *config.Environment
	st      *stack.Stack
	kinds   map[resource.KindName]resource.Kind
	outputs resource.Refs
	events  *event.Recorder
	prefect *prefectsim.Server

	mu       sync.Mutex
	outcomes []any
}

// deployment is the last ECS deployment a kind handed back.
func (c *computeWorld) deployment() *ecs.Deployment {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.outcomes) - 1; i >= 0; i-- {
		if d, ok := c.outcomes[i].(*ecs.Deployment); ok {
			return d
		}
	}
	return nil
}

// said is every progress line the kinds reported.
func (c *computeWorld) said() []string { return c.events.Lines() }

// must is v, or a test failure (a resource of the wrong kind).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func computeEnvFile(vpc string, subnets []string) *config.Environment {
	public := true
	return &config.Environment{
		Name: "staging",
		AWS:  config.AWS{AccountID: awssim.DefaultAccount, Region: "us-east-1"},
		Prefect: config.Prefect{
			APIURL:   "https://api.prefect.cloud/api/accounts/a/workspaces/w",
			WorkPool: "staging-pool",
		},
		Worker: config.Worker{Image: "prefecthq/prefect-aws:latest", CPU: 512, Memory: 1024, DesiredCount: 1,
			Env: map[string]string{"PREFECT_LOGGING_LEVEL": "INFO"}, LogRetentionDays: 30,
			Autoscaling: &config.Autoscaling{Min: 1, Max: 3, TargetCPUPercent: 70}},
		Network: config.Network{Mode: "existing", VPCID: vpc, SubnetIDs: subnets, AssignPublicIP: &public},
		Tags:    map[string]string{"team": "data"},
	}
}

func newComputeWorld(t testing.TB, key string, edits ...func(*config.Environment)) *computeWorld {
	t.Helper()
	return newComputeWorldIn(t, nil, key, edits...)
}

// newComputeWorldIn is newComputeWorld in a world made with opts.
func newComputeWorldIn(t testing.TB, opts []simtest.Option, key string, edits ...func(*config.Environment)) *computeWorld {
	t.Helper()
	world := simtest.New(t, append([]simtest.Option{simtest.WithPool("staging-pool")}, opts...)...)
	clk, w := world.Clock, world.AWS
	vpc, subnets := w.SeedExistingVPC("10.1.0.0/16", 2, true)
	env := computeEnvFile(vpc, subnets)
	for _, e := range edits {
		e(env)
	}
	st, err := stack.Build(env, key)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := prefect.New(world.Prefect.URL(), world.PrefectKey, prefect.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	c := &computeWorld{t: t, w: w, clk: clk, env: env, st: st, kinds: kinds.All(), outputs: resource.Refs{}, events: &event.Recorder{}, prefect: world.Prefect}
	c.x = &resource.Ctx{APIs: resource.APIs{AWS: awsapi.New(w.Config()), Prefect: pc}, Clock: clk, Budget: 1, Events: c.events,
		Outcome: func(v any) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.outcomes = append(c.outcomes, v)
		}}
	return c
}

func (c *computeWorld) res(address string) *resource.Resource {
	c.t.Helper()
	r := c.st.Resource(address)
	if r == nil {
		c.t.Fatalf("no %s in the stack", address)
	}
	return r
}

func (c *computeWorld) kind(r *resource.Resource) resource.Kind {
	c.t.Helper()
	k, ok := c.kinds[r.Kind]
	if !ok {
		c.t.Fatalf("no kind %q", r.Kind)
	}
	return k
}

// refs are r's dependencies' outputs.
func (c *computeWorld) refs(r *resource.Resource) resource.Refs {
	refs := resource.Refs{}
	for _, d := range r.DependsOn {
		if o, ok := c.outputs[d]; ok {
			refs[d] = o
		}
	}
	return refs
}

// withDeps is the resource at address, in an account that has its
// dependencies (created once).
func (c *computeWorld) withDeps(address string) *resource.Resource {
	c.t.Helper()
	r := c.res(address)
	for _, d := range r.DependsOn {
		c.ensure(d)
	}
	return r
}

// create creates the resource at address, which must not exist yet, after
// its dependencies.
func (c *computeWorld) create(ctx context.Context, address string) (*resource.Resource, resource.Outputs) {
	c.t.Helper()
	r := c.withDeps(address)
	if live := c.read(r); live != nil {
		c.t.Fatalf("read of %s before create = %+v, want absent", address, live)
	}
	out, err := c.kind(r).Create(ctx, c.x, r, c.refs(r))
	if err != nil {
		c.t.Fatalf("create %s: %v", address, err)
	}
	return r, out
}

// ensure creates r's dependencies, then r, once.
func (c *computeWorld) ensure(address string) resource.Outputs {
	c.t.Helper()
	if o, ok := c.outputs[address]; ok {
		return o
	}
	r := c.withDeps(address)
	if live := c.read(r); live != nil {
		// Made outside the stack (the work pool someone created): the
		// stack sets what it owns.
		diff := computeDiff(must(c.kind(r).Desired(r, c.refs(r))), live.Attrs)
		out, err := c.kind(r).Update(context.Background(), c.x, r, live, c.refs(r), diff)
		if err != nil {
			c.t.Fatalf("update %s: %v", address, err)
		}
		merged := resource.Outputs{}
		maps.Copy(merged, live.Outputs)
		maps.Copy(merged, out)
		c.outputs[address] = merged
		return merged
	}
	out, err := c.kind(r).Create(context.Background(), c.x, r, c.refs(r))
	if err != nil {
		c.t.Fatalf("create %s: %v", address, err)
	}
	c.outputs[address] = out
	return out
}

func (c *computeWorld) read(r *resource.Resource) *resource.Live {
	c.t.Helper()
	live, err := c.kind(r).Read(context.Background(), c.x, r)
	if err != nil {
		c.t.Fatalf("read %s: %v", r.Address, err)
	}
	return live
}

// computeDiff compares desired with live attrs the way the engine does:
// values only, Unknown is always a change, a path on one side only changes.
func computeDiff(desired, live resource.Attrs) []plan.FieldChange {
	var out []plan.FieldChange
	for p, d := range desired {
		l, ok := live[p]
		if !ok || l.Value != d.Value || d.Value == plan.Unknown {
			out = append(out, plan.FieldChange{Path: p, Before: l.Value, After: d.Value, Sensitive: d.Sensitive, ForcesReplacement: d.ForceNew})
		}
	}
	for p, l := range live {
		if _, ok := desired[p]; !ok {
			out = append(out, plan.FieldChange{Path: p, Before: l.Value, Sensitive: l.Sensitive, ForcesReplacement: l.ForceNew})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func changePaths(fcs []plan.FieldChange) []string {
	var out []string
	for _, f := range fcs {
		out = append(out, f.Path)
	}
	return out
}

func describeChanges(fcs []plan.FieldChange) string {
	var b strings.Builder
	for _, f := range fcs {
		fmt.Fprintf(&b, "\n  %s: %q → %q", f.Path, f.Before, f.After)
	}
	return b.String()
}

// lifecycleCase is one kind's create → no diff → change → update → no diff
// → delete → absent → delete again.
type lifecycleCase struct {
	address string
	// change edits the desired resource; wantChanged are the paths it changes.
	change      func(r *resource.Resource)
	wantChanged []string
	// edits change the environment file of the case's world.
	edits []func(*config.Environment)
}

func runLifecycle(t *testing.T, tc lifecycleCase) {
	ctx := context.Background()
	c := newComputeWorld(t, computeKey, tc.edits...)
	r, out := c.create(ctx, tc.address)
	k := c.kind(r)
	if out["arn"] == "" && out["id"] == "" {
		t.Errorf("create outputs %v: no arn or id", out)
	}
	c.outputs[r.Address] = out
	live := c.read(r)
	if live == nil {
		t.Fatal("read after create: absent")
	}
	if !live.Ours {
		t.Error("read after create: not ours")
	}
	if d := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs); len(d) > 0 {
		t.Fatalf("plan right after create shows changes:%s", describeChanges(d))
	}

	changed := *r
	changed.Tags = maps.Clone(r.Tags)
	tc.change(&changed)
	diff := computeDiff(must(k.Desired(&changed, c.refs(&changed))), live.Attrs)
	if got := strings.Join(changePaths(diff), ","); got != strings.Join(tc.wantChanged, ",") {
		t.Fatalf("changed paths = %s, want %s:%s", got, strings.Join(tc.wantChanged, ","), describeChanges(diff))
	}
	for _, f := range diff {
		if f.ForcesReplacement {
			t.Fatalf("%s forces replacement; the change case must be an update", f.Path)
		}
	}
	if _, err := k.Update(ctx, c.x, &changed, live, c.refs(&changed), diff); err != nil {
		t.Fatalf("update: %v", err)
	}
	live = c.read(&changed)
	if live == nil {
		t.Fatal("read after update: absent")
	}
	if d := computeDiff(must(k.Desired(&changed, c.refs(&changed))), live.Attrs); len(d) > 0 {
		t.Fatalf("plan right after update shows changes:%s", describeChanges(d))
	}

	if err := k.Delete(ctx, c.x, &changed, live); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := c.read(&changed); got != nil {
		t.Fatalf("read after delete = %+v, want absent", got)
	}
	if err := k.Delete(ctx, c.x, &changed, live); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	for _, s := range c.said() {
		t.Log(s)
	}
}

func setTags(r *resource.Resource) {
	r.Tags["team"] = "ml"
	r.Tags["cost-center"] = "42"
}

var tagChangePaths = []string{"tags.cost-center", "tags.team"}

// editSpec is a change that edits a copy of the resource's spec (an S).
func editSpec[S any](edit func(*S)) func(*resource.Resource) {
	return func(r *resource.Resource) {
		s := *r.Spec.(*S)
		edit(&s)
		r.Spec = &s
	}
}

// andTags is change, and setTags.
func andTags(change func(*resource.Resource)) func(*resource.Resource) {
	return func(r *resource.Resource) {
		change(r)
		setTags(r)
	}
}

// plusTags is paths and those setTags changes, sorted as a plan lists them.
func plusTags(paths ...string) []string {
	out := append(paths, tagChangePaths...)
	sort.Strings(out)
	return out
}

func TestLifecycleLogsIAMSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []lifecycleCase{
		{address: stack.AddrLogGroup, change: andTags(editSpec(func(s *logs.GroupSpec) { s.RetentionDays = 14 })), wantChanged: plusTags("retention_days")},
		{address: stack.AddrExecutionRole, change: func(r *resource.Resource) {
			setTags(r)
			delete(r.Tags, "team")
		}, wantChanged: []string{"tags.cost-center", "tags.team"}},
		{address: stack.AddrTaskRole, change: editSpec(func(s *iam.RoleSpec) {
			s.ManagedPolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
			doc := s.Inline[stack.TaskWorkerPolicy]
			stmts := append([]iam.PolicyStatement(nil), doc.Statements...)
			stmts[0].Actions = append(append([]string(nil), stmts[0].Actions...), "ecs:ListTasks")
			s.Inline = map[string]iam.PolicyDocument{stack.TaskWorkerPolicy: {Statements: stmts}}
		}), wantChanged: []string{"inline_policy." + stack.TaskWorkerPolicy, "managed_policies"}},
		{address: stack.AddrSecret, change: andTags(editSpec(func(s *secretsmanager.SecretSpec) {
			s.Value = secret.New(computeKey + "-rotated")
			s.VersionID = stack.SecretVersionID("staging", s.Value.Reveal())
		})), wantChanged: plusTags("value")},
	} {
		t.Run(tc.address, func(t *testing.T) { runLifecycle(t, tc) })
	}
}

// TestNotOursIsAConflict: a resource under our name without our
// environment tag is found but not Ours, and a create does not take it over.
func TestNotOursIsAConflict(t *testing.T) {
	t.Parallel()
	for _, address := range conflictAddresses {
		t.Run(address, func(t *testing.T) {
			c := newComputeWorld(t, computeKey)
			r := c.withDeps(address)
			foreign := *r
			foreign.Tags = map[string]string{resource.TagEnvironment: "someone-else", "owner": "hand-made"}
			if _, err := c.kind(r).Create(context.Background(), c.x, &foreign, c.refs(r)); err != nil {
				t.Fatalf("create the foreign resource: %v", err)
			}
			live := c.read(r)
			if live == nil {
				t.Fatal("the foreign resource is not found under our name")
			}
			if live.Ours {
				t.Error("a resource without our environment tag reads as ours")
			}
			if !createRefuses[address] {
				return
			}
			_, err := c.kind(r).Create(context.Background(), c.x, r, c.refs(r))
			if err == nil || !strings.Contains(err.Error(), "does not take it over") {
				t.Errorf("create over the foreign resource: %v, want a conflict", err)
			}
		})
	}
}

func TestSecretRestoredAfterDeleteWithRecoveryWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		force bool
	}{{"recovery window", false}, {"force", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newComputeWorld(t, computeKey)
			r := c.res(stack.AddrSecret)
			spec := *r.Spec.(*secretsmanager.SecretSpec)
			spec.ForceDelete = tc.force
			r.Spec = &spec
			k := secretsmanager.Secret
			if _, err := k.Create(ctx, c.x, r, nil); err != nil {
				t.Fatal(err)
			}
			live := c.read(r)
			if err := k.Delete(ctx, c.x, r, live); err != nil {
				t.Fatal(err)
			}
			if got := c.read(r); got != nil {
				t.Fatalf("a secret scheduled for deletion reads as %+v, want absent", got)
			}
			// A re-apply brings it back with a new key.
			rotated := *r
			s2 := spec
			s2.Value = secret.New(computeKey + "-new")
			s2.VersionID = stack.SecretVersionID("staging", s2.Value.Reveal())
			rotated.Spec = &s2
			out, err := k.Create(ctx, c.x, &rotated, nil)
			if err != nil {
				t.Fatalf("create after delete: %v", err)
			}
			if out["version_id"] != s2.VersionID {
				t.Errorf("version_id = %q, want %q", out["version_id"], s2.VersionID)
			}
			live = c.read(&rotated)
			if live == nil {
				t.Fatal("absent after re-create")
			}
			if d := computeDiff(must(k.Desired(&rotated, nil)), live.Attrs); len(d) > 0 {
				t.Errorf("changes after re-create:%s", describeChanges(d))
			}
			c.w.Mu.Lock()
			v, ok := c.w.SecretValue(spec.Name)
			c.w.Mu.Unlock()
			if !ok || v != s2.Value.Reveal() {
				t.Error("the stored value is not the new key")
			}
		})
	}
}

func TestSecretWithoutKey(t *testing.T) {
	t.Parallel()
	c := newComputeWorld(t, computeKey)
	withKey := c.res(stack.AddrSecret)
	if _, err := (secretsmanager.Secret).Create(context.Background(), c.x, withKey, nil); err != nil {
		t.Fatal(err)
	}
	st, err := stack.Build(c.env, "")
	if err != nil {
		t.Fatal(err)
	}
	r := st.Resource(stack.AddrSecret)
	if _, ok := must((secretsmanager.Secret).Desired(r, nil))["value"]; ok {
		t.Error("without a key the value is not managed, so not desired")
	}
	live := c.read(r)
	if d := computeDiff(must((secretsmanager.Secret).Desired(r, nil)), live.Attrs); len(d) > 0 {
		t.Errorf("a plan without the key shows changes:%s", describeChanges(d))
	}
	if _, err := (secretsmanager.Secret).Create(context.Background(), c.x, r, nil); err == nil || !strings.Contains(err.Error(), "PREFECT_API_KEY") {
		t.Errorf("create without a key: %v, want an error naming PREFECT_API_KEY", err)
	}
}

// applyAll creates the whole stack in dependency order.
func (c *computeWorld) applyAll() {
	c.t.Helper()
	for _, r := range c.st.Resources {
		c.ensure(r.Address)
	}
}

// readAll reads every resource concurrently, as a plan does.
func (c *computeWorld) readAll() map[string]*resource.Live {
	c.t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	lives := map[string]*resource.Live{}
	errs := map[string]error{}
	for i := range c.st.Resources {
		r := &c.st.Resources[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			live, err := c.kind(r).Read(context.Background(), c.x, r)
			mu.Lock()
			defer mu.Unlock()
			lives[r.Address], errs[r.Address] = live, err
		}()
	}
	wg.Wait()
	for a, err := range errs {
		if err != nil {
			c.t.Fatalf("read %s: %v", a, err)
		}
	}
	return lives
}

// liveRefs are the outputs a plan gives dependents: what Read found.
func liveRefs(lives map[string]*resource.Live) resource.Refs {
	refs := resource.Refs{}
	for a, l := range lives {
		if l != nil {
			refs[a] = l.Outputs
		}
	}
	return refs
}
