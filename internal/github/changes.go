package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// ZeroSHA is a push's "before" when the branch was just created (and its
// "after" when it was deleted).
const ZeroSHA = "0000000000000000000000000000000000000000"

// ChangedFile is one file a pull request or push changed.
type ChangedFile struct {
	Path         string
	Status       string // added | modified | removed | renamed | ...
	PreviousPath string // for renames
}

// Changes is a list of changed files and whether it is the whole list.
type Changes struct {
	Files []ChangedFile
	// Complete is false when GitHub could not list every file (the 3000-file
	// cap of a pull request, the 300-file cap of a comparison, a new branch
	// with no "before"): the caller should then treat everything as changed.
	Complete bool
	Reason   string // why not complete
}

func toChanged(fs []*gh.CommitFile) []ChangedFile {
	out := make([]ChangedFile, 0, len(fs))
	for _, f := range fs {
		out = append(out, ChangedFile{Path: f.GetFilename(), Status: f.GetStatus(), PreviousPath: f.GetPreviousFilename()})
	}
	return out
}

// PullRequestFiles lists the files a pull request changes, every page. GitHub
// lists at most 3000 files (docs/research/github-actions.md §3.3); reaching that many makes
// the list incomplete.
func (c *Client) PullRequestFiles(ctx context.Context, owner, repo string, pr int) (Changes, error) {
	opts := &gh.ListOptions{PerPage: perPage}
	var all []*gh.CommitFile
	for {
		page, resp, err := c.rest.PullRequests.ListFiles(ctx, owner, repo, pr, opts)
		if err != nil {
			return Changes{}, fmt.Errorf("list files of %s/%s#%d: %w", owner, repo, pr, err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	ch := Changes{Files: toChanged(all), Complete: len(all) < 3000}
	if !ch.Complete {
		ch.Reason = "the pull request changes 3000 files or more, GitHub's listing limit"
	}
	return ch, nil
}

// PushFiles lists the files changed between a push's before and after. The
// comparison lists files on its first page only, at most 300
// (docs/research/github-actions.md §5.1), so one request is all there is; at 300 the list
// may be cut. A new branch (before = zero SHA) or a before GitHub no longer
// knows (a force push) has nothing to compare with.
func (c *Client) PushFiles(ctx context.Context, owner, repo, before, after string) (Changes, error) {
	if before == "" || before == ZeroSHA {
		return Changes{Complete: false, Reason: "the push created the branch: there is no earlier commit to compare with"}, nil
	}
	cmp, _, err := c.rest.Repositories.CompareCommits(ctx, owner, repo, before, after, &gh.ListOptions{PerPage: perPage})
	if err != nil {
		var er *gh.ErrorResponse
		if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
			return Changes{Complete: false, Reason: fmt.Sprintf("GitHub cannot compare %s...%s (a force push?)", short(before), short(after))}, nil
		}
		return Changes{}, fmt.Errorf("compare %s...%s in %s/%s: %w", short(before), short(after), owner, repo, err)
	}
	ch := Changes{Files: toChanged(cmp.Files), Complete: len(cmp.Files) < 300}
	if !ch.Complete {
		ch.Reason = "the push changes 300 files or more, the most GitHub's comparison lists"
	}
	return ch, nil
}

// PullRequest is the part of a pull request deploybot uses.
type PullRequest struct {
	Number         int
	URL            string
	HeadSHA        string
	BaseSHA        string
	HeadRepo       string
	MergeCommitSHA string
}

// MergedPullRequest finds the merged pull request a pushed commit came from
// (GET /commits/{sha}/pulls, docs/research/github-actions.md §5.1). Only merged pull
// requests count; one whose merge commit is sha is preferred. nil when the
// push was not a merge (a direct push).
func (c *Client) MergedPullRequest(ctx context.Context, owner, repo, sha string) (*PullRequest, error) {
	opts := &gh.ListOptions{PerPage: perPage}
	var merged []*gh.PullRequest
	for {
		page, resp, err := c.rest.PullRequests.ListPullRequestsWithCommit(ctx, owner, repo, sha, opts)
		if err != nil {
			return nil, fmt.Errorf("pull requests of commit %s in %s/%s: %w", short(sha), owner, repo, err)
		}
		for _, p := range page {
			if p.MergedAt != nil || p.GetMerged() {
				merged = append(merged, p)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(merged) == 0 {
		return nil, nil
	}
	best := merged[0]
	for _, p := range merged {
		if p.GetMergeCommitSHA() == sha {
			best = p
			break
		}
	}
	return &PullRequest{Number: best.GetNumber(), URL: best.GetHTMLURL(), HeadSHA: best.GetHead().GetSHA(),
		BaseSHA: best.GetBase().GetSHA(), HeadRepo: best.GetHead().GetRepo().GetFullName(), MergeCommitSHA: best.GetMergeCommitSHA()}, nil
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return strings.TrimSpace(sha)
}
