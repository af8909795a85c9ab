package config

import "time"

// Environment is one validated environment file. Field names mirror the YAML
// keys (see environments/schema.json). Defaults are filled by Load.
type Environment struct {
	// File is the path the environment was loaded from (for messages).
	File string `yaml:"-" json:"-"`

	Name             string            `yaml:"name"`
	AWS              AWS               `yaml:"aws"`
	Prefect          Prefect           `yaml:"prefect"`
	Worker           Worker            `yaml:"worker"`
	FlowRuns         FlowRuns          `yaml:"flow_runs"`
	Network          Network           `yaml:"network"`
	ServiceDiscovery ServiceDiscovery  `yaml:"service_discovery"`
	HealthGate       HealthGate        `yaml:"health_gate"`
	Protect          bool              `yaml:"protect"`
	Tags             map[string]string `yaml:"tags"`

	// Lines maps a dotted field path ("worker.cpu", "network.subnet_ids[1]")
	// to its line in File, so later stages can point at the file too.
	Lines map[string]int `yaml:"-" json:"-"`
}

type AWS struct {
	AccountID    string `yaml:"account_id"`
	Region       string `yaml:"region"`
	PlanRoleARN  string `yaml:"plan_role_arn"`
	ApplyRoleARN string `yaml:"apply_role_arn"`
}

type Prefect struct {
	// APIURL is a Prefect Cloud workspace URL
	// (https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>) or a
	// self-hosted server's .../api.
	APIURL   string `yaml:"api_url"`
	WorkPool string `yaml:"work_pool"`
	// CreateWorkPool lets preflight create a missing ecs work pool.
	CreateWorkPool bool `yaml:"create_work_pool"`
	// PruneOfflineWorkers deletes OFFLINE workers of earlier revisions after a
	// successful gate. Default true.
	PruneOfflineWorkers *bool `yaml:"prune_offline_workers"`
	// Auth is how deploybot and the worker authenticate: AuthAPIKey
	// (default; Prefect Cloud, or a server that takes keys) or AuthBasic (a
	// self-hosted server with PREFECT_SERVER_API_AUTH_STRING).
	Auth string `yaml:"auth"`
}

// Prefect authentication schemes (prefect.auth).
const (
	AuthAPIKey = "api_key"
	AuthBasic  = "basic"
)

// BasicAuth says whether the environment authenticates with a self-hosted
// server's auth string (prefect.auth: basic).
func (e *Environment) BasicAuth() bool { return e.Prefect.Auth == AuthBasic }

type Worker struct {
	Image            string            `yaml:"image"`
	CPU              int               `yaml:"cpu"`           // Fargate CPU units; default 512
	Memory           int               `yaml:"memory"`        // MiB; default 1024
	DesiredCount     int               `yaml:"desired_count"` // default 1
	Autoscaling      *Autoscaling      `yaml:"autoscaling"`   // nil: no autoscaling
	Env              map[string]string `yaml:"env"`
	LogRetentionDays int               `yaml:"log_retention_days"` // default 30
}

// FlowRuns are the defaults of the flow runs the worker launches: what the
// work pool's job template gives every flow run unless a deployment or the
// run itself overrides it (docs/research/prefect-flow-runs.md §A.4), and what
// the flow-run task role may do in AWS.
type FlowRuns struct {
	Image            string            `yaml:"image"`              // default worker.image
	CPU              int               `yaml:"cpu"`                // Fargate CPU units; default 1024
	Memory           int               `yaml:"memory"`             // MiB; default 2048
	LogRetentionDays int               `yaml:"log_retention_days"` // default 30
	Env              map[string]string `yaml:"env"`
	// TaskRolePolicyARNs are managed policies attached to the flow-run task
	// role deploybot-NAME-flow-task.
	TaskRolePolicyARNs []string `yaml:"task_role_policy_arns"`
	// TaskRolePolicy is an inline IAM policy document (JSON) of the
	// flow-run task role; "" for none.
	TaskRolePolicy PolicyJSON `yaml:"task_role_policy"`
}

// PolicyJSON is an IAM policy document as JSON. The file may give it as a
// string holding the JSON (a block scalar pasted from the console) or as a
// YAML mapping, which the loader turns into JSON.
type PolicyJSON string

type Autoscaling struct {
	Min              int `yaml:"min"`
	Max              int `yaml:"max"`
	TargetCPUPercent int `yaml:"target_cpu_percent"` // default 70
}

type Network struct {
	Mode string `yaml:"mode"` // "managed" (default) or "existing"

	// managed
	CIDR              string `yaml:"cidr"`               // default 10.0.0.0/16
	AvailabilityZones int    `yaml:"availability_zones"` // default 2
	NAT               string `yaml:"nat"`                // none (default) | single | per-az

	// existing
	VPCID            string   `yaml:"vpc_id"`
	SubnetIDs        []string `yaml:"subnet_ids"`
	AssignPublicIP   *bool    `yaml:"assign_public_ip"`
	SecurityGroupIDs []string `yaml:"security_group_ids"`
}

type ServiceDiscovery struct {
	// Namespace is the Cloud Map private DNS namespace; default
	// "<name>.prefect.internal".
	Namespace string `yaml:"namespace"`
}

type HealthGate struct {
	Timeout          time.Duration `yaml:"timeout"`            // default 10m
	MinOnlineWorkers int           `yaml:"min_online_workers"` // default 1
	// FlowRun runs a smoke flow run on the new revision (default true).
	FlowRun *bool `yaml:"flow_run"`
}

// SmokeFlowRun reports health_gate.flow_run with its default.
func (e *Environment) SmokeFlowRun() bool {
	return e.HealthGate.FlowRun == nil || *e.HealthGate.FlowRun
}

// PublicIP says whether the worker's tasks get a public IP: with a managed
// network and nat: none they run in public subnets and need one.
func (e *Environment) PublicIP() bool {
	if e.Network.Mode == "existing" {
		return e.Network.AssignPublicIP != nil && *e.Network.AssignPublicIP
	}
	return e.Network.NAT == "none"
}

// Prune reports prefect.prune_offline_workers with its default.
func (e *Environment) Prune() bool {
	return e.Prefect.PruneOfflineWorkers == nil || *e.Prefect.PruneOfflineWorkers
}
