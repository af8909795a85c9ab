package prefect

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefectsim"
)

// worldFixture is the gate against the real ECS simulator, driven through the
// real ecs client: a service of revision 1 is running (circuit breaker with
// rollback), revision 2 is deployed with UpdateService, then the gate runs.
// The Prefect simulator's workers come from the world's tasks.
type worldFixture struct {
	clk     *clock.Virtual
	w       *awssim.World
	sim     *prefectsim.Server
	ecs     *ecs.Client
	subnets []string
	sg      string
	exec    string
	task    string
	secret  string
}

const ecsTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func newWorldFixture(t *testing.T, key string) *worldFixture {
	t.Helper()
	ctx := context.Background()
	f := &worldFixture{clk: clock.NewVirtual(t0)}
	f.w = awssim.New(f.clk)
	f.sim = prefectsim.New(f.w, prefectsim.WithKey(testKey))
	t.Cleanup(f.sim.Close)
	f.sim.AddWorkPool(testPool, "ecs", false)
	cfg := f.w.Config()
	f.ecs = ecs.NewFromConfig(cfg)

	vpc, subnets := f.w.SeedExistingVPC("10.0.0.0/16", 2, true)
	f.subnets = subnets
	f.w.Mu.Lock()
	f.sg = f.w.NewID("sg")
	f.w.EC2State().SecurityGroups[f.sg] = &awssim.SecurityGroup{ID: f.sg, Name: "deploybot-staging-worker", VPCID: vpc, Egress: []string{"-1:0-0:0.0.0.0/0"}}
	f.w.Mu.Unlock()

	sec, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("deploybot/staging/prefect-api-key"), SecretString: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	f.secret = aws.ToString(sec.ARN)
	ic := iam.NewFromConfig(cfg)
	for _, r := range []struct{ name, policy string }{
		{"deploybot-staging-execution", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"` + f.secret + `"}]}`},
		{"deploybot-staging-task", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeTasks","Resource":"*"}]}`},
	} {
		out, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(r.name), Path: aws.String("/deploybot/"), AssumeRolePolicyDocument: aws.String(ecsTrustPolicy)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r.name), PolicyName: aws.String("p"), PolicyDocument: aws.String(r.policy)}); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(r.name, "execution") {
			f.exec = aws.ToString(out.Role.Arn)
			if _, err := ic.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(r.name), PolicyArn: aws.String(awssim.ECSTaskExecutionRolePolicyARN)}); err != nil {
				t.Fatal(err)
			}
		} else {
			f.task = aws.ToString(out.Role.Arn)
		}
	}
	f.clk.Advance(time.Minute) // IAM propagation
	if _, err := f.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("deploybot-staging")}); err != nil {
		t.Fatal(err)
	}
	return f
}

// register follows the worker identity contract (docs/ARCHITECTURE.md).
func (f *worldFixture) register(t *testing.T, image, prefix string) string {
	t.Helper()
	out, err := f.ecs.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("deploybot-staging-worker"), RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode: ecstypes.NetworkModeAwsvpc, Cpu: aws.String("512"), Memory: aws.String("1024"),
		ExecutionRoleArn: aws.String(f.exec), TaskRoleArn: aws.String(f.task),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("worker"), Image: aws.String(image), Essential: aws.Bool(true),
			Command: []string{"/bin/sh", "-c", `exec prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --type ecs --with-healthcheck --name "$DEPLOYBOT_WORKER_PREFIX-$(hostname)"`},
			Environment: []ecstypes.KeyValuePair{
				{Name: aws.String("DEPLOYBOT_WORK_POOL"), Value: aws.String(testPool)},
				{Name: aws.String("DEPLOYBOT_WORKER_PREFIX"), Value: aws.String(prefix)},
				{Name: aws.String("PREFECT_API_URL"), Value: aws.String(f.sim.URL())},
			},
			Secrets: []ecstypes.Secret{{Name: aws.String("PREFECT_API_KEY"), ValueFrom: aws.String(f.secret)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (f *worldFixture) createService(t *testing.T, td string) {
	t.Helper()
	_, err := f.ecs.CreateService(context.Background(), &ecs.CreateServiceInput{
		Cluster: aws.String("deploybot-staging"), ServiceName: aws.String("worker"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(1), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: f.subnets, SecurityGroups: []string{f.sg}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *worldFixture) writes() []string {
	var out []string
	for _, c := range f.w.Calls() {
		if c.Write {
			out = append(out, c.Service+"."+c.Operation)
		}
	}
	return out
}

// TestGateAgainstTheECSSimulator runs the gate's cases on the simulated
// account: real ECS deployments, circuit breaker, stopped tasks and the
// service deployments API, through the real SDK client.
func TestGateAgainstTheECSSimulator(t *testing.T) {
	tests := []struct {
		name        string
		image       string
		behavior    *awssim.ImageBehavior // set for image in w.Images
		firstDeploy bool
		waitBefore  time.Duration
		passed      bool
		rolledBack  bool
		restored    bool
		nothing     bool
		updates     int // UpdateService calls by the gate
		reasonHas   string
		stopHas     string
		maxDuration time.Duration
	}{
		{name: "good deploy passes", image: "prefecthq/prefect-aws:0.7.11", passed: true, maxDuration: 2 * time.Minute},
		{name: "never heartbeats: rolled back, old worker back", image: "prefecthq/prefect-aws:hangs",
			behavior: &awssim.ImageBehavior{NoHeartbeat: true}, rolledBack: true, restored: true, updates: 1, reasonHas: "came ONLINE"},
		{name: "crash loop fails fast", image: "prefecthq/prefect-aws:crashloop", rolledBack: true, restored: true, updates: 1,
			reasonHas: "stopped", stopHas: "Essential container", maxDuration: 4 * time.Minute},
		{name: "image pull failure fails fast", image: "prefecthq/prefect-aws:does-not-exist", rolledBack: true, restored: true, updates: 1,
			reasonHas: "CannotPullContainerError", stopHas: "CannotPullContainerError", maxDuration: 4 * time.Minute},
		{name: "circuit breaker rolled back before the gate", image: "prefecthq/prefect-aws:does-not-exist", waitBefore: 10 * time.Minute,
			rolledBack: true, restored: true, updates: 0, reasonHas: "ECS rolled the deployment"},
		{name: "first deploy fails: nothing to roll back to", image: "prefecthq/prefect-aws:hangs", behavior: &awssim.ImageBehavior{NoHeartbeat: true},
			firstDeploy: true, nothing: true, reasonHas: "nothing to roll back to: this was the first deploy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newWorldFixture(t, testKey)
			if tt.behavior != nil {
				f.w.Mu.Lock()
				f.w.Images[tt.image] = *tt.behavior
				f.w.Mu.Unlock()
			}
			prev := ""
			v2 := ""
			start := f.clk.Now()
			if tt.firstDeploy {
				v2 = f.register(t, tt.image, prefixV2)
				f.createService(t, v2)
			} else {
				prev = f.register(t, "prefecthq/prefect-aws:0.7.10", prefixV1)
				f.createService(t, prev)
				f.clk.Advance(5 * time.Minute)
				if ws := f.sim.Workers(testPool); len(ws) != 1 || ws[0].Status != "ONLINE" {
					t.Fatalf("revision 1's worker: %+v", ws)
				}
				v2 = f.register(t, tt.image, prefixV2)
				start = f.clk.Now()
				if _, err := f.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("deploybot-staging"), Service: aws.String("worker"), TaskDefinition: aws.String(v2)}); err != nil {
					t.Fatal(err)
				}
			}
			f.clk.Advance(tt.waitBefore)
			writesBefore := len(f.writes())
			c, err := New(f.sim.URL(), testKey, WithClock(f.clk))
			if err != nil {
				t.Fatal(err)
			}
			env := &config.Environment{Name: "staging", Prefect: config.Prefect{APIURL: f.sim.URL(), WorkPool: testPool},
				HealthGate: config.HealthGate{Timeout: 5 * time.Minute, MinOnlineWorkers: 1}}
			var progress []string
			rep, err := c.Gate(ctx, GateInput{Env: env, ECS: f.ecs, Clock: f.clk, Progress: func(s string) { progress = append(progress, s) },
				Deployment: plan.DeploymentInfo{Cluster: "deploybot-staging", Service: "worker", TaskDefinition: v2, PreviousTaskDefinition: prev, StartedAt: start}})
			if err != nil {
				t.Fatalf("gate could not run: %v", err)
			}
			if rep.Passed != tt.passed || rep.RolledBack != tt.rolledBack || rep.RestoredWorkerOnline != tt.restored || rep.NothingToRollBack != tt.nothing {
				t.Fatalf("passed=%v rolledBack=%v restored=%v nothing=%v\nreason: %s\nprogress:\n%s", rep.Passed, rep.RolledBack,
					rep.RestoredWorkerOnline, rep.NothingToRollBack, rep.Reason, strings.Join(progress, "\n"))
			}
			if !strings.Contains(rep.Reason, tt.reasonHas) {
				t.Errorf("reason %q lacks %q", rep.Reason, tt.reasonHas)
			}
			if tt.stopHas != "" && (len(rep.StoppedTasks) == 0 || !strings.Contains(rep.StoppedTasks[0].StoppedReason, tt.stopHas)) {
				t.Errorf("stopped tasks %+v lack %q", rep.StoppedTasks, tt.stopHas)
			}
			if tt.maxDuration > 0 && rep.Duration > tt.maxDuration {
				t.Errorf("gate took %s, want at most %s", rep.Duration, tt.maxDuration)
			}
			writes := f.writes()[writesBefore:]
			if len(writes) != tt.updates {
				t.Errorf("the gate's AWS writes = %v, want %d UpdateService", writes, tt.updates)
			}
			if rep.RolledBack {
				out, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("deploybot-staging"), Services: []string{"worker"}})
				if err != nil || aws.ToString(out.Services[0].TaskDefinition) != prev {
					t.Errorf("service runs %s after the rollback, want %s (%v)", aws.ToString(out.Services[0].TaskDefinition), prev, err)
				}
			}
			if max := f.sim.MaxRequestsPerMinute(); max > 12 {
				t.Errorf("%d Prefect requests in one minute", max)
			}
		})
	}
}

// TestBadKeyFailsPreflightWithNoAWSWrite on the simulated account: the world's
// call log shows no write after the preflight refused the key.
func TestBadKeyFailsPreflightWithNoAWSWrite(t *testing.T) {
	f := newWorldFixture(t, testKey)
	f.w.ResetCalls()
	c, _ := New(f.sim.URL(), "pnu_expiredKey000", WithClock(f.clk))
	env := &config.Environment{Name: "staging", File: "environments/staging.yaml", Prefect: config.Prefect{APIURL: f.sim.URL(), WorkPool: testPool}}
	_, err := c.Preflight(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "wrong or expired") {
		t.Fatalf("err = %v", err)
	}
	if calls := f.w.Calls(); len(calls) != 0 {
		t.Fatalf("AWS calls: %+v", calls)
	}
}
