package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"

	"github.com/deploybot/deploybot/internal/render"
)

// Comment is one of deploybot's environment comments on a pull request.
type Comment struct {
	ID     int64
	URL    string // html_url
	Body   string
	Author string // login
	Marker render.MarkerData
}

// listComments returns every comment on the issue or pull request, all pages
// (per_page 100, following the Link header: a tool that reads one page misses
// its own comment on a busy PR, docs/research/pr-comment-bots.md §0).
func (c *Client) listComments(ctx context.Context, owner, repo string, number int) ([]*gh.IssueComment, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	var all []*gh.IssueComment
	for {
		page, resp, err := c.rest.Issues.ListComments(ctx, owner, repo, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list comments of %s/%s#%d: %w", owner, repo, number, err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			return all, nil
		}
		opts.Page = resp.NextPage
	}
}

// envComments returns deploybot's comments for env, oldest first: those
// carrying env's marker AND written by the account this client writes as
// (Login). Anyone else's comment never counts, even with a marker pasted
// in: not a person's, not another bot's.
func (c *Client) envComments(ctx context.Context, owner, repo string, pr int, env string) ([]Comment, error) {
	login, err := c.Login(ctx)
	if err != nil {
		return nil, err
	}
	all, err := c.listComments(ctx, owner, repo, pr)
	if err != nil {
		return nil, err
	}
	var out []Comment
	for _, ic := range all {
		m, ok := render.ParseMarker(ic.GetBody())
		if !ok || m.Env != env || !strings.EqualFold(ic.GetUser().GetLogin(), login) {
			continue
		}
		out = append(out, Comment{ID: ic.GetID(), URL: ic.GetHTMLURL(), Body: ic.GetBody(), Author: ic.GetUser().GetLogin(), Marker: m})
	}
	return out, nil
}

// FindComment returns deploybot's comment for env on the pull request, or
// nil. With several (racing runs), the oldest: every run agrees on it.
func (c *Client) FindComment(ctx context.Context, owner, repo string, pr int, env string) (*Comment, error) {
	cs, err := c.envComments(ctx, owner, repo, pr, env)
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	return &cs[0], nil
}

// oldestBy returns the comments written by author, oldest first.
func oldestBy(cs []Comment, author string) []Comment {
	var out []Comment
	for _, c := range cs {
		if strings.EqualFold(c.Author, author) {
			out = append(out, c)
		}
	}
	return out
}

// Reviewed is the plan a pull request's comment says was reviewed.
type Reviewed struct {
	Fingerprint string
	HeadSHA     string
	BaseSHA     string
	CommentURL  string
}

// ReviewedFingerprint reads the marker of env's comment on the pull request.
// ok is false when there is no such comment (nothing was reviewed).
func (c *Client) ReviewedFingerprint(ctx context.Context, owner, repo string, pr int, env string) (Reviewed, bool, error) {
	cm, err := c.FindComment(ctx, owner, repo, pr, env)
	if err != nil || cm == nil {
		return Reviewed{}, false, err
	}
	return Reviewed{Fingerprint: cm.Marker.Fingerprint, HeadSHA: cm.Marker.HeadSHA, BaseSHA: cm.Marker.BaseSHA, CommentURL: cm.URL}, true, nil
}

// UpsertComment makes body env's one comment on the pull request: it edits
// the existing comment in place, makes no call at all when the body is
// unchanged, and creates a comment only when there is none. Two runs racing
// cannot leave two comments: it lists again right before creating, and after
// creating it lists once more; if another run's comment appeared meanwhile,
// the oldest is kept (edited to body) and the one it created is deleted: the
// later of two racing creators always sees the earlier comment. A comment
// this identity may not edit (403: written by another bot account) is left
// alone and a new one posted.
//
// body must carry render.Marker for env on its first line. It is redacted
// (Options.Redact) before anything else; if GitHub still refuses it as too
// long (422), it is cut under the limit on a line boundary, saying so in the
// body and through OnEvent, and sent once more.
func (c *Client) UpsertComment(ctx context.Context, owner, repo string, pr int, env string, body string) (url string, created bool, err error) {
	body = c.redact(body)
	if m, ok := render.ParseMarker(body); !ok || m.Env != env {
		return "", false, fmt.Errorf("comment for %s: body has no marker for that environment on its first line", env)
	}
	existing, err := c.FindComment(ctx, owner, repo, pr, env)
	if err != nil {
		return "", false, err
	}
	if existing == nil {
		// Re-list right before creating: a concurrent run may have created it
		// while this one was planning.
		if existing, err = c.FindComment(ctx, owner, repo, pr, env); err != nil {
			return "", false, err
		}
	}
	if existing != nil {
		url, err := c.editComment(ctx, owner, repo, existing, body)
		if !isForbidden(err) {
			return url, false, err
		}
		c.onEvent(fmt.Sprintf("comment %d for %s belongs to another account and cannot be edited: posting a new one", existing.ID, env))
	}

	ic, err := c.withCut(env, body, func(b string) (ic *gh.IssueComment, err error) {
		err = c.create(ctx, "create comment for "+env, func() (err error) {
			ic, _, err = c.rest.Issues.CreateComment(ctx, owner, repo, pr, &gh.IssueComment{Body: gh.String(b)})
			return err
		}, func() (bool, error) {
			// The failed attempt's comment is this identity's newest for env.
			cs, err := c.envComments(ctx, owner, repo, pr, env)
			if err != nil || len(cs) == 0 {
				return false, err
			}
			made := cs[len(cs)-1]
			url, err := c.editComment(ctx, owner, repo, &made, b)
			ic = &gh.IssueComment{ID: gh.Int64(made.ID), HTMLURL: gh.String(url), Body: gh.String(b), User: &gh.User{Login: gh.String(made.Author)}}
			return err == nil, err
		})
		return ic, err
	})
	if err != nil {
		return "", false, fmt.Errorf("create comment for %s on %s/%s#%d: %w", env, owner, repo, pr, err)
	}
	if who := ic.GetUser().GetLogin(); who != "" {
		c.noteAuthor(who)
	}
	all, err := c.envComments(ctx, owner, repo, pr, env)
	if err != nil {
		return ic.GetHTMLURL(), true, err
	}
	if mine := oldestBy(all, ic.GetUser().GetLogin()); len(mine) > 1 && mine[0].ID != ic.GetID() {
		keep := mine[0]
		c.onEvent(fmt.Sprintf("another run commented for %s at the same time: keeping comment %d, deleting %d", env, keep.ID, ic.GetID()))
		if _, err := c.rest.Issues.DeleteComment(ctx, owner, repo, ic.GetID()); err != nil {
			return "", false, fmt.Errorf("delete duplicate comment %d for %s: %w", ic.GetID(), env, err)
		}
		url, err := c.editComment(ctx, owner, repo, &keep, ic.GetBody())
		return url, false, err
	}
	return ic.GetHTMLURL(), true, nil
}

func isForbidden(err error) bool {
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden
}

func (c *Client) editComment(ctx context.Context, owner, repo string, existing *Comment, body string) (string, error) {
	if existing.Body == body {
		return existing.URL, nil // unchanged: no API call (docs/research/pr-comment-bots.md §8.2)
	}
	ic, err := c.withCut(existing.Marker.Env, body, func(b string) (*gh.IssueComment, error) {
		if b == existing.Body {
			return &gh.IssueComment{HTMLURL: gh.String(existing.URL), Body: gh.String(b)}, nil
		}
		ic, _, err := c.rest.Issues.EditComment(ctx, owner, repo, existing.ID, &gh.IssueComment{Body: gh.String(b)})
		return ic, err
	})
	if err != nil {
		return "", fmt.Errorf("edit comment %d for %s: %w", existing.ID, existing.Marker.Env, err)
	}
	return ic.GetHTMLURL(), nil
}

// withCut sends body; when GitHub answers 422 "body is too long" it cuts
// the body and sends it once more.
func (c *Client) withCut(env, body string, send func(string) (*gh.IssueComment, error)) (*gh.IssueComment, error) {
	ic, err := send(body)
	if err == nil || !IsBodyTooLong(err) {
		return ic, err
	}
	cut := CutBody(body, MaxCommentChars-1024)
	c.onEvent(fmt.Sprintf("GitHub refused the comment for %s as too long (%d characters); sending it cut to %d characters",
		env, utf8.RuneCountInString(body), utf8.RuneCountInString(cut)))
	return send(cut)
}

// IsBodyTooLong says whether err is GitHub's 422 for a body over 65,536
// characters (docs/research/pr-comment-bots.md §0).
func IsBodyTooLong(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, e := range er.Errors {
		if strings.Contains(strings.ToLower(e.Message), "too long") {
			return true
		}
	}
	return strings.Contains(strings.ToLower(er.Message), "too long")
}

// CutNotice ends a body that was cut to fit GitHub's limit.
const CutNotice = "\n\n> [!WARNING]\n> deploybot cut this text to fit GitHub's 65,536-character limit. The full plan is in the run's job summary and in the `plan-json` output.\n"

// CutBody cuts body to at most limit bytes (so at most limit characters) on
// a line boundary, keeping the first line (the marker) and closing an open
// code fence and <details> block, then appends CutNotice.
func CutBody(body string, limit int) string {
	if len(body) <= limit {
		return body
	}
	room := limit - len(CutNotice) - len("\n```\n</details>\n")
	cut := body[:max(room, 0)]
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i]
	}
	for !utf8.ValidString(cut) && len(cut) > 0 {
		cut = cut[:len(cut)-1]
	}
	if strings.Count(cut, "```")%2 == 1 {
		cut += "\n```"
	}
	if strings.Count(cut, "<details") > strings.Count(cut, "</details>") {
		cut += "\n</details>"
	}
	return cut + CutNotice
}

// noteAuthor corrects the identity when GitHub says a comment this client
// just created is by someone else than Login said (it should not happen;
// if it does, GitHub's word about its own comment wins).
func (c *Client) noteAuthor(who string) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.botLogin != "" && !strings.EqualFold(c.botLogin, who) {
		c.onEvent(fmt.Sprintf("GitHub says this token writes as %s, not %s: using %s", who, c.botLogin, who))
		c.botLogin = who
	}
}
