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
	"sort"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/resource"
)

// StackTagValue is the value of resource.TagStack on everything deploybot makes.
const StackTagValue = "prefect-worker"

// Addresses of the compute resources.
const (
	AddrCluster          = "ecs_cluster.main"
	AddrLogGroup         = "log_group.worker"
	AddrExecutionRole    = "iam_role.execution"
	AddrTaskRole         = "iam_role.task"
	AddrSecret           = "secret.prefect_api_key"
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

	Secret string // deploybot/NAME/prefect-api-key (its ARN has a random suffix)

	Namespace        string // Cloud Map namespace, default NAME.prefect.internal
	DiscoveryService string // worker

	SecurityGroup string // deploybot-NAME-worker
	LockParameter string // /deploybot/NAME/lock

	ScalableTarget string // service/deploybot-NAME/worker
	ScalingPolicy  string // deploybot-NAME-cpu

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
		Namespace:        ns,
		DiscoveryService: "worker",
		SecurityGroup:    "deploybot-" + n + "-worker",
		LockParameter:    "/deploybot/" + n + "/lock",
		ScalingPolicy:    "deploybot-" + n + "-cpu",
	}
	names.ClusterARN = fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", region, acct, names.Cluster)
	names.ServiceARN = fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", region, acct, names.Cluster, names.Service)
	names.ExecutionRoleARN = fmt.Sprintf("arn:aws:iam::%s:role%s%s", acct, names.RolePath, names.ExecutionRole)
	names.TaskRoleARN = fmt.Sprintf("arn:aws:iam::%s:role%s%s", acct, names.RolePath, names.TaskRole)
	names.ScalableTarget = "service/" + names.Cluster + "/" + names.Service
	return names
}

// Stack is the desired state of one environment.
type Stack struct {
	Env       *config.Environment
	Resources []resource.Resource
	Names     Names
}

// Resource returns the resource at address, or nil.
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
}

// ForceDeleteSecret makes a destroy delete the secret without a recovery
// window (`deploybot destroy --force`; docs/research/aws-ecs.md §7).
var ForceDeleteSecret BuildOption = func(o *buildOptions) { o.forceDeleteSecret = true }

// Reference values (citations at the use).
const (
	// docs/research/aws-ecs.md §4.4 and docs/research/prefect-api.md §4.4: Prefect's worker
	// webserver on 8080, python (no curl in the image).
	healthCheckCommand = `python -c "import urllib.request;urllib.request.urlopen('http://localhost:8080/health', timeout=5)" || exit 1`
	// The worker's command: docs/ARCHITECTURE.md worker identity contract.
	workerCommand = `exec prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --type ecs --with-healthcheck --name "$DEPLOYBOT_WORKER_PREFIX-$(hostname)"`
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
	add := func(addr, name string, deps []string, spec any) {
		kind := addr[:indexDot(addr)]
		rs = append(rs, resource.Resource{Address: addr, Kind: kind, Name: name, DependsOn: deps, Spec: spec, Tags: copyTags(tags)})
	}
	rs = append(rs, np.Resources...)

	secretARN := Ref{Address: AddrSecret, Key: "arn"}
	version := ""
	if apiKey != "" {
		version = SecretVersionID(env.Name, apiKey)
	}
	add(AddrSecret, names.Secret, nil, &SecretSpec{
		Name:               names.Secret,
		Description:        "Prefect API key of the deploybot worker " + env.Name,
		Value:              apiKey,
		VersionID:          version,
		ForceDelete:        o.forceDeleteSecret,
		RecoveryWindowDays: secretRecoveryWindowDays,
	})
	add(AddrLogGroup, names.LogGroup, nil, &LogGroupSpec{Name: names.LogGroup, RetentionDays: env.Worker.LogRetentionDays})
	add(AddrCluster, names.Cluster, nil, &ClusterSpec{Name: names.Cluster, ContainerInsights: true})
	add(AddrExecutionRole, names.ExecutionRole, []string{AddrSecret}, executionRole(names, secretARN))
	add(AddrTaskRole, names.TaskRole, nil, taskRole(names))

	td := taskDefinition(env, names, secretARN)
	names.WorkerPrefix = td.Container.Environment[EnvWorkerPrefix]
	add(AddrTaskDefinition, names.TaskFamily, []string{AddrExecutionRole, AddrTaskRole, AddrSecret, AddrLogGroup}, td)

	var nsDeps []string
	if np.VPC.Address != "" {
		nsDeps = append(nsDeps, np.VPC.Address)
	}
	add(AddrNamespace, names.Namespace, nsDeps, &NamespaceSpec{
		Name:        names.Namespace,
		Description: "deploybot Prefect worker " + env.Name,
		VPC:         np.VPC,
	})
	add(AddrDiscoveryService, names.DiscoveryService, []string{AddrNamespace}, &DiscoveryServiceSpec{
		Name:          names.DiscoveryService,
		Namespace:     Ref{Address: AddrNamespace, Key: "id"},
		NamespaceName: names.Namespace,
		Description:   "Prefect worker tasks of " + env.Name,
		TTL:           10,
	})

	desired := env.Worker.DesiredCount
	as := env.Worker.Autoscaling
	if as != nil {
		desired = min(max(desired, as.Min), as.Max)
	}
	svcDeps := []string{AddrCluster, AddrTaskDefinition, AddrDiscoveryService, AddrExecutionRole, AddrTaskRole}
	svcDeps = append(svcDeps, refAddresses(np.Subnets)...)
	svcDeps = append(svcDeps, refAddresses(np.SecurityGroups)...)
	svcDeps = append(svcDeps, np.ServiceDependsOn...)
	add(AddrService, names.Service, dedupe(svcDeps), &ServiceSpec{
		Cluster:                  names.Cluster,
		Name:                     names.Service,
		TaskDefinition:           Ref{Address: AddrTaskDefinition, Key: "arn"},
		DesiredCount:             desired,
		Autoscaling:              as != nil,
		Subnets:                  np.Subnets,
		SecurityGroups:           np.SecurityGroups,
		AssignPublicIP:           np.AssignPublicIP,
		MaximumPercent:           200, // docs/research/aws-ecs.md §4.2: overlap is harmless for a worker
		MinimumHealthy:           100,
		ServiceRegistry:          Ref{Address: AddrDiscoveryService, Key: "arn"},
		TaskFamily:               names.TaskFamily,
		SecretVersion:            version,
		DeploymentTimeoutMinutes: deploymentTimeoutMinutes,
	})

	if as != nil {
		add(AddrScalableTarget, names.ScalableTarget, []string{AddrService}, &ScalableTargetSpec{
			ResourceID:  names.ScalableTarget,
			MinCapacity: int32(as.Min),
			MaxCapacity: int32(as.Max),
		})
		target := as.TargetCPUPercent
		if target == 0 {
			target = 70
		}
		add(AddrScalingPolicy, names.ScalingPolicy, []string{AddrScalableTarget}, &ScalingPolicySpec{
			Name:             names.ScalingPolicy,
			ResourceID:       names.ScalableTarget,
			TargetCPUPercent: float64(target),
			// Scale out fast, scale in slowly: a worker stopped mid-poll only
			// delays flow runs, but flapping costs task starts.
			ScaleOutCooldown: 60,
			ScaleInCooldown:  300,
		})
	}
	return &Stack{Env: env, Resources: rs, Names: names}, nil
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

func executionRole(n Names, secretARN Ref) *RoleSpec {
	return &RoleSpec{
		Name:              n.ExecutionRole,
		Path:              n.RolePath,
		Description:       "deploybot: ECS pulls the worker image, writes its logs and injects the Prefect API key",
		Trust:             ecsTasksTrust(n.Account),
		ManagedPolicyARNs: []string{ecsTaskExecutionPolicyARN},
		// docs/research/prefect-api.md §5.2 and docs/research/aws-ecs.md §7: GetSecretValue on
		// exactly the one secret ARN (the full ARN, random suffix included).
		Inline: map[string]PolicyDocument{ExecutionSecretPolicy: {Statements: []PolicyStatement{{
			Sid:       "ReadPrefectAPIKey",
			Effect:    "Allow",
			Actions:   []string{"secretsmanager:GetSecretValue"},
			Resources: []Ref{secretARN},
		}}}},
	}
}

func taskRole(n Names) *RoleSpec {
	// docs/research/prefect-api.md §5.1: the permissions Prefect's ECS worker
	// uses to launch and watch flow-run tasks. iam:PassRole is scoped to the
	// roles the worker hands to flow-run tasks — the work pool's execution
	// and task roles, which are this stack's roles — and only to ECS tasks
	// (docs/research/aws-ecs.md §7 [inference]).
	return &RoleSpec{
		Name:        n.TaskRole,
		Path:        n.RolePath,
		Description: "deploybot: the Prefect worker launches flow-run tasks on ECS",
		Trust:       ecsTasksTrust(n.Account),
		Inline: map[string]PolicyDocument{TaskWorkerPolicy: {Statements: []PolicyStatement{
			{
				Sid:    "RunFlowRunTasks",
				Effect: "Allow",
				Actions: []string{
					"ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:DescribeTasks",
					"ecs:RegisterTaskDefinition", "ecs:RunTask", "ecs:StopTask", "ecs:TagResource",
				},
				Resources: []Ref{{Literal: "*"}},
			},
			{
				Sid:       "InferNetwork",
				Effect:    "Allow",
				Actions:   []string{"ec2:DescribeSubnets", "ec2:DescribeVpcs"},
				Resources: []Ref{{Literal: "*"}},
			},
			{
				Sid:       "FlowRunLogs",
				Effect:    "Allow",
				Actions:   []string{"logs:GetLogEvents", "logs:PutLogEvents"},
				Resources: []Ref{{Literal: "*"}},
			},
			{
				Sid:       "PassFlowRunRoles",
				Effect:    "Allow",
				Actions:   []string{"iam:PassRole"},
				Resources: []Ref{{Literal: n.ExecutionRoleARN}, {Literal: n.TaskRoleARN}},
				Condition: map[string]map[string][]string{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}},
			},
		}}},
	}
}

// ecsTasksTrust lets ECS tasks of this account assume the role; the
// aws:SourceAccount condition stops a confused deputy in another account.
func ecsTasksTrust(account string) PolicyDocument {
	return PolicyDocument{Statements: []PolicyStatement{{
		Effect:    "Allow",
		Principal: map[string][]string{"Service": {"ecs-tasks.amazonaws.com"}},
		Actions:   []string{"sts:AssumeRole"},
		Condition: map[string]map[string][]string{"StringEquals": {"aws:SourceAccount": {account}}},
	}}}
}

func taskDefinition(env *config.Environment, n Names, secretARN Ref) *TaskDefinitionSpec {
	c := ContainerSpec{
		Name:        n.Container,
		Image:       env.Worker.Image,
		Command:     []string{"/bin/sh", "-c", workerCommand},
		Environment: map[string]string{},
		Secrets:     map[string]Ref{EnvAPIKey: secretARN},
		LogOptions: map[string]string{
			"awslogs-group":         n.LogGroup,
			"awslogs-region":        n.Region,
			"awslogs-stream-prefix": n.LogPrefix,
		},
		HealthCheck: HealthCheck{
			Command:     []string{"CMD-SHELL", healthCheckCommand},
			Interval:    30,
			Timeout:     5,
			Retries:     3,
			StartPeriod: 60,
		},
	}
	for k, v := range env.Worker.Env {
		c.Environment[k] = v
	}
	c.Environment[EnvWorkPool] = env.Prefect.WorkPool
	c.Environment[EnvAPIURL] = env.Prefect.APIURL
	td := &TaskDefinitionSpec{
		Family:           n.TaskFamily,
		CPU:              env.Worker.CPU,
		Memory:           env.Worker.Memory,
		ExecutionRoleARN: Ref{Literal: n.ExecutionRoleARN},
		TaskRoleARN:      Ref{Literal: n.TaskRoleARN},
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
func containerDigest(td *TaskDefinitionSpec, n Names) string {
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
		HealthCheck          HealthCheck
		ExecutionRole, TRole string
	}{td.Family, td.Container.Name, td.Container.Image, td.CPU, td.Memory, td.Container.Command,
		env, secrets, td.Container.LogOptions, td.Container.HealthCheck, n.ExecutionRoleARN, n.TaskRoleARN})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:8]
}

func refAddresses(refs []Ref) []string {
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

func copyTags(t map[string]string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

func indexDot(s string) int {
	for i := range len(s) {
		if s[i] == '.' {
			return i
		}
	}
	return len(s)
}
