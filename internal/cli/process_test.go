package cli_test

// Tests of the deploybot process itself, as a user and as the GitHub runner
// start it: the test binary re-executes itself as `deploybot` (TestMain), so
// standard input, output and error are real file descriptors, and the
// container's entry point is the same cli.Main → `deploybot action` path
// the image runs (ENTRYPOINT ["/deploybot", "action"]).

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/cli"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/fakekey"

	_ "github.com/deploybot/deploybot/internal/action/cmd" // deploybot action, as cmd/deploybot links it
)

const asDeploybot = "DEPLOYBOT_TEST_RUN_AS_DEPLOYBOT"

func TestMain(m *testing.M) {
	if os.Getenv(asDeploybot) == "1" {
		os.Exit(cli.Main(context.Background(), &cli.Factory{}, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// deploybot runs the deploybot process with args, stdin from stdin (nil:
// /dev/null), the given environment on top of a clean one.
func deploybot(t *testing.T, stdin *os.File, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{asDeploybot + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if stdin == nil {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer devnull.Close()
		stdin = devnull
	}
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestApplyFromDevNullIsNotATerminal is issue 11 item 17: /dev/null is a
// character device but no terminal; `apply < /dev/null` must refuse with
// exit 2 instead of prompting, before any AWS call (none is possible here:
// the process has no credentials and no endpoint).
func TestApplyFromDevNullIsNotATerminal(t *testing.T) {
	path := configtest.Write(t, "demo.yaml", configtest.ExistingNetwork("vpc-0a1b2c3d", "subnet-0a1b2c3d"))
	code, stdout, stderr := deploybot(t, nil, map[string]string{"PREFECT_API_KEY": fakekey.Prefect("process")}, "apply", "-e", path)
	if code != 2 || !strings.Contains(stderr, "refusing to apply without --yes: standard input is not a terminal") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "Only 'yes' will be accepted") {
		t.Error("it prompted on /dev/null")
	}
	if n := strings.Count(stderr, "refusing to apply"); n != 1 {
		t.Errorf("the error is printed %d times:\n%s", n, stderr)
	}
}

// TestContainerPrintsEveryErrorOnce is issue 11 item 17: the image runs
// `deploybot action`; an error is one annotation on stdout (where the runner
// reads workflow commands), not also an "error:" line on stderr.
func TestContainerPrintsEveryErrorOnce(t *testing.T) {
	ws := t.TempDir()
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/infra", "GITHUB_WORKSPACE": ws,
		"GITHUB_EVENT_NAME": "pull_request", "INPUT_OPERATION": "yolo",
	}
	code, stdout, stderr := deploybot(t, nil, env, "action")
	if code != 2 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	all := stdout + stderr
	if n := strings.Count(all, `"yolo" is not one of`); n != 1 {
		t.Errorf("the error is printed %d times:\nstdout: %s\nstderr: %s", n, stdout, stderr)
	}
	if !strings.Contains(stdout, "::error title=deploybot::input operation: \"yolo\" is not one of") {
		t.Errorf("no error annotation on stdout:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr: %q", stderr)
	}
}

// TestErrorsPrintedOnceOnATerminalToo: every command path prints its
// error exactly once (cobra's own, a usage error, an input error).
func TestErrorsPrintedOnceOnATerminalToo(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plan"}, "an environment file is required"},
		{[]string{"deploy"}, `unknown command "deploy"`},
		{[]string{"plan", "-e", "x.yaml", "--colour"}, "unknown flag: --colour"},
	} {
		code, _, stderr := deploybot(t, nil, nil, c.args...)
		if code != 2 || strings.Count(stderr, c.want) != 1 || strings.Count(stderr, "error: ") != 1 {
			t.Errorf("deploybot %v: exit %d, stderr:\n%s", c.args, code, stderr)
		}
	}
}
