package awssim

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func TestCircuitBreakerThreshold(t *testing.T) {
	t.Parallel()
	cfg := func(typ ecstypes.ThresholdType, v int32) *ecstypes.DeploymentCircuitBreaker {
		return &ecstypes.DeploymentCircuitBreaker{Enable: true, ThresholdConfiguration: &ecstypes.ThresholdConfiguration{Type: typ, Value: v}}
	}
	tests := []struct {
		desired int32
		cb      *ecstypes.DeploymentCircuitBreaker
		want    int32
	}{
		{1, nil, 3}, {5, nil, 3}, {7, nil, 4}, {10, nil, 5}, {399, nil, 200}, {1000, nil, 200},
		{10, cfg(ecstypes.ThresholdTypeBoundedPercent, 100), 10},
		{1000, cfg(ecstypes.ThresholdTypeUnboundedPercent, 50), 500},
		{1, cfg(ecstypes.ThresholdTypeUnboundedPercent, 50), 1},
		{1, cfg(ecstypes.ThresholdTypeCount, 2), 2},
	}
	for _, tt := range tests {
		if got := circuitBreakerThreshold(tt.desired, tt.cb); got != tt.want {
			t.Errorf("desired %d %+v: threshold %d, want %d", tt.desired, tt.cb, got, tt.want)
		}
	}
}

// scriptedRuntime runs every container as a process whose health check
// passes from passFrom (after its start) on, until failFrom if set.
type scriptedRuntime struct {
	passFrom, failFrom time.Duration
	exitAfter          time.Duration // 0: runs until stopped
	probes             *[]time.Duration
}

type scriptedProcess struct {
	rt    scriptedRuntime
	start time.Time
}

func (r scriptedRuntime) Start(c ContainerStart) ContainerProcess {
	return &scriptedProcess{rt: r, start: c.StartedAt}
}

func (p *scriptedProcess) Exit(now time.Time) (time.Time, int32, bool) {
	if p.rt.exitAfter == 0 {
		return time.Time{}, 0, false
	}
	return p.start.Add(p.rt.exitAfter), 1, true
}

func (p *scriptedProcess) Probe(at time.Time, _ []string) bool {
	since := at.Sub(p.start)
	if p.rt.probes != nil {
		*p.rt.probes = append(*p.rt.probes, since)
	}
	return since >= p.rt.passFrom && (p.rt.failFrom == 0 || since < p.rt.failFrom)
}

func (p *scriptedProcess) Stopped(time.Time) {}

func taskHealth(t *testing.T, f *ecsFixture, desired ecstypes.DesiredStatus) []string {
	t.Helper()
	var out []string
	for _, task := range f.tasks(t, desired) {
		out = append(out, aws.ToString(task.TaskDefinitionArn)[strings.LastIndex(aws.ToString(task.TaskDefinitionArn), ":")+1:]+" "+string(task.HealthStatus))
	}
	return out
}

// TestHealthCheckSemantics: what ECS makes of a container health check
// (API_HealthCheck): the first check runs one interval after the start; a
// pass inside startPeriod makes the task HEALTHY at once; failures inside
// startPeriod before any pass do not count; `retries` consecutive failures
// make it UNHEALTHY, and the service replaces it.
func TestHealthCheckSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		rt          scriptedRuntime
		wait        time.Duration // after the task starts
		wantHealth  ecstypes.HealthStatus
		wantStopped string // a stopped task's reason, "" for none
	}{
		{"first check passes inside the start period", scriptedRuntime{passFrom: 0}, 31 * time.Second, ecstypes.HealthStatusHealthy, ""},
		{"not checked yet", scriptedRuntime{passFrom: 0}, 29 * time.Second, ecstypes.HealthStatusUnknown, ""},
		{"failures inside the start period do not count", scriptedRuntime{passFrom: 55 * time.Second}, 61 * time.Second, ecstypes.HealthStatusHealthy, ""},
		{"failing after the start period: unhealthy after 3 counted failures", scriptedRuntime{passFrom: time.Hour}, 200 * time.Second, "", "Task failed container health checks"},
		{"healthy, then failing", scriptedRuntime{passFrom: 0, failFrom: 100 * time.Second}, 200 * time.Second, "", "Task failed container health checks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
			var probes []time.Duration
			tt.rt.probes = &probes
			f.w.AddContainerRuntime(tt.rt)
			f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 1)
			// The task starts after provisioning and the pull.
			tm := f.w.Timings()
			started := f.clk.Now().Add(tm.DeploymentStart + tm.TaskProvisioning + tm.ImagePull)
			f.clk.Advance(started.Add(tt.wait).Sub(f.clk.Now()))
			if tt.wantStopped != "" {
				var reasons []string
				for _, s := range f.tasks(t, ecstypes.DesiredStatusStopped) {
					reasons = append(reasons, aws.ToString(s.StoppedReason))
				}
				if len(reasons) == 0 || reasons[0] != tt.wantStopped {
					t.Fatalf("stopped tasks %v, want %q (probes at %v)", reasons, tt.wantStopped, probes)
				}
				if ev := eventsText(f.service(t)); !strings.Contains(ev, "failed container health checks") {
					t.Fatalf("events:\n%s", ev)
				}
				return
			}
			running := f.tasks(t, ecstypes.DesiredStatusRunning)
			if len(running) != 1 || running[0].HealthStatus != tt.wantHealth {
				t.Fatalf("running %v, want one %s (probes at %v)", taskHealth(t, f, ecstypes.DesiredStatusRunning), tt.wantHealth, probes)
			}
			if len(probes) > 0 && probes[0] != 30*time.Second {
				t.Fatalf("first probe %s after the start, want one interval (30s)", probes[0])
			}
		})
	}
}

// TestNeverHealthyRevisionKeepsTheOldTaskAndRollsBack: with 100% minimum
// healthy, a revision whose health check never passes never counts as
// healthy, so the old task keeps running; its replacements fail health
// checks three times and the circuit breaker rolls back.
func TestNeverHealthyRevisionKeepsTheOldTaskAndRollsBack(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	td1 := f.register(t, "prefecthq/prefect-aws:0.5.0")
	// Revision 1's containers are healthy from the first check, revision 2's never.
	f.w.AddContainerRuntime(runtimeFunc(func(c ContainerStart) ContainerProcess {
		if strings.Contains(c.Image, "broken") {
			return &scriptedProcess{rt: scriptedRuntime{passFrom: time.Hour}, start: c.StartedAt}
		}
		return &scriptedProcess{rt: scriptedRuntime{}, start: c.StartedAt}
	}))
	f.firstDeployment(t, td1)
	td2 := f.register(t, "prefecthq/prefect-aws:broken")
	f.updateService(t, td2)
	for i := 0; i < 120; i++ {
		f.clk.Advance(5 * time.Second)
		healthy := 0
		for _, task := range f.tasks(t, ecstypes.DesiredStatusRunning) {
			if aws.ToString(task.LastStatus) == "RUNNING" && task.HealthStatus == ecstypes.HealthStatusHealthy && aws.ToString(task.TaskDefinitionArn) == td1 {
				healthy++
			}
		}
		if healthy == 0 {
			t.Fatalf("%s into the deploy no healthy task of revision 1 runs: %v", time.Duration(i+1)*5*time.Second, taskHealth(t, f, ecstypes.DesiredStatusRunning))
		}
	}
	d, _ := f.waitDeployment(t, time.Minute)
	if d.Status != ecstypes.ServiceDeploymentStatusRollbackSuccessful || d.DeploymentCircuitBreaker.Status != ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered {
		t.Fatalf("deployment %s, circuit breaker %+v", d.Status, d.DeploymentCircuitBreaker)
	}
	// Revision 2's three tasks failed their health checks; the rollback
	// then replaced revision 1's old task with a new one.
	var reasons []string
	for _, s := range f.tasks(t, ecstypes.DesiredStatusStopped) {
		if aws.ToString(s.TaskDefinitionArn) == td2 {
			reasons = append(reasons, aws.ToString(s.StoppedReason))
		}
	}
	if diff := cmp.Diff([]string{"Task failed container health checks", "Task failed container health checks", "Task failed container health checks"}, reasons); diff != "" {
		t.Fatalf("revision 2's stopped tasks (-want +got):\n%s", diff)
	}
}

type runtimeFunc func(ContainerStart) ContainerProcess

func (f runtimeFunc) Start(c ContainerStart) ContainerProcess { return f(c) }

// TestHealthyTaskResetsTheCircuitBreaker: a task that passes its health
// check resets the deployment's failure count (resetOnHealthyTask, default
// true), so a revision that crashes a while after becoming healthy is not
// failed by the circuit breaker; with resetOnHealthyTask false it is.
func TestHealthyTaskResetsTheCircuitBreaker(t *testing.T) {
	t.Parallel()
	for _, reset := range []bool{true, false} {
		f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
		// Healthy at the first check (30 s), gone at 50 s: before the 30 s
		// of steady state that would complete the deployment.
		f.w.AddContainerRuntime(scriptedRuntime{passFrom: 0, exitAfter: 50 * time.Second})
		cb := &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true, ResetOnHealthyTask: aws.Bool(reset)}
		_, err := f.ecs.CreateService(bg, &ecs.CreateServiceInput{
			Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), TaskDefinition: aws.String(f.register(t, "prefecthq/prefect-aws:0.5.0")),
			DesiredCount: aws.Int32(1), LaunchType: ecstypes.LaunchTypeFargate,
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
				Subnets: f.subnets, SecurityGroups: []string{f.sg}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
			DeploymentConfiguration: &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: cb},
		})
		if err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(20 * time.Minute)
		d := f.latestDeployment(t)
		want := ecstypes.ServiceDeploymentStatusStopped
		if reset {
			want = ecstypes.ServiceDeploymentStatusInProgress
		}
		if d.Status != want {
			t.Errorf("resetOnHealthyTask=%v: deployment %s (%s), want %s", reset, d.Status, aws.ToString(d.StatusReason), want)
		}
	}
}

// TestReachabilitySplit: the registry and Prefect are separate
// destinations. In private subnets without a NAT gateway, an ECR image
// pulls through ECR's VPC endpoints while hosts on the internet (Docker Hub,
// Prefect Cloud) stay out of reach.
func TestReachabilitySplit(t *testing.T) {
	t.Parallel()
	ecrImage := "123456789012.dkr.ecr.us-east-1.amazonaws.com/prefect-worker:3.8"
	tests := []struct {
		name      string
		endpoints []string
		image     string
		secrets   bool
		running   bool
		reason    string
	}{
		{"ECR through its endpoints", []string{"ecr.api", "ecr.dkr", "s3"}, ecrImage, false, true, ""},
		{"ECR and the secret through endpoints", []string{"ecr.api", "ecr.dkr", "s3", "secretsmanager"}, ecrImage, true, true, ""},
		{"no S3 gateway endpoint for the layers", []string{"ecr.api", "ecr.dkr"}, ecrImage, false, false, "CannotPullContainerError: ref pull has been retried"},
		{"no ecr.api endpoint for the registry auth", []string{"ecr.dkr", "s3"}, ecrImage, false, false, "unable to retrieve ecr registry auth"},
		{"Docker Hub needs the internet", []string{"ecr.api", "ecr.dkr", "s3"}, "prefecthq/prefect-aws:0.5.0", false, false, "Head \"https://registry-1.docker.io/v2/\""},
		{"the secret needs Secrets Manager's endpoint", []string{"ecr.api", "ecr.dkr", "s3"}, ecrImage, true, false, "unable to retrieve secret from asm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute, privateSubnets: true})
			vpc := f.w.EC2State().Subnets[f.subnets[0]].VPCID
			for _, e := range tt.endpoints {
				f.w.SeedVPCEndpoint(vpc, e)
			}
			td := f.registerWith(t, tt.image, tt.secrets, map[string]string{"PREFECT_API_URL": "https://api.prefect.cloud/api/accounts/a/workspaces/w"})
			f.createService(t, td, 1)
			f.clk.Advance(3 * time.Minute)
			views := f.w.Tasks()
			if tt.running {
				if len(views) == 0 || views[0].LastStatus != "RUNNING" {
					t.Fatalf("tasks %+v", views)
				}
				if views[0].Internet || views[0].HostReach["api.prefect.cloud"] {
					t.Fatalf("the task reaches the internet: %+v", views[0].HostReach)
				}
				return
			}
			stopped := f.tasks(t, ecstypes.DesiredStatusStopped)
			if len(stopped) == 0 || !strings.Contains(aws.ToString(stopped[0].StoppedReason), tt.reason) {
				t.Fatalf("stopped %v, want a reason with %q", taskReasons(stopped), tt.reason)
			}
		})
	}
}

func taskReasons(ts []ecstypes.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, aws.ToString(t.StoppedReason))
	}
	return out
}

// registerWith registers a worker revision running image, with the API key
// secret or not, and env besides.
func (f *ecsFixture) registerWith(t *testing.T, image string, secret bool, env map[string]string) string {
	t.Helper()
	c := ecstypes.ContainerDefinition{Name: aws.String("worker"), Image: aws.String(image),
		Command:     []string{"/bin/sh", "-c", "exec prefect worker start --pool \"$DEPLOYBOT_WORK_POOL\" --type ecs --with-healthcheck"},
		Environment: []ecstypes.KeyValuePair{{Name: aws.String("DEPLOYBOT_WORK_POOL"), Value: aws.String("ecs-pool")}},
		HealthCheck: &ecstypes.HealthCheck{Command: []string{"CMD-SHELL", "exit 0"}, StartPeriod: aws.Int32(60)}}
	for k, v := range env {
		c.Environment = append(c.Environment, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
	}
	if secret {
		c.Secrets = []ecstypes.Secret{{Name: aws.String("PREFECT_API_KEY"), ValueFrom: aws.String(f.secret)}}
	}
	out, err := f.ecs.RegisterTaskDefinition(bg, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("deploybot-staging-worker"), RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode: ecstypes.NetworkModeAwsvpc, Cpu: aws.String("512"), Memory: aws.String("1024"),
		ExecutionRoleArn: aws.String(f.execRole), TaskRoleArn: aws.String(f.taskRole), ContainerDefinitions: []ecstypes.ContainerDefinition{c},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}
