// Package deploy is the one orchestration of plan, apply and destroy that
// both the CLI and the GitHub Action run: the environment lock, the Prefect
// preflight before any AWS write, the stale-plan check against what was
// reviewed, the engine, the Prefect health gate after a service deployment,
// and the report. It prints nothing; progress goes to Options.Events.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/gate"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	kprefect "github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/stack"
)

// Prefect is what deploy needs of Prefect: the preflight before an apply,
// the health gate after its deployment, and the API client the stack's
// Prefect kinds (the work pool) read and write with (PrefectClient, or a
// stub).
type Prefect interface {
	Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error)
	Gate(ctx context.Context, ecs awsapi.ECSAPI, in gate.Input, o gate.Options) (*plan.GateReport, error)
	// API is the client the engine gives the Prefect kinds
	// (resource.APIs.Prefect); nil for none, when the work pool is then
	// planned as not read.
	API() any
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

// NewPrefectFor is the environment's Prefect client with its credential:
// the API key as Bearer, or with prefect.auth: basic the self-hosted
// server's auth string as Basic (docs/research/prefect-flow-runs.md §F).
func NewPrefectFor(env *config.Environment, credential string, opts ...prefect.Option) (Prefect, error) {
	if env.BasicAuth() {
		if credential == "" {
			return nil, errors.New("prefect.auth is basic, but no auth string was given: pass the Action its prefect-auth-string input, or set PREFECT_API_AUTH_STRING for the CLI (the server's PREFECT_SERVER_API_AUTH_STRING, user:password)")
		}
		return NewPrefect(env.Prefect.APIURL, "", append(opts, prefect.WithAuthString(credential))...)
	}
	return NewPrefect(env.Prefect.APIURL, credential, opts...)
}

// Preflight checks the key and the environment's work pool.
func (p PrefectClient) Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error) {
	return p.Client.Preflight(ctx, prefect.PreflightInput{WorkPool: env.Prefect.WorkPool, CreateWorkPool: env.Prefect.CreateWorkPool, File: env.File})
}

// API is the client itself: it is what the work pool kind calls.
func (p PrefectClient) API() any { return p.Client }

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
	// Credential is the worker's Prefect credential, written to the
	// secret: the API key, or with prefect.auth: basic the self-hosted
	// server's auth string. Zero: the
	// secret's value is neither compared nor written.
	Credential secret.Value
	// Secrets knows every credential of the process (AWS, GitHub, Prefect);
	// every error, report, warning and note deploy returns is redacted with
	// it. nil: a Redactor holding Credential.
	Secrets *secret.Redactor
	Engine  *engine.Engine
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
	// Events receives progress: the lock, Prefect, and every step of the
	// engine (nil: none).
	Events event.Sink
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
	// Notes are what the user should know about what was done (a secret
	// only scheduled for deletion, a lock taken over from a dead run).
	Notes []string
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
	for _, a := range slices.Sorted(maps.Keys(e.Unreviewed)) {
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

// ExitCode is exit.GateFailed: the deploy happened and was judged unhealthy.
func (e *GateError) ExitCode() exit.Code { return exit.GateFailed }

// say reports progress of a phase of the run ("lock", "prefect").
func (o *Options) say(phase, msg string) {
	if o.Events == nil {
		return
	}
	e := event.Event{Subject: phase, Message: msg}
	if o.Engine != nil && o.Engine.Clock != nil {
		e.Time = o.Engine.Clock.Now()
	}
	o.Events.Emit(e)
}

// engine returns a copy of o.Engine whose progress goes to o.Events.
func (o *Options) engine() (*engine.Engine, error) {
	if o.Engine == nil {
		return nil, errors.New("deploy: no engine")
	}
	if o.Env == nil {
		return nil, errors.New("deploy: no environment")
	}
	e := *o.Engine
	if e.Events == nil {
		e.Events = o.Events
	}
	if e.Prefect == nil && o.Prefect != nil {
		if api := o.Prefect.API(); api != nil {
			e.Prefect = api
		}
	}
	return &e, nil
}

// Plan computes what an apply would change. It takes no lock and writes nothing.
func Plan(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Operation: plan.OpApply}
	eng, err := o.engine()
	if err != nil {
		return res, err
	}
	st, err := stack.Build(o.Env, o.Credential.Reveal(), stack.HealthGated)
	if err != nil {
		return res, o.redact(res, err)
	}
	p, err := eng.Plan(ctx, st)
	if err != nil {
		return res, o.redact(res, err)
	}
	notePoolAfterGate(o.Env, p)
	res.Plan = p.Plan
	return res, nil
}

// notePoolAfterGate tells the reviewer when an existing pool's defaults
// change: the apply writes them only once the smoke run passed with them
// (deferPoolDefaults).
func notePoolAfterGate(env *config.Environment, p *engine.Planned) {
	if env.SmokeFlowRun() && p.Change(stack.AddrWorkPool) == plan.Update {
		p.Plan.Notes = append(p.Plan.Notes, "the work pool "+env.Prefect.WorkPool+"'s job template defaults are written only after the health gate's smoke flow run has passed with them "+
			"(the smoke deployment carries them as its own job variables): until then the pool's flow runs keep the current ones, and a failed gate leaves the pool as it is")
	}
}

// Apply is account check → preflight → lock → plan → stale check → apply →
// health gate → report, releasing the lock on every path (also when ctx is
// cancelled by SIGTERM). Nothing but STS's GetCallerIdentity comes before
// the account check: credentials of another account must change nothing,
// in AWS or in Prefect (issue 11 item 2). The preflight comes before the
// lock because the lock is itself an AWS write (an SSM parameter): a bad
// key or a missing work pool then changes nothing in AWS at all. Preflight
// only reads AWS-wise and is idempotent on Prefect's side (creating a
// missing pool tolerates a concurrent create).
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
			res.Report.Error = o.redactor().Redact(cause.Error())
		}
		res.Report.FinishedAt = clk.Now()
	}
	defer func() { err = o.redact(res, err) }()

	if err := checkAccount(ctx, eng, o.Env); err != nil {
		report(plan.StatusRefused, err)
		return res, err
	}
	if o.Prefect != nil {
		o.say("prefect", "checking the API key and the work pool "+o.Env.Prefect.WorkPool+"…")
		pf, perr := o.Prefect.Preflight(ctx, o.Env)
		if perr != nil {
			err = &PreflightError{Err: perr}
			report(plan.StatusFailed, err)
			return res, err
		}
		res.Preflight = pf
		res.Warnings = append(res.Warnings, pf.Warnings...)
		if pf.PoolMissing {
			o.say("prefect", "the work pool "+o.Env.Prefect.WorkPool+" does not exist yet: the apply creates it (prefect.create_work_pool)")
		}
	}

	release, err := o.lock(ctx, eng, res, plan.OpApply)
	if err != nil {
		report(plan.StatusRefused, err)
		return res, err
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = rerr
		}
	}()

	st, err := stack.Build(o.Env, o.Credential.Reveal(), stack.HealthGated)
	if err != nil {
		report(plan.StatusFailed, err)
		return res, err
	}
	planned, err := eng.Plan(ctx, st)
	if err != nil {
		report(plan.StatusFailed, err)
		return res, err
	}
	notePoolAfterGate(o.Env, planned)
	res.Plan = planned.Plan
	warn, err := checkReviewed(planned.Plan, o.ReviewedPlan, o.ReviewedFingerprint)
	res.Warnings = append(res.Warnings, warn...)
	if err != nil {
		report(plan.StatusRefused, err)
		return res, err
	}

	deferPool := deferPoolDefaults(o, planned)
	rep, err := eng.Apply(ctx, planned)
	res.Report = rep
	if rep == nil {
		report(plan.StatusFailed, err)
		return res, err
	}
	dep := ecs.DeploymentOf(rep.Outcomes)
	if dep != nil {
		rep.Deployment = &dep.Info
	}
	failure := ecsdeploy.AsFailure(err)
	if err != nil && (failure == nil || rep.Deployment == nil) {
		report(rep.Status, err)
		return res, err
	}
	if rep.Deployment == nil {
		// No revision to gate: the pool's defaults are written now.
		if err := eng.ApplyDeferred(ctx, planned, rep); err != nil {
			report(plan.StatusFailed, err)
			return res, err
		}
		return res, nil
	}
	if o.Prefect == nil {
		if failure != nil {
			// No Prefect to confirm with: ECS's word is the report.
			rep.Gate = ecsFailure(rep.Deployment, failure)
			gerr := &GateError{Gate: rep.Gate}
			report(gateStatus(rep.Gate), gerr)
			return res, gerr
		}
		return res, nil
	}

	in := gateInput(o.Env, rep.Deployment)
	if failure != nil {
		// ECS itself judged the new revision unhealthy (its circuit breaker
		// rolled it back, or it stopped), or its deployment was not done in
		// time: the gate runs no stage, and its rollback step follows ECS's
		// rollback (or rolls back) and confirms with Prefect that a worker of
		// the previous revision serves, as it does after its own verdict.
		in.FailedAtECS = &gate.ECSVerdict{State: failure.State, Reason: failure.Reason}
		o.say("prefect", "ECS failed the deployment of "+shortARN(rep.Deployment.TaskDefinition)+" ("+string(failure.State)+"); confirming with Prefect which worker serves…")
	} else {
		o.say("prefect", "waiting for a worker of "+shortARN(rep.Deployment.TaskDefinition)+" to come ONLINE in "+o.Env.Prefect.WorkPool+"…")
	}
	var poolStep *plan.StepResult
	if !deferPool {
		in.AlsoRollBack = poolRollback(o, planned, &poolStep)
	}
	g, err := o.Prefect.Gate(ctx, eng.AWS.ECS, in, gate.Options{Clock: clk, Events: o.Events})
	if g != nil && g.WorkPoolURL == "" && res.Preflight != nil {
		g.WorkPoolURL = res.Preflight.WorkPoolURL
	}
	if g != nil && failure != nil && len(g.StoppedTasks) == 0 {
		g.StoppedTasks = failure.StoppedTasks
	}
	rep.Gate = g
	recordRollback(rep, g)
	if poolStep != nil {
		rep.Steps = append(rep.Steps, *poolStep)
	}
	if err != nil {
		if ge := (*gate.Error)(nil); !errors.As(err, &ge) {
			err = &gate.Error{Err: err}
		}
		report(plan.StatusFailed, err)
		return res, err
	}
	if !g.Passed {
		err = &GateError{Gate: g}
		report(gateStatus(g), err)
		return res, err
	}
	if deferPool {
		o.say("prefect", "the smoke flow run passed with the new job template defaults: writing them to the work pool "+o.Env.Prefect.WorkPool+"…")
	}
	if err := eng.ApplyDeferred(ctx, planned, rep); err != nil {
		// The gate is not recorded: the next apply gates the revision
		// again and writes the pool's defaults then.
		report(plan.StatusFailed, err)
		return res, err
	}
	// The verdict is part of what the apply converges to: an apply stopped
	// before this line (also between the gate and the pool's defaults)
	// leaves the revision to be gated by the next one, which writes the
	// pool's defaults after its gate passed.
	if eng.AWS != nil && eng.AWS.ECS != nil {
		if err := ecs.RecordGatePassed(context.WithoutCancel(ctx), eng.AWS.ECS, st.Names.ServiceARN, rep.Deployment.TaskDefinition); err != nil {
			res.Warnings = append(res.Warnings, err.Error()+": the next apply gates this revision again")
		}
	}
	report(plan.StatusSucceeded, nil)
	return res, nil
}

// deferPoolDefaults defers the write of an existing work pool's changed
// job template defaults until the health gate's smoke run has passed with
// them (the smoke deployment carries them as its own job variables,
// internal/stack): a pool's defaults take effect for every worker of the
// pool at once, the previous revision's too, so a broken default written
// before the gate (a flow image no registry has) would break every flow run
// until the rollback put it back. A failed gate then leaves the pool as it
// was, with nothing to restore. A pool this apply creates, and an
// environment without the smoke run (health_gate.flow_run: false), keep
// the pool before the worker (poolRollback restores an update).
func deferPoolDefaults(o Options, planned *engine.Planned) bool {
	return o.Prefect != nil && o.Env.SmokeFlowRun() && planned.Defer(stack.AddrWorkPool)
}

// poolRollback is the gate's AlsoRollBack when the apply changed the work
// pool's job template defaults: it puts them back as the plan read them,
// so that the previous worker does not launch flow runs with what the
// failed deploy wrote (its flow image, roles or network) and the rollback
// restores a worker that can run flows. The step it took goes to *step.
func poolRollback(o Options, planned *engine.Planned, step **plan.StepResult) func(context.Context) (string, error) {
	if o.Prefect == nil || planned.Change(stack.AddrWorkPool) != plan.Update {
		return nil
	}
	api, ok := o.Prefect.API().(kprefect.PoolAPI)
	if !ok {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		clk := o.Engine.Clock
		began := clk.Now()
		restored, err := kprefect.RestoreDefaults(ctx, api, o.Env.Prefect.WorkPool, planned.Live(stack.AddrWorkPool))
		st := &plan.StepResult{Address: stack.AddrWorkPool, Action: plan.Rollback, Status: "done", Duration: clk.Now().Sub(began)}
		switch {
		case err != nil:
			st.Status, st.Error = "failed", "put the work pool's job template defaults back: "+err.Error()
			*step = st
			return "", fmt.Errorf("the work pool's job template defaults could not be put back (%v): flow runs still get what this deploy set", err)
		case !restored:
			return "", nil
		}
		*step = st
		o.say("prefect", "put the work pool "+o.Env.Prefect.WorkPool+"'s job template defaults back as they were before this deploy")
		return "the work pool's job template defaults are back as they were before this deploy", nil
	}
}

// gateStatus is the status of an apply whose gate failed: rolled back when
// the previous revision runs again, failed otherwise.
func gateStatus(g *plan.GateReport) plan.Status {
	if g.RolledBack {
		return plan.StatusRolledBack
	}
	return plan.StatusFailed
}

// recordRollback makes the gate's rollback a step of the report (on the
// service), and the rollback deployment the report's Rollback, as ECS
// reports it (issue 10 item 7).
func recordRollback(rep *plan.Report, g *plan.GateReport) {
	if g == nil || g.Rollback == nil || rep.Deployment == nil {
		return
	}
	rb := g.Rollback
	switch rb.Outcome {
	case plan.RollbackNothingToRollBackTo, plan.RollbackSkipped:
		return
	}
	st := plan.StepResult{Address: stack.AddrService, Action: plan.Rollback, Status: "done", Duration: rb.Duration}
	switch rb.Outcome {
	case plan.RollbackFailed, plan.RollbackNotComplete:
		st.Status, st.Error = "failed", rb.Reason
	}
	rep.Steps = append(rep.Steps, st)
	d := rep.Deployment
	rep.Rollback = &plan.DeploymentInfo{Cluster: d.Cluster, Service: d.Service, DeploymentID: rb.DeploymentID,
		TaskDefinition: rb.To, PreviousTaskDefinition: rb.From, Status: rb.DeploymentStatus}
	if rb.ByECS && rb.DeploymentID == "" {
		rep.Rollback.DeploymentID = d.DeploymentID
	}
}

// Destroy is the stack's guards (protect) → account check → lock → plan
// destroy → destroy → release. As for Apply, nothing but STS comes before
// the account check.
func Destroy(ctx context.Context, o Options) (res *Result, err error) {
	res = &Result{Operation: plan.OpDestroy}
	eng, err := o.engine()
	if err != nil {
		return res, err
	}
	defer func() { err = o.redact(res, err) }()
	now := eng.Clock.Now()
	refuse := func(err error) (*Result, error) {
		res.Report = &plan.Report{Environment: o.Env.Name, Operation: plan.OpDestroy, Status: plan.StatusRefused,
			Plan: res.Plan, Error: err.Error(), StartedAt: now, FinishedAt: eng.Clock.Now()}
		return res, err
	}
	var opts []stack.BuildOption
	if o.Force {
		opts = append(opts, stack.ForceDeleteSecret)
	}
	st, err := stack.Build(o.Env, "", opts...)
	if err != nil {
		return res, err
	}
	if err := st.Refusal(plan.OpDestroy); err != nil {
		return refuse(err)
	}
	if err := checkAccount(ctx, eng, o.Env); err != nil {
		return refuse(err)
	}
	release, err := o.lock(ctx, eng, res, plan.OpDestroy)
	if err != nil {
		return refuse(err)
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	planned, err := eng.PlanDestroy(ctx, st)
	if err != nil {
		return res, err
	}
	res.Plan = planned.Plan
	for _, u := range planned.Plan.Unread {
		// The rest is torn down; this one is left as it is, and a destroy
		// run again with its credentials finishes it.
		res.Notes = append(res.Notes, fmt.Sprintf("%s was not read (%s): the destroy leaves it as it is; run the destroy again with the Prefect API key to delete it or reset its defaults", u.Address, u.Reason))
	}
	res.Report, err = eng.Destroy(ctx, planned)
	if err == nil {
		// Said after the destroy too, where the user reads its outcome
		// (issue 11 item 22); a failed destroy may not have reached it.
		res.Notes = append(res.Notes, st.NotesFor(plan.OpDestroy, planned.Plan.Deletes, true)...)
	}
	return res, err
}

// Prefect API key's secret: Secrets Manager only schedules it for deletion
// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html),
// the name stays taken for the recovery window, and an apply restores it
// checkAccount asks STS whom the credentials belong to and refuses any
// account but the file's, before anything else is called.
func checkAccount(ctx context.Context, eng *engine.Engine, env *config.Environment) error {
	if eng.AWS == nil || eng.AWS.STS == nil {
		return errors.New("deploy: the engine has no STS client to check the AWS account with")
	}
	out, err := eng.AWS.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		if awserr.IsNoCredentials(err) {
			return fmt.Errorf("%s\n(%w)", awserr.CredentialsHint, err)
		}
		return fmt.Errorf("check AWS account (sts GetCallerIdentity): %w", err)
	}
	if got := aws.ToString(out.Account); got != env.AWS.AccountID {
		return &engine.AccountMismatchError{File: env.File, Want: env.AWS.AccountID, Got: got}
	}
	return nil
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
func (o *Options) lock(ctx context.Context, eng *engine.Engine, res *Result, op plan.Operation) (func() error, error) {
	lf := o.Lock
	if lf == nil {
		if eng.AWS == nil || eng.AWS.SSM == nil {
			return nil, errors.New("deploy: no lock: the engine has no SSM client (use NoLock to run without one)")
		}
		lf = SSMLock(eng.AWS.SSM, eng.Clock, lock.HolderFromEnv(string(op), os.Getenv))
	}
	o.say("lock", "taking the lock of environment "+o.Env.Name+"…")
	lease, err := lf(context.WithValue(ctx, operationKey{}, op), o.Env)
	if err != nil {
		return nil, err
	}
	if t, ok := lease.(interface{ TakeoverNote() string }); ok {
		if note := t.TakeoverNote(); note != "" {
			o.say("lock", note)
			res.Notes = append(res.Notes, note)
		}
	}
	return func() error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			return fmt.Errorf("release the lock of environment %s: %w", o.Env.Name, err)
		}
		o.say("lock", "released")
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

// redactor is the process's Redactor, or one that knows the API key.
func (o *Options) redactor() *secret.Redactor {
	if o.Secrets != nil {
		o.Secrets.Add(o.Credential)
		return o.Secrets
	}
	r := &secret.Redactor{}
	r.Add(o.Credential)
	return r
}

// redact takes every credential out of what deploy returns, whatever a
// lower layer (or AWS, echoing a request) put into it: the error, the
// report's messages, the warnings and the notes.
func (o *Options) redact(res *Result, err error) error {
	r := o.redactor()
	if res != nil {
		for i := range res.Warnings {
			res.Warnings[i] = r.Redact(res.Warnings[i])
		}
		for i := range res.Notes {
			res.Notes[i] = r.Redact(res.Notes[i])
		}
		redactReport(r, res.Report)
	}
	return r.Error(err)
}

func redactReport(red *secret.Redactor, r *plan.Report) {
	if r == nil {
		return
	}
	clean := func(s *string) { *s = red.Redact(*s) }
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

func shortARN(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
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
			TaskDefinition: d.TaskDefinition, Since: d.StartedAt, ID: d.DeploymentID, ARN: d.ARN},
		Previous: d.PreviousTaskDefinition,
	}
	if env.Prune() {
		in.PruneEnvironment = env.Name
	}
	if env.SmokeFlowRun() {
		in.FlowRun = &gate.FlowRunInput{Flow: kprefect.SmokeFlow, Deployment: stack.NamesFor(env).SmokeDeployment,
			IdempotencyKey: SmokeRunKey(env.Name, d), RunName: "deploybot-smoke " + shortARN(d.TaskDefinition)}
	}
	return in
}

// SmokeRunKey is the idempotency key of a deploy's smoke flow run: one run
// per environment, revision and ECS deployment, so that an apply run again
// for the same deploy (interrupted, then gated by the next apply) follows
// the run the first one started instead of starting another
// (docs/research/prefect-flow-runs.md §C.3).
func SmokeRunKey(env string, d *plan.DeploymentInfo) string {
	return "deploybot-smoke/" + env + "/" + shortARN(d.TaskDefinition) + "/" + d.DeploymentID
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
