package kinds_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/simtest"
)

// netWorld is a simulated account and a kind context on it.
func netWorld(t *testing.T) (*awssim.World, *resource.Ctx, *clock.Virtual) {
	t.Helper()
	world := simtest.New(t, simtest.WithStart(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	clk, w := world.Clock, world.AWS
	return w, &resource.Ctx{APIs: resource.APIs{AWS: awsapi.New(w.Config())}, Clock: clk, Budget: 1}, clk
}

func netTags(env, name string) map[string]string {
	return map[string]string{resource.TagEnvironment: env, resource.TagStack: "prefect-worker",
		resource.TagManagedBy: resource.ManagedByValue, "Name": name, "team": "data"}
}

// netDiff compares desired with live the way the engine does (values only,
// Unknown is always a change) and returns the changed paths.
func netDiff(desired, live resource.Attrs) []plan.FieldChange {
	var out []plan.FieldChange
	seen := map[string]bool{}
	for p, d := range desired {
		seen[p] = true
		l, ok := live[p]
		if !ok || l.Value != d.Value || d.Value == plan.Unknown {
			out = append(out, plan.FieldChange{Path: p, Before: l.Value, After: d.Value, ForcesReplacement: d.ForceNew})
		}
	}
	for p, l := range live {
		if !seen[p] {
			out = append(out, plan.FieldChange{Path: p, Before: l.Value, ForcesReplacement: l.ForceNew})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func sgResource(env, vpc string) *resource.Resource {
	name := "deploybot-" + env + "-worker"
	return &resource.Resource{Address: "security_group.worker", Kind: "security_group", Name: name,
		Spec: &ec2.SecurityGroupSpec{Name: name, Description: "deploybot Prefect worker " + env + " (egress only)",
			VPC: resource.Ref{Literal: vpc}, Egress: []string{"-1:0-0:0.0.0.0/0"}},
		Tags: netTags(env, name)}
}

// sgFixture is a new account with an existing VPC of two subnets, and the
// worker security group's resource in it (not created).
type sgFixture struct {
	w       *awssim.World
	x       *resource.Ctx
	clk     *clock.Virtual
	vpc     string
	subnets []string
	r       *resource.Resource
}

func sgInExistingVPC(t *testing.T) *sgFixture {
	t.Helper()
	w, x, clk := netWorld(t)
	vpc, subnets := w.SeedExistingVPC("10.1.0.0/16", 2, true)
	return &sgFixture{w: w, x: x, clk: clk, vpc: vpc, subnets: subnets, r: sgResource("staging", vpc)}
}

// create creates the group and returns its id.
func (f *sgFixture) create(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := ec2.SecurityGroup.Create(ctx, f.x, f.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out["id"]
}

func TestSecurityGroupExistingVPCLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := sgInExistingVPC(t)
	w, x, vpc, r := f.w, f.x, f.vpc, f.r
	k := ec2.SecurityGroup

	live, err := k.Read(ctx, x, r)
	if err != nil || live != nil {
		t.Fatalf("read of an empty account = %+v, %v; want absent", live, err)
	}
	out, err := k.Create(ctx, x, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out["id"], "sg-") || out["vpc_id"] != vpc {
		t.Fatalf("outputs = %v", out)
	}
	live, err = k.Read(ctx, x, r)
	if err != nil || live == nil || !live.Ours {
		t.Fatalf("read after create = %+v, %v", live, err)
	}
	if d := netDiff(must(k.Desired(r, nil)), live.Attrs); len(d) != 0 {
		t.Fatalf("plan after create is not empty: %+v", d)
	}

	// Drift: a tag changed by hand and an extra egress rule.
	r.Tags["team"] = "platform"
	r.Spec.(*ec2.SecurityGroupSpec).Egress = []string{"tcp:443-443:0.0.0.0/0"}
	changed := netDiff(must(k.Desired(r, nil)), live.Attrs)
	want := []string{"egress", "tags.team"}
	if got := paths(changed); !cmp.Equal(got, want) {
		t.Fatalf("changed = %v, want %v", got, want)
	}
	if _, err := k.Update(ctx, x, r, live, nil, changed); err != nil {
		t.Fatal(err)
	}
	live, _ = k.Read(ctx, x, r)
	if d := netDiff(must(k.Desired(r, nil)), live.Attrs); len(d) != 0 {
		t.Fatalf("plan after update is not empty: %+v", d)
	}

	// A different VPC forces a replacement.
	other, _ := w.SeedExistingVPC("10.2.0.0/16", 2, true)
	r.Spec.(*ec2.SecurityGroupSpec).VPC = resource.Ref{Literal: other}
	d := netDiff(must(k.Desired(r, nil)), live.Attrs)
	if len(d) != 1 || d[0].Path != "vpc_id" || !d[0].ForcesReplacement {
		t.Fatalf("vpc change = %+v, want vpc_id forcing replacement", d)
	}
	r.Spec.(*ec2.SecurityGroupSpec).VPC = resource.Ref{Literal: vpc}

	if err := k.Delete(ctx, x, r, live); err != nil {
		t.Fatal(err)
	}
	if live, err := k.Read(ctx, x, r); err != nil || live != nil {
		t.Fatalf("read after delete = %+v, %v", live, err)
	}
	// Deleting what is gone succeeds.
	if err := k.Delete(ctx, x, r, live); err != nil {
		t.Fatal(err)
	}
}

func paths(fcs []plan.FieldChange) []string {
	var out []string
	for _, f := range fcs {
		out = append(out, f.Path)
	}
	return out
}

func TestSecurityGroupNameTakenWithoutTagsIsConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := sgInExistingVPC(t)
	x, r := f.x, f.r
	// Someone made the group by hand, without our tags.
	hand := *r
	hand.Tags = map[string]string{"Name": r.Name}
	if _, err := (ec2.SecurityGroup).Create(ctx, x, &hand, nil); err != nil {
		t.Fatal(err)
	}
	live, err := ec2.SecurityGroup.Read(ctx, x, r)
	if err != nil || live == nil || live.Ours {
		t.Fatalf("read = %+v, %v; want a live group that is not ours", live, err)
	}
	if err := (ec2.SecurityGroup).Delete(ctx, x, r, live); err == nil {
		t.Fatal("deleting a group that is not ours must fail")
	}
}

func TestSecurityGroupDeleteWaitsForLingeringENIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		budget  float64
		wantErr []string
	}{
		{name: "ENI goes away within the budget", budget: 1},
		{name: "budget too small names the ENI", budget: 0.05, wantErr: []string{"eni-", "attachment/task-1", "578734482556", "subnet-", "re-run", "still blocked after 50s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := sgInExistingVPC(t)
			w, x, clk, r := f.w, f.x, f.clk, f.r
			k := ec2.SecurityGroup
			id := f.create(t, ctx)
			// A Fargate task ran with the group and stopped just now: its
			// ENI lingers for awssim.DefaultTimings().ENILinger (90 s).
			w.Mu.Lock()
			eni := w.TaskENI(f.subnets[0], []string{id}, "arn:aws:ecs:us-east-1:123456789012:attachment/task-1", true)
			w.ReleaseTaskENI(eni.ID)
			w.Mu.Unlock()
			live, _ := k.Read(ctx, x, r)
			start := clk.Now()
			x.Budget = tc.budget // 0.05 × 15 min = 45 s < 90 s linger
			err := k.Delete(ctx, x, r, live)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if waited := clk.Now().Sub(start); waited < awssim.DefaultTimings().ENILinger {
					t.Fatalf("delete returned after %s, before the ENI was gone (%s)", waited, awssim.DefaultTimings().ENILinger)
				}
				if live, _ := k.Read(ctx, x, r); live != nil {
					t.Fatal("group still there")
				}
				return
			}
			if err == nil {
				t.Fatal("want an error when the budget runs out")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// A re-run later continues and succeeds.
			x.Budget = 1
			if err := k.Delete(ctx, x, r, live); err != nil {
				t.Fatalf("re-run: %v", err)
			}
		})
	}
}
