package gate

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
)

// workersStage passes when Input.MinWorkers workers of the new revision are
// ONLINE in the work pool with a heartbeat newer than the deploy's start and
// fresher than 3 heartbeat intervals (docs/research/prefect-api.md §1.7),
// and steady: a second heartbeat, so that a worker that crashes right after
// its first one does not pass (it would stay ONLINE for 90 s). The pool's
// READY status alone never passes: during a rolling deploy the old worker
// keeps it READY (§1.7 step 3). Each poll also reads ECS and fails early
// when the new revision's tasks keep stopping or ECS rolled the deployment
// back.
type workersStage struct{}

func (workersStage) name() string { return "workers" }

func (workersStage) check(ctx context.Context, g *run, rep *plan.GateReport, deadline time.Time) verdict {
	want := g.in.MinWorkers
	budget := deadline.Sub(g.clk.Now())
	answered := false
	var lastErr error
	for {
		// ECS first: a worker that heartbeated once before its task crashed
		// is still ONLINE for 3 intervals, but a crash loop is not a pass.
		v := g.watchECS(ctx)
		if v.err != nil {
			addWarning(rep, "reading ECS: "+v.err.Error())
		}
		rep.StoppedTasks, rep.ServiceEvents = v.stopped, v.events
		if reason := v.failReason(g.dep); reason != "" {
			return verdict{reason: reason, ecs: &v}
		}

		workers, err := g.prefect.ReadWorkers(ctx, g.in.WorkPool, g.recentWorkers())
		now := g.clk.Now()
		online := 0
		var unsteady map[string]bool
		if err != nil {
			if ctx.Err() != nil {
				return verdict{err: &Error{ctx.Err()}}
			}
			switch prefect.StatusOf(err) {
			case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity:
				return verdict{err: &Error{err}}
			}
			lastErr = err
		} else {
			answered = true
			if g.sameNames && g.reused == nil && v.status.State == ecsdeploy.Successful {
				// ECS says only the new revision runs now: a heartbeat after
				// this listing comes from it, whatever its row's created
				g.reused = &reusedNames{seen: heartbeatsOf(workers, g.prefix), again: map[string]time.Time{}}
			}
			rep.Workers, online, unsteady = g.classify(heartbeatSince(workers, g.sinceInPrefect()))
			if online >= want {
				return verdict{passed: true, reason: fmt.Sprintf("%d worker(s) of %s ONLINE in work pool %q (%s)",
					online, shortTD(g.dep.TaskDefinition), g.in.WorkPool, strings.Join(newOnlineNames(rep.Workers), ", "))}
			}
		}

		left := deadline.Sub(now)
		if left <= 0 {
			if !answered {
				return verdict{err: &Error{fmt.Errorf("Prefect did not answer for %s: %w", budget, lastErr)}}
			}
			return verdict{reason: fmt.Sprintf("only %d of %d worker(s) of %s (prefix %s) came ONLINE in work pool %q within %s",
				online, want, shortTD(g.dep.TaskDefinition), g.prefix, g.in.WorkPool, budget.Round(time.Second))}
		}
		g.progress(g.progressLine(rep.Workers, unsteady, online, want, left, err, v))
		if err := g.clk.Sleep(ctx, min(PollInterval, left)); err != nil {
			return verdict{err: &Error{err}}
		}
	}
}

// recentWorkers is the listing's filter: only workers that heartbeated
// since the deploy started, so the old revision's rows (and the OFFLINE
// pile-up, §1.4) stay off the page. The bound is in Prefect's clock (the
// deploy's start plus the skew its answers showed), widened by
// skewAllowance while no answer has said the skew; classify then judges
// each row exactly.
func (g *run) recentWorkers() *prefect.WorkerFilter {
	if g.dep.Since.IsZero() {
		return nil
	}
	skew, known := g.prefect.ClockSkew()
	after := g.dep.Since.Add(skew)
	if !known {
		after = after.Add(-skewAllowance)
	}
	return &prefect.WorkerFilter{LastHeartbeatTime: &prefect.WorkerFilterHeartbeat{After: &after}}
}

// heartbeatSince keeps the workers whose last heartbeat is at or after t.
func heartbeatSince(ws []prefect.Worker, t time.Time) []prefect.Worker {
	var out []prefect.Worker
	for _, w := range ws {
		if w.LastHeartbeatTime != nil && !w.LastHeartbeatTime.Before(t) {
			out = append(out, w)
		}
	}
	return out
}

func (g *run) skew() time.Duration {
	d, _ := g.prefect.ClockSkew()
	return d
}

// prefectNow is now by Prefect's clock: deploybot's plus the skew Prefect's
// Date headers showed. Heartbeats, created and the ONLINE status are
// Prefect's; comparing them with deploybot's clock would fail every deploy
// to a server a minute or two out of step.
func (g *run) prefectNow() time.Time { return g.clk.Now().Add(g.skew()) }

// sinceInPrefect is the deploy's start by Prefect's clock.
func (g *run) sinceInPrefect() time.Time { return g.dep.Since.Add(g.skew()) }

// reusedNames tells, when both revisions' workers carry the same prefix,
// the new revision's workers whose rows predate the deploy (the name ends in
// the task's hostname, and Fargate hands private IPs out again; Prefect
// keeps a row's created across heartbeats, models/workers.py
// worker_heartbeat): seen are the heartbeats Prefect listed when ECS first
// said the deployment was SUCCESSFUL (only the new revision runs then),
// again the first later heartbeat of each row.
type reusedNames struct {
	seen, again map[string]time.Time
}

func heartbeatsOf(workers []prefect.Worker, prefix string) map[string]time.Time {
	b := map[string]time.Time{}
	for _, w := range workers {
		if strings.HasPrefix(w.Name, prefix+"-") && w.LastHeartbeatTime != nil {
			b[w.Name] = *w.LastHeartbeatTime
		}
	}
	return b
}

// classify marks each worker as of the new revision or not (other revisions,
// other environments sharing the pool) and counts the new ones that pass:
// name prefix, ONLINE, heartbeat after the deploy started, younger than 3 of
// its intervals, and steady (heartbeated twice), all by Prefect's clock.
// unsteady are the new ones seen with one heartbeat so far. The new ones
// that pass are remembered in g.newWorkers.
func (g *run) classify(workers []prefect.Worker) (out []plan.WorkerStatus, online int, unsteady map[string]bool) {
	started, now := g.sinceInPrefect(), g.prefectNow()
	unsteady = map[string]bool{}
	if g.newWorkers == nil {
		g.newWorkers = map[string]bool{}
	}
	for _, w := range workers {
		ws := plan.WorkerStatus{Name: w.Name, Status: w.Status, NewRevision: strings.HasPrefix(w.Name, g.prefix+"-")}
		steady := w.Steady()
		if g.sameNames && ws.NewRevision {
			// the row must have been created (first heartbeat) after the
			// deploy started (§1.7 step 3, "created >= deployStart"), or,
			// for a name an earlier task used, have heartbeated since ECS
			// said only the new revision runs (and twice, to be steady)
			ws.NewRevision = w.Created != nil && !w.Created.Before(started)
			if r := g.reused; !ws.NewRevision && r != nil && w.LastHeartbeatTime != nil {
				if before, ok := r.seen[w.Name]; !ok || w.LastHeartbeatTime.After(before) {
					first, ok := r.again[w.Name]
					if !ok {
						first = *w.LastHeartbeatTime
						r.again[w.Name] = first
					}
					ws.NewRevision, steady = true, w.LastHeartbeatTime.After(first)
				}
			}
		}
		if w.LastHeartbeatTime != nil {
			ws.LastHeartbeat = *w.LastHeartbeatTime
		}
		if ws.NewRevision && w.Status == prefect.WorkerOnline && w.LastHeartbeatTime != nil &&
			w.LastHeartbeatTime.After(started) && w.FreshAt(now) {
			if steady {
				online++
				g.newWorkers[w.Name] = true
			} else {
				unsteady[w.Name] = true
			}
		}
		out = append(out, ws)
	}
	sortWorkers(out)
	return out, online, unsteady
}

// sortWorkers puts the new revision's workers first, then by name.
func sortWorkers(ws []plan.WorkerStatus) {
	sort.SliceStable(ws, func(i, j int) bool {
		if ws[i].NewRevision != ws[j].NewRevision {
			return ws[i].NewRevision
		}
		return ws[i].Name < ws[j].Name
	})
}

func newOnlineNames(ws []plan.WorkerStatus) []string {
	var names []string
	for _, w := range ws {
		if w.NewRevision && w.Status == prefect.WorkerOnline {
			names = append(names, w.Name)
		}
	}
	return names
}

func (g *run) progressLine(ws []plan.WorkerStatus, unsteady map[string]bool, online, want int, left time.Duration, err error, v ecsView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "health gate: %d/%d worker(s) of %s (prefix %s) ONLINE in pool %q", online, want, shortTD(g.dep.TaskDefinition), g.prefix, g.in.WorkPool)
	switch {
	case err != nil:
		fmt.Fprintf(&b, "; Prefect did not answer (%s)", firstLine(err.Error()))
	case len(ws) == 0:
		b.WriteString("; no worker has heartbeated since the deploy started")
	default:
		now := g.prefectNow()
		var seen []string
		for _, w := range ws {
			s := fmt.Sprintf("%s %s", w.Name, w.Status)
			if !w.LastHeartbeat.IsZero() {
				s += fmt.Sprintf(" (heartbeat %s ago)", now.Sub(w.LastHeartbeat).Round(time.Second))
			}
			if unsteady[w.Name] {
				s += " [first heartbeat; waiting for the next]"
			}
			if !w.NewRevision {
				s += " [not this revision]"
			}
			seen = append(seen, s)
		}
		b.WriteString("; seen: " + strings.Join(seen, ", "))
	}
	if len(v.stopped) > 0 {
		fmt.Fprintf(&b, "; ECS: %d stopped task(s) of this revision, last: %s", len(v.stopped), describeStop(v.stopped[0]))
	}
	fmt.Fprintf(&b, "; %s left", left.Round(time.Second))
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
