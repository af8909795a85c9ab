package awssim

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
)

// ecsFixture is an account with what a deploybot worker service needs: a
// VPC, a security group, the two roles, the secret and a cluster.
type ecsFixture struct {
	w        *World
	clk      *clock.Virtual
	ecs      *ecs.Client
	iam      *iam.Client
	subnets  []string
	sg       string
	execRole string
	taskRole string
	secret   string
}

type fixtureOpts struct {
	privateSubnets bool   // no internet gateway
	secretPolicyOn string // resource the exec role may read; "" = the secret
	rolesAge       time.Duration
	propagation    time.Duration // IAM propagation; 0 = the default
}

func newECSFixture(t *testing.T, o fixtureOpts) *ecsFixture {
	t.Helper()
	var opts []Option
	if o.propagation > 0 {
		opts = append(opts, WithTimings(func(t *Timings) { t.IAMPropagation = o.propagation }))
	}
	w, clk := newTestWorld(t, opts...)
	f := &ecsFixture{w: w, clk: clk, ecs: ecs.NewFromConfig(w.Config()), iam: iam.NewFromConfig(w.Config())}
	vpc, subnets := w.SeedExistingVPC("10.0.0.0/16", 2, !o.privateSubnets)
	f.subnets = subnets
	w.Mu.Lock()
	f.sg = w.NewID("sg")
	w.EC2State().SecurityGroups[f.sg] = &SecurityGroup{ID: f.sg, Name: "deploybot-staging-worker", VPCID: vpc, Egress: []string{"-1:0-0:0.0.0.0/0"}}
	w.Mu.Unlock()

	sm := secretsmanager.NewFromConfig(w.Config())
	sec, err := sm.CreateSecret(bg, &secretsmanager.CreateSecretInput{Name: aws.String("deploybot/staging/prefect-api-key"), SecretString: aws.String("pnu_secret")})
	if err != nil {
		t.Fatal(err)
	}
	f.secret = aws.ToString(sec.ARN)
	readable := o.secretPolicyOn
	if readable == "" {
		readable = f.secret
	}
	for _, r := range []struct{ name, policy string }{
		{"deploybot-staging-execution", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"` + readable + `"}]}`},
		{"deploybot-staging-task", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeTasks","Resource":"*"}]}`},
	} {
		out, err := f.iam.CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String(r.name), Path: aws.String("/deploybot/"), AssumeRolePolicyDocument: aws.String(ecsTrust)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.iam.PutRolePolicy(bg, &iam.PutRolePolicyInput{RoleName: aws.String(r.name), PolicyName: aws.String("p"), PolicyDocument: aws.String(r.policy)}); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(r.name, "execution") {
			f.execRole = aws.ToString(out.Role.Arn)
			if _, err := f.iam.AttachRolePolicy(bg, &iam.AttachRolePolicyInput{RoleName: aws.String(r.name), PolicyArn: aws.String(ECSTaskExecutionRolePolicyARN)}); err != nil {
				t.Fatal(err)
			}
		} else {
			f.taskRole = aws.ToString(out.Role.Arn)
		}
	}
	clk.Advance(o.rolesAge)
	// The worker's awslogs group, which the stack creates before the service.
	if _, err := cloudwatchlogs.NewFromConfig(w.Config()).CreateLogGroup(bg, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/deploybot/staging/worker")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ecs.CreateCluster(bg, &ecs.CreateClusterInput{ClusterName: aws.String("deploybot-staging"),
		Tags: []ecstypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// register registers a revision of the worker task definition running image.
func (f *ecsFixture) register(t *testing.T, image string) string {
	t.Helper()
	out, err := f.ecs.RegisterTaskDefinition(bg, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("deploybot-staging-worker"), RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode: ecstypes.NetworkModeAwsvpc, Cpu: aws.String("512"), Memory: aws.String("1024"),
		ExecutionRoleArn: aws.String(f.execRole), TaskRoleArn: aws.String(f.taskRole),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("worker"), Image: aws.String(image),
			Command:     []string{"/bin/sh", "-c", "exec prefect worker start --pool \"$DEPLOYBOT_WORK_POOL\" --type ecs --with-healthcheck"},
			Environment: []ecstypes.KeyValuePair{{Name: aws.String("DEPLOYBOT_WORK_POOL"), Value: aws.String("ecs-pool")}},
			Secrets:     []ecstypes.Secret{{Name: aws.String("PREFECT_API_KEY"), ValueFrom: aws.String(f.secret)}},
			HealthCheck: &ecstypes.HealthCheck{Command: []string{"CMD-SHELL", "exit 0"}, StartPeriod: aws.Int32(60)},
			LogConfiguration: &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs,
				Options: map[string]string{"awslogs-group": "/deploybot/staging/worker", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "worker"}},
		}},
		Tags: []ecstypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (f *ecsFixture) createService(t *testing.T, td string, desired int32, registries ...ecstypes.ServiceRegistry) *ecstypes.Service {
	t.Helper()
	out, err := f.ecs.CreateService(bg, &ecs.CreateServiceInput{
		Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(desired), LaunchType: ecstypes.LaunchTypeFargate, ClientToken: aws.String("create-worker-1"),
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: f.subnets, SecurityGroups: []string{f.sg}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
		ServiceRegistries:       registries,
		Tags:                    []ecstypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Service
}

func (f *ecsFixture) service(t *testing.T) ecstypes.Service {
	t.Helper()
	out, err := f.ecs.DescribeServices(bg, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker"}, Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("describe: failures %+v", out.Failures)
	}
	return out.Services[0]
}

// latestDeployment is the newest service deployment of the worker service.
func (f *ecsFixture) latestDeployment(t *testing.T) ecstypes.ServiceDeployment {
	t.Helper()
	list, err := f.ecs.ListServiceDeployments(bg, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ServiceDeployments) == 0 {
		t.Fatal("no service deployments")
	}
	d, err := f.ecs.DescribeServiceDeployments(bg, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{aws.ToString(list.ServiceDeployments[0].ServiceDeploymentArn)}})
	if err != nil {
		t.Fatal(err)
	}
	return d.ServiceDeployments[0]
}

// waitDeployment polls the newest service deployment every 15 simulated
// seconds until it reaches a terminal status, recording the statuses seen.
// firstDeployment creates the worker service on td and waits for its
// deployment to succeed.
func (f *ecsFixture) firstDeployment(t *testing.T, td string) {
	t.Helper()
	f.createService(t, td, 1)
	if d, _ := f.waitDeployment(t, 10*time.Minute); d.Status != ecstypes.ServiceDeploymentStatusSuccessful {
		t.Fatalf("first deployment %s", d.Status)
	}
}

// updateService points the worker service at td, as a deploy does.
func (f *ecsFixture) updateService(t *testing.T, td string) {
	t.Helper()
	if _, err := f.ecs.UpdateService(bg, &ecs.UpdateServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker"), TaskDefinition: aws.String(td)}); err != nil {
		t.Fatal(err)
	}
}

func (f *ecsFixture) waitDeployment(t *testing.T, limit time.Duration) (ecstypes.ServiceDeployment, []ecstypes.ServiceDeploymentStatus) {
	t.Helper()
	var seen []ecstypes.ServiceDeploymentStatus
	for waited := time.Duration(0); waited <= limit; waited += 15 * time.Second {
		d := f.latestDeployment(t)
		if len(seen) == 0 || seen[len(seen)-1] != d.Status {
			seen = append(seen, d.Status)
		}
		switch d.Status {
		case ecstypes.ServiceDeploymentStatusSuccessful, ecstypes.ServiceDeploymentStatusStopped,
			ecstypes.ServiceDeploymentStatusRollbackSuccessful, ecstypes.ServiceDeploymentStatusRollbackFailed:
			return d, seen
		}
		f.clk.Advance(15 * time.Second)
	}
	t.Fatalf("deployment not terminal after %v; statuses %v", limit, seen)
	return ecstypes.ServiceDeployment{}, nil
}

func (f *ecsFixture) tasks(t *testing.T, desired ecstypes.DesiredStatus) []ecstypes.Task {
	t.Helper()
	list, err := f.ecs.ListTasks(bg, &ecs.ListTasksInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), DesiredStatus: desired})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) == 0 {
		return nil
	}
	out, err := f.ecs.DescribeTasks(bg, &ecs.DescribeTasksInput{Cluster: aws.String("deploybot-staging"), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}

func eventsText(s ecstypes.Service) string {
	var b strings.Builder
	for _, e := range s.Events {
		b.WriteString(aws.ToString(e.Message) + "\n")
	}
	return b.String()
}

func TestECSDeploymentSucceedsThenRollsForward(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	td1 := f.register(t, "prefecthq/prefect-aws:0.5.0")
	created := f.createService(t, td1, 1)

	// Server defaults real ECS fills in (docs/research/aws-ecs.md §1.1).
	if got := []any{aws.ToString(created.PlatformVersion), aws.ToInt32(created.DeploymentConfiguration.MaximumPercent),
		aws.ToInt32(created.DeploymentConfiguration.MinimumHealthyPercent), created.PropagateTags, created.SchedulingStrategy, aws.ToString(created.Status)}; !cmp.Equal(got,
		[]any{"LATEST", int32(200), int32(100), ecstypes.PropagateTagsNone, ecstypes.SchedulingStrategyReplica, "ACTIVE"}) {
		t.Fatalf("defaults = %v", got)
	}
	if d := f.latestDeployment(t); d.Status != ecstypes.ServiceDeploymentStatusPending {
		t.Fatalf("right after create: %s, want PENDING", d.Status)
	}
	d, seen := f.waitDeployment(t, 10*time.Minute)
	if diff := cmp.Diff([]ecstypes.ServiceDeploymentStatus{"PENDING", "IN_PROGRESS", "SUCCESSFUL"}, seen); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if d.FinishedAt == nil || d.TargetServiceRevision == nil || d.TargetServiceRevision.RunningTaskCount != 1 {
		t.Fatalf("finished deployment = %+v", d)
	}
	svc := f.service(t)
	if len(svc.Deployments) != 1 || svc.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateCompleted || svc.RunningCount != 1 {
		t.Fatalf("deployments = %+v running %d", svc.Deployments, svc.RunningCount)
	}
	if !strings.HasPrefix(aws.ToString(svc.Events[0].Message), "(service worker) has reached a steady state.") {
		t.Fatalf("newest event = %q", aws.ToString(svc.Events[0].Message))
	}
	running := f.tasks(t, ecstypes.DesiredStatusRunning)
	if len(running) != 1 {
		t.Fatalf("running tasks = %d", len(running))
	}
	task := running[0]
	if aws.ToString(task.LastStatus) != "RUNNING" || task.HealthStatus != ecstypes.HealthStatusHealthy || aws.ToString(task.TaskDefinitionArn) != td1 ||
		!strings.HasPrefix(aws.ToString(task.StartedBy), "ecs-svc/") {
		t.Fatalf("task = %s %s %s %s", aws.ToString(task.LastStatus), task.HealthStatus, aws.ToString(task.TaskDefinitionArn), aws.ToString(task.StartedBy))
	}
	views := f.w.Tasks()
	if len(views) != 1 || !regexp.MustCompile(`^ip-10-0-\d+-\d+\.ec2\.internal$`).MatchString(views[0].Hostname) ||
		views[0].Secrets["PREFECT_API_KEY"] != "pnu_secret" || views[0].Env["DEPLOYBOT_WORK_POOL"] != "ecs-pool" || !views[0].Internet {
		t.Fatalf("task views = %+v", views)
	}

	// A new revision: the new task starts while the old one runs (100/200),
	// the old one drains once the new one is healthy.
	td2 := f.register(t, "prefecthq/prefect-aws:0.5.1")
	f.updateService(t, td2)
	f.clk.Advance(40 * time.Second)
	if n := len(f.tasks(t, ecstypes.DesiredStatusRunning)); n != 2 {
		t.Fatalf("during the rollout %d tasks want RUNNING, want 2 (old and new)", n)
	}
	var deps []string
	for _, d := range f.service(t).Deployments {
		deps = append(deps, aws.ToString(d.Status)+" "+aws.ToString(d.TaskDefinition)+" "+string(d.RolloutState))
	}
	if diff := cmp.Diff([]string{"PRIMARY " + td2 + " IN_PROGRESS", "ACTIVE " + td1 + " COMPLETED"}, deps); diff != "" {
		t.Fatalf("deployments during the rollout (-want +got):\n%s", diff)
	}
	// The provider's way to find the deployment it started (docs/research/aws-ecs.md §4.3).
	since, err := f.ecs.ListServiceDeployments(bg, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker"),
		CreatedAt: &ecstypes.CreatedAt{After: aws.Time(f.clk.Now().Add(-time.Minute))}})
	if err != nil || len(since.ServiceDeployments) != 1 || aws.ToString(since.ServiceDeployments[0].TargetServiceRevisionArn) == "" {
		t.Fatalf("deployments created in the last minute: %+v %v", since, err)
	}
	d, _ = f.waitDeployment(t, 10*time.Minute)
	if d.Status != ecstypes.ServiceDeploymentStatusSuccessful {
		t.Fatalf("second deployment = %s", d.Status)
	}
	stable := ecs.NewServicesStableWaiter(advancingECS(f, 15*time.Second), func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond })
	if err := stable.Wait(bg, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker"}}, 5*time.Second); err != nil {
		t.Fatalf("ServicesStable waiter: %v", err)
	}
	stopped := f.tasks(t, ecstypes.DesiredStatusStopped)
	if len(stopped) != 1 || aws.ToString(stopped[0].TaskDefinitionArn) != td1 || stopped[0].StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated ||
		aws.ToString(stopped[0].LastStatus) != "STOPPED" {
		t.Fatalf("stopped = %+v", stopped)
	}
	// desiredCount alone does not make a deployment.
	before := len(f.service(t).Deployments)
	if _, err := f.ecs.UpdateService(bg, &ecs.UpdateServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if got := f.service(t); len(got.Deployments) != before || got.DesiredCount != 2 {
		t.Fatalf("scale: %d deployments, desired %d", len(got.Deployments), got.DesiredCount)
	}
}

func TestECSCrashLoopRollsBackToPreviousDeployment(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	td1 := f.register(t, "prefecthq/prefect-aws:0.5.0")
	f.firstDeployment(t, td1)
	td2 := f.register(t, "prefecthq/prefect-aws:crashloop")
	f.updateService(t, td2)
	d, seen := f.waitDeployment(t, 30*time.Minute)
	if diff := cmp.Diff([]ecstypes.ServiceDeploymentStatus{"PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"}, seen); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if d.Rollback == nil || d.DeploymentCircuitBreaker.Status != ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered || d.DeploymentCircuitBreaker.FailureCount < 3 {
		t.Fatalf("rollback %+v circuit breaker %+v", d.Rollback, d.DeploymentCircuitBreaker)
	}
	svc := f.service(t)
	if aws.ToString(svc.TaskDefinition) != td1 {
		t.Fatalf("service runs %s after rollback, want %s", aws.ToString(svc.TaskDefinition), td1)
	}
	if ev := eventsText(svc); !strings.Contains(ev, "deployment failed: tasks failed to start") || !strings.Contains(ev, "rolling back to deployment") {
		t.Fatalf("events:\n%s", ev)
	}
	crashed := 0
	for _, task := range f.tasks(t, ecstypes.DesiredStatusStopped) {
		if aws.ToString(task.TaskDefinitionArn) == td2 {
			crashed++
			if task.StopCode != ecstypes.TaskStopCodeEssentialContainerExited || aws.ToInt32(task.Containers[0].ExitCode) != 1 ||
				aws.ToString(task.StoppedReason) != "Essential container in task exited" {
				t.Fatalf("crashed task: %s %s exit %v", task.StopCode, aws.ToString(task.StoppedReason), task.Containers[0].ExitCode)
			}
		}
	}
	if crashed != 3 {
		t.Fatalf("%d crashed tasks, want the circuit breaker threshold 3", crashed)
	}
	if running := f.tasks(t, ecstypes.DesiredStatusRunning); len(running) != 1 || aws.ToString(running[0].TaskDefinitionArn) != td1 {
		t.Fatalf("running after rollback: %+v", running)
	}
}

func TestECSFirstDeploymentFailsWithNothingToRollBackTo(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	td := f.register(t, "ghcr.io/acme/does-not-exist:1")
	f.createService(t, td, 1)
	d, seen := f.waitDeployment(t, 30*time.Minute)
	if diff := cmp.Diff([]ecstypes.ServiceDeploymentStatus{"PENDING", "IN_PROGRESS", "STOPPED"}, seen); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if d.Rollback != nil || !strings.Contains(aws.ToString(d.StatusReason), "circuit breaker") {
		t.Fatalf("deployment = %+v", d)
	}
	svc := f.service(t)
	if svc.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateFailed || svc.RunningCount != 0 {
		t.Fatalf("deployment %+v running %d", svc.Deployments[0], svc.RunningCount)
	}
	stopped := f.tasks(t, ecstypes.DesiredStatusStopped)
	for _, task := range stopped {
		if !strings.HasPrefix(aws.ToString(task.StoppedReason), "CannotPullContainerError:") || !strings.HasSuffix(aws.ToString(task.StoppedReason), "not found") ||
			task.StopCode != ecstypes.TaskStopCodeTaskFailedToStart {
			t.Fatalf("stopped reason = %q", aws.ToString(task.StoppedReason))
		}
	}
	// A failed deployment without rollback launches nothing more.
	f.clk.Advance(10 * time.Minute)
	if again := f.tasks(t, ecstypes.DesiredStatusStopped); len(again) != len(stopped) || len(stopped) != 3 {
		t.Fatalf("stopped tasks %d then %d, want 3", len(stopped), len(again))
	}
}

func TestECSTaskStartFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		opts        fixtureOpts
		propagation time.Duration
		wantStatus  ecstypes.ServiceDeploymentStatus
		wantReason  string // prefix of a stopped task's reason
		wantEvent   string
	}{
		{"role used before IAM propagated, then it works", fixtureOpts{}, 10 * time.Second, "SUCCESSFUL",
			"ECS was unable to assume the role 'arn:aws:iam::123456789012:role/deploybot/deploybot-staging-execution'", "failed to launch a task with (error ECS was unable to assume the role"},
		{"role propagation slower than the circuit breaker", fixtureOpts{}, 10 * time.Minute, "STOPPED",
			"ECS was unable to assume the role", "deployment failed: tasks failed to start"},
		{"execution role cannot read the secret", fixtureOpts{rolesAge: time.Minute, secretPolicyOn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf"}, 10 * time.Second, "STOPPED",
			"ResourceInitializationError: unable to pull secrets or registry auth", ""},
		{"no route to the internet", fixtureOpts{rolesAge: time.Minute, privateSubnets: true}, 10 * time.Second, "STOPPED",
			"ResourceInitializationError: unable to pull secrets or registry auth", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.propagation = tc.propagation
			f := newECSFixture(t, tc.opts)
			f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 1)
			d, _ := f.waitDeployment(t, 30*time.Minute)
			if d.Status != tc.wantStatus {
				t.Fatalf("deployment %s (%s), want %s", d.Status, aws.ToString(d.StatusReason), tc.wantStatus)
			}
			found := false
			var reasons []string
			for _, task := range f.tasks(t, ecstypes.DesiredStatusStopped) {
				reasons = append(reasons, aws.ToString(task.StoppedReason))
				found = found || strings.HasPrefix(aws.ToString(task.StoppedReason), tc.wantReason)
			}
			if !found {
				t.Fatalf("no stopped task with %q; reasons %q", tc.wantReason, reasons)
			}
			if ev := eventsText(f.service(t)); !strings.Contains(ev, tc.wantEvent) {
				t.Fatalf("events lack %q:\n%s", tc.wantEvent, ev)
			}
			if tc.opts.privateSubnets && !strings.Contains(strings.Join(reasons, "\n"), "i/o timeout") {
				t.Fatalf("no i/o timeout in %q", reasons)
			}
		})
	}
}

// advancingECS is an ECS client whose every call first moves the virtual
// clock by step: the SDK waiters sleep on the wall clock, so this is how a
// waiter's polling interval passes in simulated time.
func advancingECS(f *ecsFixture, step time.Duration) *ecs.Client {
	cfg := f.w.Config()
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("advanceClock",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				f.clk.Advance(step)
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	return ecs.NewFromConfig(cfg)
}

func TestECSTeardown(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 1)
	f.waitDeployment(t, 10*time.Minute)
	cluster := aws.String("deploybot-staging")
	steps := []struct {
		name string
		call func() error
		code string
	}{
		{"delete cluster with a service", call(bg, f.ecs.DeleteCluster, &ecs.DeleteClusterInput{Cluster: cluster}), "ClusterContainsServicesException"},
		{"delete service scaled above 0", call(bg, f.ecs.DeleteService, &ecs.DeleteServiceInput{Cluster: cluster, Service: aws.String("worker")}), "InvalidParameterException"},
		{"scale to 0", call(bg, f.ecs.UpdateService, &ecs.UpdateServiceInput{Cluster: cluster, Service: aws.String("worker"), DesiredCount: aws.Int32(0)}), ""},
		{"delete service", call(bg, f.ecs.DeleteService, &ecs.DeleteServiceInput{Cluster: cluster, Service: aws.String("worker")}), ""},
		{"update a draining service", call(bg, f.ecs.UpdateService, &ecs.UpdateServiceInput{Cluster: cluster, Service: aws.String("worker"), DesiredCount: aws.Int32(1)}), "ServiceNotActiveException"},
		{"create over a draining service", call(bg, f.ecs.CreateService, &ecs.CreateServiceInput{Cluster: cluster, ServiceName: aws.String("worker"), TaskDefinition: aws.String("deploybot-staging-worker"),
			DesiredCount: aws.Int32(0), NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: f.subnets}}}), "InvalidParameterException"},
		{"delete cluster while draining", call(bg, f.ecs.DeleteCluster, &ecs.DeleteClusterInput{Cluster: cluster}), "ClusterContainsServicesException"},
	}
	for _, s := range steps {
		if got := errCode(t, s.call()); got != s.code {
			t.Fatalf("%s: code %q, want %q", s.name, got, s.code)
		}
	}
	if st := aws.ToString(f.service(t).Status); st != "DRAINING" {
		t.Fatalf("status after delete = %s", st)
	}
	// The SDK's own waiter, polling every 5 simulated seconds.
	waiter := ecs.NewServicesInactiveWaiter(advancingECS(f, 5*time.Second), func(o *ecs.ServicesInactiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond
	})
	if err := waiter.Wait(bg, &ecs.DescribeServicesInput{Cluster: cluster, Services: []string{"worker"}}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if left := f.tasks(t, ecstypes.DesiredStatusRunning); len(left) != 0 {
		t.Fatalf("tasks still wanted running: %d", len(left))
	}
	if _, err := f.ecs.DeleteCluster(bg, &ecs.DeleteClusterInput{Cluster: cluster}); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(DefaultTimings().InactiveServiceRetention)
	out, err := f.ecs.DescribeClusters(bg, &ecs.DescribeClustersInput{Clusters: []string{"deploybot-staging"}})
	if err != nil || aws.ToString(out.Clusters[0].Status) != "INACTIVE" {
		t.Fatalf("cluster after delete: %+v %v", out, err)
	}
	if _, err := f.ecs.DescribeServices(bg, &ecs.DescribeServicesInput{Cluster: cluster, Services: []string{"worker"}}); errCode(t, err) != "ClusterNotFoundException" {
		t.Fatalf("describe services in a deleted cluster: %v", err)
	}
	// Only the (ACTIVE) task definition is left of what was tagged.
	var left []string
	for _, it := range f.w.TaggedFor("staging") {
		left = append(left, it.Type)
	}
	if diff := cmp.Diff([]string{"task-definition"}, left); diff != "" {
		t.Fatalf("inventory left (-want +got):\n%s", diff)
	}
}

func TestECSServiceGoesMissingAfterInactive(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 0)
	if _, err := f.ecs.DeleteService(bg, &ecs.DeleteServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker")}); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Second)
	if st := aws.ToString(f.service(t).Status); st != "INACTIVE" {
		t.Fatalf("status = %s, want INACTIVE", st)
	}
	f.clk.Advance(DefaultTimings().InactiveServiceRetention)
	out, err := f.ecs.DescribeServices(bg, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker"}})
	if err != nil || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Fatalf("after retention: %+v %v", out, err)
	}
	// The stock waiter fails on MISSING (docs/research/aws-ecs.md §4.3).
	waiter := ecs.NewServicesInactiveWaiter(f.ecs, func(o *ecs.ServicesInactiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond
	})
	if err := waiter.Wait(bg, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker"}}, time.Second); err == nil {
		t.Fatal("ServicesInactive waiter succeeded on a MISSING service")
	}
	// The name is free again.
	f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 0)
}

func TestECSAPIErrors(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	td := f.register(t, "prefecthq/prefect-aws:0.5.0")
	net := &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: f.subnets, SecurityGroups: []string{f.sg}}}
	first, err := f.ecs.CreateService(bg, &ecs.CreateServiceInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(0), NetworkConfiguration: net, ClientToken: aws.String("tok-1")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"create service in a missing cluster", call(bg, f.ecs.CreateService, &ecs.CreateServiceInput{Cluster: aws.String("nope"), ServiceName: aws.String("w"), TaskDefinition: aws.String(td), NetworkConfiguration: net}), "ClusterNotFoundException"},
		{"create service with a missing task definition", call(bg, f.ecs.CreateService, &ecs.CreateServiceInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("w"), TaskDefinition: aws.String("nope:1"), NetworkConfiguration: net}), "InvalidParameterException"},
		{"create service without network configuration", call(bg, f.ecs.CreateService, &ecs.CreateServiceInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("w"), TaskDefinition: aws.String(td)}), "InvalidParameterException"},
		{"create service in a missing subnet", call(bg, f.ecs.CreateService, &ecs.CreateServiceInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("w"), TaskDefinition: aws.String(td),
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{"subnet-0123"}}}}), "InvalidParameterException"},
		{"create again with the same client token", func() error {
			out, err := f.ecs.CreateService(bg, &ecs.CreateServiceInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), TaskDefinition: aws.String(td),
				DesiredCount: aws.Int32(0), NetworkConfiguration: net, ClientToken: aws.String("tok-1")})
			if err == nil && aws.ToString(out.Service.ServiceArn) != aws.ToString(first.Service.ServiceArn) {
				t.Fatal("idempotent create returned another service")
			}
			return err
		}, ""},
		{"create again with another client token", call(bg, f.ecs.CreateService, &ecs.CreateServiceInput{Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), TaskDefinition: aws.String(td),
			DesiredCount: aws.Int32(0), NetworkConfiguration: net, ClientToken: aws.String("tok-2")}), "InvalidParameterException"},
		{"update a missing service", call(bg, f.ecs.UpdateService, &ecs.UpdateServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("nope"), DesiredCount: aws.Int32(1)}), "ServiceNotFoundException"},
		{"delete a missing service", call(bg, f.ecs.DeleteService, &ecs.DeleteServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("nope")}), "ServiceNotFoundException"},
		{"list deployments of a missing service", call(bg, f.ecs.ListServiceDeployments, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("nope")}), "ServiceNotFoundException"},
		{"describe tasks in a missing cluster", call(bg, f.ecs.DescribeTasks, &ecs.DescribeTasksInput{Cluster: aws.String("nope"), Tasks: []string{"x"}}), "ClusterNotFoundException"},
	}
	for _, tc := range cases {
		if got := errCode(t, tc.call()); got != tc.code {
			t.Fatalf("%s: code %q (%s), want %q", tc.name, got, errMessage(tc.call()), tc.code)
		}
	}
	out, err := f.ecs.DescribeServices(bg, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker", "ghost"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
		aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:service/deploybot-staging/ghost" {
		t.Fatalf("describe = %+v / %+v", out.Services, out.Failures)
	}
	if out.Services[0].Tags != nil {
		t.Fatal("tags returned without include TAGS")
	}
}

func TestECSTaskDefinitions(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{})
	td1 := f.register(t, "img:1")
	td2 := f.register(t, "img:2")
	if td2 != "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:2" {
		t.Fatalf("arn = %s", td2)
	}
	d, err := f.ecs.DescribeTaskDefinition(bg, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("deploybot-staging-worker"), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	cd := d.TaskDefinition.ContainerDefinitions[0]
	if aws.ToString(d.TaskDefinition.TaskDefinitionArn) != td2 || len(d.Tags) != 1 || !aws.ToBool(cd.Essential) || aws.ToInt32(cd.HealthCheck.Interval) != 30 ||
		d.TaskDefinition.Status != ecstypes.TaskDefinitionStatusActive {
		t.Fatalf("describe latest = %s tags %v essential %v", aws.ToString(d.TaskDefinition.TaskDefinitionArn), d.Tags, cd.Essential)
	}
	if _, err := f.ecs.DeregisterTaskDefinition(bg, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(td2)}); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.ecs.DescribeTaskDefinition(bg, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("deploybot-staging-worker")}); aws.ToString(d.TaskDefinition.TaskDefinitionArn) != td1 {
		t.Fatal("family alone does not resolve to the latest ACTIVE revision")
	}
	list := func(in *ecs.ListTaskDefinitionsInput) []string {
		out, err := f.ecs.ListTaskDefinitions(bg, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.TaskDefinitionArns
	}
	if diff := cmp.Diff([]string{td1}, list(&ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("deploybot-staging-worker")})); diff != "" {
		t.Fatal(diff)
	}
	if diff := cmp.Diff([]string{td2}, list(&ecs.ListTaskDefinitionsInput{Status: ecstypes.TaskDefinitionStatusInactive, Sort: ecstypes.SortOrderDesc})); diff != "" {
		t.Fatal(diff)
	}
	if got := list(&ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("deploybot-staging")}); len(got) != 0 {
		t.Fatalf("familyPrefix matched by prefix: %v", got)
	}
	del, err := f.ecs.DeleteTaskDefinitions(bg, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{td1, td2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Failures) != 1 || len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != ecstypes.TaskDefinitionStatusDeleteInProgress {
		t.Fatalf("delete = %+v", del)
	}
	f.clk.Advance(2 * time.Minute)
	cases := []struct {
		name string
		in   *ecs.RegisterTaskDefinitionInput
		ref  string
		code string
	}{
		{name: "describe a deleted revision", ref: td2, code: "ClientException"},
		{name: "describe a missing family", ref: "nope", code: "ClientException"},
		{name: "fargate without awsvpc", code: "ClientException", in: &ecs.RegisterTaskDefinitionInput{Family: aws.String("x"), RequiresCompatibilities: []ecstypes.Compatibility{"FARGATE"},
			Cpu: aws.String("256"), Memory: aws.String("512"), ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("i")}}}},
		{name: "fargate with an invalid cpu/memory pair", code: "ClientException", in: &ecs.RegisterTaskDefinitionInput{Family: aws.String("x"), RequiresCompatibilities: []ecstypes.Compatibility{"FARGATE"},
			NetworkMode: "awsvpc", Cpu: aws.String("512"), Memory: aws.String("512"), ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("i")}}}},
		{name: "secrets without an execution role", code: "ClientException", in: &ecs.RegisterTaskDefinitionInput{Family: aws.String("x"), RequiresCompatibilities: []ecstypes.Compatibility{"FARGATE"},
			NetworkMode: "awsvpc", Cpu: aws.String("256"), Memory: aws.String("512"), ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("i"),
				Secrets: []ecstypes.Secret{{Name: aws.String("K"), ValueFrom: aws.String(f.secret)}}}}}},
	}
	for _, tc := range cases {
		var err error
		if tc.in != nil {
			_, err = f.ecs.RegisterTaskDefinition(bg, tc.in)
		} else {
			_, err = f.ecs.DescribeTaskDefinition(bg, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(tc.ref)})
		}
		if got := errCode(t, err); got != tc.code {
			t.Fatalf("%s: %q, want %q", tc.name, got, tc.code)
		}
		if tc.in == nil && errMessage(err) != "Unable to describe task definition." {
			t.Fatalf("%s: message %q", tc.name, errMessage(err))
		}
	}
}
