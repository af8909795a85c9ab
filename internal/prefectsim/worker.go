package prefectsim

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
)

// The Prefect worker inside a simulated ECS task: who it is (from its
// command, as `prefect worker start` reads its arguments), when its syncs
// with the API succeed, when it gives up, and what its health endpoint and
// a health-check command asking the API would answer. The rules are
// docs/research/prefect-flow-runs.md §E (source: src/prefect/workers/base.py
// at 3.8.4.dev6, "base" below):
//   - the worker syncs with the API at setup and then every heartbeat
//     interval; a sync that succeeds upserts its row (pool, name) ONLINE
//     (§E.2);
//   - a 4xx at setup (a wrong key) is fatal: the process exits (base:122-126);
//   - transient failures (no route, a Prefect outage) are swallowed, but
//     after 4×3 consecutive failed syncs the sync loop raises "Service
//     exceeded error threshold." and the worker exits (base:858-865, §E.1);
//   - /health answers 200 while the last poll is at most 300 s old
//     (PREFECT_WORKER_QUERY_SECONDS*30); until the first successful sync the
//     unsynced poll loop keeps refreshing that time without any API contact,
//     so since 3.8.1 /health is 200 for a worker that never reached Prefect
//     (base:1305-1312, §E.1). Only `--with-healthcheck` starts the server.

// workerGiveUp is how many consecutive failed syncs end the worker.
const workerGiveUp = 12

// pollStaleAfter is when /health turns 503 after the last successful poll.
const pollStaleAfter = 300 * time.Second

// workerSpec is a worker as its container starts it.
type workerSpec struct {
	Pool, Name  string
	Queues      []string
	Healthcheck bool
	Files       map[string]string // files the command wrote
	APIURL      string
	Key, Auth   string // PREFECT_API_KEY, PREFECT_API_AUTH_STRING (env or secret)
}

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

// parseWorker reads a task's container as a Prefect worker. A container
// without a command (a task source that gives none) is a worker when its
// environment names a pool, named by the identity contract.
func (s *Server) parseWorker(t Task) (workerSpec, bool) {
	spec := workerSpec{APIURL: t.Env[envAPIURL], Key: firstOf(t.Secrets[envKey], t.Env[envKey]),
		Auth: firstOf(t.Secrets[envAuth], t.Env[envAuth]), Files: map[string]string{}}
	env := map[string]string{}
	for k, v := range t.Env {
		env[k] = v
	}
	for k, v := range t.Secrets {
		env[k] = v
	}
	if len(t.Command) == 0 {
		if t.Env[envPool] == "" {
			return spec, false
		}
		spec.Pool, spec.Healthcheck = t.Env[envPool], true
		spec.Name = t.Env[envPrefix] + "-" + t.Hostname
		if t.Env[envPrefix] == "" {
			spec.Name = "ECSWorker " + s.uuid("task/"+t.ARN) // Prefect's default name (ref §4.2)
		}
		return spec, true
	}
	sc := runScript(t.Command, env, t.Hostname, t.ARN)
	argv := sc.argv
	for len(argv) > 0 && !strings.HasSuffix(argv[0], "prefect") {
		argv = argv[1:]
	}
	if len(argv) < 3 || argv[1] != "worker" || argv[2] != "start" {
		return spec, false
	}
	spec.Files = sc.files
	for i := 3; i < len(argv); i++ {
		flag, value, hasValue := strings.Cut(argv[i], "=")
		next := func() string {
			if hasValue {
				return value
			}
			if i+1 < len(argv) {
				i++
				return argv[i]
			}
			return ""
		}
		switch flag {
		case "--pool", "-p":
			spec.Pool = next()
		case "--name", "-n":
			spec.Name = next()
		case "--work-queue", "-q":
			spec.Queues = append(spec.Queues, next())
		case "--type", "-t", "--limit", "-l", "--prefetch-seconds":
			next()
		case "--with-healthcheck":
			spec.Healthcheck = true
		}
	}
	if spec.Name == "" {
		spec.Name = "ECSWorker " + s.uuid("task/"+t.ARN)
	}
	return spec, spec.Pool != ""
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// servesURL says whether apiURL is this server (Cloud or self-hosted style).
func (s *Server) servesURL(apiURL string) bool {
	api := strings.TrimRight(apiURL, "/")
	return api == s.URL() || api == s.SelfHostedURL()
}

// authOK says whether the worker's credentials are accepted, the way its
// client sends them: the auth string as Basic if set, else the key as
// Bearer (src/prefect/client/orchestration/__init__.py:353-362, §F).
// Callers hold s.mu.
func (s *Server) authOK(spec workerSpec) bool {
	api := strings.TrimRight(spec.APIURL, "/")
	if api == s.URL() {
		return spec.Auth == "" && s.keys[spec.Key]
	}
	if s.authString == "" {
		return true
	}
	return spec.Auth == s.authString
}

// workerLife is a worker process's syncs over time.
type workerLife struct {
	s        *Server
	spec     workerSpec
	start    time.Time // the container started
	netOK    bool      // the task's network reaches the API's host
	served   bool      // the API URL is this server
	silent   bool      // ImageBehavior.NoHeartbeat: the image never gets there
	authOK   bool
	end      time.Time // the container stopped (zero while running)
	interval time.Duration
	first    time.Time // first sync attempt
}

// life builds a worker's life. Callers hold s.mu.
func (s *Server) life(spec workerSpec, start time.Time, netOK, silent bool, end time.Time) *workerLife {
	return &workerLife{s: s, spec: spec, start: start, netOK: netOK, served: s.servesURL(spec.APIURL), silent: silent,
		authOK: s.authOK(spec), end: end, interval: s.timings.HeartbeatInterval, first: start.Add(s.timings.FirstHeartbeatAfter)}
}

// reachable: a sync at t gets an HTTP answer. Callers hold s.mu.
func (l *workerLife) reachable(t time.Time) bool {
	return l.netOK && l.served && !l.silent && !l.s.outageAt(t)
}

// ok: a sync at t succeeds.
func (l *workerLife) ok(t time.Time) bool { return l.reachable(t) && l.authOK }

// exit is when the process ends by itself (ok false: it does not), judged
// for the syncs up to horizon.
func (l *workerLife) exit(horizon time.Time) (time.Time, bool) {
	if l.reachable(l.first) && !l.authOK {
		return l.first, true // 401 at setup is fatal
	}
	if l.netOK && l.served && !l.silent && !l.s.hasOutages() {
		return time.Time{}, false
	}
	fails := 0
	for at := l.first; !at.After(horizon); at = at.Add(l.interval) {
		if !l.end.IsZero() && at.After(l.end) {
			return time.Time{}, false
		}
		if l.ok(at) {
			fails = 0
			continue
		}
		if fails++; fails >= workerGiveUp {
			return at, true
		}
	}
	return time.Time{}, false
}

// until is when the process is gone, as of now: stopped, exited, or still
// running (now).
func (l *workerLife) until(now time.Time) time.Time {
	end := now
	if !l.end.IsZero() && l.end.Before(end) {
		end = l.end
	}
	if at, ok := l.exit(end); ok && at.Before(end) {
		end = at
	}
	return end
}

// syncs returns the first and last successful sync at or before now.
func (l *workerLife) syncs(now time.Time) (first, last time.Time, any bool) {
	end := l.until(now)
	if l.first.After(end) {
		return
	}
	if l.netOK && l.served && !l.silent && l.authOK && !l.s.hasOutages() {
		return l.first, l.first.Add(end.Sub(l.first).Truncate(l.interval)), true
	}
	for at := l.first; !at.After(end); at = at.Add(l.interval) {
		if l.ok(at) {
			if !any {
				first, any = at, true
			}
			last = at
		}
	}
	return
}

// localHealth is what GET localhost:8080/health answers at t.
func (l *workerLife) localHealth(t time.Time) bool {
	if !l.spec.Healthcheck || t.Before(l.first) || !l.until(t).Equal(t) {
		return false // no server, not up yet, or the process is gone
	}
	_, last, synced := l.syncs(t)
	return !synced || t.Sub(last) <= pollStaleAfter
}

// online says whether the API lists this worker ONLINE at t: its last
// heartbeat is younger than 3 intervals (WorkerResponse, ref §1.4).
func (l *workerLife) online(t time.Time) bool {
	_, last, any := l.syncs(t)
	return any && t.Sub(last) < inactivityMultiple*l.interval
}

// workerProcess is the awssim.ContainerProcess of a worker's container.
type workerProcess struct {
	s       *Server
	spec    workerSpec
	start   time.Time
	reach   func(awssim.Destination) (bool, string)
	silent  bool
	stopped time.Time
	// markers are the files a health check created (§E.3's
	// /tmp/prefect-registered), with when.
	markers map[string]time.Time
	// firstSeen is the heartbeat a check that waits for a second one saw
	// first (zero until one saw the worker ONLINE).
	firstSeen time.Time
}

func (p *workerProcess) life() *workerLife {
	netOK, _ := p.reach(awssim.URLDestination(p.spec.APIURL))
	return p.s.life(p.spec, p.start, netOK, p.silent, p.stopped)
}

// Exit implements awssim.ContainerProcess.
func (p *workerProcess) Exit(now time.Time) (time.Time, int32, bool) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	at, ok := p.life().exit(now.Add(workerGiveUp * p.s.timings.HeartbeatInterval))
	return at, 1, ok
}

// Stopped implements awssim.ContainerProcess.
func (p *workerProcess) Stopped(at time.Time) { p.stopped = at }

var (
	markerExistsRe = regexp.MustCompile(`os\.path\.exists\(['"]([^'"]+)['"]\)`)
	nameFileRe     = regexp.MustCompile(`open\(['"]([^'"]+)['"]\)\.read\(\)`)
	markerWriteRe  = regexp.MustCompile(`open\(['"]([^'"]+)['"],\s*['"]w['"]\)`)
)

// Probe implements awssim.ContainerProcess: the health-check command, read
// for what it asks (§E.3). A command that fetches localhost:8080/health
// needs the worker's health endpoint to answer 200; one that posts to the
// API's workers/filter needs this worker's own name (the file the container
// command wrote) ONLINE in the pool, asked over the container's network
// with its credentials, unless a marker file an earlier check wrote says it
// already was. A command that also reads the row's last_heartbeat_time
// (deploybot's, internal/stack: it saves the first one it sees and passes
// when the row shows another) passes only once the worker has heartbeated
// again since the check that first saw it. Other commands are judged as a
// shell would.
func (p *workerProcess) Probe(at time.Time, command []string) bool {
	cmd := strings.Join(command, " ")
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	l := p.life()
	asksHealth := strings.Contains(cmd, "localhost:8080/health") || strings.Contains(cmd, "127.0.0.1:8080/health")
	asksAPI := strings.Contains(cmd, "/workers/filter")
	if !asksHealth && !asksAPI {
		return awssimPlainProbe(command)
	}
	if asksHealth && !l.localHealth(at) {
		return false
	}
	if !asksAPI {
		return true
	}
	if m := markerExistsRe.FindStringSubmatch(cmd); m != nil {
		if _, ok := p.markers[m[1]]; ok {
			return true
		}
	}
	name := p.spec.Name
	if m := nameFileRe.FindStringSubmatch(cmd); m != nil {
		written, ok := p.spec.Files[m[1]]
		if !ok {
			return false // the file the check reads was never written
		}
		name = strings.TrimSpace(written)
	}
	if !l.reachable(at) || !l.authOK || name != p.spec.Name || !l.online(at) {
		return false
	}
	if strings.Contains(cmd, "last_heartbeat_time") {
		_, last, _ := l.syncs(at)
		if p.firstSeen.IsZero() {
			p.firstSeen = last
			return false
		}
		if !last.After(p.firstSeen) {
			return false
		}
	}
	if m := markerWriteRe.FindStringSubmatch(cmd); m != nil {
		p.markers[m[1]] = at
	}
	return true
}

// awssimPlainProbe judges a command no program answers: it passes unless it
// plainly fails.
func awssimPlainProbe(command []string) bool {
	script := strings.TrimSpace(strings.Join(command, " "))
	script = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(script, "CMD-SHELL"), "CMD"))
	return script != "exit 1" && script != "false" && script != "/bin/false"
}

// runtime is the Prefect simulator's awssim.ContainerRuntime: it runs the
// workers whose API is this server.
type runtime struct{ s *Server }

// Start implements awssim.ContainerRuntime.
func (r runtime) Start(c awssim.ContainerStart) awssim.ContainerProcess {
	s := r.s
	if isFlowRunContainer(c) {
		return s.startFlowRun(c)
	}
	spec, ok := s.parseWorker(Task{ARN: c.TaskARN, Hostname: c.Hostname, Env: c.Env, Secrets: c.Secrets, Command: c.Command})
	if !ok || !s.servesURL(spec.APIURL) {
		return nil
	}
	return &workerProcess{s: s, spec: spec, start: c.StartedAt, reach: c.Reach, silent: c.Behavior.NoHeartbeat || c.Behavior.PullFails,
		markers: map[string]time.Time{}}
}

// hostOf is the host[:port] of a URL.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}
