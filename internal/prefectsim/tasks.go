package prefectsim

import (
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
)

// ImageBehavior is how a simulated container image behaves (the world's).
type ImageBehavior = awssim.ImageBehavior

// Task is one ECS task as the Prefect simulator sees it: the world's view
// (Secrets holds resolved values, only when the task could read them).
type Task = awssim.TaskView

// TaskSource lists the simulated account's tasks, running and stopped.
type TaskSource interface {
	Tasks() []Task
}

// TaskSourceFunc adapts a function.
type TaskSourceFunc func() []Task

func (f TaskSourceFunc) Tasks() []Task { return f() }

type noTasks struct{}

func (noTasks) Tasks() []Task { return nil }

// worldTasks is the simulated account's tasks, running and stopped.
func worldTasks(w *awssim.World) TaskSource { return TaskSourceFunc(w.Tasks) }

// sync turns the tasks' lives into worker rows up to now: each task whose
// container runs a worker of this server upserts its row (pool, name) with
// its first and last successful sync (worker.go); a worker that never got
// through leaves no row (ref §1.7 step 4, §4.4). A heartbeat into a missing
// pool creates it with type ecs, as `prefect worker start` does by default
// (--create-pool-if-not-found, ref §2.3). tasks come from s.tasks, read
// before s.mu was taken (the world's lock comes first: see runtime). Callers
// hold s.mu.
func (s *Server) sync(tasks []Task, now time.Time) {
	for _, t := range tasks {
		if t.StartedAt.IsZero() || (t.LastStatus != "RUNNING" && t.StoppedAt.IsZero()) {
			continue // PROVISIONING/PENDING: the process is not up yet
		}
		spec, ok := s.parseWorker(t)
		if !ok {
			continue
		}
		netOK := t.Internet
		if r, known := t.HostReach[hostOf(spec.APIURL)]; known {
			netOK = r
		}
		l := s.life(spec, t.StartedAt, netOK, t.Behavior.NoHeartbeat || t.Behavior.PullFails, t.StoppedAt)
		first, last, any := l.syncs(now)
		if !any {
			continue
		}
		p := s.pools[spec.Pool]
		if p == nil {
			p = s.newPool(spec.Pool, "ecs", first)
		}
		if p.typ == "ecs" && len(p.baseTemplate) == 0 {
			// The worker PATCHes its own default template into a pool whose
			// template is empty when it syncs (§A.1, chan:348-352).
			p.baseTemplate, p.updated = ecsDefaultTemplate(), first
		}
		s.upsert(p, spec.Name, first, last, int(s.timings.HeartbeatInterval/time.Second))
	}
}
