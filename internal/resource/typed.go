package resource

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/retry"
)

// Typed is a resource of a kind whose spec is S.
type Typed[S any] struct {
	Address string
	Kind    KindName
	Name    string
	Tags    map[string]string
	Spec    *S
}

// Found is what a typed Read found: M is the kind's model (compared with
// the desired one), L the detail its Update and Delete need.
type Found[M, L any] struct {
	ID  string
	ARN string
	// Tags are every tag the resource has (without the ones the kind keeps
	// its own state in, which it reads into the model); they say whether
	// the resource is ours and are compared with the desired ones.
	Tags    map[string]string
	Model   M
	Outputs Outputs
	Detail  L
	// Covers: Live.Covers.
	Covers []string
}

// TagChange is how the tags of a resource go from live to desired.
type TagChange struct {
	Set    map[string]string // added or changed
	Remove []string          // sorted
}

// Empty says whether there is nothing to do.
func (t TagChange) Empty() bool { return len(t.Set) == 0 && len(t.Remove) == 0 }

// Delta is what an Update gets: the desired and live models, normalised,
// and the live resource. A kind compares the typed fields it can change.
type Delta[M, L any] struct {
	Desired, Live M
	Found         *Found[M, L]
	Tags          TagChange
}

// OnlyTags says whether the models agree, so only tags are to change.
func (d *Delta[M, L]) OnlyTags() bool { return Equal(d.Desired, d.Live) }

// Equal says whether two models, or two values of one model field, are the
// same as a plan compares them (by their attrs' values: a nil list and an
// empty one are the same, as they are in the plan).
func Equal(a, b any) bool {
	fa, fb := valuesOf(a), valuesOf(b)
	return reflect.DeepEqual(fa, fb)
}

// Context is what a typed kind gets besides the resource: only the clients
// it uses (C), time, and a way to report progress and outcomes.
type Context[C any] struct {
	API    C
	Clock  clock.Clock
	Budget float64
	erased *Ctx
}

// Wait returns d scaled by the budget.
func (x *Context[C]) Wait(d time.Duration) time.Duration { return x.erased.Wait(d) }

// Say reports progress about the resource at address.
func (x *Context[C]) Say(address, msg string) { x.erased.Say(address, msg) }

// Waits returns the options of a wait of the resource at address (see
// resource.Ctx.Waits).
func (x *Context[C]) Waits(address string, budget, every time.Duration) retry.Options {
	return x.erased.Waits(address, budget, every)
}

// Hand passes an outcome of the change on to whoever consumes it (see
// resource.Ctx.Outcome).
func (x *Context[C]) Hand(outcome any) {
	if x.erased.Outcome != nil {
		x.erased.Outcome(outcome)
	}
}

// Impl is a typed kind: S its spec, M its model, L the live detail its
// Update and Delete need, C the clients it uses.
type Impl[S, M, L, C any] interface {
	// Desired is the model the resource should have.
	Desired(r *Typed[S], refs Refs) M
	// Read finds the live resource (nil: absent); see Kind.Read.
	Read(ctx context.Context, x *Context[C], r *Typed[S]) (*Found[M, L], error)
	Create(ctx context.Context, x *Context[C], r *Typed[S], refs Refs) (Outputs, error)
	// Update makes the live resource the desired one; d says how they
	// differ (never in a forcenew field).
	Update(ctx context.Context, x *Context[C], r *Typed[S], d *Delta[M, L], refs Refs) (Outputs, error)
	// Delete removes the resource; live is nil when it was not read.
	Delete(ctx context.Context, x *Context[C], r *Typed[S], live *Found[M, L]) error
}

// Typed optional capabilities, the typed forms of BatchReader, Resolver,
// OutputsChanger and Adopter.
type (
	TypedBatchReader[S, M, L, C any] interface {
		ReadAll(ctx context.Context, x *Context[C], rs []*Typed[S]) (map[string]*Found[M, L], error)
	}
	TypedResolver[S, C any] interface {
		Resolve(ctx context.Context, x *Context[C], rs []*Typed[S]) ([]*S, error)
	}
	TypedOutputsChanger[S any] interface {
		OutputsChangedByUpdate(r *Typed[S]) []string
	}
	TypedAdopter[S, M, L, C any] interface {
		ARNTypes() []string
		Adopt(ctx context.Context, x *Context[C], arn string) (*Typed[S], *Found[M, L], error)
	}
	TypedDeleteExplainer[M, L any] interface {
		DeleteReason(live *Found[M, L]) string
	}
)

// Def is a typed kind made into a Kind: the one adapter between the
// engine's erased resources and a kind's own types.
type Def[S, M, L, C any] struct {
	name     KindName
	impl     Impl[S, M, L, C]
	connect  func(APIs) (C, error)
	untagged bool
}

// Option changes a Def.
type Option func(*defOptions)

type defOptions struct{ untagged bool }

// Untagged is a kind whose resources take no tags (Application Auto
// Scaling policies): no tags are compared, and one found under our
// deterministic name (on our own parent) is ours.
func Untagged() Option { return func(o *defOptions) { o.untagged = true } }

// Define makes impl a Kind named name; connect picks the clients it uses
// from a run's APIs.
func Define[S, M, L, C any](name KindName, impl Impl[S, M, L, C], connect func(APIs) (C, error), opts ...Option) *Def[S, M, L, C] {
	var o defOptions
	for _, f := range opts {
		f(&o)
	}
	return &Def[S, M, L, C]{name: name, impl: impl, connect: connect, untagged: o.untagged}
}

// Name is the kind's name.
func (d *Def[S, M, L, C]) Name() KindName { return d.name }

// New returns a resource of this kind.
func (d *Def[S, M, L, C]) New(address, name string, deps []string, spec *S, tags map[string]string) Resource {
	return Resource{Address: address, Kind: d.name, Name: name, DependsOn: deps, Spec: spec, Tags: tags}
}

// Of returns r's spec. It is the only place a spec is recovered from its
// erased form; a resource of another kind is an error, never a panic.
func (d *Def[S, M, L, C]) Of(r *Resource) (*Typed[S], error) {
	s, ok := r.Spec.(*S)
	if !ok || s == nil {
		var zero S
		return nil, fmt.Errorf("%s: spec is %T, want *%T (kind %s)", r.Address, r.Spec, zero, d.name)
	}
	return &Typed[S]{Address: r.Address, Kind: r.Kind, Name: r.Name, Tags: r.Tags, Spec: s}, nil
}

// Spec returns r's spec for code that builds on a stack (tests, the
// deploy layer); see Of.
func (d *Def[S, M, L, C]) Spec(r *Resource) (*S, error) {
	t, err := d.Of(r)
	if err != nil {
		return nil, err
	}
	return t.Spec, nil
}

func (d *Def[S, M, L, C]) ctx(x *Ctx) (*Context[C], error) {
	c, err := d.connect(x.APIs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	return &Context[C]{API: c, Clock: x.Clock, Budget: x.Budget, erased: x}, nil
}

// FoundOf returns the typed live state behind live (nil when live is nil
// or was not read by this kind).
func FoundOf[M, L any](live *Live) *Found[M, L] {
	if live == nil {
		return nil
	}
	f, _ := live.found.(*Found[M, L])
	return f
}

// live turns a typed Read's result into the engine's Live.
func (d *Def[S, M, L, C]) live(r *Typed[S], f *Found[M, L]) *Live {
	if f == nil {
		return nil
	}
	f.Model = Normalize(f.Model)
	attrs := Flatten(&f.Model)
	ours := true
	if !d.untagged {
		ours = IsOurs(r.Tags, f.Tags)
		addTags(attrs, f.Tags)
	}
	return &Live{ID: f.ID, ARN: f.ARN, Ours: ours, Attrs: attrs, Outputs: f.Outputs, Covers: f.Covers, found: f}
}

// IsOurs says whether live tags mark a resource as the environment's that
// desired tags name.
func IsOurs(desired, live map[string]string) bool {
	want := desired[TagEnvironment]
	return want != "" && live[TagEnvironment] == want
}

// addTags adds "tags.K" attrs for every tag but AWS's own (aws:*, which
// nobody may set or remove), so that a tag removed from the file shows.
func addTags(a Attrs, tags map[string]string) {
	for k, v := range tags {
		if !strings.HasPrefix(k, "aws:") {
			a["tags."+k] = Attr{Value: v}
		}
	}
}

// Tags returns how tags go from live to desired: AWS's own (aws:*) are
// never removed.
func Tags(desired, live map[string]string) TagChange {
	t := TagChange{Set: map[string]string{}}
	for k, v := range desired {
		if lv, ok := live[k]; !ok || lv != v {
			t.Set[k] = v
		}
	}
	for k := range live {
		if _, ok := desired[k]; !ok && !strings.HasPrefix(k, "aws:") {
			t.Remove = append(t.Remove, k)
		}
	}
	sort.Strings(t.Remove)
	return t
}

func (d *Def[S, M, L, C]) desired(r *Typed[S], refs Refs) Attrs {
	m := Normalize(d.impl.Desired(r, refs))
	a := Flatten(&m)
	if !d.untagged {
		addTags(a, r.Tags)
	}
	return a
}

// Read implements Kind.
func (d *Def[S, M, L, C]) Read(ctx context.Context, x *Ctx, r *Resource) (*Live, error) {
	t, tx, err := d.one(x, r)
	if err != nil {
		return nil, err
	}
	f, err := d.impl.Read(ctx, tx, t)
	if err != nil || f == nil {
		return nil, err
	}
	return d.live(t, f), nil
}

// Desired implements Kind.
func (d *Def[S, M, L, C]) Desired(r *Resource, refs Refs) (Attrs, error) {
	t, err := d.Of(r)
	if err != nil {
		return nil, err
	}
	return d.desired(t, refs), nil
}

// Create implements Kind.
func (d *Def[S, M, L, C]) Create(ctx context.Context, x *Ctx, r *Resource, refs Refs) (Outputs, error) {
	t, tx, err := d.one(x, r)
	if err != nil {
		return nil, err
	}
	return d.impl.Create(ctx, tx, t, refs)
}

// Update implements Kind: changed is the engine's view of the difference;
// the kind gets the typed one.
func (d *Def[S, M, L, C]) Update(ctx context.Context, x *Ctx, r *Resource, live *Live, refs Refs, _ []plan.FieldChange) (Outputs, error) {
	t, tx, err := d.one(x, r)
	if err != nil {
		return nil, err
	}
	f := FoundOf[M, L](live)
	if f == nil {
		return nil, fmt.Errorf("update %s: no live %s to update", r.Address, d.name)
	}
	return d.impl.Update(ctx, tx, t, d.delta(t, f, refs), refs)
}

// delta is how f differs from r's desired state.
func (d *Def[S, M, L, C]) delta(r *Typed[S], f *Found[M, L], refs Refs) *Delta[M, L] {
	delta := &Delta[M, L]{Desired: Normalize(d.impl.Desired(r, refs)), Live: f.Model, Found: f}
	if !d.untagged {
		delta.Tags = Tags(r.Tags, f.Tags)
	}
	return delta
}

// Delete implements Kind.
func (d *Def[S, M, L, C]) Delete(ctx context.Context, x *Ctx, r *Resource, live *Live) error {
	t, tx, err := d.one(x, r)
	if err != nil {
		return err
	}
	return d.impl.Delete(ctx, tx, t, FoundOf[M, L](live))
}

// Capabilities implements the optional capabilities the typed kind has.
func (d *Def[S, M, L, C]) Capabilities() Capabilities {
	var c Capabilities
	if _, ok := d.impl.(TypedBatchReader[S, M, L, C]); ok {
		c.Batch = batchDef[S, M, L, C]{d}
	}
	if _, ok := d.impl.(TypedResolver[S, C]); ok {
		c.Resolve = resolveDef[S, M, L, C]{d}
	}
	if _, ok := d.impl.(TypedOutputsChanger[S]); ok {
		c.OutputsChanged = outputsDef[S, M, L, C]{d}
	}
	if _, ok := d.impl.(TypedAdopter[S, M, L, C]); ok {
		c.Adopt = adoptDef[S, M, L, C]{d}
	}
	if _, ok := d.impl.(TypedDeleteExplainer[M, L]); ok {
		c.ExplainDelete = explainDef[S, M, L, C]{d}
	}
	return c
}

type explainDef[S, M, L, C any] struct{ d *Def[S, M, L, C] }

func (e explainDef[S, M, L, C]) DeleteReason(live *Live) string {
	f := FoundOf[M, L](live)
	if f == nil {
		return ""
	}
	return e.d.impl.(TypedDeleteExplainer[M, L]).DeleteReason(f)
}

type batchDef[S, M, L, C any] struct{ d *Def[S, M, L, C] }

// all returns the typed resources of rs, and the kind's context on x.
func (d *Def[S, M, L, C]) all(x *Ctx, rs []*Resource) ([]*Typed[S], *Context[C], error) {
	ts := make([]*Typed[S], len(rs))
	for i, r := range rs {
		t, err := d.Of(r)
		if err != nil {
			return nil, nil, err
		}
		ts[i] = t
	}
	tx, err := d.ctx(x)
	return ts, tx, err
}

// one returns the typed resource r, and the kind's context on x.
func (d *Def[S, M, L, C]) one(x *Ctx, r *Resource) (*Typed[S], *Context[C], error) {
	ts, tx, err := d.all(x, []*Resource{r})
	if err != nil {
		return nil, nil, err
	}
	return ts[0], tx, nil
}

func (b batchDef[S, M, L, C]) ReadAll(ctx context.Context, x *Ctx, rs []*Resource) (map[string]*Live, error) {
	ts, tx, err := b.d.all(x, rs)
	if err != nil {
		return nil, err
	}
	found, err := b.d.impl.(TypedBatchReader[S, M, L, C]).ReadAll(ctx, tx, ts)
	if err != nil {
		return nil, err
	}
	out := map[string]*Live{}
	for _, t := range ts {
		if f := found[t.Address]; f != nil {
			out[t.Address] = b.d.live(t, f)
		}
	}
	return out, nil
}

type resolveDef[S, M, L, C any] struct{ d *Def[S, M, L, C] }

func (r resolveDef[S, M, L, C]) Resolve(ctx context.Context, x *Ctx, rs []Resource) ([]Resource, error) {
	ptrs := make([]*Resource, len(rs))
	for i := range rs {
		ptrs[i] = &rs[i]
	}
	ts, tx, err := r.d.all(x, ptrs)
	if err != nil {
		return nil, err
	}
	specs, err := r.d.impl.(TypedResolver[S, C]).Resolve(ctx, tx, ts)
	if err != nil {
		return nil, err
	}
	if len(specs) != len(rs) {
		return nil, fmt.Errorf("resolve %s: %d specs for %d resources", r.d.name, len(specs), len(rs))
	}
	out := make([]Resource, len(rs))
	for i, res := range rs {
		res.Spec = specs[i]
		out[i] = res
	}
	return out, nil
}

type outputsDef[S, M, L, C any] struct{ d *Def[S, M, L, C] }

func (o outputsDef[S, M, L, C]) OutputsChangedByUpdate(r *Resource) []string {
	t, err := o.d.Of(r)
	if err != nil {
		return nil
	}
	return o.d.impl.(TypedOutputsChanger[S]).OutputsChangedByUpdate(t)
}

type adoptDef[S, M, L, C any] struct{ d *Def[S, M, L, C] }

func (a adoptDef[S, M, L, C]) ARNTypes() []string {
	return a.d.impl.(TypedAdopter[S, M, L, C]).ARNTypes()
}

func (a adoptDef[S, M, L, C]) Adopt(ctx context.Context, x *Ctx, address, arn, environment string) (*Resource, *Live, error) {
	tx, err := a.d.ctx(x)
	if err != nil {
		return nil, nil, err
	}
	t, f, err := a.d.impl.(TypedAdopter[S, M, L, C]).Adopt(ctx, tx, arn)
	if err != nil || t == nil || f == nil || environment == "" || f.Tags[TagEnvironment] != environment {
		return nil, nil, err
	}
	t.Tags = f.Tags
	if t.Spec == nil {
		t.Spec = new(S)
	}
	t.Address, t.Kind = address, a.d.name
	r := &Resource{Address: address, Kind: a.d.name, Name: t.Name, Spec: t.Spec, Tags: t.Tags}
	return r, a.d.live(t, f), nil
}

// ProgressLine is a wait's progress as a person reads it: what is waited
// for, why (AWS's error code and message, when an attempt failed), the
// time waited and the budget left.
func ProgressLine(p retry.Progress) string {
	left := fmt.Sprintf("%s elapsed, %s left", p.Elapsed.Round(time.Second), p.Left.Round(time.Second))
	if p.Err == nil {
		return fmt.Sprintf("waiting for %s (%s)", p.What, left)
	}
	return fmt.Sprintf("%s: %s; retrying (%s)", p.What, ShortError(p.Err), left)
}

// ShortError is an AWS error as its code and message, without the SDK's
// request details.
func ShortError(err error) string {
	if c := awserr.Code(err); c != "" {
		return c + ": " + awserr.Message(err)
	}
	return err.Error()
}
