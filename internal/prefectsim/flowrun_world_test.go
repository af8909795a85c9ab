package prefectsim_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/simtest"
)

// Flow runs through the simulated ECS worker (simworker.go, flowrun.go):
// what a deploy's smoke run (docs/research/prefect-flow-runs.md §D) meets in
// the simulated account and API.

const (
	workerImage  = "prefecthq/prefect-aws:0.7.2-python3.12"
	flowRunGroup = "/deploybot/staging/flow-runs"
)

type runWorld struct {
	w        *simtest.World
	ws       *simtest.WorkerStack
	roles    simtest.FlowRunRoles
	observer simtest.Observer
}

type runSetup struct {
	observer       bool // the ECS observer's queue, rule and worker env
	observerPolicy bool // the queue policy that lets the rule deliver
	workerEnv      map[string]string
	workerPolicy   func(simtest.FlowRunRoles, string) string // default simtest.WorkerRunPolicy
	stack          []simtest.StackOption
	workerCommand  []string
}

// newRunWorld starts a worker service polling "ecs-pool" and waits until
// the API lists it ONLINE.
func newRunWorld(t *testing.T, set runSetup) *runWorld {
	t.Helper()
	w := simtest.New(t, simtest.WithPool("ecs-pool"))
	x := &runWorld{w: w, ws: w.NewWorkerStack(t, "staging", "ecs-pool", "", set.stack...)}
	x.roles = x.ws.CreateFlowRunRoles(t)
	env := map[string]string{}
	for k, v := range set.workerEnv {
		env[k] = v
	}
	if set.observer {
		x.observer = x.ws.CreateObserver(t, set.observerPolicy)
		env["PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME"] = x.observer.Queue
	}
	policy := simtest.WorkerRunPolicy
	if set.workerPolicy != nil {
		policy = set.workerPolicy
	}
	x.ws.SetTaskRolePolicy(t, policy(x.roles, x.observer.QueueARN))
	x.ws.CreateLogGroup(t, flowRunGroup)
	td := x.ws.RegisterWorker(t, workerImage, "deploybot-staging", func(c *ecstypes.ContainerDefinition) {
		for _, k := range slices.Sorted(maps.Keys(env)) {
			c.Environment = append(c.Environment, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(env[k])})
		}
		if set.workerCommand != nil {
			c.Command = set.workerCommand
		}
	})
	x.ws.CreateService(t, td, 1)
	for i := 0; i < 60 && len(x.onlineWorkers()) == 0; i++ {
		w.Advance(5 * time.Second)
	}
	if len(x.onlineWorkers()) == 0 {
		t.Fatal("the worker never came ONLINE")
	}
	return x
}

func (x *runWorld) onlineWorkers() []string { return x.w.Prefect.OnlineWorkers("ecs-pool") }

// goodVariables are the variable defaults of a pool whose runs work: the
// stack's cluster and network, the flow-run roles, the key as a secret,
// awslogs into an existing group (fact 2, §A.6).
func (x *runWorld) goodVariables() map[string]any {
	return map[string]any{
		"cluster": x.ws.Cluster, "vpc_id": x.ws.VPC,
		"network_configuration": map[string]any{"subnets": toAny(x.ws.Subnets), "securityGroups": []any{x.ws.SecurityGroup}, "assignPublicIp": "ENABLED"},
		"execution_role_arn":    x.roles.Execution, "task_role_arn": x.roles.Task, "prefect_api_key_secret_arn": x.ws.Secret,
		"configure_cloudwatch_logs": true, "cloudwatch_logs_options": map[string]any{"awslogs-group": flowRunGroup, "awslogs-create-group": "false"},
		"match_latest_revision_in_family": true,
	}
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// template sets the pool's template: goodVariables with edits (a nil value
// removes the default).
// unpullableImage makes the pool's template run an image whose pull fails,
// so the flow-run task stops before its container starts.
func (x *runWorld) unpullableImage(t *testing.T) {
	t.Helper()
	x.template(t, map[string]any{"image": "prefecthq/prefect:3-missing"})
	x.w.AWS.SetImageBehavior("prefecthq/prefect:3-missing", awssim.ImageBehavior{PullFails: true})
}

func (x *runWorld) template(t *testing.T, edits map[string]any) {
	t.Helper()
	vars := x.goodVariables()
	for k, v := range edits {
		if v == nil {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	x.w.SetPoolTemplate(t, "ecs-pool", simtest.ECSTemplate(vars))
}

// smoke runs the smoke deployment once and waits up to timeout.
func (x *runWorld) smoke(t *testing.T, timeout time.Duration) (string, map[string]any) {
	t.Helper()
	dep := x.w.SmokeDeployment(t, "ecs-pool", "default", nil, "")
	id := x.w.CreateFlowRun(t, dep, nil)
	return id, x.w.WaitFlowRun(t, id, timeout)
}

func (x *runWorld) flowRunTasks(t *testing.T) []ecstypes.Task {
	t.Helper()
	ctx := context.Background()
	var arns []string
	for _, st := range []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped} {
		l, err := x.ws.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(x.ws.Cluster), DesiredStatus: st})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, l.TaskArns...)
	}
	if len(arns) == 0 {
		return nil
	}
	out, err := x.ws.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(x.ws.Cluster), Tasks: arns, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	var runs []ecstypes.Task
	for _, tk := range out.Tasks {
		if strings.HasPrefix(aws.ToString(tk.Group), "family:prefect_") {
			runs = append(runs, tk)
		}
	}
	return runs
}

func tagOf(tk ecstypes.Task, key string) string {
	for _, tg := range tk.Tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

func hasLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func TestSmokeRunCompletesInTheStacksClusterWithItsRoles(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{})
	x.template(t, nil)
	id, run := x.smoke(t, 3*time.Minute)
	if run["state_type"] != "COMPLETED" {
		t.Fatalf("run %s: %s %q; logs %v", id, run["state_type"], simtest.StateMessage(run), x.w.FlowRunLogs(t, id))
	}
	labels := run["labels"].(map[string]any)
	if got := labels["prefect.worker.name"]; got != x.onlineWorkers()[0] {
		t.Errorf("prefect.worker.name %v, want the worker %v", got, x.onlineWorkers())
	}
	if labels["prefect.worker.type"] != "ecs" || labels["prefect.work-pool.name"] != "ecs-pool" {
		t.Errorf("labels %v", labels)
	}
	pid, _ := run["infrastructure_pid"].(string)
	if !strings.HasPrefix(pid, x.ws.Cluster+"::arn:aws:ecs:") {
		t.Errorf("infrastructure_pid %q, want <cluster>::<task ARN>", pid)
	}
	logs := x.w.FlowRunLogs(t, id)
	for _, want := range []string{"submitting flow run '" + id + "'", "Registering ECS task definition...", "Creating ECS task run...",
		"submitted to infrastructure", "Beginning flow run", "deploybot smoke ok", "Finished in state Completed()"} {
		if !hasLine(logs, want) {
			t.Errorf("logs lack %q: %v", want, logs)
		}
	}
	tasks := x.flowRunTasks(t)
	if len(tasks) != 1 {
		t.Fatalf("flow-run tasks %d, want 1", len(tasks))
	}
	tk := tasks[0]
	if tagOf(tk, "prefect.io/flow-run-id") != id || !strings.HasSuffix(pid, aws.ToString(tk.TaskArn)) {
		t.Errorf("task %s tags %v", aws.ToString(tk.TaskArn), tk.Tags)
	}
	if aws.ToString(tk.Overrides.TaskRoleArn) != x.roles.Task {
		t.Errorf("task role override %q, want %q", aws.ToString(tk.Overrides.TaskRoleArn), x.roles.Task)
	}
	for _, co := range tk.Overrides.ContainerOverrides {
		for _, kv := range co.Environment {
			if aws.ToString(kv.Name) == "PREFECT_API_KEY" {
				t.Errorf("the key is in the RunTask overrides although prefect_api_key_secret_arn is set (§A.6)")
			}
		}
	}
	var cw []string
	for _, evs := range x.w.AWS.LogEvents(flowRunGroup) {
		for _, e := range evs {
			cw = append(cw, e.Message)
		}
	}
	if !hasLine(cw, "deploybot smoke ok") {
		t.Errorf("CloudWatch lacks the flow's output: %v", cw)
	}
	// The worker's calls were its task role's.
	var ops []string
	for _, c := range x.w.AWS.WorkloadCalls() {
		if strings.Contains(c.Principal, ":assumed-role/deploybot-staging-task/") {
			ops = append(ops, c.Service+"."+c.Operation)
		}
	}
	for _, want := range []string{"ECS.DescribeTaskDefinition", "ECS.RegisterTaskDefinition", "EC2.DescribeVpcs", "EC2.DescribeSubnets", "ECS.RunTask"} {
		if !slices.Contains(ops, want) {
			t.Errorf("the worker's role made %v, no %s", ops, want)
		}
	}

	// A second run reuses the revision (the worker's cache).
	id2 := x.w.CreateFlowRun(t, x.w.SmokeDeployment(t, "ecs-pool", "default", nil, ""), nil)
	if r := x.w.WaitFlowRun(t, id2, 3*time.Minute); r["state_type"] != "COMPLETED" {
		t.Fatalf("second run %s %q", r["state_type"], simtest.StateMessage(r))
	}
	if hasLine(x.w.FlowRunLogs(t, id2), "Registering ECS task definition") {
		t.Error("the second run registered a new revision although the first one matches")
	}
}

// crashed runs a smoke run that should crash on submission and returns its
// state message.
func (x *runWorld) crashed(t *testing.T) string {
	t.Helper()
	id, run := x.smoke(t, time.Minute)
	if run["state_type"] != "CRASHED" {
		t.Fatalf("run %s: %s %q, want CRASHED; logs %v", id, run["state_type"], simtest.StateMessage(run), x.w.FlowRunLogs(t, id))
	}
	return simtest.StateMessage(run)
}

func TestSubmissionFailuresCrashTheRunWithTheWorkersMessage(t *testing.T) {
	t.Parallel()
	const prefix = "Failed to submit flow run to infrastructure: "
	cases := []struct {
		name   string
		edits  map[string]any
		policy func(simtest.FlowRunRoles, string) string
		want   string
	}{
		{name: "wrong cluster", edits: map[string]any{"cluster": "deploybot-prod"},
			want: prefix + "RuntimeError: Failed to run ECS task, cluster 'deploybot-prod' not found. Confirm that the cluster is configured in your region."},
		{name: "no default VPC", edits: map[string]any{"vpc_id": nil, "network_configuration": nil},
			want: prefix + "ValueError: Failed to find the default VPC. Network configuration cannot be inferred. Pass an explicit `vpc_id` or configure a default VPC."},
		{name: "network without vpc_id", edits: map[string]any{"vpc_id": nil},
			want: prefix + "ValidationError: 1 validation error for ECSJobConfiguration\n  Value error, You must provide a `vpc_id` to enable custom `network_configuration`."},
		{name: "logs without an execution role", edits: map[string]any{"execution_role_arn": nil},
			want: prefix + "ValidationError: 1 validation error for ECSJobConfiguration\n  Value error, An `execution_role_arn` must be provided to use `configure_cloudwatch_logs` or `stream_logs`."},
		{name: "subnets of another VPC", edits: map[string]any{"vpc_id": "vpc-0123456789abcdef0"},
			want: prefix + "ClientError: An error occurred (InvalidVpcID.NotFound) when calling the DescribeVpcs operation"},
		// The execution role is the task definition's: registering it needs
		// PassRole; the task role is the run's override: RunTask does.
		{name: "no PassRole", policy: func(r simtest.FlowRunRoles, q string) string {
			return strings.Replace(simtest.WorkerRunPolicy(r, q), `"iam:PassRole"`, `"iam:GetRole"`, 1)
		}, want: prefix + "AccessDeniedException: An error occurred (AccessDeniedException) when calling the RegisterTaskDefinition operation: User: arn:aws:sts::"},
		{name: "no PassRole for the task role", policy: func(r simtest.FlowRunRoles, q string) string {
			return strings.Replace(simtest.WorkerRunPolicy(r, q), `,"`+r.Task+`"`, ``, 1)
		}, want: prefix + "AccessDeniedException: An error occurred (AccessDeniedException) when calling the RunTask operation: User: arn:aws:sts::"},
		{name: "no RunTask", policy: func(r simtest.FlowRunRoles, q string) string {
			return strings.Replace(simtest.WorkerRunPolicy(r, q), `"ecs:RunTask",`, ``, 1)
		}, want: "is not authorized to perform: ecs:RunTask"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			x := newRunWorld(t, runSetup{workerPolicy: c.policy})
			x.template(t, c.edits)
			if got := x.crashed(t); !strings.HasPrefix(got, c.want) && !strings.Contains(got, c.want) {
				t.Errorf("message\n %q\nwant\n %q", got, c.want)
			}
		})
	}
}

func TestPassRoleDenialNamesTheWorkersSessionAndTheRole(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{workerPolicy: func(r simtest.FlowRunRoles, q string) string {
		return strings.Replace(simtest.WorkerRunPolicy(r, q), `"`+r.Execution+`",`, ``, 1)
	}})
	x.template(t, nil)
	got := x.crashed(t)
	if !strings.Contains(got, ":assumed-role/deploybot-staging-task/") || !strings.Contains(got, "iam:PassRole on resource: "+x.roles.Execution) {
		t.Errorf("message %q", got)
	}
}

func TestTheDefaultTemplateRunsInTheDefaultVPCWithTheKeyInPlaintext(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{})
	x.w.AWS.SeedDefaultVPC()
	// The pool keeps the template the worker filled in (§A.1): no cluster,
	// so RunTask goes to the account's "default" cluster, which nobody made.
	_, run := x.smoke(t, time.Minute)
	want := "Failed to submit flow run to infrastructure: RuntimeError: Failed to run ECS task, cluster 'default' not found. Confirm that the cluster is configured in your region."
	if run["state_type"] != "CRASHED" || simtest.StateMessage(run) != want {
		t.Fatalf("run %s %q", run["state_type"], simtest.StateMessage(run))
	}
	ctx := context.Background()
	if _, err := x.ws.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	id, run := x.smoke(t, 3*time.Minute)
	if run["state_type"] != "COMPLETED" {
		t.Fatalf("run %s %q; logs %v", run["state_type"], simtest.StateMessage(run), x.w.FlowRunLogs(t, id))
	}
	x.w.Advance(time.Minute)
	list, err := x.ws.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("default"), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil || len(list.TaskArns) != 1 {
		t.Fatalf("default cluster tasks %v %v", list, err)
	}
	out, err := x.ws.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	tk := out.Tasks[0]
	// All of the default VPC's subnets, a public IP, Docker Hub's image, and
	// the worker's key in plaintext in the overrides (§A.6, fact 5).
	plain := false
	for _, kv := range tk.Overrides.ContainerOverrides[0].Environment {
		plain = plain || (aws.ToString(kv.Name) == "PREFECT_API_KEY" && aws.ToString(kv.Value) == x.w.PrefectKey)
	}
	if !plain {
		t.Error("the default template should put the worker's key in plaintext into the RunTask overrides")
	}
	if img := aws.ToString(tk.Containers[0].Image); img != "prefecthq/prefect:3.8.4-python3.12" {
		t.Errorf("image %q", img)
	}
}

func TestWithoutTheObserverATaskThatCannotStartLeavesTheRunPending(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{})
	x.unpullableImage(t)
	_, run := x.smoke(t, 10*time.Minute)
	if run["state_type"] != "PENDING" {
		t.Fatalf("run %s %q, want PENDING forever (fact 3)", run["state_type"], simtest.StateMessage(run))
	}
	tasks := x.flowRunTasks(t)
	if len(tasks) != 1 || aws.ToString(tasks[0].LastStatus) != "STOPPED" || !strings.Contains(aws.ToString(tasks[0].StoppedReason), "CannotPullContainerError") {
		t.Fatalf("flow-run task %+v", tasks)
	}
}

func TestTheObserverCrashesRunsWhoseImageCannotBePulled(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{observer: true, observerPolicy: true})
	x.unpullableImage(t)
	id, run := x.smoke(t, 10*time.Minute)
	// The stopped task still lists its container, without an exit code:
	// the observer's "non-zero exit code" message, not its "failed to
	// start" one (which is for tasks without containers, obs:911-930).
	msg := simtest.StateMessage(run)
	if run["state_type"] != "CRASHED" || msg != "The following containers stopped with a non-zero exit code: ['prefect']" {
		t.Fatalf("run %s %q; logs %v; worker log %v", run["state_type"], msg, x.w.FlowRunLogs(t, id), x.w.Prefect.WorkerLog())
	}
}

func TestTheObserverSeesNothingWhenTheQueuePolicyLetsNoRuleSend(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{observer: true, observerPolicy: false})
	x.unpullableImage(t)
	_, run := x.smoke(t, 10*time.Minute)
	if run["state_type"] != "PENDING" {
		t.Fatalf("run %s %q, want PENDING: EventBridge drops what the queue policy does not allow", run["state_type"], simtest.StateMessage(run))
	}
}

func TestAFlowRunThatCannotReachPrefectExitsAndTheObserverCrashesIt(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{observer: true, observerPolicy: true})
	// Flow runs go to private subnets that reach the registry, the secret
	// and the logs through VPC endpoints, but not Prefect Cloud.
	vpc, subnets := x.w.AWS.SeedExistingVPC("10.9.0.0/16", 2, false)
	for _, svc := range []string{"ecr.api", "ecr.dkr", "s3", "secretsmanager", "logs"} {
		x.w.AWS.SeedVPCEndpoint(vpc, svc)
	}
	sg := x.w.AWS.SeedSecurityGroup(vpc, "flow-runs")
	x.template(t, map[string]any{"vpc_id": vpc, "image": ecrImage,
		"network_configuration": map[string]any{"subnets": toAny(subnets), "securityGroups": []any{sg}, "assignPublicIp": "DISABLED"}})
	id, run := x.smoke(t, 15*time.Minute)
	if run["state_type"] != "CRASHED" || simtest.StateMessage(run) != "The following containers stopped with a non-zero exit code: ['prefect']" {
		t.Fatalf("run %s %q; logs %v", run["state_type"], simtest.StateMessage(run), x.w.FlowRunLogs(t, id))
	}
	if !hasLine(x.w.FlowRunLogs(t, id), "httpx.ConnectTimeout") {
		t.Errorf("the observer did not forward the container's CloudWatch lines: %v", x.w.FlowRunLogs(t, id))
	}
}

func TestPullStepAndEntrypointFailuresCrashTheRun(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{})
	x.template(t, nil)
	// The §D.2 script with a shell redirect, which shell=False passes to
	// printf as arguments: no smoke.py.
	dep := x.w.SmokeDeployment(t, "ecs-pool", "default", nil, `printf 'from prefect import flow' > smoke.py`)
	run := x.w.WaitFlowRun(t, x.w.CreateFlowRun(t, dep, nil), 3*time.Minute)
	if run["state_type"] != "CRASHED" || simtest.StateMessage(run) != "Process exited with status code: 1. Process exited with a general error." {
		t.Errorf("missing entrypoint: %s %q", run["state_type"], simtest.StateMessage(run))
	}
	dep = x.w.SmokeDeployment(t, "ecs-pool", "default", nil, "false")
	run = x.w.WaitFlowRun(t, x.w.CreateFlowRun(t, dep, nil), 3*time.Minute)
	want := "Flow run could not start: StepExecutionError: Encountered error while running prefect.deployments.steps.run_shell_script (caused by RuntimeError: `run_shell_script` failed with error code 1: )"
	if run["state_type"] != "CRASHED" || simtest.StateMessage(run) != want {
		t.Errorf("failing step: %s %q", run["state_type"], simtest.StateMessage(run))
	}
	dep = x.w.SmokeDeployment(t, "ecs-pool", "default", nil, simtest.SmokeScript("from prefect import flow\n\n@flow\ndef smoke():\n    raise ValueError(\"boom\")\n"))
	run = x.w.WaitFlowRun(t, x.w.CreateFlowRun(t, dep, nil), 3*time.Minute)
	if run["state_type"] != "FAILED" || simtest.StateMessage(run) != "Flow run encountered an exception: ValueError: boom" {
		t.Errorf("raising flow: %s %q", run["state_type"], simtest.StateMessage(run))
	}
}

func TestAWorkerPollsOnlyItsQueue(t *testing.T) {
	t.Parallel()
	cmd := []string{"/bin/sh", "-c", `exec prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --type ecs --work-queue deploy-42 --name "$DEPLOYBOT_WORKER_PREFIX-$(hostname)"`}
	x := newRunWorld(t, runSetup{workerCommand: cmd})
	x.template(t, nil)
	other := x.w.WaitFlowRun(t, x.w.CreateFlowRun(t, x.w.SmokeDeployment(t, "ecs-pool", "default", nil, ""), nil), time.Minute)
	if other["state_type"] != "SCHEDULED" || other["state_name"] != "Late" {
		t.Errorf("a run in the default queue: %s/%s, want Scheduled/Late", other["state_type"], other["state_name"])
	}
	mine := x.w.WaitFlowRun(t, x.w.CreateFlowRun(t, x.w.SmokeDeployment(t, "ecs-pool", "default", nil, ""), map[string]any{"work_queue_name": "deploy-42"}), 3*time.Minute)
	if mine["state_type"] != "COMPLETED" {
		t.Errorf("a run in the worker's queue: %s %q", mine["state_type"], simtest.StateMessage(mine))
	}
}

func TestCancellingAPendingRunStopsItsTaskOnlyWithWorkerCancellation(t *testing.T) {
	t.Parallel()
	for _, enabled := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "PREFECT_WORKER_ENABLE_CANCELLATION"}[enabled], func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			if enabled {
				env["PREFECT_WORKER_ENABLE_CANCELLATION"] = "true"
			}
			x := newRunWorld(t, runSetup{workerEnv: env})
			// A run whose task cannot reach Prefect stays PENDING for minutes.
			vpc, subnets := x.w.AWS.SeedExistingVPC("10.9.0.0/16", 1, false)
			for _, svc := range []string{"ecr.api", "ecr.dkr", "s3", "secretsmanager", "logs"} {
				x.w.AWS.SeedVPCEndpoint(vpc, svc)
			}
			x.template(t, map[string]any{"vpc_id": vpc, "image": ecrImage,
				"network_configuration": map[string]any{"subnets": toAny(subnets), "securityGroups": []any{}, "assignPublicIp": "DISABLED"}})
			id, run := x.smoke(t, 2*time.Minute)
			if run["state_type"] != "PENDING" {
				t.Fatalf("run %s", run["state_type"])
			}
			st, res := x.w.PrefectDo(t, "POST", "/flow_runs/"+id+"/set_state", map[string]any{"state": map[string]any{"type": "CANCELLING", "message": "deploybot timeout"}})
			if st != 201 {
				t.Fatalf("set_state: %d %v", st, res)
			}
			run = x.w.WaitFlowRun(t, id, time.Minute)
			tasks := x.flowRunTasks(t)
			if !enabled {
				if run["state_type"] != "CANCELLING" || aws.ToString(tasks[0].DesiredStatus) != "RUNNING" {
					t.Errorf("without worker cancellation: run %s, task %s; want CANCELLING and the task left running", run["state_type"], aws.ToString(tasks[0].DesiredStatus))
				}
				return
			}
			if run["state_type"] != "CANCELLED" || simtest.StateMessage(run) != "Flow run cancelled by worker while pending." {
				t.Errorf("run %s %q", run["state_type"], simtest.StateMessage(run))
			}
			if aws.ToString(tasks[0].DesiredStatus) != "STOPPED" || aws.ToString(tasks[0].StoppedReason) != "Stopped by Prefect worker" {
				t.Errorf("task %s %q", aws.ToString(tasks[0].DesiredStatus), aws.ToString(tasks[0].StoppedReason))
			}
		})
	}
}

func TestAWorkerWithoutWorkQueuesPollsEveryQueueOfItsPool(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{})
	x.template(t, nil)
	run := x.w.WaitFlowRun(t, x.w.CreateFlowRun(t, x.w.SmokeDeployment(t, "ecs-pool", "default", nil, ""), map[string]any{"work_queue_name": "deploy-42"}), 3*time.Minute)
	if run["state_type"] != "COMPLETED" || run["work_queue_name"] != "deploy-42" {
		t.Errorf("run %s in %v (api/workers.py:834-842: no queue names, every queue)", run["state_type"], run["work_queue_name"])
	}
}

// stoppedReason runs the smoke flow, lets its task stop, and returns why.
func (x *runWorld) stoppedReason(t *testing.T) (map[string]any, string) {
	t.Helper()
	_, run := x.smoke(t, 3*time.Minute)
	x.w.Advance(time.Minute)
	tasks := x.flowRunTasks(t)
	if len(tasks) != 1 {
		t.Fatalf("flow-run tasks %d", len(tasks))
	}
	return run, aws.ToString(tasks[0].StoppedReason)
}

func TestTheFlowRunTaskNeedsItsLogGroupAndSecretThroughItsExecutionRole(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edits map[string]any
		setup func(*runWorld)
		want  string
	}{
		{name: "missing group, create-group false", edits: map[string]any{"cloudwatch_logs_options": map[string]any{"awslogs-group": "/deploybot/staging/nope", "awslogs-create-group": "false"}},
			want: "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist."},
		// The worker's default options create the group "prefect", which the
		// ECS managed policy does not allow (§A.8).
		{name: "the worker's default options", edits: map[string]any{"cloudwatch_logs_options": nil},
			want: "is not authorized to perform: logs:CreateLogGroup"},
		{name: "no access to the key's secret", setup: func(x *runWorld) {
			x.ws.SetRolePolicy(t, x.roles.Execution, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:CreateLogStream","Resource":"*"}]}`)
		}, want: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			x := newRunWorld(t, runSetup{})
			x.template(t, c.edits)
			if c.setup != nil {
				c.setup(x)
			}
			run, reason := x.stoppedReason(t)
			if !strings.Contains(reason, c.want) {
				t.Errorf("stopped reason %q, want %q", reason, c.want)
			}
			if run["state_type"] != "PENDING" {
				t.Errorf("run %s, want PENDING without the observer", run["state_type"])
			}
		})
	}
}

func TestAnObserverItsRoleCannotReadLeavesRunsPending(t *testing.T) {
	t.Parallel()
	x := newRunWorld(t, runSetup{observer: true, observerPolicy: true, workerPolicy: func(r simtest.FlowRunRoles, _ string) string {
		return simtest.WorkerRunPolicy(r, "")
	}})
	x.unpullableImage(t)
	_, run := x.smoke(t, 20*time.Minute)
	if run["state_type"] != "PENDING" {
		t.Fatalf("run %s %q", run["state_type"], simtest.StateMessage(run))
	}
	log := strings.Join(x.w.Prefect.WorkerLog(), "\n")
	if !strings.Contains(log, "ECS observer task crashed: ClientError: An error occurred (AccessDenied) when calling the GetQueueUrl operation") || !strings.Contains(log, "giving up on automatic restarts") {
		t.Errorf("worker log:\n%s", log)
	}
}
