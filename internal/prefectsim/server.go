// Package prefectsim is a simulated Prefect API (Cloud and self-hosted styles)
// on an httptest server, for tests and `deploybot demo`. It follows the
// OpenAPI shapes in docs/research/prefect-openapi/ and the behaviour in
// docs/research/prefect-api.md (cited as "ref §N"), and rejects what
// Prefect rejects: unknown filter keys (422), limit > 200 (422), a missing or
// extra trailing slash (307), a wrong or missing key (401). Its workers come
// from the simulated AWS account: a running task of a healthy revision
// heartbeats into its work pool, a broken one never does.
package prefectsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
)

// Default Cloud account and workspace ids of a simulated server.
const (
	DefaultAccountID   = "6a1f3c2e-8d4b-4e7a-9c10-2b5d7e9f0a11"
	DefaultWorkspaceID = "0c9e8d7b-6a5f-4e3d-8c2b-1a0f9e8d7c62"
)

// Request is one request as the server saw it. It records the auth scheme,
// never the credential.
type Request struct {
	At     time.Time // simulated time
	Method string
	Path   string
	Status int
	Auth   string // "Bearer", "Basic", "" (none), or "multiple"
}

// Server is a simulated Prefect API. All state is guarded by mu; time is the
// clock's (the world's).
type Server struct {
	srv     *httptest.Server
	base    string // WithBaseURL; "" = the listener's URL
	clock   clock.Clock
	tasks   TaskSource
	timings Timings

	mu          sync.Mutex
	accountID   string
	workspaceID string
	keys        map[string]bool
	authString  string // self-hosted PREFECT_SERVER_API_AUTH_STRING; "" = no auth
	hybridOK    bool   // false models Cloud Hobby: no ecs pools (ref §2.1 Tier)
	pools       map[string]*pool
	flows       map[string]*flow       // by name
	deployments map[string]*deployment // by id
	runs        map[string]*flowRun    // by id
	logs        []*logEntry
	unexpected  []string
	faults      []fault
	rateLimit   int // per simulated minute; 0 = none
	log         []Request
	seq         int
	outages     []outage // oldest first; the last may still be open
	network     awssim.HostPlacement
	// world is the simulated account whose tasks run workers and flow
	// runs (nil without one); drv drives the workers (simworker.go);
	// procs are the flow-run containers' processes (flowrun.go).
	world *awssim.World
	drv   driver
	procs []*flowRunProcess
	// skew is how far the server's clock is from the world's (WithClockSkew).
	skew time.Duration
}

// outage is when the server answers nothing but 503 (to zero while open).
type outage struct{ from, to time.Time }

type fault struct {
	status     int
	retryAfter string
}

// Option configures a Server.
type Option func(*Server)

// Timings are how long the simulated workers take (one set per server, so
// that tests changing them can run in parallel).
type Timings struct {
	// HeartbeatInterval is how often a simulated worker heartbeats
	// (PREFECT_WORKER_HEARTBEAT_SECONDS' default, 30 s; ref §1.4).
	HeartbeatInterval time.Duration
	// FirstHeartbeatAfter is how long after its task starts a worker's first
	// heartbeat comes (process start, imports, first sync; ref §4.3).
	FirstHeartbeatAfter time.Duration
	// WorkerQueryInterval is how often a simulated worker polls its pool
	// for scheduled runs (PREFECT_WORKER_QUERY_SECONDS, 10 s;
	// settings/models/worker.py:40-50); the simulated workers act at these
	// ticks of the clock (simworker.go).
	WorkerQueryInterval time.Duration
	// WorkerPrefetch is how far ahead of their start a worker claims runs
	// (PREFECT_WORKER_PREFETCH_SECONDS, 10 s).
	WorkerPrefetch time.Duration
	// EngineStartup is how long a flow-run container takes from its start
	// to RUNNING: reading the run, the pull steps, importing the flow
	// (flowrun.go).
	EngineStartup time.Duration
	// FlowRunDuration is how long a simulated flow runs.
	FlowRunDuration time.Duration
	// APIConnectTimeout is how long a flow-run container that cannot reach
	// PREFECT_API_URL keeps trying before it exits 1
	// (PREFECT_API_REQUEST_TIMEOUT 60 s × 6 attempts plus backoff;
	// client/base.py:238-400).
	APIConnectTimeout time.Duration
}

// DefaultTimings are the timings of a server made without WithTimings.
func DefaultTimings() Timings {
	return Timings{HeartbeatInterval: 30 * time.Second, FirstHeartbeatAfter: 15 * time.Second,
		WorkerQueryInterval: 10 * time.Second, WorkerPrefetch: 10 * time.Second,
		EngineStartup: 8 * time.Second, FlowRunDuration: 2 * time.Second, APIConnectTimeout: 7 * time.Minute}
}

// WithTimings changes some of the server's timings, starting from
// DefaultTimings.
func WithTimings(edit func(*Timings)) Option { return func(s *Server) { edit(&s.timings) } }

// Timings returns the server's timings.
func (s *Server) Timings() Timings { return s.timings }

// WithBaseURL makes URL and SelfHostedURL start with base (e.g.
// "http://prefect.sim:4200") instead of the loopback listener's random
// port, for callers that send requests to Handler in process: the URLs,
// and the worker-name hashes and plans derived from them, are then the
// same on every run (golden files).
func WithBaseURL(base string) Option {
	return func(s *Server) { s.base = strings.TrimRight(base, "/") }
}

// WithClock sets the clock (default: the world's, or the real one without a world).
func WithClock(c clock.Clock) Option { return func(s *Server) { s.clock = c } }

// WithTaskSource sets where workers come from (default: the world's tasks).
func WithTaskSource(t TaskSource) Option { return func(s *Server) { s.tasks = t } }

// WithKey adds a valid API key.
func WithKey(key string) Option { return func(s *Server) { s.keys[key] = true } }

// WithAuthString makes the self-hosted endpoints require HTTP basic auth
// "user:pass" (PREFECT_SERVER_API_AUTH_STRING, ref §2.2).
func WithAuthString(userPass string) Option { return func(s *Server) { s.authString = userPass } }

// WithNetwork says where the server is, for tasks' networks (reach.go in
// awssim): by default on the internet, as Prefect Cloud is; a self-hosted
// server inside a VPC is awssim.HostPlacement{VPCs: []string{vpcID}}.
func WithNetwork(p awssim.HostPlacement) Option { return func(s *Server) { s.network = p } }

// WithClockSkew makes the server's clock run d ahead of the world's (behind
// for a negative d), as a self-hosted server without NTP may: the times of
// the worker rows it lists (created, last heartbeat) and its Date header
// are in its clock, and so are the bounds of a worker filter it is sent.
func WithClockSkew(d time.Duration) Option { return func(s *Server) { s.skew = d } }

// WithAccount sets the Cloud account and workspace ids.
func WithAccount(accountID, workspaceID string) Option {
	return func(s *Server) { s.accountID, s.workspaceID = accountID, workspaceID }
}

// New starts a simulated Prefect API whose workers come from w's tasks and
// whose time is w's clock. w may be nil when WithClock and WithTaskSource are
// given.
func New(w *awssim.World, opts ...Option) *Server {
	s := &Server{
		accountID:   DefaultAccountID,
		workspaceID: DefaultWorkspaceID,
		keys:        map[string]bool{},
		pools:       map[string]*pool{},
		flows:       map[string]*flow{},
		deployments: map[string]*deployment{},
		runs:        map[string]*flowRun{},
		hybridOK:    true,
		timings:     DefaultTimings(),
		network:     awssim.HostPlacement{Internet: true},
	}
	if w != nil {
		s.clock = w.Clock
		s.tasks = worldTasks(w)
		s.world = w
	}
	for _, o := range opts {
		o(s)
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.tasks == nil {
		s.tasks = noTasks{}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	if w != nil {
		w.PlaceHost(hostOf(s.srv.URL), s.network)
		w.AddContainerRuntime(runtime{s})
	}
	return s
}

// SetAvailable(false) starts an outage: every request is answered 503 and
// the workers' syncs fail, until SetAvailable(true).
func (s *Server) SetAvailable(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	open := len(s.outages) > 0 && s.outages[len(s.outages)-1].to.IsZero()
	switch {
	case !ok && !open:
		s.outages = append(s.outages, outage{from: now})
	case ok && open:
		s.outages[len(s.outages)-1].to = now
	}
}

// outageAt says whether the server was down at t. Callers hold s.mu.
func (s *Server) outageAt(t time.Time) bool {
	for _, o := range s.outages {
		if !t.Before(o.from) && (o.to.IsZero() || t.Before(o.to)) {
			return true
		}
	}
	return false
}

func (s *Server) hasOutages() bool { return len(s.outages) > 0 }

// URL is the Cloud-style workspace API URL: <server>/api/accounts/<a>/workspaces/<w>.
func (s *Server) URL() string {
	return s.baseURL() + "/api/accounts/" + s.accountID + "/workspaces/" + s.workspaceID
}

// SelfHostedURL is the self-hosted-style API URL: <server>/api.
func (s *Server) SelfHostedURL() string { return s.baseURL() + "/api" }

func (s *Server) baseURL() string {
	if s.base != "" {
		return s.base
	}
	return s.srv.URL
}

// Close shuts the server down. It closes the server's own listener and
// connections only: httptest.Server.Close would also close every idle
// connection of http.DefaultTransport, breaking requests that tests running
// in parallel are making to other servers on it ("http: CloseIdleConnections
// called").
func (s *Server) Close() { _ = s.srv.Config.Close() }

// Handler is the server's HTTP handler, for callers that serve requests in
// process instead of over the loopback listener (`deploybot demo` on a
// machine without any network).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// AddKey makes key a valid API key.
func (s *Server) AddKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = true
}

// RevokeKey makes key invalid (an expired or deleted key).
func (s *Server) RevokeKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// ValidKey says whether key is accepted.
func (s *Server) ValidKey(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key]
}

// SetHybridPoolsAllowed(false) models Prefect Cloud Hobby: creating an ecs
// pool answers 403 "plan does not support" (ref §2.1 Tier).
func (s *Server) SetHybridPoolsAllowed(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hybridOK = ok
}

// AddWorkPool creates a pool as if by `prefect work-pool create`.
func (s *Server) AddWorkPool(name, typ string, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.newPool(name, typ, s.clock.Now())
	p.paused = paused
}

// SetPaused pauses or resumes a pool.
func (s *Server) SetPaused(name string, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pools[name]; p != nil {
		p.paused = paused
		p.updated = s.clock.Now()
	}
}

// InjectFault makes the next n requests answer status (429 or 503 are the
// interesting ones) with the given Retry-After header value ("" for none):
// seconds ("7") or an HTTP date.
func (s *Server) InjectFault(status int, retryAfter string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter})
	}
}

// SetRateLimit enforces Prefect Cloud's per-minute request limit (ref §2.4;
// Hobby: 625) in fixed windows of simulated minutes: over it, 429 with
// Retry-After until the next window. 0 turns it off.
func (s *Server) SetRateLimit(perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = perMinute
}

// Unexpected returns the requests no route of the simulated API knows (or
// whose method it does not allow, or that Starlette would redirect for a
// toggled trailing slash): a test that sees any has called Prefect in a way
// deploybot should not.
func (s *Server) Unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unexpected...)
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// ResetRequests forgets the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// RequestsPerMinute counts requests per minute of simulated time (keys are
// the minutes, truncated).
func (s *Server) RequestsPerMinute() map[time.Time]int {
	out := map[time.Time]int{}
	for _, r := range s.Requests() {
		out[r.At.Truncate(time.Minute)]++
	}
	return out
}

// MaxRequestsPerMinute is the most requests in any sliding 60 s window of
// simulated time (stricter than fixed minutes).
func (s *Server) MaxRequestsPerMinute() int {
	log := s.Requests()
	sort.SliceStable(log, func(i, j int) bool { return log[i].At.Before(log[j].At) })
	best, j := 0, 0
	for i := range log {
		for log[i].At.Sub(log[j].At) >= time.Minute {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Worker is a worker row as the server holds it (for tests and the demo).
type Worker struct {
	Pool          string
	Name          string
	Status        string
	LastHeartbeat time.Time
	Created       time.Time
}

// Workers returns every worker row of a pool, with status as of now.
func (s *Server) Workers(poolName string) []Worker {
	tasks := s.tasks.Tasks()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sync(tasks, now)
	p := s.pools[poolName]
	if p == nil {
		return nil
	}
	var out []Worker
	for _, w := range p.sortedWorkers() {
		out = append(out, Worker{Pool: poolName, Name: w.name, Status: w.status(now), LastHeartbeat: w.lastHB, Created: w.created})
	}
	return out
}

// OnlineWorkers names the workers of a pool that are ONLINE now, in
// Workers' order.
func (s *Server) OnlineWorkers(pool string) []string {
	var out []string
	for _, w := range s.Workers(pool) {
		if w.Status == "ONLINE" {
			out = append(out, w.Name)
		}
	}
	return out
}

// WorkersOnlineAt lists the workers of pool the API would have listed
// ONLINE at an instant up to now, worked out from the world's tasks as
// their rows are (tasks.go, worker.go: a worker is ONLINE while its last
// successful sync is younger than 3 heartbeat intervals). Tests measure
// with it how long a pool had no worker during a deploy; a task that
// stopped more than ECS's retention ago is no longer known.
func (s *Server) WorkersOnlineAt(pool string, at time.Time) []string {
	tasks := s.tasks.Tasks()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, t := range tasks {
		if t.StartedAt.IsZero() || t.StartedAt.After(at) {
			continue
		}
		spec, ok := s.parseWorker(t)
		if !ok || spec.Pool != pool {
			continue
		}
		netOK := t.Internet
		if r, known := t.HostReach[hostOf(spec.APIURL)]; known {
			netOK = r
		}
		if s.life(spec, t.StartedAt, netOK, t.Behavior.NoHeartbeat || t.Behavior.PullFails, t.StoppedAt).online(at) {
			out = append(out, spec.Name)
		}
	}
	sort.Strings(out)
	return out
}

// PoolStatus returns a pool's status as of now ("" when it does not exist).
func (s *Server) PoolStatus(name string) string {
	tasks := s.tasks.Tasks()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sync(tasks, now)
	if p := s.pools[name]; p != nil {
		if st := p.status(now); st != nil {
			return *st
		}
	}
	return ""
}

// serve is the whole HTTP surface: faults and rate limit first (Cloud answers
// those at its edge), then auth, then routes.
func (s *Server) serve(rw http.ResponseWriter, r *http.Request) {
	// The world's tasks are read before the server's lock: the world calls
	// the server's runtime with its own lock held (worker.go).
	tasks := s.tasks.Tasks()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	rec := &recorder{ResponseWriter: rw, status: http.StatusOK}
	// An origin server with a clock sends Date (RFC 9110 §6.6.1); uvicorn,
	// which serves Prefect, does by default. It is the server's own clock,
	// set ahead or behind with WithClockSkew.
	rec.Header().Set("Date", now.Add(s.skew).UTC().Format(http.TimeFormat))
	defer func() {
		s.log = append(s.log, Request{At: now, Method: r.Method, Path: r.URL.Path, Status: rec.status, Auth: authScheme(r)})
	}()
	if s.outageAt(now) {
		writeJSON(rec, http.StatusServiceUnavailable, detail("Service Unavailable"))
		return
	}
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		if f.retryAfter != "" {
			rec.Header().Set("Retry-After", f.retryAfter)
		}
		writeJSON(rec, f.status, detail(http.StatusText(f.status)))
		return
	}
	if s.rateLimit > 0 {
		minute := now.Truncate(time.Minute)
		n := 0
		for _, q := range s.log {
			if q.At.Truncate(time.Minute).Equal(minute) {
				n++
			}
		}
		if n >= s.rateLimit {
			wait := minute.Add(time.Minute).Sub(now)
			rec.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
			writeJSON(rec, http.StatusTooManyRequests, detail("Rate limit exceeded"))
			return
		}
	}

	path := r.URL.Path
	cloudBase := "/api/accounts/" + s.accountID + "/workspaces/" + s.workspaceID
	switch {
	case path == "/api/me" || path == "/api/me/":
		if !s.cloudAuth(rec, r) {
			return
		}
		if path == "/api/me" { // collection routes keep their slash (ref §2.1)
			redirect(rec, r, "/api/me/")
			return
		}
		if r.Method != http.MethodGet {
			writeJSON(rec, http.StatusMethodNotAllowed, detail("Method Not Allowed"))
			return
		}
		writeJSON(rec, http.StatusOK, map[string]any{"id": s.uuid("actor"), "handle": "deploybot-sim", "email": nil})
	case strings.HasPrefix(path, "/api/accounts/"):
		if !s.cloudAuth(rec, r) {
			return
		}
		rest, ok := strings.CutPrefix(path, cloudBase)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			writeJSON(rec, http.StatusNotFound, detail("Workspace not found"))
			return
		}
		s.route(rec, r, cloudBase, rest, now, tasks)
	case path == "/api" || strings.HasPrefix(path, "/api/"):
		rest := strings.TrimPrefix(path, "/api")
		// /health and /ready are exempt from basic auth (ref §1.6).
		if rest != "/health" && rest != "/ready" && !s.selfHostedAuth(rec, r) {
			return
		}
		s.route(rec, r, "/api", rest, now, tasks)
	default:
		writeJSON(rec, http.StatusNotFound, detail("Not Found"))
	}
}

// cloudAuth accepts exactly one Authorization header, "Bearer <valid key>";
// Cloud answers 401 "Invalid authentication credentials" otherwise (ref §1.6).
func (s *Server) cloudAuth(rw http.ResponseWriter, r *http.Request) bool {
	vals := r.Header.Values("Authorization")
	if len(vals) == 1 {
		if key, ok := strings.CutPrefix(vals[0], "Bearer "); ok && s.keys[key] {
			return true
		}
	}
	writeJSON(rw, http.StatusUnauthorized, detail("Invalid authentication credentials"))
	return false
}

// selfHostedAuth checks basic auth when the server has an auth string: the
// OSS server compares scheme "Basic" and the string, answering 401
// {"exception_message": "Unauthorized"} (ref §2.2). A Bearer key instead of the
// auth string is also a 401 (the docs' "API key wins" precedence, ref §2.2),
// and so are two Authorization headers.
func (s *Server) selfHostedAuth(rw http.ResponseWriter, r *http.Request) bool {
	if s.authString == "" {
		return true
	}
	vals := r.Header.Values("Authorization")
	if len(vals) == 1 {
		if tok, ok := strings.CutPrefix(vals[0], "Basic "); ok {
			if got, err := base64.StdEncoding.DecodeString(tok); err == nil && string(got) == s.authString {
				return true
			}
		}
	}
	writeJSON(rw, http.StatusUnauthorized, map[string]any{"exception_message": "Unauthorized"})
	return false
}

func authScheme(r *http.Request) string {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		return ""
	case len(vals) > 1:
		return "multiple"
	}
	scheme, _, _ := strings.Cut(vals[0], " ")
	return scheme
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

func detail(msg string) map[string]any { return map[string]any{"detail": msg} }

// redirect answers what Starlette's redirect_slashes answers: 307 to the
// same URL with the trailing slash toggled (ref §2.1 "unexpected 307").
func redirect(rw http.ResponseWriter, r *http.Request, path string) {
	u := *r.URL
	u.Path = path
	u.RawPath = ""
	u.Scheme, u.Host = "http", r.Host
	rw.Header().Set("Location", u.String())
	rw.WriteHeader(http.StatusTemporaryRedirect)
}

// uuid makes a deterministic UUID-shaped id from a seed.
func (s *Server) uuid(seed string) string {
	h := sha256.Sum256([]byte(seed))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

// newID returns a fresh deterministic id.
func (s *Server) newID(kind string) string {
	s.seq++
	return s.uuid(fmt.Sprintf("%s/%d", kind, s.seq))
}

// SetTaskSource replaces where workers come from.
func (s *Server) SetTaskSource(t TaskSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks = t
}
