package prefectsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// How the server judges worker rows (ref §1.4).
const (
	// defaultHeartbeatInterval is what the server assumes for a worker that
	// declared no heartbeat_interval_seconds (PREFECT_WORKER_HEARTBEAT_SECONDS'
	// default).
	defaultHeartbeatInterval = 30 * time.Second
	// inactivityMultiple: ONLINE while the last heartbeat is younger than
	// 3 intervals (WorkerResponse.model_validate, ref §1.4).
	inactivityMultiple = 3
)

type pool struct {
	id, name, typ string
	description   *string
	paused        bool
	concurrency   *int64
	baseTemplate  map[string]any
	created       time.Time
	updated       time.Time
	queueID       string
	queues        map[string]string // name → id; "default" is queueID
	workers       map[string]*worker
	// deleted remembers when a worker row was deleted, so heartbeats from
	// before that instant do not bring it back.
	deleted map[string]time.Time
}

type worker struct {
	id       string
	name     string
	created  time.Time
	lastHB   time.Time
	interval int
}

// status is decided at read time as Prefect's WorkerResponse does: ONLINE if
// the last heartbeat is newer than now - interval*3 (ref §1.4).
func (w *worker) status(now time.Time) string {
	iv := time.Duration(w.interval) * time.Second
	if iv <= 0 {
		iv = defaultHeartbeatInterval
	}
	if w.lastHB.After(now.Add(-inactivityMultiple * iv)) {
		return "ONLINE"
	}
	return "OFFLINE"
}

func (p *pool) sortedWorkers() []*worker {
	ws := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	// ordered by last_heartbeat_time DESC (models/workers.py:953, ref §1.1)
	sort.Slice(ws, func(i, j int) bool {
		if !ws[i].lastHB.Equal(ws[j].lastHB) {
			return ws[i].lastHB.After(ws[j].lastHB)
		}
		return ws[i].name < ws[j].name
	})
	return ws
}

// status: PAUSED when paused; READY while any worker is ONLINE, NOT_READY
// otherwise (heartbeats set READY, the Foreman sets NOT_READY, ref §1.3);
// prefect-agent pools have none.
func (p *pool) status(now time.Time) *string {
	if p.typ == "prefect-agent" {
		return nil
	}
	st := "NOT_READY"
	switch {
	case p.paused:
		st = "PAUSED"
	default:
		for _, w := range p.workers {
			if w.status(now) == "ONLINE" {
				st = "READY"
				break
			}
		}
	}
	return &st
}

func (s *Server) newPool(name, typ string, now time.Time) *pool {
	p := &pool{id: s.newID("pool"), name: name, typ: typ, created: now, updated: now, queueID: s.newID("queue"),
		baseTemplate: map[string]any{}, workers: map[string]*worker{}, deleted: map[string]time.Time{}}
	p.queues = map[string]string{"default": p.queueID}
	s.pools[name] = p
	return p
}

// queue returns the id of a queue of the pool, creating it when missing
// (create_queue_if_not_found, §C.2, §C.3).
func (p *pool) queue(s *Server, name string) string {
	if name == "" {
		name = "default"
	}
	if id, ok := p.queues[name]; ok {
		return id
	}
	id := s.newID("queue")
	p.queues[name] = id
	return id
}

func (p *pool) json(now time.Time) map[string]any {
	var conc any
	if p.concurrency != nil {
		conc = *p.concurrency
	}
	var desc any
	if p.description != nil {
		desc = *p.description
	}
	var st any
	if s := p.status(now); s != nil {
		st = *s
	}
	return map[string]any{
		"id": p.id, "created": ts(p.created), "updated": ts(p.updated), "name": p.name,
		"description": desc, "type": p.typ, "base_job_template": p.baseTemplate, "is_paused": p.paused,
		"concurrency_limit": conc, "status": st, "default_queue_id": p.queueID,
		"storage_configuration": map[string]any{"bundle_upload_step": nil, "bundle_execution_step": nil, "default_result_storage_block_id": nil},
		"active_slots":          nil,
	}
}

// json is the row as the server shows it; skew is how far the server's
// clock is from the world's (WithClockSkew): the times it stamped are in
// its own clock.
func (w *worker) json(p *pool, now time.Time, skew time.Duration) map[string]any {
	return map[string]any{
		"id": w.id, "created": ts(w.created.Add(skew)), "updated": ts(w.lastHB.Add(skew)), "name": w.name, "work_pool_id": p.id,
		"last_heartbeat_time": ts(w.lastHB.Add(skew)), "heartbeat_interval_seconds": w.interval, "status": w.status(now),
	}
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func poolNotFound(rw http.ResponseWriter, name string) {
	writeJSON(rw, http.StatusNotFound, detail(fmt.Sprintf("Work pool %q not found.", name)))
}

// createPool is POST /work_pools/ (api/workers.py:460-513, ref §2.3).
func (s *Server) createPool(rw http.ResponseWriter, body map[string]any, now time.Time) {
	if invalid(rw, validate(poolCreate, body, []any{"body"})) {
		return
	}
	name := str(body, "name")
	typ := "prefect-agent" // WorkPoolCreate's default (ref §2.3)
	if t, ok := body["type"].(string); ok {
		typ = t
	}
	if strings.HasPrefix(strings.ToLower(name), "prefect") {
		writeJSON(rw, http.StatusForbidden, detail("Work pools starting with 'Prefect' are reserved for internal use."))
		return
	}
	if !s.hybridOK && typ != "prefect-agent" && !strings.HasSuffix(typ, ":push") && !strings.HasSuffix(typ, ":managed") {
		writeJSON(rw, http.StatusForbidden, detail("Your current plan does not support hybrid work pools. Upgrade your plan to create this work pool."))
		return
	}
	if s.pools[name] != nil {
		writeJSON(rw, http.StatusConflict, detail("A work pool with this name already exists."))
		return
	}
	if t, ok := body["base_job_template"].(map[string]any); ok {
		// Created as given, with its defaults validated (api/workers.py:482,
		// validate_job_variable_defaults_for_work_pool; §A.4).
		if err := checkTemplateStructure(t); err != nil {
			writeValidation(rw, []verr{{Type: "value_error", Loc: []any{"body", "base_job_template"}, Msg: "Value error, " + err.Error(), Input: t}})
			return
		}
		if msg := validateJobVariables(t, false); msg != "" {
			writeJSON(rw, http.StatusUnprocessableEntity, detail("Validation failed for work pool's job variable defaults: "+msg))
			return
		}
	}
	p := s.newPool(name, typ, now)
	if b, ok := body["is_paused"].(bool); ok {
		p.paused = b
	}
	if d, ok := body["description"].(string); ok {
		p.description = &d
	}
	if t, ok := body["base_job_template"].(map[string]any); ok {
		p.baseTemplate = t
	}
	if n, ok := body["concurrency_limit"].(json.Number); ok {
		v, _ := n.Int64()
		p.concurrency = &v
	}
	writeJSON(rw, http.StatusCreated, p.json(now))
}

// filterPools is POST /work_pools/filter and /work_pools/count.
func (s *Server) filterPools(rw http.ResponseWriter, body map[string]any, now time.Time, count bool) {
	offset, limit, ok := pageOf(rw, validate(poolsFilter, body, []any{"body"}), body)
	if !ok {
		return
	}
	f := sub(body, "work_pools")
	names := make([]string, 0, len(s.pools))
	for n := range s.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []map[string]any
	for _, n := range names {
		p := s.pools[n]
		var results []bool
		for field, val := range map[string]string{"id": p.id, "name": p.name, "type": p.typ} {
			if vals, ok := strList(sub(f, field), "any_"); ok {
				results = append(results, contains(vals, val))
			}
		}
		if combine(str(f, "operator"), results) {
			out = append(out, p.json(now))
		}
	}
	if count {
		writeJSON(rw, http.StatusOK, len(out))
		return
	}
	writeJSON(rw, http.StatusOK, page(out, offset, limit))
}

func (s *Server) pool(rw http.ResponseWriter, method, name string, body map[string]any, now time.Time) {
	p := s.pools[name]
	if p == nil {
		poolNotFound(rw, name)
		return
	}
	switch method {
	case http.MethodGet:
		writeJSON(rw, http.StatusOK, p.json(now))
	case http.MethodPatch:
		if invalid(rw, validate(poolUpdate, body, []any{"body"})) {
			return
		}
		if b, ok := body["is_paused"].(bool); ok {
			p.paused = b
		}
		if d, ok := body["description"].(string); ok {
			p.description = &d
		}
		if t, ok := body["base_job_template"].(map[string]any); ok {
			// PATCH replaces the whole template and checks only its
			// structure (§A.4, api/workers.py:611-654).
			if err := checkTemplateStructure(t); err != nil {
				writeValidation(rw, []verr{{Type: "value_error", Loc: []any{"body", "base_job_template"}, Msg: "Value error, " + err.Error(), Input: t}})
				return
			}
			p.baseTemplate = t
		}
		p.updated = now
		rw.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		delete(s.pools, name)
		rw.WriteHeader(http.StatusNoContent)
	}
}

// filterWorkers is POST /work_pools/{name}/workers/filter (ref §1.1).
func (s *Server) filterWorkers(rw http.ResponseWriter, name string, body map[string]any, now time.Time) {
	offset, limit, ok := pageOf(rw, validate(workersFilterBody, body, []any{"body"}), body)
	if !ok {
		return
	}
	p := s.pools[name]
	if p == nil {
		poolNotFound(rw, name)
		return
	}
	f := sub(body, "workers")
	var out []map[string]any
	for _, w := range p.sortedWorkers() {
		var results []bool
		if hb := sub(f, "last_heartbeat_time"); hb != nil {
			in := true
			// the bounds are in the server's clock
			if t, ok := timeOf(hb, "before_"); ok {
				in = in && !w.lastHB.After(t.Add(-s.skew)) // "at or before"
			}
			if t, ok := timeOf(hb, "after_"); ok {
				in = in && !w.lastHB.Before(t.Add(-s.skew)) // "at or after"
			}
			results = append(results, in)
		}
		if st := sub(f, "status"); st != nil {
			in := true
			if vals, ok := strList(st, "any_"); ok {
				in = in && contains(vals, w.status(now))
			}
			if not, ok := strList(st, "not_any_"); ok {
				in = in && !contains(not, w.status(now))
			}
			results = append(results, in)
		}
		if combine(str(f, "operator"), results) {
			out = append(out, w.json(p, now, s.skew))
		}
	}
	writeJSON(rw, http.StatusOK, page(out, offset, limit))
}

// heartbeat is POST /work_pools/{name}/workers/heartbeat: 204, or 404 when the
// pool is missing (api/workers.py:1207-1238, ref §1.5).
func (s *Server) heartbeat(rw http.ResponseWriter, name string, body map[string]any, now time.Time) {
	if invalid(rw, validate(heartbeatBody, body, []any{"body"})) {
		return
	}
	p := s.pools[name]
	if p == nil {
		poolNotFound(rw, name)
		return
	}
	iv := 0
	if n, ok := body["heartbeat_interval_seconds"].(json.Number); ok {
		v, _ := n.Int64()
		iv = int(v)
	}
	s.upsert(p, str(body, "name"), now, now, iv)
	rw.WriteHeader(http.StatusNoContent)
}

// deleteWorker is DELETE /work_pools/{name}/workers/{worker}: 204 or 404
// "Worker not found." (api/workers.py:1265-1290, ref §1.4).
func (s *Server) deleteWorker(rw http.ResponseWriter, poolName, name string) {
	p := s.pools[poolName]
	if p == nil {
		poolNotFound(rw, poolName)
		return
	}
	w := p.workers[name]
	if w == nil {
		writeJSON(rw, http.StatusNotFound, detail("Worker not found."))
		return
	}
	delete(p.workers, name)
	p.deleted[name] = w.lastHB
	rw.WriteHeader(http.StatusNoContent)
}

// upsert records heartbeats from first to last (keyed on pool and name, as
// record_worker_heartbeat does; "created" is kept across upserts, ref §1.4).
func (s *Server) upsert(p *pool, name string, first, last time.Time, interval int) {
	if w := p.workers[name]; w != nil {
		if last.After(w.lastHB) {
			w.lastHB = last
		}
		if interval > 0 {
			w.interval = interval
		}
		return
	}
	if gone, ok := p.deleted[name]; ok {
		if !last.After(gone) {
			return // every heartbeat we know of predates the delete
		}
		// the row comes back with the first heartbeat after the delete
		for !first.After(gone) {
			first = first.Add(s.timings.HeartbeatInterval)
		}
		delete(p.deleted, name)
	}
	p.workers[name] = &worker{id: s.uuid("worker/" + p.id + "/" + name), name: name, created: first, lastHB: last, interval: interval}
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// combine applies a filter's operator to its criteria (no criteria: match).
func combine(op string, results []bool) bool {
	if len(results) == 0 {
		return true
	}
	if op == "or_" {
		for _, r := range results {
			if r {
				return true
			}
		}
		return false
	}
	for _, r := range results {
		if !r {
			return false
		}
	}
	return true
}

func page(items []map[string]any, offset, limit int) []map[string]any {
	out := []map[string]any{}
	if offset >= len(items) {
		return out
	}
	end := min(len(items), offset+limit)
	return append(out, items[offset:end]...)
}
