package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

// flowRunsFile is configtest.Environment with a flow_runs section from line 20 on.
func flowRunsFile(section ...string) string {
	return configtest.Environment + "flow_runs:\n" + strings.Join(section, "\n") + "\n"
}

func TestFlowRunsProblems(t *testing.T) {
	tests := []struct {
		name    string
		section []string // lines 21...
		want    []want
	}{
		{name: "memory Fargate does not offer with the cpu", section: []string{"  cpu: 256", "  memory: 4096"},
			want: []want{{22, "flow_runs.memory", "Fargate does not offer 4096 MiB with 256 CPU units; with 256 choose 512, 1024 or 2048 MiB"}}},
		{name: "default memory with a larger cpu", section: []string{"  cpu: 4096"},
			want: []want{{21, "flow_runs.memory", "Fargate does not offer 2048 MiB (the default) with 4096 CPU units"}}},
		{name: "cpu that is not a Fargate size", section: []string{"  cpu: 1000"},
			want: []want{{21, "flow_runs.cpu", "1000 is not a Fargate CPU size"}}},
		{name: "log retention CloudWatch does not offer", section: []string{"  log_retention_days: 10"},
			want: []want{{21, "flow_runs.log_retention_days", "CloudWatch Logs does not offer 10 days"}}},
		{name: "bad image", section: []string{"  image: Prefect/Flows:1"},
			want: []want{{21, "flow_runs.image", "repository names must be lowercase"}}},
		{name: "credential in env by name", section: []string{"  env:", "    DB_PASSWORD: hunter22hunter22"},
			want: []want{{22, "flow_runs.env.DB_PASSWORD", "looks like a credential (its name ends in PASSWORD)"}}},
		{name: "AWS key in env points at the flow-run task role", section: []string{"  env:", "    AWS_SECRET_ACCESS_KEY: x"},
			want: []want{{22, "flow_runs.env.AWS_SECRET_ACCESS_KEY", "the flow-run task role (deploybot-demo-flow-task, with flow_runs.task_role_policy_arns and task_role_policy) gives AWS access"}}},
		{name: "env the worker sets for each run", section: []string{"  env:", "    PREFECT_API_URL: https://elsewhere.example.com/api"},
			want: []want{{22, "flow_runs.env.PREFECT_API_URL", "is reserved: the worker gives each flow run its own PREFECT_API_URL"}}},
		{name: "run identity variables", section: []string{"  env:", "    PREFECT__FLOW_RUN_ID: x"},
			want: []want{{22, "flow_runs.env.PREFECT__FLOW_RUN_ID", "is reserved: PREFECT__* variables carry the run's identity"}}},
		{name: "policy ARN that is not one", section: []string{"  task_role_policy_arns:", "    - arn:aws:iam::aws:role/ReadOnly"},
			want: []want{{22, "flow_runs.task_role_policy_arns[0]", `is not a managed policy ARN like arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess`}}},
		{name: "policy of another account", section: []string{"  task_role_policy_arns: [arn:aws:iam::999999999999:policy/theirs]"},
			want: []want{{21, "flow_runs.task_role_policy_arns[0]", "is a policy of account 999999999999; IAM attaches only AWS managed policies"}}},
		{name: "policy of another partition", section: []string{"  task_role_policy_arns: [arn:aws-cn:iam::aws:policy/ReadOnlyAccess]"},
			want: []want{{21, "flow_runs.task_role_policy_arns[0]", `is in partition "aws-cn" but region us-east-1 is in aws`}}},
		{name: "policy listed twice", section: []string{"  task_role_policy_arns:", "    - arn:aws:iam::aws:policy/ReadOnlyAccess", "    - arn:aws:iam::aws:policy/ReadOnlyAccess"},
			want: []want{{23, "flow_runs.task_role_policy_arns[1]", "is listed twice (first at line 22)"}}},
		{name: "policy JSON syntax error at its own line", section: []string{
			"  task_role_policy: |",
			`    {"Version": "2012-10-17",`,
			`     "Statement": [{"Effect": "Allow", "Action": "s3:GetObject" "Resource": "*"}]}`},
			want: []want{{23, "flow_runs.task_role_policy", `is not valid JSON: invalid character '"' after object key:value pair, at "\"Resource\": \"*\"}]}"`}}},
		{name: "policy JSON cut short", section: []string{
			"  task_role_policy: |",
			`    {"Version": "2012-10-17", "Statement": [`},
			want: []want{{22, "flow_runs.task_role_policy", "is not valid JSON: it ends before the document does"}}},
		{name: "policy without Version", section: []string{
			`  task_role_policy: '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'`},
			want: []want{{21, "flow_runs.task_role_policy", "has no Version"}}},
		{name: "policy without Statement", section: []string{"  task_role_policy: {Version: 2012-10-17}"},
			want: []want{{21, "flow_runs.task_role_policy", "has no Statement"}}},
		{name: "policy with a principal", section: []string{
			"  task_role_policy:",
			"    Version: 2012-10-17",
			"    Statement:",
			"      - {Effect: Allow, Principal: '*', Action: 's3:*', Resource: '*'}"},
			want: []want{{21, "flow_runs.task_role_policy", "Statement[0]: has Principal; a role's own policy names no principal"}}},
		{name: "policy with an action that is not one", section: []string{
			"  task_role_policy:",
			"    Version: 2012-10-17",
			"    Statement: {Effect: Allow, Action: GetObject, Resource: '*'}"},
			want: []want{{21, "flow_runs.task_role_policy", `Statement[0]: action "GetObject" is not written service:Action`}}},
		{name: "policy with a lowercase effect", section: []string{
			`  task_role_policy: '{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"s3:GetObject","Resource":"*"}}'`},
			want: []want{{21, "flow_runs.task_role_policy", `Statement[0]: Effect must be "Allow" or "Deny"`}}},
		{name: "policy without a resource", section: []string{
			`  task_role_policy: '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject"}}'`},
			want: []want{{21, "flow_runs.task_role_policy", "Statement[0]: needs exactly one of Resource and NotResource"}}},
		{name: "policy that is a list", section: []string{"  task_role_policy: [a]"},
			want: []want{{21, "flow_runs.task_role_policy", "must be an IAM policy document: a mapping with Version and Statement, or a string holding its JSON; not a list"}}},
		{name: "policy too large for IAM", section: []string{
			`  task_role_policy: '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":["` +
				strings.Repeat("arn:aws:s3:::a-very-long-bucket-name/*", 300) + `"]}}'`},
			want: []want{{21, "flow_runs.task_role_policy", "IAM allows a role's inline policies 10240 together"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "env.yaml", flowRunsFile(tt.section...))
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			matchProblems(t, path, problemsOf(t, err), tt.want)
		})
	}
}

// TestFlowRunsPolicyForms: a policy given as a block of JSON and the same
// one given as a mapping load to the same document.
func TestFlowRunsPolicyForms(t *testing.T) {
	asJSON := flowRunsFile(
		"  task_role_policy: |",
		`    {"Version": "2012-10-17",`,
		`     "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data/*"}]}`,
		"  task_role_policy_arns: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess, arn:aws:iam::123456789012:policy/flows/read-data]",
		"  env: {DATA_BUCKET: data}",
		"  cpu: 512",
		"  memory: 1024")
	asMapping := flowRunsFile(
		"  task_role_policy:",
		"    Version: 2012-10-17",
		"    Statement:",
		"      - Effect: Allow",
		"        Action: [s3:GetObject]",
		"        Resource: arn:aws:s3:::data/*",
		"  task_role_policy_arns: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess, arn:aws:iam::123456789012:policy/flows/read-data]",
		"  env: {DATA_BUCKET: data}",
		"  cpu: 512",
		"  memory: 1024")
	var docs []string
	for _, content := range []string{asJSON, asMapping} {
		env, err := Load(writeFile(t, t.TempDir(), "env.yaml", content))
		if err != nil {
			t.Fatal(err)
		}
		if env.FlowRuns.CPU != 512 || env.FlowRuns.Memory != 1024 || env.FlowRuns.Image != env.Worker.Image || len(env.FlowRuns.TaskRolePolicyARNs) != 2 {
			t.Fatalf("flow_runs = %+v", env.FlowRuns)
		}
		docs = append(docs, canonicalJSON(t, string(env.FlowRuns.TaskRolePolicy)))
	}
	if diff := cmp.Diff(docs[0], docs[1]); diff != "" {
		t.Errorf("the two forms differ (-json +mapping):\n%s", diff)
	}
}

func canonicalJSON(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%q: %v", doc, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
