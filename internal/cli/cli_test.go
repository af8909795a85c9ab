package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/gate"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/simtest"
)

var testKey = fakekey.Prefect("CLI")

// baseEnv is a valid existing-network environment (VPC and SUBNETS are
// filled in by harness.file); cases edit numbered lines.
var baseEnv = configtest.ExistingNetwork("VPC", "SUBNETS") + "protect: false\n"

// stubPrefect passes preflight and the gate, recording that it was asked;
// the work pool is in a simulated Prefect API (api).
type stubPrefect struct {
	preflights, gates int
	fail              error
	gate              *plan.GateReport
	onGate            func()
	api               *prefect.Client
}

func (s *stubPrefect) API() any {
	if s.api == nil {
		return nil
	}
	return s.api
}

func (s *stubPrefect) Preflight(ctx context.Context, env *config.Environment) (*prefect.Preflight, error) {
	s.preflights++
	if s.fail != nil {
		return nil, s.fail
	}
	return &prefect.Preflight{WorkPoolURL: "https://app.prefect.cloud/pool/" + env.Prefect.WorkPool}, nil
}

func (s *stubPrefect) Gate(ctx context.Context, ecs awsapi.ECSAPI, in gate.Input, o gate.Options) (*plan.GateReport, error) {
	s.gates++
	if s.onGate != nil {
		s.onGate()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.gate != nil {
		return s.gate, nil
	}
	return &plan.GateReport{Passed: true, Reason: "1 worker of " + in.WorkerPrefix + " is ONLINE"}, nil
}

type harness struct {
	t        *testing.T
	world    *awssim.World
	dir      string
	env      map[string]string
	prefect  *stubPrefect
	vpc      string
	subnets  []string
	lastOut  string
	lastErr  string
	inTTY    bool
	stdinStr string
	ctx      context.Context
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	world := simtest.New(t, simtest.WithPool("demo-pool"))
	w := world.AWS
	vpc, subnets := w.SeedExistingVPC("10.30.0.0/16", 2, true)
	w.ResetCalls()
	api, err := prefect.New(world.Prefect.URL(), world.PrefectKey, prefect.WithClock(world.Clock))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, world: w, dir: t.TempDir(), env: map[string]string{"PREFECT_API_KEY": testKey},
		prefect: &stubPrefect{api: api}, vpc: vpc, subnets: subnets}
}

// file writes an environment file with the seeded VPC filled in.
func (h *harness) file(name, content string) string {
	h.t.Helper()
	content = strings.ReplaceAll(content, "VPC", h.vpc)
	content = strings.ReplaceAll(content, "SUBNETS", strings.Join(h.subnets, ", "))
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) run(args ...string) int {
	h.t.Helper()
	ios, in, out, errOut := Test()
	ios.InTTY = h.inTTY
	in.WriteString(h.stdinStr)
	f := &Factory{
		IO:     ios,
		Getenv: func(k string) string { return h.env[k] },
		AWSConfig: func(ctx context.Context, region string) (aws.Config, error) {
			return h.world.Config(), nil
		},
		Clock:   h.world.Clock,
		Prefect: func(*config.Environment, string) (deploy.Prefect, error) { return h.prefect, nil },
	}
	ctx := h.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	code := Main(ctx, f, args)
	h.lastOut, h.lastErr = out.String(), errOut.String()
	for _, s := range []string{h.lastOut, h.lastErr} {
		if strings.Contains(s, testKey) {
			h.t.Fatalf("deploybot %v printed the Prefect API key:\n%s", args, s)
		}
	}
	return code
}

func (h *harness) awsCalls() int { return len(h.world.Calls()) }

func TestBadFilesExit2WithFileLineFieldAndNoAWSCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines map[int]string
		line  int
		field string
	}{
		{"unknown top-level key", map[int]string{23: "protcet: true"}, 23, "protcet"},
		{"unknown nested key", map[int]string{12: "  cpus: 512"}, 12, "worker.cpus"},
		{"cpu as a string", map[int]string{12: `  cpu: "512"`}, 12, "worker.cpu"},
		{"protect as yes", map[int]string{23: "protect: yes"}, 23, "protect"},
		{"duplicate key", map[int]string{23: "name: other"}, 23, "name"},
		{"list for a string", map[int]string{11: "  image: [a, b]"}, 11, "worker.image"},
		{"missing image", map[int]string{11: ""}, 10, "worker.image"},
		{"null work pool", map[int]string{9: "  work_pool:"}, 9, "prefect.work_pool"},
		{"capital name", map[int]string{1: "name: Demo"}, 1, "name"},
		{"long name", map[int]string{1: "name: " + strings.Repeat("a", 25)}, 1, "name"},
		{"unquoted account", map[int]string{3: "  account_id: 123456789012"}, 3, "aws.account_id"},
		{"short account", map[int]string{3: `  account_id: "12345"`}, 3, "aws.account_id"},
		{"misspelt region", map[int]string{4: "  region: us-esat-1"}, 4, "aws.region"},
		{"role in another account", map[int]string{5: "  plan_role_arn: arn:aws:iam::210987654321:role/deploybot-plan"}, 5, "aws.plan_role_arn"},
		{"user instead of role", map[int]string{6: "  apply_role_arn: arn:aws:iam::123456789012:user/bob"}, 6, "aws.apply_role_arn"},
		{"plain http api url", map[int]string{8: "  api_url: http://prefect.example.com/api"}, 8, "prefect.api_url"},
		{"api url with credentials", map[int]string{8: "  api_url: https://admin:hunter2@prefect.example.com/api"}, 8, "prefect.api_url"},
		{"pool with a slash", map[int]string{9: "  work_pool: team/ecs"}, 9, "prefect.work_pool"},
		{"image with a space", map[int]string{11: "  image: prefecthq/prefect aws"}, 11, "worker.image"},
		{"cpu not fargate", map[int]string{12: "  cpu: 300"}, 12, "worker.cpu"},
		{"memory not for cpu", map[int]string{12: "  cpu: 256", 13: "  memory: 4096"}, 13, "worker.memory"},
		{"retention not allowed", map[int]string{13: "  log_retention_days: 10"}, 13, "worker.log_retention_days"},
		{"negative desired count", map[int]string{13: "  desired_count: -1"}, 13, "worker.desired_count"},
		{"api key in env", map[int]string{13: "  env: {PREFECT_API_KEY: x}"}, 13, "worker.env.PREFECT_API_KEY"},
		{"network mode typo", map[int]string{19: "  mode: existng"}, 19, "network.mode"},
		{"bad vpc id", map[int]string{20: "  vpc_id: vpc-12345"}, 20, "network.vpc_id"},
		{"empty subnets", map[int]string{21: "  subnet_ids: []"}, 21, "network.subnet_ids"},
		{"duplicate subnets", map[int]string{21: "  subnet_ids: [subnet-0a1b2c3d, subnet-0a1b2c3d]"}, 21, "network.subnet_ids[1]"},
		{"bad security group", map[int]string{23: "  security_group_ids: [sg-xyz]", 24: "protect: false"}, 23, "network.security_group_ids[0]"},
		{"invalid yaml", map[int]string{12: "  cpu: [512"}, 12, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			path := h.file(fmt.Sprintf("bad%02d.yaml", i), configtest.Edit(baseEnv, tt.lines))
			want := fmt.Sprintf("%s:%d: ", path, tt.line)
			if tt.field != "" {
				want += tt.field + ": "
			}
			commands := [][]string{{"validate", path}}
			if i%5 == 0 { // plan, apply and destroy load the file the same way; try them on some
				commands = append(commands, []string{"plan", "-e", path}, []string{"apply", "-e", path, "--yes"},
					[]string{"destroy", "-e", path, "--confirm", "demo"})
			}
			for _, args := range commands {
				if code := h.run(args...); code != 2 {
					t.Fatalf("deploybot %v exit %d, want 2\nstderr: %s", args, code, h.lastErr)
				}
				if !strings.Contains(h.lastErr, want) {
					t.Fatalf("deploybot %v stderr lacks %q:\n%s", args, want, h.lastErr)
				}
				if h.lastOut != "" {
					t.Fatalf("deploybot %v wrote to stdout on bad input: %q", args, h.lastOut)
				}
			}
			if n := h.awsCalls(); n != 0 {
				t.Fatalf("%d AWS calls on bad input: %+v", n, h.world.Calls())
			}
		})
	}
}

func TestBadInvocationsExit2WithoutAWSCall(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		noKey   bool
		tty     bool
		wantErr string
	}{
		{name: "plan without -e", args: []string{"plan"}, wantErr: "an environment file is required"},
		{name: "unknown format", args: []string{"plan", "-e", "GOOD", "--format", "yaml"}, wantErr: `--format "yaml": want text, markdown or json`},
		{name: "unknown flag", args: []string{"plan", "-e", "GOOD", "--colour"}, wantErr: "unknown flag: --colour"},
		{name: "unknown command", args: []string{"deploy"}, wantErr: `unknown command "deploy"`},
		{name: "missing file", args: []string{"plan", "-e", "nope.yaml"}, wantErr: "nope.yaml"},
		{name: "destroy wrong confirm", args: []string{"destroy", "-e", "GOOD", "--confirm", "prod"}, wantErr: `--confirm "prod" does not match the environment's name "demo"`},
		{name: "destroy without confirm", args: []string{"destroy", "-e", "GOOD"}, wantErr: "destroy needs --confirm demo"},
		{name: "apply without --yes off a terminal", args: []string{"apply", "-e", "GOOD"}, wantErr: "refusing to apply without --yes: standard input is not a terminal"},
		{name: "apply without the key", args: []string{"apply", "-e", "GOOD", "--yes"}, noKey: true, wantErr: "PREFECT_API_KEY is not set"},
		{name: "validate with no environments dir", args: []string{"validate"}, wantErr: "environments: cannot list environment files"},
		{name: "plan with an argument", args: []string{"plan", "-e", "GOOD", "extra"}, wantErr: `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			t.Chdir(h.dir)
			good := h.file("demo.yaml", baseEnv)
			if tt.noKey {
				delete(h.env, "PREFECT_API_KEY")
			}
			h.inTTY = tt.tty
			var args []string
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "GOOD", good))
			}
			if code := h.run(args...); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, h.lastErr)
			}
			if !strings.Contains(h.lastErr, tt.wantErr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.wantErr, h.lastErr)
			}
			if n := h.awsCalls(); n != 0 {
				t.Fatalf("%d AWS calls on bad input", n)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	h := newHarness(t)
	t.Chdir(h.dir)
	if err := os.Mkdir("environments", 0o755); err != nil {
		t.Fatal(err)
	}
	h.file("environments/demo.yaml", baseEnv)
	h.file("environments/other.yaml", configtest.Edit(baseEnv, map[int]string{1: "name: other"}))
	if code := h.run("validate"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.lastErr)
	}
	want := "environments/demo.yaml: ok (environment demo, account 123456789012, us-east-1)\n" +
		"environments/other.yaml: ok (environment other, account 123456789012, us-east-1)\n"
	if !strings.HasSuffix(h.lastOut, want) || strings.Count(h.lastOut, "\n") != 2 {
		t.Fatalf("stdout:\n%s\nwant suffix:\n%s", h.lastOut, want)
	}
	// Two files with the same name: both are reported, exit 2.
	h.file("environments/dup.yaml", baseEnv)
	if code := h.run("validate"); code != 2 || !strings.Contains(h.lastErr, "environments/dup.yaml:1: name: ") {
		t.Fatalf("duplicate names: exit %d\n%s", code, h.lastErr)
	}
	if h.awsCalls() != 0 {
		t.Fatal("validate called AWS")
	}
}

func TestProtectedEnvironmentIsNotDestroyed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", configtest.Edit(baseEnv, map[int]string{23: "protect: true"}))
	code := h.run("destroy", "-e", path, "--confirm", "demo")
	// Bad input, placed like any other: FILE:LINE: field: message, exit 2.
	if want := path + `:23: protect: refusing to destroy environment "demo": the file sets protect: true`; code != 2 || !strings.HasPrefix(h.lastErr, want) {
		t.Fatalf("exit %d, want 2 and %q\n%s", code, want, h.lastErr)
	}
	if h.awsCalls() != 0 {
		t.Fatal("a protected destroy called AWS")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	v, c := BuildVersion()
	want := "deploybot version " + v + " (commit " + c + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code := h.run(args...); code != 0 || h.lastOut != want {
			t.Errorf("%v: exit %d out %q, want %q", args, code, h.lastOut, want)
		}
	}
}

var elapsedRe = regexp.MustCompile(`\((\d+m)?\d+s\)`)

// TestLifecycleExitCodes drives the real commands against the simulated
// account: plan, apply, plan again, destroy, with their exit codes.
func TestLifecycleExitCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)

	steps := []struct {
		args []string
		want int
		out  string // stdout must contain
	}{
		{[]string{"plan", "-e", path}, 0, "ecs_service.worker"},
		{[]string{"plan", "-e", path, "--detailed-exitcode"}, 4, ""},
		{[]string{"plan", "-e", path, "--format", "json"}, 0, `"environment": "demo"`},
		{[]string{"plan", "-e", path, "--format", "markdown"}, 0, "demo"},
		{[]string{"apply", "-e", path, "--yes"}, 0, ""},
		{[]string{"plan", "-e", path, "--detailed-exitcode"}, 0, ""},
		{[]string{"destroy", "-e", path, "--confirm", "demo", "--force"}, 0, ""},
		{[]string{"plan", "-e", path, "--detailed-exitcode"}, 4, ""},
	}
	for _, s := range steps {
		code := h.run(s.args...)
		if code != s.want {
			t.Fatalf("deploybot %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", s.args, code, s.want, h.lastOut, h.lastErr)
		}
		if !strings.Contains(h.lastOut, s.out) {
			t.Fatalf("deploybot %v: stdout lacks %q:\n%s", s.args, s.out, h.lastOut)
		}
		if s.args[0] == "apply" {
			if !strings.Contains(h.lastErr, "ecs_service.worker: created") || !elapsedRe.MatchString(h.lastErr) {
				t.Fatalf("apply progress lacks per-resource elapsed time:\n%s", h.lastErr)
			}
			if h.prefect.preflights != 1 || h.prefect.gates != 1 {
				t.Fatalf("preflight %d, gate %d; want 1 each", h.prefect.preflights, h.prefect.gates)
			}
		}
	}
	h.world.Clock.(*clock.Virtual).Advance(time.Minute) // the force-deleted secret's purge
	if left := h.world.TaggedFor("demo"); len(left) != 0 {
		t.Fatalf("destroy left %+v", left)
	}
}

func TestPlanOutFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	out := filepath.Join(h.dir, "plan.json")
	if code := h.run("plan", "-e", path, "--format", "json", "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, h.lastErr)
	}
	b, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(b, []byte(`"fingerprint"`)) {
		t.Fatalf("plan file: %v %s", err, b)
	}
	if h.lastOut != "" {
		t.Fatalf("stdout with --out: %q", h.lastOut)
	}
	if h.world.Calls()[0].Write {
		t.Fatal("plan wrote to AWS")
	}
	for _, c := range h.world.Calls() {
		if c.Write {
			t.Fatalf("plan made a write call: %+v", c)
		}
	}
}

func TestApplyAsksOnATerminal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		answer string
		want   int
		writes bool
	}{
		{"no\n", 1, false},
		{"yes\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.answer), func(t *testing.T) {
			h := newHarness(t)
			path := h.file("demo.yaml", baseEnv)
			h.inTTY, h.stdinStr = true, tt.answer
			code := h.run("apply", "-e", path)
			if code != tt.want || !strings.Contains(h.lastErr, "Only 'yes' will be accepted") {
				t.Fatalf("exit %d\n%s", code, h.lastErr)
			}
			wrote := false
			for _, c := range h.world.Calls() {
				wrote = wrote || c.Write
			}
			if wrote != tt.writes {
				t.Fatalf("wrote = %v, want %v", wrote, tt.writes)
			}
		})
	}
}

func TestGateFailureExits3(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	h.prefect.gate = &plan.GateReport{Passed: false, Reason: "no worker of the new revision came ONLINE within 5m", NothingToRollBack: true}
	if code := h.run("apply", "-e", path, "--yes"); code != 3 {
		t.Fatalf("exit %d\n%s", code, h.lastErr)
	}
	if !strings.Contains(h.lastErr, "health gate failed: no worker of the new revision came ONLINE within 5m; this was the first deploy, there is nothing to roll back to") {
		t.Fatalf("stderr:\n%s", h.lastErr)
	}
}

func TestFailedPreflightWritesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	h.prefect.fail = fmt.Errorf("prefect rejected the API key %s (401)", testKey)
	if code := h.run("apply", "-e", path, "--yes"); code != 1 {
		t.Fatalf("exit %d\n%s", code, h.lastErr)
	}
	if !strings.Contains(h.lastErr, "prefect preflight failed, nothing was changed in AWS") || !strings.Contains(h.lastErr, "[redacted]") {
		t.Fatalf("stderr:\n%s", h.lastErr)
	}
	// Only the account check (STS) comes before preflight; the lock after.
	for _, c := range h.world.CallsBesideAccountCheck() {
		t.Fatalf("%s.%s called after a failed preflight", c.Service, c.Operation)
	}
}

func TestLockHeldThenUnlock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	alice := lock.Holder{Who: "alice@laptop", Run: "pid 42 on laptop", Operation: "apply"}
	if _, err := lock.Acquire(context.Background(), ssm.NewFromConfig(h.world.Config()), h.world.Clock, "demo", alice, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.world.ResetCalls()
	if code := h.run("apply", "-e", path, "--yes"); code != 1 || !strings.Contains(h.lastErr, "environment demo is locked by alice@laptop (run pid 42 on laptop, apply)") {
		t.Fatalf("exit %d\n%s", code, h.lastErr)
	}
	for _, c := range h.world.Calls() {
		if c.Write && c.ErrCode == "" {
			t.Fatalf("a locked-out apply wrote %s.%s", c.Service, c.Operation)
		}
	}
	// While it runs, the lease says who holds it and for what.
	h.prefect.onGate = func() {
		rec, _, err := lock.Read(context.Background(), ssm.NewFromConfig(h.world.Config()), "demo")
		if err != nil || rec == nil || rec.Operation != "apply" || !strings.HasPrefix(rec.Holder, "bob@") {
			t.Errorf("lease during apply: %+v %v", rec, err)
		}
	}
	h.env["USER"] = "bob"
	if code := h.run("unlock", "-e", path); code != 0 || !strings.HasPrefix(h.lastOut, "Broke the lock of environment demo held by alice@laptop (run pid 42 on laptop, apply)") {
		t.Fatalf("unlock: exit %d\n%s%s", code, h.lastOut, h.lastErr)
	}
	if code := h.run("apply", "-e", path, "--yes"); code != 0 {
		t.Fatalf("apply after unlock: exit %d\n%s", code, h.lastErr)
	}
	if code := h.run("unlock", "-e", path); code != 0 || h.lastOut != "Environment demo was not locked.\n" {
		t.Fatalf("apply did not release the lock: %q", h.lastOut)
	}
}

func TestPlanWithoutTheKeySaysWhatItCannotSee(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	if code := h.run("apply", "-e", path, "--yes"); code != 0 {
		t.Fatalf("apply: %d\n%s", code, h.lastErr)
	}
	delete(h.env, "PREFECT_API_KEY")
	if code := h.run("plan", "-e", path, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan without the key: exit %d (a missing key must not look like a change)\n%s", code, h.lastOut)
	}
	if !strings.Contains(h.lastErr, "PREFECT_API_KEY is not set, so this plan cannot tell whether the stored Prefect API key would change") {
		t.Fatalf("stderr:\n%s", h.lastErr)
	}
}

// TestSIGTERMDuringTheGateReleasesTheLock: a cancelled Actions job sends
// SIGTERM (main turns it into a cancelled context); the run stops and the
// environment lock is released all the same.
func TestSIGTERMDuringTheGateReleasesTheLock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.ctx = ctx
	h.prefect.onGate = cancel
	if code := h.run("apply", "-e", path, "--yes"); code != 1 || !strings.Contains(h.lastErr, "context canceled") {
		t.Fatalf("exit %d\n%s", code, h.lastErr)
	}
	if !strings.Contains(h.lastErr, "lock: released") {
		t.Fatalf("no release in the progress:\n%s", h.lastErr)
	}
	rec, raw, err := lock.Read(context.Background(), ssm.NewFromConfig(h.world.Config()), "demo")
	if err != nil || rec != nil || raw != "" {
		t.Fatalf("the lock is still held: %+v %q %v", rec, raw, err)
	}
}

// TestBasicAuthTakesTheAuthString: with prefect.auth: basic, the CLI takes
// the self-hosted server's auth string from PREFECT_API_AUTH_STRING (the
// variable Prefect's own client reads), refuses to apply without it (exit
// 2, nothing written), and never shows it or its Basic token.
func TestBasicAuthTakesTheAuthString(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	file := strings.Replace(baseEnv, "  api_url: https://api.prefect.cloud/api/accounts/9b2f6c1e-4d3a-4f8b-a1c2-5e7d9f0b3a64/workspaces/3c8e1a7d-52f4-4b96-8d0e-f61a2b9c7e15\n",
		"  api_url: https://prefect.example.com/api\n  auth: basic\n", 1)
	path := h.file("demo.yaml", file)
	if code := h.run("apply", "-e", path, "--yes"); code != 2 || !strings.Contains(h.lastErr, "PREFECT_API_AUTH_STRING is not set") {
		t.Fatalf("apply without the auth string: exit %d\n%s", code, h.lastErr)
	}
	for _, c := range h.world.Calls() {
		if c.Write {
			t.Fatalf("the refused apply wrote %s.%s", c.Service, c.Operation)
		}
	}
	const auth = "admin:hunter2-Basic"
	h.env["PREFECT_API_AUTH_STRING"] = auth
	h.run("plan", "-e", path)
	for _, out := range []string{h.lastOut, h.lastErr} {
		if strings.Contains(out, auth) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(auth))) {
			t.Fatalf("the auth string shows:\n%s", out)
		}
	}
	if !strings.Contains(h.lastOut, "secret.prefect_auth_string") || strings.Contains(h.lastOut, "secret.prefect_api_key") {
		t.Fatalf("the plan of a basic-auth environment:\n%s", h.lastOut)
	}
}
