// Package resources implements every resource kind of a deploybot stack
// (resource.Kind): how each one is read by its deterministic name, normalised
// for diffing, created, updated and deleted with aws-sdk-go-v2, including the
// retries and waits particular to it (docs/research/aws-ecs.md §4, §5).
package resources

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// Kinds returns every kind of a stack by kind name: the compute kinds here
// and the network kinds (NetworkKinds).
func Kinds() map[string]resource.Kind {
	kinds := ComputeKinds()
	for k, v := range NetworkKinds() {
		kinds[k] = v
	}
	return kinds
}

// ComputeKinds returns the compute kinds only.
func ComputeKinds() map[string]resource.Kind {
	return map[string]resource.Kind{
		"ecs_cluster":                 ClusterKind{},
		"log_group":                   LogGroupKind{},
		"iam_role":                    RoleKind{},
		"secret":                      SecretKind{},
		"task_definition":             TaskDefinitionKind{},
		"ecs_service":                 ServiceKind{},
		"service_discovery_namespace": NamespaceKind{},
		"service_discovery_service":   DiscoveryServiceKind{},
		"autoscaling_target":          ScalableTargetKind{},
		"autoscaling_policy":          ScalingPolicyKind{},
	}
}

// specOf returns r's spec as *T.
func specOf[T any](r *resource.Resource) (*T, error) {
	s, ok := r.Spec.(*T)
	if !ok {
		var zero T
		return nil, fmt.Errorf("%s: spec is %T, want *%T", r.Address, r.Spec, zero)
	}
	return s, nil
}

// mustSpec is specOf for Desired, which cannot return an error: a wrong spec
// is a programming error of the stack builder.
func mustSpec[T any](r *resource.Resource) *T {
	s, err := specOf[T](r)
	if err != nil {
		panic(err)
	}
	return s
}

// addTags adds "tags.K" attrs. Live attrs get every tag the resource has, so
// that a tag removed from the file shows as a change.
func addTags(a resource.Attrs, tags map[string]string) {
	for k, v := range tags {
		a["tags."+k] = resource.Attr{Value: v}
	}
}

// isOurs says whether live tags mark the resource as this environment's.
func isOurs(r *resource.Resource, live map[string]string) bool {
	want := r.Tags[resource.TagEnvironment]
	return want != "" && live[resource.TagEnvironment] == want
}

// tagChanges returns the tags to set and the keys to remove to go from live
// to desired; ignore lists keys deploybot manages by other means.
func tagChanges(desired, live map[string]string, ignore ...string) (set map[string]string, remove []string) {
	skip := map[string]bool{}
	for _, k := range ignore {
		skip[k] = true
	}
	set = map[string]string{}
	for k, v := range desired {
		if lv, ok := live[k]; (!ok || lv != v) && !skip[k] {
			set[k] = v
		}
	}
	for k := range live {
		if _, ok := desired[k]; !ok && !skip[k] && !strings.HasPrefix(k, "aws:") {
			remove = append(remove, k)
		}
	}
	sort.Strings(remove)
	return set, remove
}

func itoa(n int) string  { return strconv.Itoa(n) }
func i32(n int32) string { return strconv.Itoa(int(n)) }
func btoa(b bool) string { return strconv.FormatBool(b) }

// jsonList is a sorted list as canonical JSON, the plan's format for lists.
func jsonList(items []string) string {
	s := append([]string{}, items...)
	sort.Strings(s)
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(x))
	}
	b.WriteByte(']')
	return b.String()
}

// changedPaths returns the set of changed paths.
func changedPaths(changed []plan.FieldChange) map[string]bool {
	m := map[string]bool{}
	for _, c := range changed {
		m[c.Path] = true
	}
	return m
}

// onlyTags says whether every changed path is a tag.
func onlyTags(changed []plan.FieldChange) bool {
	for _, c := range changed {
		if !strings.HasPrefix(c.Path, "tags.") {
			return false
		}
	}
	return true
}

// retryDelay is the pause between attempts of a retried call; the budgets
// come from docs/research/aws-ecs.md §5 and are scaled by Ctx.Budget.
const retryDelay = 5 * time.Second

// retry calls fn until it succeeds, fails with an error retryable does not
// accept, or budget runs out on x.Clock (the last error is returned).
func retry(ctx context.Context, x *resource.Ctx, address, what string, budget time.Duration, retryable func(error) bool, fn func() error) error {
	deadline := x.Clock.Now().Add(x.Wait(budget))
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		if !x.Clock.Now().Before(deadline) {
			return fmt.Errorf("%s: still failing after %s: %w", what, x.Wait(budget), err)
		}
		if attempt == 1 || attempt%6 == 0 {
			x.Say(address, fmt.Sprintf("%s: %s; retrying", what, shortErr(err)))
		}
		if err := x.Clock.Sleep(ctx, retryDelay); err != nil {
			return err
		}
	}
}

// poll calls check every interval until it reports done, fails, or budget
// runs out on x.Clock.
func poll(ctx context.Context, x *resource.Ctx, what string, interval, budget time.Duration, check func() (bool, error)) error {
	deadline := x.Clock.Now().Add(x.Wait(budget))
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if !x.Clock.Now().Before(deadline) {
			return fmt.Errorf("%s: not done after %s", what, x.Wait(budget))
		}
		if err := x.Clock.Sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// codeWithMessage returns a retryable predicate: the error code is code and
// (when any are given) the message contains one of the fragments.
func codeWithMessage(code string, fragments ...string) func(error) bool {
	return func(err error) bool {
		if awserr.Code(err) != code {
			return false
		}
		if len(fragments) == 0 {
			return true
		}
		msg := awserr.Message(err)
		for _, f := range fragments {
			if strings.Contains(msg, f) {
				return true
			}
		}
		return false
	}
}

// anyOf combines predicates.
func anyOf(ps ...func(error) bool) func(error) bool {
	return func(err error) bool {
		for _, p := range ps {
			if p(err) {
				return true
			}
		}
		return false
	}
}

func shortErr(err error) string {
	if c := awserr.Code(err); c != "" {
		return c + ": " + awserr.Message(err)
	}
	return err.Error()
}

// errConflict is returned when a create or delete finds a resource under our
// name that is not ours; the plan shows it as a conflict first.
var errConflict = errors.New("exists without this environment's tags; deploybot does not take it over")

// sortedTagKeys orders tag keys for SDK inputs that take lists, so calls
// are reproducible.
func sortedTagKeys(tags map[string]string) []string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
