package action

import (
	"context"

	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/github"
)

// labelPR sets deploybot's label on the pull request from this run's plans,
// tfcmt's convention (docs/research/pr-comment-bots.md §3): destroy when a
// plan destroys or replaces anything, changes when a plan changes anything,
// no-changes otherwise. With an environment that could not be planned the
// labels are left as they are: the run does not know. A label that is
// already right costs no write (github.Client.SetPRLabel); one that cannot
// be set (the token lacks issues: write) is a warning, not a failed plan.
func (r *run) labelPR(ctx context.Context, number int) {
	want, unknown := prLabel(r.results)
	if unknown != "" {
		r.say(event.Info, "", "labels: left as they are (%s was not planned)", unknown)
		return
	}
	c, err := r.client()
	if err == nil {
		var wrote bool
		if wrote, err = c.SetPRLabel(ctx, r.owner, r.repo, number, want); err == nil {
			if wrote {
				r.say(event.Info, "", "labels: pull request #%d is now %s", number, want.Name)
			}
			return
		}
	}
	r.say(event.Warning, "", "could not label pull request #%d %s (the labels input needs issues: write): %v", number, want.Name, err)
}

// prLabel is the label for a run's plans, or the name of an environment
// that could not be planned.
func prLabel(results []*envResult) (github.Label, string) {
	want := github.PRLabels.NoChanges
	for _, res := range results {
		switch {
		case res.Err != nil || res.Plan == nil:
			return github.Label{}, res.File.Name
		case len(res.Plan.Destructive()) > 0:
			want = github.PRLabels.Destroy
		case res.Plan.HasChanges() && want != github.PRLabels.Destroy:
			want = github.PRLabels.Changes
		}
	}
	return want, ""
}
