package stack

import (
	"maps"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/resource"
)

// AddrWorkPool is the work pool's address.
const AddrWorkPool = "prefect_work_pool.main"

// workPool is the environment's Prefect work pool with the job template
// defaults that send its flow runs to this stack: its cluster, the
// worker's subnets with the flow-run security group (or the worker's own
// groups, when the file names them), the flow-run roles,
// the Prefect key's secret and the flow-run log group, and the file's
// flow_runs image, size and environment
// (docs/research/prefect-flow-runs.md §A.5).
// A Prefect work pool has no tags; the stack's are given for the record
// (the kind compares none).
func workPool(env *config.Environment, n Names, np NetworkPlacement, secretARN resource.Ref, tags map[string]string) resource.Resource {
	defaults, deps := poolDefaults(env, n, np, secretARN)
	return prefect.WorkPool.New(AddrWorkPool, n.WorkPool, deps, &prefect.WorkPoolSpec{
		Name:        n.WorkPool,
		Environment: env.Name,
		Create:      env.Prefect.CreateWorkPool,
		Defaults:    defaults,
	}, maps.Clone(tags))
}

// poolDefaults are the work pool's job template defaults and the
// addresses they name (the smoke deployment carries them too).
func poolDefaults(env *config.Environment, n Names, np NetworkPlacement, secretARN resource.Ref) (prefect.JobDefaults, []string) {
	groups := flowRunSecurityGroups(env, np)
	deps := []string{n.SecretAddress, AddrFlowExecutionRole, AddrFlowTaskRole, AddrFlowRunLogGroup}
	deps = append(deps, refAddresses(groups)...)
	if np.VPC.Address != "" {
		deps = append(deps, np.VPC.Address)
	}
	deps = append(deps, refAddresses(np.Subnets)...)
	return prefect.JobDefaults{
		ClusterARN:     n.ClusterARN,
		VPC:            np.VPC,
		Subnets:        np.Subnets,
		SecurityGroups: groups,
		AssignPublicIP: np.AssignPublicIP,
		ExecutionRole:  n.FlowExecutionRoleARN,
		TaskRole:       n.FlowTaskRoleARN,
		Secret:         secretARN,
		SecretVariable: poolSecretVariable(env),
		LogGroup:       n.FlowRunLogGroup,
		Region:         n.Region,
		StreamPrefix:   flowRunLogStreamPrefix,
		Image:          env.FlowRuns.Image,
		CPU:            env.FlowRuns.CPU,
		Memory:         env.FlowRuns.Memory,
		Env:            env.FlowRuns.Env,
	}, dedupe(deps)
}

// poolSecretVariable is the job template variable that injects the
// Prefect credentials' secret into each flow run: the API key's. A
// self-hosted server with basic auth (prefect.auth: basic, issue 10) uses
// prefect_api_auth_string_secret_arn instead, and the key's variable must
// then stay unset (docs/research/prefect-flow-runs.md §A.5, §F).
func poolSecretVariable(env *config.Environment) string {
	if env.BasicAuth() {
		return prefect.VarAuthStringSecret
	}
	return prefect.VarAPIKeySecret
}

// AddrSmokeDeployment is the smoke deployment's address.
const AddrSmokeDeployment = "prefect_deployment.smoke"

// SmokeWorkQueue is the work queue of the smoke deployment's runs: a queue
// of deploybot's own, so that no team's concurrency limit or paused queue
// holds the health gate's run up, and the run holds up none of theirs.
const SmokeWorkQueue = "deploybot-smoke"

// smokeJobVariables size the smoke run at Fargate's smallest (0.25 vCPU,
// 0.5 GB): it imports Prefect and prints a line.
var smokeJobVariables = map[string]any{"cpu": 256, "memory": 512}

// smokeDeployment is the deployment of the health gate's smoke flow in the
// environment's pool (health_gate.flow_run; docs/research/prefect-flow-runs.md
// §C, §D): deploybot-smoke/NAME, deleted by destroy (and when flow_run is
// turned off). Its job variables are the pool's defaults as the file asks
// for them (cluster, network, roles, image, logs; its own size on top), so
// that the smoke run proves the flow runs' new settings before an existing
// pool gets them: deploy writes a changed pool's defaults only after the
// gate passed (internal/deploy).
func smokeDeployment(env *config.Environment, n Names, np NetworkPlacement, secretARN resource.Ref, tags map[string]string) resource.Resource {
	defaults, deps := poolDefaults(env, n, np, secretARN)
	return prefect.Deployment.New(AddrSmokeDeployment, n.SmokeDeployment, dedupe(append([]string{AddrWorkPool}, deps...)), &prefect.DeploymentSpec{
		Flow: prefect.SmokeFlow, Name: n.SmokeDeployment, WorkPool: n.WorkPool, WorkQueue: SmokeWorkQueue,
		Defaults: &defaults, JobVariables: maps.Clone(smokeJobVariables),
		Description: "deploybot's smoke flow for environment " + env.Name + ": the health gate runs it once per deploy, on a worker of the new revision; " +
			"destroying the environment (or health_gate.flow_run: false) deletes this deployment.",
	}, maps.Clone(tags))
}
