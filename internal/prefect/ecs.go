package prefect

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/plan"
)

// maxEvents and maxStopped bound what the report carries.
const (
	maxEvents  = 10
	maxStopped = 10
)

// ecsView is what one look at the ECS service says about the new revision.
type ecsView struct {
	err error
	// stopped are the new revision's stopped tasks, newest first; failures
	// counts those that failed (did not start, or the worker exited).
	stopped  []plan.StoppedTask
	failures int
	events   []string
	// rolloutFailed: a deployment of the new revision has rolloutState FAILED.
	rolloutFailed bool
	rolloutReason string
	// otherRevision is the PRIMARY deployment's task definition when it is not
	// the new one (ECS rolled back, or someone deployed something else).
	otherRevision string
}

// failReason says why the gate should stop waiting, or "".
func (v ecsView) failReason(dep plan.DeploymentInfo) string {
	switch {
	case v.rolloutFailed || (v.otherRevision != "" && v.otherRevision == dep.PreviousTaskDefinition):
		r := "ECS rolled the deployment of " + shortTD(dep.TaskDefinition) + " back (deployment circuit breaker)"
		if v.rolloutReason != "" {
			r += ": " + v.rolloutReason
		}
		if len(v.stopped) > 0 {
			r += "; last stopped task: " + describeStop(v.stopped[0])
		}
		return r
	case v.otherRevision != "":
		return fmt.Sprintf("the service now runs %s instead of %s", shortTD(v.otherRevision), shortTD(dep.TaskDefinition))
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
	if t.ContainerReason != "" {
		s += ": " + t.ContainerReason
	}
	return s
}

// inspectECS reads the service (deployments, recent events) and the new
// revision's stopped tasks. IAM, image and network problems show up here, not
// as API errors (docs/research/aws-ecs.md §4.3 "Show progress the way Copilot does").
func (g *gate) inspectECS(ctx context.Context) ecsView {
	dep := g.in.Deployment
	api := g.in.ECS
	var v ecsView
	out, err := api.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(dep.Cluster), Services: []string{dep.Service}})
	if err != nil {
		v.err = fmt.Errorf("describe service %s/%s: %w", dep.Cluster, dep.Service, err)
		return v
	}
	if len(out.Services) == 0 {
		v.err = fmt.Errorf("describe service %s/%s: not found", dep.Cluster, dep.Service)
		return v
	}
	svc := out.Services[0]
	if s := dep.Status; s == "FAILED" || strings.HasPrefix(s, "ROLLBACK_") || s == "STOPPED" {
		v.rolloutFailed, v.rolloutReason = true, "the deployment ended "+s
	}
	for _, d := range svc.Deployments {
		td := aws.ToString(d.TaskDefinition)
		if td == dep.TaskDefinition && d.RolloutState == types.DeploymentRolloutStateFailed {
			v.rolloutFailed = true
			v.rolloutReason = aws.ToString(d.RolloutStateReason)
		}
		if aws.ToString(d.Status) == "PRIMARY" && td != dep.TaskDefinition {
			v.otherRevision = td
		}
	}
	for _, e := range svc.Events { // newest first
		if e.CreatedAt != nil && e.CreatedAt.Before(dep.StartedAt) {
			break
		}
		if len(v.events) == maxEvents {
			break
		}
		at := ""
		if e.CreatedAt != nil {
			at = e.CreatedAt.UTC().Format(time.RFC3339) + " "
		}
		v.events = append(v.events, at+aws.ToString(e.Message))
		// once ECS finished rolling back, the failed deployment is gone from
		// the service: its events still say why
		if msg := aws.ToString(e.Message); v.rolloutReason == "" && strings.Contains(msg, "deployment failed") {
			v.rolloutReason = msg
		}
	}
	v.stopped, v.failures, v.err = g.stoppedTasks(ctx)
	return v
}

// stoppedTasks lists the service's stopped tasks (ECS keeps them visible for
// about an hour) and keeps those of the new revision.
func (g *gate) stoppedTasks(ctx context.Context) ([]plan.StoppedTask, int, error) {
	dep := g.in.Deployment
	api := g.in.ECS
	var arns []string
	p := ecs.NewListTasksPaginator(api, &ecs.ListTasksInput{
		Cluster: aws.String(dep.Cluster), ServiceName: aws.String(dep.Service), DesiredStatus: types.DesiredStatusStopped,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("list stopped tasks of %s/%s: %w", dep.Cluster, dep.Service, err)
		}
		arns = append(arns, page.TaskArns...)
	}
	var tasks []types.Task
	for i := 0; i < len(arns); i += 100 { // DescribeTasks takes at most 100
		out, err := api.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(dep.Cluster), Tasks: arns[i:min(i+100, len(arns))]})
		if err != nil {
			return nil, 0, fmt.Errorf("describe stopped tasks of %s/%s: %w", dep.Cluster, dep.Service, err)
		}
		tasks = append(tasks, out.Tasks...)
	}
	sort.SliceStable(tasks, func(i, j int) bool { return stopTime(tasks[i]).After(stopTime(tasks[j])) })
	var stopped []plan.StoppedTask
	failures := 0
	for _, t := range tasks {
		if aws.ToString(t.TaskDefinitionArn) != dep.TaskDefinition {
			continue
		}
		st := plan.StoppedTask{TaskARN: aws.ToString(t.TaskArn), StoppedReason: aws.ToString(t.StoppedReason), StopCode: string(t.StopCode)}
		for _, c := range t.Containers {
			if c.ExitCode != nil && st.ExitCode == nil {
				st.ExitCode = aws.Int32(*c.ExitCode)
			}
			if c.Reason != nil && st.ContainerReason == "" {
				st.ContainerReason = *c.Reason
			}
		}
		if failedStop(t, st) {
			failures++
		}
		if len(stopped) < maxStopped {
			stopped = append(stopped, st)
		}
	}
	return stopped, failures, nil
}

func stopTime(t types.Task) time.Time {
	for _, p := range []*time.Time{t.StoppedAt, t.StoppingAt, t.CreatedAt} {
		if p != nil {
			return *p
		}
	}
	return time.Time{}
}

// failedStop: the task never started (image pull, secrets), or the worker
// exited (a worker should run forever; exit 0 is still a stop), or a container
// exited non-zero. Scheduler-initiated stops (a deployment draining it) are not.
func failedStop(t types.Task, st plan.StoppedTask) bool {
	switch t.StopCode {
	case types.TaskStopCodeTaskFailedToStart, types.TaskStopCodeEssentialContainerExited:
		return true
	}
	return st.ExitCode != nil && *st.ExitCode != 0
}

func (g *gate) updateService(ctx context.Context, td string) error {
	dep := g.in.Deployment
	_, err := g.in.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: aws.String(dep.Cluster), Service: aws.String(dep.Service), TaskDefinition: aws.String(td),
	})
	if err != nil {
		return fmt.Errorf("update service %s/%s to %s: %w", dep.Cluster, dep.Service, shortTD(td), err)
	}
	return nil
}

// waitRollback waits for the rollback deployment, the way the Terraform
// provider waits for any deployment (docs/research/aws-ecs.md §4.3 "Better signal"): list the
// service deployments created since the rollback started and describe the
// newest until SUCCESSFUL. When ECS's circuit breaker did the rollback, the
// failed deployment itself ends ROLLBACK_SUCCESSFUL. It returns "" on success
// or why not.
func (g *gate) waitRollback(ctx context.Context, since time.Time, byECS bool, deadline time.Time) string {
	for {
		done, why := g.rollbackStatus(ctx, since, byECS)
		if done {
			return ""
		}
		if why != "" {
			return why
		}
		left := deadline.Sub(g.clk.Now())
		if left <= 0 {
			return "timed out waiting for the rollback deployment"
		}
		if err := ctx.Err(); err != nil {
			return err.Error()
		}
		g.progress(fmt.Sprintf("health gate: waiting for the rollback deployment of %s/%s; %s left", g.in.Deployment.Cluster, g.in.Deployment.Service, left.Round(time.Second)))
		if err := g.clk.Sleep(ctx, min(PollInterval, left)); err != nil {
			return err.Error()
		}
	}
}

func (g *gate) rollbackStatus(ctx context.Context, since time.Time, byECS bool) (done bool, failed string) {
	dep := g.in.Deployment
	api := g.in.ECS
	// ECS compares createdAt strictly; a millisecond of slack keeps a
	// deployment created in the same instant (virtual clocks) in the list.
	list, err := api.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String(dep.Cluster), Service: aws.String(dep.Service),
		CreatedAt: &types.CreatedAt{After: aws.Time(since.Add(-time.Millisecond))},
	})
	if err != nil {
		return g.rollbackStatusFromService(ctx)
	}
	briefs := list.ServiceDeployments
	if len(briefs) == 0 {
		return false, "" // not listed yet (eventual consistency)
	}
	sort.SliceStable(briefs, func(i, j int) bool {
		return aws.ToTime(briefs[i].CreatedAt).After(aws.ToTime(briefs[j].CreatedAt))
	})
	var arns []string
	for _, b := range briefs {
		arns = append(arns, aws.ToString(b.ServiceDeploymentArn))
	}
	if !byECS {
		arns = arns[:1] // ours is the newest
	}
	desc, err := api.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: arns})
	if err != nil {
		return g.rollbackStatusFromService(ctx)
	}
	for _, d := range desc.ServiceDeployments {
		reason := aws.ToString(d.StatusReason)
		switch {
		case byECS && d.Status == types.ServiceDeploymentStatusRollbackSuccessful:
			return true, ""
		case byECS && d.Status == types.ServiceDeploymentStatusRollbackFailed:
			return false, "ECS's rollback failed: " + reason
		case !byECS && d.Status == types.ServiceDeploymentStatusSuccessful:
			return true, ""
		case !byECS && (d.Status == types.ServiceDeploymentStatusStopped || d.Status == types.ServiceDeploymentStatusRollbackSuccessful ||
			d.Status == types.ServiceDeploymentStatusRollbackFailed):
			return false, fmt.Sprintf("the rollback deployment ended %s: %s", d.Status, reason)
		}
	}
	return false, ""
}

// rollbackStatusFromService is the fallback for endpoints without the service
// deployments API: the previous revision is the only deployment and COMPLETED
// (the ecspresso approach, docs/research/aws-ecs.md §4.3 "Fallback").
func (g *gate) rollbackStatusFromService(ctx context.Context) (bool, string) {
	dep := g.in.Deployment
	out, err := g.in.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(dep.Cluster), Services: []string{dep.Service}})
	if err != nil || len(out.Services) == 0 {
		return false, ""
	}
	ds := out.Services[0].Deployments
	for _, d := range ds {
		if aws.ToString(d.Status) != "PRIMARY" || aws.ToString(d.TaskDefinition) != dep.PreviousTaskDefinition {
			continue
		}
		switch d.RolloutState {
		case types.DeploymentRolloutStateCompleted:
			return len(ds) == 1, ""
		case types.DeploymentRolloutStateFailed:
			return false, "the rollback deployment FAILED: " + aws.ToString(d.RolloutStateReason)
		}
	}
	return false, ""
}

// prefixOf reads a revision's DEPLOYBOT_WORKER_PREFIX.
func (g *gate) prefixOf(ctx context.Context, td string) (string, error) {
	out, err := g.in.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(td)})
	if err != nil {
		return "", fmt.Errorf("describe task definition %s: %w", shortTD(td), err)
	}
	if out.TaskDefinition == nil {
		return "", nil
	}
	for _, c := range out.TaskDefinition.ContainerDefinitions {
		for _, kv := range c.Environment {
			if aws.ToString(kv.Name) == WorkerPrefixEnv {
				return aws.ToString(kv.Value), nil
			}
		}
	}
	return "", nil
}
