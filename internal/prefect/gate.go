package prefect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/plan"
)

// PollInterval is how often the gate asks Prefect for the pool's workers.
//
// Rate-limit arithmetic (ref §2.4): Prefect Cloud's lowest plan (Hobby) allows
// 625 API requests per minute per account. One poll is one
// POST .../workers/filter (one page: the filter keeps only workers that
// heartbeated since the deploy started, far fewer than 200), so 10 s gives
// 6 requests/minute, under 1 % of 625. Retries of a 429/503 wait for
// Retry-After, so they add no burst. Rollback confirmation polls at the same
// pace, and pruning deletes at most MaxPrune workers once, after a pass. A
// worker itself heartbeats every 30 s (2/min) and polls for runs every 10 s
// (6/min, PREFECT_WORKER_QUERY_SECONDS, ref §4.3): the gate costs about what
// one more worker does. 10 s is also the low end of the reference's suggested
// 10–15 s (ref §1.7 step 3) and a third of a heartbeat interval, so a new
// worker is seen at most ~10 s after its first heartbeat.
const PollInterval = 10 * time.Second

// DefaultGateTimeout and DefaultMinOnlineWorkers apply when the environment
// file leaves health_gate empty (config fills the same defaults).
const (
	DefaultGateTimeout      = 5 * time.Minute
	DefaultMinOnlineWorkers = 1
)

// RollbackBudget is the least time the gate gives a rollback to complete and
// its worker to come back ONLINE (an ECS deployment of one Fargate task takes
// minutes: image pull, start, then draining the failed task).
const RollbackBudget = 10 * time.Minute

// FailFastStops is how many failed stops of the new revision's tasks count as
// a crash loop. One stop can be a host replacement; two in one deploy cannot.
// (The circuit breaker needs 3 for one replica, docs/research/aws-ecs.md §4.1, and after the
// deployment is COMPLETED it no longer watches at all.)
const FailFastStops = 2

// MaxPrune bounds the deletes of one run.
const MaxPrune = 100

// WorkerPrefixEnv is the task-definition variable that names a revision's
// workers (the worker identity contract in docs/ARCHITECTURE.md).
const WorkerPrefixEnv = "DEPLOYBOT_WORKER_PREFIX"

// GateInput is what the health gate needs to know about the deploy it judges.
type GateInput struct {
	Env        *config.Environment
	ECS        awsapi.ECSAPI
	Clock      clock.Clock // nil: the client's clock
	Deployment plan.DeploymentInfo
	// Progress receives one line per poll while waiting (nil: none).
	Progress func(string)
}

// Gate waits until env.HealthGate.MinOnlineWorkers workers of the new
// revision are ONLINE in the work pool with a heartbeat newer than the deploy's
// start and fresher than 3 heartbeat intervals (ref §1.7), and steady: a
// second heartbeat, so that a worker that crashes right after its first one
// does not pass (it would stay ONLINE for 90 s). The pool's READY
// status alone never passes: during a rolling deploy the old worker keeps it
// READY (ref §1.7 step 3). Each poll also reads ECS and stops early when the
// new revision's tasks keep stopping or ECS rolled the deployment back. A
// failed gate rolls the service back to the previous revision and confirms the
// old worker is ONLINE again; a passed one prunes OFFLINE workers of this
// environment's older revisions (prefect.prune_offline_workers).
//
// It returns (report, nil) whenever the gate ran, passed or failed, and an
// error only when it could not run (bad input, Prefect refusing the key or the
// pool, or never answering).
func (c *Client) Gate(ctx context.Context, in GateInput) (*plan.GateReport, error) {
	g := &gate{c: c, in: in, clk: in.Clock, progress: in.Progress}
	if g.clk == nil {
		g.clk = c.clock
	}
	if g.progress == nil {
		g.progress = func(string) {}
	}
	start := g.clk.Now()
	rep, err := g.run(ctx)
	if rep != nil {
		rep.Duration = g.clk.Now().Sub(start)
	}
	if err == nil && ctx.Err() != nil && !rep.Passed {
		// cancelled (SIGTERM) while waiting or rolling back: the report says
		// how far it got, and the caller must not read it as a verdict
		err = fmt.Errorf("health gate interrupted: %w", ctx.Err())
	}
	return rep, err
}

type gate struct {
	c        *Client
	in       GateInput
	clk      clock.Clock
	progress func(string)
	pool     string
	prefix   string
	timeout  time.Duration
	// sameNames: the previous revision's workers carry the same prefix (the
	// prefix hashes the container definition, so a task-level change such as
	// cpu keeps it), so a name alone does not tell old from new.
	sameNames bool
	// unsteady: new-revision workers seen with one heartbeat so far
	unsteady map[string]bool
}

func (g *gate) run(ctx context.Context) (*plan.GateReport, error) {
	in := g.in
	if in.Env == nil || in.ECS == nil {
		return nil, errors.New("health gate: Env and ECS are required")
	}
	dep := in.Deployment
	if dep.Cluster == "" || dep.Service == "" || dep.TaskDefinition == "" {
		return nil, fmt.Errorf("health gate: deployment must name the cluster, service and task definition (got %+v)", dep)
	}
	g.pool = in.Env.Prefect.WorkPool
	if g.pool == "" {
		return nil, errors.New("health gate: prefect.work_pool is empty")
	}
	rep := &plan.GateReport{WorkPoolURL: g.c.WorkPoolURL(g.pool)}
	g.timeout = in.Env.HealthGate.Timeout
	if g.timeout <= 0 {
		g.timeout = DefaultGateTimeout
	}
	want := in.Env.HealthGate.MinOnlineWorkers
	if want <= 0 {
		want = DefaultMinOnlineWorkers
	}
	g.prefix = dep.WorkerPrefix
	if g.prefix == "" {
		p, err := g.prefixOf(ctx, dep.TaskDefinition)
		if err != nil {
			return rep, fmt.Errorf("health gate: %w", err)
		}
		if p == "" {
			return rep, fmt.Errorf("health gate: task definition %s has no %s variable, so its workers cannot be told apart", dep.TaskDefinition, WorkerPrefixEnv)
		}
		g.prefix = p
	}

	if prev := dep.PreviousTaskDefinition; prev != "" {
		pp, err := g.prefixOf(ctx, prev)
		if err != nil {
			addWarning(rep, "reading the previous revision: "+err.Error())
		}
		g.sameNames = err != nil || pp == g.prefix
	}

	// Only workers that heartbeated since the deploy started: the old
	// revision's rows (and the OFFLINE pile-up, ref §1.4) stay off the page.
	var recent *WorkerFilter
	if !dep.StartedAt.IsZero() {
		recent = &WorkerFilter{LastHeartbeatTime: &WorkerFilterHeartbeat{After: &dep.StartedAt}}
	}
	start := g.clk.Now()
	deadline := start.Add(g.timeout)
	answered := false
	var lastErr error
	for {
		// ECS first: a worker that heartbeated once before its task crashed
		// is still ONLINE for 3 intervals, but a crash loop is not a pass.
		v := g.inspectECS(ctx)
		if v.err != nil {
			addWarning(rep, "reading ECS: "+v.err.Error())
		}
		rep.StoppedTasks, rep.ServiceEvents = v.stopped, v.events
		if reason := v.failReason(dep); reason != "" {
			rep.Reason = reason
			g.rollback(ctx, rep, v)
			return rep, nil
		}

		workers, err := g.c.ReadWorkers(ctx, g.pool, recent)
		now := g.clk.Now()
		online := 0
		if err != nil {
			if ctx.Err() != nil {
				return rep, fmt.Errorf("health gate: %w", ctx.Err())
			}
			switch StatusOf(err) {
			case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity:
				return rep, fmt.Errorf("health gate: %w", err)
			}
			lastErr = err
		} else {
			answered = true
			rep.Workers, online = g.classify(workers, now)
			if online >= want {
				rep.Passed = true
				rep.Reason = fmt.Sprintf("%d worker(s) of %s ONLINE in work pool %q (%s)", online, shortTD(dep.TaskDefinition), g.pool, strings.Join(newOnlineNames(rep.Workers), ", "))
				if in.Env.Prune() {
					g.prune(ctx, rep)
				}
				return rep, nil
			}
		}

		left := deadline.Sub(now)
		if left <= 0 {
			if !answered {
				return rep, fmt.Errorf("health gate: Prefect did not answer for %s: %w", g.timeout, lastErr)
			}
			rep.Reason = fmt.Sprintf("only %d of %d worker(s) of %s (prefix %s) came ONLINE in work pool %q within %s", online, want, shortTD(dep.TaskDefinition), g.prefix, g.pool, g.timeout)
			g.rollback(ctx, rep, v)
			return rep, nil
		}
		g.progress(g.progressLine(rep.Workers, online, want, left, err, v))
		if err := g.clk.Sleep(ctx, min(PollInterval, left)); err != nil {
			return rep, fmt.Errorf("health gate: %w", err)
		}
	}
}

// classify marks each worker as of the new revision or not (other revisions,
// other environments sharing the pool) and counts the new ones that pass:
// name prefix, ONLINE, heartbeat after the deploy started, younger than 3 of
// its intervals, and steady (heartbeated twice).
func (g *gate) classify(workers []Worker, now time.Time) ([]plan.WorkerStatus, int) {
	started := g.in.Deployment.StartedAt
	var out []plan.WorkerStatus
	online := 0
	g.unsteady = map[string]bool{}
	for _, w := range workers {
		ws := plan.WorkerStatus{Name: w.Name, Status: w.Status, NewRevision: strings.HasPrefix(w.Name, g.prefix+"-")}
		if g.sameNames {
			// the row must have been created (first heartbeat) after the
			// deploy started (ref §1.7 step 3, "created >= deployStart")
			ws.NewRevision = ws.NewRevision && w.Created != nil && !w.Created.Before(started)
		}
		if w.LastHeartbeatTime != nil {
			ws.LastHeartbeat = *w.LastHeartbeatTime
		}
		if ws.NewRevision && w.Status == WorkerOnline && w.LastHeartbeatTime != nil &&
			w.LastHeartbeatTime.After(started) && w.FreshAt(now) {
			if w.Steady() {
				online++
			} else {
				g.unsteady[w.Name] = true
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
	return out, online
}

func newOnlineNames(ws []plan.WorkerStatus) []string {
	var names []string
	for _, w := range ws {
		if w.NewRevision && w.Status == WorkerOnline {
			names = append(names, w.Name)
		}
	}
	return names
}

func (g *gate) progressLine(ws []plan.WorkerStatus, online, want int, left time.Duration, err error, v ecsView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "health gate: %d/%d worker(s) of %s (prefix %s) ONLINE in pool %q", online, want, shortTD(g.in.Deployment.TaskDefinition), g.prefix, g.pool)
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
			if g.unsteady[w.Name] {
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

// rollback points the service back at the previous revision (unless ECS
// already did), waits for that deployment, and confirms a worker of the
// previous revision is ONLINE again (ref issue 5 "Rollback").
func (g *gate) rollback(ctx context.Context, rep *plan.GateReport, v ecsView) {
	dep := g.in.Deployment
	prev := dep.PreviousTaskDefinition
	if prev == "" {
		rep.NothingToRollBack = true
		rep.Reason += "; nothing to roll back to: this was the first deploy"
		return
	}
	if v.otherRevision != "" && v.otherRevision != prev {
		rep.Reason += fmt.Sprintf("; not rolled back: the service now runs %s, neither the new nor the previous revision (another deploy?)", shortTD(v.otherRevision))
		return
	}
	rbStart := g.clk.Now()
	deadline := rbStart.Add(max(g.timeout, RollbackBudget))
	byECS := v.otherRevision == prev
	if byECS {
		g.progress(fmt.Sprintf("health gate: ECS already rolled %s/%s back to %s; waiting for that deployment", dep.Cluster, dep.Service, shortTD(prev)))
	} else {
		g.progress(fmt.Sprintf("health gate: rolling %s/%s back to %s", dep.Cluster, dep.Service, shortTD(prev)))
		if err := g.updateService(ctx, prev); err != nil {
			rep.Reason += fmt.Sprintf("; rollback to %s failed: %v", shortTD(prev), err)
			return
		}
	}
	since := rbStart
	if byECS {
		since = dep.StartedAt
	}
	if why := g.waitRollback(ctx, since, byECS, deadline); why != "" {
		rep.Reason += fmt.Sprintf("; rollback to %s did not complete: %s", shortTD(prev), why)
		return
	}
	rep.RolledBack = true
	rep.RolledBackTo = prev

	prevPrefix, err := g.prefixOf(ctx, prev)
	if err != nil || prevPrefix == "" {
		if err == nil {
			err = fmt.Errorf("it has no %s variable", WorkerPrefixEnv)
		}
		rep.Reason += fmt.Sprintf("; rolled back to %s, but its worker cannot be identified: %v", shortTD(prev), err)
		return
	}
	// a heartbeat after the rollback completed: with equal prefixes an old
	// row of the failed revision must not count
	name := g.waitWorker(ctx, prevPrefix, g.clk.Now(), deadline)
	if name == "" {
		rep.Reason += fmt.Sprintf("; rolled back to %s, but no worker of it (prefix %s) came back ONLINE by %s", shortTD(prev), prevPrefix, deadline.UTC().Format(time.RFC3339))
		return
	}
	rep.RestoredWorkerOnline = true
	rep.Reason += fmt.Sprintf("; rolled back to %s and its worker %s is ONLINE again", shortTD(prev), name)
}

// waitWorker polls until a worker whose name starts with prefix+"-" is ONLINE
// and fresh with a heartbeat at or after since; it returns its name, or "" at
// the deadline.
func (g *gate) waitWorker(ctx context.Context, prefix string, since, deadline time.Time) string {
	for {
		ws, err := g.c.ReadWorkers(ctx, g.pool, &WorkerFilter{Status: &WorkerFilterStatusField{Any: []string{WorkerOnline}}})
		now := g.clk.Now()
		if err == nil {
			for _, w := range ws {
				if strings.HasPrefix(w.Name, prefix+"-") && w.Status == WorkerOnline && w.FreshAt(now) && !w.LastHeartbeatTime.Before(since) {
					return w.Name
				}
			}
		}
		left := deadline.Sub(now)
		if left <= 0 || ctx.Err() != nil {
			return ""
		}
		g.progress(fmt.Sprintf("health gate: waiting for a worker of the previous revision (prefix %s) to be ONLINE; %s left", prefix, left.Round(time.Second)))
		if g.clk.Sleep(ctx, min(PollInterval, left)) != nil {
			return ""
		}
	}
}

// envPrefixRe matches worker names of any revision of this environment:
// <NAME>-<8 hex>-<hostname> (worker identity contract, docs/ARCHITECTURE.md).
func envPrefixRe(env string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(env) + "-[0-9a-f]{8}-")
}

// prune deletes OFFLINE workers that older revisions of this environment left
// behind; workers never delete themselves (ref §1.4, PrefectHQ/prefect#12176).
func (g *gate) prune(ctx context.Context, rep *plan.GateReport) {
	ws, err := g.c.ReadWorkers(ctx, g.pool, &WorkerFilter{Status: &WorkerFilterStatusField{Any: []string{WorkerOffline}}})
	if err != nil {
		addWarning(rep, "pruning offline workers: "+err.Error())
		return
	}
	re := envPrefixRe(g.in.Env.Name)
	for _, w := range ws {
		if w.Status != WorkerOffline || !re.MatchString(w.Name) || strings.HasPrefix(w.Name, g.prefix+"-") {
			continue
		}
		if rep.PrunedWorkers >= MaxPrune {
			addWarning(rep, fmt.Sprintf("pruned %d offline workers; the rest wait for the next deploy", MaxPrune))
			return
		}
		deleted, err := g.c.DeleteWorker(ctx, g.pool, w.Name)
		if err != nil {
			addWarning(rep, "pruning offline workers: "+err.Error())
			return
		}
		if deleted {
			rep.PrunedWorkers++
		}
	}
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
func shortTD(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
