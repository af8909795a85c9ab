package action_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/render"
)

// openPR registers pull request #2 of the payloads, changing files.
func (h *harness) openPR(files ...string) {
	var fs []githubsim.File
	for _, f := range files {
		fs = append(fs, githubsim.File{Filename: f, Status: "modified"})
	}
	h.gh.AddPull(repoFull, &githubsim.Pull{Number: 2, HeadSHA: headSHA, BaseSHA: baseSHA, HeadRef: "changes", BaseRef: "master", Files: fs})
}

func (h *harness) prEvent(file string) {
	h.event("pull_request", file, nil)
	h.oidc("pull_request", "refs/pull/2/merge", "")
}

// botComments returns deploybot's comments on PR #2 by environment.
func (h *harness) botComments() map[string]githubsim.Comment {
	out := map[string]githubsim.Comment{}
	for _, c := range h.gh.Comments(repoFull, 2) {
		m, ok := render.ParseMarker(c.Body)
		if !ok {
			continue
		}
		if _, dup := out[m.Env]; dup {
			h.t.Errorf("two comments for %s", m.Env)
		}
		out[m.Env] = c
	}
	return out
}

func TestPullRequestPlansCommentsOnceAndEditsInPlace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openPR("environments/staging.yaml", "README.md")

	// opened: one comment for the one changed environment.
	h.prEvent("pull_request.opened.json")
	if code := h.run(); code != 0 {
		t.Fatalf("opened: exit %d\n%s", code, h.stdout.String())
	}
	cs := h.botComments()
	if diff := cmp.Diff([]string{"staging"}, sortedKeys(cs)); diff != "" {
		t.Fatalf("commented environments (-want +got):\n%s", diff)
	}
	m, _ := render.ParseMarker(cs["staging"].Body)
	if m.HeadSHA != headSHA || m.BaseSHA != baseSHA || len(m.Fingerprint) != 16 {
		t.Errorf("marker = %+v", m)
	}
	if n := utf8.RuneCountInString(cs["staging"].Body); n > githubsim.MaxBodyChars {
		t.Errorf("comment has %d characters", n)
	}
	out := h.outputs()
	if out["changes"] != "true" || out["result"] != "planned" || out["plan-json"] != action.PlanJSONPath {
		t.Errorf("outputs = %v", out)
	}
	var doc struct {
		Environments []struct {
			Environment string
			Plan        *struct{ Fingerprint string } `json:"plan"`
		}
	}
	b, err := os.ReadFile(filepath.Join(h.dir, out["plan-json"]))
	if err != nil || json.Unmarshal(b, &doc) != nil || len(doc.Environments) != 1 || doc.Environments[0].Plan == nil {
		t.Fatalf("plan-json: %v %s", err, b)
	}
	if !strings.Contains(h.summary(), "staging") {
		t.Errorf("summary does not show the plan:\n%s", h.summary())
	}
	// The plan role, assumed with the pull_request subject.
	if calls := h.sts.calls; len(calls) != 1 || calls[0].Role != planRole || calls[0].Subject != "repo:Codertocat/Hello-World:pull_request" || !strings.HasPrefix(calls[0].Session, "deploybot-4242-staging") {
		t.Errorf("STS calls = %+v", calls)
	}
	if h.awsWrites() != 0 {
		t.Errorf("a plan wrote to AWS %d times", h.awsWrites())
	}
	h.noSecretLeaks()

	// synchronize with nothing new: same body, no edit call at all.
	h.resetFiles()
	h.gh.ResetRequests()
	h.prEvent("pull_request.synchronize.json")
	if code := h.run(); code != 0 {
		t.Fatalf("synchronize: exit %d\n%s", code, h.stdout.String())
	}
	if n := h.gh.CountRequests("PATCH", "/comments/") + h.gh.CountRequests("POST", "/comments"); n != 0 {
		t.Errorf("an unchanged plan made %d comment writes", n)
	}

	// synchronize after the file changed: the same comment, edited.
	h.writeEnv("staging", "1024", "10.20.0.0/16")
	h.resetFiles()
	if code := h.run(); code != 0 {
		t.Fatalf("synchronize 2: exit %d\n%s", code, h.stdout.String())
	}
	cs2 := h.botComments()
	if len(cs2) != 1 || cs2["staging"].ID != cs["staging"].ID || cs2["staging"].Edits != 1 {
		t.Errorf("after a new plan: %d comments, edits %d (want the same comment edited once)", len(cs2), cs2["staging"].Edits)
	}
	m2, _ := render.ParseMarker(cs2["staging"].Body)
	if m2.Fingerprint == m.Fingerprint {
		t.Error("the fingerprint did not follow the changed plan")
	}
	h.noSecretLeaks()
}

func TestAffectedEnvironments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   []string
		want    []string
		deleted bool
	}{
		{"one environment", []string{"environments/qa.yaml"}, []string{"qa"}, false},
		{"unrelated files", []string{"README.md", "src/main.go"}, nil, false},
		{"schema changes all", []string{"environments/schema.json"}, []string{"qa", "staging"}, false},
		{"the running workflow (bot version) changes all", []string{".github/workflows/deploybot.yml"}, []string{"qa", "staging"}, false},
		{"another workflow does not", []string{".github/workflows/ci.yml"}, nil, false},
		{"action.yml changes all", []string{"action.yml"}, []string{"qa", "staging"}, false},
		{"a deleted environment is not planned", []string{"environments/old.yaml"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.openPR(tc.files...)
			h.prEvent("pull_request.opened.json")
			h.runOK()
			var got []string
			for _, env := range sortedKeys(h.botComments()) {
				if env != "old" {
					got = append(got, env)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("planned (-want +got):\n%s", diff)
			}
			old, ok := h.botComments()["old"]
			if ok != tc.deleted || (ok && !strings.Contains(old.Body, "does **not** destroy")) {
				t.Errorf("deleted-file comment present=%v: %q", ok, old.Body)
			}
			if tc.want == nil && h.sts.count() != 0 {
				t.Error("no environment was affected, yet a role was assumed")
			}
		})
	}
}

func TestForkPullRequestSkipsWithoutAWS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.event("pull_request", "pull_request.opened.json", func(m map[string]any) {
		repo := m["pull_request"].(map[string]any)["head"].(map[string]any)["repo"].(map[string]any)
		repo["full_name"] = "mallory/Hello-World"
	})
	// A fork's job gets no OIDC variables and a read-only token.
	delete(h.env, "ACTIONS_ID_TOKEN_REQUEST_URL")
	delete(h.env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	delete(h.env, "INPUT_PREFECT-API-KEY")
	h.runOK()
	if h.awsCalls() != 0 || len(h.gh.Requests()) != 0 {
		t.Errorf("fork PR made %d AWS calls and %d GitHub requests", h.awsCalls(), len(h.gh.Requests()))
	}
	if !strings.Contains(h.summary(), "**Not planned:** pull request #2 comes from the fork `mallory/Hello-World`") ||
		!strings.Contains(h.stdout.String(), "::notice title=deploybot did not plan this fork's pull request::") {
		t.Errorf("the fork skip is not explained:\nsummary: %s\nlog: %s", h.summary(), h.stdout.String())
	}
	if out := h.outputs(); out["result"] != "skipped" || out["changes"] != "false" {
		t.Errorf("outputs = %v", out)
	}
}

func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.gh.SecondaryRateLimit(2, 403, 90*time.Second)
	before := h.clock.Now()
	h.runOK()
	if h.gh.RateLimited() < 2 || h.clock.Now().Sub(before) < 3*time.Minute {
		t.Errorf("limited %d times, waited %s", h.gh.RateLimited(), h.clock.Now().Sub(before))
	}
	if len(h.botComments()) != 1 {
		t.Error("no comment after the limit passed")
	}
	if !strings.Contains(h.stdout.String(), "rate limit") {
		t.Error("the wait is not in the log")
	}
}

func TestOIDCFailuresAreRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.gh.SetOIDC(githubsim.OIDC{RequestToken: oidcToken, Repository: repoFull, Ref: "refs/pull/2/merge", EventName: "pull_request", FailNext: 2})
	h.sts.failNext = 3 // "Couldn't retrieve verification key" three times
	h.runOK()
	if h.sts.count() != 4 {
		t.Errorf("STS calls = %d, want 4 (3 IDPCommunicationError, then success)", h.sts.count())
	}
	if len(h.botComments()) != 1 {
		t.Error("no plan comment")
	}
}

func TestWrongRoleTrustFailsThePlan(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.oidc("pull_request", "refs/pull/2/merge", "review") // a job environment changes the sub
	if code := h.run(); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, h.stdout.String())
	}
	c := h.botComments()["staging"]
	if !strings.Contains(c.Body, "Not authorized to perform sts:AssumeRoleWithWebIdentity") {
		t.Errorf("the comment does not say why: %q", c.Body)
	}
	if m, _ := render.ParseMarker(c.Body); m.Fingerprint != "" {
		t.Error("a failed plan carries a fingerprint")
	}
	if h.outputs()["result"] != "failed" {
		t.Errorf("result = %q", h.outputs()["result"])
	}
}

// planPR runs the plan job of PR #2, which changes environments/staging.yaml,
// after before (GitHub's faults for the job; nil for none), and fails the
// test unless it exits 0.
func (h *harness) planPR(before func()) {
	h.t.Helper()
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	if before != nil {
		before()
	}
	if code := h.run(); code != 0 {
		h.t.Fatalf("plan: exit %d\n%s", code, h.stdout.String())
	}
}

// merge marks PR #2 merged as mergeSHA and makes the push compare list files.
func (h *harness) merge(files ...string) {
	h.gh.Do(func() {
		if p := h.repo.Pulls[2]; p != nil {
			p.State, p.Merged, p.MergeCommitSHA = "closed", true, mergeSHA
		}
	})
	var fs []githubsim.File
	for _, f := range files {
		fs = append(fs, githubsim.File{Filename: f, Status: "modified"})
	}
	h.gh.SetCompare(repoFull, baseSHA, mergeSHA, fs)
	h.event("push", "push.branch.actions-flavour.DERIVED.json", nil)
	h.oidc("push", "refs/heads/master", "staging")
}

func TestMergeAppliesTheReviewedPlanAndRefusesAStaleOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	if code := h.run(); code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, h.stdout.String())
	}
	reviewed, _ := render.ParseMarker(h.botComments()["staging"].Body)

	// The merge: re-plan with the apply role, same fingerprint, apply.
	h.merge("environments/staging.yaml")
	h.resetFiles()
	h.sts.calls = nil
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	if h.awsWrites() == 0 {
		t.Fatal("the apply wrote nothing to AWS")
	}
	if calls := h.sts.calls; len(calls) != 1 || calls[0].Role != applyRole || calls[0].Subject != "repo:Codertocat/Hello-World:environment:staging" {
		t.Errorf("STS calls = %+v", calls)
	}
	deps := h.gh.Deployments(repoFull)
	if len(deps) != 1 {
		t.Fatalf("deployments = %d", len(deps))
	}
	d := deps[0]
	if diff := cmp.Diff([]string{"in_progress", "success"}, d.States()); diff != "" {
		t.Errorf("deployment states (-want +got):\n%s", diff)
	}
	if d.Ref != mergeSHA || d.Environment != "staging" || *d.AutoMerge || len(*d.RequiredContexts) != 0 ||
		d.Statuses[1].LogURL != "https://github.com/Codertocat/Hello-World/actions/runs/4242" || !strings.Contains(d.Statuses[1].EnvironmentURL, "/work-pools/work-pool/staging-pool") {
		t.Errorf("deployment = %+v", d)
	}
	out := h.outputs()
	if out["result"] != "applied" || out["deployment-url"] != d.Statuses[1].EnvironmentURL {
		t.Errorf("outputs = %v", out)
	}
	c := h.botComments()["staging"]
	if c.Edits != 1 || !strings.Contains(strings.ToLower(c.Body), "appl") {
		t.Errorf("the PR comment was not edited with the outcome (edits %d):\n%.600s", c.Edits, c.Body)
	}
	if m, _ := render.ParseMarker(c.Body); m != reviewed {
		t.Errorf("the outcome comment lost the reviewed marker: %+v vs %+v", m, reviewed)
	}
	h.noSecretLeaks()

	// A second PR reviews a CPU change; by the merge, the file also moves
	// the VPC to another CIDR, which replaces it: nobody reviewed that.
	h.writeEnv("staging", "1024", "10.20.0.0/16")
	h.resetFiles()
	h.gh.Do(func() { h.repo.Pulls[2].State, h.repo.Pulls[2].Merged = "open", false })
	h.prEvent("pull_request.synchronize.json")
	if code := h.run(); code != 0 {
		t.Fatalf("second plan: exit %d\n%s", code, h.stdout.String())
	}
	h.writeEnv("staging", "1024", "10.30.0.0/16")
	h.merge("environments/staging.yaml")
	h.resetFiles()
	h.writes.Store(0)
	if code := h.run(); code != 1 {
		t.Fatalf("stale apply: exit %d, want 1\n%s", code, h.stdout.String())
	}
	if h.stackWrites() != 0 {
		t.Errorf("a refused apply changed %d resources", h.stackWrites())
	}
	c = h.botComments()["staging"]
	if !strings.Contains(c.Body, "vpc.main") || !strings.Contains(strings.ToLower(c.Body), "refus") {
		t.Errorf("the comment does not explain the refusal:\n%.1500s", c.Body)
	}
	deps = h.gh.Deployments(repoFull)
	if last := deps[len(deps)-1]; last.State() != "failure" || !strings.Contains(last.Statuses[len(last.Statuses)-1].Description, "refused") {
		t.Errorf("the refused deployment's status: %+v", last.Statuses)
	}
	if h.outputs()["result"] != "refused" {
		t.Errorf("result = %q", h.outputs()["result"])
	}
}

func TestDirectPushRefusesUnreviewedDestroys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Applied once (creates need no review), then a direct push changes the CIDR.
	h.merge("environments/staging.yaml") // no pull request: a direct push
	if code := h.run(); code != 0 {
		t.Fatalf("first apply: exit %d\n%s", code, h.stdout.String())
	}
	h.writeEnv("staging", "512", "10.30.0.0/16")
	h.resetFiles()
	h.writes.Store(0)
	if code := h.run(); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, h.stdout.String())
	}
	if h.stackWrites() != 0 || !strings.Contains(h.summary(), "not the merge of a pull request") {
		t.Errorf("writes %d; summary:\n%s", h.stackWrites(), h.summary())
	}
}

func TestDestroyNeedsTheExactConfirmation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		environment string
		confirm     string
		wantExit    int
	}{
		{"the payload's confirm \"true\" is refused", "staging", "true", 2},
		{"a different case is refused", "staging", "Staging", 2},
		{"no confirm is refused", "staging", "", 2},
		{"no environment is refused", "", "", 2},
		{"an unknown environment is refused", "nope", "nope", 2},
		{"the name itself destroys", "staging", "staging", 0},
		{"a protected environment is refused at its protect line", "staging", "staging", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			// Something to destroy, and a deployment to mark inactive.
			h.merge("environments/staging.yaml")
			if code := h.run(); code != 0 {
				t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
			}
			protected := strings.HasPrefix(tc.name, "a protected")
			if protected {
				f, err := os.OpenFile(filepath.Join(h.dir, "environments", "staging.yaml"), os.O_APPEND|os.O_WRONLY, 0)
				if err == nil {
					_, err = f.WriteString("protect: true\n") // line 19
					f.Close()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			h.resetFiles()
			h.world.ResetCalls()
			h.sts.calls = nil
			h.gh.ResetRequests()
			h.event("workflow_dispatch", "workflow_dispatch.teardown.DERIVED.json", nil)
			h.oidc("workflow_dispatch", "refs/heads/main", "staging")
			h.env["INPUT_OPERATION"] = "destroy"
			h.env["INPUT_ENVIRONMENT"] = tc.environment
			h.env["INPUT_CONFIRM"] = tc.confirm
			code := h.run()
			if code != tc.wantExit {
				t.Fatalf("exit %d, want %d\n%s", code, tc.wantExit, h.stdout.String())
			}
			dep := h.gh.Deployments(repoFull)[0]
			if tc.wantExit != 0 {
				if h.awsCalls() != 0 {
					t.Errorf("a refused destroy made %d AWS calls", h.awsCalls())
				}
				if n := h.gh.CountRequests("GET", "idtoken"); n != 0 {
					t.Errorf("a refused destroy asked for %d OIDC tokens", n)
				}
				if protected {
					var found bool
					for _, l := range strings.Split(h.stdout.String(), "\n") {
						found = found || strings.HasPrefix(l, "::error ") && strings.Contains(l, "file=environments/staging.yaml") &&
							strings.Contains(l, "line=19") && strings.Contains(l, `::protect: refusing to destroy environment "staging"`)
					}
					if !found {
						t.Errorf("no annotation on the protect line:\n%s", h.stdout.String())
					}
				}
				if h.outputs()["result"] != "refused" || !strings.Contains(h.summary(), "Refused before any AWS call") {
					t.Errorf("result %q; summary:\n%s", h.outputs()["result"], h.summary())
				}
				if dep.State() != "success" {
					t.Errorf("deployment state %q after a refusal", dep.State())
				}
				return
			}
			if h.awsWrites() == 0 || h.outputs()["result"] != "destroyed" {
				t.Errorf("writes %d, result %q", h.awsWrites(), h.outputs()["result"])
			}
			if dep.State() != "inactive" {
				t.Errorf("deployment state %q, want inactive", dep.State())
			}
			h.noSecretLeaks()
		})
	}
}

func TestDriftIssuesOpenAndClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.scheduleEvent()
	h.oidc("schedule", "refs/heads/master", "")
	// Nothing exists yet: both environments drift.
	h.runOK()
	is := h.gh.Issues(repoFull)
	if len(is) != 2 || is[0].State != "open" || !strings.Contains(is[0].Title, "drift in") {
		t.Fatalf("issues = %+v", is)
	}
	if h.outputs()["result"] != "drift" {
		t.Errorf("result = %q", h.outputs()["result"])
	}
	// Apply staging; the next check closes its issue, keeps qa's.
	h.merge("environments/staging.yaml") // no pull request: a direct push
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	h.driftCheck()
	got := map[string]string{}
	for _, i := range h.gh.Issues(repoFull) {
		got[strings.Fields(i.Title)[3]] = i.State
	}
	if diff := cmp.Diff(map[string]string{"qa": "open", "staging": "closed"}, got); diff != "" {
		t.Errorf("issue states (-want +got):\n%s", diff)
	}
	h.noSecretLeaks()
}

// driftCheck runs the scheduled drift check once more, failing the test
// unless it exits 0.
func (h *harness) driftCheck() {
	h.t.Helper()
	h.scheduleEvent()
	h.oidc("schedule", "refs/heads/master", "")
	h.resetFiles()
	if code := h.run(); code != 0 {
		h.t.Fatalf("drift check: exit %d\n%s", code, h.stdout.String())
	}
}

// scheduleEvent is a schedule run; its payload is just the cron line.
func (h *harness) scheduleEvent() {
	p := filepath.Join(h.tmp, "event.json")
	if err := os.WriteFile(p, []byte(`{"schedule":"17 6 * * *","workflow":".github/workflows/deploybot.yml"}`), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.env["GITHUB_EVENT_NAME"] = "schedule"
	h.env["GITHUB_EVENT_PATH"] = p
}

// hugePlanEngine plans through the real engine, then pads the plan to a
// given size with many changed fields, the way a large task definition or
// policy diff would grow it.
type hugePlanEngine struct {
	action.Engine
	bytes int
}

func (e hugePlanEngine) Plan(ctx context.Context, r action.Request) (*deploy.Result, error) {
	res, err := e.Engine.Plan(ctx, r)
	if err != nil {
		return res, err
	}
	p := res.Plan
	for i, n := 0, 0; n < e.bytes; i++ {
		c := plan.Change{Address: fmt.Sprintf("ssm_parameter.p%04d", i), Kind: "ssm_parameter", Name: fmt.Sprintf("p%04d", i), Action: plan.Update}
		for j := 0; j < 4; j++ {
			f := plan.FieldChange{Path: fmt.Sprintf("value[%d]", j), Before: strings.Repeat("a", 60), After: strings.Repeat("b", 60)}
			c.Fields = append(c.Fields, f)
			n += 160
		}
		p.Changes = append(p.Changes, c)
	}
	p.Fingerprint = p.ComputeFingerprint()
	return res, nil
}

func TestHugePlanStillMakesAValidComment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.engine = hugePlanEngine{Engine: h.engine, bytes: 200_000}
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.runOK()
	c := h.botComments()["staging"]
	if n := utf8.RuneCountInString(c.Body); n > githubsim.MaxBodyChars || n < 30_000 {
		t.Errorf("comment has %d characters", n)
	}
	if m, ok := render.ParseMarker(c.Body); !ok || m.Fingerprint == "" {
		t.Error("the cut comment lost its marker")
	}
	if !strings.Contains(c.Body, "to change") {
		t.Error("the cut comment lost its summary line")
	}
	if len(h.summary()) < 200_000 {
		t.Errorf("the job summary (%d bytes) does not hold the full plan", len(h.summary()))
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, action.PlanJSONPath))
	if !strings.Contains(string(b), "ssm_parameter.p0300") {
		t.Error("plan-json does not hold the full plan")
	}
}

// TestRealStackThroughTheAction runs the real resource kinds against the
// simulated account: the PR plan, the merge's apply through the Prefect
// health gate, and the dispatch destroy, which leaves nothing tagged behind.
func TestRealStackThroughTheAction(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.engine = action.DeployEngine{Kinds: kinds.All} // real kinds, real lock, default Prefect client
	vpc, subnets := h.world.SeedExistingVPC("10.50.0.0/16", 2, true)
	body := configtest.Head{Name: "demo", PlanRole: planRole, ApplyRole: applyRole, APIURL: h.pf.SelfHostedURL(), CreatePool: true}.YAML() + `worker:
  image: prefecthq/prefect-aws:3.1
network:
  mode: existing
  vpc_id: ` + vpc + `
  subnet_ids: [` + strings.Join(subnets, ", ") + `]
  assign_public_ip: true
`
	if err := os.WriteFile(filepath.Join(h.dir, "environments", "demo.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	h.openPR("environments/demo.yaml")
	h.prEvent("pull_request.opened.json")
	if code := h.run(); code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, h.stdout.String())
	}
	if c := h.botComments()["demo"]; !strings.Contains(c.Body, "ecs_service.worker") {
		t.Fatalf("the plan comment does not show the service:\n%.2000s", c.Body)
	}

	h.merge("environments/demo.yaml")
	h.oidc("push", "refs/heads/master", "demo")
	h.resetFiles()
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	out := h.outputs()
	deps := h.gh.Deployments(repoFull)
	if out["result"] != "applied" || len(deps) != 1 || deps[0].State() != "success" || out["deployment-url"] == "" ||
		deps[0].Statuses[len(deps[0].Statuses)-1].EnvironmentURL != out["deployment-url"] {
		t.Fatalf("outputs %v, deployments %+v\n%s", out, deps, h.stdout.String())
	}
	if len(h.world.TaggedFor("demo")) == 0 {
		t.Fatal("nothing was created")
	}
	h.noSecretLeaks()

	h.resetFiles()
	h.event("workflow_dispatch", "workflow_dispatch.teardown.DERIVED.json", nil)
	h.oidc("workflow_dispatch", "refs/heads/master", "demo")
	h.env["INPUT_OPERATION"], h.env["INPUT_ENVIRONMENT"], h.env["INPUT_CONFIRM"] = "destroy", "demo", "demo"
	if code := h.run(); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, h.stdout.String())
	}
	h.clock.Advance(8 * 24 * time.Hour) // the secret's recovery window
	if left := h.world.TaggedFor("demo"); len(left) != 0 {
		t.Errorf("destroy left %+v", left)
	}
	if st := h.gh.Deployments(repoFull)[0].State(); st != "inactive" {
		t.Errorf("deployment state %q after destroy", st)
	}
	h.noSecretLeaks()
}

func TestGitHubAppOnEnterpriseServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	h.gh.AddApp(77, "deploybot-ghes", &key.PublicKey, 99)
	h.env["GITHUB_API_URL"] = h.gh.APIURL(true)
	h.env["INPUT_GITHUB-TOKEN"] = "" // the App, not the job token
	h.env["INPUT_APP-ID"] = "77"
	h.env["INPUT_APP-INSTALLATION-ID"] = "99"
	h.env["INPUT_APP-PRIVATE-KEY"] = pemKey
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.runOK()
	if c := h.gh.Comments(repoFull, 2); len(c) != 1 || c[0].User != "deploybot-ghes[bot]" {
		t.Fatalf("comments = %+v", c)
	}
	// Every line of the key is masked, and none is printed otherwise.
	lines := strings.Split(strings.TrimSpace(pemKey), "\n")
	body := lines[1 : len(lines)-1]
	for _, l := range body {
		if !strings.Contains(h.stdout.String(), "::add-mask::"+l) {
			t.Fatalf("key line %.8s… not masked", l)
		}
	}
	for _, l := range strings.Split(h.stdout.String(), "\n") {
		if !strings.HasPrefix(l, "::add-mask::") && strings.Contains(l, body[0]) {
			t.Errorf("the App key leaked into the log: %.40s", l)
		}
	}
}

func TestBadInputsAreRefusedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event string
		set   map[string]string
		want  string
	}{
		{"unknown operation", "pull_request", map[string]string{"INPUT_OPERATION": "yolo"}, `"yolo" is not one of`},
		{"auto on workflow_dispatch", "workflow_dispatch", nil, "operation auto is ambiguous"},
		{"destroy from a pull request", "pull_request", map[string]string{"INPUT_OPERATION": "destroy", "INPUT_ENVIRONMENT": "staging", "INPUT_CONFIRM": "staging"}, "only runs from workflow_dispatch"},
		{"bad app id", "pull_request", map[string]string{"INPUT_APP-ID": "twelve"}, "app-id"},
		{"unknown environment", "workflow_dispatch", map[string]string{"INPUT_OPERATION": "plan", "INPUT_ENVIRONMENTS": "nope"}, `environment "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.openPR("environments/staging.yaml")
			if tc.event == "pull_request" {
				h.prEvent("pull_request.opened.json")
			} else {
				h.event("workflow_dispatch", "workflow_dispatch.teardown.DERIVED.json", nil)
			}
			for k, v := range tc.set {
				h.env[k] = v
			}
			if code := h.run(); code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, h.stdout.String())
			}
			if !strings.Contains(h.stdout.String(), tc.want) {
				t.Errorf("the error does not say %q:\n%s", tc.want, h.stdout.String())
			}
			if h.awsCalls() != 0 || len(h.gh.Requests()) != 0 {
				t.Errorf("%d AWS calls, %d GitHub requests", h.awsCalls(), len(h.gh.Requests()))
			}
		})
	}
}
