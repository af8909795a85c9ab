// Package resource is the contract between the engine and the resource
// kinds. A stack is a list of Resources; each kind answers Read, Desired,
// Create, Update and Delete for its resources, idempotently (not-found is a
// state; deleting what is gone succeeds). The engine owns ordering,
// diffing, concurrency and the retries of whole steps; kinds own the calls
// and the waits particular to their resource (docs/research/aws-ecs.md §5).
//
// The engine sees every kind through the erased Kind interface. A kind is
// written against the typed contract in typed.go (its own spec, model, live
// detail and clients) and handed to the engine through Define, whose adapter
// makes the only type assertion between the two (crossplane-runtime's
// reconciler_typed.go does the same for managed resources).
package resource

import (
	"context"
	"errors"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/retry"
)

// KindName names a kind of resource; it is the first part of the addresses
// of its resources ("ecs_service" of "ecs_service.worker"). Each kind's
// package declares its name as a constant.
type KindName string

// Resource is one desired resource of a stack.
type Resource struct {
	Address   string   // "<kind>.<name>", e.g. "ecs_service.worker", "subnet.public_a"
	Kind      KindName // e.g. "ecs_service"
	Name      string   // deterministic AWS name, or the Name tag for EC2 resources
	DependsOn []string // addresses this one needs (their Outputs arrive as Refs)
	// Spec is the kind's desired state, a pointer to the spec type its
	// package declares; only the kind's adapter (Define) reads it. It may
	// hold the Prefect API key (the secret's spec); such fields never print.
	Spec any
	// Tags go on the resource in its create call: deploybot's own
	// (TagEnvironment, TagStack, TagManagedBy) plus the file's tags.
	Tags map[string]string
}

// Tag keys every deploybot resource carries (docs/design.md "State is AWS itself").
const (
	TagEnvironment = "deploybot:environment"
	TagStack       = "deploybot:stack"
	TagManagedBy   = "managed-by"
	ManagedByValue = "deploybot"
)

// Outputs are what dependents need from a resource: "id", "arn", ...
type Outputs map[string]string

// Refs are the Outputs of a resource's dependencies, by address. During a
// plan, a dependency that does not exist yet has every output equal to
// plan.Unknown.
type Refs map[string]Outputs

// Get returns refs[address][key], or plan.Unknown.
func (r Refs) Get(address, key string) string {
	if o, ok := r[address]; ok {
		if v, ok := o[key]; ok && v != "" {
			return v
		}
	}
	return plan.Unknown
}

// Ref is a value that is either literal (from the environment file, e.g. an
// existing subnet id) or an output of another resource of the stack.
type Ref struct {
	Literal string
	Address string // resource address, when not literal
	Key     string // output key, e.g. "id"
}

// Resolve returns the literal, or the referenced output (plan.Unknown when
// that resource does not exist yet).
func (r Ref) Resolve(refs Refs) string {
	if r.Address == "" {
		return r.Literal
	}
	return refs.Get(r.Address, r.Key)
}

// ResolveAll resolves each of rs.
func ResolveAll(refs Refs, rs []Ref) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Resolve(refs))
	}
	return out
}

// Attr is one normalised, comparable field of a resource.
type Attr struct {
	Value string
	// Sensitive: the value is a digest, never shown (plan.SensitiveChanged).
	Sensitive bool
	// ForceNew: AWS cannot change it in place; a change replaces the resource.
	ForceNew bool
	// Derived: deploybot computes the value from other values (not the
	// environment file's own setting); the plan shows its change after the
	// changes that cause it (plan.FieldChange.Derived).
	Derived bool
}

// Attrs are a resource's fields by path ("cpu", "container.image",
// "tags.team"), desired and live alike.
type Attrs map[string]Attr

// Live is what Read found.
type Live struct {
	ID string // primary identifier (ARN, id or name)
	// Ours says the resource carries TagEnvironment with this environment's
	// name; one that exists without it is a conflict, never taken over.
	Ours    bool
	Attrs   Attrs
	Outputs Outputs
	// ARN is the resource's ARN when AWS gives it one: the inventory of what
	// is tagged for the environment (engine orphans) is matched against it.
	ARN string
	// Covers are ARN prefixes of what the resource accounts for beyond
	// itself: what goes with it (a task definition's other revisions, a
	// cluster's tasks). The inventory does not take them for orphans.
	Covers []string

	// found is the typed live state behind a Define'd kind's Live.
	found any
}

// Kind implements one resource kind, as the engine sees it. Kinds are
// written with the typed contract (Define); hand-written implementations
// are test doubles.
type Kind interface {
	// Read finds the live resource by its deterministic name or tags. It
	// must not need any other resource's live state, so that the engine can
	// run every Read of a plan at once. (nil, nil) means absent.
	Read(ctx context.Context, x *Ctx, r *Resource) (*Live, error)
	// Desired returns the desired attrs given the dependencies' outputs.
	Desired(r *Resource, refs Refs) (Attrs, error)
	// Create makes the resource (tags in the create call) and waits until
	// dependents can use it.
	Create(ctx context.Context, x *Ctx, r *Resource, refs Refs) (Outputs, error)
	// Update changes the fields in changed (none of them ForceNew).
	Update(ctx context.Context, x *Ctx, r *Resource, live *Live, refs Refs, changed []plan.FieldChange) (Outputs, error)
	// Delete removes the resource and waits until it is gone enough for
	// what it depended on to be deleted. Already gone is success; live may
	// be nil (not read).
	Delete(ctx context.Context, x *Ctx, r *Resource, live *Live) error
}

// BatchReader is a kind whose resources of one plan can all be read with
// one call (EC2's Describe* take a filter with many values, which EC2 ORs):
// a managed-network plan then makes one DescribeSubnets instead of one per
// subnet, which also keeps a plan clear of EC2's per-account rate limits on
// Describe* actions (docs/research/aws-ecs.md). When planning, the engine
// calls ReadAll once per kind with every resource of that kind in the plan,
// desired and leftover alike, instead of Read for each. ReadAll returns what
// Read would return for each resource, keyed by address; a resource that is
// absent is missing from the map.
type BatchReader interface {
	ReadAll(ctx context.Context, x *Ctx, rs []*Resource) (map[string]*Live, error)
}

// Resolver is a kind whose desired state depends on facts of the account
// that only AWS knows, which Desired (no I/O) cannot look up: the names of
// the region's availability zones. When planning an apply, the engine calls
// Resolve once per kind with every desired resource of that kind,
// concurrently with the Reads (so it adds no round trip), and uses the
// resources it returns (the same addresses, Specs completed). Resolve must
// not modify the resources it is given.
type Resolver interface {
	Resolve(ctx context.Context, x *Ctx, rs []Resource) ([]Resource, error)
}

// OutputsChanger is a kind whose Update gives the resource new outputs (a
// task definition's update registers a new revision, so its "arn"
// changes). The plan then shows the fields of dependents that use those
// outputs as known after apply.
type OutputsChanger interface {
	OutputsChangedByUpdate(r *Resource) []string
}

// Adopter is a kind whose resources can be recognised by their ARN among
// what is tagged for the environment, so that one the stack no longer has
// (an orphan: the worker security group left in the VPC a file moved away
// from, issue 11 item 11) is planned for deletion and a destroy can prove
// nothing is left.
type Adopter interface {
	// ARNTypes are the "service:resource-type" pairs of the kind's ARNs
	// ("ec2:security-group", "ecs:task-definition").
	ARNTypes() []string
	// Adopt reads the resource arn names afresh and returns it as a
	// resource of this kind that Delete can remove, with its live state;
	// nil when it is gone (the tagging index lags behind deletes), going
	// (a secret scheduled for deletion) or is not environment's (its
	// TagEnvironment tag says another). address is the address to give it.
	Adopt(ctx context.Context, x *Ctx, address, arn, environment string) (*Resource, *Live, error)
}

// DeleteExplainer is a kind whose delete does something other than remove
// what exists (a work pool deploybot did not create keeps all but the
// defaults deploybot set): the plan says what, as the change's reason.
type DeleteExplainer interface {
	DeleteReason(live *Live) string
}

// Capabilities are the optional capabilities of a kind.
type Capabilities struct {
	Batch          BatchReader
	Resolve        Resolver
	OutputsChanged OutputsChanger
	Adopt          Adopter
	ExplainDelete  DeleteExplainer
}

// CapabilitiesOf returns k's optional capabilities: those a Define'd kind
// declares, or those a hand-written kind implements.
func CapabilitiesOf(k Kind) Capabilities {
	if c, ok := k.(interface{ Capabilities() Capabilities }); ok {
		return c.Capabilities()
	}
	var c Capabilities
	c.Batch, _ = k.(BatchReader)
	c.Resolve, _ = k.(Resolver)
	c.OutputsChanged, _ = k.(OutputsChanger)
	c.Adopt, _ = k.(Adopter)
	c.ExplainDelete, _ = k.(DeleteExplainer)
	return c
}

// APIs are the clients a run has. A kind takes what it uses through the
// connect function it is defined with, and sees nothing else.
type APIs struct {
	AWS *awsapi.Clients
	// Prefect is the Prefect API client of a run that manages Prefect
	// objects (nil when it has none). It is typed by the kinds that use it:
	// each declares the interface of the calls it makes and its connect
	// function checks for it, so the engine and the AWS kinds do not depend
	// on the Prefect client.
	Prefect any
}

// Ctx is what the engine gives a kind besides the resource.
type Ctx struct {
	APIs  APIs
	Clock clock.Clock
	// Budget scales wait and retry budgets (1 = the reference's budgets);
	// tests may shrink it to prove that a budget running out is reported.
	Budget float64
	// Events receives the kind's progress.
	Events event.Sink
	// Since is when the step the call belongs to began (zero outside a
	// step, e.g. the reads of a plan): the events carry it.
	Since time.Time
	// Outcome receives what a kind hands back about its change (the ECS
	// deployment a service update started) for the layer that consumes it;
	// nil when nobody listens. The engine passes outcomes on without
	// knowing what they are.
	Outcome func(any)
	// Reads are the shared answers of a plan's reads (Shared); nil outside
	// a plan.
	Reads *Reads
}

// Wait returns d scaled by the Ctx budget.
func (c *Ctx) Wait(d time.Duration) time.Duration {
	if c.Budget <= 0 {
		return d
	}
	return time.Duration(float64(d) * c.Budget)
}

// Say reports progress about the resource at address.
func (c *Ctx) Say(address, msg string) {
	c.emit(event.Event{Subject: address, Resource: true, Message: msg})
}

func (c *Ctx) emit(e event.Event) {
	if c.Events == nil {
		return
	}
	if c.Clock != nil {
		e.Time = c.Clock.Now()
	}
	e.Since = c.Since
	c.Events.Emit(e)
}

// Waits returns the retry options of a wait of the resource at address:
// the budget scaled, the Ctx's clock, and progress lines that say what is
// waited for (retry.ReportEvery at the least).
func (c *Ctx) Waits(address string, budget, every time.Duration) retry.Options {
	return retry.Options{Clock: c.Clock, Budget: c.Wait(budget), Every: every,
		Report: func(p retry.Progress) {
			c.emit(event.Event{Subject: address, Resource: true, Message: ProgressLine(p),
				Wait: &event.Wait{What: p.What, Elapsed: p.Elapsed, Left: p.Left}})
		}}
}

// UnreadableError is what a Read returns when it cannot look at all: the
// run has no credentials for the resource's service (a plan without the
// Prefect API key, in a fork or a plan job without the secret), or the
// service refused the ones it has. The engine then plans everything else,
// lists the resource as not read (plan.Plan.Unread, with Reason), and
// refuses to apply or destroy it blind.
type UnreadableError struct{ Reason string }

func (e *UnreadableError) Error() string { return "not read: " + e.Reason }

// ErrNotOurs is the error of a create or delete that finds a resource under
// our name that is not this environment's; the plan shows it as a conflict
// first.
var ErrNotOurs = errors.New("exists without this environment's tags; deploybot does not take it over")

// RetryEvery is the pause between attempts of a call retried while AWS
// catches up (docs/research/aws-ecs.md §5 gives the budgets).
const RetryEvery = 5 * time.Second
