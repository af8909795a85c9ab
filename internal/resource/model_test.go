package resource

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/plan"
)

type inner struct {
	Image string            `attr:"image"`
	Env   map[string]string `attr:"env"`
}

type model struct {
	Name      string         `attr:"name,forcenew"`
	CPU       int            `attr:"cpu"`
	Port      int32          `attr:"port"`
	On        bool           `attr:"on"`
	Target    float64        `attr:"target"`
	Subnets   Set            `attr:"subnets,replace_if_unknown"`
	Command   Seq            `attr:"command"`
	Digest    *string        `attr:"digest,sensitive"`
	Prefix    string         `attr:"prefix,derived"`
	Container *inner         `attr:"container"`
	Health    *JSON[[]int32] `attr:"health"`
	Ignored   string
}

func (m *model) Normalize() { m.Name = strings.ToLower(m.Name) }

func TestFlatten(t *testing.T) {
	t.Parallel()
	digest := "v1"
	m := model{Name: "Worker", CPU: 512, Port: 8080, On: true, Target: 70.5, Subnets: Set{"b", "a"},
		Command: Seq{"sh", "-c"}, Digest: &digest, Prefix: "staging-1", Container: &inner{Image: "img", Env: map[string]string{"A": "1"}},
		Health: &JSON[[]int32]{V: []int32{30, 5}}, Ignored: "x"}
	want := Attrs{
		"name":            {Value: "Worker", ForceNew: true},
		"cpu":             {Value: "512"},
		"port":            {Value: "8080"},
		"on":              {Value: "true"},
		"target":          {Value: "70.5"},
		"subnets":         {Value: `["a","b"]`},
		"command":         {Value: `["sh","-c"]`},
		"digest":          {Value: "v1", Sensitive: true},
		"prefix":          {Value: "staging-1", Derived: true},
		"container.image": {Value: "img"},
		"container.env.A": {Value: "1"},
		"health":          {Value: "[30,5]"},
	}
	if d := cmp.Diff(want, Flatten(&m)); d != "" {
		t.Errorf("attrs (-want +got):\n%s", d)
	}
	// Nil pointers are fields the resource does not have; a nil Seq is JSON null.
	if d := cmp.Diff(Attrs{"name": {Value: "", ForceNew: true}, "cpu": {Value: "0"}, "port": {Value: "0"}, "on": {Value: "false"},
		"target": {Value: "0"}, "subnets": {Value: "[]"}, "command": {Value: "null"}, "prefix": {Value: "", Derived: true}},
		Flatten(model{})); d != "" {
		t.Errorf("empty model (-want +got):\n%s", d)
	}
	// An unknown value in a replace_if_unknown field forces a replacement.
	if a := Flatten(model{Subnets: Set{plan.Unknown}}); !a["subnets"].ForceNew {
		t.Errorf("subnets with an unknown id: %+v", a["subnets"])
	}
	if got := Normalize(m).Name; got != "worker" {
		t.Errorf("Normalize: %q", got)
	}
}

func TestEqualComparesAsThePlanDoes(t *testing.T) {
	t.Parallel()
	one := 1
	for _, tc := range []struct {
		name string
		a, b any
		want bool
	}{
		{"nil and empty lists", Set(nil), Set{}, true},
		{"order of a set", Set{"a", "b"}, Set{"b", "a"}, true},
		{"order of a sequence", Seq{"a", "b"}, Seq{"b", "a"}, false},
		{"nil and empty maps", map[string]string(nil), map[string]string{}, true},
		{"absent and zero", (*int)(nil), &one, false},
		{"models", model{CPU: 1}, model{CPU: 1, Ignored: "not compared"}, true},
		{"models that differ", model{CPU: 1}, model{CPU: 2}, false},
	} {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: Equal = %t, want %t", tc.name, got, tc.want)
		}
	}
}

type fakeSpec struct{ Name string }

type fakeImpl struct{}

func (fakeImpl) Desired(r *Typed[fakeSpec], _ Refs) model { return model{Name: r.Spec.Name} }
func (fakeImpl) Read(context.Context, *Context[struct{}], *Typed[fakeSpec]) (*Found[model, string], error) {
	return &Found[model, string]{ID: "id-1", Model: model{Name: "WORKER"}, Tags: map[string]string{TagEnvironment: "staging", "aws:x": "y"},
		Detail: "detail"}, nil
}
func (fakeImpl) Create(context.Context, *Context[struct{}], *Typed[fakeSpec], Refs) (Outputs, error) {
	return nil, nil
}
func (fakeImpl) Update(_ context.Context, x *Context[struct{}], _ *Typed[fakeSpec], d *Delta[model, string], _ Refs) (Outputs, error) {
	x.Hand(d.Found.Detail)
	return Outputs{"only_tags": map[bool]string{true: "yes", false: "no"}[d.OnlyTags()]}, nil
}
func (fakeImpl) Delete(context.Context, *Context[struct{}], *Typed[fakeSpec], *Found[model, string]) error {
	return nil
}

// TestDefIsTheOneAdapter: the erased kind normalises the live model like
// the desired one, compares tags but AWS's own, hands the typed live state
// to Update, and answers a resource of another kind with an error.
func TestDefIsTheOneAdapter(t *testing.T) {
	t.Parallel()
	k := Define[fakeSpec, model, string, struct{}]("fake", fakeImpl{}, func(APIs) (struct{}, error) { return struct{}{}, nil })
	r := k.New("fake.worker", "worker", nil, &fakeSpec{Name: "worker"}, map[string]string{TagEnvironment: "staging"})
	var outcomes []any
	x := &Ctx{Outcome: func(v any) { outcomes = append(outcomes, v) }}
	live, err := k.Read(context.Background(), x, &r)
	if err != nil {
		t.Fatal(err)
	}
	desired, err := k.Desired(&r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !live.Ours || live.Attrs["name"].Value != "worker" || live.Attrs["tags."+TagEnvironment].Value != "staging" {
		t.Fatalf("live = %+v", live)
	}
	if _, ok := live.Attrs["tags.aws:x"]; ok {
		t.Error("AWS's own tags are not compared")
	}
	if d := cmp.Diff(desired, live.Attrs); d != "" {
		t.Errorf("desired and live, normalised alike (-desired +live):\n%s", d)
	}
	out, err := k.Update(context.Background(), x, &r, live, nil, nil)
	if err != nil || out["only_tags"] != "yes" || len(outcomes) != 1 || outcomes[0] != "detail" {
		t.Errorf("update: %v %v, outcomes %v", out, err, outcomes)
	}
	other := Resource{Address: "fake.other", Kind: "fake", Spec: &struct{}{}}
	if _, err := k.Desired(&other, nil); err == nil || !strings.Contains(err.Error(), "want *resource.fakeSpec") {
		t.Errorf("another kind's spec: %v", err)
	}
	if _, err := k.Update(context.Background(), x, &r, &Live{ID: "hand-made"}, nil, nil); err == nil {
		t.Error("an update of a live state this kind did not read must fail")
	}
	bad := Define[fakeSpec, model, string, struct{}]("fake", fakeImpl{}, func(APIs) (struct{}, error) { return struct{}{}, errors.New("no client") })
	if _, err := bad.Read(context.Background(), x, &r); err == nil || !strings.Contains(err.Error(), "no client") {
		t.Errorf("a kind without its client: %v", err)
	}
}
