package gate

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
)

// skewAllowance widens the lower bound of the worker listings: the bound is
// the deploy's start by Prefect's clock as far as its Date headers said,
// and before the first answer nothing was said; the rows are then judged
// by Prefect's own times (classify, workersBack).
const skewAllowance = 10 * time.Minute

// rollback is the gate's rollback step: it points the service back at the
// previous revision (unless ECS's circuit breaker already does), and watches
// both ECS's rollback deployment and the previous revision's workers until
// the deployment is done and a worker of it is back, or the gate's deadline.
// Its outcome is rep.Rollback; the flat fields of rep summarise it.
func (g *run) rollback(ctx context.Context, rep *plan.GateReport, v *ecsView) {
	began := g.clk.Now()
	rb := &plan.GateRollback{From: g.dep.TaskDefinition, To: g.in.Previous}
	rep.Rollback = rb
	var watch *ecsdeploy.Deployment
	defer func() {
		rb.Duration = g.clk.Now().Sub(began)
		if watch != nil {
			rb.DeploymentID = deploymentID(watch)
		}
		g.workersAfterRollback(rep, rb.Worker)
		rep.Reason += "; " + rb.Reason
		rep.RolledBackTo = ""
		switch rb.Outcome {
		case plan.RollbackRestored:
			rep.RolledBack, rep.RestoredWorkerOnline, rep.RolledBackTo = true, true, rb.To
		case plan.RollbackWorkerNotBack:
			rep.RolledBack, rep.RolledBackTo = true, rb.To
		case plan.RollbackNothingToRollBackTo:
			rep.NothingToRollBack = true
		}
	}()
	prev := g.in.Previous
	if prev == "" {
		rb.Outcome, rb.Reason = plan.RollbackNothingToRollBackTo, "nothing to roll back to: this was the first deploy"
		return
	}
	view := g.lastECS
	if v != nil {
		view = *v
	}
	if other := view.otherRevision(g.dep); other != "" {
		rb.Outcome = plan.RollbackSkipped
		rb.Reason = fmt.Sprintf("not rolled back: the service now runs %s, neither the new nor the previous revision (another deploy?)", shortTD(other))
		return
	}
	if f := g.in.AlsoRollBack; f != nil {
		said, err := f(context.WithoutCancel(ctx))
		defer func() {
			if err != nil {
				rb.Reason += "; " + err.Error()
			} else if said != "" {
				rb.Reason += "; " + said
			}
		}()
	}
	prevPrefix, err := g.ecs.TaskDefinitionEnv(ctx, prev, WorkerPrefixEnv)
	if err == nil && prevPrefix == "" {
		err = fmt.Errorf("it has no %s variable", WorkerPrefixEnv)
	}

	// The deployment that brings the previous revision back: ECS's own
	// rollback of the failed deployment, or deploybot's UpdateService.
	watch = &g.dep
	rb.ByECS = view.rolledBackByECS(prev)
	if rb.ByECS {
		g.progress(fmt.Sprintf("health gate: ECS already rolls %s back to %s; waiting for that deployment", g.dep.Service, shortTD(prev)))
	} else {
		g.progress(fmt.Sprintf("health gate: rolling %s back to %s", g.dep.Service, shortTD(prev)))
		d, rerr := g.ecs.RollBack(ctx, g.dep.Service, prev, g.dep.TaskDefinition)
		if rerr != nil {
			rb.Outcome, rb.Reason = plan.RollbackFailed, fmt.Sprintf("rollback to %s failed: %v", shortTD(prev), rerr)
			return
		}
		watch = d
	}
	if err != nil {
		// ECS does the rollback; there is no telling its workers apart
		done, st := g.waitDeployment(ctx, watch, rb.ByECS)
		rb.DeploymentStatus = string(st.State)
		switch {
		case done:
			rb.Outcome, rb.Reason = plan.RollbackWorkerNotBack, fmt.Sprintf("rolled back to %s, but its worker cannot be identified: %v", shortTD(prev), err)
		default:
			rb.Outcome, rb.Reason = plan.RollbackNotComplete, fmt.Sprintf("rollback to %s did not complete: %s", shortTD(prev), g.notDone(st))
		}
		return
	}

	// Poll ECS and Prefect together until both say the previous revision
	// is back, or the gate's deadline. The first read of the workers is
	// the baseline: what Prefect knows of the previous revision's workers
	// as the rollback begins (no new task of it can have started yet); a
	// worker counts as back only with a heartbeat Prefect recorded after it
	// (see workersBack).
	var seen baseline // nil until Prefect answered
	var st ecsdeploy.Status
	var lastErr error
	deployed, worker := false, ""
	for {
		if !deployed {
			var lerr error
			st, lerr = g.ecs.Look(ctx, watch)
			if lerr != nil {
				lastErr = lerr
			}
			deployed = rolledBack(st, rb.ByECS)
			if failed := st.State.Done() && !deployed; failed {
				rb.DeploymentStatus = string(st.State)
				rb.Outcome = plan.RollbackFailed
				rb.Reason = fmt.Sprintf("the rollback deployment to %s ended %s", shortTD(prev), st.State)
				if st.Reason != "" {
					rb.Reason += ": " + st.Reason
				}
				// ECS's word on its deployment, and Prefect's on the pool:
				// with minimum healthy 100 % the previous revision's task
				// that never stopped may still be serving.
				if !g.sameNames {
					if name := g.onlineWorkerOf(ctx, prevPrefix); name != "" {
						rb.Worker = name
						rb.Reason += fmt.Sprintf("; Prefect still lists the previous revision's worker %s ONLINE", name)
					}
				}
				return
			}
			if deployed && g.sameNames {
				// With equal prefixes a worker of the failed revision looks
				// the same: only now that ECS says the previous revision
				// alone runs does a fresh heartbeat prove a worker of it.
				seen = nil
			}
		}
		if deployed || !g.sameNames {
			// judged afresh each poll, so that the worker named is one
			// that heartbeats as the deployment completes
			var werr error
			if seen == nil {
				// the baseline first; a worker is judged against it next poll
				if seen, werr = g.heartbeats(ctx, prevPrefix); werr != nil {
					seen = nil
				}
			} else if name, err := g.workersBack(ctx, prevPrefix, seen); err == nil {
				worker = name
			} else {
				werr = err
			}
			if werr != nil {
				lastErr = werr
				if fatal(werr) {
					break
				}
			}
		}
		if deployed && worker != "" {
			break
		}
		left := g.deadline.Sub(g.clk.Now())
		if left <= 0 || ctx.Err() != nil {
			break
		}
		g.progress(g.rollbackLine(prev, prevPrefix, st, deployed, worker, left))
		if g.clk.Sleep(ctx, min(PollInterval, left)) != nil {
			break
		}
	}
	rb.DeploymentStatus, rb.Worker = string(st.State), worker
	switch {
	case worker != "":
		rb.Outcome = plan.RollbackRestored
		rb.Reason = fmt.Sprintf("rolled back to %s and its worker %s is ONLINE again", shortTD(prev), worker)
		if !deployed {
			rb.Reason += fmt.Sprintf(" (ECS's rollback deployment was still %s when the gate's %s ran out; ECS carries on with it)", st.State, g.in.Timeout)
		}
	case deployed:
		rb.Outcome = plan.RollbackWorkerNotBack
		rb.Reason = fmt.Sprintf("rolled back to %s, but no worker of it (prefix %s) came back ONLINE within the gate's %s", shortTD(prev), prevPrefix, g.in.Timeout)
		if lastErr != nil {
			rb.Reason += fmt.Sprintf(" (last answer: %s)", firstLine(lastErr.Error()))
		}
	default:
		rb.Outcome = plan.RollbackNotComplete
		rb.Reason = fmt.Sprintf("rollback to %s did not complete: %s", shortTD(prev), g.notDone(st))
	}
}

// deploymentID is how the report names a deployment: the service
// deployment's id (the last part of its ARN) when ECS listed one, else the
// PRIMARY deployment id UpdateService returned.
func deploymentID(d *ecsdeploy.Deployment) string {
	if d.ARN != "" {
		return d.ARN[strings.LastIndex(d.ARN, "/")+1:]
	}
	return d.ID
}

// rolledBack: the watched deployment put the previous revision back.
func rolledBack(st ecsdeploy.Status, byECS bool) bool {
	if byECS {
		return st.State == ecsdeploy.RolledBack
	}
	return st.State == ecsdeploy.Successful
}

func (g *run) notDone(st ecsdeploy.Status) string {
	s := fmt.Sprintf("the rollback deployment was %s when the gate's %s ran out (ECS carries on with it)", st.State, g.in.Timeout)
	if st.State == "" {
		s = fmt.Sprintf("ECS had not listed the rollback deployment when the gate's %s ran out", g.in.Timeout)
	}
	return s
}

// waitDeployment looks at the rollback deployment until it is done or the
// gate's deadline; done says it put the previous revision back.
func (g *run) waitDeployment(ctx context.Context, d *ecsdeploy.Deployment, byECS bool) (bool, ecsdeploy.Status) {
	for {
		st, _ := g.ecs.Look(ctx, d)
		if st.State.Done() {
			return rolledBack(st, byECS), st
		}
		left := g.deadline.Sub(g.clk.Now())
		if left <= 0 || g.clk.Sleep(ctx, min(PollInterval, left)) != nil {
			return false, st
		}
	}
}

func (g *run) rollbackLine(prev, prefix string, st ecsdeploy.Status, deployed bool, worker string, left time.Duration) string {
	var parts []string
	if !deployed {
		state := string(st.State)
		if st.Desired > 0 {
			state += fmt.Sprintf(", %d/%d tasks running", st.Running, st.Desired)
		}
		parts = append(parts, fmt.Sprintf("the rollback deployment to %s is %s", shortTD(prev), state))
	}
	if worker == "" {
		parts = append(parts, fmt.Sprintf("waiting for a worker of the previous revision (prefix %s) to heartbeat again", prefix))
	}
	return fmt.Sprintf("health gate: %s; %s left", strings.Join(parts, "; "), left.Round(time.Second))
}

// baseline is the last heartbeat Prefect reported for each worker of a
// revision, by name.
type baseline map[string]time.Time

// heartbeats reads what Prefect reports of the workers named prefix-….
func (g *run) heartbeats(ctx context.Context, prefix string) (baseline, error) {
	ws, err := g.rollbackWorkers(ctx)
	b := baseline{}
	for _, w := range ws {
		if strings.HasPrefix(w.Name, prefix+"-") && w.LastHeartbeatTime != nil {
			b[w.Name] = *w.LastHeartbeatTime
		}
	}
	return b, err
}

// workersBack returns a worker of the previous revision that is back, or "".
// It judges by what Prefect reports and nothing else: the worker's name,
// the status Prefect gives it (ONLINE: a heartbeat within 3 intervals, by
// Prefect's own clock), and a heartbeat Prefect recorded after the baseline
// (docs/research/prefect-api.md §1.4). Prefect upserts a worker's row by
// (pool, name) on every heartbeat and keeps its created (models/workers.py
// worker_heartbeat), so a worker whose name an earlier task used (Fargate
// reuses private IPs, and the name ends in the hostname) has a row that
// predates the rollback: its advancing heartbeat, not its created or
// deploybot's clock, is the proof. The listing is not filtered on status,
// which servers answer from a stored column (and servers before 2.18.2
// refuse with 422), so the status read is the one Prefect reports.
func (g *run) workersBack(ctx context.Context, prefix string, seen baseline) (string, error) {
	ws, err := g.rollbackWorkers(ctx)
	if err != nil {
		return "", err
	}
	for _, w := range ws {
		if !strings.HasPrefix(w.Name, prefix+"-") || w.Status != prefect.WorkerOnline || w.LastHeartbeatTime == nil {
			continue
		}
		if before, ok := seen[w.Name]; ok && !w.LastHeartbeatTime.After(before) {
			continue // no heartbeat since the rollback began
		}
		return w.Name, nil
	}
	return "", nil
}

// onlineWorkerOf is a worker named prefix-… that Prefect reports ONLINE,
// or "".
func (g *run) onlineWorkerOf(ctx context.Context, prefix string) string {
	ws, err := g.rollbackWorkers(ctx)
	if err != nil {
		return ""
	}
	for _, w := range ws {
		if strings.HasPrefix(w.Name, prefix+"-") && w.Status == prefect.WorkerOnline {
			return w.Name
		}
	}
	return ""
}

// workersAfterRollback makes the report's workers table the last listing
// of the rollback, so that it shows what Prefect said when the gate ended:
// the workers that heartbeated since the deploy started, and the one back.
func (g *run) workersAfterRollback(rep *plan.GateReport, back string) {
	if g.lastWorkers == nil {
		return
	}
	var ws []prefect.Worker
	for _, w := range g.lastWorkers {
		if w.Name == back || (w.LastHeartbeatTime != nil && !w.LastHeartbeatTime.Before(g.sinceInPrefect())) {
			ws = append(ws, w)
		}
	}
	rep.Workers, _, _ = g.classify(ws)
	for i := range rep.Workers {
		if rep.Workers[i].Name == back {
			rep.Workers[i].NewRevision = false // same prefix: it is the previous revision's
		}
	}
	sortWorkers(rep.Workers)
}

// rollbackWorkers lists the pool's workers that heartbeated around or after
// the deploy's start, the bound widened by skewAllowance.
func (g *run) rollbackWorkers(ctx context.Context) ([]prefect.Worker, error) {
	ws, err := g.prefect.ReadWorkers(ctx, g.in.WorkPool, g.recentWorkers())
	if err == nil {
		g.lastWorkers = ws
	}
	return ws, err
}

// fatal: Prefect refuses the key or the pool; asking again will not help.
func fatal(err error) bool {
	switch prefect.StatusOf(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity:
		return true
	}
	return false
}
