package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/plan"
)

// ecsView is what one look at ECS says about the new revision.
type ecsView struct {
	err error
	// status is ECS's verdict on the new revision's deployment.
	status ecsdeploy.Status
	// primary is the task definition the service's PRIMARY deployment runs.
	primary string
	// stopped are the new revision's stopped tasks, newest first; failures
	// counts those that failed (did not start, or the worker exited).
	stopped  []plan.StoppedTask
	failures int
	events   []string
}

// rolledBackByECS: ECS's circuit breaker failed the deployment and rolls
// (or rolled) the service back to the previous revision.
func (v ecsView) rolledBackByECS(previous string) bool {
	switch v.status.State {
	case ecsdeploy.RollbackInProgress, ecsdeploy.RolledBack, ecsdeploy.RollbackFailed:
		return true
	}
	return previous != "" && v.primary == previous
}

// otherRevision is the revision the service runs instead of the new one and
// of the previous one (another deploy?), or "".
func (v ecsView) otherRevision(dep ecsdeploy.Deployment) string {
	if v.primary == "" || v.primary == dep.TaskDefinition || v.primary == dep.Previous {
		return ""
	}
	return v.primary
}

// failReason says why the gate should stop waiting, or "". A deployment
// ECS STOPPED is not a reason by itself (a redeploy of the same revision
// stops it too); when the circuit breaker stopped it, its failed tasks are.
func (v ecsView) failReason(dep ecsdeploy.Deployment) string {
	switch {
	case v.rolledBackByECS(dep.Previous):
		r := "ECS rolled the deployment of " + shortTD(dep.TaskDefinition) + " back (deployment circuit breaker)"
		if v.status.Reason != "" {
			r += ": " + v.status.Reason
		}
		if len(v.stopped) > 0 {
			r += "; last stopped task: " + describeStop(v.stopped[0])
		}
		return r
	case v.otherRevision(dep) != "":
		return fmt.Sprintf("the service now runs %s instead of %s", shortTD(v.primary), shortTD(dep.TaskDefinition))
	case v.failures >= FailFastStops:
		return fmt.Sprintf("%d tasks of %s stopped (crash loop?); last: %s", v.failures, shortTD(dep.TaskDefinition), describeStop(v.stopped[0]))
	}
	return ""
}

func describeStop(t plan.StoppedTask) string {
	s := t.StoppedReason
	if t.StopCode != "" {
		s += " [" + t.StopCode + "]"
	}
	if t.ExitCode != nil {
		s += fmt.Sprintf(" exit code %d", *t.ExitCode)
	}
	if t.ContainerReason != "" && t.ContainerReason != t.StoppedReason {
		s += ": " + t.ContainerReason
	}
	return s
}

// watchECS looks at the new revision's deployment, the service's PRIMARY
// revision and events, and the new revision's stopped tasks. IAM, image and
// network problems show up here, not as API errors
// (docs/research/aws-ecs.md §4.3 "Show progress the way Copilot does").
// A read that fails is kept in err; the others still count.
func (g *run) watchECS(ctx context.Context) ecsView {
	var v ecsView
	var errs []error
	st, err := g.ecs.Look(ctx, &g.dep)
	if err != nil {
		errs = append(errs, err)
	}
	v.status = st
	svc, err := g.ecs.Service(ctx, g.dep.Service)
	if err != nil {
		errs = append(errs, err)
	}
	v.primary = svc.Primary
	for _, e := range svc.EventsSince(g.dep.Since, ecsdeploy.MaxEvents) {
		v.events = append(v.events, e.At.UTC().Format(time.RFC3339)+" "+e.Message)
	}
	stopped, err := g.ecs.StoppedTasks(ctx, g.dep.Service, ecsdeploy.TaskFilter{TaskDefinition: g.dep.TaskDefinition})
	if err != nil {
		errs = append(errs, err)
	}
	v.stopped, v.failures = stopped.Tasks, stopped.Failures
	if len(errs) > 0 {
		v.err = errs[0]
	}
	g.lastECS = v
	return v
}
