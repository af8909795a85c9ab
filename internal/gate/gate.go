// Package gate is the health gate after a deploy: it composes the ECS
// deployment (internal/ecsdeploy) with a Prefect API client
// (internal/prefect, which knows nothing of AWS) to decide whether the new
// revision works, and rolls the service back when it does not.
//
// The gate runs stages in order, each a proof the new revision must give:
// its workers ONLINE in the work pool, then a smoke flow run that one of
// them runs to COMPLETED. The first stage that fails ends them, and the
// rollback is one step with its own outcome in the report. All of it,
// rollback included, is bounded by Input.Timeout (health_gate.timeout).
package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
)

// PollInterval is how often the gate asks Prefect for the pool's workers
// (and ECS for the deployment).
//
// Rate-limit arithmetic (docs/research/prefect-api.md §2.4): Prefect Cloud's
// lowest plan (Hobby) allows 625 API requests per minute per account. One
// poll is one POST .../workers/filter (one page: the filter keeps only
// workers that heartbeated since the deploy started, far fewer than 200),
// so 10 s gives 6 requests/minute, under 1 % of 625. Retries of a 429/503
// wait for Retry-After, so they add no burst. Rollback confirmation polls
// at the same pace, and pruning deletes at most MaxPrune workers once, after
// a pass. A worker itself heartbeats every 30 s (2/min) and polls for runs
// every 10 s (6/min, PREFECT_WORKER_QUERY_SECONDS, §4.3): the gate costs
// about what one more worker does. 10 s is also the low end of the
// reference's suggested 10–15 s (§1.7 step 3) and a third of a heartbeat
// interval, so a new worker is seen at most ~10 s after its first heartbeat.
const PollInterval = 10 * time.Second

// DefaultTimeout and DefaultMinWorkers apply when the input leaves them
// zero (config fills the same defaults from the environment file).
//
// 10 minutes: half for the stages, half for a rollback (RollbackReserve).
// The stages need a minute or so when the revision works: its workers are
// ONLINE before ECS calls the deployment done (their health check waits for
// a second heartbeat), and the smoke flow run is the worker's next poll (up
// to 10 s), a Fargate task's start (provisioning and the flow image's pull,
// 30-90 s for prefecthq/prefect's ~400 MB on Fargate), a second or two of
// flow, and Prefect's COMPLETED; 5 minutes leave room for a slow registry
// or a large image. A rollback is one Fargate task of the previous
// revision, its two heartbeats and ECS's steady state: 2-3 minutes.
const (
	DefaultTimeout    = 10 * time.Minute
	DefaultMinWorkers = 1
)

// RollbackReserve is the most of the timeout the stages leave for a
// rollback: they may use the timeout minus half of it, at most minus this.
// A rollback of one Fargate task (image pull, start, the old worker's first
// heartbeat) takes a minute or two; a longer timeout goes to the stages.
const RollbackReserve = 5 * time.Minute

// FailFastStops is how many failed stops of the new revision's tasks count
// as a crash loop. One stop can be a host replacement; two in one deploy
// cannot. (The circuit breaker needs 3 for one replica,
// docs/research/aws-ecs.md §4.1, and after the deployment is COMPLETED it
// no longer watches at all.)
const FailFastStops = 2

// MaxPrune bounds the deletes of one run.
const MaxPrune = 100

// WorkerPrefixEnv is the task-definition variable that names a revision's
// workers (the worker identity contract in docs/ARCHITECTURE.md).
const WorkerPrefixEnv = "DEPLOYBOT_WORKER_PREFIX"

// Input is what the gate judges, and by what rules.
type Input struct {
	// WorkPool is the Prefect work pool the workers poll.
	WorkPool string
	// Timeout bounds the whole gate, rollback included (0: DefaultTimeout).
	Timeout time.Duration
	// MinWorkers is how many workers of the new revision must be ONLINE
	// (0: DefaultMinWorkers).
	MinWorkers int
	// WorkerPrefix names the new revision's workers ("<prefix>-<host>");
	// "" reads it from the task definition's WorkerPrefixEnv.
	WorkerPrefix string
	// Deployment is the deployment to judge: its service, the new
	// revision (TaskDefinition) and when it started (Since).
	Deployment ecsdeploy.Deployment
	// Previous is the revision to roll back to ("" on a first deploy).
	Previous string
	// PruneEnvironment: after a pass, delete the OFFLINE workers that older
	// revisions of this environment left in the pool ("" prunes nothing).
	PruneEnvironment string
	// FlowRun is the smoke flow-run stage (nil skips it:
	// health_gate.flow_run false).
	FlowRun *FlowRunInput
	// FailedAtECS: ECS failed the deployment before the gate (its circuit
	// breaker rolled it back, or stopped it); the gate runs no stage, and
	// its rollback step follows ECS's rollback and confirms with Prefect that
	// a worker of the previous revision serves. Reason is ECS's verdict.
	FailedAtECS *ECSVerdict
	// AlsoRollBack, when set, puts back what else the deploy changed that
	// the previous revision's flow runs depend on (the work pool's job
	// template defaults); the rollback step calls it first, before it
	// points the service back, and its answer is part of the step's reason.
	AlsoRollBack func(ctx context.Context) (said string, err error)
}

// ECSVerdict is how ECS ended the deployment the apply started.
type ECSVerdict struct {
	State  ecsdeploy.State
	Reason string
}

// Prefect is what the gate needs of a Prefect API client (*prefect.Client):
// the pool's workers, and the smoke deployment's flow runs and logs.
type Prefect interface {
	ReadWorkers(ctx context.Context, pool string, f *prefect.WorkerFilter) ([]prefect.Worker, error)
	DeleteWorker(ctx context.Context, pool, name string) (bool, error)
	WorkPoolURL(pool string) string
	// ClockSkew is Prefect's clock minus deploybot's (from its answers'
	// Date headers; known false before one came): heartbeats are in
	// Prefect's time.
	ClockSkew() (skew time.Duration, known bool)

	ReadDeploymentByName(ctx context.Context, flow, name string) (*prefect.Deployment, error)
	CreateFlowRun(ctx context.Context, deploymentID string, r prefect.FlowRunCreate) (*prefect.FlowRun, bool, error)
	ReadFlowRun(ctx context.Context, id string) (*prefect.FlowRun, error)
	CancelFlowRun(ctx context.Context, id, message string) (*prefect.Orchestration, error)
	ReadFlowRunLogs(ctx context.Context, runID string, minLevel, limit int) ([]prefect.Log, error)
	FlowRunURL(id string) string
}

var _ Prefect = (*prefect.Client)(nil)

// Options are how the gate runs.
type Options struct {
	Clock clock.Clock
	// Events receives one line per poll while waiting, as events of the
	// "prefect" phase of the run (nil: none).
	Events event.Sink
}

// Error is a gate that gave no verdict: it could not run (bad input, Prefect
// refusing the key or the pool, or never answering) or was interrupted.
type Error struct{ Err error }

func (e *Error) Error() string { return "health gate: " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Run judges the deployment: each stage in turn, with ECS watched at every
// poll so that a crash loop or ECS's own rollback ends the wait early; then,
// on a failure, the rollback step; on a pass, the pruning of OFFLINE workers
// of older revisions.
//
// It returns (report, nil) whenever the gate ran, passed or failed, and an
// *Error only when it gave no verdict.
func Run(ctx context.Context, ecs awsapi.ECSAPI, workers Prefect, in Input, o Options) (*plan.GateReport, error) {
	if ecs == nil || workers == nil || o.Clock == nil {
		return nil, &Error{errors.New("ECS, Prefect and a clock are required")}
	}
	d := in.Deployment
	if d.Cluster == "" || d.Name == "" || d.TaskDefinition == "" {
		return nil, &Error{fmt.Errorf("deployment must name the cluster, service and task definition (got %s/%s %q)", d.Cluster, d.Name, d.TaskDefinition)}
	}
	if in.WorkPool == "" {
		return nil, &Error{errors.New("the work pool is empty")}
	}
	if in.Timeout <= 0 {
		in.Timeout = DefaultTimeout
	}
	if in.MinWorkers <= 0 {
		in.MinWorkers = DefaultMinWorkers
	}
	in.Deployment.Previous = in.Previous
	g := &run{in: in, ecs: ecsdeploy.NewWatcher(ecs, o.Clock), prefect: workers, clk: o.Clock,
		dep: in.Deployment}
	g.progress = func(line string) {
		if o.Events != nil {
			o.Events.Emit(event.Event{Time: g.clk.Now(), Subject: "prefect", Message: line})
		}
	}
	g.start = g.clk.Now()
	g.deadline = g.start.Add(in.Timeout)
	g.stagesDeadline = g.deadline.Add(-min(in.Timeout/2, RollbackReserve))
	rep, err := g.run(ctx)
	if rep != nil {
		rep.Duration = g.clk.Now().Sub(g.start)
	}
	if err == nil && ctx.Err() != nil && !rep.Passed {
		// cancelled (SIGTERM) while waiting or rolling back: the report
		// says how far it got, and the caller must not read it as a verdict
		err = &Error{fmt.Errorf("interrupted: %w", ctx.Err())}
	}
	return rep, err
}

// stage is one proof the new revision must give.
type stage interface {
	// name is the stage's name in the report.
	name() string
	// check waits until the stage passes or fails, at the latest at
	// deadline, looking at ECS every poll (run.watchECS).
	check(ctx context.Context, g *run, rep *plan.GateReport, deadline time.Time) verdict
}

// verdict is how a stage ended.
type verdict struct {
	passed bool
	reason string
	// err: the stage could not run (Prefect refused the key, the pool is
	// gone, nobody answered) or was interrupted; the gate stops without
	// rolling back.
	err *Error
	// ecs is what ECS said when a stage failed on its word (nil otherwise).
	ecs *ecsView
}

// run is one gate.
type run struct {
	in       Input
	ecs      *ecsdeploy.Watcher
	prefect  Prefect
	clk      clock.Clock
	progress func(string)
	// dep is the new revision's deployment as ECS lists it (Look fills it).
	dep ecsdeploy.Deployment
	// prefix names the new revision's workers; sameNames: the previous
	// revision's carry the same prefix (the prefix hashes the container
	// definition, so a task-level change such as cpu keeps it).
	prefix    string
	sameNames bool
	// reused tells the new revision's workers under names an earlier task
	// used, with sameNames (nil until ECS says the deployment succeeded).
	reused *reusedNames
	// start, and the deadlines: the stages', then the whole gate's.
	start, stagesDeadline, deadline time.Time
	// lastECS is the last look at ECS; lastWorkers the last listing of
	// the pool during the rollback (nil before).
	lastECS     ecsView
	lastWorkers []prefect.Worker
	// newWorkers are the names the workers stage counted as the new
	// revision's (the smoke flow run must run on one of them, or on a
	// worker of the new revision that came later).
	newWorkers map[string]bool
	// report is the report being written.
	report *plan.GateReport
}

func (g *run) run(ctx context.Context) (*plan.GateReport, error) {
	rep := &plan.GateReport{WorkPoolURL: g.prefect.WorkPoolURL(g.in.WorkPool)}
	g.report = rep
	g.prefix = g.in.WorkerPrefix
	if g.prefix == "" {
		p, err := g.ecs.TaskDefinitionEnv(ctx, g.dep.TaskDefinition, WorkerPrefixEnv)
		if err != nil {
			return rep, &Error{err}
		}
		if p == "" {
			return rep, &Error{fmt.Errorf("task definition %s has no %s variable, so its workers cannot be told apart", g.dep.TaskDefinition, WorkerPrefixEnv)}
		}
		g.prefix = p
	}
	if prev := g.in.Previous; prev != "" {
		pp, err := g.ecs.TaskDefinitionEnv(ctx, prev, WorkerPrefixEnv)
		if err != nil {
			addWarning(rep, "reading the previous revision: "+err.Error())
		}
		g.sameNames = err != nil || pp == g.prefix
	}

	if f := g.in.FailedAtECS; f != nil {
		// ECS judged the revision before the gate did: no stage runs; the
		// rollback step confirms, by what Prefect reports, that the
		// previous revision's worker serves (issue 10 item 7).
		rep.Reason = "ECS failed the deployment of " + shortTD(g.dep.TaskDefinition) + " (" + string(f.State) + ")"
		if f.Reason != "" {
			rep.Reason += ": " + f.Reason
		}
		v := g.watchECS(ctx)
		rep.StoppedTasks, rep.ServiceEvents = v.stopped, v.events
		g.rollback(ctx, rep, &v)
		return rep, nil
	}
	stages := []stage{workersStage{}}
	if g.in.FlowRun != nil {
		stages = append(stages, flowRunStage{})
	}
	for _, s := range stages {
		began := g.clk.Now()
		v := s.check(ctx, g, rep, g.stagesDeadline)
		if v.err != nil {
			return rep, v.err
		}
		rep.Stages = append(rep.Stages, plan.GateStage{Name: s.name(), Passed: v.passed, Reason: v.reason, Duration: g.clk.Now().Sub(began)})
		rep.Reason = v.reason
		if !v.passed {
			if ctx.Err() != nil {
				return rep, nil
			}
			g.rollback(ctx, rep, v.ecs)
			return rep, nil
		}
	}
	rep.Passed = true
	if g.in.PruneEnvironment != "" {
		g.prune(ctx, rep)
	}
	return rep, nil
}

func addWarning(rep *plan.GateReport, w string) {
	for _, have := range rep.Warnings {
		if have == w {
			return
		}
	}
	rep.Warnings = append(rep.Warnings, w)
}

// shortTD turns a task-definition ARN into family:revision.
func shortTD(arn string) string { return ecsdeploy.ShortTaskDefinition(arn) }
