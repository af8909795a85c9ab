package action_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/github"
)

func labelWrites(h *harness) int {
	return h.gh.CountRequests("POST", "/labels") + h.gh.CountRequests("DELETE", "/labels/")
}

// With the labels input, the pull request carries the one label that says
// what merging it does; the label is made with its colour; a plan run that
// changes nothing about it writes nothing.
func TestLabelsFollowThePlan(t *testing.T) {
	h := newHarness(t)
	h.env["INPUT_LABELS"] = "true"
	h.openPR("environments/staging.yaml")
	// A label someone else set, and a stale one of ours.
	h.gh.Do(func() {
		h.repo.Pulls[2].Labels = []string{"team:data", github.PRLabels.NoChanges.Name}
	})
	h.prEvent("pull_request.opened.json")
	h.runOK()
	if diff := cmp.Diff([]string{"team:data", "deploybot:changes"}, h.gh.PullLabels(repoFull, 2)); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if l, ok := h.gh.RepoLabel(repoFull, "deploybot:changes"); !ok || l.Color != "1d76db" || l.Description == "" {
		t.Errorf("the label was not made with its colour and description: %+v", l)
	}

	h.resetFiles()
	h.gh.ResetRequests()
	h.prEvent("pull_request.synchronize.json")
	if code := h.run(); code != 0 {
		t.Fatalf("synchronize: exit %d\n%s", code, h.stdout.String())
	}
	if n := labelWrites(h); n != 0 {
		t.Errorf("an unchanged label made %d writes", n)
	}
	if n := h.gh.CountRequests("GET", "/issues/2/labels"); n != 1 {
		t.Errorf("%d reads of the labels, want 1", n)
	}
}

func TestLabelsAreOffByDefault(t *testing.T) {
	h := newHarness(t)
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.runOK()
	for _, r := range h.gh.Requests() {
		if strings.Contains(r.Path, "/labels") {
			t.Errorf("a label request without the labels input: %s %s", r.Method, r.Path)
		}
	}
	h.env["INPUT_LABELS"] = "yes please"
	h.resetFiles()
	if code := h.run(); code != 2 {
		t.Errorf("labels: %q exits %d, want 2", h.env["INPUT_LABELS"], code)
	}
}

// A job token without issues: write cannot label: the plan and its comment
// still succeed, and a warning says what is missing.
func TestLabelWithoutIssuesWriteWarns(t *testing.T) {
	h := newHarness(t)
	h.env["INPUT_LABELS"] = "true"
	h.gh.SetTokenPermissions(jobToken, map[string]string{"pull-requests": "write", "contents": "read", "id-token": "write"})
	h.openPR("environments/staging.yaml")
	h.prEvent("pull_request.opened.json")
	h.runOK()
	if len(h.botComments()) != 1 {
		t.Errorf("the plan comment was not written")
	}
	if !strings.Contains(h.stdout.String(), "::warning::could not label pull request #2 deploybot:changes (the labels input needs issues: write)") {
		t.Errorf("no warning:\n%s", h.stdout.String())
	}
	if got := h.gh.PullLabels(repoFull, 2); len(got) != 0 {
		t.Errorf("labels = %v", got)
	}
}
