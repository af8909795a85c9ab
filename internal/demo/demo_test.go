package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/cli"
)

// runDemo runs the demo once, keeping its workspace in a test directory.
func runDemo(t *testing.T, o Options) (*Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	o.Out, o.Keep, o.Dir = &out, true, t.TempDir()
	res, err := Run(context.Background(), o)
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	return res, out.String(), err
}

func stepsByID(res *Result) map[string]*Step {
	m := map[string]*Step{}
	for _, s := range res.Steps {
		m[s.ID] = s
	}
	return m
}

func TestDemoStepsHaveTheirExpectedOutcomes(t *testing.T) {
	t.Parallel()
	res, out, err := runDemo(t, Options{})
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	st := stepsByID(res)

	// Every step, in order, with the Action's result output and exit code.
	type outcome struct {
		ID, Result string
		Exit       int
		OK         bool
	}
	var got []outcome
	for _, s := range res.Steps {
		got = append(got, outcome{s.ID, s.Result, s.Exit, s.OK})
	}
	want := []outcome{
		{"0", "created", 0, true},
		{"1", "planned", 0, true},
		{"2", "applied", 0, true},
		{"3a", "planned", 0, true},
		{"3b", "applied", 0, true},
		{"4a", "planned", 0, true},
		{"4b", "rolled_back", 3, true},
		{"5", "destroyed", 0, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("steps (-want +got):\n%s\n%s", diff, out)
	}

	// The roles were assumed by OIDC through the simulated STS: plans with
	// the plan role, applies and the destroy with the apply role, and IAM
	// refused nothing.
	tests := []struct {
		step string
		role string
	}{
		{"1", "assumed-role/deploybot-plan/"},
		{"2", "assumed-role/deploybot-apply-demo/"},
		{"3a", "assumed-role/deploybot-plan/"},
		{"3b", "assumed-role/deploybot-apply-demo/"},
		{"4a", "assumed-role/deploybot-plan/"},
		{"4b", "assumed-role/deploybot-apply-demo/"},
		{"5", "assumed-role/deploybot-apply-demo/"},
	}
	for _, tc := range tests {
		s := st[tc.step]
		var others []string
		for p := range s.Principals {
			if p != "anonymous" && !strings.Contains(p, tc.role) {
				others = append(others, p)
			}
		}
		if len(others) > 0 || s.Principals["anonymous"] != 1 || len(s.Denied) > 0 {
			t.Errorf("step %s: calls by %v (want one anonymous AssumeRoleWithWebIdentity, the rest as %s), denied %v", tc.step, s.Principals, tc.role, s.Denied)
		}
		if s.AWSCalls == 0 || s.Real <= 0 {
			t.Errorf("step %s: %d AWS calls, real time %v", tc.step, s.AWSCalls, s.Real)
		}
	}

	// The PR comment is created once by the plan, then edited with the outcome.
	c1, c2 := st["1"].Comments, st["2"].Comments
	if len(c1) != 1 || len(c2) != 1 || c1[0].ID != c2[0].ID || c1[0].Edits != 0 || c2[0].Edits != 1 {
		t.Errorf("PR #1's comments: after the plan %+v, after the merge %+v", c1, c2)
	}
	// The output quotes it as GitHub holds it (up to the folded plan).
	for _, l := range strings.Split(c1[0].Body, "\n") {
		if !strings.Contains(out, "  │ "+l+"\n") {
			t.Errorf("the output does not show the comment's line %q", l)
		}
		if strings.HasPrefix(l, "<details>") {
			break
		}
	}

	// The first plan comment lists the work pool's defaults (issue 9):
	// where the flow runs will go, as whom, with which logs; the output
	// shows them unfolded from it.
	pool := strings.Join(planBlock(c1[0].Body, "prefect_work_pool.main"), "\n")
	for _, want := range [][2]string{
		{"defaults.cluster", `"arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-demo"`},
		{"defaults.execution_role_arn", "deploybot-demo-flow-execution"},
		{"defaults.task_role_arn", "deploybot-demo-flow-task"},
		{"defaults.network_configuration", `"securityGroups"`},
		{"defaults.cloudwatch_logs_options", `"awslogs-group": "/deploybot/demo/flow-runs"`},
		{"defaults.prefect_api_key_secret_arn", ""},
		{"defaults.vpc_id", ""},
	} {
		i := strings.Index(pool, want[0])
		if i < 0 || !strings.Contains(pool[i:], want[1]) {
			t.Errorf("the first plan comment does not show the work pool's %s %s:\n%s", want[0], want[1], pool)
		}
		if !strings.Contains(out, "  │ +     "+want[0]) {
			t.Errorf("the output does not show the work pool's %s unfolded", want[0])
		}
	}

	// The first apply succeeded through the gate, recorded as a Deployment.
	r2 := st["2"].Report
	if r2 == nil || r2.Status != "succeeded" || r2.Gate == nil || !r2.Gate.Passed || r2.Deployment == nil {
		t.Fatalf("first apply report: %+v", r2)
	}
	if d := lastDeployment(st["2"]); d == nil || d.State() != "success" {
		t.Errorf("first deployment: %+v", d)
	}
	// Its smoke flow run COMPLETED on the new revision, and the report
	// names it, its duration, its ECS task and its page in the Prefect UI.
	if fr := r2.Gate.FlowRun; fr == nil || fr.State != "COMPLETED" || !fr.NewRevision || fr.Name == "" || fr.DurationMS <= 0 ||
		!strings.Contains(fr.Task, ":task/deploybot-demo/") || !strings.Contains(fr.URL, "/runs/flow-run/"+fr.ID) {
		t.Errorf("first apply's smoke flow run: %+v", fr)
	} else if !strings.Contains(out, "Smoke flow run `"+fr.Name+"` ended COMPLETED after") {
		t.Errorf("the merge step does not show the smoke flow run %q COMPLETED", fr.Name)
	}

	// The CPU pull request plans exactly the task definition's update (a
	// new revision) and the service's reference to it.
	type change struct{ Action, Address, Fields string }
	var changes []change
	for _, c := range st["3a"].Plan.Changes {
		if c.Action == "no-op" {
			continue
		}
		var fs []string
		for _, f := range c.Fields {
			if f.Path == "cpu" {
				fs = append(fs, "cpu "+f.Before+"->"+f.After)
			} else {
				fs = append(fs, f.Path)
			}
		}
		sort.Strings(fs)
		changes = append(changes, change{c.Action, c.Address, strings.Join(fs, ", ")})
	}
	wantChanges := []change{
		{"update", "task_definition.worker", "container.env.DEPLOYBOT_WORKER_PREFIX, cpu 512->1024"},
		{"update", "ecs_service.worker", "health_gate.passed_revision, task_definition"},
	}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("the cpu plan (-want +got):\n%s", diff)
	}
	r3 := st["3b"].Report
	if r3 == nil || r3.Deployment == nil || r3.Gate == nil || !r3.Gate.Passed ||
		r3.Deployment.PreviousTaskDefinition != r2.Deployment.TaskDefinition ||
		!strings.HasSuffix(r3.Deployment.TaskDefinition, ":2") || !strings.HasSuffix(r2.Deployment.TaskDefinition, ":1") {
		t.Fatalf("the cpu apply: %+v (first apply %+v)", r3, r2)
	}

	// The broken image: its worker never reaches Prefect, so its health
	// check (which asks Prefect for the worker's own registration) never
	// passes, ECS keeps the old worker and its circuit breaker rolls the
	// revision back; the gate confirms with Prefect that the previous
	// revision's worker is ONLINE.
	r4 := st["4b"].Report
	if r4 == nil || r4.Status != "rolled_back" || r4.Deployment == nil || r4.Deployment.Status != "ROLLBACK_SUCCESSFUL" ||
		r4.Rollback == nil || r4.Rollback.Status != "ROLLBACK_SUCCESSFUL" {
		t.Fatalf("broken-image report: %+v", r4)
	}
	if g := r4.Gate; g == nil || g.Passed || !g.RolledBack || g.RolledBackTo != r3.Deployment.TaskDefinition || !g.RestoredWorkerOnline {
		t.Errorf("broken-image gate: %+v", g)
	}
	// The old worker served throughout the broken deploy.
	if res.WithoutWorkerDuringBrokenDeploy != 0 || !strings.Contains(out, "the old worker served throughout") {
		t.Errorf("during the broken deploy the pool had no worker of %s for %s", r3.Deployment.TaskDefinition, res.WithoutWorkerDuringBrokenDeploy)
	}
	if res.ServingAfterRollback != r3.Deployment.TaskDefinition {
		t.Errorf("after the rollback the service runs %s, want %s", res.ServingAfterRollback, r3.Deployment.TaskDefinition)
	}
	online := 0
	for _, w := range res.WorkersAfterRollback {
		if w.Status == "ONLINE" {
			online++
			if !strings.HasPrefix(w.Name, r3.Deployment.WorkerPrefix+"-") {
				t.Errorf("ONLINE worker %s is not of the restored revision (prefix %s)", w.Name, r3.Deployment.WorkerPrefix)
			}
		}
	}
	if online == 0 {
		t.Errorf("no ONLINE worker after the rollback: %+v", res.WorkersAfterRollback)
	}
	if d := lastDeployment(st["4b"]); d == nil || d.Statuses[len(d.Statuses)-1].State != "failure" {
		t.Errorf("broken-image deployment: %+v", d)
	}

	// The teardown leaves nothing tagged for the environment (the secret
	// only until its recovery window ends) and every Deployment inactive.
	for _, it := range res.TaggedAfterTeardown {
		if it.Type != "secret (pending deletion)" {
			t.Errorf("left after the teardown: %+v", it)
		}
	}
	if len(res.TaggedAfterWindow) != 0 {
		t.Errorf("left after the recovery window: %+v", res.TaggedAfterWindow)
	}
	for _, d := range st["5"].Deployments {
		if d.State() != "inactive" {
			t.Errorf("deployment %d is %s after the teardown", d.ID, d.State())
		}
	}

	// The summary table names every step.
	for _, s := range res.Steps {
		if !strings.Contains(out, s.ID+"  ") || !strings.Contains(out, s.Name) {
			t.Errorf("the table does not show step %s (%s)", s.ID, s.Name)
		}
	}
}

// TestDemoNeverShowsTheCredentials looks for the generated Prefect API key
// and GitHub token in the output and in every file the demo leaves.
func TestDemoNeverShowsTheCredentials(t *testing.T) {
	t.Parallel()
	res, out, err := runDemo(t, Options{Verbose: true})
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	if len(res.Secrets) != 2 || !strings.HasPrefix(res.Secrets[0], "pnu_") {
		t.Fatalf("secrets = %d", len(res.Secrets))
	}
	places := map[string]string{"output": out}
	files := 0
	err = filepath.WalkDir(res.Workspace, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		places[p] = string(b)
		files++
		return err
	})
	if err != nil || files < 10 {
		t.Fatalf("workspace %s: %d files, %v", res.Workspace, files, err)
	}
	for where, text := range places {
		for _, s := range res.Secrets {
			if strings.Contains(text, s) {
				t.Errorf("a credential (%.8s…) appears in %s", s, where)
			}
		}
	}
}

// TestDemoFailsNamingTheStep makes the broken image healthy: the gate
// passes, so step 4b does not roll back, and the demo says so and stops.
func TestDemoFailsNamingTheStep(t *testing.T) {
	t.Parallel()
	healthy := awssim.ImageBehavior{}
	res, out, err := runDemo(t, Options{brokenBehavior: &healthy})
	if err == nil || !strings.Contains(err.Error(), "step 4b") {
		t.Fatalf("err = %v\n%s", err, out)
	}
	f := res.Failed()
	if f == nil || f.ID != "4b" || f.Result != "applied" || !strings.Contains(f.Problem, "want result rolled_back") {
		t.Fatalf("failed step = %+v", f)
	}
	if last := res.Steps[len(res.Steps)-1]; last.ID != "4b" {
		t.Errorf("the demo went on to step %s after a failed step", last.ID)
	}
	if !res.Kept || !strings.Contains(out, "✗") {
		t.Errorf("a failed demo must keep its workspace and mark the step (kept %v)", res.Kept)
	}
}

func TestDemoCommandExitsZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"demo", []string{"demo"}, 0},
		{"an argument is bad input", []string{"demo", "extra"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			io, _, out, errOut := cli.Test()
			f := &cli.Factory{IO: io, Getenv: func(string) string { return "" }}
			if code := cli.Main(context.Background(), f, tc.args); code != tc.want {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.want, out, errOut)
			}
			if tc.want == 0 && (!strings.Contains(out.String(), "━━ Summary") || !strings.Contains(out.String(), "is removed")) {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

func TestInProcessTransportReachesOnlyTheSimulators(t *testing.T) {
	t.Parallel()
	w, err := newWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	tests := []struct {
		url     string
		wantErr bool
	}{
		{w.gh.URL + "/repos/" + repoFull + "/pulls/1", false},
		{w.pf.URL() + "/work_pools/" + workPool, false},
		{"https://api.github.com/repos/" + repoFull, true},
		{"https://api.prefect.cloud/api/me/", true},
	}
	for _, tc := range tests {
		resp, err := w.http.Get(tc.url)
		if (err != nil) != tc.wantErr {
			t.Errorf("GET %s: err %v, want error %v", tc.url, err, tc.wantErr)
		}
		if err == nil {
			resp.Body.Close()
		}
	}
}

// TestDemoRunsTheImageEntrypoint: every job of the demo runs the binary
// with the arguments the image's ENTRYPOINT gives it.
func TestDemoRunsTheImageEntrypoint(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var entry []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Fatalf("ENTRYPOINT %s is not the exec form: %v", rest, err)
			}
		}
	}
	if len(entry) == 0 || entry[0] != "/deploybot" {
		t.Fatalf("ENTRYPOINT %q does not run /deploybot", entry)
	}
	if diff := cmp.Diff(entry[1:], entrypointArgs); diff != "" {
		t.Errorf("the demo's arguments differ from the image's ENTRYPOINT (-Dockerfile +demo):\n%s", diff)
	}
}

// TestDemoJobsGoThroughTheCLI: the jobs run through cli.Main, so the CLI's
// argument parsing and exit-code mapping apply to them; an argument the
// CLI refuses fails the first job with exit 2 (bad input).
func TestDemoJobsGoThroughTheCLI(t *testing.T) {
	res, out, err := runDemo(t, Options{entrypoint: []string{"action", "--no-such-flag"}})
	if err == nil || !strings.Contains(err.Error(), "step 1") {
		t.Fatalf("err = %v\n%s", err, out)
	}
	f := res.Failed()
	if f == nil || f.ID != "1" || f.Exit != 2 {
		t.Fatalf("failed step = %+v", f)
	}
	log, err := os.ReadFile(f.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "unknown flag: --no-such-flag") {
		t.Errorf("the job's log does not show the CLI's refusal:\n%s", log)
	}
}
