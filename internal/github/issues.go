package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// DriftLabel marks deploybot's drift issues.
const DriftLabel = "deploybot-drift"

// DriftMarker is the hidden first line of the drift issue of env.
func DriftMarker(env string) string { return "<!-- deploybot:drift env=" + env + " -->" }

// findDriftIssue returns the open drift issue of env, or nil: one with the
// label and env's marker, opened by the account this client writes as.
func (c *Client) findDriftIssue(ctx context.Context, owner, repo, env string) (*gh.Issue, error) {
	login, err := c.Login(ctx)
	if err != nil {
		return nil, err
	}
	opts := &gh.IssueListByRepoOptions{State: "open", Labels: []string{DriftLabel}, ListOptions: gh.ListOptions{PerPage: perPage}}
	marker := DriftMarker(env)
	for {
		page, resp, err := c.rest.Issues.ListByRepo(ctx, owner, repo, opts)
		if err != nil {
			return nil, fmt.Errorf("list drift issues of %s/%s: %w", owner, repo, err)
		}
		for _, is := range page {
			first, _, _ := strings.Cut(is.GetBody(), "\n")
			if is.PullRequestLinks == nil && strings.TrimSpace(first) == marker && strings.EqualFold(is.GetUser().GetLogin(), login) {
				return is, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

// UpsertDriftIssue opens the drift issue of env, or updates the open one
// (no call when nothing changed). body must not carry the marker: it is added.
func (c *Client) UpsertDriftIssue(ctx context.Context, owner, repo, env, title, body string) (url string, created bool, err error) {
	full := CutBody(DriftMarker(env)+"\n"+c.redact(body), MaxCommentChars-1024)
	title = c.redact(title)
	is, err := c.findDriftIssue(ctx, owner, repo, env)
	if err != nil {
		return "", false, err
	}
	if is != nil {
		if is.GetBody() == full && is.GetTitle() == title {
			return is.GetHTMLURL(), false, nil
		}
		is, _, err = c.rest.Issues.Edit(ctx, owner, repo, is.GetNumber(), &gh.IssueRequest{Title: gh.String(title), Body: gh.String(full)})
		if err != nil {
			return "", false, fmt.Errorf("update drift issue of %s: %w", env, err)
		}
		return is.GetHTMLURL(), false, nil
	}
	err = c.create(ctx, "open drift issue of "+env, func() (err error) {
		is, _, err = c.rest.Issues.Create(ctx, owner, repo, &gh.IssueRequest{Title: gh.String(title), Body: gh.String(full), Labels: &[]string{DriftLabel}})
		return err
	}, func() (bool, error) {
		is, err = c.findDriftIssue(ctx, owner, repo, env)
		return is != nil, err
	})
	if err != nil {
		return "", false, fmt.Errorf("open drift issue of %s: %w", env, err)
	}
	return is.GetHTMLURL(), true, nil
}

// CloseDriftIssue closes the open drift issue of env, if any, after saying
// why in a comment. It reports whether it closed one.
func (c *Client) CloseDriftIssue(ctx context.Context, owner, repo, env, why string) (bool, error) {
	is, err := c.findDriftIssue(ctx, owner, repo, env)
	if err != nil || is == nil {
		return false, err
	}
	why = c.redact(why)
	err = c.create(ctx, "comment on drift issue of "+env, func() error {
		_, _, err := c.rest.Issues.CreateComment(ctx, owner, repo, is.GetNumber(), &gh.IssueComment{Body: gh.String(why)})
		return err
	}, func() (bool, error) {
		login, err := c.Login(ctx)
		if err != nil {
			return false, err
		}
		all, err := c.listComments(ctx, owner, repo, is.GetNumber())
		for _, ic := range all {
			if ic.GetBody() == why && strings.EqualFold(ic.GetUser().GetLogin(), login) {
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		return false, fmt.Errorf("comment on drift issue of %s: %w", env, err)
	}
	if _, _, err := c.rest.Issues.Edit(ctx, owner, repo, is.GetNumber(), &gh.IssueRequest{State: gh.String("closed"), StateReason: gh.String("completed")}); err != nil {
		return false, fmt.Errorf("close drift issue of %s: %w", env, err)
	}
	return true, nil
}
