package action_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/githubsim"
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
			if code := h.run(); code != 0 {
				t.Fatalf("exit %d\n%s", code, h.stdout.String())
			}
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
	if code := h.run(); code != 0 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	if h.awsCalls() != 0 || len(h.gh.Requests()) != 0 {
		t.Errorf("fork PR made %d AWS calls and %d GitHub requests", h.awsCalls(), len(h.gh.Requests()))
	}
	if !strings.Contains(h.summary(), "fork mallory/Hello-World") || !strings.Contains(h.stdout.String(), "::notice::") {
		t.Errorf("the fork skip is not explained:\nsummary: %s\nlog: %s", h.summary(), h.stdout.String())
	}
	if out := h.outputs(); out["result"] != "skipped" || out["changes"] != "false" {
		t.Errorf("outputs = %v", out)
	}
}

func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.gh.SecondaryRateLimit(2, 403, 90*time.Second)
	before := h.clock.Now()
	if code := h.run(); code != 0 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
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
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.gh.SetOIDC(githubsim.OIDC{RequestToken: oidcToken, Repository: repoFull, Ref: "refs/pull/2/merge", EventName: "pull_request", FailNext: 2})
	h.sts.failNext = 3 // "Couldn't retrieve verification key" three times
	if code := h.run(); code != 0 {
		t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
	if h.sts.count() != 4 {
		t.Errorf("STS calls = %d, want 4 (3 IDPCommunicationError, then success)", h.sts.count())
	}
	if len(h.botComments()) != 1 {
		t.Error("no plan comment")
	}
}

func TestWrongRoleTrustFailsThePlan(t *testing.T) {
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
