package prefect

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Flows, deployments, flow runs and their logs over REST, as the health
// gate's smoke flow run uses them (docs/research/prefect-flow-runs.md §C,
// cited below as "fr §C.n"; shapes from
// docs/research/prefect-openapi/flow-runs-endpoints.json). Every status code
// a call can answer is the one Prefect's routers return
// (src/prefect/server/api/{flows,deployments,flow_runs,logs}.py).

// Flow-run state types (StateType in schemas-core.json, fr §C.4).
const (
	StateScheduled  = "SCHEDULED"
	StatePending    = "PENDING"
	StateRunning    = "RUNNING"
	StateCompleted  = "COMPLETED"
	StateFailed     = "FAILED"
	StateCancelled  = "CANCELLED"
	StateCrashed    = "CRASHED"
	StatePaused     = "PAUSED"
	StateCancelling = "CANCELLING"
)

// Terminal says whether a state type ends a run (COMPLETED, FAILED,
// CANCELLED, CRASHED: TERMINAL_STATES in src/prefect/client/schemas/objects.py).
func Terminal(stateType string) bool {
	switch stateType {
	case StateCompleted, StateFailed, StateCancelled, StateCrashed:
		return true
	}
	return false
}

// LabelWorkerName is the flow-run label Prefect sets to the name of the
// worker that submitted the run (src/prefect/workers/base.py:1986-2004, fr §C.4).
const LabelWorkerName = "prefect.worker.name"

// Flow is FlowResponse (the fields deploybot reads).
type Flow struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type flowCreate struct {
	Name   string            `json:"name"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
}

// CreateFlow is POST /flows/: it creates the flow, or returns the existing
// one of that name with the same id (201 or 200, api/flows.py:25-46, fr §C.1).
func (c *Client) CreateFlow(ctx context.Context, name string) (*Flow, error) {
	var f Flow
	err := c.do(ctx, call{op: fmt.Sprintf("create flow %q", name), method: http.MethodPost, path: "/flows/",
		in: flowCreate{Name: name, Tags: []string{}, Labels: map[string]string{}}, out: &f})
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// DeploymentCreate is the body of POST /deployments/ (DeploymentCreate,
// additionalProperties false: only these keys). The upsert sets only the
// fields sent, so every field deploybot owns is always sent (fr §C.2).
type DeploymentCreate struct {
	Name          string `json:"name"`
	FlowID        string `json:"flow_id"`
	WorkPoolName  string `json:"work_pool_name"`
	WorkQueueName string `json:"work_queue_name"`
	Entrypoint    string `json:"entrypoint"`
	// PullSteps are the steps run in the flow-run container before the
	// flow is loaded (fr §D.2).
	PullSteps              []map[string]any `json:"pull_steps"`
	Parameters             map[string]any   `json:"parameters"`
	ParameterOpenAPISchema map[string]any   `json:"parameter_openapi_schema"`
	// EnforceParameterSchema defaults to true on the server; a deployment
	// without a schema then answers create_flow_run with 409 (fr §C.2).
	EnforceParameterSchema bool              `json:"enforce_parameter_schema"`
	JobVariables           map[string]any    `json:"job_variables"`
	Paused                 bool              `json:"paused"`
	Tags                   []string          `json:"tags"`
	Labels                 map[string]string `json:"labels"`
	Description            string            `json:"description"`
}

// Deployment is DeploymentResponse (the fields deploybot reads and compares).
type Deployment struct {
	ID                     string           `json:"id"`
	Name                   string           `json:"name"`
	FlowID                 string           `json:"flow_id"`
	WorkPoolName           *string          `json:"work_pool_name"`
	WorkQueueName          *string          `json:"work_queue_name"`
	Entrypoint             *string          `json:"entrypoint"`
	PullSteps              []map[string]any `json:"pull_steps"`
	Parameters             map[string]any   `json:"parameters"`
	ParameterOpenAPISchema map[string]any   `json:"parameter_openapi_schema"`
	EnforceParameterSchema bool             `json:"enforce_parameter_schema"`
	JobVariables           map[string]any   `json:"job_variables"`
	Paused                 bool             `json:"paused"`
	Tags                   []string         `json:"tags"`
	Labels                 map[string]any   `json:"labels"`
	Description            *string          `json:"description"`
	Updated                *time.Time       `json:"updated"`
}

// UpsertDeployment is POST /deployments/: insert (201) or update (200) on
// (flow_id, name), setting only the fields sent; 404 for an unknown work
// pool, 422 for job variables the pool's schema refuses, 409 for a flow
// that does not exist (api/deployments.py:89-210, fr §C.2).
func (c *Client) UpsertDeployment(ctx context.Context, d DeploymentCreate) (dep *Deployment, created bool, err error) {
	// Prefect's lists and dicts are not nullable: an unset one is sent
	// empty (which the upsert then sets).
	if d.Tags == nil {
		d.Tags = []string{}
	}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	if d.Parameters == nil {
		d.Parameters = map[string]any{}
	}
	if d.JobVariables == nil {
		d.JobVariables = map[string]any{}
	}
	if d.PullSteps == nil {
		d.PullSteps = []map[string]any{}
	}
	if d.ParameterOpenAPISchema == nil {
		d.ParameterOpenAPISchema = map[string]any{"type": "object", "properties": map[string]any{}}
	}
	var out Deployment
	var status int
	err = c.do(ctx, call{op: fmt.Sprintf("create or update deployment %q", d.Name), method: http.MethodPost, path: "/deployments/",
		in: d, out: &out, status: &status})
	if err != nil {
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

// ReadDeploymentByName is GET /deployments/name/{flow}/{deployment}: the
// deployment, or (nil, nil) when Prefect answers 404 "Deployment not found".
func (c *Client) ReadDeploymentByName(ctx context.Context, flow, name string) (*Deployment, error) {
	var out Deployment
	err := c.do(ctx, call{op: fmt.Sprintf("read deployment %s/%s", flow, name), method: http.MethodGet,
		path: "/deployments/name/" + url.PathEscape(flow) + "/" + url.PathEscape(name), out: &out})
	if StatusOf(err) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteDeployment is DELETE /deployments/{id}: 204, or 404 "Deployment not
// found", reported as deleted=false with no error. Prefect also deletes the
// deployment's SCHEDULED runs (models/deployments.py:670-710, fr §C.6).
func (c *Client) DeleteDeployment(ctx context.Context, id string) (deleted bool, err error) {
	err = c.do(ctx, call{op: fmt.Sprintf("delete deployment %s", id), method: http.MethodDelete, path: "/deployments/" + url.PathEscape(id)})
	if StatusOf(err) == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// FlowRunCreate is the body of POST /deployments/{id}/create_flow_run
// (DeploymentFlowRunCreate, additionalProperties false).
type FlowRunCreate struct {
	Name string `json:"name,omitempty"`
	// IdempotencyKey: the same key returns the same run, with 200 (fr §C.3).
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	WorkQueueName  string            `json:"work_queue_name,omitempty"`
	JobVariables   map[string]any    `json:"job_variables,omitempty"`
	Parameters     map[string]any    `json:"parameters"`
	Tags           []string          `json:"tags,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// State is a flow run's state (State in schemas-core.json).
type State struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	Name      string     `json:"name"`
	Timestamp *time.Time `json:"timestamp"`
	Message   *string    `json:"message"`
}

// MessageString is the state's message, or "".
func (s *State) MessageString() string {
	if s == nil || s.Message == nil {
		return ""
	}
	return *s.Message
}

// FlowRun is FlowRunResponse (the fields deploybot reads, fr §C.4).
type FlowRun struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	DeploymentID      *string        `json:"deployment_id"`
	WorkPoolName      *string        `json:"work_pool_name"`
	WorkQueueName     *string        `json:"work_queue_name"`
	StateType         string         `json:"state_type"`
	StateName         string         `json:"state_name"`
	State             *State         `json:"state"`
	InfrastructurePID *string        `json:"infrastructure_pid"`
	Labels            map[string]any `json:"labels"`
	IdempotencyKey    *string        `json:"idempotency_key"`
	Created           *time.Time     `json:"created"`
	ExpectedStartTime *time.Time     `json:"expected_start_time"`
	StartTime         *time.Time     `json:"start_time"`
	EndTime           *time.Time     `json:"end_time"`
	TotalRunTime      float64        `json:"total_run_time"`
}

// WorkerName is the name of the worker that submitted the run, or "" while
// none has (the prefect.worker.name label).
func (r *FlowRun) WorkerName() string {
	if s, ok := r.Labels[LabelWorkerName].(string); ok {
		return s
	}
	return ""
}

// Infrastructure is the run's infrastructure_pid, or "". The ECS worker
// sets it to "<cluster>::<task ARN>" right after RunTask
// (prefect_aws/workers/ecs_worker.py:753-761, fr §A.7).
func (r *FlowRun) Infrastructure() string {
	if r.InfrastructurePID == nil {
		return ""
	}
	return *r.InfrastructurePID
}

// CreateFlowRun is POST /deployments/{id}/create_flow_run: 201 for a new
// run, 200 with the existing run for an idempotency key already used; 404
// for an unknown deployment, 409 for a parameter-schema violation, 400 for
// a queue override without a pool, 422 for job variables the pool refuses
// (api/deployments.py:855-990, fr §C.3).
func (c *Client) CreateFlowRun(ctx context.Context, deploymentID string, r FlowRunCreate) (run *FlowRun, created bool, err error) {
	var out FlowRun
	var status int
	err = c.do(ctx, call{op: fmt.Sprintf("create a flow run of deployment %s", deploymentID), method: http.MethodPost,
		path: "/deployments/" + url.PathEscape(deploymentID) + "/create_flow_run", in: r, out: &out, status: &status})
	if err != nil {
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

// ReadFlowRun is GET /flow_runs/{id} (404 "Flow run not found", fr §C.4).
func (c *Client) ReadFlowRun(ctx context.Context, id string) (*FlowRun, error) {
	var out FlowRun
	if err := c.do(ctx, call{op: fmt.Sprintf("read flow run %s", id), method: http.MethodGet, path: "/flow_runs/" + url.PathEscape(id), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

type stateCreate struct {
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
}

type setStateBody struct {
	State stateCreate `json:"state"`
	Force bool        `json:"force"`
}

// Orchestration is an OrchestrationResult: ACCEPT, REJECT, ABORT or WAIT,
// with the state the run is in afterwards.
type Orchestration struct {
	Status  string         `json:"status"`
	State   *State         `json:"state"`
	Details map[string]any `json:"details"`
}

// Reason is why Prefect did not accept, or "".
func (o *Orchestration) Reason() string {
	if r, ok := o.Details["reason"].(string); ok {
		return r
	}
	return ""
}

// CancelFlowRun proposes CANCELLING (POST /flow_runs/{id}/set_state, 201 on
// ACCEPT, 200 otherwise): the worker that submitted the run then stops its
// infrastructure (ECS StopTask, ecs_worker.py:1685-1745); a SCHEDULED run
// without infrastructure becomes CANCELLED at once; a run already terminal
// answers ABORT (orchestration/core_policy.py, fr §C.6).
func (c *Client) CancelFlowRun(ctx context.Context, id, message string) (*Orchestration, error) {
	var out Orchestration
	err := c.do(ctx, call{op: fmt.Sprintf("cancel flow run %s", id), method: http.MethodPost, path: "/flow_runs/" + url.PathEscape(id) + "/set_state",
		in: setStateBody{State: stateCreate{Type: StateCancelling, Message: message}}, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Log is one log line of a run (Log in schemas-core.json).
type Log struct {
	Name      string     `json:"name"`
	Level     int        `json:"level"`
	Message   string     `json:"message"`
	Timestamp *time.Time `json:"timestamp"`
}

// Log levels (Python's logging levels, fr §C.5).
const (
	LevelDebug   = 10
	LevelInfo    = 20
	LevelWarning = 30
	LevelError   = 40
)

type logsFilterBody struct {
	Logs   logFilter `json:"logs"`
	Sort   string    `json:"sort"`
	Offset int       `json:"offset"`
	Limit  int       `json:"limit"`
}

type logFilter struct {
	FlowRunID struct {
		Any []string `json:"any_"`
	} `json:"flow_run_id"`
	Level struct {
		Ge int `json:"ge_"`
	} `json:"level"`
}

// ReadFlowRunLogs is POST /logs/filter: the first limit (at most PageLimit)
// log lines of a run at level minLevel or above, oldest first (fr §C.5).
// Runs send their logs in batches every 2 s, so a caller that wants the
// last lines reads again a few seconds after the run ended.
func (c *Client) ReadFlowRunLogs(ctx context.Context, runID string, minLevel, limit int) ([]Log, error) {
	var f logFilter
	f.FlowRunID.Any = []string{runID}
	f.Level.Ge = minLevel
	var out []Log
	err := c.do(ctx, call{op: fmt.Sprintf("read the logs of flow run %s", runID), method: http.MethodPost, path: "/logs/filter",
		in: logsFilterBody{Logs: f, Sort: "TIMESTAMP_ASC", Limit: min(max(limit, 1), PageLimit)}, out: &out})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FlowRunURL is the Prefect UI page of a flow run: Cloud's
// https://app.prefect.cloud/account/<a>/workspace/<w>/runs/flow-run/<id>, a
// self-hosted server's <root>/runs/flow-run/<id>.
func (c *Client) FlowRunURL(id string) string { return c.uiURL("/runs/flow-run/" + url.PathEscape(id)) }
