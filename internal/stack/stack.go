// Package stack turns a validated environment into the desired resources of
// its stack (network and compute), with their dependencies and every
// deterministic name other packages need (Names), so that no one rebuilds a
// name by hand. It does no I/O.
package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"sort"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/inventory"
	"github.com/deploybot/deploybot/internal/kinds/autoscaling"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/kinds/logs"
	"github.com/deploybot/deploybot/internal/kinds/secretsmanager"
	"github.com/deploybot/deploybot/internal/kinds/servicediscovery"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/secret"
)

// StackTagValue is the value of resource.TagStack on everything deploybot makes.
const StackTagValue = "prefect-worker"

// Addresses of the compute resources.
const (
	AddrCluster       = "ecs_cluster.main"
	AddrLogGroup      = "log_group.worker"
	AddrExecutionRole = "iam_role.execution"
	AddrTaskRole      = "iam_role.task"
	AddrSecret        = "secret.prefect_api_key"
	// AddrAuthStringSecret is the secret of a self-hosted server's auth
	// string (prefect.auth: basic), instead of AddrSecret.
	AddrAuthStringSecret = "secret.prefect_auth_string"
	AddrTaskDefinition   = "task_definition.worker"
	AddrService          = "ecs_service.worker"
	AddrNamespace        = "service_discovery_namespace.main"
	AddrDiscoveryService = "service_discovery_service.worker"
	AddrScalableTarget   = "autoscaling_target.worker"
	AddrScalingPolicy    = "autoscaling_policy.cpu"
)

// Names are the deterministic names of one environment's stack (docs/ARCHITECTURE.md
// "Naming").
type Names struct {
	Environment string
	Account     string
	Region      string

	Cluster    string // deploybot-NAME
	ClusterARN string
	Service    string // worker
	ServiceARN string
	Container  string // worker
	TaskFamily string // deploybot-NAME-worker
	LogGroup   string // /deploybot/NAME/worker
	LogPrefix  string // awslogs-stream-prefix

	RolePath         string // /deploybot/
	ExecutionRole    string // deploybot-NAME-execution
	ExecutionRoleARN string
	TaskRole         string // deploybot-NAME-task
	TaskRoleARN      string

	// Secret holds the worker's Prefect credential (its ARN has a random
	// suffix): deploybot/NAME/prefect-api-key, or with prefect.auth: basic
	// deploybot/NAME/prefect-auth-string, at SecretAddress; the worker gets
	// it as SecretEnv (PREFECT_API_KEY or PREFECT_API_AUTH_STRING).
	Secret        string
	SecretAddress string
	SecretEnv     string

	Namespace        string // Cloud Map namespace, default NAME.prefect.internal
	DiscoveryService string // worker

	SecurityGroup string // deploybot-NAME-worker
	LockParameter string // /deploybot/NAME/lock

	ScalableTarget string // service/deploybot-NAME/worker
	ScalingPolicy  string // deploybot-NAME-cpu

	// The flow runs' (flowruns.go).
	FlowRunLogGroup      string // /deploybot/NAME/flow-runs
	FlowRunLogGroupARN   string
	FlowExecutionRole    string // deploybot-NAME-flow-execution
	FlowExecutionRoleARN string
	FlowTaskRole         string // deploybot-NAME-flow-task
	FlowTaskRoleARN      string
	FlowRunSecurityGroup string // deploybot-NAME-flow-runs
	ObserverQueue        string // deploybot-NAME-ecs-events
	ObserverQueueARN     string
	ObserverDLQ          string // deploybot-NAME-ecs-events-dlq
	ObserverRule         string // deploybot-NAME-ecs-task-events
	ObserverRuleARN      string
	WorkPool             string // prefect.work_pool
	// SmokeDeployment names the health gate's smoke deployment
	// (deploybot-smoke/NAME): NAME.
	SmokeDeployment string

	// WorkerPrefix is NAME-<8 hex>: the Prefect worker-name prefix of the
	// desired task definition (docs/ARCHITECTURE.md worker identity contract).
	WorkerPrefix string
}

// NamesFor returns the names of env's stack. WorkerPrefix is only known to
// Build (it hashes the container definition).
func NamesFor(env *config.Environment) Names {
	n := env.Name
	acct, region := env.AWS.AccountID, env.AWS.Region
	ns := env.ServiceDiscovery.Namespace
	if ns == "" {
		ns = n + ".prefect.internal"
	}
	names := Names{
		Environment:      n,
		Account:          acct,
		Region:           region,
		Cluster:          "deploybot-" + n,
		Service:          "worker",
		Container:        "worker",
		TaskFamily:       "deploybot-" + n + "-worker",
		LogGroup:         "/deploybot/" + n + "/worker",
		LogPrefix:        "worker",
		RolePath:         "/deploybot/",
		ExecutionRole:    "deploybot-" + n + "-execution",
		TaskRole:         "deploybot-" + n + "-task",
		Secret:           "deploybot/" + n + "/prefect-api-key",
		SecretAddress:    AddrSecret,
		SecretEnv:        EnvAPIKey,
		Namespace:        ns,
		DiscoveryService: "worker",
		SecurityGroup:    "deploybot-" + n + "-worker",
		LockParameter:    "/deploybot/" + n + "/lock",
		ScalingPolicy:    "deploybot-" + n + "-cpu",
	}
	if env.BasicAuth() {
		names.Secret, names.SecretAddress, names.SecretEnv = AuthStringSecretName(n), AddrAuthStringSecret, EnvAuthString
	}
	names.ClusterARN = fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", region, acct, names.Cluster)
	names.ServiceARN = fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", region, acct, names.Cluster, names.Service)
	names.ExecutionRoleARN = fmt.Sprintf("arn:aws:iam::%s:role%s%s", acct, names.RolePath, names.ExecutionRole)
	names.TaskRoleARN = fmt.Sprintf("arn:aws:iam::%s:role%s%s", acct, names.RolePath, names.TaskRole)
	names.ScalableTarget = "service/" + names.Cluster + "/" + names.Service

	part := partition(region)
	names.FlowRunLogGroup = "/deploybot/" + n + "/flow-runs"
	names.FlowRunLogGroupARN = fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", part, region, acct, names.FlowRunLogGroup)
	names.FlowExecutionRole = "deploybot-" + n + "-flow-execution"
	names.FlowExecutionRoleARN = fmt.Sprintf("arn:%s:iam::%s:role%s%s", part, acct, names.RolePath, names.FlowExecutionRole)
	names.FlowTaskRole = "deploybot-" + n + "-flow-task"
	names.FlowTaskRoleARN = fmt.Sprintf("arn:%s:iam::%s:role%s%s", part, acct, names.RolePath, names.FlowTaskRole)
	names.FlowRunSecurityGroup = "deploybot-" + n + "-flow-runs"
	names.ObserverQueue = "deploybot-" + n + "-ecs-events"
	names.ObserverQueueARN = fmt.Sprintf("arn:%s:sqs:%s:%s:%s", part, region, acct, names.ObserverQueue)
	names.ObserverDLQ = names.ObserverQueue + "-dlq"
	names.ObserverRule = "deploybot-" + n + "-ecs-task-events"
	names.ObserverRuleARN = fmt.Sprintf("arn:%s:events:%s:%s:rule/%s", part, region, acct, names.ObserverRule)
	names.WorkPool = env.Prefect.WorkPool
	names.SmokeDeployment = env.Name
	return names
}

// Stack is everything the engine needs to plan, apply and destroy one
// environment: who it is, the resources the file asks for, the resources
// it could have under other settings of the file and must delete when they
// exist (Leftovers), what a reviewer should know (Notes), what refuses an
// operation before anything is done (Guards), and how to find everything
// tagged for it (Inventory). The engine sees nothing of the file itself.
type Stack struct {
	Environment string
	File        string
	Account     string
	Region      string
	Names       Names
	Resources   []resource.Resource
	// Leftovers are resources the environment's stack has under other
	// settings of its file but does not ask for now (autoscaling turned
	// off, a NAT gateway dropped, the worker security group when the file
	// names its own groups): deleted when they exist and are ours, so that
	// turning a setting off leaves nothing behind, and destroy removes them.
	Leftovers []resource.Resource
	Notes     []Note
	Guards    []Guard
	Inventory Inventory
}

// Note is what a reviewer should read in a plan that no change shows.
type Note struct {
	Text string
	// Operation limits the note to plans of one operation ("" for all).
	Operation plan.Operation
	// IfDeleted limits the note to plans that delete the resource at this
	// address.
	IfDeleted string
	// Afterwards: the note is said again after the operation succeeded,
	// where the user reads its outcome.
	Afterwards bool
}

// NotesFor returns the texts of the notes for a plan of op that deletes
// what deletes says (with afterwards, only the notes said again after it).
func (s *Stack) NotesFor(op plan.Operation, deletes func(address string) bool, afterwards bool) []string {
	var out []string
	for _, n := range s.Notes {
		if n.Operation != "" && n.Operation != op || n.IfDeleted != "" && !deletes(n.IfDeleted) || afterwards && !n.Afterwards {
			continue
		}
		out = append(out, n.Text)
	}
	return out
}

// Guard refuses an operation before anything is read or written: the
// command line, the deploy layer and the engine all ask the stack, so the
// rule lives here once.
type Guard struct {
	Operation plan.Operation
	// Err is the refusal.
	Err error
	// Note is what a plan of the operation says about it.
	Note string
}

// Refusal returns why op is refused for this stack, or nil.
func (s *Stack) Refusal(op plan.Operation) error {
	for _, g := range s.Guards {
		if g.Operation == op {
			return g.Err
		}
	}
	return nil
}

// ProtectedError: destroy of an environment whose file sets protect: true.
// It is bad input, placed at the file's protect line like any other
// (FILE:LINE: protect: …, exit 2, an annotation on that line in the
// Actions log), raised before any call.
type ProtectedError struct {
	Environment string
	*config.Errors
}

func newProtectedError(environment, file string, line int) *ProtectedError {
	return &ProtectedError{Environment: environment, Errors: &config.Errors{Problems: []config.Problem{{File: file, Line: line, Field: "protect",
		Message: fmt.Sprintf("refusing to destroy environment %q: the file sets protect: true (set it to false in a reviewed change first); nothing was done", environment)}}}}
}

// Inventory says how to find every resource tagged for the environment,
// so that one its stack no longer has (an orphan) is deleted too.
type Inventory = inventory.Query

// Resource returns the desired resource at address, or nil.
func (s *Stack) Resource(address string) *resource.Resource {
	for i := range s.Resources {
		if s.Resources[i].Address == address {
			return &s.Resources[i]
		}
	}
	return nil
}

// BuildOption changes how Build shapes the stack.
type BuildOption func(*buildOptions)

type buildOptions struct {
	forceDeleteSecret bool
	healthGated       bool
}

// HealthGated makes the health gate's verdict part of the service's state
// (ecs.ServiceSpec.Gated): deploy builds every stack it plans and applies
// with it, since its applies run the gate.
var HealthGated BuildOption = func(o *buildOptions) { o.healthGated = true }

// ForceDeleteSecret makes a destroy delete the secret without a recovery
// window (`deploybot destroy --force`; docs/research/aws-ecs.md §7).
var ForceDeleteSecret BuildOption = func(o *buildOptions) { o.forceDeleteSecret = true }

// Reference values (citations at the use).
const (
	// The worker's command (docs/ARCHITECTURE.md worker identity contract;
	// docs/research/prefect-flow-runs.md §E.3): every process gets a name of
	// its own, the revision's prefix and 8 random hex digits, written to
	// WorkerNameFile for the health check before the worker starts. Not the
	// task's hostname: Fargate hands private IPs out again, and a name an
	// earlier task used may still be ONLINE in the pool for 90 s after that
	// task stopped, which the health check would take for this task's own
	// registration.
	workerCommand = `N="$DEPLOYBOT_WORKER_PREFIX-$(python -c 'import uuid;print(uuid.uuid4().hex[:8])')"; ` +
		`printf %s "$N" > ` + WorkerNameFile + `; ` +
		`exec prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --type ecs --with-healthcheck --name "$N"`
	// WorkerNameFile holds the worker's name inside its container.
	WorkerNameFile = "/tmp/deploybot-worker-name"
	// RegisteredMarker is the file the health check writes once the
	// worker has registered; firstHeartbeatFile holds the heartbeat the
	// check saw first.
	RegisteredMarker   = "/tmp/deploybot-registered"
	firstHeartbeatFile = "/tmp/deploybot-first-heartbeat"
	// healthCheckCommand passes only once *this* task's worker has
	// registered with Prefect and stayed up (docs/research/prefect-flow-runs.md
	// §E.3, with one step more):
	//  1. the worker's own /health must answer 200 (it is up, and has polled
	//     within 300 s; §E.1). Since Prefect 3.8.1 that alone is also true
	//     of a worker that never reached Prefect, so
	//  2. it asks Prefect, with the worker's own credentials and over the
	//     task's own network, for the pool's ONLINE workers and looks for the
	//     name in WorkerNameFile (Prefect has no name filter, §E.2; the
	//     newest heartbeats come first). The auth string wins over the key,
	//     as in Prefect's client (§F);
	//  3. it passes once that row's last_heartbeat_time differs from the one
	//     the check saw first: a second heartbeat, by Prefect's own clock
	//     (no time is parsed or compared with the container's). A worker
	//     that registers and dies at once (a crash loop a few seconds after
	//     start) is then never healthy, so ECS neither stops the old worker
	//     for it nor resets the circuit breaker's count of its failures
	//     (resetOnHealthyTask); the health gate asks the same of a worker
	//     (internal/gate, "steady");
	//  4. after a pass it writes RegisteredMarker, and later checks only ask
	//     the local /health: a Prefect outage then does not make ECS replace
	//     workers that registered (they turn unhealthy only when the worker
	//     itself has not polled for 300 s, Prefect's own rule, §E.1).
	// python, not curl: the image is Python-based and may lack curl
	// (docs/research/aws-ecs.md §4.4). The script has no `$`, `"`, `\` or
	// backquote, so the shell that runs CMD-SHELL leaves it alone, and it
	// prints no credential (a failed request's traceback names the URL).
	healthCheckCommand = `python -c "import base64,json,os,sys,urllib.parse as p,urllib.request as r;` +
		`r.urlopen('http://localhost:8080/health',timeout=2);` +
		`os.path.exists('` + RegisteredMarker + `') and sys.exit(0);` +
		`n=open('` + WorkerNameFile + `').read().strip();` +
		`a=os.environ.get('PREFECT_API_AUTH_STRING');` +
		`h={'Content-Type':'application/json','Authorization':('Basic '+base64.b64encode(a.encode()).decode()) if a else ('Bearer '+os.environ['PREFECT_API_KEY'])};` +
		`u=os.environ['PREFECT_API_URL'].rstrip('/')+'/work_pools/'+p.quote(os.environ['DEPLOYBOT_WORK_POOL'],safe='')+'/workers/filter';` +
		`b=json.dumps({'workers':{'status':{'any_':['ONLINE']}},'limit':200}).encode();` +
		`w=json.load(r.urlopen(r.Request(u,b,h),timeout=5));` +
		`m=[x.get('last_heartbeat_time') for x in w if x.get('name')==n and x.get('status')=='ONLINE'];` +
		`m or sys.exit(1);` +
		`s='` + firstHeartbeatFile + `';` +
		`f=os.path.exists(s) and open(s).read();` +
		`f or open(s,'w').write(str(m[0]));` +
		`ok=bool(f) and f!=str(m[0]);` +
		`ok and open('` + RegisteredMarker + `','w').close();` +
		`sys.exit(0 if ok else 1)"`
	// The check's timing (ECS allows interval 5-300 s, timeout 2-60 s,
	// retries 1-10, startPeriod 0-300 s:
	// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html).
	// A pass inside startPeriod makes the task healthy at once; failures
	// there do not count. So:
	//  - interval 10 s: ECS sees the second heartbeat at most ~10 s after
	//    it happens, so the rolling update moves on (and the old worker
	//    stops) within seconds of the new one proving itself; before that a
	//    task asks Prefect 6 times a minute, 1 % of Prefect Cloud's lowest
	//    rate limit (docs/research/prefect-api.md §2.4);
	//  - timeout 8 s: python's start plus the two requests' 2 s and 5 s;
	//  - startPeriod 90 s and retries 3: a worker has ~110 s from its
	//    container's start to heartbeat twice. Its first sync comes at
	//    setup (~15 s) and the next a heartbeat later (30 s ± 30 %, §E.1),
	//    with room for one failed first sync; a worker that has not by then
	//    is unhealthy, ECS replaces it, and after three such tasks the
	//    deployment circuit breaker rolls the revision back
	//    (docs/research/aws-ecs.md §4.1), while the old worker keeps serving
	//    (minimum healthy 100 %).
	healthCheckInterval    = 10
	healthCheckTimeout     = 8
	healthCheckRetries     = 3
	healthCheckStartPeriod = 90
	// Secrets Manager's minimum recovery window (7..30 days).
	secretRecoveryWindowDays = 7
	// docs/research/aws-ecs.md §8: the Terraform provider's default service
	// timeout is 20m; ecspresso uses 10m, the GitHub Action 30m.
	deploymentTimeoutMinutes  = 20
	ecsTaskExecutionPolicyARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
	// Environment variables of the worker identity contract.
	EnvWorkPool     = "DEPLOYBOT_WORK_POOL"
	EnvWorkerPrefix = "DEPLOYBOT_WORKER_PREFIX"
	EnvAPIURL       = "PREFECT_API_URL"
	EnvAPIKey       = "PREFECT_API_KEY"
	// EnvAuthString is how the worker (and Prefect's client in its flow
	// runs) reads a self-hosted server's auth string
	// (docs/research/prefect-flow-runs.md §F).
	EnvAuthString = "PREFECT_API_AUTH_STRING"
	// EnvEnableCancellation lets the worker stop a cancelled run's task.
	EnvEnableCancellation = "PREFECT_WORKER_ENABLE_CANCELLATION"
	// Inline policy names.
	ExecutionSecretPolicy = "deploybot-read-prefect-api-key"
	TaskWorkerPolicy      = "deploybot-prefect-worker"
)

// Build returns the desired stack of env. apiKey may be "" (destroy, or a
// plan without the key): the secret's value is then neither compared nor
// written.
func Build(env *config.Environment, apiKey string, opts ...BuildOption) (*Stack, error) {
	if env == nil || env.Name == "" {
		return nil, fmt.Errorf("build stack: environment has no name")
	}
	var o buildOptions
	for _, f := range opts {
		f(&o)
	}
	names := NamesFor(env)
	tags := Tags(env)

	np, err := Network(env, tags)
	if err != nil {
		return nil, err
	}

	var rs []resource.Resource
	rs = append(rs, np.Resources...)

	secretARN := resource.Ref{Address: names.SecretAddress, Key: "arn"}
	version := ""
	if apiKey != "" {
		version = SecretVersionID(env.Name, apiKey)
	}
	rs = append(rs,
		credentialSecret(env, names, secret.New(apiKey), version, o, tags),
		logs.Group.New(AddrLogGroup, names.LogGroup, nil, &logs.GroupSpec{Name: names.LogGroup, RetentionDays: env.Worker.LogRetentionDays}, maps.Clone(tags)),
		ecs.Cluster.New(AddrCluster, names.Cluster, nil, &ecs.ClusterSpec{Name: names.Cluster, ContainerInsights: true}, maps.Clone(tags)),
		iam.Role.New(AddrExecutionRole, names.ExecutionRole, []string{names.SecretAddress}, executionRole(names, secretARN), maps.Clone(tags)),
		iam.Role.New(AddrTaskRole, names.TaskRole, nil, taskRole(names), maps.Clone(tags)),
	)
	rs = append(rs, flowRunResources(env, names, np, secretARN, tags)...)

	td := taskDefinition(env, names, secretARN)
	names.WorkerPrefix = td.Container.Environment[EnvWorkerPrefix]
	rs = append(rs, ecs.TaskDefinition.New(AddrTaskDefinition, names.TaskFamily,
		[]string{AddrExecutionRole, AddrTaskRole, names.SecretAddress, AddrLogGroup}, td, maps.Clone(tags)))

	var nsDeps []string
	if np.VPC.Address != "" {
		nsDeps = append(nsDeps, np.VPC.Address)
	}
	rs = append(rs,
		servicediscovery.Namespace.New(AddrNamespace, names.Namespace, nsDeps, &servicediscovery.NamespaceSpec{
			Name:        names.Namespace,
			Description: "deploybot Prefect worker " + env.Name,
			VPC:         np.VPC,
		}, maps.Clone(tags)),
		servicediscovery.Service.New(AddrDiscoveryService, names.DiscoveryService, []string{AddrNamespace}, &servicediscovery.ServiceSpec{
			Name:          names.DiscoveryService,
			Namespace:     resource.Ref{Address: AddrNamespace, Key: "id"},
			NamespaceName: names.Namespace,
			Description:   "Prefect worker tasks of " + env.Name,
			TTL:           10,
		}, maps.Clone(tags)),
	)

	desired := env.Worker.DesiredCount
	as := env.Worker.Autoscaling
	if as != nil {
		desired = min(max(desired, as.Min), as.Max)
	}
	// The pool gets its defaults before the worker starts: a worker that
	// finds no pool creates one itself with an empty set of defaults
	// (docs/research/prefect-flow-runs.md §A.1), and a flow run picked up
	// before the defaults are in place would run in the default cluster.
	rs = append(rs, workPool(env, names, np, secretARN, tags))
	if env.SmokeFlowRun() {
		rs = append(rs, smokeDeployment(env, names, np, secretARN, tags))
	}
	svcDeps := []string{AddrCluster, AddrTaskDefinition, AddrDiscoveryService, AddrExecutionRole, AddrTaskRole, AddrWorkPool}
	svcDeps = append(svcDeps, refAddresses(np.Subnets)...)
	svcDeps = append(svcDeps, refAddresses(np.SecurityGroups)...)
	svcDeps = append(svcDeps, np.ServiceDependsOn...)
	rs = append(rs, ecs.Service.New(AddrService, names.Service, dedupe(svcDeps), &ecs.ServiceSpec{
		Cluster:                  names.Cluster,
		Name:                     names.Service,
		TaskDefinition:           resource.Ref{Address: AddrTaskDefinition, Key: "arn"},
		DesiredCount:             desired,
		Autoscaling:              as != nil,
		Subnets:                  np.Subnets,
		SecurityGroups:           np.SecurityGroups,
		AssignPublicIP:           np.AssignPublicIP,
		MaximumPercent:           200, // docs/research/aws-ecs.md §4.2: overlap is harmless for a worker
		MinimumHealthy:           100,
		ServiceRegistry:          resource.Ref{Address: AddrDiscoveryService, Key: "arn"},
		TaskFamily:               names.TaskFamily,
		SecretVersion:            version,
		DeploymentTimeoutMinutes: deploymentTimeoutMinutes,
		WorkerPrefix:             names.WorkerPrefix,
		Gated:                    o.healthGated,
	}, maps.Clone(tags)))

	if as != nil {
		rs = append(rs, autoscalingResources(names, as.Min, as.Max, as.TargetCPUPercent, tags)...)
	}
	st := &Stack{Environment: env.Name, File: env.File, Account: env.AWS.AccountID, Region: env.AWS.Region,
		Names: names, Resources: rs, Leftovers: leftovers(env, names, rs, tags), Notes: notes(env, names, o),
		Inventory: Inventory{TagKey: resource.TagEnvironment, TagValue: env.Name, RolePath: names.RolePath,
			RolePrefix: "deploybot-" + env.Name + "-", Keep: []string{"parameter" + names.LockParameter}}}
	if env.Protect {
		st.Guards = append(st.Guards, ProtectGuard(env.Name, env.File, env.Lines["protect"]))
	}
	return st, nil
}

// AuthStringSecretName is the secret of environment env's auth string
// (prefect.auth: basic).
func AuthStringSecretName(env string) string { return "deploybot/" + env + "/prefect-auth-string" }

// credentialSecret is the secret holding the worker's Prefect credential.
func credentialSecret(env *config.Environment, n Names, value secret.Value, version string, o buildOptions, tags map[string]string) resource.Resource {
	what := "Prefect API key"
	if env.BasicAuth() {
		what = "Prefect server's auth string (PREFECT_API_AUTH_STRING)"
	}
	return secretsmanager.Secret.New(n.SecretAddress, n.Secret, nil, &secretsmanager.SecretSpec{
		Name:               n.Secret,
		Description:        what + " of the deploybot worker " + env.Name,
		Value:              value,
		VersionID:          version,
		ForceDelete:        o.forceDeleteSecret,
		RecoveryWindowDays: secretRecoveryWindowDays,
	}, maps.Clone(tags))
}

// ProtectGuard refuses to destroy an environment whose file sets protect:
// true at line (0: not known).
func ProtectGuard(environment, file string, line int) Guard {
	return Guard{Operation: plan.OpDestroy, Err: newProtectedError(environment, file, line),
		Note: fmt.Sprintf("%s sets protect: true: destroy will be refused", file)}
}

// autoscalingResources are the service's scalable target and CPU policy.
func autoscalingResources(n Names, minTasks, maxTasks, targetCPU int, tags map[string]string) []resource.Resource {
	if targetCPU == 0 {
		targetCPU = 70
	}
	return []resource.Resource{
		autoscaling.Target.New(AddrScalableTarget, n.ScalableTarget, []string{AddrService}, &autoscaling.TargetSpec{
			ResourceID:  n.ScalableTarget,
			MinCapacity: int32(minTasks),
			MaxCapacity: int32(maxTasks),
		}, maps.Clone(tags)),
		autoscaling.Policy.New(AddrScalingPolicy, n.ScalingPolicy, []string{AddrScalableTarget}, &autoscaling.PolicySpec{
			Name:             n.ScalingPolicy,
			ResourceID:       n.ScalableTarget,
			TargetCPUPercent: float64(targetCPU),
			// Scale out fast, scale in slowly: a worker stopped mid-poll only
			// delays flow runs, but flapping costs task starts.
			ScaleOutCooldown: 60,
			ScaleInCooldown:  300,
		}, maps.Clone(tags)),
	}
}

// leftovers are the resources env's stack can have but does not ask for:
// the autoscaling target and policy when autoscaling is off, the worker
// security group when the file names its own groups, and the network
// resources another nat or availability_zones setting would have. Without
// them a file that turns autoscaling off would leave the scaling target
// resizing the service, a NAT turned off would leave a billed NAT gateway
// and its Elastic IP behind, and destroy would leave them all.
func leftovers(env *config.Environment, n Names, have []resource.Resource, tags map[string]string) []resource.Resource {
	var out []resource.Resource
	if env.Worker.Autoscaling == nil {
		tasks := max(env.Worker.DesiredCount, 1)
		out = append(out, autoscalingResources(n, tasks, tasks, 70, tags)...)
	}
	if ownSecurityGroups(env) {
		out = append(out, workerSecurityGroup(env.Name, resource.Ref{Literal: env.Network.VPCID}, tags, nil),
			flowRunSecurityGroup(env, n, NetworkPlacement{VPC: resource.Ref{Literal: env.Network.VPCID}}, tags, nil))
	}
	if !env.SmokeFlowRun() {
		out = append(out, smokeDeployment(env, n, NetworkPlacement{}, resource.Ref{Address: n.SecretAddress, Key: "arn"}, tags))
	}
	out = append(out, OptionalNetworkResources(env, tags)...)
	seen := map[string]bool{}
	for _, r := range have {
		seen[r.Address] = true
	}
	var unique []resource.Resource
	for _, r := range out {
		if !seen[r.Address] {
			seen[r.Address] = true
			unique = append(unique, r)
		}
	}
	return unique
}

// notes are what a reviewer should know about env that no change shows.
func notes(env *config.Environment, names Names, o buildOptions) []Note {
	var out []Note
	if env.PublicIP() {
		if env.Network.Mode == "existing" {
			out = append(out, Note{Text: "the worker's tasks get a public IP (network.assign_public_ip: true); their security group allows no inbound traffic"})
		} else {
			out = append(out, Note{Text: "the worker's tasks run in the public subnets with a public IP (network.nat: none): the cheapest supported path to Prefect Cloud, with no NAT gateway to pay for; their security group allows no inbound traffic"})
		}
	}
	if !o.forceDeleteSecret {
		out = append(out, Note{Operation: plan.OpDestroy, IfDeleted: names.SecretAddress, Afterwards: true, Text: secretScheduledNote(names)})
	}
	return out
}

// secretScheduledNote says what a destroy without --force does to the
// Prefect API key's secret: Secrets Manager only schedules it for deletion
// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html),
// the name stays taken for the recovery window, and an apply restores it
// (the secret kind calls RestoreSecret, docs/research/aws-ecs.md §5.3 step 7).
func secretScheduledNote(n Names) string {
	return fmt.Sprintf("the secret %s (the Prefect API key) is only scheduled for deletion: Secrets Manager keeps it for its %d-day recovery window, "+
		"and its name stays taken until then. Applying this environment again within the window restores it; "+
		"`deploybot destroy --force` deletes it at once, without a recovery window.", n.Secret, secretRecoveryWindowDays)
}

// Tags are the tags on every resource of env: the file's, then deploybot's
// (which win).
func Tags(env *config.Environment) map[string]string {
	t := map[string]string{}
	for k, v := range env.Tags {
		t[k] = v
	}
	t[resource.TagEnvironment] = env.Name
	t[resource.TagStack] = StackTagValue
	t[resource.TagManagedBy] = resource.ManagedByValue
	return t
}

// SecretVersionID is the deterministic, UUID-shaped version id of the secret
// holding key for environment env: the ClientRequestToken of the writes, so
// DescribeSecret's AWSCURRENT version id says whether the stored key is key
// (docs/ARCHITECTURE.md). It is a one-way digest; the key cannot be recovered from it.
func SecretVersionID(env, key string) string {
	sum := sha256.Sum256([]byte("deploybot-secret-version\x00" + env + "\x00" + key))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func executionRole(n Names, secretARN resource.Ref) *iam.RoleSpec {
	r := ecsTaskRole(n, n.ExecutionRole, "deploybot: ECS pulls the worker image, writes its logs and injects the Prefect API key",
		map[string]iam.PolicyDocument{ExecutionSecretPolicy: {Statements: []iam.PolicyStatement{readSecret(secretARN)}}})
	r.ManagedPolicyARNs = []string{ecsTaskExecutionPolicyARN}
	return r
}

// taskRole is the worker's own role: what prefect-aws's ECS worker and its
// observer call with the default credential chain
// (docs/research/prefect-flow-runs.md §A.8, §B.2), each scoped as far as
// IAM allows (Service Authorization Reference, Amazon ECS:
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html).
func taskRole(n Names) *iam.RoleSpec {
	part := partition(n.Region)
	tasks := fmt.Sprintf("arn:%s:ecs:%s:%s:task/%s/*", part, n.Region, n.Account, n.Cluster)
	clusterARN := fmt.Sprintf("arn:%s:ecs:%s:%s:cluster/%s", part, n.Region, n.Account, n.Cluster)
	return ecsTaskRole(n, n.TaskRole, "deploybot: the Prefect worker launches and watches flow-run tasks on ECS",
		map[string]iam.PolicyDocument{TaskWorkerPolicy: {Statements: []iam.PolicyStatement{
			{
				// The worker registers a task definition per deployment
				// (family prefect_<pool>_<deployment id>, §A.7); these
				// actions take no resource ARN of a family not yet known.
				Sid:       "FlowRunTaskDefinitions",
				Effect:    "Allow",
				Actions:   []string{"ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"},
				Resources: []resource.Ref{{Literal: "*"}},
			},
			{
				// RunTask is authorized on the task definition, which can
				// be any; the ecs:cluster condition keeps every flow run in
				// the stack's cluster.
				Sid:       "RunFlowRunsInTheCluster",
				Effect:    "Allow",
				Actions:   []string{"ecs:RunTask"},
				Resources: []resource.Ref{{Literal: "*"}},
				Condition: map[string]map[string][]string{"ArnEquals": {"ecs:cluster": {clusterARN}}},
			},
			{
				// The tags RunTask puts on a flow run's task
				// (prefect.io/flow-run-id, ..., §A.7) are authorized as
				// ecs:TagResource for that create action
				// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
				Sid:       "TagFlowRunTasks",
				Effect:    "Allow",
				Actions:   []string{"ecs:TagResource"},
				Resources: []resource.Ref{{Literal: "*"}},
				Condition: map[string]map[string][]string{"StringEquals": {"ecs:CreateAction": {"RunTask"}}},
			},
			{
				// Cancelling a flow run stops its task; the observer
				// describes the tasks its events name: all of them tasks of
				// the cluster (arn:...:task/CLUSTER/ID).
				Sid:       "WatchFlowRunTasks",
				Effect:    "Allow",
				Actions:   []string{"ecs:DescribeTasks", "ecs:StopTask"},
				Resources: []resource.Ref{{Literal: tasks}},
			},
			{
				// The worker checks the pool's vpc_id and subnets (§A.6);
				// EC2's Describe actions take no resource.
				Sid:       "InferNetwork",
				Effect:    "Allow",
				Actions:   []string{"ec2:DescribeSubnets", "ec2:DescribeVpcs"},
				Resources: []resource.Ref{{Literal: "*"}},
			},
			{
				// The observer forwards the log tail of a flow run that
				// crashed before reaching Prefect (§B.2).
				Sid:       "ReadFlowRunLogs",
				Effect:    "Allow",
				Actions:   []string{"logs:GetLogEvents"},
				Resources: []resource.Ref{{Literal: n.FlowRunLogGroupARN}, {Literal: n.FlowRunLogGroupARN + ":log-stream:*"}},
			},
			{
				// The observer's queue (§B.2: GetQueueUrl, ReceiveMessage,
				// DeleteMessage, ChangeMessageVisibility; Prefect's own
				// policy also grants GetQueueAttributes, which it never
				// calls).
				Sid:    "ObserveFlowRunTasks",
				Effect: "Allow",
				Actions: []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
					"sqs:GetQueueUrl", "sqs:ReceiveMessage"},
				Resources: []resource.Ref{{Literal: n.ObserverQueueARN}},
			},
			{
				// The worker hands flow-run tasks their execution and task
				// roles, and only those, and only to ECS tasks.
				Sid:       "PassFlowRunRoles",
				Effect:    "Allow",
				Actions:   []string{"iam:PassRole"},
				Resources: []resource.Ref{{Literal: n.FlowExecutionRoleARN}, {Literal: n.FlowTaskRoleARN}},
				Condition: map[string]map[string][]string{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}},
			},
		}}})
}

// ecsTasksTrust lets ECS tasks of this account assume the role; the
// aws:SourceAccount condition stops a confused deputy in another account.
// ecsTaskRole is a role that ECS tasks of the stack's account assume, at the
// stack's role path, with its inline policies.
func ecsTaskRole(n Names, name, description string, inline map[string]iam.PolicyDocument) *iam.RoleSpec {
	return &iam.RoleSpec{Name: name, Path: n.RolePath, Description: description, Trust: ecsTasksTrust(n.Account), Inline: inline}
}

// readSecret lets a task's ECS agent inject exactly the one secret
// (docs/research/prefect-api.md §5.2 and docs/research/aws-ecs.md §7:
// GetSecretValue on the full ARN, random suffix included).
func readSecret(secretARN resource.Ref) iam.PolicyStatement {
	return iam.PolicyStatement{Sid: "ReadPrefectAPIKey", Effect: "Allow", Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []resource.Ref{secretARN}}
}

func ecsTasksTrust(account string) iam.PolicyDocument {
	return iam.PolicyDocument{Statements: []iam.PolicyStatement{{
		Effect:    "Allow",
		Principal: map[string][]string{"Service": {"ecs-tasks.amazonaws.com"}},
		Actions:   []string{"sts:AssumeRole"},
		Condition: map[string]map[string][]string{"StringEquals": {"aws:SourceAccount": {account}}},
	}}}
}

func taskDefinition(env *config.Environment, n Names, secretARN resource.Ref) *ecs.TaskDefinitionSpec {
	c := ecs.ContainerSpec{
		Name:        n.Container,
		Image:       env.Worker.Image,
		Command:     []string{"/bin/sh", "-c", workerCommand},
		Environment: map[string]string{},
		Secrets:     map[string]resource.Ref{n.SecretEnv: secretARN},
		LogOptions: map[string]string{
			"awslogs-group":         n.LogGroup,
			"awslogs-region":        n.Region,
			"awslogs-stream-prefix": n.LogPrefix,
		},
		HealthCheck: ecs.HealthCheck{
			Command:     []string{"CMD-SHELL", healthCheckCommand},
			Interval:    healthCheckInterval,
			Timeout:     healthCheckTimeout,
			Retries:     healthCheckRetries,
			StartPeriod: healthCheckStartPeriod,
		},
	}
	// The worker stops the ECS task of a run that is cancelled before it
	// started (CANCELLING, then StopTask): the health gate cancels a smoke
	// run that did not finish in time, and a team cancels its own runs
	// from the UI. Prefect's default is false
	// (src/prefect/settings/models/worker.py, enable_cancellation); the
	// file's worker.env may still say otherwise.
	c.Environment[EnvEnableCancellation] = "true"
	for k, v := range env.Worker.Env {
		c.Environment[k] = v
	}
	// The worker prefix is a hash of the rest of the container definition.
	c.Derived = []string{EnvWorkerPrefix}
	c.Environment[EnvWorkPool] = env.Prefect.WorkPool
	c.Environment[EnvAPIURL] = env.Prefect.APIURL
	// The ECS observer reads the stack's queue (flowruns.go). ENABLED is
	// read nowhere at prefect-aws HEAD (the observer always starts), but it
	// is what Prefect's own stack sets and what older or newer workers may
	// read (docs/research/prefect-flow-runs.md §B.1, §B.4).
	c.Environment[EnvObserverEnabled] = "true"
	c.Environment[EnvObserverQueueName] = n.ObserverQueue
	c.Environment[EnvObserverQueueRegion] = n.Region
	td := &ecs.TaskDefinitionSpec{
		Family:           n.TaskFamily,
		CPU:              env.Worker.CPU,
		Memory:           env.Worker.Memory,
		ExecutionRoleARN: resource.Ref{Literal: n.ExecutionRoleARN},
		TaskRoleARN:      resource.Ref{Literal: n.TaskRoleARN},
		Container:        c,
		Cluster:          n.Cluster,
		Service:          n.Service,
	}
	td.Container.Environment[EnvWorkerPrefix] = env.Name + "-" + containerDigest(td, n)
	return td
}

// containerDigest is the first 8 hex of the sha256 of the normalised
// container definition without DEPLOYBOT_WORKER_PREFIX (docs/ARCHITECTURE.md). Secrets
// are named by the secret's name, not its ARN, so the digest is known before
// the secret exists; task cpu/memory are included because they are part of
// what a revision runs.
func containerDigest(td *ecs.TaskDefinitionSpec, n Names) string {
	env := map[string]string{}
	for k, v := range td.Container.Environment {
		if k != EnvWorkerPrefix {
			env[k] = v
		}
	}
	secrets := map[string]string{}
	for k := range td.Container.Secrets {
		secrets[k] = n.Secret
	}
	b, _ := json.Marshal(struct {
		Family, Name, Image  string
		CPU, Memory          int
		Command              []string
		Env, Secrets, Logs   map[string]string
		HealthCheck          ecs.HealthCheck
		ExecutionRole, TRole string
	}{td.Family, td.Container.Name, td.Container.Image, td.CPU, td.Memory, td.Container.Command,
		env, secrets, td.Container.LogOptions, td.Container.HealthCheck, n.ExecutionRoleARN, n.TaskRoleARN})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:8]
}

func refAddresses(refs []resource.Ref) []string {
	var out []string
	for _, r := range refs {
		if r.Address != "" {
			out = append(out, r.Address)
		}
	}
	return out
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}
