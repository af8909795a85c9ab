package awssim

import (
	"strings"
	"time"
)

// ContainerRuntime runs what is inside a simulated container beyond what
// its image's ImageBehavior says. The simulated account knows containers,
// commands and health checks, not the programs in them; the Prefect
// simulator installs a runtime that knows Prefect's worker and flow-run
// processes (internal/prefectsim), so that whether a worker's health check
// passes, or a flow-run container exits, follows from what that process can
// do with the network and credentials it has.
//
// The world calls a runtime and its processes with World.Mu held, while it
// replays the ECS scheduler (possibly for instants before the clock's now,
// in order): they must not call the world's API or its locking methods.
type ContainerRuntime interface {
	// Start is called when a task's essential container starts. It returns
	// nil when the runtime does not know the program; the image's behaviour
	// alone then decides, and health checks pass unless their command
	// plainly fails ("exit 1", "false").
	Start(c ContainerStart) ContainerProcess
}

// ContainerStart is what a starting container has.
type ContainerStart struct {
	TaskARN, ClusterARN, TaskDefinitionARN string
	Group, StartedBy, Hostname             string
	Container, Image                       string
	Command                                []string
	Env                                    map[string]string // after the run's overrides
	Secrets                                map[string]string // secret values the execution role fetched
	TaskRoleARN                            string            // the role the container's AWS SDK runs as
	StartedAt                              time.Time
	Behavior                               ImageBehavior
	// Reach says whether the task's network reaches a destination at the
	// time it is called (routes change: a NAT gateway may be deleted). Call
	// it only from the process's methods.
	Reach func(Destination) (bool, string)
}

// ContainerProcess is a running container's program.
type ContainerProcess interface {
	// Exit is when the process exits and with which code, as far as is
	// known at now (ok false: it keeps running). Called repeatedly as the
	// simulation replays time; the answer may change when the world does (a
	// Prefect outage begins), but never to an instant before now.
	Exit(now time.Time) (at time.Time, code int32, ok bool)
	// Probe answers the container's health-check command at `at`: true for
	// exit status 0.
	Probe(at time.Time, command []string) bool
	// Stopped tells the process that ECS stopped its container at `at`.
	Stopped(at time.Time)
}

// AddContainerRuntime installs a runtime; the first that knows a program
// runs it.
func (w *World) AddContainerRuntime(rt ContainerRuntime) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.runtimes = append(w.runtimes, rt)
}

// startProcess asks the runtimes for the program of a starting container.
// Callers hold w.Mu.
func (w *World) startProcess(c ContainerStart) ContainerProcess {
	for _, rt := range w.runtimes {
		if p := rt.Start(c); p != nil {
			return p
		}
	}
	return nil
}

// plainProbe evaluates a health-check command without a runtime: what a
// shell would make of the commands whose outcome needs no program.
func plainProbe(command []string) bool {
	if len(command) == 0 {
		return true
	}
	script := strings.TrimSpace(strings.Join(command[1:], " "))
	switch command[0] {
	case "CMD-SHELL", "CMD":
	default:
		script = strings.TrimSpace(strings.Join(command, " "))
	}
	switch script {
	case "exit 1", "false", "/bin/false":
		return false
	}
	return true
}
