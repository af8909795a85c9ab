package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// diamond: net <- (roles, logs) <- svc, plus an independent "zeta".
func diamond() []resource.Resource {
	return []resource.Resource{
		res("svc", map[string]string{"cpu": "256"}, "fake.roles", "fake.logs"),
		res("zeta", map[string]string{"x": "1"}),
		res("logs", map[string]string{"retention": "30"}, "fake.net"),
		res("roles", map[string]string{"policy": "p"}, "fake.net"),
		res("net", map[string]string{"cidr": "10.0.0.0/16"}),
	}
}

func TestPlanOrderIsTopologicalAndDeterministic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p1 := f.plan(t, diamond())
	want := []string{"+ fake.net", "+ fake.logs", "+ fake.roles", "+ fake.svc", "+ fake.zeta"}
	if d := cmp.Diff(want, actions(p1.Plan)); d != "" {
		t.Fatalf("order (-want +got):\n%s", d)
	}
	// Reversed input gives the same plan, byte for byte.
	rs := diamond()
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	p2 := f.plan(t, rs)
	b1, _ := json.Marshal(p1.Plan)
	b2, _ := json.Marshal(p2.Plan)
	if string(b1) != string(b2) {
		t.Fatalf("same stack, different plans:\n%s\n%s", b1, b2)
	}
	svc := p1.Plan.Changes[3]
	wantFields := []plan.FieldChange{
		{Path: "cpu", After: "256"},
		{Path: "uses.fake.logs", After: plan.Unknown},
		{Path: "uses.fake.roles", After: plan.Unknown},
	}
	if d := cmp.Diff(wantFields, svc.Fields); d != "" {
		t.Fatalf("create fields (-want +got):\n%s", d)
	}
}

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rs      []resource.Resource
		account string
		want    string
	}{
		{
			name: "cycle",
			rs: []resource.Resource{
				res("a", nil, "fake.c"), res("b", nil, "fake.a"), res("c", nil, "fake.b"), res("d", nil, "fake.a"),
			},
			want: "plan test: dependency cycle: fake.a -> fake.c -> fake.b -> fake.a",
		},
		{
			name: "self cycle",
			rs:   []resource.Resource{res("a", nil, "fake.a")},
			want: "plan test: dependency cycle: fake.a -> fake.a",
		},
		{
			name: "unknown dependency",
			rs:   []resource.Resource{res("a", nil, "fake.nope")},
			want: "plan test: fake.a depends on fake.nope, which is not in the stack",
		},
		{
			name: "unknown kind",
			rs:   []resource.Resource{{Address: "alien.x", Kind: "alien"}},
			want: `plan alien.x: no implementation of kind "alien"`,
		},
		{
			name:    "other account",
			rs:      diamond(),
			account: "999999999999",
			want:    "the AWS credentials belong to account 999999999999, but environments/test.yaml sets aws.account_id 123456789012: refusing to touch another account",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.account != "" {
				f.eng.AWS = &awsapi.Clients{STS: fakeSTS{account: tt.account}}
			}
			_, err := f.eng.plan(context.Background(), f.stack(tt.rs), plan.OpApply)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant  %s", err, tt.want)
			}
			if len(f.acct.writes()) != 0 {
				t.Fatalf("a failed plan wrote: %v", f.acct.writes())
			}
		})
	}
}

func TestApplyRunsDependenciesFirstAndConverges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep := f.apply(t, diamond())
	if rep.Status != plan.StatusSucceeded || len(rep.Steps) != 5 {
		t.Fatalf("status %s, steps %+v", rep.Status, rep.Steps)
	}
	pos := map[string]int{}
	for i, w := range f.acct.writes() {
		pos[w] = i
	}
	for _, edge := range [][2]string{{"net", "logs"}, {"net", "roles"}, {"logs", "svc"}, {"roles", "svc"}} {
		if pos["create fake."+edge[0]] > pos["create fake."+edge[1]] {
			t.Errorf("%s created after %s: %v", edge[0], edge[1], f.acct.writes())
		}
	}
	again := f.plan(t, diamond())
	if again.Plan.HasChanges() {
		t.Fatalf("plan after apply has changes: %v", actions(again.Plan))
	}
	rep, err := f.eng.Apply(context.Background(), again)
	if err != nil || rep.Status != plan.StatusNoChanges || len(rep.Steps) != 0 {
		t.Fatalf("no-op apply: %v %s %+v", err, rep.Status, rep.Steps)
	}
	if n := len(f.acct.writes()); n != 5 {
		t.Fatalf("no-op apply wrote: %v", f.acct.writes()[5:])
	}
}

func TestApplyRunsIndependentStepsConcurrently(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		concurrency int
		wantMax     int
	}{
		{"default allows all four at once", 0, 4},
		{"limit of two", 2, 2},
		{"limit of one is sequential", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.eng.Concurrency = tt.concurrency
			if tt.wantMax > 1 {
				f.acct.setBarrier(t, tt.wantMax)
			}
			f.apply(t, []resource.Resource{res("a", nil), res("b", nil), res("c", nil), res("d", nil)})
			if f.acct.timedOut {
				t.Fatalf("creates never ran %d at once (max %d)", tt.wantMax, f.acct.maxRun)
			}
			if f.acct.maxRun != tt.wantMax {
				t.Fatalf("max concurrent creates = %d, want %d", f.acct.maxRun, tt.wantMax)
			}
		})
	}
}

func TestFailedStepSkipsDependents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.acct.fail["create fake.logs"] = errors.New("boom")
	_, err := f.eng.Apply(context.Background(), f.plan(t, diamond()))
	if err == nil || err.Error() != "create fake.logs: boom" {
		t.Fatalf("err = %v", err)
	}
	if d := cmp.Diff([]string{"create fake.net", "create fake.roles", "create fake.zeta"}, sortedCopy(f.acct.writes())); d != "" {
		t.Fatalf("writes (-want +got):\n%s", d)
	}
	f.acct.fail = map[string]error{}
	// A fresh run converges: only what is missing is created.
	p := f.plan(t, diamond())
	if d := cmp.Diff([]string{"  fake.net", "+ fake.logs", "  fake.roles", "+ fake.svc", "  fake.zeta"}, actions(p.Plan)); d != "" {
		t.Fatalf("re-plan (-want +got):\n%s", d)
	}
}

func TestFailedStepReport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.acct.fail["create fake.logs"] = errors.New("boom")
	rep, _ := f.eng.Apply(context.Background(), f.plan(t, diamond()))
	type row struct{ Addr, Status, Err string }
	var got []row
	for _, s := range rep.Steps {
		got = append(got, row{s.Address, s.Status, s.Error})
	}
	want := []row{
		{"fake.net", "done", ""},
		{"fake.logs", "failed", "create fake.logs: boom"},
		{"fake.roles", "done", ""},
		{"fake.svc", "skipped", "not attempted: fake.logs failed"},
		{"fake.zeta", "done", ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("steps (-want +got):\n%s", d)
	}
	if rep.Status != plan.StatusFailed || rep.Error != "create fake.logs: boom" {
		t.Fatalf("status %s error %q", rep.Status, rep.Error)
	}
}

func TestReplacementDeletesThenCreatesAndMarksDependents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs := diamond()
	f.apply(t, rs)
	before := len(f.acct.writes())

	rs = diamond()
	spec(&rs[4]).Attrs["cidr"] = "10.1.0.0/16" // fake.net
	spec(&rs[4]).ForceNew["cidr"] = true
	spec(&rs[2]).ForceNew["uses.fake.net"] = true // logs must be replaced with a new net
	p := f.plan(t, rs)
	want := []plan.Change{
		{Address: "fake.net", Kind: "fake", Name: "net", Action: plan.Replace, Reason: "field cidr cannot be changed in place",
			Fields: []plan.FieldChange{{Path: "cidr", Before: "10.0.0.0/16", After: "10.1.0.0/16", ForcesReplacement: true}}},
		{Address: "fake.logs", Kind: "fake", Name: "logs", Action: plan.Replace,
			Reason: "field uses.fake.net cannot be changed in place (it uses outputs of fake.net, which will change)",
			Fields: []plan.FieldChange{{Path: "uses.fake.net", Before: "arn:net-1:1", After: plan.Unknown, ForcesReplacement: true}}},
		{Address: "fake.roles", Kind: "fake", Name: "roles", Action: plan.Update, Reason: "uses outputs of fake.net, which will change",
			Fields: []plan.FieldChange{{Path: "uses.fake.net", Before: "arn:net-1:1", After: plan.Unknown}}},
		{Address: "fake.svc", Kind: "fake", Name: "svc", Action: plan.Update, Reason: "uses outputs of fake.logs, which will change",
			Fields: []plan.FieldChange{{Path: "uses.fake.logs", Before: "arn:logs-1:1", After: plan.Unknown}}},
		{Address: "fake.zeta", Kind: "fake", Name: "zeta", Action: plan.NoOp},
	}
	// Before and After (every attribute, for the cost estimate) are
	// checked on their own below.
	if d := cmp.Diff(want, p.Plan.Changes, cmpopts.IgnoreFields(plan.Change{}, "Before", "After")); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if c := p.Plan.Changes[0]; c.Before["cidr"] != "10.0.0.0/16" || c.After["cidr"] != "10.1.0.0/16" {
		t.Errorf("%s before/after: %v / %v, want the live and desired attributes", c.Address, c.Before, c.After)
	}
	if c := p.Plan.Changes[len(p.Plan.Changes)-1]; c.Action != plan.NoOp || c.Before["x"] != "1" || c.After["x"] != "1" {
		t.Errorf("the unchanged %s has before/after %v / %v", c.Address, c.Before, c.After)
	}
	if d := cmp.Diff([]string{"fake.net", "fake.logs"}, p.Plan.Destructive()); d != "" {
		t.Fatalf("destructive (-want +got):\n%s", d)
	}
	if _, err := f.eng.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	wantWrites := []string{"delete fake.logs", "delete fake.net", "create fake.net", "create fake.logs", "update fake.roles", "update fake.svc"}
	got := f.acct.writes()[before:]
	// roles and logs are independent: compare the fixed parts of the order.
	if d := cmp.Diff(wantWrites[:3], got[:3]); d != "" {
		t.Fatalf("replacement order (-want +got):\n%s", d)
	}
	if d := cmp.Diff(sortedCopy(wantWrites), sortedCopy(got)); d != "" {
		t.Fatalf("writes (-want +got):\n%s", d)
	}
	if again := f.plan(t, rs); again.Plan.HasChanges() {
		t.Fatalf("plan after replacement: %v", actions(again.Plan))
	}
}

func TestUpdateWithNewOutputsUpdatesDependents(t *testing.T) {
	t.Parallel()
	for _, kind := range []resource.KindName{"fake_taskdef", "fake"} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t)
			mk := func(image string) []resource.Resource {
				td := res("td", map[string]string{"image": image})
				td.Kind = kind
				spec(&td).NewARNOnUpdate = true
				return []resource.Resource{td, res("svc", nil, "fake.td")}
			}
			f.apply(t, mk("v1"))
			p := f.plan(t, mk("v2"))
			svc := p.Plan.Changes[1]
			if kind == "fake_taskdef" {
				// The kind says its update changes "arn": the plan shows the service follows.
				if svc.Action != plan.Update || svc.Fields[0].After != plan.Unknown {
					t.Fatalf("service change: %+v", svc)
				}
			} else if svc.Action != plan.NoOp {
				t.Fatalf("service change: %+v", svc)
			}
			rep, err := f.eng.Apply(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			// Either way the apply updates the service to the new arn.
			if d := cmp.Diff([]string{"update fake.td", "update fake.svc"}, f.acct.writes()[2:]); d != "" {
				t.Fatalf("writes (-want +got):\n%s", d)
			}
			if len(rep.Steps) != 2 || rep.Steps[1].Action != plan.Update {
				t.Fatalf("steps: %+v", rep.Steps)
			}
			if again := f.plan(t, mk("v2")); again.Plan.HasChanges() {
				t.Fatalf("plan after update: %v", actions(again.Plan))
			}
		})
	}
}

func TestConflictIsPlannedAndRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.acct.objs["fake.logs"] = &fakeObj{id: "logs-x", attrs: map[string]string{"retention": "30"}, ours: false}
	p := f.plan(t, diamond())
	c := p.Plan.Changes[1]
	if c.Action != plan.Conflict || !strings.Contains(c.Reason, `fake "logs" already exists (logs-x) without the tag deploybot:environment=test`) {
		t.Fatalf("conflict change: %+v", c)
	}
	rep, err := f.eng.Apply(context.Background(), p)
	var ce *ConflictError
	if !errors.As(err, &ce) || !cmp.Equal(ce.Addresses, []string{"fake.logs"}) {
		t.Fatalf("err = %v", err)
	}
	if rep.Status != plan.StatusRefused {
		t.Fatalf("status %s", rep.Status)
	}
	if w := f.acct.writes(); len(w) != 0 {
		t.Fatalf("refused apply wrote %v", w)
	}
	// Destroy leaves it alone and says so.
	d := f.planDestroy(t, diamond())
	if len(d.Plan.Changes) != 0 || !strings.Contains(strings.Join(d.Plan.Notes, "\n"), "destroy leaves it alone") {
		t.Fatalf("destroy plan: %+v", d.Plan)
	}
}

func TestSensitiveFieldsShowNoValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mk := func(key string) []resource.Resource {
		r := res("secret", map[string]string{"value_digest": key, "name": "s"})
		spec(&r).Sensitive["value_digest"] = true
		return []resource.Resource{r}
	}
	p := f.plan(t, mk("pnu_first_key"))
	f.eng.Apply(context.Background(), p)
	p = f.plan(t, mk("pnu_second_key"))
	want := []plan.FieldChange{{Path: "value_digest", Sensitive: true}}
	if d := cmp.Diff(want, p.Plan.Changes[0].Fields); d != "" {
		t.Fatalf("fields (-want +got):\n%s", d)
	}
	b, _ := json.Marshal(p.Plan)
	if strings.Contains(string(b), "pnu_") {
		t.Fatalf("sensitive value in plan: %s", b)
	}
}

func TestFingerprintIsStableAndFollowsTheChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.plan(t, diamond()).Plan.Fingerprint
	b := f.plan(t, diamond()).Plan.Fingerprint
	if a != b || len(a) != 16 {
		t.Fatalf("fingerprints %q %q", a, b)
	}
	rs := diamond()
	spec(&rs[0]).Attrs["cpu"] = "512"
	if c := f.plan(t, rs).Plan.Fingerprint; c == a {
		t.Fatal("a different change has the same fingerprint")
	}
	if d := f.planDestroy(t, diamond()).Plan.Fingerprint; d == a {
		t.Fatal("destroy and apply plans share a fingerprint")
	}
}

func TestThrottledStepIsRetriedWholeAfterReading(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.acct.throttle["create fake.net"] = 3
	rep := f.apply(t, diamond())
	if rep.Status != plan.StatusSucceeded {
		t.Fatalf("status %s", rep.Status)
	}
	n := 0
	for _, l := range f.progress.all() {
		if strings.HasPrefix(l, "fake.net: throttled by AWS; retrying in") {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d throttle retries, want 3:\n%s", n, strings.Join(f.progress.all(), "\n"))
	}
}

func TestThrottleBudgetRunsOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.eng.Budget = 0.05 // 6s of throttle retries
	f.acct.throttle["create fake.zeta"] = 100
	_, err := f.eng.Apply(context.Background(), f.plan(t, diamond()))
	if err == nil || !strings.Contains(err.Error(), "still throttled after 3 attempts: create fake.zeta") {
		t.Fatalf("err = %v", err)
	}
}

func TestDestroyInReverseOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.apply(t, diamond())
	before := len(f.acct.writes())
	p := f.planDestroy(t, diamond())
	want := []string{"- fake.zeta", "- fake.svc", "- fake.roles", "- fake.logs", "- fake.net"}
	if d := cmp.Diff(want, actions(p.Plan)); d != "" {
		t.Fatalf("destroy plan (-want +got):\n%s", d)
	}
	rep, err := f.eng.Destroy(context.Background(), p)
	if err != nil || rep.Status != plan.StatusSucceeded {
		t.Fatalf("destroy: %v %s", err, rep.Status)
	}
	pos := map[string]int{}
	for i, w := range f.acct.writes()[before:] {
		pos[w] = i
	}
	for _, edge := range [][2]string{{"svc", "logs"}, {"svc", "roles"}, {"logs", "net"}, {"roles", "net"}} {
		if pos["delete fake."+edge[0]] > pos["delete fake."+edge[1]] {
			t.Errorf("%s deleted after %s", edge[0], edge[1])
		}
	}
	if len(f.acct.objs) != 0 {
		t.Fatalf("left: %v", f.acct.objs)
	}
	// Destroying what is gone is a no-op.
	p = f.planDestroy(t, diamond())
	rep, err = f.eng.Destroy(context.Background(), p)
	if err != nil || rep.Status != plan.StatusNoChanges {
		t.Fatalf("second destroy: %v %s", err, rep.Status)
	}
}

func TestDestroyFailureSkipsWhatItUses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.apply(t, diamond())
	f.acct.fail["delete fake.svc"] = errors.New("in use")
	_, err := f.eng.Destroy(context.Background(), f.planDestroy(t, diamond()))
	if err == nil || err.Error() != "delete fake.svc: in use" {
		t.Fatalf("err = %v", err)
	}
	var left []string
	for a := range f.acct.objs {
		left = append(left, a)
	}
	if d := cmp.Diff([]string{"fake.logs", "fake.net", "fake.roles", "fake.svc"}, sortedCopy(left)); d != "" {
		t.Fatalf("left (-want +got):\n%s", d)
	}
}

func TestDestroyRefusesProtectedEnvironment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.apply(t, diamond())
	f.env.Protect = true
	p := f.planDestroy(t, diamond())
	before := len(f.acct.writes())
	rep, err := f.eng.Destroy(context.Background(), p)
	var pe *stack.ProtectedError
	if !errors.As(err, &pe) || rep.Status != plan.StatusRefused {
		t.Fatalf("err = %v, status %v", err, rep)
	}
	if !strings.Contains(err.Error(), "protect: true") {
		t.Fatalf("message: %v", err)
	}
	if len(f.acct.writes()) != before {
		t.Fatal("a refused destroy wrote")
	}
}

func TestProgressCarriesElapsedTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.apply(t, []resource.Resource{res("a", nil)})
	want := []string{"fake.a: creating…", "fake.a: created (0s)"}
	if d := cmp.Diff(want, f.progress.all()); d != "" {
		t.Fatalf("progress (-want +got):\n%s", d)
	}
}

func TestCancelledApplyStartsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.plan(t, diamond())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.eng.Apply(ctx, p)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if w := f.acct.writes(); len(w) != 0 {
		t.Fatalf("wrote %v", w)
	}
}

func TestResourcesNoLongerAskedForAreDeletedFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs := diamond()
	extra := res("scaler", nil, "fake.svc")
	f.apply(t, append(rs, extra))
	before := len(f.acct.writes())

	// The file no longer asks for the scaler (the stack lists it as absent)
	// and changes the service.
	rs = diamond()
	spec(&rs[0]).Attrs["cpu"] = "512"
	p, err := f.eng.plan(context.Background(), f.stack(rs, extra), plan.OpApply)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"- fake.scaler", "  fake.net", "  fake.logs", "  fake.roles", "~ fake.svc", "  fake.zeta"}
	if d := cmp.Diff(want, actions(p.Plan)); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if _, err := f.eng.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"delete fake.scaler", "update fake.svc"}, f.acct.writes()[before:]); d != "" {
		t.Fatalf("writes (-want +got):\n%s", d)
	}
	// Absent and missing: nothing to do.
	p, err = f.eng.plan(context.Background(), f.stack(rs, extra), plan.OpApply)
	if err != nil || p.Plan.HasChanges() {
		t.Fatalf("re-plan: %v %v", err, actions(p.Plan))
	}
}

func TestUnreadableLeftoverIsANoteNotAFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	extra := res("scaler", nil, "fake.svc")
	extra.Kind = "unreadable"
	f.eng.Kinds["unreadable"] = unreadableKind{fakeKind{f.acct}}
	p, err := f.eng.plan(context.Background(), f.stack(diamond(), extra), plan.OpApply)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"could not check whether fake.scaler (no longer asked for) is left over: read fake.scaler: api error AccessDeniedException: not allowed"}
	if d := cmp.Diff(want, p.Plan.Notes); d != "" {
		t.Fatalf("notes (-want +got):\n%s", d)
	}
	// A resource the file asks for that cannot be read fails the plan.
	rs := append(diamond(), extra)
	if _, err := f.eng.plan(context.Background(), f.stack(rs), plan.OpApply); err == nil {
		t.Fatal("want an error")
	}
}

type unreadableKind struct{ fakeKind }

func (unreadableKind) Read(context.Context, *resource.Ctx, *resource.Resource) (*resource.Live, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed"}
}

func TestLeftoverStillInUseGoesAfterItsUsersMoveOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sg := res("sg", map[string]string{"name": "worker-sg"})
	svc := res("svc", nil, "fake.sg")
	f.apply(t, []resource.Resource{sg, svc})
	before := len(f.acct.writes())
	// The file now names its own security group: ours is a leftover, and
	// the service must move off it before it can go.
	svc2 := res("svc", map[string]string{"security_groups": "sg-own"})
	p, err := f.eng.plan(context.Background(), f.stack([]resource.Resource{svc2}, sg), plan.OpApply)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"- fake.sg", "~ fake.svc"}, actions(p.Plan)); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if _, err := f.eng.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"update fake.svc", "delete fake.sg"}, f.acct.writes()[before:]); d != "" {
		t.Fatalf("writes (-want +got):\n%s", d)
	}
}
