package action_test

// Issue 11's trust-boundary, secret and real-repository items, tested the
// way the runner runs the Action: the whole Action process against
// githubsim, awssim and prefectsim.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/render"
)

// noCalls checks that nothing left the process but the GitHub API calls
// allowed (none by default): no OIDC token request, no STS, no AWS.
func (h *harness) noCalls(t *testing.T) {
	t.Helper()
	if n := h.awsCalls(); n != 0 {
		t.Errorf("%d AWS calls", n)
	}
	if n := len(h.gh.Requests()); n != 0 {
		t.Errorf("%d GitHub requests: %+v", n, h.gh.Requests())
	}
	if n := h.gh.CountRequests("GET", "idtoken"); n != 0 {
		t.Errorf("%d OIDC token requests", n)
	}
}

// TestEnvironmentsDirStaysInTheWorkspace is issue 11 item 3: the
// environments-dir input cannot leave GITHUB_WORKSPACE, by ../, an absolute
// path or a symbolic link; refused with exit 2 before any network call.
func TestEnvironmentsDirStaysInTheWorkspace(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "prod.yaml"), []byte("name: prod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir string
		setup     func(h *harness)
		want      string
	}{
		{"parent", "../outside", nil, "leaves the repository"},
		{"deep parent", "environments/../../../../etc", nil, "leaves the repository"},
		{"absolute", "/etc", nil, "is an absolute path"},
		{"absolute to the workspace", "ABS", nil, "is an absolute path"},
		{"symlinked dir", "linked", func(h *harness) {
			if err := os.Symlink(outside, filepath.Join(h.dir, "linked")); err != nil {
				t.Fatal(err)
			}
		}, "linked is a symbolic link"},
		{"symlinked parent", "config/environments", func(h *harness) {
			if err := os.Symlink(outside, filepath.Join(h.dir, "config")); err != nil {
				t.Fatal(err)
			}
		}, "config is a symbolic link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.openPR("environments/staging.yaml")
			h.prEvent("pull_request.opened.json")
			if c.setup != nil {
				c.setup(h)
			}
			dir := c.dir
			if dir == "ABS" {
				dir = filepath.Join(h.dir, "environments")
			}
			h.env["INPUT_ENVIRONMENTS-DIR"] = dir
			if code := h.run(); code != 2 {
				t.Fatalf("exit %d\n%s", code, h.stdout.String())
			}
			if !strings.Contains(h.stdout.String(), c.want) {
				t.Errorf("the refusal does not say %q:\n%s", c.want, h.stdout.String())
			}
			h.noCalls(t)
		})
	}
}

// TestSymlinkedEnvironmentFileIsSaidToBeALink is issue 11 item 3: a
// symbolic link in the environments directory is reported as what it is,
// with exit 2, not as a file "deleted in this pull request", and is not
// followed.
func TestSymlinkedEnvironmentFileIsSaidToBeALink(t *testing.T) {
	h := newHarness(t)
	target := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(target, []byte("name: stolen\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(h.dir, "environments", "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	h.openPR("environments/linked.yaml")
	h.prEvent("pull_request.opened.json")
	if code := h.run(); code != 2 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	c, ok := h.botComments()["linked"]
	if !ok || !strings.Contains(c.Body, "is a symbolic link") || strings.Contains(c.Body, "deleted") {
		t.Errorf("comment = %q", c.Body)
	}
	if strings.Contains(h.summary(), "is deleted") || !strings.Contains(h.stdout.String(), "file=environments/linked.yaml") {
		t.Errorf("summary:\n%s\nlog:\n%s", h.summary(), h.stdout.String())
	}
	if h.sts.count() != 0 {
		t.Error("an OIDC role was assumed for a symbolic link")
	}
}

// TestNoEnvironmentFilesYet is issue 11 item 16: the quickstart's pull
// request adds the workflow before the first environment file; there is
// nothing to plan, which is exit 0, not bad input.
func TestNoEnvironmentFilesYet(t *testing.T) {
	for _, name := range []string{"no directory", "empty directory"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			if err := os.RemoveAll(filepath.Join(h.dir, "environments")); err != nil {
				t.Fatal(err)
			}
			if name == "empty directory" {
				if err := os.Mkdir(filepath.Join(h.dir, "environments"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			h.openPR(".github/workflows/deploybot.yml")
			h.prEvent("pull_request.opened.json")
			h.runOK()
			if !strings.Contains(h.summary(), "no environment files in `environments` yet, so there is nothing to plan") {
				t.Errorf("summary:\n%s", h.summary())
			}
			if out := h.outputs(); out["result"] != "no_changes" || out["environments"] != "[]" {
				t.Errorf("outputs = %v", out)
			}
			if h.awsCalls() != 0 {
				t.Error("AWS was called")
			}
		})
	}
}

// TestDuplicateNamesAreRefusedAsValidateDoes is issue 11 item 7: a pull
// request adding a second `name: staging` is refused with exit 2 and
// FILE:LINE for both files, nothing is planned, and one comment says so.
func TestDuplicateNamesAreRefusedAsValidateDoes(t *testing.T) {
	h := newHarness(t)
	b, err := os.ReadFile(filepath.Join(h.dir, "environments", "staging.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "environments", "staging-copy.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	h.openPR("environments/staging-copy.yaml")
	h.prEvent("pull_request.opened.json")
	if code := h.run(); code != 2 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	for _, want := range []string{
		`::error file=environments/staging-copy.yaml,line=1,title=deploybot::name: environment "staging" is also defined in environments/staging.yaml:1`,
		`::error file=environments/staging.yaml,line=1,title=deploybot::name: environment "staging" is also defined in environments/staging-copy.yaml:1`,
	} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, h.stdout.String())
		}
	}
	cs := h.gh.Comments(repoFull, 2)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "environments/staging-copy.yaml:1: name: environment \"staging\" is also defined") {
		t.Errorf("comments = %+v", cs)
	}
	if h.sts.count() != 0 || h.awsCalls() != 0 {
		t.Error("a duplicate was planned")
	}
}

// TestDestroyConfirmsTheResolvedName is issue 11 item 6: `environment:
// environments/staging.yaml` with the same string as confirm is refused;
// the confirmation must be the name the file gives.
func TestDestroyConfirmsTheResolvedName(t *testing.T) {
	h := newHarness(t)
	h.event("workflow_dispatch", "workflow_dispatch.teardown.DERIVED.json", nil)
	h.oidc("workflow_dispatch", "refs/heads/master", "staging")
	h.env["INPUT_OPERATION"], h.env["INPUT_ENVIRONMENT"], h.env["INPUT_CONFIRM"] = "destroy", "environments/staging.yaml", "environments/staging.yaml"
	if code := h.run(); code != 2 || !strings.Contains(h.stdout.String(), `the confirm input must be exactly the environment's name \"staging\"`) &&
		!strings.Contains(h.stdout.String(), `the confirm input must be exactly the environment's name "staging"`) {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	h.noCalls(t)
	h.resetFiles()
	h.env["INPUT_CONFIRM"] = "staging"
	if code := h.run(); code != 0 {
		t.Fatalf("with the name: exit %d\n%s", code, h.stdout.String())
	}
}

// TestPersonalAccessTokenOwnsItsComment is issue 11 item 5: with a PAT as
// github-token, the re-plan edits the user's own comment (no new one each
// run), nobody else's marker counts, and the merge finds the reviewed plan.
func TestPersonalAccessTokenOwnsItsComment(t *testing.T) {
	h := newHarness(t)
	const pat = "ghp_platform_engineer_pat_simulated"
	h.gh.AddUserToken(pat, "platform-alice")
	h.env["INPUT_GITHUB-TOKEN"] = pat
	h.openPR("environments/staging.yaml")
	// Another bot's comment with a marker for the same environment and a
	// forged fingerprint: not deploybot's.
	h.gh.AddComment(repoFull, 2, "other-bot[bot]", "Bot", render.Marker("staging", "0123456789abcdef", headSHA, baseSHA)+"\nforged")
	h.prEvent("pull_request.opened.json")
	for i := 0; i < 2; i++ {
		if i == 1 {
			h.writeEnv("staging", "1024", "10.20.0.0/16")
		}
		h.resetFiles()
		if code := h.run(); code != 0 {
			t.Fatalf("plan %d: exit %d\n%s", i, code, h.stdout.String())
		}
	}
	var mine []githubsim.Comment
	for _, c := range h.gh.Comments(repoFull, 2) {
		if c.User == "platform-alice" {
			mine = append(mine, c)
		}
	}
	if len(mine) != 1 || mine[0].Edits != 1 {
		t.Fatalf("the PAT user's comments = %+v (want one, edited once)", mine)
	}
	reviewed, _ := render.ParseMarker(mine[0].Body)

	h.merge("environments/staging.yaml")
	h.resetFiles()
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	if strings.Contains(h.summary(), "nothing was reviewed") || strings.Contains(h.stdout.String(), "nothing was reviewed") {
		t.Errorf("the merge did not find the reviewed plan:\n%s", h.summary())
	}
	deps := h.gh.Deployments(repoFull)
	if len(deps) != 1 || !strings.Contains(string(deps[0].Payload), reviewed.Fingerprint) {
		t.Errorf("the deployment does not carry the reviewed fingerprint %s: %+v", reviewed.Fingerprint, deps)
	}
}

// TestPlanWhoseCommentCannotBeSavedFails is issue 11 item 13: a GitHub 5xx
// is retried; a comment that still cannot be saved fails the plan job, so
// that the merge is not later found without a reviewed plan.
func TestPlanWhoseCommentCannotBeSavedFails(t *testing.T) {
	t.Run("transient", func(t *testing.T) {
		h := newHarness(t)
		h.openPR("environments/staging.yaml")
		h.prEvent("pull_request.opened.json")
		h.gh.ServerErrors(502, 503)
		h.runOK()
		if len(h.botComments()) != 1 || !strings.Contains(h.stdout.String(), "GitHub answered HTTP 502") {
			t.Errorf("comments %v\n%s", h.botComments(), h.stdout.String())
		}
	})
	t.Run("lasting", func(t *testing.T) {
		h := newHarness(t)
		h.openPR("environments/staging.yaml")
		h.prEvent("pull_request.opened.json")
		h.gh.ServerErrorsFor("POST", "/comments", 500, 500, 500, 500)
		if code := h.run(); code != 1 {
			t.Fatalf("exit %d\n%s", code, h.stdout.String())
		}
		if !strings.Contains(h.stdout.String(), "staging: the plan is not on the pull request, so a merge would find no reviewed plan") {
			t.Errorf("log:\n%s", h.stdout.String())
		}
		if len(h.gh.Comments(repoFull, 2)) != 0 {
			t.Errorf("comments = %+v", h.gh.Comments(repoFull, 2))
		}
	})
}

// TestAmbiguousGitHubFailuresDuplicateNothing: a POST that GitHub carried
// out before answering 5xx (a request stopped after 10 s, docs/research/github-actions.md
// §3.3) is not simply sent again: the PR comment, the Deployment and its
// statuses each exist once, as when nothing failed.
func TestAmbiguousGitHubFailuresDuplicateNothing(t *testing.T) {
	h := newHarness(t)
	h.planPR(func() { h.gh.ServerErrorsAfterWrite("POST", "/comments", 502) })
	if cs := h.gh.Comments(repoFull, 2); len(cs) != 1 {
		t.Errorf("%d comments on the pull request, want 1:\n%s", len(cs), h.stdout.String())
	}

	h.merge("environments/staging.yaml")
	h.resetFiles()
	// The create, then the in_progress and the final status, each done
	// and answered with a server error.
	h.gh.ServerErrorsAfterWrite("POST", "/deployments", 502, 503, 504)
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	deps := h.gh.Deployments(repoFull)
	if len(deps) != 1 {
		t.Fatalf("%d deployments, want 1:\n%s", len(deps), h.stdout.String())
	}
	var states []string
	for _, st := range deps[0].Statuses {
		states = append(states, st.State)
	}
	if diff := cmp.Diff([]string{"in_progress", "success"}, states); diff != "" {
		t.Errorf("deployment states (-want +got):\n%s", diff)
	}
	if n := strings.Count(h.stdout.String(), "GitHub had done it before failing"); n != 3 {
		t.Errorf("said %d times that GitHub had done it, want 3:\n%s", n, h.stdout.String())
	}
	if h.outputs()["result"] != "applied" {
		t.Errorf("outputs = %v", h.outputs())
	}
}

// TestActionLogIsTheEventSink is issue 12's one progress type: the
// Action's own lines and warnings and deploy's progress reach the log
// through event.Actions alone, in its one form ("[env] subject: message",
// "::warning::[env] message"), redacted and escaped by it.
func TestActionLogIsTheEventSink(t *testing.T) {
	h := newHarness(t)
	h.planPR(nil)
	h.merge("environments/staging.yaml")
	h.resetFiles()
	h.gh.ServerErrorsFor("POST", "/repos/Codertocat/Hello-World/deployments", 500, 500, 500, 500)
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	log := h.stdout.String()
	for _, want := range []string{
		"\n[staging] selected (environments/staging.yaml)\n",
		"\n[staging] lock: ",
		"\n::warning::[staging] could not record a GitHub Deployment: create deployment of staging: ",
		"\n[staging] apply: applied\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no %q:\n%s", want, log)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.HasPrefix(l, "::") && !strings.HasPrefix(l, "::add-mask::") && !strings.HasPrefix(l, "::warning::") && !strings.HasPrefix(l, "::notice::") {
			t.Errorf("a line event.Actions does not write: %q", l)
		}
	}
}

// TestGHEDataResidencyAPIURL is issue 11 item 14: the runner's
// GITHUB_API_URL is used exactly; GHE.com has no /api/v3.
func TestGHEDataResidencyAPIURL(t *testing.T) {
	h := newHarness(t)
	h.gh.DataResidency()
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.runOK()
	if len(h.botComments()) != 1 {
		t.Error("no comment")
	}
	if u := h.gh.Unexpected(); len(u) != 0 {
		t.Errorf("requests GitHub would not know: %v", u)
	}
}

// TestWrongOIDCRequestTokenIsFinal is issue 11 item 15: a 401 (a request
// token that is not the job's) or a 403 (a job without `id-token: write`)
// from the token endpoint is not retried (no 14 s of waits), and the
// message is one line that says which input or permission is wrong, naming
// the environment once; a variable the runner did not set is named without
// asking at all.
func TestWrongOIDCRequestTokenIsFinal(t *testing.T) {
	for _, c := range []struct {
		name     string
		setup    func(h *harness)
		requests int
		want     string
	}{
		{"401 a request token that is not the job's", func(h *harness) {
			h.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "not-this-jobs-token"
		}, 1, "::error title=deploybot::qa: GitHub refused the OIDC token request (HTTP 401): ACTIONS_ID_TOKEN_REQUEST_TOKEN is not this job's; let the runner set it"},
		{"403 a job without id-token: write", func(h *harness) {
			h.gh.SetOIDC(githubsim.OIDC{RequestToken: oidcToken, Repository: repoFull, Ref: "refs/pull/2/merge",
				EventName: "pull_request", NoIDTokenPermission: true})
		}, 1, "::error title=deploybot::qa: GitHub refused the OIDC token request (HTTP 403): the job needs `permissions: id-token: write`"},
		{"no request token", func(h *harness) { delete(h.env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN") },
			0, "::error title=deploybot::qa: no GitHub OIDC token: ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set; give the job `permissions: id-token: write`"},
		{"no request URL", func(h *harness) { delete(h.env, "ACTIONS_ID_TOKEN_REQUEST_URL") },
			0, "::error title=deploybot::qa: no GitHub OIDC token: ACTIONS_ID_TOKEN_REQUEST_URL is not set; give the job `permissions: id-token: write`"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.openPR("environments/qa.yaml")
			h.prEvent("pull_request.opened.json")
			c.setup(h)
			before := h.clock.Now()
			if code := h.run(); code != 1 {
				t.Fatalf("exit %d\n%s", code, h.stdout.String())
			}
			if waited := h.clock.Now().Sub(before); waited > time.Second {
				t.Errorf("waited %s on a final refusal", waited)
			}
			if n := h.gh.CountRequests("GET", "idtoken"); n != c.requests {
				t.Errorf("%d token requests, want %d", n, c.requests)
			}
			log := h.stdout.String()
			var errLines []string
			for _, l := range strings.Split(log, "\n") {
				if strings.HasPrefix(l, "::error") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.HasPrefix(errLines[0], c.want) {
				t.Errorf("error lines %q, want one starting %q\nlog:\n%s", errLines, c.want, log)
			}
			if strings.Contains(log, "qa: qa:") || strings.Contains(log, "plan qa") {
				t.Errorf("the environment's name is repeated:\n%s", log)
			}
			if strings.Contains(log, "attempt") {
				t.Errorf("a final refusal was retried:\n%s", log)
			}
			if c := h.botComments()["qa"]; strings.Count(c.Body, "\n") > 12 {
				t.Errorf("the comment is not short:\n%s", c.Body)
			}
		})
	}
}

// TestReattemptTakesTheLockOver is issue 11 item 19 in Actions: a run
// killed while holding the lock (a cancelled job) leaves its lease; the
// re-run (attempt 2 of the same run) takes it over and says so; another run
// is still refused, naming the holder.
func TestReattemptTakesTheLockOver(t *testing.T) {
	for _, c := range []struct {
		name     string
		runID    string
		takeover bool
	}{
		{"re-attempt of the same run", "4242", true},
		{"another run", "4100", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.engine = action.DeployEngine{Kinds: h.engine.(action.DeployEngine).Kinds, Prefect: h.engine.(action.DeployEngine).Prefect}
			held := lock.HolderFromEnv("apply", func(k string) string {
				return map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": c.runID, "GITHUB_RUN_ATTEMPT": "1",
					"GITHUB_REPOSITORY": repoFull, "GITHUB_ACTOR": "octocat"}[k]
			})
			if _, err := lock.Acquire(context.Background(), ssm.NewFromConfig(h.world.Config()), h.clock, "staging", held, deploy.LockTTL); err != nil {
				t.Fatal(err)
			}
			h.event("workflow_dispatch", "workflow_dispatch.teardown.DERIVED.json", nil)
			h.oidc("workflow_dispatch", "refs/heads/master", "staging")
			h.env["INPUT_OPERATION"], h.env["INPUT_ENVIRONMENTS"] = "apply", "staging"
			h.env["GITHUB_RUN_ATTEMPT"] = "2"
			code := h.run()
			if !c.takeover {
				if code != 1 || !strings.Contains(h.stdout.String(), "environment staging is locked by octocat (run https://github.com/"+repoFull+"/actions/runs/4100") {
					t.Fatalf("exit %d\n%s", code, h.stdout.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, h.stdout.String())
			}
			for _, want := range []string{"took over the lock of environment staging held by octocat", "attempt 1 of this same workflow run"} {
				if !strings.Contains(h.stdout.String(), want) || !strings.Contains(h.summary(), want) {
					t.Errorf("%q is not in the log and the summary:\n%s\n%s", want, h.stdout.String(), h.summary())
				}
			}
		})
	}
}

// TestDestroySaysTheSecretIsOnlyScheduled is issue 11 item 22 in Actions.
func TestDestroySaysTheSecretIsOnlyScheduled(t *testing.T) {
	h := newHarness(t)
	h.event("workflow_dispatch", "workflow_dispatch.teardown.DERIVED.json", nil)
	h.oidc("workflow_dispatch", "refs/heads/master", "staging")
	h.env["INPUT_OPERATION"], h.env["INPUT_ENVIRONMENTS"] = "apply", "staging"
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}
	h.resetFiles()
	delete(h.env, "INPUT_ENVIRONMENTS")
	h.env["INPUT_OPERATION"], h.env["INPUT_ENVIRONMENT"], h.env["INPUT_CONFIRM"] = "destroy", "staging", "staging"
	if code := h.run(); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, h.stdout.String())
	}
	for _, where := range []string{h.stdout.String(), h.summary()} {
		if !strings.Contains(where, "only scheduled for deletion") || !strings.Contains(where, "restores it") {
			t.Errorf("the destroy does not say the secret is only scheduled for deletion:\n%s", where)
		}
	}
}

// TestEveryCredentialIsRedactedEverywhere is issue 11 item 8: whatever a
// lower layer puts in an error (here: every credential the Action holds),
// no sink shows any of them: the log, the error comment, the summary, the
// outputs and the plan JSON.
func TestEveryCredentialIsRedactedEverywhere(t *testing.T) {
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.engine = leakyEngine{Engine: h.engine, h: h}
	if code := h.run(); code != 1 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	h.noSecretLeaks()
	for where, text := range map[string]string{"log": logWithoutMasks(h.stdout.String()), "summary": h.summary(), "comment": h.botComments()["staging"].Body} {
		for _, s := range []string{jobToken, oidcToken} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a credential (%.8s…)", where, s)
			}
		}
		if !strings.Contains(text, "[redacted]") {
			t.Errorf("%s redacted nothing:\n%s", where, text)
		}
	}
}

// leakyEngine fails every plan with an error quoting every credential the
// run holds, as a careless lower layer (or an echoing service) might.
type leakyEngine struct {
	action.Engine
	h *harness
}

func (e leakyEngine) Plan(ctx context.Context, r action.Request) (*deploy.Result, error) {
	creds := append([]string{prefectKey, jobToken, oidcToken}, e.h.sts.secrets()...)
	return nil, errors.New("request echoed: " + strings.Join(creds, " ; "))
}

func logWithoutMasks(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFileNamesCannotInjectMarkup is issue 11 item 4: file names come from
// the pull request. One with markdown, HTML and a mention must not render
// its markup or ping anyone in the error comment, the "is deleted" comment
// or the summary; one with line breaks must not add a heading to the
// summary or a workflow command to the log.
func TestFileNamesCannotInjectMarkup(t *testing.T) {
	h := newHarness(t)
	hostile := "environments/y` **@acme-admins** <img src=x> `.yaml"
	newline := "environments/x\n## pwned\r::warning::injected.yaml"
	if err := os.WriteFile(filepath.Join(h.dir, filepath.FromSlash(hostile)), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, filepath.FromSlash(newline)), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.gh.AddPull(repoFull, &githubsim.Pull{Number: 2, HeadSHA: headSHA, BaseSHA: baseSHA, HeadRef: "changes", BaseRef: "master", Files: []githubsim.File{
		{Filename: hostile, Status: "added"},
		{Filename: newline, Status: "added"},
		{Filename: "environments/gone <b>@acme-admins<b>.yaml", Status: "removed"},
		{Filename: "environments/gone2\n# heading\n::error::x.yaml", Status: "removed"},
	}})
	h.prEvent("pull_request.opened.json")
	if code := h.run(); code != 2 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	comments := h.gh.Comments(repoFull, 2)
	if len(comments) != 4 {
		t.Fatalf("want 2 error and 2 deleted comments, got %d", len(comments))
	}
	texts := map[string]string{"summary": h.summary()}
	for i, c := range comments {
		texts[fmt.Sprintf("comment %d", i)] = c.Body
	}
	for where, text := range texts {
		// Outside code, no line the names made; a mention outside a code
		// span is broken up (GitHub links mentions only in text, never
		// inside code).
		fenced := false
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "```") {
				fenced = !fenced
				continue
			}
			if fenced {
				continue
			}
			if t2 := strings.TrimSpace(line); strings.HasPrefix(t2, "## pwned") || strings.HasPrefix(t2, "# heading") || strings.HasPrefix(t2, "::") {
				t.Errorf("%s has an injected line %q:\n%s", where, line, text)
			}
			// Markup is shown literally inside code; outside it, it is
			// escaped (entities, backslashes, a broken-up mention).
			for _, bad := range []string{"<img", "<b>", "@acme-admins", "**@"} {
				if outsideCode(line, bad) {
					t.Errorf("%s renders %q: %q", where, bad, line)
				}
			}
		}
	}
	for _, line := range strings.FieldsFunc(h.stdout.String(), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if strings.HasPrefix(strings.TrimSpace(line), "::warning::injected") || strings.HasPrefix(strings.TrimSpace(line), "::error::x") {
			t.Errorf("the log has an injected workflow command: %q", line)
		}
		if strings.HasPrefix(line, "## pwned") {
			t.Errorf("the log has an injected line: %q", line)
		}
	}
}

// outsideCode says whether s occurs in line outside inline code spans: a
// span opens with a run of N backticks and closes at the next run of
// exactly N (GFM §6.1).
func outsideCode(line, s string) bool {
	open := 0 // the opening run's length, 0 outside a span
	for i := 0; i < len(line); {
		if line[i] == '`' {
			j := i
			for j < len(line) && line[j] == '`' {
				j++
			}
			switch n := j - i; {
			case open == 0:
				open = n
			case open == n:
				open = 0
			}
			i = j
			continue
		}
		if open == 0 && strings.HasPrefix(line[i:], s) {
			return true
		}
		i++
	}
	return false
}
