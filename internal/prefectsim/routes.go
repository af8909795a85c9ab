package prefectsim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// route names one endpoint of the API (paths relative to the API base).
type route int

const (
	routeNone route = iota
	routeHealth
	routeReady
	routeHello
	routeVersion
	routePoolsCreate // /work_pools/  (the trailing slash is part of the route)
	routePoolsFilter // /work_pools/filter
	routePoolsCount  // /work_pools/count
	routePool        // /work_pools/{name}
	routeWorkers     // /work_pools/{name}/workers/filter
	routeHeartbeat   // /work_pools/{name}/workers/heartbeat
	routeWorker      // /work_pools/{name}/workers/{worker}
	routeFlowsCreate // /flows/
	routeFlowByName  // /flows/name/{name}
	routeDeploymentsCreate
	routeDeployment       // /deployments/{id}
	routeDeploymentByName // /deployments/name/{flow}/{name}
	routeCreateFlowRun    // /deployments/{id}/create_flow_run
	routeFlowRun          // /flow_runs/{id}
	routeFlowRunsFilter   // /flow_runs/filter
	routeSetState         // /flow_runs/{id}/set_state
	routeLogsFilter       // /logs/filter
)

// flowRoutes match the flow, deployment, flow-run and log routes as the
// routers of api/{flows,deployments,flow_runs,logs}.py declare them; {id}
// segments are UUIDs ({id:uuid}), anything else is no route.
func flowRoutes(rest string) (route, []string) {
	switch rest {
	case "/flows/":
		return routeFlowsCreate, nil
	case "/deployments/":
		return routeDeploymentsCreate, nil
	case "/flow_runs/filter":
		return routeFlowRunsFilter, nil
	case "/logs/filter":
		return routeLogsFilter, nil
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	isID := func(s string) bool { return uuidRe.MatchString(s) }
	switch {
	case len(parts) == 3 && parts[0] == "flows" && parts[1] == "name" && parts[2] != "":
		return routeFlowByName, parts[2:]
	case len(parts) == 2 && parts[0] == "deployments" && isID(parts[1]):
		return routeDeployment, parts[1:]
	case len(parts) == 4 && parts[0] == "deployments" && parts[1] == "name" && parts[2] != "" && parts[3] != "":
		return routeDeploymentByName, parts[2:]
	case len(parts) == 3 && parts[0] == "deployments" && isID(parts[1]) && parts[2] == "create_flow_run":
		return routeCreateFlowRun, parts[1:2]
	case len(parts) == 2 && parts[0] == "flow_runs" && isID(parts[1]):
		return routeFlowRun, parts[1:]
	case len(parts) == 3 && parts[0] == "flow_runs" && isID(parts[1]) && parts[2] == "set_state":
		return routeSetState, parts[1:2]
	}
	return routeNone, nil
}

// match finds the route for a path exactly as Prefect's router declares it
// (workers.py mounts prefix="/work_pools", ref §1; collection routes end in
// "/", item and action routes do not).
func match(rest string) (route, []string) {
	switch rest {
	case "/health":
		return routeHealth, nil
	case "/ready":
		return routeReady, nil
	case "/hello":
		return routeHello, nil
	case "/version", "/admin/version":
		return routeVersion, nil
	case "/work_pools/":
		return routePoolsCreate, nil
	case "/work_pools/filter":
		return routePoolsFilter, nil
	case "/work_pools/count":
		return routePoolsCount, nil
	}
	if rt, args := flowRoutes(rest); rt != routeNone {
		return rt, args
	}
	tail, ok := strings.CutPrefix(rest, "/work_pools/")
	if !ok || tail == "" || strings.HasSuffix(tail, "/") {
		return routeNone, nil
	}
	parts := strings.Split(tail, "/")
	switch {
	case len(parts) == 1:
		return routePool, parts
	case len(parts) == 3 && parts[1] == "workers" && parts[2] == "filter":
		return routeWorkers, parts[:1]
	case len(parts) == 3 && parts[1] == "workers" && parts[2] == "heartbeat":
		return routeHeartbeat, parts[:1]
	case len(parts) == 3 && parts[1] == "workers":
		return routeWorker, []string{parts[0], parts[2]}
	}
	return routeNone, nil
}

func (s *Server) route(rw http.ResponseWriter, r *http.Request, base, rest string, now time.Time, tasks []Task) {
	rt, args := match(rest)
	if rt == routeNone {
		// Starlette's redirect_slashes: if the path with its trailing slash
		// toggled is a route, answer 307 there (ref §2.1).
		alt := rest + "/"
		if strings.HasSuffix(rest, "/") {
			alt = strings.TrimSuffix(rest, "/")
		}
		if alt != "" {
			if art, _ := match(alt); art != routeNone {
				s.unexpected = append(s.unexpected, r.Method+" "+r.URL.Path+" (307 to the path with the trailing slash toggled)")
				redirect(rw, r, base+alt)
				return
			}
		}
		s.unexpected = append(s.unexpected, r.Method+" "+r.URL.Path+" (no such route)")
		writeJSON(rw, http.StatusNotFound, detail("Not Found"))
		return
	}
	want := map[route][]string{
		routeHealth: {"GET"}, routeReady: {"GET"}, routeHello: {"GET"}, routeVersion: {"GET"},
		routePoolsCreate: {"POST"}, routePoolsFilter: {"POST"}, routePoolsCount: {"POST"},
		routePool: {"GET", "PATCH", "DELETE"}, routeWorkers: {"POST"}, routeHeartbeat: {"POST"}, routeWorker: {"DELETE"},
		routeFlowsCreate: {"POST"}, routeFlowByName: {"GET"}, routeDeploymentsCreate: {"POST"}, routeDeployment: {"GET", "DELETE"},
		routeDeploymentByName: {"GET"}, routeCreateFlowRun: {"POST"}, routeFlowRun: {"GET", "DELETE"}, routeFlowRunsFilter: {"POST"},
		routeSetState: {"POST"}, routeLogsFilter: {"POST"},
	}[rt]
	allowed := false
	for _, m := range want {
		allowed = allowed || r.Method == m
	}
	if !allowed {
		s.unexpected = append(s.unexpected, r.Method+" "+r.URL.Path+" (method not allowed)")
		writeJSON(rw, http.StatusMethodNotAllowed, detail("Method Not Allowed"))
		return
	}
	// Prefect Cloud requires Content-Length on POST/PUT/PATCH (411, ref §2.4).
	if (r.Method == "POST" || r.Method == "PATCH" || r.Method == "PUT") && r.ContentLength < 0 {
		writeJSON(rw, http.StatusLengthRequired, detail("Length Required"))
		return
	}
	var body map[string]any
	if r.Method == "POST" || r.Method == "PATCH" {
		raw := map[string]any{}
		if r.ContentLength > 0 {
			dec := json.NewDecoder(r.Body)
			dec.UseNumber()
			if err := dec.Decode(&raw); err != nil {
				writeValidation(rw, []verr{{Type: "json_invalid", Loc: []any{"body", 0}, Msg: "JSON decode error", Input: map[string]any{}}})
				return
			}
		}
		body = raw
		// A body these routes declare with Body(...) is required: none at
		// all is a 422, while {} is a body (§C.3).
		switch rt {
		case routeFlowsCreate, routeDeploymentsCreate, routeCreateFlowRun, routeSetState:
			if r.ContentLength == 0 {
				writeValidation(rw, []verr{{Type: "missing", Loc: []any{"body"}, Msg: "Field required", Input: nil}})
				return
			}
		}
	}
	s.sync(tasks, now)
	s.advanceRuns(now)
	switch rt {
	case routeHealth:
		writeJSON(rw, http.StatusOK, true)
	case routeReady:
		writeJSON(rw, http.StatusOK, map[string]any{"message": "OK"})
	case routeHello:
		writeJSON(rw, http.StatusOK, "👋")
	case routeVersion:
		writeJSON(rw, http.StatusOK, "3.8.4")
	case routePoolsCreate:
		s.createPool(rw, body, now)
	case routePoolsFilter, routePoolsCount:
		s.filterPools(rw, body, now, rt == routePoolsCount)
	case routePool:
		s.pool(rw, r.Method, args[0], body, now)
	case routeWorkers:
		s.filterWorkers(rw, args[0], body, now)
	case routeHeartbeat:
		s.heartbeat(rw, args[0], body, now)
	case routeWorker:
		s.deleteWorker(rw, args[0], args[1])
	case routeFlowsCreate:
		s.createFlow(rw, body, now)
	case routeFlowByName:
		s.readFlowByName(rw, args[0])
	case routeDeploymentsCreate:
		s.createDeployment(rw, body, now)
	case routeDeployment:
		s.deploymentRoute(rw, r.Method, args[0], now)
	case routeDeploymentByName:
		s.readDeploymentByName(rw, args[0], args[1], now)
	case routeCreateFlowRun:
		s.createFlowRun(rw, args[0], body, now)
	case routeFlowRun:
		s.flowRunRoute(rw, r.Method, args[0], now)
	case routeFlowRunsFilter:
		s.filterFlowRuns(rw, body, now)
	case routeSetState:
		s.setState(rw, args[0], body, now)
	case routeLogsFilter:
		s.filterLogs(rw, body)
	}
}

// ---- validation, in pydantic's error shape ---------------------------------

// verr is one ValidationError ({loc, msg, type, input}, schemas-core.json).
type verr struct {
	Type  string `json:"type"`
	Loc   []any  `json:"loc"`
	Msg   string `json:"msg"`
	Input any    `json:"input"`
}

// writeValidation answers 422 with HTTPValidationError {"detail": [...]}, the
// shape the OpenAPI in the reference declares for every 422.
func writeValidation(rw http.ResponseWriter, errs []verr) {
	writeJSON(rw, http.StatusUnprocessableEntity, map[string]any{"detail": errs})
}

// invalid answers FastAPI's 422 when a body has errs, and says whether it
// did.
func invalid(rw http.ResponseWriter, errs []verr) bool {
	if len(errs) == 0 {
		return false
	}
	writeValidation(rw, errs)
	return true
}

// pageOf starts a filter route: the body's 422, else its offset and limit
// (limitOf); ok is false when it has answered.
func pageOf(rw http.ResponseWriter, errs []verr, body map[string]any) (offset, limit int, ok bool) {
	if invalid(rw, errs) {
		return 0, 0, false
	}
	return limitOf(rw, body)
}

// target starts a route that acts on one item: the body's 422 (errs), else
// the item's 404; it returns the item, or nil once it has answered.
func target[T any](rw http.ResponseWriter, errs []verr, v *T, what string) *T {
	if invalid(rw, errs) {
		return nil
	}
	return found(rw, v, what)
}

// found answers Prefect's 404 {"detail": "<what> not found"} when v is nil,
// and returns v.
func found[T any](rw http.ResponseWriter, v *T, what string) *T {
	if v == nil {
		writeJSON(rw, http.StatusNotFound, detail(what+" not found"))
	}
	return v
}

// schema is the subset of JSON Schema the request bodies need.
type schema struct {
	kind   string // "object", "string", "int", "bool", "datetime", "any", "enum", "list"
	props  map[string]*schema
	strict bool // additionalProperties: false
	enum   []string
	items  *schema
	null   bool // accepts null
	min    *int64
	re     *regexp.Regexp
	// required are the object's fields without a default: a body without
	// one is pydantic's "missing" error, after the others.
	required []string
}

func obj(strict bool, props map[string]*schema) *schema {
	return &schema{kind: "object", props: props, strict: strict, null: true}
}

func requires(sc *schema, fields ...string) *schema {
	sc.required = fields
	return sc
}

var (
	zero             = int64(0)
	poolNameRe       = regexp.MustCompile(`^[^/%&><]+$`)
	workerStatusEnum = &schema{kind: "enum", enum: []string{"ONLINE", "OFFLINE"}}
	anyObject        = &schema{kind: "any"}

	// Body_read_workers_work_pools__work_pool_name__workers_filter_post and
	// WorkerFilter (additionalProperties: false), schemas-core.json.
	workersFilterBody = obj(false, map[string]*schema{
		"workers": obj(true, map[string]*schema{
			"operator": {kind: "enum", enum: []string{"and_", "or_"}},
			"last_heartbeat_time": obj(true, map[string]*schema{
				"before_": {kind: "datetime", null: true},
				"after_":  {kind: "datetime", null: true},
			}),
			"status": obj(true, map[string]*schema{
				"any_":     {kind: "list", items: workerStatusEnum, null: true},
				"not_any_": {kind: "list", items: workerStatusEnum, null: true},
			}),
		}),
		"offset": {kind: "int", min: &zero},
		"limit":  {kind: "int"},
	})
	idsFilter   = obj(true, map[string]*schema{"any_": {kind: "list", items: &schema{kind: "string"}, null: true}})
	poolsFilter = obj(false, map[string]*schema{
		"work_pools": obj(true, map[string]*schema{
			"operator": {kind: "enum", enum: []string{"and_", "or_"}},
			"id":       idsFilter, "name": idsFilter, "type": idsFilter,
		}),
		"offset": {kind: "int", min: &zero},
		"limit":  {kind: "int"},
	})
	// WorkPoolCreate (additionalProperties: false; name required).
	poolCreate = requires(obj(true, map[string]*schema{
		"name":                  {kind: "string", re: poolNameRe},
		"description":           {kind: "string", null: true},
		"type":                  {kind: "string"},
		"base_job_template":     anyObject,
		"is_paused":             {kind: "bool"},
		"concurrency_limit":     {kind: "int", min: &zero, null: true},
		"storage_configuration": anyObject,
	}), "name")
	// WorkPoolUpdate (additionalProperties: false).
	poolUpdate = obj(true, map[string]*schema{
		"description":           {kind: "string", null: true},
		"is_paused":             {kind: "bool", null: true},
		"base_job_template":     {kind: "any", null: true},
		"concurrency_limit":     {kind: "int", min: &zero, null: true},
		"storage_configuration": {kind: "any", null: true},
	})
	// Body_worker_heartbeat_work_pools__work_pool_name__workers_heartbeat_post
	// (name required).
	heartbeatBody = requires(obj(false, map[string]*schema{
		"name":                       {kind: "string"},
		"heartbeat_interval_seconds": {kind: "int", null: true},
		"metadata":                   {kind: "any", null: true},
		"return_id":                  {kind: "bool"},
	}), "name")
)

// validate checks v against sc, collecting pydantic-style errors.
func validate(sc *schema, v any, loc []any) []verr {
	at := func(t, msg string) []verr {
		return []verr{{Type: t, Loc: append([]any(nil), loc...), Msg: msg, Input: v}}
	}
	if v == nil {
		if sc.null || sc.kind == "any" {
			return nil
		}
		return at(sc.kind+"_type", "Input should be a valid "+sc.kind)
	}
	switch sc.kind {
	case "any":
		return nil
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return at("model_type", "Input should be a valid dictionary or object to extract fields from")
		}
		var errs []verr
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, known := sc.props[k]
			if !known {
				if sc.strict {
					errs = append(errs, verr{Type: "extra_forbidden", Loc: append(append([]any(nil), loc...), k), Msg: "Extra inputs are not permitted", Input: m[k]})
				}
				continue
			}
			errs = append(errs, validate(p, m[k], append(append([]any(nil), loc...), k))...)
		}
		for _, k := range sc.required {
			if _, ok := m[k]; !ok {
				errs = append(errs, verr{Type: "missing", Loc: append(append([]any(nil), loc...), k), Msg: "Field required", Input: m})
			}
		}
		return errs
	case "string":
		s, ok := v.(string)
		if !ok {
			return at("string_type", "Input should be a valid string")
		}
		if sc.re != nil && !sc.re.MatchString(s) {
			return at("string_pattern_mismatch", "String should match pattern '"+sc.re.String()+"'")
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			return at("bool_type", "Input should be a valid boolean")
		}
	case "int":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			return at("int_type", "Input should be a valid integer")
		}
		if sc.min != nil && i < *sc.min {
			return at("greater_than_equal", "Input should be greater than or equal to 0")
		}
	case "datetime":
		s, ok := v.(string)
		if !ok {
			return at("datetime_type", "Input should be a valid datetime")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return at("datetime_from_date_parsing", "Input should be a valid datetime or date, invalid character in date")
		}
	case "enum":
		s, _ := v.(string)
		for _, e := range sc.enum {
			if s == e {
				return nil
			}
		}
		return at("enum", "Input should be '"+strings.Join(sc.enum, "' or '")+"'")
	case "list":
		l, ok := v.([]any)
		if !ok {
			return at("list_type", "Input should be a valid list")
		}
		var errs []verr
		for i, it := range l {
			errs = append(errs, validate(sc.items, it, append(append([]any(nil), loc...), i))...)
		}
		return errs
	}
	return nil
}

// limitOf applies Prefect's limit dependency: default 200, more is a 422 with
// a string detail (api/dependencies.py, ref §1.1).
func limitOf(rw http.ResponseWriter, body map[string]any) (offset, limit int, ok bool) {
	limit = 200
	if n, has := body["limit"].(json.Number); has {
		l, _ := n.Int64()
		if l > 200 {
			writeJSON(rw, http.StatusUnprocessableEntity, detail("Invalid limit: must be less than or equal to 200."))
			return 0, 0, false
		}
		if l >= 0 {
			limit = int(l)
		}
	}
	if n, has := body["offset"].(json.Number); has {
		o, _ := n.Int64()
		offset = int(o)
	}
	return offset, limit, true
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func sub(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func strList(m map[string]any, k string) ([]string, bool) {
	l, ok := m[k].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out, true
}

func timeOf(m map[string]any, k string) (time.Time, bool) {
	s, ok := m[k].(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
