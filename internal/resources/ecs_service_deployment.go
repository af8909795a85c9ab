package resources

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// DeploymentError is an ECS service deployment that did not succeed: the
// circuit breaker stopped it or rolled it back (docs/research/aws-ecs.md §4.3).
// It carries what explains the failure (stopped tasks' reasons, recent
// service events) and the service's outputs, so the engine can report the
// deployment and the gate can skip waiting for workers that never start.
type DeploymentError struct {
	Service      string
	Status       string // STOPPED | ROLLBACK_SUCCESSFUL | ROLLBACK_FAILED | TIMED_OUT
	Reason       string
	StoppedTasks []plan.StoppedTask
	Events       []string
	Outputs      resource.Outputs
}

func (e *DeploymentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ECS deployment of %s ended %s", e.Service, e.Status)
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	for i, t := range e.StoppedTasks {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "; stopped task: %s", t.StoppedReason)
		if t.ContainerReason != "" {
			fmt.Fprintf(&b, " (%s)", t.ContainerReason)
		}
	}
	for i, ev := range e.Events {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "; event: %s", ev)
	}
	return b.String()
}

// failedStatuses end a deployment unsuccessfully (the Terraform provider's
// statusServiceWaitForStable, docs/research/aws-ecs.md §4.3).
var failedStatuses = map[ecstypes.ServiceDeploymentStatus]bool{
	ecstypes.ServiceDeploymentStatusStopped:            true,
	ecstypes.ServiceDeploymentStatusRollbackSuccessful: true,
	ecstypes.ServiceDeploymentStatusRollbackFailed:     true,
}

// waitDeployment waits for the service deployment created at or after
// opTime: ListServiceDeployments(createdAt after opTime), then
// DescribeServiceDeployments until SUCCESSFUL (docs/research/aws-ecs.md §4.3).
// previous is the PRIMARY task definition before the change ("" on create).
func waitDeployment(ctx context.Context, x *resource.Ctx, r *resource.Resource, s *stack.ServiceSpec, serviceARN string, opTime time.Time, previous string) (resource.Outputs, error) {
	taskDefinition := ""
	if svc, err := describeService(ctx, x, s.Cluster, s.Name); err == nil && svc != nil {
		taskDefinition = aws.ToString(svc.TaskDefinition)
	}
	out := resource.Outputs{
		"arn":                      serviceARN,
		"name":                     s.Name,
		"cluster":                  s.Cluster,
		"task_definition":          taskDefinition,
		"previous_task_definition": previous,
		"deployment_started_at":    opTime.UTC().Format(time.RFC3339),
	}
	// ECS stores createdAt with sub-second precision; a second of slack
	// keeps a deployment created in the same instant as opTime.
	after := opTime.Add(-time.Second)
	var deploymentARN, lastSaid string
	budget := time.Duration(s.DeploymentTimeoutMinutes) * time.Minute
	err := poll(ctx, x, "ECS deployment of "+s.Name, deploymentPollInterval(), budget, func() (bool, error) {
		if deploymentARN == "" {
			list, err := x.AWS.ECS.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
				Cluster: aws.String(s.Cluster), Service: aws.String(s.Name),
				CreatedAt: &ecstypes.CreatedAt{After: aws.Time(after)},
			})
			if err != nil {
				return false, fmt.Errorf("ListServiceDeployments %s: %w", s.Name, err)
			}
			sort.Slice(list.ServiceDeployments, func(i, j int) bool {
				return aws.ToTime(list.ServiceDeployments[i].CreatedAt).After(aws.ToTime(list.ServiceDeployments[j].CreatedAt))
			})
			if len(list.ServiceDeployments) == 0 {
				x.Say(r.Address, "waiting for ECS to start the deployment")
				return false, nil
			}
			deploymentARN = aws.ToString(list.ServiceDeployments[0].ServiceDeploymentArn)
			out["deployment_id"] = deploymentARN[strings.LastIndex(deploymentARN, "/")+1:]
			out["deployment_arn"] = deploymentARN
		}
		desc, err := x.AWS.ECS.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{deploymentARN}})
		if err != nil {
			return false, fmt.Errorf("DescribeServiceDeployments %s: %w", deploymentARN, err)
		}
		if len(desc.ServiceDeployments) == 0 {
			return false, nil
		}
		d := desc.ServiceDeployments[0]
		out["deployment_status"] = string(d.Status)
		if d.StartedAt != nil {
			out["deployment_started_at"] = d.StartedAt.UTC().Format(time.RFC3339)
		}
		msg := "deployment " + string(d.Status)
		if t := d.TargetServiceRevision; t != nil {
			msg += fmt.Sprintf(": %d/%d tasks running", t.RunningTaskCount, t.RequestedTaskCount)
		}
		if msg != lastSaid {
			x.Say(r.Address, msg)
			lastSaid = msg
		}
		switch {
		case d.Status == ecstypes.ServiceDeploymentStatusSuccessful:
			return true, nil
		case failedStatuses[d.Status]:
			return false, deploymentFailure(ctx, x, s, string(d.Status), aws.ToString(d.StatusReason), opTime, out)
		}
		return false, nil
	})
	if err != nil {
		if _, ok := err.(*DeploymentError); !ok && ctx.Err() == nil && strings.Contains(err.Error(), "not done after") {
			out["deployment_status"] = "TIMED_OUT"
			return out, deploymentFailure(ctx, x, s, "TIMED_OUT", err.Error(), opTime, out)
		}
		return out, err
	}
	return out, nil
}

// deploymentFailure gathers stopped tasks' reasons and recent service events
// since opTime (Copilot's rollout streamer, docs/research/aws-ecs.md §2.3:
// up to 2 stopped-task reasons and 5 events).
func deploymentFailure(ctx context.Context, x *resource.Ctx, s *stack.ServiceSpec, status, reason string, opTime time.Time, out resource.Outputs) error {
	e := &DeploymentError{Service: s.Cluster + "/" + s.Name, Status: status, Reason: reason, Outputs: out}
	if list, err := x.AWS.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(s.Cluster), ServiceName: aws.String(s.Name), DesiredStatus: ecstypes.DesiredStatusStopped}); err == nil && len(list.TaskArns) > 0 {
		arns := list.TaskArns[:min(len(list.TaskArns), 100)]
		if tasks, err := x.AWS.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(s.Cluster), Tasks: arns}); err == nil {
			sort.Slice(tasks.Tasks, func(i, j int) bool {
				return aws.ToTime(tasks.Tasks[i].StoppedAt).After(aws.ToTime(tasks.Tasks[j].StoppedAt))
			})
			for _, t := range tasks.Tasks {
				if t.CreatedAt != nil && t.CreatedAt.Before(opTime) {
					continue
				}
				st := plan.StoppedTask{TaskARN: aws.ToString(t.TaskArn), StoppedReason: aws.ToString(t.StoppedReason), StopCode: string(t.StopCode)}
				for _, c := range t.Containers {
					if c.ExitCode != nil || c.Reason != nil {
						st.ExitCode, st.ContainerReason = c.ExitCode, aws.ToString(c.Reason)
						break
					}
				}
				e.StoppedTasks = append(e.StoppedTasks, st)
				if len(e.StoppedTasks) == 5 {
					break
				}
			}
		}
	}
	if svc, err := describeService(ctx, x, s.Cluster, s.Name); err == nil && svc != nil {
		for _, ev := range svc.Events { // newest first
			if ev.CreatedAt != nil && ev.CreatedAt.Before(opTime) {
				continue
			}
			e.Events = append(e.Events, aws.ToString(ev.Message))
			if len(e.Events) == 5 {
				break
			}
		}
	}
	return e
}

var _ resource.FailedDeployment = (*DeploymentError)(nil)

// DeploymentOutputs are the service's outputs as the deployment left them.
func (e *DeploymentError) DeploymentOutputs() resource.Outputs { return e.Outputs }

// DeploymentFailure says how the deployment ended and why.
func (e *DeploymentError) DeploymentFailure() (string, string, []plan.StoppedTask, []string) {
	return e.Status, e.Reason, e.StoppedTasks, e.Events
}
