package prefectsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Flows, deployments, flow runs and their logs, as Prefect's REST API keeps
// them (docs/research/prefect-flow-runs.md §C; the routes of
// src/prefect/server/api/{flows,deployments,flow_runs,logs}.py). A flow run
// follows the state machine of §C.4: SCHEDULED ("Scheduled", then "Late"
// 15 s after its expected start while no worker has claimed it), PENDING
// when a worker claims it, RUNNING, then a terminal state; transitions are
// proposed through set_state and judged by the orchestration rules of
// src/prefect/server/orchestration/core_policy.py that apply to them.

// lateAfter is PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS' default
// (settings/models/server/services.py:350-358, §C.4).
const lateAfter = 15 * time.Second

type flow struct {
	id, name         string
	tags             []any
	labels           map[string]any
	created, updated time.Time
}

type deployment struct {
	id, name, flowID string
	// fields are the DeploymentCreate fields as stored: defaults, then what
	// each upsert sent.
	fields           map[string]any
	pool, queue      string
	created, updated time.Time
}

type runState struct {
	id, typ, name, message string
	at                     time.Time
	details                map[string]any
}

type flowRun struct {
	id, name, flowID, deploymentID string
	pool, queue                    string
	parameters, jobVariables       map[string]any
	tags                           []any
	labels                         map[string]any
	idempotencyKey                 string
	state                          runState
	infrastructurePID              string
	created, updated               time.Time
	expectedStart                  time.Time
	startTime, endTime             time.Time
	runCount                       int
	// claimedBy is the worker that submitted the run (simworker.go).
	claimedBy string
}

type logEntry struct {
	id, name, message, flowRunID string
	level                        int
	at                           time.Time
}

// stateNames are the default names of the state types.
var stateNames = map[string]string{"SCHEDULED": "Scheduled", "PENDING": "Pending", "RUNNING": "Running", "COMPLETED": "Completed",
	"FAILED": "Failed", "CANCELLED": "Cancelled", "CRASHED": "Crashed", "PAUSED": "Paused", "CANCELLING": "Cancelling"}

var terminal = map[string]bool{"COMPLETED": true, "FAILED": true, "CANCELLED": true, "CRASHED": true}

func (st runState) json() map[string]any {
	details := map[string]any{}
	for k, v := range st.details {
		details[k] = v
	}
	var msg any
	if st.message != "" {
		msg = st.message
	}
	return map[string]any{"id": st.id, "type": st.typ, "name": st.name, "timestamp": ts(st.at), "message": msg, "data": nil,
		"state_details": details}
}

func (f *flow) json() map[string]any {
	return map[string]any{"id": f.id, "created": ts(f.created), "updated": ts(f.updated), "name": f.name, "tags": orEmpty(f.tags), "labels": f.labels}
}

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

func tsOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

// newState makes a state of type typ at now.
func (s *Server) newState(typ, name, message string, at time.Time, runID string) runState {
	if name == "" {
		name = stateNames[typ]
	}
	return runState{id: s.newID("state"), typ: typ, name: name, message: message, at: at, details: map[string]any{"flow_run_id": runID}}
}

// advanceRuns marks runs Late: a SCHEDULED run still unclaimed 15 s after
// its expected start becomes Scheduled/"Late" (MarkLateRuns, §C.4).
// Callers hold s.mu.
func (s *Server) advanceRuns(now time.Time) {
	s.applyProcesses(now)
	for _, r := range s.runs {
		if r.state.typ == "SCHEDULED" && r.state.name == "Scheduled" {
			if at := r.expectedStart.Add(lateAfter); !now.Before(at) {
				st := s.newState("SCHEDULED", "Late", "", at, r.id)
				st.details["scheduled_time"] = ts(r.expectedStart)
				r.state, r.updated = st, at
			}
		}
	}
}

func (s *Server) flowRunJSON(r *flowRun, now time.Time) map[string]any {
	p := s.pools[r.pool]
	var poolID, queueID any
	if p != nil {
		poolID = p.id
		if q, ok := p.queues[r.queue]; ok {
			queueID = q
		}
	}
	var runTime float64
	if !r.startTime.IsZero() {
		end := now
		if !r.endTime.IsZero() {
			end = r.endTime
		}
		runTime = end.Sub(r.startTime).Seconds()
	}
	var idem, pid any
	if r.idempotencyKey != "" {
		idem = r.idempotencyKey
	}
	if r.infrastructurePID != "" {
		pid = r.infrastructurePID
	}
	var depID any
	if r.deploymentID != "" {
		depID = r.deploymentID
	}
	var deploymentVersion any
	if d := s.deployments[r.deploymentID]; d != nil {
		deploymentVersion = d.fields["version"]
	}
	return map[string]any{
		"id": r.id, "created": ts(r.created), "updated": ts(r.updated), "name": r.name, "flow_id": r.flowID, "state_id": r.state.id,
		"deployment_id": depID, "deployment_version": deploymentVersion, "work_queue_id": queueID, "work_queue_name": nilIfEmpty(r.queue),
		"flow_version": nil, "parameters": r.parameters, "idempotency_key": idem, "context": map[string]any{},
		"empirical_policy": map[string]any{"max_retries": 0, "retry_delay_seconds": 0.0, "retries": nil, "retry_delay": nil,
			"pause_keys": []any{}, "resuming": false, "retry_type": nil},
		"tags": orEmpty(r.tags), "labels": r.labels, "parent_task_run_id": nil, "state_type": r.state.typ, "state_name": r.state.name,
		"run_count": r.runCount, "expected_start_time": ts(r.expectedStart), "next_scheduled_start_time": nextScheduled(r),
		"start_time": tsOrNil(r.startTime), "end_time": tsOrNil(r.endTime), "total_run_time": runTime, "estimated_run_time": runTime,
		"estimated_start_time_delta": lateness(r, now), "auto_scheduled": false, "infrastructure_document_id": nil,
		"infrastructure_pid": pid, "created_by": nil, "work_pool_id": poolID, "work_pool_name": nilIfEmpty(r.pool),
		"state": r.state.json(), "job_variables": r.jobVariables,
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nextScheduled(r *flowRun) any {
	if r.state.typ == "SCHEDULED" {
		return ts(r.expectedStart)
	}
	return nil
}

// lateness is estimated_start_time_delta: how late the run started, or is.
func lateness(r *flowRun, now time.Time) float64 {
	start := r.startTime
	if start.IsZero() {
		if r.state.typ != "SCHEDULED" && r.state.typ != "PENDING" {
			return 0
		}
		start = now
	}
	if d := start.Sub(r.expectedStart).Seconds(); d > 0 {
		return d
	}
	return 0
}

func (s *Server) deploymentJSON(d *deployment, now time.Time) map[string]any {
	out := map[string]any{}
	for k, v := range d.fields {
		out[k] = v
	}
	var queueID any
	status := "NOT_READY"
	if p := s.pools[d.pool]; p != nil {
		if q, ok := p.queues[d.queue]; ok {
			queueID = q
		}
		if st := p.status(now); st != nil && *st == "READY" {
			status = "READY"
		}
	}
	delete(out, "version_info")
	out["id"], out["created"], out["updated"], out["name"], out["flow_id"] = d.id, ts(d.created), ts(d.updated), d.name, d.flowID
	out["work_pool_name"], out["work_queue_name"], out["work_queue_id"] = nilIfEmpty(d.pool), nilIfEmpty(d.queue), queueID
	out["last_polled"], out["status"], out["global_concurrency_limit"] = nil, status, nil
	out["created_by"], out["updated_by"] = nil, nil
	return out
}

// deploymentDefaults are DeploymentCreate's defaults (flow-runs-endpoints.json).
func deploymentDefaults() map[string]any {
	return map[string]any{
		"version": nil, "description": nil, "paused": false, "schedules": []any{}, "concurrency_limit": nil, "concurrency_options": nil,
		"job_variables": map[string]any{}, "parameters": map[string]any{}, "tags": []any{}, "labels": map[string]any{},
		"parameter_openapi_schema": nil, "path": nil, "pull_steps": nil, "entrypoint": nil, "storage_document_id": nil,
		"infrastructure_document_id": nil, "enforce_parameter_schema": true,
	}
}

func (s *Server) flowByID(id string) *flow {
	for _, f := range s.flows {
		if f.id == id {
			return f
		}
	}
	return nil
}

// createFlow is POST /flows/: create or get by name, 201 or 200 (§C.1).
func (s *Server) createFlow(rw http.ResponseWriter, body map[string]any, now time.Time) {
	if invalid(rw, validateBody("FlowCreate", body)) {
		return
	}
	name := str(body, "name")
	if f := s.flows[name]; f != nil {
		writeJSON(rw, http.StatusOK, f.json())
		return
	}
	f := &flow{id: s.newID("flow"), name: name, created: now, updated: now, labels: map[string]any{}}
	if t, ok := body["tags"].([]any); ok {
		f.tags = t
	}
	if l, ok := body["labels"].(map[string]any); ok {
		f.labels = l
	}
	s.flows[name] = f
	writeJSON(rw, http.StatusCreated, f.json())
}

func (s *Server) readFlowByName(rw http.ResponseWriter, name string) {
	f := found(rw, s.flows[name], "Flow")
	if f == nil {
		return
	}
	writeJSON(rw, http.StatusOK, f.json())
}

// createDeployment is POST /deployments/: an upsert on (flow_id, name) that
// sets only the fields the body has, replacing job_variables only when they
// are not empty (models/deployments.py:110-260, §C.2); 201 on insert, 200 on
// update.
func (s *Server) createDeployment(rw http.ResponseWriter, body map[string]any, now time.Time) {
	if invalid(rw, validateBody("DeploymentCreate", body)) {
		return
	}
	pool := str(body, "work_pool_name")
	p := s.pools[pool]
	if pool != "" {
		if p == nil {
			writeJSON(rw, http.StatusNotFound, detail(fmt.Sprintf("Work pool %q not found.", pool)))
			return
		}
		if jv, _ := body["job_variables"].(map[string]any); len(jv) > 0 {
			if msg := validateJobVariables(p.baseTemplate, false, jv); msg != "" {
				writeJSON(rw, http.StatusUnprocessableEntity, detail("Error creating deployment: "+msg))
				return
			}
		}
	}
	flowID := str(body, "flow_id")
	if s.flowByID(flowID) == nil {
		// The flow's foreign key (api/server.py integrity_exception_handler).
		writeJSON(rw, http.StatusConflict, detail("Data integrity conflict. This usually means a unique or foreign key constraint was violated. See server logs for details."))
		return
	}
	name := str(body, "name")
	var d *deployment
	for _, x := range s.deployments {
		if x.flowID == flowID && x.name == name {
			d = x
		}
	}
	status := http.StatusOK
	if d == nil {
		d = &deployment{id: s.newID("deployment"), name: name, flowID: flowID, fields: deploymentDefaults(), created: now}
		s.deployments[d.id] = d
		status = http.StatusCreated
	}
	for k, v := range body {
		switch k {
		case "name", "flow_id", "work_pool_name", "work_queue_name":
		case "job_variables":
			if jv, _ := v.(map[string]any); len(jv) > 0 || status == http.StatusCreated {
				d.fields[k] = v
			}
		default:
			d.fields[k] = v
		}
	}
	if _, ok := body["work_pool_name"]; ok {
		d.pool = pool
	}
	if q, ok := body["work_queue_name"].(string); ok && q != "" {
		d.queue = q
	} else if _, set := body["work_pool_name"]; set && d.queue == "" {
		d.queue = "default"
	}
	if p != nil {
		p.queue(s, d.queue) // created if missing (§C.2)
	}
	d.updated = now
	// Upserting deletes the deployment's scheduled runs: schedules are
	// recreated from the body (the simulation schedules none itself).
	if status == http.StatusOK {
		s.deleteScheduledRuns(d.id)
	}
	writeJSON(rw, status, s.deploymentJSON(d, now))
}

func (s *Server) deleteScheduledRuns(deploymentID string) {
	for id, r := range s.runs {
		if r.deploymentID == deploymentID && r.state.typ == "SCHEDULED" {
			delete(s.runs, id)
		}
	}
}

func (s *Server) deploymentRoute(rw http.ResponseWriter, method, id string, now time.Time) {
	itemRoute(rw, method, s.deployments[id], "Deployment", func(d *deployment) any { return s.deploymentJSON(d, now) }, func() {
		// Deleting a deployment deletes its scheduled runs
		// (models/deployments.py:670-710, §C.6).
		s.deleteScheduledRuns(id)
		delete(s.deployments, id)
	})
}

// itemRoute answers GET and DELETE /{collection}/{id}: 200 with show(v), 204
// once del has run, or 404 "<what> not found".
func itemRoute[T any](rw http.ResponseWriter, method string, v *T, what string, show func(*T) any, del func()) {
	if found(rw, v, what) == nil {
		return
	}
	switch method {
	case http.MethodGet:
		writeJSON(rw, http.StatusOK, show(v))
	case http.MethodDelete:
		del()
		rw.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) readDeploymentByName(rw http.ResponseWriter, flowName, name string, now time.Time) {
	f := s.flows[flowName]
	if f != nil {
		for _, d := range s.deployments {
			if d.flowID == f.id && d.name == name {
				writeJSON(rw, http.StatusOK, s.deploymentJSON(d, now))
				return
			}
		}
	}
	writeJSON(rw, http.StatusNotFound, detail("Deployment not found"))
}

// createFlowRun is POST /deployments/{id}/create_flow_run (§C.3,
// api/deployments.py:855-990).
func (s *Server) createFlowRun(rw http.ResponseWriter, depID string, body map[string]any, now time.Time) {
	d := target(rw, validateBody("DeploymentFlowRunCreate", body), s.deployments[depID], "Deployment")
	if d == nil {
		return
	}
	if key := str(body, "idempotency_key"); key != "" {
		for _, r := range s.runs {
			if r.flowID == d.flowID && r.idempotencyKey == key {
				writeJSON(rw, http.StatusOK, s.flowRunJSON(r, now))
				return
			}
		}
	}
	params := map[string]any{}
	if dp, ok := d.fields["parameters"].(map[string]any); ok {
		for k, v := range dp {
			params[k] = v
		}
	}
	if rp, ok := body["parameters"].(map[string]any); ok {
		for k, v := range rp {
			params[k] = v
		}
	}
	enforce, _ := d.fields["enforce_parameter_schema"].(bool)
	if e, ok := body["enforce_parameter_schema"].(bool); ok {
		enforce = e
	}
	if _, ok := d.fields["parameter_openapi_schema"].(map[string]any); enforce && !ok {
		writeJSON(rw, http.StatusConflict, detail("Error updating deployment: Cannot update parameters because parameter schema enforcement is enabled and the deployment does not have a valid parameter schema."))
		return
	}
	runVars, _ := body["job_variables"].(map[string]any)
	p := s.pools[d.pool]
	if p != nil {
		depVars, _ := d.fields["job_variables"].(map[string]any)
		if msg := validateJobVariables(p.baseTemplate, true, depVars, runVars); msg != "" {
			writeJSON(rw, http.StatusUnprocessableEntity, detail("Error creating flow run: "+msg))
			return
		}
	}
	queue := d.queue
	if q := str(body, "work_queue_name"); q != "" {
		if p == nil {
			writeJSON(rw, http.StatusBadRequest, detail(fmt.Sprintf("Cannot create flow run in work queue %s because deployment %s is not associated with a work pool. Please remove work_pool_name and try again.", q, depID)))
			return
		}
		p.queue(s, q)
		queue = q
	}
	id := s.newID("flow-run")
	r := &flowRun{id: id, name: str(body, "name"), flowID: d.flowID, deploymentID: d.id, pool: d.pool, queue: queue,
		parameters: params, jobVariables: runVars, idempotencyKey: str(body, "idempotency_key"), created: now, updated: now, expectedStart: now}
	if r.name == "" {
		r.name = s.slug(id)
	}
	if r.jobVariables == nil {
		r.jobVariables = map[string]any{}
	}
	tags := map[string]bool{}
	for _, l := range [][]any{toList(d.fields["tags"]), toList(body["tags"])} {
		for _, t := range l {
			if ts, ok := t.(string); ok && !tags[ts] {
				tags[ts] = true
				r.tags = append(r.tags, ts)
			}
		}
	}
	// Labels: the deployment's, the system labels, then the run's own
	// (models/deployments.py:1442-1469).
	r.labels = map[string]any{}
	if dl, ok := d.fields["labels"].(map[string]any); ok {
		for k, v := range dl {
			r.labels[k] = v
		}
	}
	r.labels["prefect.flow.id"], r.labels["prefect.deployment.id"] = d.flowID, d.id
	if rl, ok := body["labels"].(map[string]any); ok {
		for k, v := range rl {
			r.labels[k] = v
		}
	}
	st := s.newState("SCHEDULED", "", "", now, id)
	if sb, ok := body["state"].(map[string]any); ok {
		st = s.newState(str(sb, "type"), str(sb, "name"), str(sb, "message"), now, id)
	}
	st.details["scheduled_time"] = ts(now)
	r.state = st
	s.runs[id] = r
	s.armDriver()
	writeJSON(rw, http.StatusCreated, s.flowRunJSON(r, now))
}

func toList(v any) []any {
	l, _ := v.([]any)
	return l
}

// slug is a run name like Prefect's random "adjective-animal".
func (s *Server) slug(seed string) string {
	adjectives := []string{"amber", "brisk", "calm", "daring", "eager", "fuzzy", "gentle", "hidden", "ivory", "jolly", "keen", "lively"}
	animals := []string{"otter", "heron", "lynx", "marmot", "newt", "okapi", "panda", "quail", "raven", "stoat", "tapir", "urchin"}
	h := 0
	for _, c := range seed {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	return adjectives[h%len(adjectives)] + "-" + animals[(h/len(adjectives))%len(animals)]
}

func (s *Server) flowRunRoute(rw http.ResponseWriter, method, id string, now time.Time) {
	itemRoute(rw, method, s.runs[id], "Flow run", func(r *flowRun) any { return s.flowRunJSON(r, now) }, func() { delete(s.runs, id) })
}

// setState is POST /flow_runs/{id}/set_state (api/flow_runs.py:821-879).
func (s *Server) setState(rw http.ResponseWriter, id string, body map[string]any, now time.Time) {
	r := target(rw, validateBody("Body_set_flow_run_state_flow_runs__id__set_state_post", body), s.runs[id], "Flow run")
	if r == nil {
		return
	}
	sb := sub(body, "state")
	force, _ := body["force"].(bool)
	res := s.propose(r, str(sb, "type"), str(sb, "name"), str(sb, "message"), force, now)
	s.armDriver()
	status := http.StatusOK
	if res.status == "ACCEPT" {
		status = http.StatusCreated
	}
	writeJSON(rw, status, res.json())
}

// orchestration is an OrchestrationResult.
type orchestration struct {
	status, reason string
	state          *runState
}

func (o orchestration) json() map[string]any {
	var st any
	if o.state != nil {
		st = o.state.json()
	}
	details := map[string]any{"type": strings.ToLower(o.status) + "_details"}
	if o.status != "ACCEPT" {
		details["reason"] = o.reason
	}
	return map[string]any{"state": st, "status": o.status, "details": details}
}

// propose judges a proposed state with the rules of CoreFlowPolicy that
// apply to the transitions workers and deploybot make
// (orchestration/core_policy.py:111-153): leaving a terminal state for
// CANCELLING/PAUSED/CRASHED aborts (HandleFlowTerminalStateTransitions); a
// CANCELLING run may only become CANCELLED
// (EnforceCancellingToCancelledTransition); cancelling a SCHEDULED run that
// has no infrastructure makes it CANCELLED at once
// (BypassCancellingFlowRunsWithNoInfra); a second PENDING aborts, except a
// renamed PENDING sub-state (PreventPendingTransitions). force skips the
// rules. Callers hold s.mu.
func (s *Server) propose(r *flowRun, typ, name, message string, force bool, now time.Time) orchestration {
	cur := r.state
	reject := func(reason string, st *runState) orchestration {
		if st == nil {
			st = &cur
		}
		return orchestration{status: "REJECT", reason: reason, state: st}
	}
	if !force {
		switch {
		case terminal[cur.typ] && (typ == "CANCELLING" || typ == "PAUSED" || typ == "CRASHED"):
			return orchestration{status: "ABORT", reason: "Run is already in terminal state " + cur.typ + "."}
		case cur.typ == "CANCELLING" && typ != "CANCELLED":
			return reject("Cannot transition flows that are cancelling to a state other than Cancelled.", nil)
		case cur.typ == "SCHEDULED" && typ == "CANCELLING" && r.infrastructurePID == "":
			st := s.setRunState(r, "CANCELLED", "", "", now)
			return reject("Scheduled flow run has no infrastructure to terminate.", &st)
		case typ == "PENDING" && (cur.typ == "PENDING" || cur.typ == "CANCELLING" || cur.typ == "RUNNING" || cur.typ == "CANCELLED"):
			if !(cur.typ == "PENDING" && name != "" && name != cur.name && name != "Pending") {
				return orchestration{status: "ABORT", reason: "This run is in a " + cur.typ + " state and cannot transition to a PENDING state."}
			}
		}
	}
	st := s.setRunState(r, typ, name, message, now)
	return orchestration{status: "ACCEPT", state: &st}
}

// setRunState records a state and what it implies for the run's times.
func (s *Server) setRunState(r *flowRun, typ, name, message string, now time.Time) runState {
	st := s.newState(typ, name, message, now, r.id)
	if typ == "RUNNING" {
		if r.startTime.IsZero() {
			r.startTime = now
		}
		r.runCount++
	}
	if terminal[typ] {
		r.endTime = now
	}
	r.state, r.updated = st, now
	return st
}

// filterFlowRuns is POST /flow_runs/filter (api/flow_runs.py:585-613, §C.5).
func (s *Server) filterFlowRuns(rw http.ResponseWriter, body map[string]any, now time.Time) {
	offset, limit, ok := pageOf(rw, validateBody("Body_read_flow_runs_flow_runs_filter_post", body), body)
	if !ok {
		return
	}
	var out []*flowRun
	for _, r := range s.runs {
		if s.runMatches(r, body) {
			out = append(out, r)
		}
	}
	sortRuns(out, str(body, "sort"))
	var items []map[string]any
	for _, r := range out {
		items = append(items, s.flowRunJSON(r, now))
	}
	writeJSON(rw, http.StatusOK, page(items, offset, limit))
}

// anyOf answers a {any_: [...]} / {not_any_: [...]} filter for a value.
func anyOf(f map[string]any, v string) bool {
	if f == nil {
		return true
	}
	if vals, ok := strList(f, "any_"); ok && !contains(vals, v) {
		return false
	}
	if vals, ok := strList(f, "not_any_"); ok && contains(vals, v) {
		return false
	}
	return true
}

func (s *Server) runMatches(r *flowRun, body map[string]any) bool {
	f := sub(body, "flow_runs")
	var results []bool
	if f != nil {
		if x := sub(f, "id"); x != nil {
			results = append(results, anyOf(x, r.id))
		}
		if x := sub(f, "name"); x != nil {
			results = append(results, anyOf(x, r.name))
		}
		if x := sub(f, "deployment_id"); x != nil {
			results = append(results, anyOf(x, r.deploymentID))
		}
		if x := sub(f, "work_queue_name"); x != nil {
			results = append(results, anyOf(x, r.queue))
		}
		if x := sub(f, "idempotency_key"); x != nil {
			results = append(results, anyOf(x, r.idempotencyKey))
		}
		if x := sub(f, "tags"); x != nil {
			all, _ := strList(x, "all_")
			have := true
			for _, t := range all {
				found := false
				for _, rt := range r.tags {
					found = found || rt == t
				}
				have = have && found
			}
			results = append(results, have)
		}
		if st := sub(f, "state"); st != nil {
			results = append(results, anyOf(sub(st, "type"), r.state.typ) && anyOf(sub(st, "name"), r.state.name))
		}
	}
	if !combine(str(f, "operator"), results) {
		return false
	}
	if d := sub(body, "deployments"); d != nil && !anyOf(sub(d, "id"), r.deploymentID) {
		return false
	}
	if p := sub(body, "work_pools"); p != nil && !anyOf(sub(p, "name"), r.pool) {
		return false
	}
	if fl := sub(body, "flows"); fl != nil {
		f := s.flowByID(r.flowID)
		name := ""
		if f != nil {
			name = f.name
		}
		if !anyOf(sub(fl, "id"), r.flowID) || !anyOf(sub(fl, "name"), name) {
			return false
		}
	}
	return true
}

func sortRuns(rs []*flowRun, by string) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		switch by {
		case "START_TIME_ASC":
			return a.startTime.Before(b.startTime)
		case "START_TIME_DESC":
			return a.startTime.After(b.startTime)
		case "EXPECTED_START_TIME_ASC":
			return a.expectedStart.Before(b.expectedStart)
		case "EXPECTED_START_TIME_DESC":
			return a.expectedStart.After(b.expectedStart)
		case "NAME_ASC":
			return a.name < b.name
		case "NAME_DESC":
			return a.name > b.name
		case "END_TIME_DESC":
			return a.endTime.After(b.endTime)
		}
		return a.id > b.id // ID_DESC, the default
	})
}

// addLog records a log line of a run (what a flow run's engine and its
// worker send to POST /logs/). Callers hold s.mu.
func (s *Server) addLog(runID, logger string, level int, at time.Time, message string) {
	s.logs = append(s.logs, &logEntry{id: s.newID("log"), name: logger, message: message, flowRunID: runID, level: level, at: at})
}

// filterLogs is POST /logs/filter (api/logs.py:43-57, §C.5).
func (s *Server) filterLogs(rw http.ResponseWriter, body map[string]any) {
	offset, limit, ok := pageOf(rw, validateBody("Body_read_logs_logs_filter_post", body), body)
	if !ok {
		return
	}
	f := sub(body, "logs")
	var out []*logEntry
	for _, l := range s.logs {
		if !anyOf(sub(f, "flow_run_id"), l.flowRunID) {
			continue
		}
		if lv := sub(f, "level"); lv != nil {
			if n, ok := lv["ge_"].(json.Number); ok {
				if v, _ := n.Int64(); int64(l.level) < v {
					continue
				}
			}
			if n, ok := lv["le_"].(json.Number); ok {
				if v, _ := n.Int64(); int64(l.level) > v {
					continue
				}
			}
		}
		if tf := sub(f, "timestamp"); tf != nil {
			if t, ok := timeOf(tf, "before_"); ok && l.at.After(t) {
				continue
			}
			if t, ok := timeOf(tf, "after_"); ok && l.at.Before(t) {
				continue
			}
		}
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if str(body, "sort") == "TIMESTAMP_DESC" {
			return out[i].at.After(out[j].at)
		}
		return out[i].at.Before(out[j].at)
	})
	var items []map[string]any
	for _, l := range out {
		var run any
		if l.flowRunID != "" {
			run = l.flowRunID
		}
		items = append(items, map[string]any{"id": l.id, "created": ts(l.at), "updated": ts(l.at), "name": l.name, "level": l.level,
			"message": l.message, "timestamp": ts(l.at), "flow_run_id": run, "task_run_id": nil})
	}
	writeJSON(rw, http.StatusOK, page(items, offset, limit))
}
