package awssim

import (
	"strings"
	"time"
)

// ImageBehavior is how a container image behaves when a simulated Fargate
// task runs it. The zero value is a healthy, long-running worker.
//
// For the demo and tests, without configuring anything:
//   - an image reference containing "does-not-exist" cannot be pulled: the
//     task stops with "CannotPullContainerError: ... not found";
//   - an image whose tag contains "crashloop" (e.g. "prefecthq/prefect:crashloop")
//     starts, then exits with code 1 after 20 s, every time;
//   - any other image runs and stays healthy.
//
// Set w.Images[ref] (under w.Mu) to give a reference another behavior, e.g.
// NoHeartbeat for a worker that runs but never reaches Prefect.
type ImageBehavior struct {
	// PullFails: the registry answers "not found" for the reference.
	PullFails bool
	// CrashAfter > 0: the essential container exits that long after it
	// started, with ExitCode.
	CrashAfter time.Duration
	ExitCode   int32
	// NoHeartbeat: the container runs, but the Prefect worker inside never
	// gets through to its API (for the Prefect simulator: its syncs fail,
	// its stock /health still answers 200, and it gives up after 12 failed
	// syncs).
	NoHeartbeat bool
}

// ImageBehaviorOf returns how image ref behaves. Callers hold w.Mu.
func (w *World) ImageBehaviorOf(ref string) ImageBehavior {
	if b, ok := w.Images[ref]; ok {
		return b
	}
	if strings.Contains(ref, "does-not-exist") {
		return ImageBehavior{PullFails: true}
	}
	if strings.Contains(imageTag(ref), "crashloop") {
		return ImageBehavior{CrashAfter: 20 * time.Second, ExitCode: 1}
	}
	return ImageBehavior{}
}

// imageTag is the tag of an image reference ("latest" when none is given).
func imageTag(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[i+1:]
	}
	return "latest"
}

// qualifiedImage is the reference as the container runtime resolves it
// (Docker Hub images get docker.io/library/ or docker.io/), for error messages.
func qualifiedImage(ref string) string {
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	first := name
	if i := strings.Index(name, "/"); i >= 0 {
		first = name[:i]
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		if !strings.Contains(name, "/") {
			ref = "docker.io/library/" + ref
		} else {
			ref = "docker.io/" + ref
		}
	}
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") && !strings.Contains(ref, "@") {
		ref += ":latest"
	}
	return ref
}

// SetImageBehavior makes image ref behave as b from now on (tasks already
// placed keep the behavior they started with).
func (w *World) SetImageBehavior(ref string, b ImageBehavior) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.Images[ref] = b
}
