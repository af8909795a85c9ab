package prefectsim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/simtest"
)

// The commands of docs/research/prefect-flow-runs.md §E.3: a worker that
// writes its unique name to a file, and a health check that passes once the
// API lists that name ONLINE, then remembers it in a marker file.
const (
	e3Worker      = `N="deploybot-${DEPLOYBOT_DEPLOY_ID}-$(python -c 'import uuid;print(uuid.uuid4().hex[:8])')"; printf %s "$N" > /tmp/worker-name; exec prefect worker start --pool "$DEPLOYBOT_POOL" --type ecs --with-healthcheck --name "$N"`
	e3HealthCheck = `python -c "import os,sys,json,base64,urllib.request as r,urllib.parse as p;r.urlopen('http://localhost:8080/health',timeout=3);os.path.exists('/tmp/prefect-registered') and sys.exit(0);n=open('/tmp/worker-name').read().strip();a=os.environ.get('PREFECT_API_AUTH_STRING');h={'Content-Type':'application/json','Authorization':'Basic '+base64.b64encode(a.encode()).decode() if a else 'Bearer '+os.environ['PREFECT_API_KEY']};u=os.environ['PREFECT_API_URL'].rstrip('/')+'/work_pools/'+p.quote(os.environ['DEPLOYBOT_POOL'],safe='')+'/workers/filter';w=json.load(r.urlopen(r.Request(u,json.dumps({'workers':{'status':{'any_':['ONLINE']}},'limit':200}).encode(),h),timeout=5));ok=any(x.get('name')==n for x in w);ok and open('/tmp/prefect-registered','w').close();sys.exit(0 if ok else 1)"`
	// The same check without the marker: it asks the API every time.
	apiOnlyHealthCheck = `python -c "import os,sys,json,urllib.request as r;r.urlopen('http://localhost:8080/health',timeout=3);n=open('/tmp/worker-name').read().strip();h={'Content-Type':'application/json','Authorization':'Bearer '+os.environ['PREFECT_API_KEY']};u=os.environ['PREFECT_API_URL'].rstrip('/')+'/work_pools/'+os.environ['DEPLOYBOT_POOL']+'/workers/filter';w=json.load(r.urlopen(r.Request(u,json.dumps({'workers':{'status':{'any_':['ONLINE']}}}).encode(),h),timeout=5));sys.exit(0 if any(x.get('name')==n for x in w) else 1)"`
	stockHealthCheck   = `python -c "import urllib.request;urllib.request.urlopen('http://localhost:8080/health', timeout=5)" || exit 1`
)

const ecrImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/prefect-worker:3.8.4"

// e3Container turns the stack's worker container into §E.3's, with check
// as its health-check command.
func e3Container(pool, deployID, check string) func(*ecstypes.ContainerDefinition) {
	return func(c *ecstypes.ContainerDefinition) {
		c.Command = []string{"sh", "-c", e3Worker}
		c.Environment = append(c.Environment,
			ecstypes.KeyValuePair{Name: aws.String("DEPLOYBOT_POOL"), Value: aws.String(pool)},
			ecstypes.KeyValuePair{Name: aws.String("DEPLOYBOT_DEPLOY_ID"), Value: aws.String(deployID)})
		c.HealthCheck = healthCheck(check)
	}
}

func healthCheck(cmd string) *ecstypes.HealthCheck {
	return &ecstypes.HealthCheck{Command: []string{"CMD-SHELL", cmd}, Interval: aws.Int32(30), Timeout: aws.Int32(5), Retries: aws.Int32(3), StartPeriod: aws.Int32(60)}
}

func stockContainer(c *ecstypes.ContainerDefinition) { c.HealthCheck = healthCheck(stockHealthCheck) }

type probeWorld struct {
	w     *simtest.World
	stack *simtest.WorkerStack
}

func newProbeWorld(t *testing.T, opts ...simtest.StackOption) *probeWorld {
	t.Helper()
	w := simtest.New(t, simtest.WithPool("ecs-pool"))
	return &probeWorld{w: w, stack: w.NewWorkerStack(t, "staging", "ecs-pool", "", opts...)}
}

func (x *probeWorld) tasks(t *testing.T, status ecstypes.DesiredStatus) []ecstypes.Task {
	t.Helper()
	ctx := context.Background()
	list, err := x.stack.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(x.stack.Cluster), DesiredStatus: status})
	if err != nil || len(list.TaskArns) == 0 {
		return nil
	}
	out, err := x.stack.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(x.stack.Cluster), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}

func (x *probeWorld) online() []string { return x.w.Prefect.OnlineWorkers("ecs-pool") }

// TestWorkerHealthFollowsWhatTheWorkerCanDo: whether ECS finds a worker
// healthy depends on what its health-check command asks and on what the
// worker inside can reach (§E.1, §E.3): the stock /health passes for a
// worker that never reached Prefect; asking the API for the worker's own
// name does not.
func TestWorkerHealthFollowsWhatTheWorkerCanDo(t *testing.T) {
	t.Parallel()
	// Private subnets whose registry is ECR through its endpoints: the image
	// pulls, the secret is fetched, and Prefect Cloud is out of reach.
	noPrefect := simtest.PrivateSubnets("ecr.api", "ecr.dkr", "s3", "secretsmanager")
	tests := []struct {
		name       string
		stack      []simtest.StackOption
		image      string
		edit       func(*ecstypes.ContainerDefinition)
		after      time.Duration
		wantHealth ecstypes.HealthStatus
		wantOnline bool
		wantStop   string // the first stopped task's reason
		wantExit   int32
	}{
		{name: "reaches Prefect, stock /health", edit: stockContainer, after: 2 * time.Minute, wantHealth: "HEALTHY", wantOnline: true},
		{name: "reaches Prefect, asks for its name", edit: e3Container("ecs-pool", "d1", e3HealthCheck), after: 2 * time.Minute, wantHealth: "HEALTHY", wantOnline: true},
		{name: "registry but no Prefect, stock /health: healthy anyway", stack: []simtest.StackOption{noPrefect}, image: ecrImage,
			edit: stockContainer, after: 3 * time.Minute, wantHealth: "HEALTHY"},
		{name: "registry but no Prefect, asks for its name: replaced", stack: []simtest.StackOption{noPrefect}, image: ecrImage,
			edit: e3Container("ecs-pool", "d1", e3HealthCheck), after: 3 * time.Minute, wantStop: "Task failed container health checks"},
		{name: "never reaches Prefect: gives up after 12 failed syncs", stack: []simtest.StackOption{noPrefect}, image: ecrImage,
			edit: stockContainer, after: 7 * time.Minute, wantStop: "Essential container in task exited", wantExit: 1},
		{name: "wrong key: exits at setup", edit: func(c *ecstypes.ContainerDefinition) {
			stockContainer(c)
			c.Secrets = nil
			c.Environment = append(c.Environment, ecstypes.KeyValuePair{Name: aws.String("PREFECT_API_KEY"), Value: aws.String("pnu_notakey")})
		}, after: 90 * time.Second, wantStop: "Essential container in task exited", wantExit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newProbeWorld(t, tt.stack...)
			image := tt.image
			if image == "" {
				image = "prefecthq/prefect-aws:3.8.4"
			}
			x.stack.CreateService(t, x.stack.RegisterWorker(t, image, "staging-11111111", tt.edit), 1)
			x.w.Advance(tt.after)
			if tt.wantStop != "" {
				stopped := x.tasks(t, ecstypes.DesiredStatusStopped)
				if len(stopped) == 0 || aws.ToString(stopped[0].StoppedReason) != tt.wantStop {
					t.Fatalf("stopped %v, want %q", reasons(stopped), tt.wantStop)
				}
				if tt.wantExit != 0 && aws.ToInt32(stopped[0].Containers[0].ExitCode) != tt.wantExit {
					t.Fatalf("exit code %v, want %d", stopped[0].Containers[0].ExitCode, tt.wantExit)
				}
				return
			}
			running := x.tasks(t, ecstypes.DesiredStatusRunning)
			if len(running) != 1 || running[0].HealthStatus != tt.wantHealth {
				t.Fatalf("running %d tasks, health %v, want %s", len(running), healths(running), tt.wantHealth)
			}
			if got := len(x.online()) == 1; got != tt.wantOnline {
				t.Fatalf("ONLINE workers %v, want one: %v", x.online(), tt.wantOnline)
			}
		})
	}
}

func reasons(ts []ecstypes.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, aws.ToString(t.StoppedReason))
	}
	return out
}

func healths(ts []ecstypes.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, string(t.HealthStatus))
	}
	return out
}

// TestPrefectOutageDoesNotKillRegisteredWorkers (issue 10, Done means): with
// §E.3's marker, a worker that registered once defers to its local /health,
// so a four-minute Prefect outage leaves it running; a check that asks the
// API every time makes ECS replace it during the same outage.
func TestPrefectOutageDoesNotKillRegisteredWorkers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		check    string
		replaced bool
	}{
		{"marker", e3HealthCheck, false},
		{"API every time", apiOnlyHealthCheck, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newProbeWorld(t)
			x.stack.CreateService(t, x.stack.RegisterWorker(t, "prefecthq/prefect-aws:3.8.4", "staging-1", e3Container("ecs-pool", "d1", tt.check)), 1)
			x.w.Advance(3 * time.Minute)
			if running := x.tasks(t, ecstypes.DesiredStatusRunning); len(running) != 1 || running[0].HealthStatus != "HEALTHY" {
				t.Fatalf("before the outage: %v", healths(running))
			}
			x.w.Prefect.SetAvailable(false)
			x.w.Advance(4 * time.Minute)
			x.w.Prefect.SetAvailable(true)
			stopped := x.tasks(t, ecstypes.DesiredStatusStopped)
			if (len(stopped) > 0) != tt.replaced {
				t.Fatalf("stopped during the outage: %v, want replaced=%v", reasons(stopped), tt.replaced)
			}
			if tt.replaced && aws.ToString(stopped[0].StoppedReason) != "Task failed container health checks" {
				t.Fatalf("stopped because %q", aws.ToString(stopped[0].StoppedReason))
			}
		})
	}
}

// TestRollingDeployKeepsAWorkerOnline: with §E.3's check and the service's
// 100% minimum healthy, a revision whose workers never register never
// counts as healthy: the old worker stays ONLINE throughout, and the
// circuit breaker rolls the revision back by itself.
func TestRollingDeployKeepsAWorkerOnline(t *testing.T) {
	t.Parallel()
	x := newProbeWorld(t)
	x.w.AWS.SetImageBehavior("prefecthq/prefect-aws:silent", awssim.ImageBehavior{NoHeartbeat: true})
	good := x.stack.RegisterWorker(t, "prefecthq/prefect-aws:3.8.4", "staging-1", e3Container("ecs-pool", "d1", e3HealthCheck))
	x.stack.CreateService(t, good, 1)
	x.w.Advance(3 * time.Minute)
	bad := x.stack.RegisterWorker(t, "prefecthq/prefect-aws:silent", "staging-2", e3Container("ecs-pool", "d2", e3HealthCheck))
	x.stack.UpdateService(t, bad)
	for i := 0; i < 20*6; i++ {
		x.w.Advance(10 * time.Second)
		if len(x.online()) == 0 {
			t.Fatalf("%ds into the deploy the pool has no ONLINE worker", (i+1)*10)
		}
	}
	out, err := x.stack.ECS.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(x.stack.Cluster), Services: []string{"worker"}})
	if err != nil {
		t.Fatal(err)
	}
	svc := out.Services[0]
	if aws.ToString(svc.TaskDefinition) != good || !strings.Contains(eventText(svc), "rolling back") {
		t.Fatalf("service runs %s; events:\n%s", aws.ToString(svc.TaskDefinition), eventText(svc))
	}
}

func eventText(s ecstypes.Service) string {
	var lines []string
	for _, e := range s.Events {
		lines = append(lines, aws.ToString(e.Message))
	}
	return strings.Join(lines, "\n")
}
