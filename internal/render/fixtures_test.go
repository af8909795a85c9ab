package render

import (
	"time"

	"github.com/deploybot/deploybot/internal/plan"
)

// Hand-built plans and reports shaped like the engine's: the names follow
// the naming contract (docs/ARCHITECTURE.md), values are normalised strings.

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
	testHead    = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
	testBase    = "0123456789abcdef0123456789abcdef01234567"
	testRunURL  = "https://github.com/acme/infra/actions/runs/4242"
)

func add(path, after string) plan.FieldChange { return plan.FieldChange{Path: path, After: after} }

func tagFields(env string) []plan.FieldChange {
	return []plan.FieldChange{
		add("tags.deploybot:environment", env),
		add("tags.deploybot:stack", "prefect-worker"),
		add("tags.managed-by", "deploybot"),
		add("tags.team", "data-platform"),
	}
}

func withTags(env string, fs ...plan.FieldChange) []plan.FieldChange {
	return append(fs, tagFields(env)...)
}

const execAssumeRole = `{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"}}],"Version":"2012-10-17"}`

func containerDefinition(image string) string {
	return `[{"command":["/bin/sh","-c","exec prefect worker start --pool \"$DEPLOYBOT_WORK_POOL\" --type ecs --with-healthcheck --name \"$DEPLOYBOT_WORKER_PREFIX-$(hostname)\""],` +
		`"environment":[{"name":"DEPLOYBOT_WORKER_PREFIX","value":"staging-1a2b3c4d"},{"name":"DEPLOYBOT_WORK_POOL","value":"ecs-work-pool"},{"name":"PREFECT_API_URL","value":"https://api.prefect.cloud/api/accounts/acct/workspaces/ws"},{"name":"PREFECT_LOGGING_LEVEL","value":"INFO"}],` +
		`"essential":true,"image":"` + image + `","name":"worker",` +
		`"secrets":[{"name":"PREFECT_API_KEY","valueFrom":"(known after apply)"}]}]`
}

// stagingPlan is the plan of environment staging in the test account with
// the given changes and notes, fingerprinted.
func stagingPlan(op plan.Operation, changes []plan.Change, notes ...string) *plan.Plan {
	p := &plan.Plan{Environment: "staging", File: "environments/staging.yaml", Account: testAccount, Region: testRegion,
		Operation: op, Changes: changes, Notes: notes}
	p.Fingerprint = p.ComputeFingerprint()
	return p
}

// createPlan creates the whole compute stack of a new environment.
func createPlan() *plan.Plan {
	env := "staging"
	return stagingPlan(plan.OpApply, []plan.Change{
		{Address: "security_group.worker", Kind: "security_group", Name: "deploybot-staging-worker", Action: plan.Create,
			Fields: withTags(env,
				add("description", "deploybot staging Prefect worker (egress only)"),
				add("egress", `[{"cidr":"0.0.0.0/0","protocol":"-1"}]`),
				add("id", plan.Unknown),
				add("ingress", "[]"),
				add("vpc_id", "vpc-0a1b2c3d4e5f60718"))},
		{Address: "ecs_cluster.main", Kind: "ecs_cluster", Name: "deploybot-staging", Action: plan.Create,
			Fields: withTags(env, add("arn", plan.Unknown), add("container_insights", "enabled"), add("name", "deploybot-staging"))},
		{Address: "log_group.worker", Kind: "log_group", Name: "/deploybot/staging/worker", Action: plan.Create,
			Fields: withTags(env, add("name", "/deploybot/staging/worker"), add("retention_in_days", "30"))},
		{Address: "secret.prefect_api_key", Kind: "secret", Name: "deploybot/staging/prefect-api-key", Action: plan.Create,
			Fields: withTags(env, add("arn", plan.Unknown), add("name", "deploybot/staging/prefect-api-key"),
				plan.FieldChange{Path: "value", Sensitive: true})},
		{Address: "iam_role.execution", Kind: "iam_role", Name: "deploybot-staging-execution", Action: plan.Create,
			Fields: withTags(env,
				add("assume_role_policy", execAssumeRole),
				add("inline_policy.read-prefect-api-key", `{"Statement":[{"Action":"secretsmanager:GetSecretValue","Effect":"Allow","Resource":"(known after apply)"}],"Version":"2012-10-17"}`),
				add("managed_policy_arns", `["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]`),
				add("path", "/deploybot/"))},
		{Address: "iam_role.task", Kind: "iam_role", Name: "deploybot-staging-task", Action: plan.Create,
			Fields: withTags(env,
				add("assume_role_policy", execAssumeRole),
				add("inline_policy.prefect-ecs-worker", `{"Statement":[{"Action":["ec2:DescribeSubnets","ec2:DescribeVpcs","ecs:DescribeTasks","ecs:RegisterTaskDefinition","ecs:RunTask","ecs:StopTask","ecs:TagResource","logs:GetLogEvents"],"Effect":"Allow","Resource":"*"},{"Action":"iam:PassRole","Effect":"Allow","Resource":["arn:aws:iam::123456789012:role/deploybot/deploybot-staging-execution","arn:aws:iam::123456789012:role/deploybot/deploybot-staging-task"]}],"Version":"2012-10-17"}`),
				add("path", "/deploybot/"))},
		{Address: "ecs_task_definition.worker", Kind: "ecs_task_definition", Name: "deploybot-staging-worker", Action: plan.Create,
			Fields: withTags(env,
				add("container_definitions", containerDefinition("prefecthq/prefect-aws:latest")),
				add("cpu", "512"),
				add("execution_role_arn", plan.Unknown),
				add("family", "deploybot-staging-worker"),
				add("memory", "1024"),
				add("network_mode", "awsvpc"),
				add("requires_compatibilities", `["FARGATE"]`),
				add("revision", plan.Unknown),
				add("task_role_arn", plan.Unknown))},
		{Address: "cloudmap_namespace.main", Kind: "cloudmap_namespace", Name: "staging.prefect.internal", Action: plan.Create,
			Fields: withTags(env, add("id", plan.Unknown), add("name", "staging.prefect.internal"), add("vpc_id", "vpc-0a1b2c3d4e5f60718"))},
		{Address: "cloudmap_service.worker", Kind: "cloudmap_service", Name: "worker", Action: plan.Create,
			Fields: withTags(env, add("dns_records", `[{"TTL":10,"Type":"A"}]`), add("name", "worker"), add("namespace_id", plan.Unknown))},
		{Address: "ecs_service.worker", Kind: "ecs_service", Name: "worker", Action: plan.Create,
			Fields: withTags(env,
				add("assign_public_ip", "true"),
				add("cluster", "deploybot-staging"),
				add("deployment_circuit_breaker", `{"enable":true,"rollback":true}`),
				add("desired_count", "1"),
				add("launch_type", "FARGATE"),
				add("security_groups", plan.Unknown),
				add("service_registries", plan.Unknown),
				add("subnets", `["subnet-0aa11bb22cc33dd44","subnet-0ee55ff66aa77bb88"]`),
				add("task_definition", plan.Unknown))},
		{Address: "autoscaling_target.worker", Kind: "autoscaling_target", Name: "service/deploybot-staging/worker", Action: plan.Create,
			Fields: []plan.FieldChange{add("max_capacity", "3"), add("min_capacity", "1"), add("resource_id", "service/deploybot-staging/worker"), add("scalable_dimension", "ecs:service:DesiredCount")}},
		{Address: "autoscaling_policy.cpu", Kind: "autoscaling_policy", Name: "deploybot-staging-worker-cpu", Action: plan.Create,
			Fields: []plan.FieldChange{add("policy_type", "TargetTrackingScaling"), add("predefined_metric", "ECSServiceAverageCPUUtilization"), add("target_value", "70")}},
	},
		"The worker runs in public subnets with a public IP because the file uses network.mode existing with assign_public_ip: true; it needs outbound internet access to reach Prefect Cloud.")
}

// updatePlan changes the image and cpu: a new task-definition revision and a
// service update to it.
func updatePlan() *plan.Plan {
	return stagingPlan(plan.OpApply, []plan.Change{
		{Address: "security_group.worker", Kind: "security_group", Name: "deploybot-staging-worker", Action: plan.NoOp},
		{Address: "ecs_cluster.main", Kind: "ecs_cluster", Name: "deploybot-staging", Action: plan.NoOp},
		{Address: "ecs_task_definition.worker", Kind: "ecs_task_definition", Name: "deploybot-staging-worker", Action: plan.Update,
			Reason: "task definitions are immutable: a new revision is registered and the old one is kept for rollback",
			Fields: []plan.FieldChange{
				{Path: "container_definitions", Before: containerDefinition("prefecthq/prefect-aws:3.1.0"), After: containerDefinition("prefecthq/prefect-aws:3.2.1")},
				{Path: "cpu", Before: "512", After: "1024"},
				{Path: "revision", Before: "3", After: plan.Unknown},
			}},
		{Address: "ecs_service.worker", Kind: "ecs_service", Name: "worker", Action: plan.Update,
			Fields: []plan.FieldChange{
				{Path: "task_definition", Before: "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:3", After: plan.Unknown},
			}},
		{Address: "autoscaling_target.worker", Kind: "autoscaling_target", Name: "service/deploybot-staging/worker", Action: plan.NoOp},
	})
}

// replacePlan moves the worker's security group to another VPC.
func replacePlan() *plan.Plan {
	p := &plan.Plan{
		Environment: "production", File: "environments/production.yaml", Account: "210987654321", Region: "eu-west-1",
		Operation: plan.OpApply,
		Changes: []plan.Change{
			{Address: "security_group.worker", Kind: "security_group", Name: "deploybot-production-worker", Action: plan.Replace,
				Reason: "vpc_id changed: a security group cannot move to another VPC",
				Fields: []plan.FieldChange{
					{Path: "id", Before: "sg-0123456789abcdef0", After: plan.Unknown},
					{Path: "vpc_id", Before: "vpc-0aaaaaaaaaaaaaaaa", After: "vpc-0bbbbbbbbbbbbbbbb", ForcesReplacement: true},
				}},
			{Address: "cloudmap_namespace.main", Kind: "cloudmap_namespace", Name: "production.prefect.internal", Action: plan.Replace,
				Reason: "vpc_id changed: a private DNS namespace belongs to one VPC",
				Fields: []plan.FieldChange{
					{Path: "vpc_id", Before: "vpc-0aaaaaaaaaaaaaaaa", After: "vpc-0bbbbbbbbbbbbbbbb", ForcesReplacement: true},
				}},
			{Address: "ecs_service.worker", Kind: "ecs_service", Name: "worker", Action: plan.Update,
				Fields: []plan.FieldChange{
					{Path: "security_groups", Before: `["sg-0123456789abcdef0"]`, After: plan.Unknown},
					{Path: "subnets", Before: `["subnet-0aaaaaaaaaaaaaaa1","subnet-0aaaaaaaaaaaaaaa2"]`, After: `["subnet-0bbbbbbbbbbbbbbb1","subnet-0bbbbbbbbbbbbbbb2"]`},
				}},
		},
		Notes: []string{"Replacing the security group redeploys the worker: ECS starts tasks in the new subnets before stopping the old ones."},
	}
	p.Fingerprint = p.ComputeFingerprint()
	return p
}

// destroyPlan tears the whole stack down, in delete order.
func destroyPlan() *plan.Plan {
	del := func(addr, kind, name string, fs ...plan.FieldChange) plan.Change {
		return plan.Change{Address: addr, Kind: kind, Name: name, Action: plan.Delete,
			Reason: "destroy requested for environment staging", Fields: fs}
	}
	return stagingPlan(plan.OpDestroy, []plan.Change{
		del("autoscaling_policy.cpu", "autoscaling_policy", "deploybot-staging-worker-cpu"),
		del("autoscaling_target.worker", "autoscaling_target", "service/deploybot-staging/worker"),
		del("ecs_service.worker", "ecs_service", "worker", plan.FieldChange{Path: "desired_count", Before: "1"}),
		del("cloudmap_service.worker", "cloudmap_service", "worker"),
		del("cloudmap_namespace.main", "cloudmap_namespace", "staging.prefect.internal"),
		del("ecs_task_definition.worker", "ecs_task_definition", "deploybot-staging-worker",
			plan.FieldChange{Path: "revisions", Before: `["deploybot-staging-worker:1","deploybot-staging-worker:2","deploybot-staging-worker:3"]`}),
		del("iam_role.task", "iam_role", "deploybot-staging-task"),
		del("iam_role.execution", "iam_role", "deploybot-staging-execution"),
		del("secret.prefect_api_key", "secret", "deploybot/staging/prefect-api-key",
			plan.FieldChange{Path: "recovery_window_in_days", Before: "7"}),
		del("log_group.worker", "log_group", "/deploybot/staging/worker"),
		del("ecs_cluster.main", "ecs_cluster", "deploybot-staging"),
		del("security_group.worker", "security_group", "deploybot-staging-worker"),
	},
		"The secret is scheduled for deletion with a 7-day recovery window; run destroy with --force to delete it at once.")
}

func noChangePlan() *plan.Plan {
	return stagingPlan(plan.OpApply, []plan.Change{
		{Address: "security_group.worker", Kind: "security_group", Name: "deploybot-staging-worker", Action: plan.NoOp},
		{Address: "ecs_cluster.main", Kind: "ecs_cluster", Name: "deploybot-staging", Action: plan.NoOp},
		{Address: "ecs_service.worker", Kind: "ecs_service", Name: "worker", Action: plan.NoOp},
	})
}

// conflictPlan: a cluster under our name that someone else made.
func conflictPlan() *plan.Plan {
	p := createPlan()
	p.Changes[1] = plan.Change{Address: "ecs_cluster.main", Kind: "ecs_cluster", Name: "deploybot-staging", Action: plan.Conflict,
		Reason: "an ECS cluster named deploybot-staging exists without the tag deploybot:environment=staging (tags: owner=alice)",
		Fields: []plan.FieldChange{{Path: "tags.deploybot:environment", After: "staging"}}}
	p.Fingerprint = p.ComputeFingerprint()
	return p
}

var t0 = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

func steps(p *plan.Plan, failAt string) []plan.StepResult {
	var out []plan.StepResult
	failed := false
	for i, c := range p.Changes {
		if c.Action == plan.NoOp {
			continue
		}
		s := plan.StepResult{Address: c.Address, Action: c.Action, Status: "done", Duration: time.Duration(i+1) * 1300 * time.Millisecond}
		switch {
		case failed:
			s.Status, s.Duration = "skipped", 0
		case c.Address == failAt:
			s.Status, s.Error = "failed", "create ecs_service.worker: InvalidParameterException: Unable to assume role arn:aws:iam::123456789012:role/deploybot/deploybot-staging-execution"
			failed = true
		}
		out = append(out, s)
	}
	return out
}

func int32p(v int32) *int32 { return &v }

// passedReport: the update applied and the new worker came online.
func passedReport() *plan.Report {
	p := updatePlan()
	return &plan.Report{
		Environment: "staging", Operation: plan.OpApply, Status: plan.StatusSucceeded, Plan: p,
		Steps: steps(p, ""),
		Deployment: &plan.DeploymentInfo{Cluster: "deploybot-staging", Service: "worker", DeploymentID: "ecs-svc/1234567890123456789",
			TaskDefinition:         "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:4",
			PreviousTaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:3",
			WorkerPrefix:           "staging-5e6f7a8b", StartedAt: t0.Add(40 * time.Second), Status: "SUCCESSFUL"},
		Gate: &plan.GateReport{Passed: true,
			Reason:      "1 worker of the new revision is ONLINE in work pool ecs-work-pool (1 required)",
			WorkPoolURL: "https://app.prefect.cloud/account/acct/workspace/ws/work-pools/work-pool/ecs-work-pool",
			Workers: []plan.WorkerStatus{
				{Name: "staging-5e6f7a8b-ip-10-20-1-17", Status: "ONLINE", LastHeartbeat: t0.Add(3 * time.Minute), NewRevision: true},
				{Name: "staging-1a2b3c4d-ip-10-20-2-9", Status: "OFFLINE", LastHeartbeat: t0.Add(90 * time.Second)},
			},
			PrunedWorkers: 1, Duration: 75 * time.Second},
		StartedAt: t0, FinishedAt: t0.Add(3*time.Minute + 12*time.Second),
	}
}

// rolledBackReport: the new revision never heartbeated; the service went
// back to revision 3 and its worker is online again.
func rolledBackReport() *plan.Report {
	r := passedReport()
	r.Status = plan.StatusRolledBack
	r.Error = "health gate: no worker of revision deploybot-staging-worker:4 came ONLINE in work pool ecs-work-pool within 5m0s"
	r.Gate = &plan.GateReport{Passed: false,
		Reason:      "no worker of the new revision came ONLINE within 5m0s (1 required); the old worker kept the pool READY",
		WorkPoolURL: "https://app.prefect.cloud/account/acct/workspace/ws/work-pools/work-pool/ecs-work-pool",
		Workers: []plan.WorkerStatus{
			{Name: "staging-1a2b3c4d-ip-10-20-2-9", Status: "ONLINE", LastHeartbeat: t0.Add(9 * time.Minute)},
		},
		ServiceEvents: []string{
			"(service worker) has started 1 tasks: (task 0f1e2d3c4b5a69788796a5b4c3d2e1f0).",
			"(service worker) rolling back to deployment ecs-svc/9876543210987654321.",
		},
		RolledBack: true, RolledBackTo: "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:3",
		RestoredWorkerOnline: true,
		Warnings:             []string{"the task logs show \"401 Unauthorized\" from the Prefect API: check the prefect-api-key secret"},
		Duration:             5*time.Minute + 40*time.Second}
	r.FinishedAt = t0.Add(8 * time.Minute)
	return r
}

// firstDeployFailedReport: a brand-new environment whose worker crash-loops;
// there is no earlier revision to go back to.
func firstDeployFailedReport() *plan.Report {
	p := createPlan()
	return &plan.Report{
		Environment: "staging", Operation: plan.OpApply, Status: plan.StatusFailed, Plan: p,
		Steps: steps(p, ""),
		Error: "health gate: tasks of deploybot-staging-worker:1 keep stopping (EssentialContainerExited, exit code 1)",
		Deployment: &plan.DeploymentInfo{Cluster: "deploybot-staging", Service: "worker", DeploymentID: "ecs-svc/1111111111111111111",
			TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:1",
			WorkerPrefix:   "staging-1a2b3c4d", StartedAt: t0.Add(2 * time.Minute), Status: "FAILED"},
		Gate: &plan.GateReport{Passed: false,
			Reason:      "tasks of the new revision stopped 3 times in 2m10s; stopped waiting before the 5m0s timeout",
			WorkPoolURL: "https://app.prefect.cloud/account/acct/workspace/ws/work-pools/work-pool/ecs-work-pool",
			StoppedTasks: []plan.StoppedTask{
				{TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/deploybot-staging/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
					StoppedReason: "Essential container in task exited", StopCode: "EssentialContainerExited", ExitCode: int32p(1),
					ContainerReason: "prefect.exceptions.PrefectHTTPStatusError: Client error '403 Forbidden' for url"},
				{TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/deploybot-staging/1a2b3c4d5e6f70819203a4b5c6d7e8f9",
					StoppedReason: "Essential container in task exited", StopCode: "EssentialContainerExited", ExitCode: int32p(1)},
			},
			ServiceEvents:     []string{"(service worker) deployment failed: tasks failed to start."},
			NothingToRollBack: true,
			Duration:          2*time.Minute + 10*time.Second},
		StartedAt: t0, FinishedAt: t0.Add(6 * time.Minute),
	}
}

// refusedReport: on merge the re-plan replaces something the reviewed plan
// did not, so nothing is applied.
func refusedReport() *plan.Report {
	p := replacePlan()
	return &plan.Report{
		Environment: "production", Operation: plan.OpApply, Status: plan.StatusRefused, Plan: p,
		Error:     "the plan changed since review: it now replaces security_group.worker and cloudmap_namespace.main, which the reviewed plan (fingerprint 0badc0ffee000000) did not; re-run the plan on a pull request and merge again",
		StartedAt: t0, FinishedAt: t0.Add(4 * time.Second),
	}
}
