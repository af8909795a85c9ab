package resources

import (
	"context"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// DeploymentError is an ECS service deployment that did not succeed: the
// circuit breaker stopped it or rolled it back, or it was not done within
// the service's deployment timeout (ecsdeploy.Failure: the state, the
// stopped tasks' reasons, recent service events). It carries the service's
// outputs, so the engine can report the deployment and deploy can skip the
// gate's wait for workers that never start.
type DeploymentError struct {
	*ecsdeploy.Failure
	Outputs resource.Outputs
}

var _ resource.FailedDeployment = (*DeploymentError)(nil)

// Unwrap lets callers read the typed outcome (ecsdeploy.AsFailure).
func (e *DeploymentError) Unwrap() error { return e.Failure }

// DeploymentOutputs are the service's outputs as the deployment left them.
func (e *DeploymentError) DeploymentOutputs() resource.Outputs { return e.Outputs }

// DeploymentFailure says how the deployment ended and why.
func (e *DeploymentError) DeploymentFailure() (string, string, []plan.StoppedTask, []string) {
	events := make([]string, len(e.Events))
	for i, ev := range e.Events {
		events[i] = ev.Message
	}
	return string(e.State), e.Reason, e.StoppedTasks, events
}

// waitDeployment waits for the service deployment the change made at
// opTime started (ecsdeploy: the service deployments API, or rolloutState on
// endpoints without it). primaryID is the PRIMARY deployment's id in the
// service the change returned; taskDefinition is what it deploys; previous
// is the PRIMARY task definition before the change ("" on create).
func waitDeployment(ctx context.Context, x *resource.Ctx, r *resource.Resource, s *stack.ServiceSpec, serviceARN, taskDefinition, primaryID string, opTime time.Time, previous string) (resource.Outputs, error) {
	out := resource.Outputs{
		"arn":                      serviceARN,
		"name":                     s.Name,
		"cluster":                  s.Cluster,
		"task_definition":          taskDefinition,
		"previous_task_definition": previous,
		"deployment_started_at":    opTime.UTC().Format(time.RFC3339),
	}
	d := &ecsdeploy.Deployment{Service: ecsdeploy.Service{Cluster: s.Cluster, Name: s.Name}, TaskDefinition: taskDefinition,
		Previous: previous, Since: opTime, ID: primaryID}
	lastSaid := ""
	st, err := ecsdeploy.NewWatcher(x.AWS.ECS, x.Clock).Wait(ctx, d, ecsdeploy.WaitOptions{
		Interval: deploymentPollInterval(),
		Budget:   x.Wait(time.Duration(s.DeploymentTimeoutMinutes) * time.Minute),
		Progress: func(st ecsdeploy.Status) {
			msg := st.String()
			if st.State == ecsdeploy.Pending {
				msg = "waiting for ECS to start the deployment"
			}
			if msg != lastSaid {
				x.Say(r.Address, msg)
				lastSaid = msg
			}
		},
		Fallback: func(reason string) { x.Say(r.Address, reason) },
	})
	if d.ARN != "" {
		out["deployment_arn"] = d.ARN
		out["deployment_id"] = d.ARN[strings.LastIndex(d.ARN, "/")+1:]
	} else if d.ID != "" {
		out["deployment_id"] = d.ID
	}
	if st.State != "" {
		out["deployment_status"] = string(st.State)
	}
	if !st.StartedAt.IsZero() {
		out["deployment_started_at"] = st.StartedAt.UTC().Format(time.RFC3339)
	}
	if f := ecsdeploy.AsFailure(err); f != nil {
		out["deployment_status"] = string(f.State)
		return out, &DeploymentError{Failure: f, Outputs: out}
	}
	return out, err
}
