package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	gh "github.com/google/go-github/v62/github"
)

// create makes a POST that creates something (a comment, an issue, a
// deployment, a deployment status). GitHub may have made it although it
// answered 5xx or the connection broke: it stops a request after 10 seconds
// with "Server Error" without saying whether the write was done
// (docs/research/github-actions.md §3.3 "Server errors and timeouts"). So
// the transport does not repeat such a POST; create does, the same number
// of times and after the same waits, but only after find has looked for
// what the failed attempt may have made and seen nothing. find reports
// whether it found it (and keeps it for the caller); then create stops, as
// if the attempt had succeeded.
func (c *Client) create(ctx context.Context, what string, do func() error, find func() (bool, error)) error {
	for failures := 0; ; {
		err := do()
		resp, ambiguous := ambiguousFailure(ctx, err)
		if !ambiguous || failures >= c.serverRetries {
			return err
		}
		failures++
		wait := serverWait(resp, failures)
		if wait > c.maxWait {
			return err
		}
		c.onEvent(fmt.Sprintf("%s failed (%v), perhaps after GitHub had done it: waiting %s, then looking for it before retry %d of %d",
			what, err, wait, failures, c.serverRetries))
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return err
		}
		found, ferr := find()
		if ferr != nil {
			return fmt.Errorf("%w; looking for what the attempt may have made: %v", err, ferr)
		}
		if found {
			c.onEvent(fmt.Sprintf("%s: GitHub had done it before failing; using that instead of doing it again", what))
			return nil
		}
	}
}

// ambiguousFailure says whether err leaves open whether GitHub did the
// request: a server error (with its response, for Retry-After) or a broken
// connection. A refusal (4xx) is not: GitHub did nothing.
func ambiguousFailure(ctx context.Context, err error) (*http.Response, bool) {
	if err == nil || ctx.Err() != nil {
		return nil, false
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) {
		if er.Response != nil && er.Response.StatusCode >= 500 {
			return er.Response, true
		}
		return nil, false
	}
	var ue *url.Error
	return nil, errors.As(err, &ue)
}
