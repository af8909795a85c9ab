package ecsdeploy

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/plan"
)

// What a report carries at most.
const (
	MaxStoppedTasks = 10
	MaxEvents       = 10
	// maxTaskPages bounds the stopped-task listing (100 per page): ECS keeps
	// stopped tasks visible for about an hour, and a crash loop makes many.
	maxTaskPages = 10
)

// TaskFilter chooses stopped tasks.
type TaskFilter struct {
	// TaskDefinition keeps the tasks of one revision ("": any).
	TaskDefinition string
	// Since keeps tasks created at or after it (zero: any).
	Since time.Time
	// Max bounds the tasks returned (0: MaxStoppedTasks); Failures counts them all.
	Max int
}

// StoppedTasks are a service's stopped tasks that passed a TaskFilter.
type StoppedTasks struct {
	Tasks []plan.StoppedTask // newest stop first
	// Failures counts the tasks that failed (did not start, or the worker
	// exited) among all that passed the filter, not only those in Tasks.
	Failures int
}

// StoppedTasks lists the service's stopped tasks with their reasons and
// exit codes: IAM, image, secret and network problems show up here rather
// than as API errors (docs/research/aws-ecs.md §4.3 "Show progress the way
// Copilot does").
func (w *Watcher) StoppedTasks(ctx context.Context, s Service, f TaskFilter) (StoppedTasks, error) {
	if f.Max <= 0 {
		f.Max = MaxStoppedTasks
	}
	var out StoppedTasks
	var arns []string
	p := ecs.NewListTasksPaginator(w.ECS, &ecs.ListTasksInput{
		Cluster: aws.String(s.Cluster), ServiceName: aws.String(s.Name), DesiredStatus: ecstypes.DesiredStatusStopped,
	})
	for page := 0; p.HasMorePages() && page < maxTaskPages; page++ {
		got, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("list stopped tasks of %s: %w", s, err)
		}
		arns = append(arns, got.TaskArns...)
	}
	var tasks []ecstypes.Task
	for i := 0; i < len(arns); i += 100 { // DescribeTasks takes at most 100
		got, err := w.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(s.Cluster), Tasks: arns[i:min(i+100, len(arns))]})
		if err != nil {
			return out, fmt.Errorf("describe stopped tasks of %s: %w", s, err)
		}
		tasks = append(tasks, got.Tasks...)
	}
	sort.SliceStable(tasks, func(i, j int) bool { return stopTime(tasks[i]).After(stopTime(tasks[j])) })
	for _, t := range tasks {
		if f.TaskDefinition != "" && aws.ToString(t.TaskDefinitionArn) != f.TaskDefinition {
			continue
		}
		if !f.Since.IsZero() && t.CreatedAt != nil && t.CreatedAt.Before(f.Since) {
			continue
		}
		st := stoppedTaskOf(t)
		if failedStop(t, st) {
			out.Failures++
		}
		if len(out.Tasks) < f.Max {
			out.Tasks = append(out.Tasks, st)
		}
	}
	return out, nil
}

// stoppedTaskOf is why a task stopped: its reason and stop code, and its
// containers' first exit code and reason.
func stoppedTaskOf(t ecstypes.Task) plan.StoppedTask {
	st := plan.StoppedTask{TaskARN: aws.ToString(t.TaskArn), StoppedReason: aws.ToString(t.StoppedReason), StopCode: string(t.StopCode)}
	for _, c := range t.Containers {
		if c.ExitCode != nil && st.ExitCode == nil {
			st.ExitCode = aws.Int32(*c.ExitCode)
		}
		if c.Reason != nil && st.ContainerReason == "" {
			st.ContainerReason = *c.Reason
		}
	}
	return st
}

// Task is one task that no service owns (a flow run's, which Prefect's
// worker started with RunTask), as DescribeTasks reports it.
type Task struct {
	// LastStatus is ECS's (PROVISIONING ... RUNNING ... STOPPED); "" when
	// ECS no longer knows the task (it keeps stopped tasks about an hour).
	LastStatus string
	// Stopped says why it stopped (its reason, once it is stopping).
	Stopped plan.StoppedTask
}

// DescribeTask reads the task arn of cluster: what a flow run's ECS task
// did, for a report that says why the run failed.
func (w *Watcher) DescribeTask(ctx context.Context, cluster, arn string) (Task, error) {
	out, err := w.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
	if err != nil {
		return Task{}, fmt.Errorf("describe task %s: %w", arn, err)
	}
	for _, t := range out.Tasks {
		if aws.ToString(t.TaskArn) == arn {
			return Task{LastStatus: aws.ToString(t.LastStatus), Stopped: stoppedTaskOf(t)}, nil
		}
	}
	return Task{}, nil
}

func stopTime(t ecstypes.Task) time.Time {
	for _, p := range []*time.Time{t.StoppedAt, t.StoppingAt, t.CreatedAt} {
		if p != nil {
			return *p
		}
	}
	return time.Time{}
}

// failedStop: the task never started (image pull, secrets), or its
// essential container exited (a worker should run forever; exit 0 is still
// a stop), or a container exited non-zero. Scheduler-initiated stops (a
// deployment draining it) are not failures.
func failedStop(t ecstypes.Task, st plan.StoppedTask) bool {
	switch t.StopCode {
	case ecstypes.TaskStopCodeTaskFailedToStart, ecstypes.TaskStopCodeEssentialContainerExited:
		return true
	}
	return st.ExitCode != nil && *st.ExitCode != 0
}

// Events returns the service's events since the given time, newest first,
// at most max.
func (w *Watcher) Events(ctx context.Context, s Service, since time.Time, max int) ([]Event, error) {
	view, err := w.Service(ctx, s)
	if err != nil {
		return nil, err
	}
	return view.EventsSince(since, max), nil
}

// ServiceView is what DescribeServices says about a service.
type ServiceView struct {
	// Primary is the task definition of the PRIMARY deployment ("" when
	// the service is missing).
	Primary string
	// Events are the service's recent events, newest first.
	Events []Event
}

// EventsSince returns the events at or after since, newest first, at most max.
func (v ServiceView) EventsSince(since time.Time, max int) []Event {
	var out []Event
	for _, e := range v.Events {
		if e.At.Before(since) || len(out) == max {
			break
		}
		out = append(out, e)
	}
	return out
}

// Service reads the service's PRIMARY revision and recent events; a missing
// service is an empty view.
func (w *Watcher) Service(ctx context.Context, s Service) (ServiceView, error) {
	svc, err := w.describeService(ctx, s)
	if err != nil || svc == nil {
		return ServiceView{}, err
	}
	v := ServiceView{Primary: aws.ToString(svc.TaskDefinition)}
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			v.Primary = aws.ToString(d.TaskDefinition)
		}
	}
	for _, e := range svc.Events { // newest first
		v.Events = append(v.Events, Event{At: aws.ToTime(e.CreatedAt), Message: aws.ToString(e.Message)})
	}
	return v, nil
}
