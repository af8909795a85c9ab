// Package engine turns a stack (desired resources) into a plan by reading
// live AWS state, and applies or destroys that plan: dependencies first,
// independent resources concurrently, deletes in reverse, failures skipping
// their dependents. There is no state file: each run reads AWS again, so a run
// that died halfway converges when started again (Read finds what exists).
package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
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
	AWS      *awsapi.Clients
	Clock    clock.Clock
	Kinds    map[string]resource.Kind
	Progress resource.Progress
	// Budget scales every wait and retry budget (resource.Ctx.Budget); 0 or
	// 1 means the reference's budgets.
	Budget      float64
	Concurrency int
}

// OutputsChangedByUpdate is an optional capability of a resource.Kind whose
// Update gives the resource new outputs (a task definition's update
// registers a new revision, so its "arn" changes). The plan then shows the
// fields of dependents that use those outputs as known after apply, instead
// of leaving the dependent's change to be discovered during the apply.
type OutputsChangedByUpdate interface {
	OutputsChangedByUpdate(r *resource.Resource) []string
}

// Planned is a plan together with what the engine needs to carry it out.
type Planned struct {
	Plan *plan.Plan

	env       *config.Environment
	resources map[string]*resource.Resource
	graph     *graph
	order     []string // topological: dependencies first
	live      map[string]*resource.Live
	changes   map[string]*plan.Change
	absent    map[string]bool // resources the file does not ask for
	notes     []string        // from reading
}

// target is the engine's view of a stack: the environment, its desired
// resources and the notes a reviewer should read.
type target struct {
	env       *config.Environment
	resources []resource.Resource
	// absent are resources the stack can have but this file does not ask
	// for (autoscaling turned off): deleted when they exist and are ours.
	absent []resource.Resource
	notes  []string
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

// ProtectedError: destroy of an environment whose file sets protect: true.
type ProtectedError struct{ Environment, File string }

func (e *ProtectedError) Error() string {
	return fmt.Sprintf("refusing to destroy environment %q: %s sets protect: true (set it to false in a reviewed change first)", e.Environment, e.File)
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

func (e *Engine) say(address, msg string) {
	if e.Progress != nil {
		e.Progress(address, msg)
	}
}

func (e *Engine) budget(d time.Duration) time.Duration {
	if e.Budget <= 0 {
		return d
	}
	return time.Duration(float64(d) * e.Budget)
}

func (e *Engine) ctxFor(env *config.Environment, progress resource.Progress) *resource.Ctx {
	return &resource.Ctx{AWS: e.AWS, Clock: e.clock(), Env: env, Progress: progress, Budget: e.Budget}
}

// plan reads the live state of every resource of t and builds the plan for op.
func (e *Engine) plan(ctx context.Context, t target, op plan.Operation) (*Planned, error) {
	if t.env == nil {
		return nil, errors.New("plan: no environment")
	}
	p := &Planned{
		env:       t.env,
		resources: map[string]*resource.Resource{},
		live:      map[string]*resource.Live{},
		changes:   map[string]*plan.Change{},
	}
	deps := map[string][]string{}
	for i := range t.resources {
		r := &t.resources[i]
		if _, dup := p.resources[r.Address]; dup {
			return nil, fmt.Errorf("plan: the stack has %s twice", r.Address)
		}
		if _, ok := e.Kinds[r.Kind]; !ok {
			return nil, fmt.Errorf("plan %s: no implementation of kind %q", r.Address, r.Kind)
		}
		p.resources[r.Address] = r
		deps[r.Address] = r.DependsOn
	}
	p.absent = map[string]bool{}
	for i := range t.absent {
		r := &t.absent[i]
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
		return nil, fmt.Errorf("plan %s: %w", t.env.Name, err)
	}
	p.graph = g
	if p.order, err = g.topoOrder(); err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.env.Name, err)
	}
	// A destroy needs no desired state, and must not fail because the
	// file asks for what the account cannot have.
	if err := e.readAll(ctx, p, op != plan.OpDestroy); err != nil {
		return nil, err
	}

	pl := &plan.Plan{
		Environment: t.env.Name,
		File:        t.env.File,
		Account:     t.env.AWS.AccountID,
		Region:      t.env.AWS.Region,
		Operation:   op,
		Notes:       append(append([]string(nil), t.notes...), p.notes...),
	}
	if op == plan.OpDestroy {
		e.diffDestroy(p, pl)
	} else {
		e.diffApply(p, pl)
	}
	pl.Fingerprint = pl.ComputeFingerprint()
	p.Plan = pl
	return p, nil
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
		progress   = func(a, m string) { e.say(a, m) }
	)
	if resolve {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resolved, resolveErr = e.resolveAll(ctx, p, progress)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
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
	}()
	batches, singles := e.readBatches(p)
	for _, addr := range singles {
		r := p.resources[addr]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			live, err := e.read(ctx, p.env, r, progress)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[r.Address] = err
				return
			}
			if live != nil {
				p.live[r.Address] = live
			}
		}()
	}
	for _, rs := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lives, err := e.readBatch(ctx, p.env, rs, progress)
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
		}()
	}
	wg.Wait()
	if stsErr != nil {
		return stsErr
	}
	if account != p.env.AWS.AccountID {
		return &AccountMismatchError{File: p.env.File, Want: p.env.AWS.AccountID, Got: account}
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
	index := map[string]int{}
	for _, addr := range p.order {
		r := p.resources[addr]
		if _, ok := e.Kinds[r.Kind].(resource.BatchReader); !ok {
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
func (e *Engine) readBatch(ctx context.Context, env *config.Environment, rs []*resource.Resource, progress resource.Progress) (map[string]*resource.Live, error) {
	kind := rs[0].Kind
	addrs := make([]string, len(rs))
	asked := map[string]bool{}
	for i, r := range rs {
		addrs[i] = r.Address
		asked[r.Address] = true
	}
	var lives map[string]*resource.Live
	err := e.retryThrottled(ctx, kind, func() error {
		var err error
		lives, err = e.Kinds[kind].(resource.BatchReader).ReadAll(ctx, e.ctxFor(env, progress), rs)
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
func (e *Engine) resolveAll(ctx context.Context, p *Planned, progress resource.Progress) (map[string]resource.Resource, error) {
	byKind := map[string][]resource.Resource{}
	for _, addr := range p.order {
		r := p.resources[addr]
		if p.absent[addr] {
			continue
		}
		if _, ok := e.Kinds[r.Kind].(resource.Resolver); ok {
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []resource.Resource
			err := e.retryThrottled(ctx, kind, func() error {
				var err error
				got, err = e.Kinds[kind].(resource.Resolver).Resolve(ctx, e.ctxFor(p.env, progress), rs)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[kind] = err
				return
			}
			for _, r := range got {
				out[r.Address] = r
			}
		}()
	}
	wg.Wait()
	var all []error
	for _, kind := range sortedKeys(errs) {
		all = append(all, errs[kind])
	}
	if err := errors.Join(all...); err != nil {
		return nil, err
	}
	for addr, r := range out {
		if orig, ok := p.resources[addr]; !ok || p.absent[addr] || orig.Kind != r.Kind {
			return nil, fmt.Errorf("plan %s: resolving %s kinds returned %s, which is not one of them", p.env.Name, r.Kind, addr)
		}
	}
	return out, nil
}

func (e *Engine) read(ctx context.Context, env *config.Environment, r *resource.Resource, progress resource.Progress) (*resource.Live, error) {
	var live *resource.Live
	err := e.retryThrottled(ctx, r.Address, func() error {
		var err error
		live, err = e.Kinds[r.Kind].Read(ctx, e.ctxFor(env, progress), r)
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
			if oc, ok := e.Kinds[dr.Kind].(OutputsChangedByUpdate); ok {
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

func (e *Engine) diffApply(p *Planned, pl *plan.Plan) {
	// What the file no longer asks for goes first, dependents first.
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		if !p.absent[addr] {
			continue
		}
		r := p.resources[addr]
		if live := p.live[addr]; live != nil && live.Ours {
			ch := &plan.Change{Address: addr, Kind: r.Kind, Name: r.Name, Action: plan.Delete, Reason: "the environment file no longer asks for it",
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
		live := p.live[addr]
		ch := &plan.Change{Address: addr, Kind: r.Kind, Name: r.Name, Action: plan.NoOp}
		p.changes[addr] = ch
		refs, changing := e.planRefs(p, r)
		desired := e.Kinds[r.Kind].Desired(r, refs)
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
				r.Kind, r.Name, live.ID, resource.TagEnvironment, p.env.Name)
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
	if p.env.Protect {
		pl.Notes = append(pl.Notes, fmt.Sprintf("%s sets protect: true: destroy will be refused", p.env.File))
	}
	for i := len(p.order) - 1; i >= 0; i-- {
		addr := p.order[i]
		r := p.resources[addr]
		live := p.live[addr]
		if live == nil {
			continue
		}
		if !live.Ours {
			pl.Notes = append(pl.Notes, fmt.Sprintf("%s %q (%s) exists without the tag %s=%s: destroy leaves it alone",
				addr, r.Name, live.ID, resource.TagEnvironment, p.env.Name))
			continue
		}
		ch := &plan.Change{Address: addr, Kind: r.Kind, Name: r.Name, Action: plan.Delete, Before: attrValues(live.Attrs)}
		p.changes[addr] = ch
		pl.Changes = append(pl.Changes, *ch)
	}
}

// retryThrottled runs f again while AWS keeps throttling it beyond what the
// SDK's own retryer absorbed, with exponential backoff, within a budget of
// two minutes (scaled by Budget).
func (e *Engine) retryThrottled(ctx context.Context, address string, f func() error) error {
	budget := e.budget(2 * time.Minute)
	start := e.clock().Now()
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !awserr.IsThrottle(err) || ctx.Err() != nil {
			return err
		}
		if e.clock().Now().Sub(start)+delay > budget {
			return fmt.Errorf("still throttled after %d attempts: %w", attempt, err)
		}
		e.say(address, fmt.Sprintf("throttled by AWS; retrying in %s", delay))
		if err := e.clock().Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// sortedKeys is used for deterministic iteration over small maps.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Plan reads the live state of st and returns what an apply would change.
// It makes no AWS write. It fails when the credentials belong to another
// account than st.Env.AWS.AccountID.
func (e *Engine) Plan(ctx context.Context, st *stack.Stack) (*Planned, error) {
	return e.plan(ctx, targetOf(st), plan.OpApply)
}

// PlanDestroy reads the live state of st and returns what a destroy would
// delete: every resource that exists and carries this environment's tag.
func (e *Engine) PlanDestroy(ctx context.Context, st *stack.Stack) (*Planned, error) {
	return e.plan(ctx, targetOf(st), plan.OpDestroy)
}

func targetOf(st *stack.Stack) target {
	if st == nil {
		return target{}
	}
	return target{env: st.Env, resources: st.Resources, absent: optionalResources(st), notes: stackNotes(st.Env)}
}

// optionalResources are the resources st's environment could have but does
// not ask for: the autoscaling target and policy when autoscaling is off,
// the worker security group when the file names its own groups. Without
// them a file that turns autoscaling off would leave the scaling target
// resizing the service, and destroy would leave it behind.
func optionalResources(st *stack.Stack) []resource.Resource {
	if st.Env == nil {
		return nil
	}
	full := *st.Env
	changed := false
	if full.Worker.Autoscaling == nil {
		n := max(full.Worker.DesiredCount, 1)
		full.Worker.Autoscaling = &config.Autoscaling{Min: n, Max: n, TargetCPUPercent: 70}
		changed = true
	}
	if full.Network.Mode == "existing" && len(full.Network.SecurityGroupIDs) > 0 {
		full.Network.SecurityGroupIDs = nil
		changed = true
	}
	// The network resources another nat or availability_zones setting would
	// have: turning a NAT off or dropping a zone must not leave a billed NAT
	// gateway and its Elastic IP behind, nor subnets that block the VPC's
	// deletion on destroy.
	netLeftovers := stack.OptionalNetworkResources(st.Env, stack.Tags(st.Env))
	if !changed && len(netLeftovers) == 0 {
		return nil
	}
	if !changed {
		return netLeftovers
	}
	fullStack, err := stack.Build(&full, "")
	if err != nil {
		return nil
	}
	have := map[string]bool{}
	for _, r := range st.Resources {
		have[r.Address] = true
	}
	var out []resource.Resource
	for _, r := range fullStack.Resources {
		if !have[r.Address] {
			have[r.Address] = true
			out = append(out, r)
		}
	}
	for _, r := range netLeftovers {
		if !have[r.Address] {
			out = append(out, r)
		}
	}
	return out
}

// stackNotes are what a reviewer should know about env that no change shows.
func stackNotes(env *config.Environment) []string {
	if env == nil {
		return nil
	}
	var notes []string
	if env.PublicIP() {
		if env.Network.Mode == "existing" {
			notes = append(notes, "the worker's tasks get a public IP (network.assign_public_ip: true); their security group allows no inbound traffic")
		} else {
			notes = append(notes, "the worker's tasks run in the public subnets with a public IP (network.nat: none): the cheapest supported path to Prefect Cloud, with no NAT gateway to pay for; their security group allows no inbound traffic")
		}
	}
	return notes
}
