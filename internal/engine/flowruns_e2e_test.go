package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
	"github.com/deploybot/deploybot/internal/stack"
)

// Flow runs of the pool an apply set up, through the simulated worker that
// the stack's own service runs (internal/prefectsim/simworker.go): what
// issue 9 is for. The worker submits with its task role's credentials, so
// the stack's roles, network, queue and rule are judged by the simulated
// account as AWS would judge them (docs/research/prefect-flow-runs.md §A,
// §B).

// flowWorld is an applied environment whose worker is ONLINE in its pool.
type flowWorld struct {
	*account
	env   *config.Environment
	names stack.Names
	sim   *simtest.World
	// admin calls the account with its admin credentials.
	admin admin
	// subnets and publicIP are the worker service's.
	subnets  []string
	publicIP bool
}

type admin struct {
	ECS *ecs.Client
	EC2 *ec2.Client
	SQS *sqs.Client
}

// newFlowWorld applies an existing-VPC environment (envYAML).
func newFlowWorld(t *testing.T) *flowWorld {
	t.Helper()
	x := newWorld(t)
	return applyFlowWorld(t, x.account, x.env("demo"))
}

// applyFlowWorld applies env in x and waits for its worker.
func applyFlowWorld(t *testing.T, x *account, env *config.Environment) *flowWorld {
	t.Helper()
	// The worker inside the simulated task reaches the simulated Prefect
	// only at its address (a loopback URL, which a file may not name).
	env.Prefect.APIURL = x.prefect.URL()
	x.apply(env)
	f := &flowWorld{account: x, env: env, names: stack.NamesFor(env), admin: admin{ecs.NewFromConfig(x.w.Config()), ec2.NewFromConfig(x.w.Config()), sqs.NewFromConfig(x.w.Config())},
		sim: &simtest.World{Clock: x.clk.(*clock.Virtual), AWS: x.w, Prefect: x.prefect, PrefectKey: x.key}}
	svc, err := f.admin.ECS.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(f.names.Cluster), Services: []string{f.names.Service}})
	if err != nil || len(svc.Services) != 1 {
		t.Fatalf("the worker service: %v", err)
	}
	vpc := svc.Services[0].NetworkConfiguration.AwsvpcConfiguration
	f.subnets, f.publicIP = vpc.Subnets, vpc.AssignPublicIp == ecstypes.AssignPublicIpEnabled
	for i := 0; i < 60 && !f.online(); i++ {
		x.advance(5 * time.Second)
	}
	if !f.online() {
		t.Fatalf("no worker of the stack came ONLINE in %s: %+v", f.names.WorkPool, x.prefect.Workers(f.names.WorkPool))
	}
	return f
}

func (f *flowWorld) online() bool { return len(f.prefect.OnlineWorkers(f.names.WorkPool)) > 0 }

// run submits a run of a deployment of the pool without job variables
// (the pool's defaults decide everything) and waits for its end; seen is
// the run's task as ECS showed it while it ran (nil if it never did).
func (f *flowWorld) run(t *testing.T, jobVariables map[string]any) (run map[string]any, seen *ecstypes.Task) {
	t.Helper()
	dep := f.sim.SmokeDeployment(t, f.names.WorkPool, "default", jobVariables, "")
	id := f.sim.CreateFlowRun(t, dep, nil)
	for i := 0; i < 180 && seen == nil; i++ {
		for _, tk := range f.w.Tasks() {
			if tk.Tags["prefect.io/flow-run-id"] == id && tk.LastStatus == "RUNNING" {
				out, err := f.admin.ECS.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(tk.ClusterARN), Tasks: []string{tk.ARN}})
				if err != nil || len(out.Tasks) != 1 {
					t.Fatalf("DescribeTasks %s: %v", tk.ARN, err)
				}
				seen = &out.Tasks[0]
			}
		}
		if r := f.sim.FlowRun(t, id); r["state_type"] == "CRASHED" || r["state_type"] == "COMPLETED" {
			break
		}
		f.advance(time.Second)
	}
	return f.sim.WaitFlowRun(t, id, 3*time.Minute), seen
}

// flowRunGroupID is the id of the stack's flow-run security group.
func (f *flowWorld) flowRunGroupID(t *testing.T) string {
	t.Helper()
	out, err := f.admin.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{f.names.FlowRunSecurityGroup}}}})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("the flow-run security group %s: %v %+v", f.names.FlowRunSecurityGroup, err, out)
	}
	return aws.ToString(out.SecurityGroups[0].GroupId)
}

func attachmentDetail(tk *ecstypes.Task, name string) string {
	for _, a := range tk.Attachments {
		for _, d := range a.Details {
			if aws.ToString(d.Name) == name {
				return aws.ToString(d.Value)
			}
		}
	}
	return ""
}

// TestE2EFlowRunLandsInTheStack: a flow run submitted to the pool after an
// apply runs in the stack's cluster, in the worker's subnets with the
// flow-run security group, as the flow-run task role with the flow-run
// execution role, with the Prefect key from the stack's secret, and its
// output lands in the flow-run log group: in an existing VPC with a public
// IP, and in a managed one's private subnets behind its NAT gateway.
func TestE2EFlowRunLandsInTheStack(t *testing.T) {
	t.Parallel()
	t.Run("existing VPC", func(t *testing.T) {
		t.Parallel()
		newFlowWorld(t).landsInTheStack(t)
	})
	t.Run("managed, nat single", func(t *testing.T) {
		t.Parallel()
		x := newNetE2E(t)
		applyFlowWorld(t, x.account, x.env("net", "single", "2")).landsInTheStack(t)
	})
}

func (f *flowWorld) landsInTheStack(t *testing.T) {
	ctx := context.Background()
	run, tk := f.run(t, nil)
	if run["state_type"] != "COMPLETED" {
		t.Fatalf("the flow run ended %s %q; logs %v", run["state_type"], simtest.StateMessage(run), f.sim.FlowRunLogs(t, run["id"].(string)))
	}
	if tk == nil {
		t.Fatal("the flow run completed without ECS ever showing its task RUNNING")
	}
	if got := aws.ToString(tk.ClusterArn); got != f.names.ClusterARN {
		t.Errorf("cluster %s, want the stack's %s", got, f.names.ClusterARN)
	}
	if got := aws.ToString(tk.Overrides.TaskRoleArn); got != f.names.FlowTaskRoleARN {
		t.Errorf("task role %q, want the flow-run task role %s", got, f.names.FlowTaskRoleARN)
	}
	subnet, eni := attachmentDetail(tk, "subnetId"), attachmentDetail(tk, "networkInterfaceId")
	if !slices.Contains(f.subnets, subnet) {
		t.Errorf("subnet %q, want one of the worker's %v", subnet, f.subnets)
	}
	nis, err := f.admin.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil || len(nis.NetworkInterfaces) != 1 {
		t.Fatalf("the task's network interface %q: %v", eni, err)
	}
	if public := nis.NetworkInterfaces[0].Association != nil && aws.ToString(nis.NetworkInterfaces[0].Association.PublicIp) != ""; public != f.publicIP {
		t.Errorf("the flow run has a public IP: %v; the worker: %v", public, f.publicIP)
	}
	var groups []string
	for _, g := range nis.NetworkInterfaces[0].Groups {
		groups = append(groups, aws.ToString(g.GroupId))
	}
	if want := []string{f.flowRunGroupID(t)}; !slices.Equal(groups, want) {
		t.Errorf("security groups %v, want the flow-run group %v", groups, want)
	}
	td, err := f.admin.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: tk.TaskDefinitionArn})
	if err != nil {
		t.Fatal(err)
	}
	def := td.TaskDefinition
	if got := aws.ToString(def.ExecutionRoleArn); got != f.names.FlowExecutionRoleARN {
		t.Errorf("execution role %q, want the flow-run execution role %s", got, f.names.FlowExecutionRoleARN)
	}
	c := def.ContainerDefinitions[0]
	if got := aws.ToString(c.Image); got != f.env.FlowRuns.Image || aws.ToString(def.Cpu) != "1024" || aws.ToString(def.Memory) != "2048" {
		t.Errorf("image %s, cpu %s, memory %s; want the pool's %s, 1024, 2048", got, aws.ToString(def.Cpu), aws.ToString(def.Memory), f.env.FlowRuns.Image)
	}
	if lc := c.LogConfiguration; lc == nil || lc.Options["awslogs-group"] != f.names.FlowRunLogGroup {
		t.Errorf("log configuration %+v, want the group %s", c.LogConfiguration, f.names.FlowRunLogGroup)
	}
	secretOK := false
	for _, s := range c.Secrets {
		secretOK = secretOK || aws.ToString(s.Name) == "PREFECT_API_KEY" && strings.Contains(aws.ToString(s.ValueFrom), ":secret:"+f.names.Secret)
	}
	if !secretOK {
		t.Errorf("the task definition does not take PREFECT_API_KEY from the stack's secret: %+v", c.Secrets)
	}
	for _, co := range tk.Overrides.ContainerOverrides {
		for _, kv := range co.Environment {
			if aws.ToString(kv.Name) == "PREFECT_API_KEY" || strings.Contains(aws.ToString(kv.Value), f.key) {
				t.Errorf("the Prefect key is in the RunTask overrides in plaintext (%s)", aws.ToString(kv.Name))
			}
		}
	}
	var lines []string
	for _, evs := range f.w.LogEvents(f.names.FlowRunLogGroup) {
		for _, e := range evs {
			lines = append(lines, e.Message)
		}
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "deploybot smoke ok") }) {
		t.Errorf("the flow's output is not in %s: %v", f.names.FlowRunLogGroup, lines)
	}
	// The worker launched it as itself: its own task role.
	var launched []string
	for _, c := range f.w.WorkloadCalls() {
		if c.Operation == "RunTask" && c.ErrCode == "" {
			launched = append(launched, c.Principal)
		}
	}
	if len(launched) != 1 || !strings.Contains(launched[0], ":assumed-role/"+f.names.TaskRole+"/") {
		t.Errorf("RunTask calls by %v, want one by the worker's task role %s", launched, f.names.TaskRole)
	}
}

// TestE2EFlowRunObserverThroughTheStack: a flow-run task that cannot start
// (its image cannot be pulled) is reported CRASHED by the worker's ECS
// observer, through the stack's rule, queue, queue policy and the worker's
// SQS permissions; without them the run would stay PENDING for ever
// (docs/research/prefect-flow-runs.md fact 3).
func TestE2EFlowRunObserverThroughTheStack(t *testing.T) {
	t.Parallel()
	f := newFlowWorld(t)
	const missing = "prefecthq/prefect:3-does-not-exist"
	f.w.SetImageBehavior(missing, awssim.ImageBehavior{PullFails: true})
	run, _ := f.run(t, map[string]any{"image": missing})
	// The stopped task lists its container without an exit code: the
	// observer's "non-zero exit code" message (obs:820-995, §B.2).
	if run["state_type"] != "CRASHED" || simtest.StateMessage(run) != "The following containers stopped with a non-zero exit code: ['prefect']" {
		t.Fatalf("a run whose image cannot be pulled ended %s %q, want CRASHED by the observer", run["state_type"], simtest.StateMessage(run))
	}
}

// TestE2EFlowRunOnThePoolAsItWas: the same flow run against the pool as
// deploybot left it before issue 9 (prefect-aws's default template, which
// a syncing worker writes into a pool created with only its name and
// type) fails the way it does on AWS: with no network configuration the
// worker looks for the account's default VPC, which this account does not
// have; with one there, no cluster is the account's "default" cluster
// (docs/research/prefect-flow-runs.md §A.3, §A.6), which IAM refuses
// before ECS could say it does not exist: the worker's role may run tasks
// only in the stack's cluster. (With a role that may run them anywhere it
// is ECS's ClusterNotFoundException, reworded by the worker:
// internal/prefectsim's TestTheDefaultTemplateRunsInTheDefaultVPCWithTheKeyInPlaintext.)
// The next plan shows the defaults as drift, and an apply makes flow runs
// work again.
func TestE2EFlowRunOnThePoolAsItWas(t *testing.T) {
	t.Parallel()
	f := newFlowWorld(t)
	f.sim.SetPoolTemplate(t, f.names.WorkPool, prefectsim.ECSDefaultTemplate())
	const prefix = "Failed to submit flow run to infrastructure: "
	run, _ := f.run(t, nil)
	if want := prefix + "ValueError: Failed to find the default VPC."; run["state_type"] != "CRASHED" || !strings.HasPrefix(simtest.StateMessage(run), want) {
		t.Fatalf("run on the default template: %s %q, want CRASHED %q", run["state_type"], simtest.StateMessage(run), want)
	}
	f.w.SeedDefaultVPC()
	run, _ = f.run(t, nil)
	if want := prefix + "AccessDeniedException: An error occurred (AccessDeniedException) when calling the RunTask operation: User: arn:aws:sts::123456789012:assumed-role/" + f.names.TaskRole + "/"; run["state_type"] != "CRASHED" || !strings.HasPrefix(simtest.StateMessage(run), want) {
		t.Fatalf("run on the default template in an account with a default VPC: %s %q, want CRASHED %q", run["state_type"], simtest.StateMessage(run), want)
	}

	p := f.plan(f.env)
	want := "~ prefect_work_pool.main defaults.cloudwatch_logs_options defaults.cluster defaults.configure_cloudwatch_logs defaults.cpu " +
		"defaults.execution_role_arn defaults.image defaults.match_latest_revision_in_family defaults.memory defaults.network_configuration " +
		"defaults.prefect_api_key_secret_arn defaults.task_role_arn defaults.vpc_id"
	if got := summary(p.Plan); len(got) != 1 || got[0] != want {
		t.Fatalf("plan of the default template:\n%v\nwant\n%s", got, want)
	}
	f.apply(f.env)
	if run, _ = f.run(t, nil); run["state_type"] != "COMPLETED" {
		t.Fatalf("after the apply put the defaults back: %s %q", run["state_type"], simtest.StateMessage(run))
	}
}

// TestE2EWorkerRoleIsScoped: what the worker's task role may do, asked of
// the simulated account with that role's credentials: RunTask only in the
// stack's cluster, PassRole only of the two flow-run roles, StopTask and
// DescribeTasks only on the cluster's tasks, the SQS actions only on the
// observer's queue.
func TestE2EWorkerRoleIsScoped(t *testing.T) {
	t.Parallel()
	f := newFlowWorld(t)
	ctx := context.Background()
	admin := f.admin
	if _, err := admin.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	cfg := f.w.RoleConfig(f.names.TaskRoleARN, "probe")
	ecsc, sqsc := ecs.NewFromConfig(cfg), sqs.NewFromConfig(cfg)

	// A task definition of the flow runs' kind, registered by the worker.
	reg, err := ecsc.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("prefect_probe"), Cpu: aws.String("256"), Memory: aws.String("512"),
		NetworkMode: ecstypes.NetworkModeAwsvpc, RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		ExecutionRoleArn:     aws.String(f.names.FlowExecutionRoleARN),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("prefect"), Image: aws.String("prefecthq/prefect:3-python3.12"), Essential: aws.Bool(true)}},
	})
	if err != nil {
		t.Fatalf("the worker cannot register a flow-run task definition: %v", err)
	}
	td := reg.TaskDefinition.TaskDefinitionArn
	runIn := func(cluster, taskRole string) error {
		_, err := ecsc.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: td, LaunchType: ecstypes.LaunchTypeFargate,
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
				Subnets: f.subnets[:1], SecurityGroups: []string{f.flowRunGroupID(t)}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
			Overrides: &ecstypes.TaskOverride{TaskRoleArn: aws.String(taskRole)}})
		return err
	}
	otherCluster := strings.Replace(f.names.ClusterARN, "cluster/"+f.names.Cluster, "cluster/other", 1)
	allowed := map[string]error{
		"RunTask in the stack's cluster as the flow-run task role": runIn(f.names.ClusterARN, f.names.FlowTaskRoleARN),
	}
	_, allowed["GetQueueUrl of the observer's queue"] = sqsc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(f.names.ObserverQueue)})
	for what, err := range allowed {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	dlq, err := admin.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(f.names.ObserverDLQ)})
	if err != nil {
		t.Fatal(err)
	}
	denied := map[string]error{
		"RunTask in another cluster":                  runIn(otherCluster, f.names.FlowTaskRoleARN),
		"RunTask passing the worker's own task role":  runIn(f.names.ClusterARN, f.names.TaskRoleARN),
		"RunTask passing the worker's execution role": runIn(f.names.ClusterARN, f.names.ExecutionRoleARN),
	}
	_, denied["DescribeTasks of another cluster"] = ecsc.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("other"),
		Tasks: []string{strings.Replace(otherCluster, ":cluster/", ":task/", 1) + "/0123456789abcdef0123456789abcdef"}})
	_, denied["StopTask of another cluster"] = ecsc.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("other"),
		Task: aws.String(strings.Replace(otherCluster, ":cluster/", ":task/", 1) + "/0123456789abcdef0123456789abcdef")})
	_, denied["ReceiveMessage from the dead-letter queue"] = sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl})
	for what, err := range denied {
		var ae smithy.APIError
		if !errors.As(err, &ae) || !strings.Contains(ae.ErrorCode(), "AccessDenied") {
			t.Errorf("%s: %v, want AccessDenied", what, err)
		}
	}
}

// TestE2EObserverDestroyOrder: a destroy removes the ECS observer in the
// order AWS needs: the rule's targets before the rule (DeleteRule refuses a
// rule with targets, API_DeleteRule), the rule before the queue it sends
// to (so that no rule is left delivering into a queue that is gone), and
// the queue before its dead-letter queue.
func TestE2EObserverDestroyOrder(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)
	x.resetCalls()
	before := len(x.progress())
	x.destroy(env)
	at := func(line string) int {
		t.Helper()
		i := slices.IndexFunc(x.progress()[before:], func(l string) bool { return strings.HasSuffix(l, line) || strings.Contains(l, line+" (") })
		if i < 0 {
			t.Fatalf("the destroy never said %q:\n%s", line, strings.Join(x.progress()[before:], "\n"))
		}
		return i
	}
	for _, o := range [][2]string{
		{stack.AddrObserverRule + ": deleted", stack.AddrObserverQueue + ": deleting…"},
		{stack.AddrObserverQueue + ": deleted", stack.AddrObserverDLQ + ": deleting…"},
	} {
		if at(o[0]) > at(o[1]) {
			t.Errorf("%q came after %q", o[0], o[1])
		}
	}
	var ops []string
	for _, c := range x.w.Calls() {
		if c.ErrCode == "" && (c.Service == "EventBridge" && (c.Operation == "RemoveTargets" || c.Operation == "DeleteRule") || c.Service == "SQS" && c.Operation == "DeleteQueue") {
			ops = append(ops, c.Service+"."+c.Operation)
		}
	}
	if want := []string{"EventBridge.RemoveTargets", "EventBridge.DeleteRule", "SQS.DeleteQueue", "SQS.DeleteQueue"}; !slices.Equal(ops, want) {
		t.Errorf("the observer's deletes %v, want %v", ops, want)
	}
	x.wantNone("destroy left", inventory(x.w, "demo"))
}
