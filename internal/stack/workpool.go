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
	groups := flowRunSecurityGroups(env, np)
	deps := []string{AddrSecret, AddrFlowExecutionRole, AddrFlowTaskRole, AddrFlowRunLogGroup}
	deps = append(deps, refAddresses(groups)...)
	if np.VPC.Address != "" {
		deps = append(deps, np.VPC.Address)
	}
	deps = append(deps, refAddresses(np.Subnets)...)
	return prefect.WorkPool.New(AddrWorkPool, n.WorkPool, dedupe(deps), &prefect.WorkPoolSpec{
		Name:        n.WorkPool,
		Environment: env.Name,
		Create:      env.Prefect.CreateWorkPool,
		Defaults: prefect.JobDefaults{
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
		},
	}, maps.Clone(tags))
}

// poolSecretVariable is the job template variable that injects the
// Prefect credentials' secret into each flow run: the API key's. A
// self-hosted server with basic auth (prefect.auth: basic, issue 10) uses
// prefect_api_auth_string_secret_arn instead, and the key's variable must
// then stay unset (docs/research/prefect-flow-runs.md §A.5, §F).
func poolSecretVariable(*config.Environment) string {
	return prefect.VarAPIKeySecret
}
