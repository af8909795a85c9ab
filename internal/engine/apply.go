package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// run is the state of one Apply or Destroy.
type run struct {
	e      *Engine
	p      *Planned
	report *plan.Report

	mu       sync.Mutex
	outputs  map[string]resource.Outputs // current outputs by address
	steps    map[string]plan.StepResult  // by step id
	outcomes []plan.Outcome              // what the kinds handed back
}

func (e *Engine) newRun(p *Planned, op plan.Operation) *run {
	r := &run{
		e: e, p: p,
		outputs: map[string]resource.Outputs{},
		steps:   map[string]plan.StepResult{},
		report: &plan.Report{
			Environment: p.st.Environment,
			Operation:   op,
			Plan:        p.Plan,
			StartedAt:   e.clock().Now(),
		},
	}
	for addr, live := range p.live {
		if live.Ours {
			r.outputs[addr] = live.Outputs
		}
	}
	return r
}

// Apply carries out an apply plan: creates and updates in dependency order,
// independent resources at once (up to Concurrency), a replacement as
// delete-then-create. Every deploybot name is deterministic and AWS keeps
// names unique (cluster, role, log group, secret, security group in a VPC,
// ...), so a create-before-delete would collide with the old resource; and
// with no state file, two resources under one name would make the next Read
// ambiguous. A delete half runs after those of replaced dependents, and the
// create half after its delete half. Resources the file no longer asks for
// (Planned's leftovers) are deleted before any other step.
//
// Resources the plan left unchanged are looked at again once their
// dependencies are done: when a dependency's outputs changed (a new
// task-definition revision), the dependent is updated with the new values.
// A failed step skips everything that depends on it; the Report lists every
// step, and the error joins the failures.
func (e *Engine) Apply(ctx context.Context, p *Planned) (*plan.Report, error) {
	if p == nil || p.Plan == nil || p.Plan.Operation != plan.OpApply {
		return nil, errors.New("apply: not an apply plan")
	}
	var conflicts []string
	for _, c := range p.Plan.Changes {
		if c.Action == plan.Conflict {
			conflicts = append(conflicts, c.Address)
		}
	}
	if len(conflicts) > 0 {
		err := &ConflictError{Addresses: conflicts}
		return e.refused(p, plan.OpApply, err), err
	}
	if len(p.Plan.Unread) > 0 {
		err := &UnreadError{Unread: p.Plan.Unread}
		return e.refused(p, plan.OpApply, err), err
	}
	r := e.newRun(p, plan.OpApply)

	var steps []*step
	// Leftovers (resources the file no longer asks for) are deleted after
	// their leftover dependents and after the resources that still point at
	// them have moved off (a service leaving a security group); what a
	// leftover depends on changes only once it is gone (a scaling target
	// goes before its service is updated or replaced).
	leftover := map[string]bool{}
	for _, addr := range p.order {
		if ch, ok := p.changes[addr]; ok && p.absent[addr] && ch.Action == plan.Delete {
			leftover[addr] = true
		}
	}
	holdFor := map[string][]string{} // present address → leftover deletes to wait for
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		if !leftover[addr] {
			continue
		}
		s := r.deleteStep(p.graph, addr, leftover, false)
		uses := p.graph.transitiveDeps(addr)
		for _, x := range p.order {
			if p.absent[x] || slices.Contains(uses, x) {
				continue
			}
			if refersTo(p.live[x], p.live[addr]) {
				s.after = append(s.after, "apply:"+x)
			}
		}
		for _, d := range uses {
			// Only what changes waits for the leftover to go; an unchanged
			// dependency (the VPC under a NAT gateway) has nothing to wait
			// for, and holding it would deadlock with the leftover's wait
			// for its users to move off.
			if ch, ok := p.changes[d]; ok && (ch.Action == plan.Update || ch.Action == plan.Replace) {
				holdFor[d] = append(holdFor[d], s.id)
			}
		}
		steps = append(steps, s)
	}
	replaced := map[string]bool{}
	for _, addr := range p.order {
		if ch, ok := p.changes[addr]; ok && ch.Action == plan.Replace {
			replaced[addr] = true
		}
	}
	// Delete halves of replacements: a replaced dependent goes first.
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		if !replaced[addr] {
			continue
		}
		s := r.deleteStep(p.graph, addr, replaced, true)
		s.after = append(s.after, holdFor[addr]...)
		steps = append(steps, s)
	}
	for _, addr := range p.order {
		if p.absent[addr] {
			continue
		}
		s := &step{id: "apply:" + addr, run: func(ctx context.Context) error { return r.upsert(ctx, addr) }}
		if slices.Contains(p.deferred, addr) {
			s.run = func(context.Context) error { return nil } // ApplyDeferred's
		}
		for _, d := range p.graph.deps[addr] {
			s.after = append(s.after, "apply:"+d)
		}
		s.after = append(s.after, holdFor[addr]...)
		if replaced[addr] {
			s.after = append(s.after, "delete:"+addr)
		}
		steps = append(steps, s)
	}
	outcomes := walk(ctx, steps, e.concurrency())
	p.run = r
	return r.report, r.finish(steps, outcomes)
}

// deleteStep deletes addr (the first half of its replacement with
// replacing) after the deletes of those of its dependents that are in set.
func (r *run) deleteStep(g *graph, addr string, set map[string]bool, replacing bool) *step {
	s := &step{id: "delete:" + addr, run: func(ctx context.Context) error { return r.delete(ctx, addr, replacing) }}
	for _, d := range g.transitiveDependents(addr) {
		if set[d] {
			s.after = append(s.after, "delete:"+d)
		}
	}
	return s
}

// ApplyDeferred writes what Defer left out of Apply, with the outputs
// Apply ended with, and adds its steps to Apply's report (rep). It writes
// nothing when Apply did not run, or failed: the next plan still shows the
// change.
func (e *Engine) ApplyDeferred(ctx context.Context, p *Planned, rep *plan.Report) error {
	r := p.run
	if r == nil || rep == nil || (rep.Status != plan.StatusSucceeded && rep.Status != plan.StatusNoChanges) {
		return nil
	}
	var errs []error
	for len(p.deferred) > 0 {
		addr := p.deferred[0]
		p.deferred = p.deferred[1:]
		err := r.upsert(ctx, addr)
		r.mu.Lock()
		res, ok := r.steps["apply:"+addr]
		r.mu.Unlock()
		if ok {
			rep.Steps = append(rep.Steps, res)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		rep.Status, rep.Error = plan.StatusFailed, err.Error()
		return err
	}
	if rep.Status == plan.StatusNoChanges && len(rep.Steps) > 0 {
		rep.Status = plan.StatusSucceeded
	}
	return nil
}

// Destroy deletes every resource of a destroy plan, dependents before what
// they use (docs/research/aws-ecs.md §5.3: the service before the cluster and
// its security group, the roles last because nothing depends on them after
// the service is gone), independent ones at once. What the stack's guard
// refuses (a protected environment) is refused before any call.
func (e *Engine) Destroy(ctx context.Context, p *Planned) (*plan.Report, error) {
	if p == nil || p.Plan == nil || p.Plan.Operation != plan.OpDestroy {
		return nil, errors.New("destroy: not a destroy plan")
	}
	if err := p.st.Refusal(plan.OpDestroy); err != nil {
		return e.refused(p, plan.OpDestroy, err), err
	}
	r := e.newRun(p, plan.OpDestroy)
	var steps []*step
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		s := &step{id: "delete:" + addr, run: func(ctx context.Context) error {
			if ch, ok := p.changes[addr]; !ok || ch.Action != plan.Delete {
				return nil
			}
			return r.delete(ctx, addr, false)
		}}
		for _, d := range p.graph.dependents[addr] {
			s.after = append(s.after, "delete:"+d)
		}
		steps = append(steps, s)
	}
	outcomes := walk(ctx, steps, e.concurrency())
	if err := r.finish(steps, outcomes); err != nil || !e.hasInventory(p.st) || ctx.Err() != nil {
		return r.report, err
	}
	// Every planned delete is done: prove that nothing tagged for the
	// environment is left (issue 11 item 11).
	if err := e.verifyEmpty(ctx, p); err != nil {
		r.report.Status, r.report.Error = plan.StatusFailed, err.Error()
		r.report.FinishedAt = e.clock().Now()
		return r.report, err
	}
	return r.report, nil
}

func (e *Engine) refused(p *Planned, op plan.Operation, err error) *plan.Report {
	now := e.clock().Now()
	return &plan.Report{Environment: p.st.Environment, Operation: op, Status: plan.StatusRefused, Plan: p.Plan,
		Error: err.Error(), StartedAt: now, FinishedAt: now}
}

// finish records skipped steps, orders the step results as the plan is
// ordered, and sets the status.
func (r *run) finish(steps []*step, outcomes map[string]outcome) error {
	var errs []error
	var results []plan.StepResult
	for _, s := range steps {
		o := outcomes[s.id]
		addr := stepAddress(s.id)
		switch o.state {
		case stepFailed:
			errs = append(errs, o.err)
		case stepSkipped:
			res := plan.StepResult{Address: addr, Action: r.plannedAction(s.id), Status: "skipped"}
			if o.cause != "" {
				res.Error = fmt.Sprintf("not attempted: %s failed", stepAddress(o.cause))
			} else if o.err != nil {
				res.Error = "not attempted: " + o.err.Error()
				if !errors.Is(o.err, errUpstream) && len(errs) == 0 {
					errs = append(errs, fmt.Errorf("%s: %w", addr, o.err))
				}
			}
			if res.Action == plan.NoOp {
				continue
			}
			if o.cause != "" {
				r.e.say(addr, res.Error, time.Time{})
			}
			results = append(results, res)
			continue
		}
		r.mu.Lock()
		res, ok := r.steps[s.id]
		r.mu.Unlock()
		if ok {
			results = append(results, res)
		}
	}
	r.report.Steps = results
	r.mu.Lock()
	r.report.Outcomes = append([]plan.Outcome(nil), r.outcomes...)
	r.mu.Unlock()
	sort.SliceStable(r.report.Outcomes, func(i, j int) bool { return r.report.Outcomes[i].Address < r.report.Outcomes[j].Address })
	r.report.FinishedAt = r.e.clock().Now()
	err := errors.Join(errs...)
	switch {
	case err != nil:
		r.report.Status = plan.StatusFailed
		r.report.Error = errs[0].Error()
	case len(results) == 0:
		r.report.Status = plan.StatusNoChanges
	default:
		r.report.Status = plan.StatusSucceeded
	}
	return err
}

func (r *run) plannedAction(id string) plan.Action {
	ch, ok := r.p.changes[stepAddress(id)]
	if !ok {
		return plan.NoOp
	}
	if ch.Action == plan.Replace && strings.HasPrefix(id, "delete:") {
		return plan.Delete
	}
	return ch.Action
}

// stepAddress is the resource address of a step id ("apply:ADDR", "delete:ADDR").
func stepAddress(id string) string {
	if _, addr, ok := strings.Cut(id, ":"); ok {
		return addr
	}
	return id
}

// refs returns the current outputs of addr's dependencies.
func (r *run) refs(addr string) resource.Refs {
	r.mu.Lock()
	defer r.mu.Unlock()
	refs := resource.Refs{}
	for _, d := range r.p.graph.deps[addr] {
		if o, ok := r.outputs[d]; ok {
			refs[d] = o
		}
	}
	return refs
}

func (r *run) setOutputs(addr string, o resource.Outputs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outputs[addr] = o
}

// stepCtx gives a kind the Ctx of the step of addr that began at start:
// its progress carries the step's elapsed time, and what it hands back is
// the step's outcome.
func (r *run) stepCtx(addr string, start time.Time) *resource.Ctx {
	x := r.e.ctx()
	x.Since = start
	x.Outcome = func(v any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.outcomes = append(r.outcomes, plan.Outcome{Address: addr, Value: v})
	}
	return x
}

func (r *run) record(id string, res plan.StepResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[id] = res
}

var verbs = map[plan.Action][2]string{
	plan.Create:  {"creating…", "created"},
	plan.Update:  {"updating…", "updated"},
	plan.Delete:  {"deleting…", "deleted"},
	plan.Replace: {"creating the replacement…", "replaced"},
}

// upsert creates, updates or (if a dependency's new outputs require it)
// replaces one resource. When AWS throttles it beyond the SDK's retries, the
// whole step runs again after reading the resource afresh, so a create that
// got through before the throttle continues as an update.
func (r *run) upsert(ctx context.Context, addr string) error {
	res := r.p.resources[addr]
	kind := r.e.Kinds[res.Kind]
	planned := r.p.changes[addr].Action
	live := r.p.live[addr]
	if planned == plan.Replace {
		live = nil // its delete half has run
	}
	start := r.e.clock().Now()
	x := r.stepCtx(addr, start)
	action := plan.NoOp
	var outputs resource.Outputs
	attempt := 0
	err := r.e.retryThrottled(ctx, addr, func() error {
		attempt++
		if attempt > 1 {
			l, err := kind.Read(ctx, x, res)
			if err != nil {
				return fmt.Errorf("read %s: %w", addr, err)
			}
			live = l
		}
		refs := r.refs(addr)
		if live == nil {
			if action == plan.NoOp {
				action = plan.Create
				if planned == plan.Replace {
					action = plan.Replace
				}
				r.e.say(addr, verbs[action][0], time.Time{})
			}
			out, err := kind.Create(ctx, x, res, refs)
			if err != nil {
				return fmt.Errorf("create %s: %w", addr, err)
			}
			outputs = out
			return nil
		}
		desired, err := kind.Desired(res, refs)
		if err != nil {
			return err
		}
		fields := diffAttrs(desired, live.Attrs)
		if len(fields) == 0 {
			outputs = live.Outputs
			return nil
		}
		if f := forcedBy(fields); f != "" {
			// A dependency's new outputs changed a field AWS cannot change in
			// place; the plan could not know (it showed "known after apply").
			if action == plan.NoOp {
				action = plan.Replace
				r.e.say(addr, fmt.Sprintf("replacing: field %s cannot be changed in place…", f), time.Time{})
			}
			if err := kind.Delete(ctx, x, res, live); err != nil {
				return fmt.Errorf("delete %s for replacement: %w", addr, err)
			}
			live = nil
			out, err := kind.Create(ctx, x, res, refs)
			if err != nil {
				return fmt.Errorf("create %s: %w", addr, err)
			}
			outputs = out
			return nil
		}
		if action == plan.NoOp {
			action = plan.Update
			r.e.say(addr, verbs[action][0], time.Time{})
		}
		out, err := kind.Update(ctx, x, res, live, refs, fields)
		if err != nil {
			return fmt.Errorf("update %s: %w", addr, err)
		}
		merged := resource.Outputs{}
		for k, v := range live.Outputs {
			merged[k] = v
		}
		for k, v := range out {
			merged[k] = v
		}
		outputs = merged
		return nil
	})
	elapsed := r.e.clock().Now().Sub(start)
	if action == plan.NoOp && err == nil {
		r.setOutputs(addr, outputs)
		return nil
	}
	if action == plan.NoOp {
		action = planned
	}
	result := plan.StepResult{Address: addr, Action: action, Status: "done", Duration: elapsed}
	if err != nil {
		result.Status, result.Error = "failed", err.Error()
		r.record("apply:"+addr, result)
		r.e.say(addr, "failed", start)
		return err
	}
	r.setOutputs(addr, outputs)
	r.record("apply:"+addr, result)
	r.e.say(addr, verbs[action][1], start)
	return nil
}

// delete removes one resource (for a destroy, or the first half of a
// replacement). Deleting what is already gone succeeds (the kinds' contract).
func (r *run) delete(ctx context.Context, addr string, forReplace bool) error {
	res := r.p.resources[addr]
	kind := r.e.Kinds[res.Kind]
	live := r.p.live[addr]
	start := r.e.clock().Now()
	x := r.stepCtx(addr, start)
	verb := "deleting…"
	if forReplace {
		verb = "deleting for replacement (" + r.p.changes[addr].Reason + ")…"
	}
	r.e.say(addr, verb, time.Time{})
	err := r.e.retryThrottled(ctx, addr, func() error {
		if err := kind.Delete(ctx, x, res, live); err != nil {
			return fmt.Errorf("delete %s: %w", addr, err)
		}
		return nil
	})
	result := plan.StepResult{Address: addr, Action: plan.Delete, Status: "done", Duration: r.e.clock().Now().Sub(start)}
	if err != nil {
		result.Status, result.Error = "failed", err.Error()
		r.record("delete:"+addr, result)
		r.e.say(addr, "failed", start)
		return err
	}
	r.mu.Lock()
	delete(r.outputs, addr)
	r.mu.Unlock()
	r.record("delete:"+addr, result)
	r.e.say(addr, "deleted", start)
	return nil
}

// refersTo says whether a live resource's attrs name another's outputs (an
// id or ARN): it still points at it.
func refersTo(x, other *resource.Live) bool {
	if x == nil || other == nil {
		return false
	}
	for _, v := range other.Outputs {
		if len(v) < 8 || v == plan.Unknown {
			continue
		}
		for _, a := range x.Attrs {
			if strings.Contains(a.Value, v) {
				return true
			}
		}
	}
	return false
}

// transitiveDeps returns every address addr depends on, directly or not, sorted.
func (g *graph) transitiveDeps(addr string) []string { return reachable(g.deps, addr) }

// transitiveDependents returns every address that depends on addr, directly
// or not, sorted.
func (g *graph) transitiveDependents(addr string) []string { return reachable(g.dependents, addr) }

// reachable returns every address that edges lead to from addr, in one step
// or more, sorted.
func reachable(edges map[string][]string, addr string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		for _, d := range edges[n] {
			if !seen[d] {
				seen[d] = true
				visit(d)
			}
		}
	}
	visit(addr)
	return slices.Sorted(maps.Keys(seen))
}
