package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/lock"
)

// TestAnotherAccountChangesNothing is issue 11 item 2: with credentials of
// another account, apply and destroy make no call but STS's: no Prefect
// preflight (which can create the work pool), no SSM lock, nothing else.
func TestAnotherAccountChangesNothing(t *testing.T) {
	for _, args := range [][]string{
		{"apply", "-e", "FILE", "--yes"},
		{"destroy", "-e", "FILE", "--confirm", "demo"},
	} {
		t.Run(args[0], func(t *testing.T) {
			h := newHarness(t)
			path := h.file("demo.yaml", baseEnv)
			h.world.Account = "210987654321"
			args[2] = path
			if code := h.run(args...); code != 1 {
				t.Fatalf("exit %d\n%s", code, h.lastErr)
			}
			if !strings.Contains(h.lastErr, "the AWS credentials belong to account 210987654321, but "+path+" sets aws.account_id 123456789012") {
				t.Errorf("stderr:\n%s", h.lastErr)
			}
			for _, c := range h.world.CallsBesideAccountCheck() {
				t.Errorf("%s.%s was called with another account's credentials", c.Service, c.Operation)
			}
			if h.prefect.preflights != 0 {
				t.Error("the Prefect preflight ran (it may create the work pool) before the account check")
			}
		})
	}
}

// TestDestroySaysTheSecretIsOnlyScheduled is issue 11 item 22.
func TestDestroySaysTheSecretIsOnlyScheduled(t *testing.T) {
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	if code := h.run("apply", "-e", path, "--yes"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.lastErr)
	}
	if code := h.run("destroy", "-e", path, "--confirm", "demo"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, h.lastErr)
	}
	for _, want := range []string{"deploybot/demo/prefect-api-key", "only scheduled for deletion", "7-day recovery window",
		"its name stays taken", "Applying this environment again within the window restores it", "--force"} {
		if !strings.Contains(h.lastErr, want) {
			t.Errorf("destroy without --force does not say %q:\n%s", want, h.lastErr)
		}
	}
	// And it is true: an apply restores the secret under its name.
	if code := h.run("apply", "-e", path, "--yes"); code != 0 || !strings.Contains(h.lastErr, "restoring the secret scheduled for deletion") {
		t.Fatalf("re-apply: exit %d\n%s", code, h.lastErr)
	}
	// With --force there is nothing to say.
	if code := h.run("destroy", "-e", path, "--confirm", "demo", "--force"); code != 0 || strings.Contains(h.lastErr, "scheduled for deletion") {
		t.Fatalf("destroy --force: exit %d\n%s", code, h.lastErr)
	}
}

// TestLockOfADeadProcessIsTakenOver is issue 11 item 19 on a laptop: a
// lease left by a deploybot process of this host that no longer exists (a
// SIGKILL) is taken over, and the run says so; one of a live process is not.
func TestLockOfADeadProcessIsTakenOver(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name") // cannot happen on the platforms deploybot supports
	}
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		pid      int
		takeover bool
	}{
		{"dead process", dead.ProcessState.Pid(), true},
		{"live process", os.Getppid(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			path := h.file("demo.yaml", baseEnv)
			holder := lock.Holder{Who: "alice@" + host, Run: fmt.Sprintf("pid %d on %s", c.pid, host), Operation: "apply", Host: host, PID: c.pid}
			if _, err := lock.Acquire(context.Background(), ssm.NewFromConfig(h.world.Config()), h.world.Clock, "demo", holder, time.Hour); err != nil {
				t.Fatal(err)
			}
			code := h.run("apply", "-e", path, "--yes")
			if !c.takeover {
				if code != 1 || !strings.Contains(h.lastErr, fmt.Sprintf("environment demo is locked by alice@%s (run pid %d on %s", host, c.pid, host)) {
					t.Fatalf("exit %d\n%s", code, h.lastErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, h.lastErr)
			}
			want := fmt.Sprintf("took over the lock of environment demo held by alice@%s (run pid %d on %s, apply)", host, c.pid, host)
			if !strings.Contains(h.lastErr, want) || !strings.Contains(h.lastErr, "no longer exists") {
				t.Errorf("the takeover is not said:\n%s", h.lastErr)
			}
		})
	}
}

// TestNoColor: NO_COLOR turns colour off even on a terminal (https://no-color.org).
func TestNoColor(t *testing.T) {
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	ios, _, out, _ := Test()
	ios.OutTTY = true
	run := func() string {
		out.Reset()
		f := &Factory{IO: ios, Getenv: func(k string) string { return h.env[k] },
			AWSConfig: func(context.Context, string) (aws.Config, error) { return h.world.Config(), nil }, Clock: h.world.Clock,
			Prefect: func(*config.Environment, string) (deploy.Prefect, error) { return h.prefect, nil }}
		if code := Main(context.Background(), f, []string{"plan", "-e", path}); code != 0 {
			t.Fatalf("exit %d", code)
		}
		return out.String()
	}
	if !strings.Contains(run(), "\x1b[") {
		t.Fatal("no colour on a terminal: the test cannot tell")
	}
	h.env["NO_COLOR"] = "1"
	if s := run(); strings.Contains(s, "\x1b[") {
		t.Errorf("colour with NO_COLOR set:\n%q", s)
	}
}

// TestAWSCredentialsAreRedacted is issue 11 item 8 for the CLI: the AWS
// secret key and session token the SDK resolved never appear in output,
// whatever a lower layer put into an error.
func TestAWSCredentialsAreRedacted(t *testing.T) {
	h := newHarness(t)
	path := h.file("demo.yaml", baseEnv)
	// world.Config() signs with the secret "simulated-secret" and the
	// session token "simulated-session".
	h.prefect.fail = fmt.Errorf("echo of the request: secret simulated-secret token simulated-session key %s", testKey)
	if code := h.run("apply", "-e", path, "--yes"); code != 1 {
		t.Fatalf("exit %d\n%s", code, h.lastErr)
	}
	for _, s := range []string{"simulated-secret", "simulated-session"} {
		if strings.Contains(h.lastErr+h.lastOut, s) {
			t.Errorf("%q in the output:\n%s", s, h.lastErr)
		}
	}
	if strings.Count(h.lastErr, "[redacted]") < 3 {
		t.Errorf("stderr:\n%s", h.lastErr)
	}
}

// TestBootstrapTrustsOnlyTheEnvironment is issue 11 item 1 as a user meets
// it: after `deploybot bootstrap --apply`, a job on the default branch
// without the GitHub environment cannot assume the apply role (it would
// skip the environment's required reviewers); the environment's job can;
// --apply-on-default-branch is the explicit opt-in.
func TestBootstrapTrustsOnlyTheEnvironment(t *testing.T) {
	assume := func(h *harness, role, sub string) error {
		claims, _ := json.Marshal(map[string]any{"iss": "https://token.actions.githubusercontent.com", "aud": "sts.amazonaws.com",
			"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
		enc := base64.RawURLEncoding.EncodeToString
		jwt := enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(claims) + "." + enc([]byte("sig"))
		cfg := h.world.ConfigFor(aws.AnonymousCredentials{})
		_, err := sts.NewFromConfig(cfg).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(role), RoleSessionName: aws.String("test"), WebIdentityToken: aws.String(jwt)})
		return err
	}
	const applyRole = "arn:aws:iam::123456789012:role/deploybot-apply"
	for _, c := range []struct {
		flags      []string
		mainBranch bool
	}{
		{nil, false},
		{[]string{"--apply-on-default-branch"}, true},
	} {
		h := newHarness(t)
		path := h.file("demo.yaml", baseEnv)
		args := append([]string{"bootstrap", "-e", path, "--repo", "acme/infra", "--apply"}, c.flags...)
		if code := h.run(args...); code != 0 {
			t.Fatalf("bootstrap: exit %d\n%s", code, h.lastErr)
		}
		if err := assume(h, applyRole, "repo:acme/infra:environment:demo"); err != nil {
			t.Errorf("%v: the environment's job cannot assume the apply role: %v", c.flags, err)
		}
		err := assume(h, applyRole, "repo:acme/infra:ref:refs/heads/main")
		if (err == nil) != c.mainBranch {
			t.Errorf("%v: a default-branch job without the environment assumed the apply role: %v (want allowed=%v)", c.flags, err, c.mainBranch)
		}
		if err := assume(h, "arn:aws:iam::123456789012:role/deploybot-plan", "repo:acme/infra:ref:refs/heads/main"); err != nil {
			t.Errorf("%v: the drift check cannot assume the plan role: %v", c.flags, err)
		}
		if !strings.Contains(h.lastErr, "service-linked role AWSServiceRoleForECS: created") {
			t.Errorf("bootstrap did not create the ECS service-linked role:\n%s", h.lastErr)
		}
	}
}

// TestValidateNamesTheLine is issue 11 items 9 and 18 as `deploybot
// validate` shows them: exit 2, FILE:LINE: field: message, each at its line.
func TestValidateNamesTheLine(t *testing.T) {
	cases := []struct {
		name  string
		lines map[int]string
		want  string
	}{
		{"tab on line 12", map[int]string{12: "\tcpu: 512"}, ":12: invalid YAML: found a tab character"},
		{"Latin-1 on line 19", map[int]string{19: "  vpc_id: caf\xe9"}, ":19: byte 0xE9 at column 14 is not UTF-8 text; save the file as UTF-8"},
		{"zero-width space in the work pool", map[int]string{9: "  work_pool: demo\u200b-pool"}, ":9: prefect.work_pool: contains an invisible character (U+200B ZERO WIDTH SPACE)"},
		{"AWS secret key in worker.env", map[int]string{13: "  env: {AWS_SECRET_ACCESS_KEY: " + strings.Repeat("x", 40) + "}"},
			":13: worker.env.AWS_SECRET_ACCESS_KEY: looks like a credential (AWS_SECRET_ACCESS_KEY): the worker's task role (deploybot-demo-task) gives AWS access"},
		{"a URL with a password in worker.env", map[int]string{13: "  env: {DATABASE_URL: \"postgres://app:" + strings.Repeat("p", 10) + "@db:5432/x\"}"},
			":13: worker.env.DATABASE_URL: looks like a URL with a password in it: environment values are stored in git"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			path := h.file("demo.yaml", configtest.Edit(baseEnv, c.lines))
			if code := h.run("validate", path); code != 2 || !strings.Contains(h.lastErr, path+c.want) {
				t.Fatalf("exit %d\n%s", code, h.lastErr)
			}
			if strings.Count(strings.TrimSpace(h.lastErr), "\n") != 0 {
				t.Errorf("more than the one problem:\n%s", h.lastErr)
			}
		})
	}
}
