package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

func TestLoadRejectsBadFiles(t *testing.T) {
	manyTags := map[int]string{}
	for i := 0; i < MaxUserTags+1; i++ {
		manyTags[17+i] = fmt.Sprintf("  t%02d: v", i)
	}
	tests := []struct {
		name  string
		file  string // whole file; empty means configtest.Edit(configtest.Environment, lines)
		lines map[int]string
		want  []want
	}{
		// Shape and types.
		{name: "unknown top-level key suggests the closest", lines: map[int]string{20: "protcet: true"},
			want: []want{{20, "protcet", `unknown key; did you mean "protect"? (allowed: name, aws, prefect, worker, flow_runs, network, service_discovery, health_gate, protect, tags)`}}},
		{name: "unknown nested key", lines: map[int]string{12: "  cpus: 512"},
			want: []want{{12, "worker.cpus", `unknown key; did you mean "cpu"?`}}},
		{name: "unknown key without a close match lists the allowed ones", lines: map[int]string{15: "  retries: 3"},
			want: []want{{15, "health_gate.retries", "unknown key (allowed: timeout, min_online_workers, flow_run)"}}},
		{name: "integer written as a string", lines: map[int]string{12: `  cpu: "512"`},
			want: []want{{12, "worker.cpu", `must be a whole number, not the string "512"`}}},
		{name: "boolean written as yes", lines: map[int]string{20: "protect: yes"},
			want: []want{{20, "protect", `must be true or false, not the string "yes"`}}},
		{name: "section that is not a mapping", lines: map[int]string{14: "health_gate: 5m", 15: ""},
			want: []want{{14, "health_gate", "must be a mapping of timeout, min_online_workers"}}},
		{name: "duplicate key", lines: map[int]string{20: "name: other"},
			want: []want{{20, "name", "duplicate key (first defined at line 1)"}}},
		{name: "list where a string belongs", lines: map[int]string{11: "  image: [a, b]"},
			want: []want{{11, "worker.image", "must be a string, not a list"}}},
		{name: "invalid YAML keeps its line", lines: map[int]string{12: "  cpu: [512"},
			want: []want{{12, "", "invalid YAML: did not find expected ',' or ']'"}}},
		{name: "not a mapping at all", file: "- name: demo\n",
			want: []want{{1, "", "the file must be a mapping of name, aws, prefect, worker"}}},
		{name: "empty file", file: "\n\n",
			want: []want{{1, "", "file is empty"}}},
		{name: "two YAML documents", file: configtest.Environment + "---\nname: other\n",
			want: []want{{20, "", "invalid YAML: a second YAML document (---); put one environment per file"}}},
		{name: "merge keys are refused", lines: map[int]string{14: "health_gate: &gate {timeout: 5m}", 15: "", 20: "service_discovery: {<<: *gate}"},
			want: []want{{20, "service_discovery", "merge keys (<<) are not supported"}}},
		{name: "anchor used before it is defined", lines: map[int]string{14: "health_gate: *gate", 15: "", 20: "x: &gate {timeout: 5m}"},
			want: []want{{14, "", "invalid YAML: unknown anchor 'gate' referenced (an anchor must be defined above its first use)"}}},

		// Required fields.
		{name: "missing name", lines: map[int]string{1: ""},
			want: []want{{1, "name", "is required but missing"}}},
		{name: "missing section is one problem", lines: map[int]string{7: "", 8: "", 9: ""},
			want: []want{{1, "prefect", "is required (a mapping with api_url, work_pool)"}}},
		{name: "missing key is reported at its parent", lines: map[int]string{11: ""},
			want: []want{{10, "worker.image", "is required but missing"}}},
		{name: "null value", lines: map[int]string{9: "  work_pool:"},
			want: []want{{9, "prefect.work_pool", "is required; it has no value"}}},

		// name
		{name: "name with capitals", lines: map[int]string{1: "name: Staging"},
			want: []want{{1, "name", `"Staging" must be lowercase letters, digits and hyphens, starting with a letter`}}},
		{name: "name too long", lines: map[int]string{1: "name: " + strings.Repeat("a", 25)},
			want: []want{{1, "name", "is 25 characters; at most 24"}}},
		{name: "name ending in a hyphen", lines: map[int]string{1: "name: demo-"},
			want: []want{{1, "name", "must not end with a hyphen"}}},

		// aws
		{name: "unquoted account id", lines: map[int]string{3: "  account_id: 123456789012"},
			want: []want{{3, "aws.account_id", `must be a string, not the number 123456789012; quote it ("123456789012")`}}},
		{name: "short account id", lines: map[int]string{3: `  account_id: "12345"`},
			want: []want{{3, "aws.account_id", "must be the 12-digit AWS account id"}}},
		{name: "misspelt region", lines: map[int]string{4: "  region: us-esat-1"},
			want: []want{{4, "aws.region", `unknown region "us-esat-1"; did you mean "us-east-1"?`}}},
		{name: "region that is not a region name", lines: map[int]string{4: "  region: US East"},
			want: []want{{4, "aws.region", `"US East" is not an AWS region name (like us-east-1)`}}},
		{name: "role in another account", lines: map[int]string{5: "  plan_role_arn: arn:aws:iam::210987654321:role/deploybot-plan"},
			want: []want{{5, "aws.plan_role_arn", "is in account 210987654321 but aws.account_id is 123456789012"}}},
		{name: "user ARN instead of a role", lines: map[int]string{6: "  apply_role_arn: arn:aws:iam::123456789012:user/bob"},
			want: []want{{6, "aws.apply_role_arn", "must be an IAM role ARN like arn:aws:iam::123456789012:role/deploybot-plan"}}},
		{name: "role partition differs from the region's", lines: map[int]string{6: "  apply_role_arn: arn:aws-cn:iam::123456789012:role/deploybot-apply"},
			want: []want{{6, "aws.apply_role_arn", "is in partition aws-cn but region us-east-1 is in aws"}}},

		// prefect
		{name: "basic auth against Prefect Cloud", lines: map[int]string{9: "  work_pool: demo-pool\n  auth: basic"},
			want: []want{{10, "prefect.auth", "is basic, but prefect.api_url is a Prefect Cloud workspace, which takes an API key (Bearer)"}}},
		{name: "unknown auth scheme", lines: map[int]string{9: "  work_pool: demo-pool\n  auth: oauth"},
			want: []want{{10, "prefect.auth", `"oauth" is not one of api_key, basic`}}},
		{name: "plain http to a remote server", lines: map[int]string{8: "  api_url: http://prefect.example.com/api"},
			want: []want{{8, "prefect.api_url", "must use https (http is allowed only for localhost)"}}},
		{name: "trailing slash", lines: map[int]string{8: "  api_url: https://prefect.example.com/api/"},
			want: []want{{8, "prefect.api_url", "must not end with a slash"}}},
		{name: "credentials in the URL", lines: map[int]string{8: "  api_url: https://admin:hunter2@prefect.example.com/api"},
			want: []want{{8, "prefect.api_url", "must not contain credentials"}}},
		{name: "cloud URL without a workspace", lines: map[int]string{8: "  api_url: https://api.prefect.cloud/api/accounts/9b2f6c1e-4d3a-4f8b-a1c2-5e7d9f0b3a64"},
			want: []want{{8, "prefect.api_url", "a Prefect Cloud URL must be https://api.prefect.cloud/api/accounts/<account-uuid>/workspaces/<workspace-uuid>"}}},
		{name: "UI URL instead of the API's", lines: map[int]string{8: "  api_url: https://app.prefect.cloud/account/9b2f6c1e-4d3a-4f8b-a1c2-5e7d9f0b3a64/workspace/3c8e1a7d-52f4-4b96-8d0e-f61a2b9c7e15/dashboard"},
			want: []want{{8, "prefect.api_url", "the API URL is https://api.prefect.cloud/api/accounts/9b2f6c1e-4d3a-4f8b-a1c2-5e7d9f0b3a64/workspaces/3c8e1a7d-52f4-4b96-8d0e-f61a2b9c7e15"}}},
		{name: "self-hosted URL without /api", lines: map[int]string{8: "  api_url: https://prefect.example.com"},
			want: []want{{8, "prefect.api_url", "a self-hosted Prefect server's API URL ends with /api"}}},
		{name: "query in the URL", lines: map[int]string{8: "  api_url: https://prefect.example.com/api?x=1"},
			want: []want{{8, "prefect.api_url", "must not have a query"}}},
		{name: "work pool with a character Prefect refuses", lines: map[int]string{9: "  work_pool: team/ecs"},
			want: []want{{9, "prefect.work_pool", `"/" is not allowed in a Prefect work pool name`}}},
		{name: "work pool reserved prefix", lines: map[int]string{9: "  work_pool: Prefect-ecs"},
			want: []want{{9, "prefect.work_pool", `names starting with "prefect" are reserved by Prefect`}}},

		// worker
		{name: "image with a space", lines: map[int]string{11: "  image: prefecthq/prefect aws"},
			want: []want{{11, "worker.image", "must not contain spaces"}}},
		{name: "image with capitals", lines: map[int]string{11: "  image: PrefectHQ/prefect-aws:3"},
			want: []want{{11, "worker.image", "repository names must be lowercase"}}},
		{name: "image with a bad tag", lines: map[int]string{11: "  image: prefecthq/prefect-aws:-bad"},
			want: []want{{11, "worker.image", "is not a valid image reference (like prefecthq/prefect-aws:latest"}}},
		{name: "CPU Fargate does not offer", lines: map[int]string{12: "  cpu: 300"},
			want: []want{{12, "worker.cpu", "300 is not a Fargate CPU size; choose one of 256, 512, 1024, 2048, 4096, 8192, 16384"}}},
		{name: "memory that does not go with the CPU", lines: map[int]string{12: "  cpu: 4096"},
			want: []want{{13, "worker.memory", "Fargate does not offer 1024 MiB with 4096 CPU units; with 4096 choose 8192 to 30720 in steps of 1024 MiB"}}},
		{name: "default memory that does not go with the CPU", lines: map[int]string{12: "  cpu: 256", 13: "  memory: 4096"},
			want: []want{{13, "worker.memory", "with 256 choose 512, 1024 or 2048 MiB"}}},
		{name: "retention CloudWatch does not offer", lines: map[int]string{13: "  log_retention_days: 10"},
			want: []want{{13, "worker.log_retention_days", "CloudWatch Logs does not offer 10 days; choose one of 1, 3, 5, 7, 14, 30"}}},
		{name: "negative desired count", lines: map[int]string{13: "  desired_count: -1"},
			want: []want{{13, "worker.desired_count", "must be 0 or more"}}},
		{name: "zero workers can never pass the gate", lines: map[int]string{13: "  desired_count: 0"},
			want: []want{{13, "worker.desired_count", "is 0, so no worker would start and the health gate (health_gate.min_online_workers: 1) could never pass"}}},
		{name: "desired below autoscaling min", lines: map[int]string{12: "  desired_count: 1", 13: "  autoscaling: {min: 2, max: 3}"},
			want: []want{{12, "worker.desired_count", "1 is below autoscaling.min 2; the rule is autoscaling.min <= worker.desired_count <= autoscaling.max"}}},
		{name: "desired above autoscaling max", lines: map[int]string{12: "  desired_count: 5", 13: "  autoscaling: {min: 1, max: 3}"},
			want: []want{{12, "worker.desired_count", "5 is above autoscaling.max 3"}}},
		{name: "autoscaling min above max", lines: map[int]string{13: "  autoscaling: {min: 4, max: 3}"},
			want: []want{{13, "worker.autoscaling.min", "4 is greater than autoscaling.max 3"}}},
		{name: "autoscaling max above 100", lines: map[int]string{13: "  autoscaling: {min: 1, max: 101}"},
			want: []want{{13, "worker.autoscaling.max", "is 101; at most 100"}}},
		{name: "autoscaling without max", lines: map[int]string{13: "  autoscaling: {min: 1}"},
			want: []want{{13, "worker.autoscaling.max", "is required but missing"}}},
		{name: "autoscaling target out of range", lines: map[int]string{13: "  autoscaling: {min: 1, max: 2, target_cpu_percent: 0}"},
			want: []want{{13, "worker.autoscaling.target_cpu_percent", "must be between 1 and 100"}}},
		{name: "API key in env", lines: map[int]string{13: "  env: {PREFECT_API_KEY: x}"},
			want: []want{{13, "worker.env.PREFECT_API_KEY", "is reserved: the worker gets the API key from the Secrets Manager secret deploybot/demo/prefect-api-key"}}},
		{name: "basic auth string in env", lines: map[int]string{13: "  env: {PREFECT_API_AUTH_STRING: x}"},
			want: []want{{13, "worker.env.PREFECT_API_AUTH_STRING", "looks like a credential"}}},
		{name: "password in env", lines: map[int]string{13: "  env: {DB_PASSWORD: x}"},
			want: []want{{13, "worker.env.DB_PASSWORD", "credentials belong in Secrets Manager"}}},
		{name: "deploybot variable in env", lines: map[int]string{13: "  env: {DEPLOYBOT_WORK_POOL: x}"},
			want: []want{{13, "worker.env.DEPLOYBOT_WORK_POOL", "is reserved: DEPLOYBOT_* variables are set by deploybot"}}},
		{name: "env name that is not a variable name", lines: map[int]string{13: "  env: {1ST: x}"},
			want: []want{{13, "worker.env.1ST", `"1ST" is not an environment variable name`}}},
		{name: "key-shaped env value", lines: map[int]string{13: "  env: {TOKEN: pnu_abcdefghijklmnop}"},
			want: []want{{13, "worker.env.TOKEN", "looks like a Prefect API key"}}},

		// network, managed
		{name: "misspelt network mode", lines: map[int]string{19: "  mode: manged"},
			want: []want{{19, "network.mode", `must be managed or existing, not "manged"; did you mean "managed"?`}}},
		{name: "public CIDR", lines: map[int]string{20: "  cidr: 8.8.0.0/16"},
			want: []want{{20, "network.cidr", "8.8.0.0/16 is not a private range"}}},
		{name: "CIDR prefix too long", lines: map[int]string{20: "  cidr: 10.0.0.0/25"},
			want: []want{{20, "network.cidr", "prefix /25 is outside /16 to /24"}}},
		{name: "CIDR with host bits", lines: map[int]string{20: "  cidr: 10.1.2.3/16"},
			want: []want{{20, "network.cidr", "10.1.2.3/16 has host bits set; the network address is 10.1.0.0/16"}}},
		{name: "CIDR not a CIDR", lines: map[int]string{20: "  cidr: 10.0.0.0"},
			want: []want{{20, "network.cidr", `"10.0.0.0" is not an IPv4 CIDR`}}},
		{name: "CIDR too small for the workers", lines: map[int]string{13: "  desired_count: 20", 20: "  cidr: 10.0.0.0/24"},
			want: []want{{20, "network.cidr", "10.0.0.0/24 is too small for 20 workers: its 2 public subnets (/28) hold 22 task addresses, and a deployment can run 40 tasks at once"}}},
		{name: "too many availability zones", lines: map[int]string{20: "  availability_zones: 7"},
			want: []want{{20, "network.availability_zones", "must be between 2 and 6"}}},
		{name: "unknown NAT mode", lines: map[int]string{20: "  nat: per_az"},
			want: []want{{20, "network.nat", `must be none, single or per-az, not "per_az"; did you mean "per-az"?`}}},
		{name: "existing-only field in managed mode", lines: map[int]string{20: "  vpc_id: vpc-0a1b2c3d"},
			want: []want{{20, "network.vpc_id", "applies only to network.mode: existing"}}},

		// network, existing
		{name: "existing without vpc and subnets", lines: map[int]string{19: "  mode: existing"},
			want: []want{{18, "network.vpc_id", "is required with network.mode: existing"}, {18, "network.subnet_ids", "is required with network.mode: existing"}}},
		{name: "managed-only field in existing mode", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-0a1b2c3d", 21: "  subnet_ids: [subnet-0a1b2c3d]", 22: "  nat: single"},
			want: []want{{22, "network.nat", "applies only to network.mode: managed"}}},
		{name: "malformed VPC id", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-12345", 21: "  subnet_ids: [subnet-0a1b2c3d]"},
			want: []want{{20, "network.vpc_id", `"vpc-12345" is not a VPC id`}}},
		{name: "duplicate subnet", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-0a1b2c3d", 21: "  subnet_ids:", 22: "    - subnet-0a1b2c3d", 23: "    - subnet-0a1b2c3d"},
			want: []want{{23, "network.subnet_ids[1]", "subnet-0a1b2c3d is listed twice (first at line 22)"}}},
		{name: "empty subnet list", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-0a1b2c3d", 21: "  subnet_ids: []"},
			want: []want{{21, "network.subnet_ids", "needs at least one subnet id"}}},
		{name: "subnets written as one string", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-0a1b2c3d", 21: "  subnet_ids: subnet-0a1b2c3d"},
			want: []want{{21, "network.subnet_ids", `must be a list of strings, not the string "subnet-0a1b2c3d"`}}},
		{name: "malformed security group", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-0a1b2c3d", 21: "  subnet_ids: [subnet-0a1b2c3d]", 22: "  security_group_ids: [sg-xyz]"},
			want: []want{{22, "network.security_group_ids[0]", `"sg-xyz" is not a security group id`}}},

		{name: "empty security group list", lines: map[int]string{19: "  mode: existing", 20: "  vpc_id: vpc-0a1b2c3d", 21: "  subnet_ids: [subnet-0a1b2c3d]", 22: "  security_group_ids: []"},
			want: []want{{22, "network.security_group_ids", "is empty; leave it out and deploybot creates the worker security group deploybot-demo-worker"}}},
		{name: "work pool given as a number", lines: map[int]string{9: "  work_pool: 42"},
			want: []want{{9, "prefect.work_pool", `must be a string, not the number 42; quote it ("42")`}}},
		{name: "account id with a leading zero, unquoted", lines: map[int]string{3: "  account_id: 012345678901"},
			want: []want{{3, "aws.account_id", "which drops leading zeros"}}},

		// service discovery, health gate
		{name: "namespace that is not a DNS name", lines: map[int]string{20: "service_discovery: {namespace: Demo_NS.internal}"},
			want: []want{{20, "service_discovery.namespace", `label "Demo_NS" must be 1 to 63 lowercase letters`}}},
		{name: "gate timeout too short", lines: map[int]string{15: "  timeout: 10s"},
			want: []want{{15, "health_gate.timeout", "10s is outside 30s to 1h"}}},
		{name: "gate timeout without a unit", lines: map[int]string{15: "  timeout: 300"},
			want: []want{{15, "health_gate.timeout", "must be a duration with a unit, like 5m or 90s, not the number 300"}}},
		{name: "gate timeout in words", lines: map[int]string{15: "  timeout: 5 minutes"},
			want: []want{{15, "health_gate.timeout", `"5 minutes" is not a duration`}}},
		{name: "gate wants more workers than can run", lines: map[int]string{15: "  min_online_workers: 2"},
			want: []want{{15, "health_gate.min_online_workers", "2 is more than the 1 workers the service can run (worker.desired_count)"}}},

		// tags
		{name: "aws: tag prefix", lines: map[int]string{17: "  aws:team: data"},
			want: []want{{17, `tags["aws:team"]`, "keys starting with aws: are reserved by AWS"}}},
		{name: "our own tag", lines: map[int]string{17: "  managed-by: terraform"},
			want: []want{{17, "tags.managed-by", "is reserved: deploybot sets deploybot:environment, deploybot:stack and managed-by itself"}}},
		{name: "tag key with a character AWS refuses", lines: map[int]string{17: "  team!: data"},
			want: []want{{17, `tags["team!"]`, "may use only letters, digits, spaces and _ . : / = + - @"}}},
		{name: "tag value too long", lines: map[int]string{17: "  team: " + strings.Repeat("x", 257)},
			want: []want{{17, "tags.team", "value is 257 characters; AWS allows at most 256"}}},
		{name: "tag keys that differ only by case", lines: map[int]string{18: "  Team: data", 19: "network: {mode: managed}"},
			want: []want{{18, "tags.Team", `differs from tag "team" only by case`}}},
		{name: "too many tags", lines: manyTags,
			want: []want{{16, "tags", "has 47 tags; at most 46"}}},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d bad files; the table must keep at least 30", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := tt.file
			if content == "" {
				content = configtest.Edit(configtest.Environment, tt.lines)
			}
			path := writeFile(t, t.TempDir(), "env.yaml", content)
			env, err := Load(path)
			if env != nil {
				t.Errorf("Load returned an environment for a bad file")
			}
			matchProblems(t, path, problemsOf(t, err), tt.want)
		})
	}
}
