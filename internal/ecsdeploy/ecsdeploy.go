// Package ecsdeploy owns what deploybot knows about one ECS service
// deployment: finding the deployment a CreateService or UpdateService
// started, judging it in ECS's own terms (in progress, successful, stopped,
// rolled back by the circuit breaker, or not done within deploybot's
// budget), the stopped tasks and service events that explain a failure, and
// rolling a service back to a given task definition.
//
// It watches the service deployments API (ListServiceDeployments,
// DescribeServiceDeployments), the way the Terraform provider waits
// (docs/research/aws-ecs.md §4.3 "Better signal"), and falls back to the
// service's deployments[].rolloutState (DescribeServices, §4.3 "Fallback")
// on endpoints that do not implement that API (awserr.IsUnsupportedOperation).
//
// It is used by the ECS service kind (internal/resources) and by the health
// gate (internal/gate); it prints nothing and knows nothing of Prefect.
package ecsdeploy

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/plan"
)

// Service names one ECS service.
type Service struct {
	Cluster string
	Name    string
}

func (s Service) String() string { return s.Cluster + "/" + s.Name }

// Deployment identifies one deployment of a service: the one a change made
// at Since started. Look fills ARN and ID as it finds them, so pass the same
// *Deployment to every look.
type Deployment struct {
	Service
	// TaskDefinition is the revision the deployment rolls out.
	TaskDefinition string
	// Previous is the revision the service ran before the change ("" on a
	// first deploy): what ECS's circuit breaker rolls back to.
	Previous string
	// Since is when the change that started the deployment was made,
	// taken before the call.
	Since time.Time
	// ID is the PRIMARY deployment's id ("ecs-svc/…") in the service the
	// change returned, or the last part of the service deployment's ARN
	// (as the engine reports it), when known; ARN is the service
	// deployment's ARN.
	ID  string
	ARN string

	// rollbackID: the deployment ECS started to roll this one back, and
	// failedReason why (seen in the fallback, where the failed deployment
	// later leaves the list).
	rollbackID, failedReason string
	// completed: seen COMPLETED (in the fallback, where a later deployment
	// takes it off the list).
	completed bool
}

// State is how a deployment stands, in the terms of ECS's
// ServiceDeploymentStatus, plus TimedOut, which is deploybot's own: it
// stopped waiting before ECS decided.
type State string

const (
	Pending            State = "PENDING"
	InProgress         State = "IN_PROGRESS"
	Successful         State = "SUCCESSFUL"
	Stopped            State = "STOPPED"              // failed without a rollback, or replaced by a newer deployment
	RollbackInProgress State = "ROLLBACK_IN_PROGRESS" // the circuit breaker is rolling it back
	RolledBack         State = "ROLLBACK_SUCCESSFUL"
	RollbackFailed     State = "ROLLBACK_FAILED"
	TimedOut           State = "TIMED_OUT"
)

// Done says whether the state is final.
func (s State) Done() bool {
	switch s {
	case Successful, Stopped, RolledBack, RollbackFailed, TimedOut:
		return true
	}
	return false
}

// Failed says whether the deployment ended without rolling its revision out.
func (s State) Failed() bool { return s.Done() && s != Successful }

// Source is where a Status came from.
type Source string

const (
	// FromServiceDeployments: ListServiceDeployments/DescribeServiceDeployments.
	FromServiceDeployments Source = "service deployments"
	// FromRolloutState: DescribeServices' deployments[].rolloutState, on
	// endpoints without the service deployments API.
	FromRolloutState Source = "rolloutState"
)

// Status is one look at a deployment.
type Status struct {
	State  State
	Reason string // ECS's statusReason (or rolloutStateReason)
	// Running and Desired count the target revision's tasks, when known.
	Running, Desired int32
	// StartedAt is when ECS started the deployment, when known.
	StartedAt time.Time
	Source    Source
}

func (s Status) String() string {
	msg := "deployment " + string(s.State)
	if s.Desired > 0 || s.Running > 0 {
		msg += fmt.Sprintf(": %d/%d tasks running", s.Running, s.Desired)
	}
	return msg
}

// Event is one service event.
type Event struct {
	At      time.Time
	Message string
}

// Failure is a deployment that ended without rolling its revision out, or
// that deploybot stopped waiting for, with what explains it: the stopped
// tasks' reasons and exit codes and the service's events since the change
// (Copilot's rollout streamer, docs/research/aws-ecs.md §2.3).
type Failure struct {
	Service      Service
	Deployment   string // the service deployment ARN, or the deployment id
	State        State
	Reason       string
	StoppedTasks []plan.StoppedTask // newest first
	Events       []Event            // newest first
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ECS deployment of %s ended %s", f.Service, f.State)
	if f.Reason != "" {
		fmt.Fprintf(&b, ": %s", f.Reason)
	}
	for i, t := range f.StoppedTasks {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "; stopped task: %s", t.StoppedReason)
		if t.ContainerReason != "" {
			fmt.Fprintf(&b, " (%s)", t.ContainerReason)
		} else if t.ExitCode != nil {
			fmt.Fprintf(&b, " (exit code %d)", *t.ExitCode)
		}
	}
	for i, ev := range f.Events {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "; event: %s", ev.Message)
	}
	return b.String()
}

// Watcher reads and changes ECS deployments of one account and region.
// The zero value is not usable: ECS and Clock are required.
type Watcher struct {
	ECS   awsapi.ECSAPI
	Clock clock.Clock

	// unsupported is the answer that showed the endpoint lacks the service
	// deployments API; from then on this Watcher reads rolloutState.
	unsupported error
}

// NewWatcher returns a Watcher on api and clk.
func NewWatcher(api awsapi.ECSAPI, clk clock.Clock) *Watcher {
	return &Watcher{ECS: api, Clock: clk}
}

// Fallback says why the Watcher reads rolloutState instead of the service
// deployments API, or "" while it uses that API.
func (w *Watcher) Fallback() string {
	if w.unsupported == nil {
		return ""
	}
	return "this ECS endpoint does not implement the service deployments API (" + firstLine(w.unsupported.Error()) +
		"); following the service's deployments[].rolloutState instead"
}

// ShortTaskDefinition turns a task-definition ARN into family:revision.
func ShortTaskDefinition(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// PrimaryDeploymentID is the id of the PRIMARY deployment among a
// service's deployments ("" when there is none), as CreateService and
// UpdateService return them: the deployment the call started, if it
// started one.
func PrimaryDeploymentID(deployments []ecstypes.Deployment) string {
	for _, d := range deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			return aws.ToString(d.Id)
		}
	}
	return ""
}
