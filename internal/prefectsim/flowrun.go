package prefectsim

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
)

// The program of a flow-run container: `prefect flow-run execute` with
// PREFECT__FLOW_RUN_ID in its environment (docs/research/prefect-flow-runs.md
// §D.1; src/prefect/cli/flow_run.py:746-783, Prefect ≥ 3.7). Its life is
// planned when ECS starts the container, from what the container has then:
//   - its network must reach PREFECT_API_URL, or the client's connect
//     timeouts and retries run out (PREFECT_API_REQUEST_TIMEOUT 60 s,
//     PREFECT_CLIENT_MAX_RETRIES 5; client/base.py:238-400) and it exits 1
//     after Timings.APIConnectTimeout, leaving the run PENDING;
//   - its credentials (PREFECT_API_KEY / PREFECT_API_AUTH_STRING, from
//     secrets or plaintext env, §A.6) must be accepted, or it exits 1 on the
//     401;
//   - a run already CANCELLING is marked CANCELLED "Flow run was cancelled
//     before execution started." (runner/_flow_run_executor.py:127-139);
//   - the deployment's pull steps run (pullsteps.go); a failure is CRASHED
//     "Flow run could not start: …";
//   - the entrypoint "path:function" must name a function in a file the
//     steps wrote, else the engine logs "Unexpected exception encountered
//     when trying to load flow" and exits 1, which the executor reports as
//     CRASHED "Process exited with status code: 1. Process exited with a
//     general error." (engine.py:160-176,
//     runner/_flow_run_executor.py:186-207,
//     _internal/infrastructure_exit_codes.py);
//   - the engine proposes RUNNING (a rejection ends the plan), logs
//     "Beginning flow run …", each print() of the function (as log lines
//     with log_prints=True), and ends COMPLETED, or FAILED "Flow run
//     encountered an exception: <Type>: <message>" when the function raises.
// Prefect-side effects (states, logs) are applied when the simulated API is
// next asked (applyProcesses), at their planned instants; what the
// container prints goes to stdout, which awslogs ships to CloudWatch.

// flowRunProcess is the awssim.ContainerProcess of a flow-run container.
type flowRunProcess struct {
	runID, taskARN string
	mu             sync.Mutex
	events         []procEvent
	next           int // events before next are applied or dropped
	output         []awssim.LogEvent
	exitAt         time.Time
	exitCode       int32
	stopped        time.Time
}

// procEvent is one planned effect on the run: a state proposal or a log
// line (state nil).
type procEvent struct {
	at    time.Time
	state *plannedState
	log   *logLine
	// cut: a state whose proposal is not accepted ends the plan.
	cut bool
}

type plannedState struct{ typ, name, message string }

type logLine struct {
	logger string
	level  int
	msg    string
}

// levelNames are the console handler's level names.
var levelNames = map[int]string{10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR"}

// planner builds a process's plan.
type planner struct {
	p       *flowRunProcess
	runName string
}

func (pl *planner) log(at time.Time, logger string, level int, msg string) {
	pl.p.events = append(pl.p.events, procEvent{at: at, log: &logLine{logger: logger, level: level, msg: msg}})
	pl.print(at, fmt.Sprintf("%s | %-7s | %s - %s", at.UTC().Format("15:04:05.000"), levelNames[level], consoleName(logger, pl.runName), msg))
}

func consoleName(logger, runName string) string {
	if strings.HasPrefix(logger, "prefect.flow_runs") {
		return "Flow run '" + runName + "'"
	}
	return logger
}

func (pl *planner) state(at time.Time, typ, name, message string, cut bool) {
	pl.p.events = append(pl.p.events, procEvent{at: at, state: &plannedState{typ: typ, name: name, message: message}, cut: cut})
}

func (pl *planner) print(at time.Time, line string) {
	pl.p.output = append(pl.p.output, awssim.LogEvent{At: at, Message: line})
}

func (pl *planner) exit(at time.Time, code int32) { pl.p.exitAt, pl.p.exitCode = at, code }

// isFlowRunContainer says whether a container runs `prefect flow-run
// execute` for a run (the worker's default command, §D.1).
func isFlowRunContainer(c awssim.ContainerStart) bool {
	if c.Env["PREFECT__FLOW_RUN_ID"] == "" {
		return false
	}
	cmd := strings.Join(c.Command, " ")
	return cmd == "" || strings.Contains(cmd, "prefect flow-run execute") || strings.Contains(cmd, "prefect.engine")
}

// startFlowRun plans a flow-run container's life. Called with the world's
// lock held (the runtime's Start); it takes s.mu.
func (s *Server) startFlowRun(c awssim.ContainerStart) awssim.ContainerProcess {
	apiURL := c.Env[envAPIURL]
	if !s.servesURL(apiURL) {
		return nil
	}
	spec := workerSpec{APIURL: apiURL, Key: firstOf(c.Secrets[envKey], c.Env[envKey]), Auth: firstOf(c.Secrets[envAuth], c.Env[envAuth])}
	netOK, _ := c.Reach(awssim.URLDestination(apiURL))
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &flowRunProcess{runID: c.Env["PREFECT__FLOW_RUN_ID"], taskARN: c.TaskARN}
	pl := &planner{p: p}
	t0 := c.StartedAt
	api := strings.TrimRight(apiURL, "/")
	switch {
	case !netOK || s.outageAt(t0):
		at := t0.Add(s.timings.APIConnectTimeout)
		pl.print(at, "httpx.ConnectTimeout: timed out")
		pl.print(at, fmt.Sprintf("prefect.exceptions.PrefectHTTPStatusError: could not reach %s/flow_runs/%s", api, p.runID))
		pl.exit(at, 1)
	case !s.authOK(spec):
		at := t0.Add(s.timings.EngineStartup / 4)
		pl.print(at, fmt.Sprintf("prefect.exceptions.PrefectHTTPStatusError: Client error '401 Unauthorized' for url '%s/flow_runs/%s'", api, p.runID))
		pl.exit(at, 1)
	case s.runs[p.runID] == nil:
		at := t0.Add(s.timings.EngineStartup / 4)
		pl.print(at, "prefect.exceptions.ObjectNotFound: None")
		pl.exit(at, 1)
	default:
		s.planRun(pl, c, t0)
	}
	s.procs = append(s.procs, p)
	return p
}

// planRun plans a run whose process reaches the API. Callers hold s.mu.
func (s *Server) planRun(pl *planner, c awssim.ContainerStart, t0 time.Time) {
	r := s.runs[pl.p.runID]
	pl.runName = r.name
	read := t0.Add(s.timings.EngineStartup / 4)
	// The executor's precheck (runner/_flow_run_executor.py:127-139) is
	// evaluated when applied: a "cancelled" event that applies only to a
	// CANCELLING run.
	pl.p.events = append(pl.p.events, procEvent{at: read, state: &plannedState{typ: "CANCELLED", message: "Flow run was cancelled before execution started."}})
	d := s.deployments[r.deploymentID]
	var steps []any
	entrypoint := ""
	if d != nil {
		steps, _ = d.fields["pull_steps"].([]any)
		entrypoint, _ = d.fields["entrypoint"].(string)
	}
	env := map[string]string{}
	for k, v := range c.Env {
		env[k] = v
	}
	for k, v := range c.Secrets {
		env[k] = v
	}
	stepsAt := t0.Add(s.timings.EngineStartup / 2)
	ws, err := runPullSteps(steps, env)
	if ws != nil {
		for _, line := range ws.stdout {
			pl.print(stepsAt, line)
		}
	}
	if err != nil {
		msg := "Flow run could not start: " + err.Error()
		pl.log(stepsAt, "prefect.flow_runs.runner", 40, fmt.Sprintf("Flow run '%s' could not start: %s", r.id, err.Error()))
		pl.state(stepsAt, "CRASHED", "", msg, true)
		pl.exit(stepsAt.Add(time.Second), 0)
		return
	}
	start := t0.Add(s.timings.EngineStartup)
	fn, ok := ws.loadFlow(entrypoint)
	if !ok {
		pl.log(start, "prefect.flow_runs", 40, "Unexpected exception encountered when trying to load flow")
		msg := "Process exited with status code: 1. Process exited with a general error."
		pl.log(start, "prefect.flow_runs.runner", 40, msg)
		pl.log(start, "prefect.flow_runs.runner", 20, "Check the flow run logs for an unhandled exception or assertion error.")
		pl.state(start, "CRASHED", "", msg, true)
		pl.exit(start.Add(time.Second), 0)
		return
	}
	flowName := fn.flowName
	if f := s.flowByID(r.flowID); f != nil && flowName == "" {
		flowName = f.name
	}
	pl.state(start, "RUNNING", "", "", true)
	pl.log(start, "prefect.flow_runs", 20, fmt.Sprintf("Beginning flow run '%s' for flow '%s'", r.name, flowName))
	at := start
	step := s.timings.FlowRunDuration / time.Duration(len(fn.prints)+1)
	for _, line := range fn.prints {
		at = at.Add(step)
		if fn.logPrints {
			pl.log(at, "prefect.flow_runs", 20, line)
		} else {
			pl.print(at, line)
		}
	}
	end := start.Add(s.timings.FlowRunDuration)
	if fn.raises != "" {
		pl.log(end, "prefect.flow_runs", 40, "Encountered exception during execution: "+fn.raises)
		pl.log(end, "prefect.flow_runs", 40, "Finished in state Failed('Flow run encountered an exception: "+fn.raises+"')")
		pl.state(end, "FAILED", "", "Flow run encountered an exception: "+fn.raises, false)
		pl.exit(end.Add(time.Second), 1)
		return
	}
	pl.log(end, "prefect.flow_runs", 20, "Finished in state Completed()")
	pl.state(end, "COMPLETED", "", "", false)
	pl.exit(end.Add(time.Second), 0)
}

// flowSource is what the simulation reads of a flow's Python source.
type flowSource struct {
	flowName  string
	logPrints bool
	prints    []string
	raises    string // "Type: message" when the function raises
}

var (
	flowDecoratorRe = regexp.MustCompile(`@flow\(([^)]*)\)`)
	flowNameArgRe   = regexp.MustCompile(`name\s*=\s*['"]([^'"]+)['"]`)
	printRe         = regexp.MustCompile(`^\s+print\(\s*(?:f?['"])(.*?)['"]\s*\)\s*$`)
	raiseRe         = regexp.MustCompile(`^\s+raise\s+(\w+)\(\s*(?:['"](.*?)['"])?\s*\)`)
)

// loadFlow finds an entrypoint "path:function" in the workspace.
func (ws *workspace) loadFlow(entrypoint string) (flowSource, bool) {
	file, fn, ok := strings.Cut(entrypoint, ":")
	if !ok || fn == "" {
		return flowSource{}, false
	}
	src, ok := ws.files[ws.join(file)]
	if !ok {
		return flowSource{}, false
	}
	lines := strings.Split(src, "\n")
	def := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "def "+fn+"(") || strings.HasPrefix(l, "async def "+fn+"(") {
			def = i
			break
		}
	}
	if def < 0 {
		return flowSource{}, false
	}
	var out flowSource
	for i := def - 1; i >= 0 && strings.HasPrefix(lines[i], "@"); i-- {
		if m := flowDecoratorRe.FindStringSubmatch(lines[i]); m != nil {
			if n := flowNameArgRe.FindStringSubmatch(m[1]); n != nil {
				out.flowName = n[1]
			}
			out.logPrints = strings.Contains(strings.ReplaceAll(m[1], " ", ""), "log_prints=True")
		}
	}
	if out.flowName == "" {
		out.flowName = strings.ReplaceAll(fn, "_", "-") // Flow's default name
	}
	for _, l := range lines[def+1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
			break
		}
		if m := printRe.FindStringSubmatch(l); m != nil {
			out.prints = append(out.prints, m[1])
		}
		if m := raiseRe.FindStringSubmatch(l); m != nil {
			out.raises = m[1] + ": " + m[2]
			break
		}
	}
	return out, true
}

// Exit implements awssim.ContainerProcess.
func (p *flowRunProcess) Exit(now time.Time) (time.Time, int32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitAt, p.exitCode, !p.exitAt.IsZero()
}

// Probe implements awssim.ContainerProcess: a flow-run container has no
// health check of its own (the worker's template gives none).
func (p *flowRunProcess) Probe(at time.Time, command []string) bool { return awssimPlainProbe(command) }

// Stopped implements awssim.ContainerProcess: nothing after at happens.
func (p *flowRunProcess) Stopped(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped.IsZero() || at.Before(p.stopped) {
		p.stopped = at
	}
}

// Output implements awssim.ContainerOutput.
func (p *flowRunProcess) Output(until time.Time) []awssim.LogEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []awssim.LogEvent
	for _, e := range p.output {
		if e.At.After(until) || (!p.stopped.IsZero() && !e.At.Before(p.stopped)) || (!p.exitAt.IsZero() && e.At.After(p.exitAt)) {
			break
		}
		out = append(out, e)
	}
	return out
}

// applyProcesses applies the flow-run processes' planned effects due by
// now, in time order. Callers hold s.mu.
func (s *Server) applyProcesses(now time.Time) {
	for {
		var best *flowRunProcess
		var bestAt time.Time
		for _, p := range s.procs {
			p.mu.Lock()
			for p.next < len(p.events) && !p.stopped.IsZero() && !p.events[p.next].at.Before(p.stopped) {
				p.next = len(p.events) // stopped: the rest never happens
			}
			if p.next < len(p.events) {
				if at := p.events[p.next].at; !at.After(now) && (best == nil || at.Before(bestAt)) {
					best, bestAt = p, at
				}
			}
			p.mu.Unlock()
		}
		if best == nil {
			return
		}
		best.mu.Lock()
		e := best.events[best.next]
		best.next++
		best.mu.Unlock()
		r := s.runs[best.runID]
		if r == nil {
			best.mu.Lock()
			best.next = len(best.events)
			best.mu.Unlock()
			continue
		}
		switch {
		case e.log != nil:
			s.addLog(r.id, e.log.logger, e.log.level, e.at, e.log.msg)
		case e.state.typ == "CANCELLED" && e.state.message == "Flow run was cancelled before execution started.":
			if r.state.typ == "CANCELLING" {
				s.setRunState(r, "CANCELLED", "", e.state.message, e.at)
				best.mu.Lock()
				best.next = len(best.events)
				best.mu.Unlock()
			}
		default:
			res := s.propose(r, e.state.typ, e.state.name, e.state.message, false, e.at)
			if res.status != "ACCEPT" && e.cut {
				best.mu.Lock()
				best.next = len(best.events)
				best.mu.Unlock()
			}
		}
	}
}
