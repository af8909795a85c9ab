package awssim

import "time"

// Timings are the durations the simulated account takes for the things AWS
// does asynchronously. Each world has its own (World.Timings), so tests that
// shorten or stretch one can run in parallel. DefaultTimings cites where each
// value comes from.
type Timings struct {
	// ECS tasks (ecs_sched.go). Typical of what the ECS console shows for a
	// small Fargate task.

	// TaskProvisioning: PROVISIONING (ENI attached) before ECS assumes the
	// execution role and starts pulling.
	TaskProvisioning time.Duration
	// ImagePull: PENDING while the image is pulled, then RUNNING.
	ImagePull time.Duration
	// PullFailure: how long a pull of a missing image takes to fail.
	PullFailure time.Duration
	// SecretFailure: how long fetching an unreadable secret takes to fail.
	SecretFailure time.Duration
	// NoInternetTimeout: without a route to the registry or Secrets Manager
	// the pull retries until it times out (docs/research/aws-ecs.md §3,
	// aws-actions #102: "ResourceInitializationError ... i/o timeout").
	NoInternetTimeout time.Duration
	// TaskDrain: a task the scheduler stops goes DEACTIVATING → STOPPING →
	// DEPROVISIONING → STOPPED over this long (SIGTERM, stopTimeout, ENI detach).
	TaskDrain time.Duration
	// FailedTaskStop: a task that failed to start or crashed is STOPPED this
	// long after the failure (DEPROVISIONING).
	FailedTaskStop time.Duration
	// DeploymentStart: a new service deployment is PENDING this long before
	// it is IN_PROGRESS and launches tasks.
	DeploymentStart time.Duration
	// SteadyStateWindow: a deployment is COMPLETED once its tasks have been
	// running and healthy, and the old ones gone, for this long (so that a
	// container that exits after a few seconds fails the deployment).
	SteadyStateWindow time.Duration
	// RelaunchDelay: the scheduler's back-off before replacing a failed task.
	RelaunchDelay time.Duration
	// StoppedTaskRetention: DescribeTasks shows STOPPED tasks for about an hour.
	StoppedTaskRetention time.Duration
	// InactiveServiceRetention: after DRAINING → INACTIVE, DescribeServices
	// shows the service for a while, then answers MISSING
	// (docs/research/aws-ecs.md §4.3: "INACTIVE for a while and later MISSING").
	InactiveServiceRetention time.Duration

	// IAMPropagation is how long after CreateRole (or a trust-policy change)
	// ECS still cannot assume the role: IAM is eventually consistent and ECS
	// fails tasks with "ECS was unable to assume the role" meanwhile
	// (docs/research/aws-ecs.md §5.2: wait about 10-15 s before ECS uses a
	// new role).
	IAMPropagation time.Duration

	// NAT gateways (ec2_nat.go). AWS documents that a NAT gateway is
	// `pending` while it is provisioned (typically a minute or two) and that
	// a deleted one stays visible in the `deleted` state "for a short while,
	// usually an hour"; the delete itself takes about a minute
	// (docs/research/aws-ecs.md §5: the provider polls deleting→gone every 10 s).
	NATPendingFor, NATDeletingFor, NATDeletedVisibleFor time.Duration

	// ENILinger is how long a Fargate task's ENI outlives the task
	// (docs/research/aws-ecs.md §5.1: ENIs go away only some time after ECS
	// stops the task; they cannot be deleted by the user).
	ENILinger time.Duration

	// Cloud Map operations (discovery.go). Namespace creation and deletion
	// are asynchronous (Route 53 private hosted zones): callers poll
	// GetOperation SUBMITTED → PENDING → SUCCESS | FAIL
	// (docs/research/aws-ecs.md §5 table, "Cloud Map namespace"; the provider
	// waits up to 5 minutes).
	CloudMapSubmitted       time.Duration // SUBMITTED before PENDING
	CloudMapNamespaceCreate time.Duration // within the 30-60 s seen in practice
	CloudMapNamespaceDelete time.Duration
	CloudMapInstanceOp      time.Duration // DeregisterInstance, UpdateService

	// SecretForceDeletePurge is how long a secret deleted with
	// ForceDeleteWithoutRecovery keeps its name: the deletion is asynchronous
	// and a CreateSecret right after it fails "scheduled for deletion"
	// (docs/research/aws-ecs.md §5 table, Secrets CreateSecret: the provider
	// retries that message for up to 2 minutes).
	SecretForceDeletePurge time.Duration
}

// DefaultTimings are the durations of a world made without WithTimings.
func DefaultTimings() Timings {
	return Timings{
		TaskProvisioning:         10 * time.Second,
		ImagePull:                20 * time.Second,
		PullFailure:              5 * time.Second,
		SecretFailure:            3 * time.Second,
		NoInternetTimeout:        60 * time.Second,
		TaskDrain:                30 * time.Second,
		FailedTaskStop:           5 * time.Second,
		DeploymentStart:          2 * time.Second,
		SteadyStateWindow:        30 * time.Second,
		RelaunchDelay:            10 * time.Second,
		StoppedTaskRetention:     time.Hour,
		InactiveServiceRetention: time.Hour,
		IAMPropagation:           10 * time.Second,
		NATPendingFor:            90 * time.Second,
		NATDeletingFor:           60 * time.Second,
		NATDeletedVisibleFor:     time.Hour,
		ENILinger:                90 * time.Second,
		CloudMapSubmitted:        5 * time.Second,
		CloudMapNamespaceCreate:  45 * time.Second,
		CloudMapNamespaceDelete:  30 * time.Second,
		CloudMapInstanceOp:       10 * time.Second,
		SecretForceDeletePurge:   10 * time.Second,
	}
}

// Option configures a World made by New.
type Option func(*World)

// WithTimings changes some of the world's durations, starting from
// DefaultTimings: awssim.WithTimings(func(t *awssim.Timings) { t.ENILinger = 6 * time.Hour }).
func WithTimings(edit func(*Timings)) Option {
	return func(w *World) { edit(&w.timings) }
}

// WithAccount sets the account id (default DefaultAccount).
func WithAccount(id string) Option { return func(w *World) { w.Account = id } }

// WithRegion sets the region (default us-east-1).
func WithRegion(region string) Option { return func(w *World) { w.Region = region } }

// Timings returns the world's durations (fixed when the world is made).
func (w *World) Timings() Timings { return w.timings }
