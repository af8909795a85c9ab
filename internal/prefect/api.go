package prefect

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Work pool and worker statuses (WorkPoolStatus, WorkerStatus in schemas-core.json).
const (
	PoolReady    = "READY"
	PoolNotReady = "NOT_READY"
	PoolPaused   = "PAUSED"

	WorkerOnline  = "ONLINE"
	WorkerOffline = "OFFLINE"
)

// WorkPool is WorkPoolResponse (ref §1.2); unknown fields are ignored because
// Prefect Cloud may add some.
type WorkPool struct {
	ID               string         `json:"id"`
	Created          *time.Time     `json:"created"`
	Updated          *time.Time     `json:"updated"`
	Name             string         `json:"name"`
	Description      *string        `json:"description,omitempty"`
	Type             string         `json:"type"`
	BaseJobTemplate  map[string]any `json:"base_job_template,omitempty"`
	IsPaused         bool           `json:"is_paused"`
	ConcurrencyLimit *int           `json:"concurrency_limit,omitempty"`
	Status           *string        `json:"status,omitempty"`
	DefaultQueueID   *string        `json:"default_queue_id,omitempty"`
}

// StatusString is the pool's status, or "" (prefect-agent pools have none).
func (p *WorkPool) StatusString() string {
	if p.Status == nil {
		return ""
	}
	return *p.Status
}

// Worker is WorkerResponse (ref §1.1).
type Worker struct {
	ID                       string     `json:"id"`
	Created                  *time.Time `json:"created"`
	Updated                  *time.Time `json:"updated"`
	Name                     string     `json:"name"`
	WorkPoolID               string     `json:"work_pool_id"`
	LastHeartbeatTime        *time.Time `json:"last_heartbeat_time"`
	HeartbeatIntervalSeconds *int       `json:"heartbeat_interval_seconds"`
	Status                   string     `json:"status"`
}

// DefaultHeartbeatInterval is what Prefect assumes when a worker did not send
// heartbeat_interval_seconds (DEFAULT_HEARTBEAT_INTERVAL_SECONDS, ref §1.4).
const DefaultHeartbeatInterval = 30 * time.Second

// InactivityHeartbeatMultiple: a worker is ONLINE while its last heartbeat is
// younger than this many intervals (ref §1.4).
const InactivityHeartbeatMultiple = 3

// HeartbeatInterval is the worker's declared interval, or Prefect's default.
func (w *Worker) HeartbeatInterval() time.Duration {
	if w.HeartbeatIntervalSeconds == nil || *w.HeartbeatIntervalSeconds <= 0 {
		return DefaultHeartbeatInterval
	}
	return time.Duration(*w.HeartbeatIntervalSeconds) * time.Second
}

// FreshAt says whether the worker's last heartbeat is younger than 3 of its
// heartbeat intervals at now: the client-side check the reference recommends
// on top of status (stale ONLINE rows exist, PrefectHQ/prefect#22212, ref §1.4).
func (w *Worker) FreshAt(now time.Time) bool {
	return w.LastHeartbeatTime != nil && now.Sub(*w.LastHeartbeatTime) < InactivityHeartbeatMultiple*w.HeartbeatInterval()
}

// Steady says whether the worker has heartbeated at least twice: its last
// heartbeat is at least half an interval after its row was created (the first
// heartbeat, ref §1.4). A worker that heartbeats once and then crashes stays
// ONLINE for 3 intervals; this is what tells it from one that stayed up.
func (w *Worker) Steady() bool {
	return w.Created != nil && w.LastHeartbeatTime != nil && w.LastHeartbeatTime.Sub(*w.Created) >= w.HeartbeatInterval()/2
}

// WorkerFilter is WorkerFilter (additionalProperties: false: only these keys).
type WorkerFilter struct {
	Operator          string                   `json:"operator,omitempty"`
	LastHeartbeatTime *WorkerFilterHeartbeat   `json:"last_heartbeat_time,omitempty"`
	Status            *WorkerFilterStatusField `json:"status,omitempty"`
}

// WorkerFilterHeartbeat is WorkerFilterLastHeartbeatTime: inclusive bounds.
type WorkerFilterHeartbeat struct {
	Before *time.Time `json:"before_,omitempty"`
	After  *time.Time `json:"after_,omitempty"`
}

// WorkerFilterStatusField is WorkerFilterStatus.
type WorkerFilterStatusField struct {
	Any    []string `json:"any_,omitempty"`
	NotAny []string `json:"not_any_,omitempty"`
}

type readWorkersBody struct {
	Workers *WorkerFilter `json:"workers,omitempty"`
	Offset  int           `json:"offset"`
	Limit   int           `json:"limit"`
}

// PageLimit is the largest page Prefect serves: limit > 200 answers 422
// (PREFECT_SERVER_API_DEFAULT_LIMIT, ref §1.1).
const PageLimit = 200

// maxPages bounds a listing (200 × 50 = 10,000 workers) so that a runaway
// pool cannot turn one poll into hundreds of requests.
const maxPages = 50

// WorkPoolCreate is WorkPoolCreate (additionalProperties: false): a pool
// of Type (ecs) with its description and base job template.
type WorkPoolCreate struct {
	Name            string         `json:"name"`
	Type            string         `json:"type"`
	Description     *string        `json:"description,omitempty"`
	BaseJobTemplate map[string]any `json:"base_job_template,omitempty"`
}

// WorkPoolUpdate is WorkPoolUpdate: only the fields given change, and a
// base job template given replaces the pool's whole
// (docs/research/prefect-flow-runs.md §A.4).
type WorkPoolUpdate struct {
	Description     *string        `json:"description,omitempty"`
	BaseJobTemplate map[string]any `json:"base_job_template,omitempty"`
}

func poolPath(pool string) string { return "/work_pools/" + url.PathEscape(pool) }

// CheckKey proves the credentials work. Cloud: GET /api/me/ on the Cloud API
// root (ref §1.6; collection routes keep their trailing slash, ref §2.1).
// Self-hosted: GET /health (exempt from basic auth on OSS, so the work-pool
// read that follows is what proves an auth string).
func (c *Client) CheckKey(ctx context.Context) error {
	if c.cloud {
		var me map[string]any
		return c.do(ctx, call{op: "check the API key", method: http.MethodGet, path: "/me/", root: true, out: &me})
	}
	var ok any
	return c.do(ctx, call{op: "check the server health", method: http.MethodGet, path: "/health", out: &ok})
}

// ReadWorkPool is GET /work_pools/{name} (ref §1.2; 404 when missing).
func (c *Client) ReadWorkPool(ctx context.Context, name string) (*WorkPool, error) {
	var p WorkPool
	if err := c.do(ctx, call{op: fmt.Sprintf("read work pool %q", name), method: http.MethodGet, path: poolPath(name), out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateWorkPool is POST /work_pools/ (trailing slash: ref §2.1); the type
// must be given (the default type is prefect-agent, ref §2.3). Prefect
// validates the template's defaults against its variables on create
// (docs/research/prefect-flow-runs.md §A.4); 409 when the name is taken.
func (c *Client) CreateWorkPool(ctx context.Context, in WorkPoolCreate) (*WorkPool, error) {
	var p WorkPool
	err := c.do(ctx, call{op: fmt.Sprintf("create work pool %q", in.Name), method: http.MethodPost, path: "/work_pools/", in: in, out: &p})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdateWorkPool is PATCH /work_pools/{name}: 204 (a base job template
// replaces the pool's whole; only its structure is checked, §A.4).
func (c *Client) UpdateWorkPool(ctx context.Context, name string, in WorkPoolUpdate) error {
	return c.do(ctx, call{op: fmt.Sprintf("update work pool %q", name), method: http.MethodPatch, path: poolPath(name), in: in})
}

// DeleteWorkPool is DELETE /work_pools/{name}: 204, or 404 when it is gone
// (reported as deleted=false with no error).
func (c *Client) DeleteWorkPool(ctx context.Context, name string) (deleted bool, err error) {
	err = c.do(ctx, call{op: fmt.Sprintf("delete work pool %q", name), method: http.MethodDelete, path: poolPath(name)})
	if StatusOf(err) == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// ReadWorkers is POST /work_pools/{pool}/workers/filter, every page of at most
// PageLimit (ordered by last heartbeat, newest first, ref §1.1).
func (c *Client) ReadWorkers(ctx context.Context, pool string, f *WorkerFilter) ([]Worker, error) {
	var all []Worker
	for page := 0; page < maxPages; page++ {
		var got []Worker
		err := c.do(ctx, call{op: fmt.Sprintf("read workers of pool %q", pool), method: http.MethodPost,
			path: poolPath(pool) + "/workers/filter",
			in:   readWorkersBody{Workers: f, Offset: page * PageLimit, Limit: PageLimit}, out: &got})
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < PageLimit {
			return all, nil
		}
	}
	return all, nil
}

// DeleteWorker is DELETE /work_pools/{pool}/workers/{name}: 204, or 404
// "Worker not found." (ref §1.4), reported as deleted=false with no error.
func (c *Client) DeleteWorker(ctx context.Context, pool, name string) (deleted bool, err error) {
	err = c.do(ctx, call{op: fmt.Sprintf("delete worker %q of pool %q", name, pool), method: http.MethodDelete,
		path: poolPath(pool) + "/workers/" + url.PathEscape(name)})
	if StatusOf(err) == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}
