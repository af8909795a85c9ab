package gate

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

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
	// Only workers that heartbeated since the deploy started: the old
	// revision's rows (and the OFFLINE pile-up, §1.4) stay off the page.
	var recent *prefect.WorkerFilter
	if !g.dep.Since.IsZero() {
		since := g.dep.Since
		recent = &prefect.WorkerFilter{LastHeartbeatTime: &prefect.WorkerFilterHeartbeat{After: &since}}
	}
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

		workers, err := g.prefect.ReadWorkers(ctx, g.in.WorkPool, recent)
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
			rep.Workers, online, unsteady = g.classify(workers, now)
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

// classify marks each worker as of the new revision or not (other revisions,
// other environments sharing the pool) and counts the new ones that pass:
// name prefix, ONLINE, heartbeat after the deploy started, younger than 3 of
// its intervals, and steady (heartbeated twice). unsteady are the new ones
// seen with one heartbeat so far.
func (g *run) classify(workers []prefect.Worker, now time.Time) (out []plan.WorkerStatus, online int, unsteady map[string]bool) {
	started := g.dep.Since
	unsteady = map[string]bool{}
	for _, w := range workers {
		ws := plan.WorkerStatus{Name: w.Name, Status: w.Status, NewRevision: strings.HasPrefix(w.Name, g.prefix+"-")}
		if g.sameNames {
			// the row must have been created (first heartbeat) after the
			// deploy started (§1.7 step 3, "created >= deployStart")
			ws.NewRevision = ws.NewRevision && w.Created != nil && !w.Created.Before(started)
		}
		if w.LastHeartbeatTime != nil {
			ws.LastHeartbeat = *w.LastHeartbeatTime
		}
		if ws.NewRevision && w.Status == prefect.WorkerOnline && w.LastHeartbeatTime != nil &&
			w.LastHeartbeatTime.After(started) && w.FreshAt(now) {
			if w.Steady() {
				online++
			} else {
				unsteady[w.Name] = true
			}
		}
		out = append(out, ws)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].NewRevision != out[j].NewRevision {
			return out[i].NewRevision
		}
		return out[i].Name < out[j].Name
	})
	return out, online, unsteady
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
		now := g.clk.Now()
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
