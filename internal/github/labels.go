package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// Label is one of deploybot's pull-request labels.
type Label struct {
	Name, Color, Description string
}

// PRLabels are deploybot's pull-request labels, tfcmt's convention
// (docs/research/pr-comment-bots.md §3): one of them marks what the plans
// of the pull request would do.
var PRLabels = struct{ Changes, NoChanges, Destroy Label }{
	Changes:   Label{Name: "deploybot:changes", Color: "1d76db", Description: "deploybot: merging changes AWS"},
	NoChanges: Label{Name: "deploybot:no-changes", Color: "0e8a16", Description: "deploybot: merging changes nothing in AWS"},
	Destroy:   Label{Name: "deploybot:destroy", Color: "d93f0b", Description: "deploybot: merging destroys or replaces AWS resources"},
}

// SetPRLabel makes want the only one of deploybot's labels on pull request
// number, and leaves every other label alone. It makes no write when the
// pull request is already labelled so (one read: the pull request's
// labels), and creates want in the repository, with its colour and
// description, only when it does not exist yet. Labels need the token's
// issues: write (docs/research/pr-comment-bots.md §0, TF-via-PR#462). It
// reports whether it wrote anything.
func (c *Client) SetPRLabel(ctx context.Context, owner, repo string, number int, want Label) (bool, error) {
	have := map[string]string{} // lower-case name → name as GitHub has it
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := c.rest.Issues.ListLabelsByIssue(ctx, owner, repo, number, opts)
		if err != nil {
			return false, fmt.Errorf("list the labels of pull request #%d: %w", number, err)
		}
		for _, l := range page {
			have[strings.ToLower(l.GetName())] = l.GetName()
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	wrote := false
	if _, ok := have[strings.ToLower(want.Name)]; !ok {
		if err := c.ensureLabel(ctx, owner, repo, want); err != nil {
			return false, err
		}
		if _, _, err := c.rest.Issues.AddLabelsToIssue(ctx, owner, repo, number, []string{want.Name}); err != nil {
			return false, fmt.Errorf("label pull request #%d %s: %w", number, want.Name, err)
		}
		wrote = true
	}
	for _, l := range []Label{PRLabels.Changes, PRLabels.NoChanges, PRLabels.Destroy} {
		name, ok := have[strings.ToLower(l.Name)]
		if !ok || strings.EqualFold(l.Name, want.Name) {
			continue
		}
		// go-github puts the name in the path as it is.
		if _, err := c.rest.Issues.RemoveLabelForIssue(ctx, owner, repo, number, url.PathEscape(name)); err != nil && !isStatus(err, http.StatusNotFound) {
			return wrote, fmt.Errorf("remove label %s from pull request #%d: %w", name, number, err)
		}
		wrote = true
	}
	return wrote, nil
}

// ensureLabel creates l in the repository when it does not exist, so that
// it gets its colour (adding a missing label to an issue creates it grey:
// github/docs#35718).
func (c *Client) ensureLabel(ctx context.Context, owner, repo string, l Label) error {
	_, _, err := c.rest.Issues.GetLabel(ctx, owner, repo, url.PathEscape(l.Name))
	if err == nil {
		return nil
	}
	if !isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("look up label %s: %w", l.Name, err)
	}
	_, _, err = c.rest.Issues.CreateLabel(ctx, owner, repo, &gh.Label{Name: gh.String(l.Name), Color: gh.String(l.Color), Description: gh.String(l.Description)})
	if err != nil && !isStatus(err, http.StatusUnprocessableEntity) { // 422 already_exists: made meanwhile
		return fmt.Errorf("create label %s: %w", l.Name, err)
	}
	return nil
}

func isStatus(err error, code int) bool {
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == code
}
