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
	Cluster                string    `json:"cluster"`
	Service                string    `json:"service"`
	DeploymentID           string    `json:"deployment_id,omitempty"`
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
	// Rollback.
	RolledBack           bool          `json:"rolled_back"`
	RolledBackTo         string        `json:"rolled_back_to,omitempty"`
	NothingToRollBack    bool          `json:"nothing_to_roll_back,omitempty"` // a first deploy failed
	RestoredWorkerOnline bool          `json:"restored_worker_online,omitempty"`
	PrunedWorkers        int           `json:"pruned_workers,omitempty"`
	Warnings             []string      `json:"warnings,omitempty"`
	Duration             time.Duration `json:"duration"`
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
