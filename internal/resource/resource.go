// Package resource is the contract between the engine and the resource kinds:
// a stack is a list of Resources, and each kind answers Read, Desired, Create,
// Update and Delete for its resources, idempotently (not-found is a state;
// deleting what is gone succeeds). The engine owns ordering, diffing,
// concurrency and retries of whole steps; kinds own the AWS calls and the
// waits particular to their resource (docs/research/aws-ecs.md §5).
package resource

import (
	"context"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/plan"
)

// Resource is one desired AWS resource of a stack.
type Resource struct {
	Address   string   // "<kind>.<name>", e.g. "ecs_service.worker", "subnet.public_a"
	Kind      string   // e.g. "ecs_service"
	Name      string   // deterministic AWS name, or the Name tag for EC2 resources
	DependsOn []string // addresses this one needs (their Outputs arrive as Refs)
	// Spec is the kind-specific desired state (a struct defined by the kind's
	// package). It may hold the Prefect API key (the secret); such fields are
	// tagged `json:"-"` and never printed.
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
// "tags.team"). Desired and Live attrs use the same paths and the same
// normalisation, so that a resource just applied diffs as no change.
type Attrs map[string]Attr

// Live is what Read found.
type Live struct {
	ID string // primary identifier (ARN, id or name)
	// Ours says the resource carries TagEnvironment with this environment's
	// name; one that exists without it is a conflict, never taken over.
	Ours    bool
	Attrs   Attrs
	Outputs Outputs
	// Raw is kind-specific detail that Update/Delete need.
	Raw any
}

// Progress receives human progress lines; the CLI prints them to stderr with
// elapsed time. Kinds call it for long waits ("waiting for deployment ...").
type Progress func(address, message string)

// Ctx is what kinds get besides the Resource.
type Ctx struct {
	AWS      *awsapi.Clients
	Clock    clock.Clock
	Env      *config.Environment
	Progress Progress
	// Budget scales wait and retry budgets (1 = the reference's budgets);
	// tests may shrink it to prove that a budget running out is reported.
	Budget float64
}

// Wait returns d scaled by the Ctx budget.
func (c *Ctx) Wait(d time.Duration) time.Duration {
	if c.Budget <= 0 {
		return d
	}
	return time.Duration(float64(d) * c.Budget)
}

// Say reports progress if anyone listens.
func (c *Ctx) Say(address, msg string) {
	if c.Progress != nil {
		c.Progress(address, msg)
	}
}

// Kind implements one resource kind.
type Kind interface {
	// Read finds the live resource by its deterministic name or tags. It
	// must not need any other resource's live state, so that the engine can
	// run every Read of a plan at once. (nil, nil) means absent.
	Read(ctx context.Context, x *Ctx, r *Resource) (*Live, error)
	// Desired returns the desired attrs given the dependencies' outputs.
	Desired(r *Resource, refs Refs) Attrs
	// Create makes the resource (tags in the create call) and waits until
	// dependents can use it.
	Create(ctx context.Context, x *Ctx, r *Resource, refs Refs) (Outputs, error)
	// Update changes the fields in changed (none of them ForceNew).
	Update(ctx context.Context, x *Ctx, r *Resource, live *Live, refs Refs, changed []plan.FieldChange) (Outputs, error)
	// Delete removes the resource and waits until it is gone enough for
	// what it depended on to be deleted. Already gone is success.
	Delete(ctx context.Context, x *Ctx, r *Resource, live *Live) error
}

// Resolver is an optional capability of a Kind whose desired state depends
// on facts of the account that only AWS knows, which Desired (no I/O) cannot
// look up: the names of the region's availability zones (regions have gaps
// and names are mapped per account). When planning an apply, the engine
// calls Resolve once per kind with every desired resource of that kind,
// concurrently with the Reads (so it adds no round trip), and uses the
// resources it returns — the same addresses, Specs completed — for Desired,
// Create and Update. Resolve must not modify the resources it is given, and
// fails when the file asks for what the account cannot have (more zones
// than the region offers), naming the file's field.
type Resolver interface {
	Resolve(ctx context.Context, x *Ctx, rs []Resource) ([]Resource, error)
}

// FailedDeployment is implemented by an error of a kind whose change
// started a deployment that then failed (the ECS service: circuit breaker,
// rollback, timeout). The engine keeps its outputs, so the report still
// names the deployment, and deploy reports the failure with the stopped
// tasks and ECS's own rollback (docs/research/aws-ecs.md §4.1, §4.3).
type FailedDeployment interface {
	error
	DeploymentOutputs() Outputs
	// DeploymentFailure: the terminal status (STOPPED, ROLLBACK_SUCCESSFUL,
	// ROLLBACK_FAILED, TIMED_OUT), why, the stopped tasks and recent events.
	DeploymentFailure() (status, reason string, stopped []plan.StoppedTask, events []string)
}

// BatchReader is an optional capability of a Kind whose resources of one
// plan can all be read with one call (EC2's Describe* take a filter with
// many values, which EC2 ORs): a managed-network plan then makes one
// DescribeSubnets instead of one per subnet, which also keeps a plan clear of
// EC2's per-account rate limits on Describe* actions (docs/research/aws-ecs.md).
// When planning, the engine calls ReadAll once per kind with every resource
// of that kind in the plan, desired and leftover alike, instead of Read for
// each. ReadAll returns what Read would return for each resource, keyed by
// address; a resource that is absent is missing from the map. Read stays
// for single reads (re-reads during an apply, tests), and must agree with
// ReadAll on every resource.
type BatchReader interface {
	ReadAll(ctx context.Context, x *Ctx, rs []*Resource) (map[string]*Live, error)
}
