package ecs

import (
	"context"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// Deployment is what the service kind hands back (resource.Context.Hand)
// when its change started an ECS deployment: the deployment, for the report
// and the health gate, and, when it did not succeed, ECS's account of why
// (the state, the stopped tasks' reasons, recent service events).
type Deployment struct {
	Info plan.DeploymentInfo
	// Failure is set when the deployment did not succeed: the circuit
	// breaker stopped it or rolled it back, or it was not done within the
	// service's deployment timeout.
	Failure *ecsdeploy.Failure
}

// DeploymentOf returns the ECS deployment among an apply's outcomes (nil
// when the apply started none).
func DeploymentOf(outcomes []plan.Outcome) *Deployment {
	for _, o := range outcomes {
		if d, ok := o.Value.(*Deployment); ok {
			return d
		}
	}
	return nil
}

// waitDeployment waits for the service deployment the change made at
// opTime started (ecsdeploy: the service deployments API, or rolloutState on
// endpoints without it) and hands it back as the change's outcome.
// primaryID is the PRIMARY deployment's id in the service the change
// returned; taskDefinition is what it deploys; previous is the PRIMARY task
// definition before the change ("" on create). A deployment that did not
// succeed is the error (*ecsdeploy.Failure), unless again deploys anew (it
// returns the new PRIMARY deployment's id and when it asked): then that one
// is waited for instead.
func waitDeployment(ctx context.Context, x *x, r *service, serviceARN, taskDefinition, primaryID string, opTime time.Time, previous string,
	again func(*ecsdeploy.Failure) (string, time.Time, bool)) (resource.Outputs, error) {
	s := r.Spec
	out := resource.Outputs{"arn": serviceARN, "name": s.Name, "cluster": s.Cluster, "task_definition": taskDefinition}
	dep := &Deployment{Info: plan.DeploymentInfo{Cluster: s.Cluster, Service: s.Name, TaskDefinition: taskDefinition,
		PreviousTaskDefinition: previous, StartedAt: opTime.UTC().Truncate(time.Second), WorkerPrefix: s.WorkerPrefix}}
	var d *ecsdeploy.Deployment
	var st ecsdeploy.Status
	var err error
	for {
		d = &ecsdeploy.Deployment{Service: ecsdeploy.Service{Cluster: s.Cluster, Name: s.Name}, TaskDefinition: taskDefinition,
			Previous: previous, Since: opTime, ID: primaryID}
		lastSaid := ""
		st, err = ecsdeploy.NewWatcher(x.API, x.Clock).Wait(ctx, d, ecsdeploy.WaitOptions{
			Interval: deploymentPollInterval,
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
		f := ecsdeploy.AsFailure(err)
		if f == nil || again == nil {
			break
		}
		id, at, ok := again(f)
		if !ok {
			break
		}
		primaryID, opTime = id, at
	}
	if d.ARN != "" {
		dep.Info.ARN = d.ARN
		dep.Info.DeploymentID = d.ARN[strings.LastIndex(d.ARN, "/")+1:]
	} else {
		dep.Info.DeploymentID = d.ID
	}
	dep.Info.Status = string(st.State)
	if !st.StartedAt.IsZero() {
		dep.Info.StartedAt = st.StartedAt.UTC().Truncate(time.Second)
	}
	dep.Failure = ecsdeploy.AsFailure(err)
	if dep.Failure != nil {
		dep.Info.Status = string(dep.Failure.State)
	}
	// A deployment that ran is the outcome, whether it succeeded or ECS
	// failed it; one that could not be followed (AWS errors) is not.
	if err == nil || dep.Failure != nil {
		x.Hand(dep)
	}
	return out, err
}
