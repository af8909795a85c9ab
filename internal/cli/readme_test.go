package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
)

// readmeCommands returns every `deploybot ...` command line in README.md's
// code blocks, without its trailing comment.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	inCode := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode || !strings.HasPrefix(line, "deploybot ") {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		out = append(out, strings.Join(strings.Fields(line), " "))
	}
	return out
}

// TestEveryReadmeCommandRuns runs each command the README shows, with each
// option it documents, against the simulated account, in a sensible order
// (validate, bootstrap, plan, apply, destroy, unlock). A command added to the
// README without a run here fails the test; `deploybot demo` and the test
// command run in .ci/run.
func TestEveryReadmeCommandRuns(t *testing.T) {
	h := newHarness(t)
	commands := readmeCommands(t)
	// environments/staging.yaml, pointed at the simulated account's VPC.
	raw, err := os.ReadFile("../../environments/staging.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := regexp.MustCompile(`vpc-[0-9a-f]+`).ReplaceAllString(string(raw), h.vpc)
	y = regexp.MustCompile(`(?s)subnet_ids:\n(\s+- subnet-[0-9a-f]+\n)+`).ReplaceAllString(y, "subnet_ids: ["+strings.Join(h.subnets, ", ")+"]\n")
	// The simulated VPC's subnets are public (an internet gateway, no NAT),
	// so the tasks need a public IP to reach Prefect; with the example's
	// false they would fail to start, as they would in AWS.
	if !strings.Contains(y, "assign_public_ip: false") {
		t.Fatal("environments/staging.yaml changed: update this test")
	}
	y = strings.Replace(y, "assign_public_ip: false", "assign_public_ip: true", 1)
	envDir := filepath.Join(h.dir, "environments")
	if err := os.MkdirAll(envDir, 0o755); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(envDir, "staging.yaml")
	if err := os.WriteFile(staging, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(h.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })
	out := filepath.Join(h.dir, "plan.json")

	type run struct {
		args []string
		code int
	}
	const e = "environments/staging.yaml"
	runs := map[string][]run{
		"deploybot validate":                                           {{[]string{"validate"}, 0}},
		"deploybot validate [FILE...]":                                 {{[]string{"validate", e}, 0}},
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME":           {{[]string{"bootstrap", "-e", e, "--repo", "acme/infra"}, 0}},
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME --apply":   {{[]string{"bootstrap", "-e", e, "--repo", "acme/infra", "--apply"}, 0}},
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME [--apply]": {{[]string{"bootstrap", "-e", e, "--repo", "acme/infra"}, 0}},
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME [--apply] [--apply-on-default-branch]": {
			{[]string{"bootstrap", "-e", e, "--repo", "acme/infra", "--apply-on-default-branch"}, 0}},
		"deploybot plan -e " + e + " [--format text|markdown|json] [--out FILE] [--detailed-exitcode]": {
			{[]string{"plan", "-e", e}, 0},
			{[]string{"plan", "-e", e, "--format", "markdown"}, 0},
			{[]string{"plan", "-e", e, "--format", "json", "--out", out}, 0},
			{[]string{"plan", "-e", e, "--format", "text", "--detailed-exitcode"}, 4},
		},
		"deploybot apply -e " + e + " [--yes]":                       {{[]string{"apply", "-e", e, "--yes"}, 0}},
		"deploybot destroy -e " + e + " --confirm staging [--force]": {{[]string{"destroy", "-e", e, "--confirm", "staging", "--force"}, 0}},
		"deploybot unlock -e " + e:                                   {{[]string{"unlock", "-e", e}, 0}},
		"deploybot version":                                          {{[]string{"version"}, 0}},
		"deploybot demo":                                             nil, // .ci/run and internal/demo's tests
	}
	order := []string{
		"deploybot validate", "deploybot validate [FILE...]",
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME", "deploybot bootstrap -e " + e + " --repo OWNER/NAME [--apply]",
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME --apply",
		"deploybot bootstrap -e " + e + " --repo OWNER/NAME [--apply] [--apply-on-default-branch]",
		"deploybot plan -e " + e + " [--format text|markdown|json] [--out FILE] [--detailed-exitcode]",
		"deploybot apply -e " + e + " [--yes]",
		"deploybot destroy -e " + e + " --confirm staging [--force]",
		"deploybot unlock -e " + e, "deploybot version",
	}
	for _, c := range commands {
		if _, ok := runs[c]; !ok {
			t.Errorf("README shows %q, which no test runs: add it here", c)
		}
	}
	for _, c := range order {
		for _, r := range runs[c] {
			if code := h.run(r.args...); code != r.code {
				t.Fatalf("deploybot %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), code, r.code, h.lastOut, h.lastErr)
			}
		}
	}
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), `"format_version"`) {
		t.Fatalf("plan --out wrote no JSON plan: %v", err)
	}
	// Secrets Manager purges a force-deleted secret within seconds.
	h.world.Clock.(*clock.Virtual).Advance(time.Minute)
	if left := h.world.TaggedFor("staging"); len(left) != 0 {
		t.Fatalf("destroy --force left %d resources tagged for staging: %+v", len(left), left)
	}
}
