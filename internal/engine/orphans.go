package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/inventory"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// Orphans (issue 11 item 11): a resource tagged for the environment that
// its stack no longer has, and that no leftover read found, because its
// name or place changed (the worker security group in the VPC the file
// moved away from, the Cloud Map namespace of a renamed
// service_discovery.namespace). The inventory (internal/inventory) lists
// every candidate beside the plan's other reads; what a read already found
// (its ARN or id), or what it covers (Live.Covers: a task definition's
// older revisions, a cluster's tasks), is accounted for; the rest is read
// by the kind that has its ARN type (resource.Adopter) and, when it exists
// and is this environment's, planned for deletion like a leftover.

// hasInventory says whether the engine can list st's inventory: st says
// what it is, and the engine has the clients (test doubles of the engine
// may have neither).
func (e *Engine) hasInventory(st *stack.Stack) bool {
	return st.Inventory.TagKey != "" && e.AWS != nil && e.AWS.Tagging != nil && e.AWS.IAM != nil
}

// listInventory lists the candidates of the stack's inventory, retried
// while throttled.
func (e *Engine) listInventory(ctx context.Context, q inventory.Query) ([]string, error) {
	var arns []string
	err := e.retryThrottled(ctx, "inventory", func() error {
		var err error
		arns, err = inventory.List(ctx, e.AWS.Tagging, e.AWS.IAM, q)
		return err
	})
	return arns, err
}

// findOrphans adds to p what the inventory lists and no read of p
// accounts for, once the kind of its type has read it (addOrphans), and
// notes what no kind can read. Not knowing must not block the plan of what
// the file asks for: a failed listing or read is a note.
func (e *Engine) findOrphans(ctx context.Context, p *Planned) {
	if p.inventoryErr != nil {
		p.notes = append(p.notes, fmt.Sprintf("could not list what is tagged %s=%s, so resources left behind by earlier changes are not looked for: %v",
			resource.TagEnvironment, p.st.Environment, p.inventoryErr))
		return
	}
	found, unknown, err := e.adopt(ctx, p.st.Environment, unclaimed(p, p.inventory))
	if err != nil {
		p.notes = append(p.notes, fmt.Sprintf("could not check what is tagged for the environment but not part of its stack: %v", err))
	}
	if err := addOrphans(p, found); err != nil {
		p.notes = append(p.notes, fmt.Sprintf("could not plan the deletion of what is tagged for the environment but not part of its stack: %v", err))
	}
	for _, arn := range unknown {
		p.notes = append(p.notes, fmt.Sprintf("%s is tagged %s=%s but is not part of its stack, and deploybot has no kind of resource for it: it is left alone (delete it by hand if nothing uses it)",
			arn, resource.TagEnvironment, p.st.Environment))
	}
}

// orphanReason is the plan's reason for deleting an orphan (its address
// names its id).
func orphanReason(environment string) string {
	return fmt.Sprintf("tagged %s=%s but no longer part of its stack (left behind by an earlier change)", resource.TagEnvironment, environment)
}

// unclaimed are the ARNs of arns that no live resource of p accounts for.
func unclaimed(p *Planned, arns []string) []string {
	byARN := map[string]bool{}
	byID := map[string]bool{}
	var covers []string
	for _, live := range p.live {
		byARN[live.ARN] = true
		if !strings.HasPrefix(live.ID, "arn:") {
			// An EC2 id ("sg-0123") or a Cloud Map one ("ns-…"): unique
			// within its service, and the last part of the ARN.
			byID[live.ID] = true
		}
		covers = append(covers, live.Covers...)
	}
	var out []string
next:
	for _, arn := range arns {
		if byARN[arn] || byID[inventory.ID(arn)] {
			continue
		}
		for _, c := range covers {
			if strings.HasPrefix(arn, c) {
				continue next
			}
		}
		out = append(out, arn)
	}
	return out
}

// adopters are the plan's kinds that can adopt, by the ARN types they
// name.
func (e *Engine) adopters() map[string]resource.KindName {
	out := map[string]resource.KindName{}
	for name, k := range e.Kinds {
		if a := resource.CapabilitiesOf(k).Adopt; a != nil {
			for _, t := range a.ARNTypes() {
				out[t] = name
			}
		}
	}
	return out
}

// adopted is what adopt found of one ARN.
type adopted struct {
	arn  string
	r    *resource.Resource
	live *resource.Live
}

// adopt reads each ARN with the kind that has its type, all at once, and
// returns what exists and is the environment's; unknown are the ARNs no
// kind has (left alone and noted: deploybot cannot delete what it has no
// kind for).
func (e *Engine) adopt(ctx context.Context, environment string, arns []string) (found []adopted, unknown []string, err error) {
	kinds := e.adopters()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		sem  = make(chan struct{}, readConcurrency)
	)
	for _, arn := range arns {
		kind, ok := kinds[inventory.Type(arn)]
		if !ok {
			unknown = append(unknown, arn)
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			address := orphanAddress(kind, arn)
			var (
				r    *resource.Resource
				live *resource.Live
			)
			err := e.retryThrottled(ctx, address, func() error {
				var err error
				r, live, err = resource.CapabilitiesOf(e.Kinds[kind]).Adopt.Adopt(ctx, e.ctx(), address, arn, environment)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("read %s (%s): %w", address, arn, err))
				return
			}
			if r != nil && live != nil && live.Ours {
				found = append(found, adopted{arn: arn, r: r, live: live})
			}
		})
	}
	wg.Wait()
	sort.Slice(found, func(i, j int) bool { return found[i].r.Address < found[j].r.Address })
	sort.Strings(unknown)
	return found, unknown, errors.Join(errs...)
}

var notAddressChar = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// orphanAddress is the address an orphan is planned under: its kind and
// its id ("security_group.orphan_sg-0123").
func orphanAddress(kind resource.KindName, arn string) string {
	return string(kind) + ".orphan_" + strings.Trim(notAddressChar.ReplaceAllString(inventory.ID(arn), "_"), "_")
}

// addOrphans adds what adopt found to p as resources the file does not
// ask for, after the stack's own: each depends on the orphans of the kinds
// its kind depends on in the stack (an orphan Cloud Map service goes
// before an orphan namespace), so that they are deleted in order.
func addOrphans(p *Planned, found []adopted) error {
	if len(found) == 0 {
		return nil
	}
	kindDeps := map[resource.KindName]map[resource.KindName]bool{}
	for _, addr := range p.order {
		r := p.resources[addr]
		for _, d := range p.graph.deps[addr] {
			if kindDeps[r.Kind] == nil {
				kindDeps[r.Kind] = map[resource.KindName]bool{}
			}
			kindDeps[r.Kind][p.resources[d].Kind] = true
		}
	}
	deps := map[string][]string{}
	for _, addr := range p.graph.nodes {
		deps[addr] = p.graph.deps[addr]
	}
	var add []adopted
	for _, o := range found {
		if _, taken := deps[o.r.Address]; taken {
			continue
		}
		var ds []string
		for _, other := range found {
			if other.r.Address != o.r.Address && kindDeps[o.r.Kind][other.r.Kind] {
				ds = append(ds, other.r.Address)
			}
		}
		o.r.DependsOn = ds
		deps[o.r.Address] = ds
		add = append(add, o)
	}
	g, err := newGraph(deps)
	if err != nil {
		return err
	}
	order, err := g.topoOrder()
	if err != nil {
		return err
	}
	for _, o := range add {
		p.resources[o.r.Address] = o.r
		p.live[o.r.Address] = o.live
		p.absent[o.r.Address] = true
		p.orphans[o.r.Address] = o.arn
	}
	p.graph, p.order = g, order
	return nil
}

// LeftBehindError: a destroy finished, but the inventory still lists
// resources of the environment.
type LeftBehindError struct {
	Environment string
	Left        []string // ARNs
}

func (e *LeftBehindError) Error() string {
	return fmt.Sprintf("destroy of environment %s finished, but %d resource(s) tagged %s=%s are still there: %s",
		e.Environment, len(e.Left), resource.TagEnvironment, e.Environment, strings.Join(e.Left, ", "))
}

// verifyEmpty lists the environment's inventory after a destroy and fails,
// naming them, when resources are left. A candidate the kind of its type
// no longer finds (the tagging index lags behind deletes), that a deleted
// resource covered (a cluster's stopped tasks), or that the destroy
// deleted with a kind that cannot read it by its ARN, is gone.
func (e *Engine) verifyEmpty(ctx context.Context, p *Planned) error {
	arns, err := e.listInventory(ctx, p.st.Inventory)
	if err != nil {
		return fmt.Errorf("destroy of environment %s: could not check that nothing is left (the plan and apply roles need tag:GetResources and iam:ListRoles; re-run bootstrap): %w", p.st.Environment, err)
	}
	var covers []string
	for _, live := range p.live {
		covers = append(covers, live.Covers...)
	}
	var candidates []string
next:
	for _, arn := range arns {
		for _, c := range covers {
			if strings.HasPrefix(arn, c) {
				continue next
			}
		}
		candidates = append(candidates, arn)
	}
	found, unknown, err := e.adopt(ctx, p.st.Environment, candidates)
	if err != nil {
		return fmt.Errorf("destroy of environment %s: could not check that nothing is left: %w", p.st.Environment, err)
	}
	// A resource of a kind that cannot adopt (cannot read it by its ARN)
	// that this destroy deleted is gone: its kind's Delete said so, and the
	// tagging index may still list it.
	deleted := map[string]bool{}
	for addr, ch := range p.changes {
		if live := p.live[addr]; ch.Action == plan.Delete && live != nil && live.ARN != "" {
			deleted[live.ARN] = true
		}
	}
	var left []string
	for _, arn := range unknown {
		if !deleted[arn] {
			left = append(left, arn)
		}
	}
	for _, o := range found {
		left = append(left, o.arn)
	}
	if len(left) == 0 {
		if e.Events != nil {
			e.Events.Emit(event.Event{Time: e.clock().Now(), Subject: "inventory",
				Message: fmt.Sprintf("checked: nothing tagged %s=%s is left", resource.TagEnvironment, p.st.Environment)})
		}
		return nil
	}
	sort.Strings(left)
	return &LeftBehindError{Environment: p.st.Environment, Left: left}
}
