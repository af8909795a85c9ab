package action_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/prefect"
)

// TestDriftIssueShowsAWorkPoolDefaultChangedInPrefect (issue 9): with the
// real resource kinds, a work pool default someone changed in the Prefect
// UI is drift: the scheduled check opens the environment's drift issue
// with the pool's field in its plan, the next apply puts the default back,
// and the check after that closes the issue.
func TestDriftIssueShowsAWorkPoolDefaultChangedInPrefect(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	de := h.engine.(action.DeployEngine)
	de.Kinds = kinds.All
	h.engine = de
	h.merge("environments/staging.yaml")
	if code := h.run(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, h.stdout.String())
	}

	// Someone points the pool's flow runs at the account's default cluster.
	ctx := context.Background()
	c, err := prefect.New(h.pf.URL(), prefectKey, prefect.WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	wp, err := c.ReadWorkPool(ctx, "staging-pool")
	if err != nil {
		t.Fatal(err)
	}
	wp.BaseJobTemplate["variables"].(map[string]any)["properties"].(map[string]any)["cluster"].(map[string]any)["default"] = "default"
	if err := c.UpdateWorkPool(ctx, "staging-pool", prefect.WorkPoolUpdate{BaseJobTemplate: wp.BaseJobTemplate}); err != nil {
		t.Fatal(err)
	}

	check := func() map[string]string {
		t.Helper()
		h.driftCheck()
		bodies := map[string]string{}
		for _, i := range h.gh.Issues(repoFull) {
			if strings.Contains(i.Title, "drift in staging ") {
				bodies[i.State] = i.Body
			}
		}
		return bodies
	}
	issue, ok := check()["open"]
	if !ok {
		t.Fatalf("no open drift issue for staging: %+v", h.gh.Issues(repoFull))
	}
	for _, want := range []string{"AWS or the Prefect work pool no longer matches", "prefect_work_pool.main", "defaults.cluster", `"default"`, "arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-staging", "0 to add, 1 to change"} {
		if !strings.Contains(issue, want) {
			t.Errorf("the drift issue does not say %q:\n%s", want, issue)
		}
	}

	// A check that cannot reach Prefect cannot read the pool, so it cannot
	// say the drift is gone: the issue stays open.
	withPrefect := de
	de.Prefect = func(*config.Environment, string, clock.Clock) (deploy.Prefect, error) {
		return nil, errors.New("no Prefect for this check")
	}
	h.engine = de
	if _, ok := check()["open"]; !ok {
		t.Fatalf("a drift check that could not read the pool closed the issue: %+v", h.gh.Issues(repoFull))
	}
	if !strings.Contains(h.stdout.String(), "could not read prefect_work_pool.main") {
		t.Errorf("the check does not say it could not read the pool:\n%s", h.stdout.String())
	}
	h.engine = withPrefect

	h.merge("environments/staging.yaml")
	if code := h.run(); code != 0 {
		t.Fatalf("apply putting the default back: exit %d\n%s", code, h.stdout.String())
	}
	if wp, err = c.ReadWorkPool(ctx, "staging-pool"); err != nil {
		t.Fatal(err)
	}
	if got := wp.BaseJobTemplate["variables"].(map[string]any)["properties"].(map[string]any)["cluster"].(map[string]any)["default"]; got != "arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-staging" {
		t.Fatalf("the apply left the cluster default %v", got)
	}
	if bodies := check(); len(bodies) != 1 || bodies["closed"] == "" {
		t.Fatalf("staging's drift issue after the apply: %v", bodies)
	}
	h.noSecretLeaks()
}
