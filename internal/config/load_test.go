package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

// TestExampleEnvironmentsLoad loads every file in environments/, the way
// `deploybot validate` does by default.
func TestExampleEnvironmentsLoad(t *testing.T) {
	paths, err := Discover(filepath.Join("..", "..", "environments"))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := LoadAll(paths)
	if err != nil {
		t.Fatalf("example environments do not validate:\n%v", err)
	}
	modes := map[string]string{}
	for _, e := range envs {
		modes[e.Name] = e.Network.Mode
	}
	// The examples show both network modes, and production is protected.
	want := map[string]string{"staging": "existing", "production": "managed"}
	if diff := cmp.Diff(want, modes); diff != "" {
		t.Errorf("example environments (-want +got):\n%s", diff)
	}
	for _, e := range envs {
		if e.Name == "production" && (!e.Protect || e.Worker.Autoscaling == nil || e.Network.NAT != "single") {
			t.Errorf("production.yaml should be protected, autoscaled and use nat: single; got %+v", e)
		}
	}
}

const minimalFile = `name: demo
aws:
  account_id: "012345678901"
  region: eu-west-1
  plan_role_arn: arn:aws:iam::012345678901:role/plan
  apply_role_arn: arn:aws:iam::012345678901:role/ci/apply
prefect:
  api_url: http://localhost:4200/api
  work_pool: pool
worker:
  image: prefecthq/prefect-aws:latest
`

func TestLoadFillsDefaults(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  func(e *Environment)
	}{
		{name: "minimal managed", want: func(e *Environment) {}},
		{name: "autoscaling without desired_count starts at min",
			extra: "  autoscaling: {min: 2, max: 4}\n",
			want: func(e *Environment) {
				e.Worker.DesiredCount = 2
				e.Worker.Autoscaling = &Autoscaling{Min: 2, Max: 4, TargetCPUPercent: 70}
			}},
		{name: "existing network gets no managed defaults",
			extra: "network:\n  mode: existing\n  vpc_id: vpc-0a1b2c3d\n  subnet_ids: [subnet-0a1b2c3d]\n",
			want: func(e *Environment) {
				e.Network = Network{Mode: "existing", VPCID: "vpc-0a1b2c3d", SubnetIDs: []string{"subnet-0a1b2c3d"}}
			}},
		{name: "null means default",
			extra: "  cpu: ~\nhealth_gate:\n",
			want:  func(e *Environment) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "demo.yaml", minimalFile+tt.extra)
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := &Environment{
				File: path,
				Name: "demo",
				AWS: AWS{AccountID: "012345678901", Region: "eu-west-1",
					PlanRoleARN: "arn:aws:iam::012345678901:role/plan", ApplyRoleARN: "arn:aws:iam::012345678901:role/ci/apply"},
				Prefect: Prefect{APIURL: "http://localhost:4200/api", WorkPool: "pool", Auth: AuthAPIKey},
				Worker: Worker{Image: "prefecthq/prefect-aws:latest", CPU: 512, Memory: 1024, DesiredCount: 1,
					LogRetentionDays: 30},
				// Flow runs default to the worker's image and prefect-aws's own size.
				FlowRuns:         FlowRuns{Image: "prefecthq/prefect-aws:latest", CPU: 1024, Memory: 2048, LogRetentionDays: 30},
				Network:          Network{Mode: "managed", CIDR: "10.0.0.0/16", AvailabilityZones: 2, NAT: "none"},
				ServiceDiscovery: ServiceDiscovery{Namespace: "demo.prefect.internal"},
				HealthGate:       HealthGate{Timeout: 10 * time.Minute, MinOnlineWorkers: 1},
			}
			tt.want(want)
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Environment{}, "Lines"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
			if !got.Prune() || got.PublicIP() != (got.Network.Mode == "managed") {
				t.Errorf("Prune() = %v, PublicIP() = %v", got.Prune(), got.PublicIP())
			}
		})
	}
}

func TestLoadRecordsLines(t *testing.T) {
	content := minimalFile + `  env:
    A: "1"
    PORT: 8080
network:
  mode: existing
  vpc_id: vpc-0a1b2c3d
  subnet_ids:
    - subnet-0a1b2c3d
    - subnet-1a1b2c3d
tags: {team: data, "cost center": "42"}
`
	env, err := Load(writeFile(t, t.TempDir(), "demo.yaml", content))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"name": 1, "aws": 2, "aws.account_id": 3, "aws.region": 4, "aws.plan_role_arn": 5, "aws.apply_role_arn": 6,
		"prefect": 7, "prefect.api_url": 8, "prefect.work_pool": 9,
		"worker": 10, "worker.image": 11, "worker.env": 12, "worker.env.A": 13, "worker.env.PORT": 14,
		"network": 15, "network.mode": 16, "network.vpc_id": 17, "network.subnet_ids": 18,
		"network.subnet_ids[0]": 19, "network.subnet_ids[1]": 20,
		"tags": 21, "tags.team": 21, `tags["cost center"]`: 21,
	}
	if diff := cmp.Diff(want, env.Lines); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
	// Numbers in env keep their text exactly.
	if got := env.Worker.Env["PORT"]; got != "8080" {
		t.Errorf(`env PORT = %q, want "8080"`, got)
	}
}

// TestLoadReportsEveryProblem: one file, mistakes in several sections, all
// reported in one error, sorted by line, each as FILE:LINE: field: message.
func TestLoadReportsEveryProblem(t *testing.T) {
	content := `name: Demo
aws:
  account_id: 123456789012
  region: us-east-1
  plan_role_arn: arn:aws:iam::123456789012:role/plan
prefect:
  api_url: https://prefect.example.com/api/
  work_pool: pool
worker:
  image: prefecthq/prefect-aws:latest
  cpu: 1024
  memory: 1024
  colour: blue
network:
  mode: managed
  cidr: 192.168.0.0/16
health_gate: {timeout: 2h}
tags: {managed-by: me}
`
	path := writeFile(t, t.TempDir(), "demo.yaml", content)
	_, err := Load(path)
	problemsOf(t, err)
	want := strings.Join([]string{
		path + `:1: name: "Demo" must be lowercase letters, digits and hyphens, starting with a letter: it names AWS resources (cluster deploybot-<name>, role deploybot-<name>-task, ...)`,
		path + `:2: aws.apply_role_arn: is required but missing`,
		path + `:3: aws.account_id: must be a string, not the number 123456789012; quote it ("123456789012"): YAML reads unquoted digits as a number, which drops leading zeros`,
		path + `:7: prefect.api_url: must not end with a slash; deploybot adds the API paths to it`,
		path + `:12: worker.memory: Fargate does not offer 1024 MiB with 1024 CPU units; with 1024 choose 2048 to 8192 in steps of 1024 MiB`,
		path + `:13: worker.colour: unknown key (allowed: image, cpu, memory, desired_count, autoscaling, env, log_retention_days)`,
		path + `:17: health_gate.timeout: 2h0m0s is outside 30s to 1h: a worker needs time to pull its image and start, and a stuck deploy must not hold the lock for hours`,
		path + `:18: tags.managed-by: is reserved: deploybot sets deploybot:environment, deploybot:stack and managed-by itself`,
	}, "\n")
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("Error() (-want +got):\n%s", diff)
	}
}

func TestLoadAllReportsDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", configtest.Environment)
	b := writeFile(t, dir, "b.yaml", "# the same environment, copied\n"+configtest.Environment)
	c := writeFile(t, dir, "c.yaml", configtest.Edit(configtest.Environment, map[int]string{1: "name: other"}))
	_, err := LoadAll([]string{a, b, c})
	got := problemsOf(t, err)
	want := []Problem{
		{File: a, Line: 1, Field: "name", Message: `environment "demo" is also defined in ` + b + `:2; names must be unique, they name the AWS resources`},
		{File: b, Line: 2, Field: "name", Message: `environment "demo" is also defined in ` + a + `:1; names must be unique, they name the AWS resources`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestLoadAllCollectsAllFiles: problems of every file come back at once,
// sorted by file, and a missing file is a problem like any other.
func TestLoadAllCollectsAllFiles(t *testing.T) {
	dir := t.TempDir()
	b := writeFile(t, dir, "b.yaml", configtest.Edit(configtest.Environment, map[int]string{12: "  cpu: 3"}))
	a := writeFile(t, dir, "a.yaml", configtest.Edit(configtest.Environment, map[int]string{1: "name: a", 19: "  mode: x"}))
	missing := filepath.Join(dir, "missing.yaml")
	envs, err := LoadAll([]string{b, missing, a})
	if envs != nil {
		t.Errorf("LoadAll returned environments despite problems")
	}
	var got []string
	for _, p := range problemsOf(t, err) {
		got = append(got, p.String())
	}
	want := []string{
		a + `:19: network.mode: must be managed or existing, not "x"`,
		b + ":12: worker.cpu: 3 is not a Fargate CPU size; choose one of 256, 512, 1024, 2048, 4096, 8192, 16384 CPU units (1024 = 1 vCPU)",
		missing + ":1: cannot read: no such file or directory",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.Problems) != 3 {
		t.Errorf("errors.As: %v", err)
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"staging.yaml", "prod.yml", "schema.json", ".draft.yaml", "notes.txt"} {
		writeFile(t, dir, name, "name: x\n")
	}
	if err := os.Mkdir(filepath.Join(dir, "old.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "prod.yml"), filepath.Join(dir, "staging.yaml")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Discover (-want +got):\n%s", diff)
	}

	empty := t.TempDir()
	_, err = Discover(empty)
	var errs *Errors
	if !errors.As(err, &errs) || errs.ExitCode() != 2 || err.Error() != empty+": no environment files (*.yaml, *.yml) here" {
		t.Errorf("Discover(empty dir) = %v", err)
	}
}

func TestSubnetCIDRs(t *testing.T) {
	tests := []struct {
		cidr             string
		azs              int
		public, private  []string
		wantErrFragments string
	}{
		{cidr: "10.0.0.0/16", azs: 2,
			public:  []string{"10.0.0.0/20", "10.0.16.0/20"},
			private: []string{"10.0.32.0/20", "10.0.48.0/20"}},
		{cidr: "10.20.0.0/16", azs: 3,
			public:  []string{"10.20.0.0/20", "10.20.16.0/20", "10.20.32.0/20"},
			private: []string{"10.20.48.0/20", "10.20.64.0/20", "10.20.80.0/20"}},
		{cidr: "192.168.4.0/24", azs: 6,
			public:  []string{"192.168.4.0/28", "192.168.4.16/28", "192.168.4.32/28", "192.168.4.48/28", "192.168.4.64/28", "192.168.4.80/28"},
			private: []string{"192.168.4.96/28", "192.168.4.112/28", "192.168.4.128/28", "192.168.4.144/28", "192.168.4.160/28", "192.168.4.176/28"}},
		{cidr: "10.0.0.0/25", azs: 2, wantErrFragments: "too small: its subnets would be /29"},
		{cidr: "10.0.0.0/16", azs: 9, wantErrFragments: "too small for 9 availability zones"},
		{cidr: "10.0.0.1/16", azs: 2, wantErrFragments: "host bits set"},
		{cidr: "fd00::/48", azs: 2, wantErrFragments: "not an IPv4 CIDR"},
		{cidr: "10.0.0.0/16", azs: 0, wantErrFragments: "at least one availability zone"},
	}
	for _, tt := range tests {
		public, private, err := SubnetCIDRs(tt.cidr, tt.azs)
		if tt.wantErrFragments != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErrFragments) {
				t.Errorf("SubnetCIDRs(%s, %d) error = %v, want %q", tt.cidr, tt.azs, err, tt.wantErrFragments)
			}
			continue
		}
		if err != nil {
			t.Errorf("SubnetCIDRs(%s, %d): %v", tt.cidr, tt.azs, err)
			continue
		}
		if diff := cmp.Diff([][]string{tt.public, tt.private}, [][]string{public, private}); diff != "" {
			t.Errorf("SubnetCIDRs(%s, %d) (-want +got):\n%s", tt.cidr, tt.azs, diff)
		}
	}
}

// TestCredentialsNeverEchoed: a URL with a password is refused without the
// password appearing anywhere in the error.
func TestCredentialsNeverEchoed(t *testing.T) {
	for _, url := range []string{
		"https://admin:s3cr3t-pw@prefect.example.com/api",
		"http://admin:s3cr3t-pw@prefect.example.com/api",
		"https://admin:s3cr3t-pw@api.prefect.cloud/api/x",
		"ftp://admin:s3cr3t-pw@x",
	} {
		path := writeFile(t, t.TempDir(), "e.yaml", configtest.Edit(configtest.Environment, map[int]string{
			8:  "  api_url: " + url,
			11: "  image: https://bob:s3cr3t-pw@ghcr.io/acme/worker:1",
			13: "  env: {TOKEN: pnb_s3cr3t-pw}",
			17: "  team: pnu_s3cr3t-pw",
		}))
		_, err := Load(path)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Count(err.Error(), "\n") != 3 {
			t.Errorf("Load with api_url %s: error %v must exist and not contain the credential", url, err)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"cpu", "cpu", 0}, {"cpus", "cpu", 1}, {"regoin", "region", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
