// Package deploy is the one orchestration of plan, apply and destroy that
// both the CLI and the GitHub Action run: the environment lock, the Prefect
// preflight before any AWS write, the stale-plan check against what was
// reviewed, the engine, the Prefect health gate after a service deployment,
// and the report. It prints nothing; progress goes to Options.Progress.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/gate"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/stack"
)

// Prefect is what deploy needs of Prefect: the preflight before an apply
// and the health gate after its deployment (PrefectClient, or a stub).
type Prefect interface {
	Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error)
	Gate(ctx context.Context, ecs awsapi.ECSAPI, in gate.Input, o gate.Options) (*plan.GateReport, error)
}

// PrefectClient runs the preflight and the health gate (internal/gate) on a
// Prefect API client.
type PrefectClient struct{ *prefect.Client }

var _ Prefect = PrefectClient{}

// NewPrefect is prefect.New as a Prefect.
func NewPrefect(apiURL, apiKey string, opts ...prefect.Option) (Prefect, error) {
	c, err := prefect.New(apiURL, apiKey, opts...)
	if err != nil {
		return nil, err
	}
	return PrefectClient{c}, nil
}

// Preflight checks the key and the environment's work pool.
func (p PrefectClient) Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error) {
	return p.Client.Preflight(ctx, prefect.PreflightInput{WorkPool: env.Prefect.WorkPool, CreateWorkPool: env.Prefect.CreateWorkPool, File: env.File})
}

// Gate runs the health gate on the client and ecs.
func (p PrefectClient) Gate(ctx context.Context, ecs awsapi.ECSAPI, in gate.Input, o gate.Options) (*plan.GateReport, error) {
	return gate.Run(ctx, ecs, p.Client, in, o)
}

// Lease is a held environment lock.
type Lease interface {
	Release(ctx context.Context) error
}

// LockFunc takes the environment's lock for one apply or destroy. It fails
// fast, naming the holder, when someone else holds it.
type LockFunc func(ctx context.Context, env *config.Environment) (Lease, error)

// Options are the inputs of one plan, apply or destroy.
type Options struct {
	Env *config.Environment
	// APIKey is the Prefect API key written to the secret. Empty: the
	// secret's value is neither compared nor written.
	APIKey string
	Engine *engine.Engine
	// Prefect runs preflight and the health gate; nil skips both (plan, or
	// a caller that has no Prefect access).
	Prefect Prefect
	// Lock takes the environment lock for apply and destroy; nil takes the
	// SSM lock (SSMLock) held by whoever runs this process; NoLock takes none.
	Lock LockFunc
	// ReviewedPlan, or only its ReviewedFingerprint, is what a reviewer saw;
	// apply refuses deletes and replacements the reviewed plan did not have.
	ReviewedPlan        *plan.Plan
	ReviewedFingerprint string
	// Force deletes the secret without a recovery window on destroy.
	Force bool
	// DetailedExitCode makes ExitCode give 4 for a plan with changes.
	DetailedExitCode bool
	// Progress receives one human line at a time ("ecs_service.worker: creating… (12s)").
	Progress func(line string)
}

// Result is what a plan, apply or destroy produced.
type Result struct {
	Operation plan.Operation
	Plan      *plan.Plan
	// Report is set for apply and destroy (also when refused or failed).
	Report    *plan.Report
	Preflight *prefect.Preflight
	// Warnings are things the user should read that did not stop the run
	// (drift since review, a paused work pool).
	Warnings []string

	detailedExitCode bool
	isPlan           bool
}

// StaleError: the plan made now deletes or replaces something the reviewed
// plan did not. Nothing was changed.
type StaleError struct {
	// Unreviewed maps each address to why the new plan destroys it.
	Unreviewed map[string]string
	// FingerprintOnly: there was no reviewed plan to compare, only its
	// fingerprint, which differs.
	FingerprintOnly bool
}

func (e *StaleError) Error() string {
	var parts []string
	for _, a := range sortedKeys(e.Unreviewed) {
		parts = append(parts, fmt.Sprintf("%s (%s)", a, e.Unreviewed[a]))
	}
	what := "the reviewed plan did not"
	if e.FingerprintOnly {
		what = "the reviewed plan (known only by its fingerprint) differs from this one"
	}
	return fmt.Sprintf("refusing to apply: the plan now deletes or replaces %s, and %s; re-run the plan and have it reviewed",
		strings.Join(parts, ", "), what)
}

// PreflightError: the Prefect preflight failed; nothing was written to AWS.
type PreflightError struct{ Err error }

func (e *PreflightError) Error() string {
	return "prefect preflight failed, nothing was changed in AWS: " + e.Err.Error()
}
func (e *PreflightError) Unwrap() error { return e.Err }

// GateError: the deployment did not pass the Prefect health gate.
type GateError struct{ Gate *plan.GateReport }

func (e *GateError) Error() string {
	msg := "health gate failed: " + e.Gate.Reason
	if e.Gate.Rollback != nil {
		return msg // the gate's reason ends with its rollback step's
	}
	// Otherwise the reason usually says what was restored already; say it once.
	switch {
	case e.Gate.RolledBack && !strings.Contains(e.Gate.Reason, "rolled back"):
		msg += "; rolled back to " + e.Gate.RolledBackTo
	case e.Gate.NothingToRollBack && !strings.Contains(e.Gate.Reason, "nothing to roll back"):
		msg += "; this was the first deploy, there is nothing to roll back to"
	}
	return msg
}

// ExitCode is 3: the deploy happened and was judged unhealthy.
func (e *GateError) ExitCode() int { return ExitGateFailed }

// InputError is bad input from the user (wrong --confirm, a missing flag).
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }
func (e *InputError) ExitCode() int { return ExitBadInput }

// BadInput wraps err as bad input (exit code 2).
func BadInput(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// Exit codes (docs/design.md "cli").
const (
	ExitOK             = 0
	ExitError          = 1
	ExitBadInput       = 2
	ExitGateFailed     = 3
	ExitChangesPending = 4
)

// ExitCode maps the outcome of a command to the process exit code, in one
// place: an error that knows its code (config errors: 2, the gate: 3) gives
// it, any other error 1; a plan with changes gives 4 when asked for
// (--detailed-exitcode), like terraform's.
func ExitCode(err error, r *Result) int {
	if err != nil {
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			return coded.ExitCode()
		}
		return ExitError
	}
	if r != nil && r.isPlan && r.detailedExitCode && r.Plan != nil && r.Plan.HasChanges() {
		return ExitChangesPending
	}
	return ExitOK
}

func (o *Options) say(line string) {
	if o.Progress != nil {
		o.Progress(line)
	}
}

// engine returns a copy of o.Engine whose progress goes to o.Progress.
func (o *Options) engine() (*engine.Engine, error) {
	if o.Engine == nil {
		return nil, errors.New("deploy: no engine")
	}
	if o.Env == nil {
		return nil, errors.New("deploy: no environment")
	}
	e := *o.Engine
	if e.Progress == nil && o.Progress != nil {
		e.Progress = func(address, msg string) { o.Progress(address + ": " + msg) }
	}
	return &e, nil
}

// Plan computes what an apply would change. It takes no lock and writes nothing.
func Plan(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Operation: plan.OpApply, isPlan: true, detailedExitCode: o.DetailedExitCode}
	eng, err := o.engine()
	if err != nil {
		return res, err
	}
	st, err := stack.Build(o.Env, o.APIKey)
	if err != nil {
		return res, o.scrub(err)
	}
	p, err := eng.Plan(ctx, st)
	if err != nil {
		return res, o.scrub(err)
	}
	res.Plan = p.Plan
	return res, nil
}

// Apply is preflight → lock → plan → stale check → apply → health gate →
// report, releasing the lock on every path (also when ctx is cancelled by
// SIGTERM). The preflight comes first because the lock is itself an AWS
// write (an SSM parameter): a bad key or a missing work pool then changes
// nothing in AWS at all. Preflight only reads AWS-wise and is idempotent on
// Prefect's side (creating a missing pool tolerates a concurrent create).
func Apply(ctx context.Context, o Options) (res *Result, err error) {
	eng, err := o.engine()
	if err != nil {
		return &Result{Operation: plan.OpApply}, err
	}
	clk := eng.Clock
	res = &Result{Operation: plan.OpApply}
	started := clk.Now()
	report := func(status plan.Status, cause error) {
		if res.Report == nil {
			res.Report = &plan.Report{Environment: o.Env.Name, Operation: plan.OpApply, Plan: res.Plan, StartedAt: started}
		}
		res.Report.Status = status
		if cause != nil && res.Report.Error == "" {
			res.Report.Error = o.scrub(cause).Error()
		}
		res.Report.FinishedAt = clk.Now()
	}
	defer func() {
		err = o.scrub(err)
		o.scrubReport(res.Report)
		for i := range res.Warnings {
			if o.APIKey != "" {
				res.Warnings[i] = strings.ReplaceAll(res.Warnings[i], o.APIKey, "[redacted]")
			}
		}
	}()

	if o.Prefect != nil {
		o.say("prefect: checking the API key and the work pool " + o.Env.Prefect.WorkPool + "…")
		pf, perr := o.Prefect.Preflight(ctx, o.Env)
		if perr != nil {
			err = &PreflightError{Err: perr}
			report(plan.StatusFailed, err)
			return res, err
		}
		res.Preflight = pf
		res.Warnings = append(res.Warnings, pf.Warnings...)
		if pf.PoolCreated {
			o.say("prefect: created the work pool " + o.Env.Prefect.WorkPool)
		}
	}

	release, err := o.lock(ctx, eng, plan.OpApply)
	if err != nil {
		report(plan.StatusRefused, err)
		return res, err
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = rerr
		}
	}()

	st, err := stack.Build(o.Env, o.APIKey)
	if err != nil {
		report(plan.StatusFailed, err)
		return res, err
	}
	planned, err := eng.Plan(ctx, st)
	if err != nil {
		report(plan.StatusFailed, err)
		return res, err
	}
	res.Plan = planned.Plan
	warn, err := checkReviewed(planned.Plan, o.ReviewedPlan, o.ReviewedFingerprint)
	res.Warnings = append(res.Warnings, warn...)
	if err != nil {
		report(plan.StatusRefused, err)
		return res, err
	}

	rep, err := eng.Apply(ctx, planned)
	res.Report = rep
	if rep == nil {
		report(plan.StatusFailed, err)
		return res, err
	}
	if f := ecsdeploy.AsFailure(err); f != nil && rep.Deployment != nil {
		// ECS itself judged the new revision unhealthy (circuit breaker),
		// or its deployment was not done in time: report it like a failed
		// gate, with the stopped tasks and what ECS rolled back to; nothing
		// is left for the gate to wait for.
		rep.Gate = ecsFailure(rep.Deployment, f)
		gerr := &GateError{Gate: rep.Gate}
		status := plan.StatusFailed
		if rep.Gate.RolledBack {
			status = plan.StatusRolledBack
		}
		report(status, gerr)
		return res, gerr
	}
	if err != nil {
		report(rep.Status, err)
		return res, err
	}
	if rep.Deployment == nil || o.Prefect == nil {
		return res, nil
	}

	o.say("prefect: waiting for a worker of " + shortARN(rep.Deployment.TaskDefinition) + " to come ONLINE in " + o.Env.Prefect.WorkPool + "…")
	g, err := o.Prefect.Gate(ctx, eng.AWS.ECS, gateInput(o.Env, rep.Deployment),
		gate.Options{Clock: clk, Progress: func(line string) { o.say("prefect: " + line) }})
	if g != nil && g.WorkPoolURL == "" && res.Preflight != nil {
		g.WorkPoolURL = res.Preflight.WorkPoolURL
	}
	rep.Gate = g
	if err != nil {
		if ge := (*gate.Error)(nil); !errors.As(err, &ge) {
			err = &gate.Error{Err: err}
		}
		report(plan.StatusFailed, err)
		return res, err
	}
	if !g.Passed {
		err = &GateError{Gate: g}
		status := plan.StatusFailed
		if g.RolledBack {
			status = plan.StatusRolledBack
		}
		report(status, err)
		return res, err
	}
	report(plan.StatusSucceeded, nil)
	return res, nil
}

// Destroy is protected check → lock → plan destroy → destroy → release.
func Destroy(ctx context.Context, o Options) (res *Result, err error) {
	res = &Result{Operation: plan.OpDestroy}
	eng, err := o.engine()
	if err != nil {
		return res, err
	}
	defer func() { err = o.scrub(err) }()
	now := eng.Clock.Now()
	refuse := func(err error) (*Result, error) {
		res.Report = &plan.Report{Environment: o.Env.Name, Operation: plan.OpDestroy, Status: plan.StatusRefused,
			Plan: res.Plan, Error: err.Error(), StartedAt: now, FinishedAt: eng.Clock.Now()}
		return res, err
	}
	if o.Env.Protect {
		return refuse(&engine.ProtectedError{Environment: o.Env.Name, File: o.Env.File})
	}
	release, err := o.lock(ctx, eng, plan.OpDestroy)
	if err != nil {
		return refuse(err)
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	var opts []stack.BuildOption
	if o.Force {
		opts = append(opts, stack.ForceDeleteSecret)
	}
	st, err := stack.Build(o.Env, "", opts...)
	if err != nil {
		return res, err
	}
	planned, err := eng.PlanDestroy(ctx, st)
	if err != nil {
		return res, err
	}
	res.Plan = planned.Plan
	if !o.Force {
		for _, c := range planned.Plan.Changes {
			if c.Kind == "secret" {
				planned.Plan.Notes = append(planned.Plan.Notes, fmt.Sprintf("%s is deleted with Secrets Manager's recovery window: it can be restored for a few days, and its name stays taken until then (destroy --force deletes it at once)", c.Address))
			}
		}
	}
	res.Report, err = eng.Destroy(ctx, planned)
	return res, err
}

// LockTTL is how long a lease lasts. It outlives the longest apply (a 20
// minute deployment wait plus the health gate plus IAM and Cloud Map waits)
// and destroy (ENI drain); a holder that dies leaves a lease that is
// reported stale after it, and `deploybot unlock` breaks it at once.
const LockTTL = 2 * time.Hour

// SSMLock is the environment lock in SSM (internal/lock), held by holder.
// An empty holder.Operation is filled with the operation taking the lock
// (OperationOf).
func SSMLock(api awsapi.SSMAPI, clk clock.Clock, holder lock.Holder) LockFunc {
	return func(ctx context.Context, env *config.Environment) (Lease, error) {
		h := holder
		if h.Operation == "" {
			h.Operation = string(OperationOf(ctx))
		}
		l, err := lock.Acquire(ctx, api, clk, env.Name, h, LockTTL)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}

type operationKey struct{}

// OperationOf is the operation (apply or destroy) a LockFunc is called for.
func OperationOf(ctx context.Context) plan.Operation {
	op, _ := ctx.Value(operationKey{}).(plan.Operation)
	return op
}

// NoLock takes no lock (tests, or a caller that serialises runs itself).
var NoLock LockFunc = func(context.Context, *config.Environment) (Lease, error) { return noLease{}, nil }

type noLease struct{}

func (noLease) Release(context.Context) error { return nil }

// lock takes the environment lock and returns how to release it: Options.Lock,
// or by default the SSM lock held by whoever runs this process
// (lock.HolderFromEnv). The release runs on a context that outlives ctx (a
// SIGTERM cancels ctx, and the lock must still go), bounded to 30 seconds.
func (o *Options) lock(ctx context.Context, eng *engine.Engine, op plan.Operation) (func() error, error) {
	lf := o.Lock
	if lf == nil {
		if eng.AWS == nil || eng.AWS.SSM == nil {
			return nil, errors.New("deploy: no lock: the engine has no SSM client (use NoLock to run without one)")
		}
		lf = SSMLock(eng.AWS.SSM, eng.Clock, lock.HolderFromEnv(string(op), os.Getenv))
	}
	o.say("lock: taking the lock of environment " + o.Env.Name + "…")
	lease, err := lf(context.WithValue(ctx, operationKey{}, op), o.Env)
	if err != nil {
		return nil, err
	}
	return func() error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			return fmt.Errorf("release the lock of environment %s: %w", o.Env.Name, err)
		}
		o.say("lock: released")
		return nil
	}, nil
}

// checkReviewed compares the plan about to be applied with the one that was
// reviewed: deletes and replacements the reviewer did not see are refused,
// anything else that drifted is applied and reported as a warning.
func checkReviewed(now, reviewed *plan.Plan, fingerprint string) ([]string, error) {
	if reviewed == nil && fingerprint == "" {
		return nil, nil
	}
	if reviewed != nil && fingerprint == "" {
		fingerprint = reviewed.Fingerprint
	}
	if fingerprint == now.Fingerprint {
		return nil, nil
	}
	reasons := map[string]string{}
	for _, c := range now.Changes {
		if c.Action == plan.Delete || c.Action == plan.Replace {
			why := c.Reason
			if why == "" {
				why = string(c.Action)
			}
			reasons[c.Address] = why
		}
	}
	if reviewed == nil {
		if len(reasons) > 0 {
			return nil, &StaleError{Unreviewed: reasons, FingerprintOnly: true}
		}
		return []string{fmt.Sprintf("the plan changed since it was reviewed (fingerprint %s, reviewed %s); it deletes and replaces nothing, so it is applied", now.Fingerprint, fingerprint)}, nil
	}
	seen := map[string]plan.Action{}
	for _, c := range reviewed.Changes {
		seen[c.Address] = c.Action
	}
	unreviewed := map[string]string{}
	for a, why := range reasons {
		if act := seen[a]; act != plan.Delete && act != plan.Replace {
			unreviewed[a] = why
		}
	}
	if len(unreviewed) > 0 {
		return nil, &StaleError{Unreviewed: unreviewed}
	}
	var drift []string
	for _, c := range now.Changes {
		if c.Action != plan.NoOp && seen[c.Address] != c.Action {
			drift = append(drift, fmt.Sprintf("%s (%s)", c.Address, c.Action))
		}
	}
	msg := "the plan changed since it was reviewed"
	if len(drift) > 0 {
		msg += ": " + strings.Join(drift, ", ")
	}
	return []string{msg + "; no unreviewed delete or replacement, so it is applied"}, nil
}

// scrubReport removes the Prefect API key from every message of a report,
// whatever a lower layer (or AWS, echoing a request) put into it.
func (o *Options) scrubReport(r *plan.Report) {
	if r == nil || o.APIKey == "" {
		return
	}
	clean := func(s *string) { *s = strings.ReplaceAll(*s, o.APIKey, "[redacted]") }
	clean(&r.Error)
	for i := range r.Steps {
		clean(&r.Steps[i].Error)
	}
	if g := r.Gate; g != nil {
		clean(&g.Reason)
		for i := range g.Warnings {
			clean(&g.Warnings[i])
		}
		for i := range g.ServiceEvents {
			clean(&g.ServiceEvents[i])
		}
		for i := range g.StoppedTasks {
			clean(&g.StoppedTasks[i].StoppedReason)
			clean(&g.StoppedTasks[i].ContainerReason)
		}
	}
}

// scrub makes sure the Prefect API key never leaves in an error, whatever
// a lower layer put into it.
func (o *Options) scrub(err error) error {
	if err == nil || o.APIKey == "" || !strings.Contains(err.Error(), o.APIKey) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), o.APIKey, "[redacted]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func shortARN(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// gateInput is what the health gate judges: the deployment the apply
// started, by the environment's health_gate and prefect settings.
func gateInput(env *config.Environment, d *plan.DeploymentInfo) gate.Input {
	in := gate.Input{
		WorkPool:     env.Prefect.WorkPool,
		Timeout:      env.HealthGate.Timeout,
		MinWorkers:   env.HealthGate.MinOnlineWorkers,
		WorkerPrefix: d.WorkerPrefix,
		Deployment: ecsdeploy.Deployment{Service: ecsdeploy.Service{Cluster: d.Cluster, Name: d.Service},
			TaskDefinition: d.TaskDefinition, Since: d.StartedAt, ID: d.DeploymentID},
		Previous: d.PreviousTaskDefinition,
	}
	if env.Prune() {
		in.PruneEnvironment = env.Name
	}
	return in
}

// ecsFailure turns a deployment ECS failed (or deploybot stopped waiting
// for) into the gate's report.
func ecsFailure(d *plan.DeploymentInfo, f *ecsdeploy.Failure) *plan.GateReport {
	g := &plan.GateReport{
		Reason:       "ECS failed the deployment of " + shortARN(d.TaskDefinition) + " (" + string(f.State) + ")",
		StoppedTasks: f.StoppedTasks,
	}
	if f.State == ecsdeploy.TimedOut {
		g.Reason = "the ECS deployment of " + shortARN(d.TaskDefinition) + " was not done in time (" + string(f.State) + ")"
	}
	for _, e := range f.Events {
		g.ServiceEvents = append(g.ServiceEvents, e.Message)
	}
	if f.Reason != "" {
		g.Reason += ": " + f.Reason
	}
	switch {
	case f.State == ecsdeploy.RolledBack && d.PreviousTaskDefinition != "":
		g.RolledBack = true
		g.RolledBackTo = d.PreviousTaskDefinition
		g.Reason += "; ECS rolled the service back to " + shortARN(d.PreviousTaskDefinition)
	case d.PreviousTaskDefinition == "":
		g.NothingToRollBack = true
		g.Reason += "; this was the first deploy, there is nothing to roll back to"
	}
	return g
}
