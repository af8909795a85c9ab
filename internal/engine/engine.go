// Package engine turns a stack (desired resources) into a plan by reading
// live AWS state, and applies or destroys that plan: dependencies first,
// independent resources concurrently, deletes in reverse, failures skipping
// their dependents. There is no state file: each run reads AWS again, so a run
// that died halfway converges when started again (Read finds what exists).
//
// The engine knows no kind of resource: it orders, diffs and runs what each
// resource's kind answers (internal/resource), and passes on what kinds hand
// back about their changes (plan.Report.Outcomes) to the layer that
// understands them.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
	"github.com/deploybot/deploybot/internal/stack"
)

// DefaultConcurrency is how many steps of an apply or destroy run at once
// when Engine.Concurrency is 0.
const DefaultConcurrency = 8

// readConcurrency bounds the Reads of one plan. Reads are independent by
// contract, and a no-change plan must stay within a few round trips
// (issue 2: <= 6 round trips), so every Read of a stack runs at once.
const readConcurrency = 32

// Engine plans, applies and destroys one stack at a time.
type Engine struct {
	AWS *awsapi.Clients
	// Prefect is the Prefect API client of a run whose stack has kinds
	// that manage Prefect objects (resource.APIs.Prefect); nil without.
	Prefect any
	Clock   clock.Clock
	Kinds   map[resource.KindName]resource.Kind
	// Events receives progress: each step, each long wait.
	Events event.Sink
	// Budget scales every wait and retry budget (resource.Ctx.Budget); 0 or
	// 1 means the reference's budgets.
	Budget      float64
	Concurrency int
}

// Planned is a plan together with what the engine needs to carry it out.
type Planned struct {
	Plan *plan.Plan

	st        *stack.Stack
	resources map[string]*resource.Resource
	graph     *graph
	order     []string // topological: dependencies first
	live      map[string]*resource.Live
	changes   map[string]*plan.Change
	absent    map[string]bool   // resources the file does not ask for: leftovers and orphans
	orphans   map[string]string // address → ARN of what the inventory found and the stack no longer has
	notes     []string          // from reading
	// unread are the resources whose Read could not look
	// (resource.UnreadableError), with why.
	unread map[string]string

	inventory    []string // the inventory's candidates (ARNs)
	inventoryErr error

	// deferred are the updates Apply leaves for ApplyDeferred (Defer), and
	// run the apply whose outputs they are written with.
	deferred []string
	run      *run
}

// Defer leaves the update of the resource at address out of Apply, for
// ApplyDeferred to write once the caller has checked the rest (the work
// pool's defaults, after the health gate's smoke run proved them). Apply
// treats it as unchanged: its dependents get its current outputs. Only an
// update of a resource that exists can wait; Defer says whether it will.
func (p *Planned) Defer(address string) bool {
	if p.Change(address) != plan.Update || p.live[address] == nil || slices.Contains(p.deferred, address) {
		return false
	}
	p.deferred = append(p.deferred, address)
	return true
}

// Deferred is what Defer left out of Apply and ApplyDeferred has not
// written yet.
func (p *Planned) Deferred() []string { return p.deferred }

// Live is what the plan read of the resource at address (nil: absent, or
// not read): what the resource was before an apply, for a layer that must
// put it back (the health gate's rollback of the work pool's defaults).
func (p *Planned) Live(address string) *resource.Live { return p.live[address] }

// Changes says what the plan does to the resource at address (plan.NoOp
// when nothing).
func (p *Planned) Change(address string) plan.Action {
	if c := p.changes[address]; c != nil {
		return c.Action
	}
	return plan.NoOp
}

// AccountMismatchError: the credentials belong to another account than the
// environment file names. Nothing is read beyond the identity, nothing written.
type AccountMismatchError struct {
	File, Want, Got string
}

func (e *AccountMismatchError) Error() string {
	return fmt.Sprintf("the AWS credentials belong to account %s, but %s sets aws.account_id %s: refusing to touch another account", e.Got, e.File, e.Want)
}

// ConflictError: the plan has resources that exist under our names without
// our tags; deploybot never takes them over.
type ConflictError struct{ Addresses []string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("refusing to apply: %s exist(s) in AWS without this environment's tags (%s); deploybot never takes over resources it did not create: delete or rename them, or use another environment name",
		strings.Join(e.Addresses, ", "), resource.TagEnvironment)
}

// UnreadError: the plan could not read some resources (no credentials for
// their service), so applying it would change them blind.
type UnreadError struct{ Unread []plan.Unread }

func (e *UnreadError) Error() string {
	var parts []string
	for _, u := range e.Unread {
		parts = append(parts, fmt.Sprintf("%s (%s)", u.Address, u.Reason))
	}
	return "refusing to apply: the plan could not read " + strings.Join(parts, ", ") + "; nothing was changed"
}

func (e *Engine) clock() clock.Clock {
	if e.Clock == nil {
		return clock.Real{}
	}
	return e.Clock
}

func (e *Engine) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return DefaultConcurrency
}

// say reports progress about the resource at address; since is when its
// step began (zero outside a step, or for a line that says no time).
func (e *Engine) say(address, msg string, since time.Time) {
	if e.Events != nil {
		e.Events.Emit(event.Event{Time: e.clock().Now(), Subject: address, Resource: true, Message: msg, Since: since})
	}
}

func (e *Engine) budget(d time.Duration) time.Duration {
	if e.Budget <= 0 {
		return d
	}
	return time.Duration(float64(d) * e.Budget)
}

// ctx is what kinds get outside a step (the reads of a plan).
func (e *Engine) ctx() *resource.Ctx {
	return &resource.Ctx{APIs: resource.APIs{AWS: e.AWS, Prefect: e.Prefect}, Clock: e.clock(), Events: e.Events, Budget: e.Budget}
}

func (e *Engine) capabilities(k resource.KindName) resource.Capabilities {
	return resource.CapabilitiesOf(e.Kinds[k])
}

// plan reads the live state of every resource of st and builds the plan for op.
func (e *Engine) plan(ctx context.Context, st *stack.Stack, op plan.Operation) (*Planned, error) {
	if st == nil || st.Environment == "" {
		return nil, errors.New("plan: no environment")
	}
	p := &Planned{
		st:        st,
		resources: map[string]*resource.Resource{},
		live:      map[string]*resource.Live{},
		changes:   map[string]*plan.Change{},
		absent:    map[string]bool{},
		orphans:   map[string]string{},
		unread:    map[string]string{},
	}
	deps := map[string][]string{}
	for i := range st.Resources {
		r := &st.Resources[i]
		if _, dup := p.resources[r.Address]; dup {
			return nil, fmt.Errorf("plan: the stack has %s twice", r.Address)
		}
		if _, ok := e.Kinds[r.Kind]; !ok {
			return nil, fmt.Errorf("plan %s: no implementation of kind %q", r.Address, r.Kind)
		}
		p.resources[r.Address] = r
		deps[r.Address] = r.DependsOn
	}
	for i := range st.Leftovers {
		r := &st.Leftovers[i]
		if _, dup := p.resources[r.Address]; dup {
			continue
		}
		if _, ok := e.Kinds[r.Kind]; !ok {
			continue
		}
		p.resources[r.Address] = r
		p.absent[r.Address] = true
		deps[r.Address] = r.DependsOn
	}
	g, err := newGraph(deps)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", st.Environment, err)
	}
	p.graph = g
	if p.order, err = g.topoOrder(); err != nil {
		return nil, fmt.Errorf("plan %s: %w", st.Environment, err)
	}
	// A destroy needs no desired state, and must not fail because the
	// file asks for what the account cannot have.
	if err := e.readAll(ctx, p, op != plan.OpDestroy); err != nil {
		return nil, err
	}
	e.findOrphans(ctx, p)

	pl := &plan.Plan{
		Environment: st.Environment,
		File:        st.File,
		Account:     st.Account,
		Region:      st.Region,
		Operation:   op,
	}
	if op == plan.OpDestroy {
		e.diffDestroy(p, pl)
	} else if err := e.diffApply(p, pl); err != nil {
		return nil, err
	}
	pl.Notes = append(append(stackNotes(st, op, pl), pl.Notes...), p.notes...)
	pl.Fingerprint = pl.ComputeFingerprint()
	p.Plan = pl
	return p, nil
}

// stackNotes are the stack's notes that apply to pl, its guard's first.
func stackNotes(st *stack.Stack, op plan.Operation, pl *plan.Plan) []string {
	var out []string
	for _, g := range st.Guards {
		if g.Operation == op && g.Note != "" {
			out = append(out, g.Note)
		}
	}
	return append(out, st.NotesFor(op, pl.Deletes, false)...)
}

// readAll asks STS who the credentials are and reads every resource, all at
// once (the resources of a kind that is a resource.BatchReader with one
// ReadAll: readBatches); with resolve, the kinds that are
// resource.Resolvers complete their desired resources at the same time
// (resolveAll). A wrong account fails the plan even when the reads went
// well.
func (e *Engine) readAll(ctx context.Context, p *Planned, resolve bool) error {
	var (
		mu         sync.Mutex
		wg         sync.WaitGroup
		errs       = map[string]error{}
		account    string
		stsErr     error
		resolveErr error
		resolved   map[string]resource.Resource
		sem        = make(chan struct{}, readConcurrency)
		// The reads of one plan share their answers (resource.Shared).
		x = e.ctx()
	)
	x.Reads = resource.NewReads()
	if resolve {
		wg.Go(func() { resolved, resolveErr = e.resolveAll(ctx, x, p) })
	}
	wg.Go(func() {
		err := e.retryThrottled(ctx, "sts", func() error {
			out, err := e.AWS.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err == nil {
				account = aws.ToString(out.Account)
			}
			return err
		})
		if err != nil {
			stsErr = fmt.Errorf("check AWS account (sts GetCallerIdentity): %w", err)
			if awserr.IsNoCredentials(err) {
				stsErr = fmt.Errorf("%s\n(%w)", awserr.CredentialsHint, err)
			}
		}
	})
	if e.hasInventory(p.st) {
		wg.Go(func() { p.inventory, p.inventoryErr = e.listInventory(ctx, p.st.Inventory) })
	}
	// limited runs f on its own goroutine once one of the reads' slots
	// (sem) is free.
	limited := func(f func()) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f()
		})
	}
	batches, singles := e.readBatches(p)
	for _, addr := range singles {
		r := p.resources[addr]
		limited(func() {
			live, err := e.read(ctx, x, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[r.Address] = err
				return
			}
			if live != nil {
				p.live[r.Address] = live
			}
		})
	}
	for _, rs := range batches {
		limited(func() {
			lives, err := e.readBatch(ctx, x, rs)
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rs {
				switch {
				case err != nil:
					// The same error for each: reported once (below), or
					// as a note for each leftover.
					errs[r.Address] = err
				case lives[r.Address] != nil:
					p.live[r.Address] = lives[r.Address]
				}
			}
		})
	}
	wg.Wait()
	if stsErr != nil {
		return stsErr
	}
	if account != p.st.Account {
		return &AccountMismatchError{File: p.st.File, Want: p.st.Account, Got: account}
	}
	if resolveErr != nil {
		return resolveErr
	}
	for addr, r := range resolved {
		p.resources[addr] = &r
	}
	var all []error
	reported := map[error]bool{} // a failed batch read is one error for many addresses
	for _, addr := range p.order {
		var unreadable *resource.UnreadableError
		if err, ok := errs[addr]; ok && errors.As(err, &unreadable) {
			// Not an error: the plan says it could not look, and plans
			// the rest (an apply refuses it).
			p.unread[addr] = unreadable.Reason
			continue
		}
		if err, ok := errs[addr]; ok && p.absent[addr] {
			// Not knowing whether a leftover exists must not block the plan
			// of what the file asks for; say so instead.
			p.notes = append(p.notes, fmt.Sprintf("could not check whether %s (no longer asked for) is left over: %v", addr, err))
			continue
		}
		if err, ok := errs[addr]; ok && !reported[err] {
			reported[err] = true
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// readBatches splits the plan's resources into those read together, one
// batch per kind that is a resource.BatchReader (its desired resources and
// its leftovers alike: one Describe call finds both), and those read one by
// one. Both keep the plan's order.
func (e *Engine) readBatches(p *Planned) (batches [][]*resource.Resource, singles []string) {
	index := map[resource.KindName]int{}
	for _, addr := range p.order {
		r := p.resources[addr]
		if e.capabilities(r.Kind).Batch == nil {
			singles = append(singles, addr)
			continue
		}
		i, ok := index[r.Kind]
		if !ok {
			i = len(batches)
			index[r.Kind] = i
			batches = append(batches, nil)
		}
		batches[i] = append(batches[i], r)
	}
	return batches, singles
}

// readBatch reads rs, all of one kind that is a resource.BatchReader, with
// one ReadAll, retried as a whole while throttled.
func (e *Engine) readBatch(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	kind := rs[0].Kind
	addrs := make([]string, len(rs))
	asked := map[string]bool{}
	for i, r := range rs {
		addrs[i] = r.Address
		asked[r.Address] = true
	}
	var lives map[string]*resource.Live
	err := e.retryThrottled(ctx, string(kind), func() error {
		var err error
		lives, err = e.capabilities(kind).Batch.ReadAll(ctx, x, rs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", strings.Join(addrs, ", "), err)
	}
	for addr := range lives {
		if !asked[addr] {
			return nil, fmt.Errorf("read %s kinds: ReadAll returned %s, which is not one of them", kind, addr)
		}
	}
	return lives, nil
}

// resolveAll calls Resolve of every kind that is a resource.Resolver, once
// per kind, with the plan's desired resources of that kind (not the absent
// ones: a leftover is only deleted), and returns the resolved resources by
// address. Errors are the kinds' own, which name the file's field.
func (e *Engine) resolveAll(ctx context.Context, x *resource.Ctx, p *Planned) (map[string]resource.Resource, error) {
	byKind := map[resource.KindName][]resource.Resource{}
	for _, addr := range p.order {
		r := p.resources[addr]
		if p.absent[addr] {
			continue
		}
		if e.capabilities(r.Kind).Resolve != nil {
			byKind[r.Kind] = append(byKind[r.Kind], *r)
		}
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = map[string]resource.Resource{}
		errs = map[string]error{}
	)
	for kind, rs := range byKind {
		wg.Go(func() {
			var got []resource.Resource
			err := e.retryThrottled(ctx, string(kind), func() error {
				var err error
				got, err = e.capabilities(kind).Resolve.Resolve(ctx, x, rs)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[string(kind)] = err
				return
			}
			for _, r := range got {
				out[r.Address] = r
			}
		})
	}
	wg.Wait()
	var all []error
	for _, kind := range slices.Sorted(maps.Keys(errs)) {
		all = append(all, errs[kind])
	}
	if err := errors.Join(all...); err != nil {
		return nil, err
	}
	for addr, r := range out {
		if orig, ok := p.resources[addr]; !ok || p.absent[addr] || orig.Kind != r.Kind {
			return nil, fmt.Errorf("plan %s: resolving %s kinds returned %s, which is not one of them", p.st.Environment, r.Kind, addr)
		}
	}
	return out, nil
}

func (e *Engine) read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	var live *resource.Live
	err := e.retryThrottled(ctx, r.Address, func() error {
		var err error
		live, err = e.Kinds[r.Kind].Read(ctx, x, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.Address, err)
	}
	return live, nil
}

// planRefs returns the outputs of r's dependencies as the plan knows them:
// a dependency to be created, replaced, or in conflict has unknown outputs
// (Refs.Get gives plan.Unknown), and so do the outputs its kind says an
// update changes.
func (e *Engine) planRefs(p *Planned, r *resource.Resource) (resource.Refs, []string) {
	refs := resource.Refs{}
	var changing []string
	for _, d := range p.graph.deps[r.Address] {
		ch := p.changes[d]
		live := p.live[d]
		switch {
		case live == nil || ch == nil || ch.Action == plan.Create || ch.Action == plan.Replace || ch.Action == plan.Conflict:
			if ch != nil && (ch.Action == plan.Replace || ch.Action == plan.Create) {
				changing = append(changing, d)
			}
			continue
		case ch.Action == plan.Update:
			dr := p.resources[d]
			if oc := e.capabilities(dr.Kind).OutputsChanged; oc != nil {
				out := resource.Outputs{}
				for k, v := range live.Outputs {
					out[k] = v
				}
				for _, k := range oc.OutputsChangedByUpdate(dr) {
					delete(out, k)
				}
				refs[d] = out
				changing = append(changing, d)
				continue
			}
		}
		refs[d] = live.Outputs
	}
	return refs, changing
}

func (e *Engine) diffApply(p *Planned, pl *plan.Plan) error {
	// What the file no longer asks for goes first, dependents first.
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		if !p.absent[addr] {
			continue
		}
		r := p.resources[addr]
		if live := p.live[addr]; live != nil && live.Ours {
			reason := "the environment file no longer asks for it"
			if _, ok := p.orphans[addr]; ok {
				reason = orphanReason(p.st.Environment)
			}
			ch := &plan.Change{Address: addr, Kind: string(r.Kind), Name: r.Name, Action: plan.Delete, Reason: reason,
				Before: attrValues(live.Attrs)}
			p.changes[addr] = ch
			pl.Changes = append(pl.Changes, *ch)
		}
	}
	for _, addr := range p.order {
		if p.absent[addr] {
			continue
		}
		r := p.resources[addr]
		if why, ok := p.unread[addr]; ok {
			pl.Unread = append(pl.Unread, plan.Unread{Address: addr, Kind: string(r.Kind), Name: r.Name, Reason: why})
			continue
		}
		live := p.live[addr]
		ch := &plan.Change{Address: addr, Kind: string(r.Kind), Name: r.Name, Action: plan.NoOp}
		p.changes[addr] = ch
		refs, changing := e.planRefs(p, r)
		desired, err := e.Kinds[r.Kind].Desired(r, refs)
		if err != nil {
			return fmt.Errorf("plan %s: %w", addr, err)
		}
		ch.After = attrValues(desired)
		if live != nil && live.Ours {
			ch.Before = attrValues(live.Attrs)
		}
		switch {
		case live == nil:
			ch.Action = plan.Create
			ch.Fields = createFields(desired)
		case !live.Ours:
			ch.Action = plan.Conflict
			ch.Reason = fmt.Sprintf("%s %q already exists (%s) without the tag %s=%s; deploybot does not take over what it did not create",
				r.Kind, r.Name, live.ID, resource.TagEnvironment, p.st.Environment)
		default:
			ch.Fields = diffAttrs(desired, live.Attrs)
			if len(ch.Fields) == 0 {
				break
			}
			ch.Action = plan.Update
			because := ""
			if unknownAfter(ch.Fields) && len(changing) > 0 {
				because = strings.Join(changing, ", ")
			}
			if f := forcedBy(ch.Fields); f != "" {
				ch.Action = plan.Replace
				ch.Reason = fmt.Sprintf("field %s cannot be changed in place", f)
				if because != "" {
					ch.Reason += fmt.Sprintf(" (it uses outputs of %s, which will change)", because)
				}
			} else if because != "" {
				ch.Reason = fmt.Sprintf("uses outputs of %s, which will change", because)
			}
		}
		pl.Changes = append(pl.Changes, *ch)
	}
	return nil
}

func unknownAfter(fields []plan.FieldChange) bool {
	for _, f := range fields {
		if f.After == plan.Unknown {
			return true
		}
	}
	return false
}

// diffDestroy plans the deletion of every resource that exists and is ours,
// in delete order (dependents first). Resources under our names without our
// tags are left alone and noted.
func (e *Engine) diffDestroy(p *Planned, pl *plan.Plan) {
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		r := p.resources[addr]
		if why, ok := p.unread[addr]; ok {
			pl.Unread = append(pl.Unread, plan.Unread{Address: addr, Kind: string(r.Kind), Name: r.Name, Reason: why})
			continue
		}
		live := p.live[addr]
		if live == nil {
			continue
		}
		if !live.Ours {
			pl.Notes = append(pl.Notes, fmt.Sprintf("%s %q (%s) exists without the tag %s=%s: destroy leaves it alone",
				addr, r.Name, live.ID, resource.TagEnvironment, p.st.Environment))
			continue
		}
		ch := &plan.Change{Address: addr, Kind: string(r.Kind), Name: r.Name, Action: plan.Delete, Before: attrValues(live.Attrs)}
		if _, ok := p.orphans[addr]; ok {
			ch.Reason = orphanReason(p.st.Environment)
		} else if x := e.capabilities(r.Kind).ExplainDelete; x != nil {
			ch.Reason = x.DeleteReason(live)
		}
		p.changes[addr] = ch
		pl.Changes = append(pl.Changes, *ch)
	}
}

// throttleBudget is how long a step is retried while AWS keeps throttling
// it beyond what the SDK's own retryer absorbed.
const throttleBudget = 2 * time.Minute

// retryThrottled runs f again while AWS keeps throttling it beyond what the
// SDK's own retryer absorbed, with exponential backoff (1 s doubling to
// 30 s), within throttleBudget (scaled by Budget).
func (e *Engine) retryThrottled(ctx context.Context, address string, f func() error) error {
	o := retry.Options{Clock: e.clock(), Budget: e.budget(throttleBudget), Every: time.Second, Backoff: true, MaxEvery: 30 * time.Second,
		ReportEach: true, Report: func(p retry.Progress) {
			e.say(address, fmt.Sprintf("throttled by AWS; retrying in %s", p.Next), time.Time{})
		}}
	err := retry.Do(ctx, o, address, func(err error) bool { return ctx.Err() == nil && awserr.IsThrottle(err) }, f)
	var te *retry.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("still throttled after %d attempts: %w", te.Attempts, te.Last)
	}
	return err
}

// Plan reads the live state of st and returns what an apply would change.
// It makes no AWS write. It fails when the credentials belong to another
// account than st.Account.
func (e *Engine) Plan(ctx context.Context, st *stack.Stack) (*Planned, error) {
	return e.plan(ctx, st, plan.OpApply)
}

// PlanDestroy reads the live state of st and returns what a destroy would
// delete: every resource that exists and carries this environment's tag.
func (e *Engine) PlanDestroy(ctx context.Context, st *stack.Stack) (*Planned, error) {
	return e.plan(ctx, st, plan.OpDestroy)
}
