package ecsdeploy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awserr"
)

// createdSlack: ECS stores createdAt with sub-second precision and compares
// it strictly; a second of slack keeps a deployment created in the same
// instant as Since (the caller's clock) in the list.
const createdSlack = time.Second

// Look judges the deployment once, in ECS's own terms. Before ECS lists it,
// the state is Pending. On an endpoint without the service deployments API
// it reads rolloutState instead, from then on.
func (w *Watcher) Look(ctx context.Context, d *Deployment) (Status, error) {
	if w.unsupported == nil {
		st, err := w.lookServiceDeployment(ctx, d)
		if !awserr.IsUnsupportedOperation(err) {
			return st, err
		}
		w.unsupported = err
	}
	return w.lookRolloutState(ctx, d)
}

// lookServiceDeployment follows the Terraform provider's
// statusServiceWaitForStable (docs/research/aws-ecs.md §4.3): the service
// deployment created after the change, matched to the PRIMARY deployment it
// made when its id is known, then DescribeServiceDeployments.
func (w *Watcher) lookServiceDeployment(ctx context.Context, d *Deployment) (Status, error) {
	st := Status{State: Pending, Source: FromServiceDeployments}
	if d.ARN == "" {
		var briefs []ecstypes.ServiceDeploymentBrief
		in := &ecs.ListServiceDeploymentsInput{
			Cluster: aws.String(d.Cluster), Service: aws.String(d.Name),
			CreatedAt: &ecstypes.CreatedAt{After: aws.Time(d.Since.Add(-createdSlack))},
		}
		// The SDK has no paginator for it; deployments created since one
		// change are a handful, so a few pages are plenty.
		for page := 0; page < 5; page++ {
			out, err := w.ECS.ListServiceDeployments(ctx, in)
			if err != nil {
				return st, fmt.Errorf("ListServiceDeployments %s: %w", d.Service, err)
			}
			briefs = append(briefs, out.ServiceDeployments...)
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
		b, ok := pickBrief(briefs, d.ID)
		if !ok {
			return st, nil // not listed yet (eventual consistency)
		}
		d.ARN = aws.ToString(b.ServiceDeploymentArn)
	}
	out, err := w.ECS.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{d.ARN}})
	if err != nil {
		return st, fmt.Errorf("DescribeServiceDeployments %s: %w", d.ARN, err)
	}
	if len(out.ServiceDeployments) == 0 {
		return st, nil
	}
	sd := out.ServiceDeployments[0]
	st.Reason = aws.ToString(sd.StatusReason)
	if sd.StartedAt != nil {
		st.StartedAt = *sd.StartedAt
	}
	if t := sd.TargetServiceRevision; t != nil {
		st.Running, st.Desired = t.RunningTaskCount, t.RequestedTaskCount
	}
	switch sd.Status {
	case ecstypes.ServiceDeploymentStatusSuccessful:
		st.State = Successful
	case ecstypes.ServiceDeploymentStatusStopped:
		st.State = Stopped
	case ecstypes.ServiceDeploymentStatusRollbackSuccessful:
		st.State = RolledBack
	case ecstypes.ServiceDeploymentStatusRollbackFailed:
		st.State = RollbackFailed
	case ecstypes.ServiceDeploymentStatusRollbackRequested, ecstypes.ServiceDeploymentStatusRollbackInProgress:
		st.State = RollbackInProgress
	case ecstypes.ServiceDeploymentStatusPending:
		st.State = Pending
	default: // IN_PROGRESS, STOP_REQUESTED: ECS has not decided yet
		st.State = InProgress
	}
	return st, nil
}

// pickBrief chooses the deployment among those created since the change:
// the one whose target revision is the PRIMARY deployment the change made
// (a service revision ARN ends in the deployment id's number), or the one
// whose ARN ends in id (the engine reports a service deployment by that),
// else the first one created: later ones are a rollback or another change.
func pickBrief(briefs []ecstypes.ServiceDeploymentBrief, id string) (ecstypes.ServiceDeploymentBrief, bool) {
	if len(briefs) == 0 {
		return ecstypes.ServiceDeploymentBrief{}, false
	}
	if id != "" {
		for _, b := range briefs {
			if n, ok := strings.CutPrefix(id, "ecs-svc/"); ok && strings.HasSuffix(aws.ToString(b.TargetServiceRevisionArn), "/"+n) ||
				!ok && strings.HasSuffix(aws.ToString(b.ServiceDeploymentArn), "/"+id) {
				return b, true
			}
		}
	}
	sort.SliceStable(briefs, func(i, j int) bool {
		return aws.ToTime(briefs[i].CreatedAt).Before(aws.ToTime(briefs[j].CreatedAt))
	})
	return briefs[0], true
}

// lookRolloutState judges the deployment from the service's deployments
// (docs/research/aws-ecs.md §4.3 "Fallback": the deployment's rolloutState,
// and which deployment is PRIMARY). A circuit-breaker rollback shows as the
// failed deployment (rolloutState FAILED) beside a newer PRIMARY one of the
// previous revision; once that completes, ECS drops the failed one from the
// list, so the rollback deployment is remembered.
func (w *Watcher) lookRolloutState(ctx context.Context, d *Deployment) (Status, error) {
	st := Status{State: Pending, Source: FromRolloutState}
	svc, err := w.describeService(ctx, d.Service)
	if err != nil || svc == nil {
		return st, err
	}
	var ours, primary, rollback *ecstypes.Deployment
	for i := range svc.Deployments {
		dep := &svc.Deployments[i]
		id := aws.ToString(dep.Id)
		if aws.ToString(dep.Status) == "PRIMARY" {
			primary = dep
		}
		if d.rollbackID != "" && id == d.rollbackID {
			rollback = dep
		}
		switch {
		case d.ID != "" && id == d.ID:
			ours = dep
		case d.ID == "" && aws.ToString(dep.TaskDefinition) == d.TaskDefinition && !aws.ToTime(dep.CreatedAt).Before(d.Since.Add(-createdSlack)):
			if ours == nil || aws.ToTime(dep.CreatedAt).After(aws.ToTime(ours.CreatedAt)) {
				ours = dep
			}
		}
	}
	if ours != nil {
		d.ID = aws.ToString(ours.Id)
		st.Running, st.Desired = ours.RunningCount, ours.DesiredCount
		st.Reason = aws.ToString(ours.RolloutStateReason)
		if ours.CreatedAt != nil {
			st.StartedAt = *ours.CreatedAt
		}
		switch {
		case ours.RolloutState == ecstypes.DeploymentRolloutStateCompleted:
			st.State, d.completed = Successful, true
		case ours.RolloutState == ecstypes.DeploymentRolloutStateFailed && primary != nil && primary != ours:
			// ECS starts a deployment by itself only to roll back.
			d.rollbackID, d.failedReason = aws.ToString(primary.Id), st.Reason
			rollback = primary
		case ours.RolloutState == ecstypes.DeploymentRolloutStateFailed:
			st.State = Stopped // failed with nothing to roll back to (a first deploy)
		case primary != nil && primary != ours:
			st.State, st.Reason = Stopped, "replaced by deployment "+aws.ToString(primary.Id)+" of "+ShortTaskDefinition(aws.ToString(primary.TaskDefinition))
		default:
			st.State = InProgress
		}
		if rollback == nil {
			return st, nil
		}
	}
	if rollback == nil && d.completed {
		// it completed, and a later deployment has since replaced it:
		// ECS's verdict on it stands (as the service deployments API keeps it)
		st.State = Successful
		return st, nil
	}
	if rollback == nil && d.ID != "" && primary != nil && aws.ToString(primary.Id) != d.ID {
		// ours left the list between two looks: a rollback to the previous
		// revision, or a newer deployment that replaced it
		if d.Previous == "" || aws.ToString(primary.TaskDefinition) != d.Previous {
			st.State, st.Reason = Stopped, "replaced by deployment "+aws.ToString(primary.Id)+" of "+ShortTaskDefinition(aws.ToString(primary.TaskDefinition))
			return st, nil
		}
		d.rollbackID = aws.ToString(primary.Id)
		rollback = primary
	}
	if rollback == nil {
		if d.rollbackID != "" {
			st.State, st.Reason = Stopped, "the rollback deployment "+d.rollbackID+" left the service"
		}
		return st, nil // not listed yet
	}
	// Why it is rolled back, as ECS first said it: the failed deployment's
	// reason, or the rollback's while it runs ("rolling back to …"); once
	// it completes, its reason only says so.
	if d.failedReason == "" {
		d.failedReason = aws.ToString(rollback.RolloutStateReason)
	}
	st.Reason = d.failedReason
	switch rollback.RolloutState {
	case ecstypes.DeploymentRolloutStateCompleted:
		st.State = RolledBack
	case ecstypes.DeploymentRolloutStateFailed:
		st.State, st.Reason = RollbackFailed, aws.ToString(rollback.RolloutStateReason)
	default:
		st.State = RollbackInProgress
	}
	return st, nil
}

// describeService returns the service, or nil when it is missing or INACTIVE
// (deleted services linger as INACTIVE, then MISSING: §4.3).
func (w *Watcher) describeService(ctx context.Context, s Service) (*ecstypes.Service, error) {
	out, err := w.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(s.Cluster), Services: []string{s.Name}})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeServices %s: %w", s, err)
	}
	for i := range out.Services {
		svc := &out.Services[i]
		if aws.ToString(svc.ServiceName) == s.Name && aws.ToString(svc.Status) != "INACTIVE" {
			return svc, nil
		}
	}
	return nil, nil
}
