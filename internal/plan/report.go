package plan

import "time"

// Status is the outcome of an apply or destroy.
type Status string

const (
	StatusSucceeded  Status = "succeeded"
	StatusNoChanges  Status = "no_changes"
	StatusFailed     Status = "failed"
	StatusRolledBack Status = "rolled_back" // the gate failed and the previous revision was restored
	StatusRefused    Status = "refused"     // nothing was done (stale plan, protected env, bad confirm, lock held)
)

// Report is what happened when a plan was applied (or destroyed), filled by
// the engine, the health gate and the Action, rendered by internal/render.
type Report struct {
	Environment string       `json:"environment"`
	Operation   Operation    `json:"operation"`
	Status      Status       `json:"status"`
	Plan        *Plan        `json:"plan,omitempty"`
	Steps       []StepResult `json:"steps,omitempty"`
	// Deployment is the ECS service deployment the apply started, if any.
	Deployment *DeploymentInfo `json:"deployment,omitempty"`
	// Rollback is the ECS deployment that restored the previous revision
	// when deploybot rolled back (ECS's own state of it), if any.
	Rollback *DeploymentInfo `json:"rollback,omitempty"`
	Gate     *GateReport     `json:"gate,omitempty"`
	// Error is the first error, as the user should read it (no credentials).
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Outcomes are what the resource kinds handed back about their changes
	// (the ECS deployment a service update started), for the layer above
	// the engine to consume; the engine passes them on without knowing what
	// they are. Not part of the report's JSON.
	Outcomes []Outcome `json:"-"`
}

// Outcome is one kind's account of its change of the resource at Address.
type Outcome struct {
	Address string
	Value   any
}

// StepResult is one resource's outcome.
type StepResult struct {
	Address  string        `json:"address"`
	Action   Action        `json:"action"`
	Status   string        `json:"status"` // "done" | "failed" | "skipped" (a dependency failed)
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// DeploymentInfo identifies the ECS deployment an apply caused.
type DeploymentInfo struct {
	Cluster      string `json:"cluster"`
	Service      string `json:"service"`
	DeploymentID string `json:"deployment_id,omitempty"`
	// ARN is the service deployment's ARN, when ECS listed one (the
	// deployment's own name in ECS's service deployments API).
	ARN                    string    `json:"arn,omitempty"`
	TaskDefinition         string    `json:"task_definition"`                    // the new revision's ARN
	PreviousTaskDefinition string    `json:"previous_task_definition,omitempty"` // "" on a first deploy
	WorkerPrefix           string    `json:"worker_prefix,omitempty"`            // the new revision's worker-name prefix
	StartedAt              time.Time `json:"started_at"`
	Status                 string    `json:"status"` // ECS: SUCCESSFUL | FAILED | ROLLBACK_SUCCESSFUL | ...
}

// GateReport is the Prefect health gate's outcome.
type GateReport struct {
	Passed bool   `json:"passed"`
	Reason string `json:"reason"` // one sentence: why it passed or failed
	// WorkPoolURL is the Prefect UI page of the work pool (the Deployment's environment URL).
	WorkPoolURL string         `json:"work_pool_url,omitempty"`
	Workers     []WorkerStatus `json:"workers,omitempty"`
	// StoppedTasks and ServiceEvents explain a fail-fast from ECS.
	StoppedTasks  []StoppedTask `json:"stopped_tasks,omitempty"`
	ServiceEvents []string      `json:"service_events,omitempty"`
	// Stages are the gate's checks of the new revision, in the order they
	// ran (its workers ONLINE, then its smoke flow run); the first failed
	// one ends them.
	Stages []GateStage `json:"stages,omitempty"`
	// FlowRun is the smoke flow run the gate started (nil when the stage
	// did not run: health_gate.flow_run false, or an earlier stage failed).
	FlowRun *GateFlowRun `json:"flow_run,omitempty"`
	// Rollback is the rollback step after a failed stage, with its own
	// outcome (nil when the gate passed or could not run). The flat fields
	// below summarise it.
	Rollback *GateRollback `json:"rollback,omitempty"`
	// Rollback.
	RolledBack           bool          `json:"rolled_back"`
	RolledBackTo         string        `json:"rolled_back_to,omitempty"`
	NothingToRollBack    bool          `json:"nothing_to_roll_back,omitempty"` // a first deploy failed
	RestoredWorkerOnline bool          `json:"restored_worker_online,omitempty"`
	PrunedWorkers        int           `json:"pruned_workers,omitempty"`
	Warnings             []string      `json:"warnings,omitempty"`
	Duration             time.Duration `json:"duration"`
}

// GateStage is one check of the health gate and how it ended.
type GateStage struct {
	Name     string        `json:"name"` // "workers", "flow_run"
	Passed   bool          `json:"passed"`
	Reason   string        `json:"reason"`
	Duration time.Duration `json:"duration"`
}

// GateFlowRun is the health gate's smoke flow run: a tiny flow of a
// deployment of deploybot's in the environment's work pool, which a worker
// of the new revision must run to COMPLETED in the environment's own
// cluster, network and roles.
type GateFlowRun struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// URL is the run's page in the Prefect UI.
	URL string `json:"url,omitempty"`
	// Deployment is the smoke deployment, "flow/deployment".
	Deployment string `json:"deployment"`
	// State and StateName are Prefect's (COMPLETED/Completed, CRASHED/
	// Crashed, PENDING/Pending, SCHEDULED/Late, ...); Message is the
	// state's message.
	State     string `json:"state"`
	StateName string `json:"state_name,omitempty"`
	Message   string `json:"message,omitempty"`
	// Worker is the worker that submitted it (its prefect.worker.name
	// label), "" while none has; NewRevision says it is of the new revision.
	Worker      string `json:"worker,omitempty"`
	NewRevision bool   `json:"new_revision"`
	// Task is the ECS task it ran as (the task ARN of its
	// infrastructure_pid), Cluster that task's cluster.
	Task    string `json:"task,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	// Reused: an earlier apply of the same deploy started it (the same
	// idempotency key), so this gate followed it.
	Reused bool `json:"reused,omitempty"`
	// Cancelled: the gate cancelled it (it did not finish in time).
	Cancelled bool `json:"cancelled,omitempty"`
	// Duration is from its creation to its end (or to the gate giving up).
	Duration time.Duration `json:"duration"`
	// Stopped is why its ECS task stopped, when it did not complete.
	Stopped *StoppedTask `json:"stopped,omitempty"`
	// Logs are the first lines of its logs, when it did not complete.
	Logs []string `json:"logs,omitempty"`
}

// RollbackOutcome is how the gate's rollback step ended.
type RollbackOutcome string

const (
	// RollbackRestored: the service runs the previous revision again and a
	// worker of it is ONLINE (judged by what Prefect reports).
	RollbackRestored RollbackOutcome = "restored"
	// RollbackWorkerNotBack: ECS rolled the service back, but no worker of
	// the previous revision came ONLINE within the gate's timeout.
	RollbackWorkerNotBack RollbackOutcome = "worker_not_back"
	// RollbackNotComplete: the rollback started but ECS had not finished it
	// within the gate's timeout (ECS carries on with it).
	RollbackNotComplete RollbackOutcome = "not_complete"
	// RollbackFailed: the rollback could not be started, or ECS failed it.
	RollbackFailed RollbackOutcome = "failed"
	// RollbackNothingToRollBackTo: a first deploy failed.
	RollbackNothingToRollBackTo RollbackOutcome = "nothing_to_roll_back_to"
	// RollbackSkipped: the service runs neither the new nor the previous
	// revision (another deploy?), so it was left alone.
	RollbackSkipped RollbackOutcome = "skipped"
)

// GateRollback is the gate's rollback step.
type GateRollback struct {
	Outcome RollbackOutcome `json:"outcome"`
	From    string          `json:"from"`         // the failed revision
	To      string          `json:"to,omitempty"` // the previous revision
	// ByECS: ECS's circuit breaker rolled back; deploybot only watched.
	ByECS bool `json:"by_ecs"`
	// DeploymentID identifies the rollback deployment (deploybot's
	// UpdateService, or the failed deployment ECS rolled back in place).
	DeploymentID string `json:"deployment_id,omitempty"`
	// DeploymentStatus is the rollback deployment's state as ECS last
	// reported it (SUCCESSFUL, ROLLBACK_SUCCESSFUL, IN_PROGRESS, ...).
	DeploymentStatus string `json:"deployment_status,omitempty"`
	// Worker is the previous revision's worker seen ONLINE again.
	Worker   string        `json:"worker,omitempty"`
	Reason   string        `json:"reason"`
	Duration time.Duration `json:"duration"`
}

// WorkerStatus is one Prefect worker as the gate saw it last.
type WorkerStatus struct {
	Name          string    `json:"name"`
	Status        string    `json:"status"` // ONLINE | OFFLINE
	LastHeartbeat time.Time `json:"last_heartbeat"`
	NewRevision   bool      `json:"new_revision"`
}

// StoppedTask is an ECS task of the new revision that stopped.
type StoppedTask struct {
	TaskARN         string `json:"task_arn"`
	StoppedReason   string `json:"stopped_reason"`
	StopCode        string `json:"stop_code,omitempty"`
	ExitCode        *int32 `json:"exit_code,omitempty"`
	ContainerReason string `json:"container_reason,omitempty"`
}
