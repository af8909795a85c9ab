package stack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/kinds/secretsmanager"
	"github.com/deploybot/deploybot/internal/resource"
)

var testKey = fakekey.Prefect("Stack")

func existingEnv() *config.Environment {
	public := true
	return &config.Environment{
		Name: "staging",
		AWS:  config.AWS{AccountID: "123456789012", Region: "us-east-1"},
		Prefect: config.Prefect{
			APIURL:   "https://api.prefect.cloud/api/accounts/a/workspaces/w",
			WorkPool: "staging-pool",
		},
		Worker: config.Worker{Image: "prefecthq/prefect-aws:latest", CPU: 512, Memory: 1024, DesiredCount: 1,
			Env: map[string]string{"PREFECT_LOGGING_LEVEL": "INFO"}, LogRetentionDays: 30},
		Network: config.Network{Mode: "existing", VPCID: "vpc-1", SubnetIDs: []string{"subnet-a", "subnet-b"}, AssignPublicIP: &public},
		Tags:    map[string]string{"team": "data", resource.TagEnvironment: "spoofed"},
	}
}

// built is the stack of existingEnv.
func built(t *testing.T) *Stack {
	t.Helper()
	st, err := Build(existingEnv(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBuildAddressesAndDependencies(t *testing.T) {
	// Every stack's resources; autoscaling adds its target and policy.
	always := map[string][]string{
		"security_group.worker":  nil,
		AddrSecret:               nil,
		AddrLogGroup:             nil,
		AddrCluster:              nil,
		AddrExecutionRole:        {AddrSecret},
		AddrTaskRole:             nil,
		AddrTaskDefinition:       {AddrExecutionRole, AddrTaskRole, AddrSecret, AddrLogGroup},
		AddrNamespace:            nil,
		AddrDiscoveryService:     {AddrNamespace},
		AddrService:              {AddrCluster, AddrDiscoveryService, AddrExecutionRole, AddrTaskRole, AddrTaskDefinition, AddrWorkPool, "security_group.worker"},
		AddrFlowRunLogGroup:      nil,
		AddrFlowExecutionRole:    {AddrSecret},
		AddrFlowTaskRole:         nil,
		AddrFlowRunSecurityGroup: nil,
		AddrObserverDLQ:          nil,
		AddrObserverQueue:        {AddrObserverDLQ},
		AddrObserverRule:         {AddrObserverQueue},
		AddrWorkPool:             {AddrSecret, AddrFlowExecutionRole, AddrFlowTaskRole, AddrFlowRunLogGroup, AddrFlowRunSecurityGroup},
		AddrSmokeDeployment:      {AddrWorkPool, AddrSecret, AddrFlowExecutionRole, AddrFlowTaskRole, AddrFlowRunLogGroup, AddrFlowRunSecurityGroup},
	}
	for _, tc := range []struct {
		name        string
		autoscaling *config.Autoscaling
		more        map[string][]string
	}{
		{name: "no autoscaling"},
		{name: "autoscaling", autoscaling: &config.Autoscaling{Min: 1, Max: 3, TargetCPUPercent: 60}, more: map[string][]string{
			AddrScalableTarget: {AddrService},
			AddrScalingPolicy:  {AddrScalableTarget},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := existingEnv()
			env.Worker.Autoscaling = tc.autoscaling
			st, err := Build(env, testKey)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, r := range st.Resources {
				if _, dup := got[r.Address]; dup {
					t.Errorf("%s twice", r.Address)
				}
				deps := append([]string(nil), r.DependsOn...)
				sort.Strings(deps)
				got[r.Address] = deps
				if string(r.Kind)+"."+r.Address[len(r.Kind)+1:] != r.Address {
					t.Errorf("%s: kind %q does not prefix the address", r.Address, r.Kind)
				}
				if r.Tags[resource.TagEnvironment] != "staging" || r.Tags[resource.TagStack] != StackTagValue ||
					r.Tags[resource.TagManagedBy] != resource.ManagedByValue || r.Tags["team"] != "data" {
					t.Errorf("%s: tags %v", r.Address, r.Tags)
				}
			}
			want := map[string][]string{}
			for k, v := range always {
				want[k] = v
			}
			for k, v := range tc.more {
				want[k] = v
			}
			for k, v := range want {
				v = append([]string(nil), v...)
				sort.Strings(v)
				want[k] = v
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("addresses and dependencies (-want +got):\n%s", d)
			}
		})
	}
}

func TestNames(t *testing.T) {
	st := built(t)
	n := st.Names
	n.WorkerPrefix = regexp.MustCompile(`^staging-[0-9a-f]{8}$`).ReplaceAllString(n.WorkerPrefix, "staging-HASH")
	want := Names{
		Environment: "staging", Account: "123456789012", Region: "us-east-1",
		Cluster: "deploybot-staging", ClusterARN: "arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-staging",
		Service: "worker", ServiceARN: "arn:aws:ecs:us-east-1:123456789012:service/deploybot-staging/worker",
		Container: "worker", TaskFamily: "deploybot-staging-worker",
		LogGroup: "/deploybot/staging/worker", LogPrefix: "worker",
		RolePath: "/deploybot/", ExecutionRole: "deploybot-staging-execution",
		ExecutionRoleARN: "arn:aws:iam::123456789012:role/deploybot/deploybot-staging-execution",
		TaskRole:         "deploybot-staging-task", TaskRoleARN: "arn:aws:iam::123456789012:role/deploybot/deploybot-staging-task",
		Secret: "deploybot/staging/prefect-api-key", SecretAddress: AddrSecret, SecretEnv: "PREFECT_API_KEY",
		Namespace: "staging.prefect.internal", DiscoveryService: "worker",
		SecurityGroup: "deploybot-staging-worker", LockParameter: "/deploybot/staging/lock",
		ScalableTarget: "service/deploybot-staging/worker", ScalingPolicy: "deploybot-staging-cpu",
		FlowRunLogGroup: "/deploybot/staging/flow-runs", FlowRunLogGroupARN: "arn:aws:logs:us-east-1:123456789012:log-group:/deploybot/staging/flow-runs",
		FlowExecutionRole: "deploybot-staging-flow-execution", FlowExecutionRoleARN: "arn:aws:iam::123456789012:role/deploybot/deploybot-staging-flow-execution",
		FlowTaskRole: "deploybot-staging-flow-task", FlowTaskRoleARN: "arn:aws:iam::123456789012:role/deploybot/deploybot-staging-flow-task",
		FlowRunSecurityGroup: "deploybot-staging-flow-runs",
		ObserverQueue:        "deploybot-staging-ecs-events", ObserverQueueARN: "arn:aws:sqs:us-east-1:123456789012:deploybot-staging-ecs-events",
		ObserverDLQ:  "deploybot-staging-ecs-events-dlq",
		ObserverRule: "deploybot-staging-ecs-task-events", ObserverRuleARN: "arn:aws:events:us-east-1:123456789012:rule/deploybot-staging-ecs-task-events",
		WorkPool: "staging-pool", SmokeDeployment: "staging",
		WorkerPrefix: "staging-HASH",
	}
	if d := cmp.Diff(want, n); d != "" {
		t.Errorf("names (-want +got):\n%s", d)
	}
}

func TestWorkerIdentityContract(t *testing.T) {
	st := built(t)
	td := st.Resource(AddrTaskDefinition).Spec.(*ecs.TaskDefinitionSpec)
	c := td.Container
	wantCmd := []string{"/bin/sh", "-c", `N="$DEPLOYBOT_WORKER_PREFIX-$(python -c 'import uuid;print(uuid.uuid4().hex[:8])')"; ` +
		`printf %s "$N" > /tmp/deploybot-worker-name; ` +
		`exec prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --type ecs --with-healthcheck --name "$N"`}
	if d := cmp.Diff(wantCmd, c.Command); d != "" {
		t.Errorf("command (-want +got):\n%s", d)
	}
	wantEnv := map[string]string{
		"DEPLOYBOT_WORK_POOL":     "staging-pool",
		"DEPLOYBOT_WORKER_PREFIX": st.Names.WorkerPrefix,
		"PREFECT_API_URL":         "https://api.prefect.cloud/api/accounts/a/workspaces/w",
		"PREFECT_LOGGING_LEVEL":   "INFO",
		// The ECS observer reads the stack's queue (docs/research/prefect-flow-runs.md §B.1).
		"PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_ENABLED":          "true",
		"PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME":   "deploybot-staging-ecs-events",
		"PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_REGION": "us-east-1",
		// the worker stops the task of a run cancelled before it started
		"PREFECT_WORKER_ENABLE_CANCELLATION": "true",
	}
	if d := cmp.Diff(wantEnv, c.Environment); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	if got := c.Secrets[EnvAPIKey]; got != (resource.Ref{Address: AddrSecret, Key: "arn"}) {
		t.Errorf("PREFECT_API_KEY valueFrom = %+v", got)
	}
	if _, ok := c.LogOptions["awslogs-create-group"]; ok {
		t.Error("awslogs-create-group must not be set (docs/research/aws-ecs.md §4.4)")
	}
	// docs/research/prefect-flow-runs.md §E.3: the local /health, then this
	// worker's own name ONLINE in the pool until a marker says it was.
	hc := c.HealthCheck
	if hc.Interval != 10 || hc.Timeout != 8 || hc.Retries != 3 || hc.StartPeriod != 90 || hc.Command[0] != "CMD-SHELL" {
		t.Errorf("health check = %+v", hc)
	}
	for _, part := range []string{"r.urlopen('http://localhost:8080/health',timeout=2)", "os.path.exists('/tmp/deploybot-registered') and sys.exit(0)",
		"open('/tmp/deploybot-worker-name').read()", "/workers/filter", "p.quote(os.environ['DEPLOYBOT_WORK_POOL'],safe='')",
		"PREFECT_API_AUTH_STRING", "last_heartbeat_time", "'Bearer '+os.environ['PREFECT_API_KEY']", "open('/tmp/deploybot-registered','w')"} {
		if !strings.Contains(hc.Command[1], part) {
			t.Errorf("health check lacks %q:\n%s", part, hc.Command[1])
		}
	}
	// CMD-SHELL runs it with /bin/sh -c: nothing in it may be expanded.
	if strings.ContainsAny(strings.TrimSuffix(strings.TrimPrefix(hc.Command[1], `python -c "`), `"`), "$`\\\"") {
		t.Errorf("the health check's script has characters the shell would expand: %s", hc.Command[1])
	}
}

func TestWorkerPrefixFollowsTheContainer(t *testing.T) {
	base, _ := Build(existingEnv(), testKey)
	for _, tc := range []struct {
		name    string
		mutate  func(*config.Environment)
		key     string
		changes bool
	}{
		{"same file", func(*config.Environment) {}, testKey, false},
		{"another key", func(*config.Environment) {}, "pnu_other", false},
		{"desired count", func(e *config.Environment) { e.Worker.DesiredCount = 3 }, testKey, false},
		{"image", func(e *config.Environment) { e.Worker.Image = "prefecthq/prefect-aws:0.7.11" }, testKey, true},
		{"cpu", func(e *config.Environment) { e.Worker.CPU = 1024; e.Worker.Memory = 2048 }, testKey, true},
		{"env", func(e *config.Environment) { e.Worker.Env["X"] = "1" }, testKey, true},
		{"pool", func(e *config.Environment) { e.Prefect.WorkPool = "other" }, testKey, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := existingEnv()
			tc.mutate(env)
			st, err := Build(env, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if changed := st.Names.WorkerPrefix != base.Names.WorkerPrefix; changed != tc.changes {
				t.Errorf("prefix %s → %s: changed = %t, want %t", base.Names.WorkerPrefix, st.Names.WorkerPrefix, changed, tc.changes)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	st := built(t)
	spec := st.Resource(AddrSecret).Spec.(*secretsmanager.SecretSpec)
	if spec.Value.Reveal() != testKey {
		t.Fatal("the secret spec must carry the key for the writes")
	}
	js, err := json.Marshal(st.Resources)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprintf("%v", spec), fmt.Sprintf("%+v", spec), fmt.Sprintf("%#v", spec), fmt.Sprintf("%v", spec.Value), fmt.Sprintf("%s", spec.Value),
		fmt.Sprintf("%v", *spec), fmt.Sprintf("%+v", st.Resources), fmt.Sprintf("%#v", *spec), fmt.Sprintf("%q", spec.Value),
		fmt.Sprintf("%#v", st.Resources), fmt.Sprintf("%v", st),
		string(js),
	} {
		if strings.Contains(out, testKey) || strings.Contains(out, "TESTKEY") {
			t.Errorf("key printed: %s", out)
		}
	}
}

func TestSecretVersionID(t *testing.T) {
	a := SecretVersionID("staging", testKey)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("%q is not UUID-shaped", a)
	}
	for _, tc := range []struct {
		env, key string
		same     bool
	}{
		{"staging", testKey, true},
		{"production", testKey, false},
		{"staging", testKey + "x", false},
	} {
		if got := SecretVersionID(tc.env, tc.key) == a; got != tc.same {
			t.Errorf("SecretVersionID(%s, key') == SecretVersionID(staging, key) is %t, want %t", tc.env, got, tc.same)
		}
	}
	st, _ := Build(existingEnv(), "")
	if v := st.Resource(AddrSecret).Spec.(*secretsmanager.SecretSpec).VersionID; v != "" {
		t.Errorf("no key: version %q, want none", v)
	}
	if v := st.Resource(AddrService).Spec.(*ecs.ServiceSpec).SecretVersion; v != "" {
		t.Errorf("no key: service secret version %q, want none", v)
	}
}

func TestTaskRolePassRoleScoped(t *testing.T) {
	st, _ := Build(existingEnv(), testKey)
	doc := st.Resource(AddrTaskRole).Spec.(*iam.RoleSpec).Inline[TaskWorkerPolicy].JSON(nil)
	var parsed struct {
		Statement []struct {
			Action    []string
			Resource  []string
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal([]byte(doc), &parsed); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range parsed.Statement {
		for _, a := range s.Action {
			if a != "iam:PassRole" {
				continue
			}
			found = true
			// Exactly the flow runs' roles, never the worker's own.
			want := []string{st.Names.FlowExecutionRoleARN, st.Names.FlowTaskRoleARN}
			if d := cmp.Diff(want, s.Resource); d != "" {
				t.Errorf("PassRole resources (-want +got):\n%s", d)
			}
			if got := s.Condition["StringEquals"]["iam:PassedToService"]; len(got) != 1 || got[0] != "ecs-tasks.amazonaws.com" {
				t.Errorf("PassRole condition = %v", s.Condition)
			}
		}
	}
	if !found {
		t.Error("no iam:PassRole statement")
	}
	exec := st.Resource(AddrExecutionRole).Spec.(*iam.RoleSpec).Inline[ExecutionSecretPolicy].JSON(resource.Refs{AddrSecret: {"arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:deploybot/staging/prefect-api-key-AbCdEf"}})
	if !strings.Contains(exec, `"Resource":["arn:aws:secretsmanager:us-east-1:123456789012:secret:deploybot/staging/prefect-api-key-AbCdEf"]`) {
		t.Errorf("execution role secret policy = %s", exec)
	}
}

func TestForceDeleteSecret(t *testing.T) {
	for _, tc := range []struct {
		opts []BuildOption
		want bool
	}{{nil, false}, {[]BuildOption{ForceDeleteSecret}, true}} {
		st, _ := Build(existingEnv(), testKey, tc.opts...)
		if got := st.Resource(AddrSecret).Spec.(*secretsmanager.SecretSpec).ForceDelete; got != tc.want {
			t.Errorf("ForceDelete = %t, want %t", got, tc.want)
		}
	}
}

func TestAutoscalingClampsDesiredCount(t *testing.T) {
	env := existingEnv()
	env.Worker.DesiredCount = 1
	env.Worker.Autoscaling = &config.Autoscaling{Min: 2, Max: 4, TargetCPUPercent: 70}
	st, _ := Build(env, testKey)
	svc := st.Resource(AddrService).Spec.(*ecs.ServiceSpec)
	if svc.DesiredCount != 2 || !svc.Autoscaling {
		t.Errorf("service spec = desired %d autoscaling %t; want 2, true", svc.DesiredCount, svc.Autoscaling)
	}
}

// TestBasicAuthStack: with prefect.auth: basic the worker's credential is a
// self-hosted server's auth string: its own secret, given to the worker as
// PREFECT_API_AUTH_STRING, and to flow runs through the pool's
// prefect_api_auth_string_secret_arn, never prefect_api_key_secret_arn
// (docs/research/prefect-flow-runs.md §A.5, §F).
func TestBasicAuthStack(t *testing.T) {
	env := existingEnv()
	env.Prefect.APIURL, env.Prefect.Auth = "https://prefect.example.com/api", config.AuthBasic
	st, err := Build(env, "admin:s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if st.Resource(AddrSecret) != nil {
		t.Error("the API key's secret is in a basic-auth stack")
	}
	sr := st.Resource(AddrAuthStringSecret)
	if sr == nil || sr.Name != "deploybot/staging/prefect-auth-string" {
		t.Fatalf("the auth string's secret: %+v", sr)
	}
	if v := sr.Spec.(*secretsmanager.SecretSpec).Value; v.Reveal() != "admin:s3cret" || strings.Contains(fmt.Sprintf("%v %+v", v, sr.Spec), "s3cret") {
		t.Errorf("secret value %v", v)
	}
	c := st.Resource(AddrTaskDefinition).Spec.(*ecs.TaskDefinitionSpec).Container
	if got := c.Secrets["PREFECT_API_AUTH_STRING"]; got != (resource.Ref{Address: AddrAuthStringSecret, Key: "arn"}) || len(c.Secrets) != 1 {
		t.Errorf("container secrets = %+v", c.Secrets)
	}
	pool := st.Resource(AddrWorkPool).Spec.(*prefect.WorkPoolSpec)
	if pool.Defaults.SecretVariable != prefect.VarAuthStringSecret {
		t.Errorf("pool secret variable = %q", pool.Defaults.SecretVariable)
	}
	for _, r := range st.Resources {
		for _, d := range r.DependsOn {
			if d == AddrSecret {
				t.Errorf("%s depends on the API key's secret", r.Address)
			}
		}
	}
	key, _ := Build(existingEnv(), testKey)
	if key.Names.WorkerPrefix == st.Names.WorkerPrefix {
		t.Error("the worker prefix does not change with the credential's variable")
	}
}
