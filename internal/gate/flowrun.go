package gate

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
)

// FlowRunInput is the smoke flow run the gate starts: a run of the smoke
// deployment (the stack's prefect_deployment.smoke) that a worker of the
// new revision must take to COMPLETED (docs/research/prefect-flow-runs.md
// §C, §D).
type FlowRunInput struct {
	// Flow and Deployment name the smoke deployment.
	Flow, Deployment string
	// IdempotencyKey identifies this deploy: an apply that is run again
	// for the same ECS deployment follows the run the first one started,
	// instead of starting another (create_flow_run returns it, §C.3).
	IdempotencyKey string
	// RunName is the run's name in the Prefect UI.
	RunName string
}

// FlowRunPollInterval is how often the gate reads the smoke flow run. A
// run's states change in seconds (Scheduled, Pending, Running, Completed,
// §C.4), and the gate should see COMPLETED at most a few seconds after
// Prefect does (issue 10 item 5): 2 s adds at most 2 s. One poll is one GET
// /flow_runs/{id}: 30 requests a minute, under 5 % of Prefect Cloud's
// lowest rate limit (625 a minute, docs/research/prefect-api.md §2.4), for
// the minute or two a run takes; a 429 is retried after its Retry-After
// (internal/prefect), so it adds no burst. The progress line is said only
// when the run's state changes or FlowRunReportEvery has passed.
const FlowRunPollInterval = 2 * time.Second

// FlowRunReportEvery is how often the gate says the run is still in the
// same state (retry.ReportEvery's pace).
const FlowRunReportEvery = 30 * time.Second

// LogSettle is how long after a run's terminal state the gate reads its
// logs again: runs send their logs in batches every 2 s
// (settings/models/logging.py:47-49, §C.5), so the last lines come after
// the state.
const LogSettle = 5 * time.Second

// MaxLogLines bounds the log lines a failed run's report quotes.
const MaxLogLines = 20

// maxLogLine bounds one quoted line.
const maxLogLine = 300

// cancelReserve is what the stage keeps of its time to cancel a run that
// did not finish and read its logs and its task.
const cancelReserve = 15 * time.Second

// flowRunStage passes when the smoke flow run is COMPLETED and was run by a
// worker of the new revision. Prefect routes a run to whichever worker of
// the pool polls its queue first; the run goes to the smoke deployment's
// own queue (no team's deployment uses it, so no concurrency limit or
// paused queue of theirs holds it up), which every worker polls, and the
// stage checks which worker submitted it (labels["prefect.worker.name"],
// §C.4). It starts only after ECS said the deployment was SUCCESSFUL, when
// the previous revision's workers have stopped (minimum healthy 100 %
// stops them only once the new ones are healthy, and SUCCESSFUL waits for
// them to be gone), so the new revision's workers are the ones polling.
// Starting the worker with --work-queue would keep every other worker off
// the queue, but it would also make the new worker poll only the queues
// it names, and stop polling the team's own queues.
type flowRunStage struct{}

func (flowRunStage) name() string { return "flow_run" }

func (flowRunStage) check(ctx context.Context, g *run, rep *plan.GateReport, deadline time.Time) verdict {
	in := g.in.FlowRun
	fr := &plan.GateFlowRun{Deployment: in.Flow + "/" + in.Deployment}
	rep.FlowRun = fr
	dep, err := g.prefect.ReadDeploymentByName(ctx, in.Flow, in.Deployment)
	if err == nil && dep == nil {
		err = fmt.Errorf("the smoke deployment %s does not exist in Prefect (the apply creates it: prefect_deployment.smoke)", fr.Deployment)
	}
	if err != nil {
		return verdict{err: &Error{err}}
	}
	r, created, err := g.prefect.CreateFlowRun(ctx, dep.ID, prefect.FlowRunCreate{Name: in.RunName, IdempotencyKey: in.IdempotencyKey,
		Parameters: map[string]any{}, Tags: []string{"deploybot"}})
	if err != nil {
		return verdict{err: &Error{fmt.Errorf("start the smoke flow run: %w", err)}}
	}
	fr.ID, fr.Name, fr.URL, fr.Reused = r.ID, r.Name, g.prefect.FlowRunURL(r.ID), !created
	began := g.clk.Now()
	if r.Created != nil {
		// a run an earlier apply started counts from its creation, in
		// Prefect's time turned into ours
		if c := r.Created.Add(-g.skew()); c.Before(began) {
			began = c
		}
	}
	if created {
		g.progress(fmt.Sprintf("health gate: started the smoke flow run %s (%s)", r.Name, fr.URL))
	} else {
		g.progress(fmt.Sprintf("health gate: following the smoke flow run %s an earlier apply of this deploy started (%s)", r.Name, fr.URL))
	}
	var lastErr error
	var lastLine string
	var saidAt time.Time
	for {
		if r != nil {
			g.noteRun(fr, r)
		}
		if r != nil && prefect.Terminal(r.StateType) {
			fr.Duration = runDuration(r, began, g.clk.Now(), g.skew())
			if r.StateType == prefect.StateCompleted && fr.NewRevision {
				return verdict{passed: true, reason: fmt.Sprintf("the smoke flow run %s COMPLETED in %s on worker %s", r.Name, fr.Duration.Round(time.Second), fr.Worker)}
			}
			g.diagnose(ctx, fr, r.ID)
			if r.StateType == prefect.StateCompleted {
				return verdict{reason: fmt.Sprintf("the smoke flow run %s COMPLETED, but on worker %q, which is not of %s (prefix %s): another worker polls work pool %q, so the run proves nothing about this revision",
					r.Name, fr.Worker, shortTD(g.dep.TaskDefinition), g.prefix, g.in.WorkPool)}
			}
			return verdict{reason: g.failedRunReason(fr, r)}
		}
		left := deadline.Sub(g.clk.Now()) - cancelReserve
		if left <= 0 {
			break
		}
		if line := g.flowRunLine(fr, r, lastErr, 0); line != lastLine || g.clk.Now().Sub(saidAt) >= FlowRunReportEvery {
			g.progress(g.flowRunLine(fr, r, lastErr, left))
			lastLine, saidAt = line, g.clk.Now()
		}
		if err := g.clk.Sleep(ctx, min(FlowRunPollInterval, left)); err != nil {
			return verdict{err: &Error{err}}
		}
		got, err := g.prefect.ReadFlowRun(ctx, fr.ID)
		switch {
		case err == nil:
			r, lastErr = got, nil
		case ctx.Err() != nil:
			return verdict{err: &Error{ctx.Err()}}
		case prefect.StatusOf(err) == http.StatusNotFound:
			return verdict{reason: fmt.Sprintf("the smoke flow run %s was deleted from Prefect before it finished", fr.Name)}
		default:
			lastErr = err // Prefect did not answer this time; the time left decides
		}
	}
	// Out of time: without the ECS observer a run whose task dies before
	// it reaches Prefect stays PENDING for ever (§B, fact 3), so the gate
	// cancels it. The worker stops its task on CANCELLING (§C.6).
	fr.Duration = g.clk.Now().Sub(began)
	waited := fr.Duration.Round(time.Second)
	state := "never answered"
	if r != nil {
		state = describeRunState(r)
	}
	o, err := g.prefect.CancelFlowRun(ctx, fr.ID, fmt.Sprintf("deploybot: the health gate's time for the smoke flow run ran out after %s", waited))
	if err == nil && o.State != nil {
		fr.Cancelled = o.Status == "ACCEPT" || o.State.Type == prefect.StateCancelled
		fr.State, fr.StateName = o.State.Type, o.State.Name
	}
	g.diagnose(ctx, fr, fr.ID)
	reason := fmt.Sprintf("the smoke flow run %s did not finish within %s: it was still %s", fr.Name, waited, state)
	switch {
	case r == nil:
	case r.StateType == prefect.StateScheduled:
		reason += fmt.Sprintf(" (no worker of work pool %q picked it up)", g.in.WorkPool)
	case r.StateType == prefect.StatePending && r.Infrastructure() != "":
		reason += " (its ECS task never reported to Prefect: without the ECS observer, a task that cannot pull its image, read its secret or reach Prefect leaves the run PENDING)"
	}
	if fr.Cancelled {
		reason += "; deploybot cancelled it"
	}
	return verdict{reason: reason}
}

// noteRun records what a read of the run says.
func (g *run) noteRun(fr *plan.GateFlowRun, r *prefect.FlowRun) {
	fr.State, fr.StateName, fr.Message = r.StateType, r.StateName, r.State.MessageString()
	fr.Worker = r.WorkerName()
	fr.NewRevision = fr.Worker != "" && g.isNewWorker(fr.Worker)
	if pid := r.Infrastructure(); pid != "" {
		// "<cluster>::<task ARN>" (ecs_worker.py:753-761, §A.7)
		if cluster, task, ok := strings.Cut(pid, "::"); ok {
			fr.Cluster, fr.Task = cluster, task
		} else {
			fr.Task = pid
		}
	}
}

// isNewWorker says whether a worker name is of the new revision: its
// prefix, and, when both revisions carry the same prefix, one the workers
// stage counted as new.
func (g *run) isNewWorker(name string) bool {
	if !strings.HasPrefix(name, g.prefix+"-") {
		return false
	}
	return !g.sameNames || g.newWorkers[name]
}

// runDuration is from the run's creation to its end, in deploybot's time.
func runDuration(r *prefect.FlowRun, began, now time.Time, skew time.Duration) time.Duration {
	if r.EndTime != nil && r.Created != nil && r.EndTime.After(*r.Created) {
		return r.EndTime.Sub(*r.Created)
	}
	if r.EndTime != nil {
		if end := r.EndTime.Add(-skew); end.After(began) {
			return end.Sub(began)
		}
	}
	return now.Sub(began)
}

func describeRunState(r *prefect.FlowRun) string {
	s := r.StateType
	if r.StateName != "" && !strings.EqualFold(r.StateName, r.StateType) {
		s += " (" + r.StateName + ")"
	}
	return s
}

// failedRunReason says how a run that did not complete ended, with
// Prefect's state message and the task's stopped reason when ECS has one.
func (g *run) failedRunReason(fr *plan.GateFlowRun, r *prefect.FlowRun) string {
	s := fmt.Sprintf("the smoke flow run %s ended %s", r.Name, describeRunState(r))
	if fr.Worker != "" {
		s += " on worker " + fr.Worker
	}
	if m := strings.TrimSpace(fr.Message); m != "" {
		s += ": " + firstLine(m)
	}
	if st := fr.Stopped; st != nil && st.StoppedReason != "" && !strings.Contains(fr.Message, st.StoppedReason) {
		s += "; its ECS task stopped: " + describeStop(*st)
	}
	return s
}

// diagnose gathers what explains a run that did not complete: why its ECS
// task stopped (DescribeTasks on its infrastructure_pid's task), and the
// first lines of its logs, read again LogSettle after the end so that the
// last batch is in (§C.5). Best effort: the verdict stands without them.
func (g *run) diagnose(ctx context.Context, fr *plan.GateFlowRun, runID string) {
	logs, _ := g.prefect.ReadFlowRunLogs(ctx, runID, prefect.LevelInfo, MaxLogLines)
	if len(logs) < MaxLogLines && g.clk.Now().Add(LogSettle).Before(g.deadline) {
		if g.clk.Sleep(ctx, LogSettle) == nil {
			if again, err := g.prefect.ReadFlowRunLogs(ctx, runID, prefect.LevelInfo, MaxLogLines); err == nil && len(again) >= len(logs) {
				logs = again
			}
		}
	}
	fr.Logs = nil
	for _, l := range logs {
		fr.Logs = append(fr.Logs, logLine(l))
	}
	if fr.Task == "" || fr.Cluster == "" {
		return
	}
	t, err := g.ecs.DescribeTask(ctx, fr.Cluster, fr.Task)
	if err != nil {
		addWarning(g.report, "reading the smoke flow run's ECS task: "+err.Error())
		return
	}
	if t.LastStatus == "STOPPED" || t.Stopped.StoppedReason != "" {
		st := t.Stopped
		fr.Stopped = &st
	}
}

func logLine(l prefect.Log) string {
	msg := strings.TrimSpace(l.Message)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " …"
	}
	if len(msg) > maxLogLine {
		msg = msg[:maxLogLine] + "…"
	}
	level := map[int]string{prefect.LevelDebug: "DEBUG", prefect.LevelInfo: "INFO", prefect.LevelWarning: "WARNING", prefect.LevelError: "ERROR", 50: "CRITICAL"}[l.Level]
	if level == "" {
		level = fmt.Sprint(l.Level)
	}
	at := ""
	if l.Timestamp != nil {
		at = l.Timestamp.UTC().Format("15:04:05") + " "
	}
	return at + level + " " + msg
}

func (g *run) flowRunLine(fr *plan.GateFlowRun, r *prefect.FlowRun, err error, left time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "health gate: smoke flow run %s", fr.Name)
	if r != nil {
		fmt.Fprintf(&b, " is %s", describeRunState(r))
	}
	if fr.Worker != "" {
		fmt.Fprintf(&b, " on worker %s", fr.Worker)
		if !fr.NewRevision {
			b.WriteString(" [not this revision]")
		}
	}
	if fr.Task != "" {
		fmt.Fprintf(&b, ", ECS task %s", fr.Task[strings.LastIndex(fr.Task, "/")+1:])
	}
	if err != nil {
		fmt.Fprintf(&b, "; Prefect did not answer (%s)", firstLine(err.Error()))
	}
	if left > 0 {
		fmt.Fprintf(&b, "; %s left", left.Round(time.Second))
	}
	return b.String()
}
