package prefectsim

import (
	"strings"
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

// Worker identity contract (docs/ARCHITECTURE.md): the container runs
// `prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --name
// "$DEPLOYBOT_WORKER_PREFIX-$(hostname)"` with PREFECT_API_URL and the secret
// PREFECT_API_KEY.
const (
	envPool   = "DEPLOYBOT_WORK_POOL"
	envPrefix = "DEPLOYBOT_WORKER_PREFIX"
	envAPIURL = "PREFECT_API_URL"
	envKey    = "PREFECT_API_KEY"
	envAuth   = "PREFECT_API_AUTH_STRING"
)

// sync turns the tasks' lives into worker heartbeats up to now. A task
// heartbeats every 30 s from 15 s after it started until it stopped, if it
// reaches this server (PREFECT_API_URL), authenticates (a valid key, or the
// auth string on a self-hosted server with one), has a route to the internet
// and its image does heartbeat. Otherwise the real worker would exit on the
// 401 or hang, and no row ever appears (ref §1.7 step 4, §4.4). A heartbeat
// into a missing pool creates it with type ecs, as `prefect worker start`
// does by default (--create-pool-if-not-found, ref §2.3). Callers hold s.mu.
func (s *Server) sync(now time.Time) {
	for _, t := range s.tasks.Tasks() {
		poolName := t.Env[envPool]
		if poolName == "" || t.StartedAt.IsZero() || !t.Internet || t.Behavior.PullFails || t.Behavior.NoHeartbeat {
			continue
		}
		if t.LastStatus != "RUNNING" && t.StoppedAt.IsZero() {
			continue // PROVISIONING/PENDING: the process is not up yet
		}
		if !s.reaches(t) {
			continue
		}
		first := t.StartedAt.Add(s.timings.FirstHeartbeatAfter)
		end := now
		if !t.StoppedAt.IsZero() && t.StoppedAt.Before(end) {
			end = t.StoppedAt
		}
		if first.After(end) {
			continue
		}
		last := first.Add(end.Sub(first).Truncate(s.timings.HeartbeatInterval))
		p := s.pools[poolName]
		if p == nil {
			p = s.newPool(poolName, "ecs", first)
		}
		name := t.Env[envPrefix] + "-" + t.Hostname
		if t.Env[envPrefix] == "" {
			name = "ECSWorker " + s.uuid("task/"+t.ARN) // Prefect's default name (ref §4.2)
		}
		s.upsert(p, name, first, last, int(s.timings.HeartbeatInterval/time.Second))
	}
}

// reaches says whether the task's worker talks to this server with working
// credentials.
func (s *Server) reaches(t Task) bool {
	api := strings.TrimRight(t.Env[envAPIURL], "/")
	key := t.Secrets[envKey]
	if key == "" {
		key = t.Env[envKey]
	}
	switch api {
	case s.URL():
		return s.keys[key]
	case s.SelfHostedURL():
		if s.authString == "" {
			return true
		}
		auth := t.Secrets[envAuth]
		if auth == "" {
			auth = t.Env[envAuth]
		}
		return auth == s.authString
	}
	return false
}
