package github

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
)

// retryTransport waits out GitHub's rate limits and retries server errors.
// It works below go-github on purpose: go-github v62 maps a 429 to a plain
// ErrorResponse, and after a 403 secondary limit it refuses every further
// request until a reset computed from the wall clock (docs/research/github-actions.md
// §3.3), which a virtual clock could never reach. Here the limit never
// reaches go-github unless the retries run out.
//
// Rate limits follow GitHub's rules (rate-limits-for-the-rest-api.md via
// docs/research/github-actions.md §3.3): on 403 or 429, obey retry-after;
// else, when x-ratelimit-remaining is 0, wait until x-ratelimit-reset;
// else, for a secondary limit without headers, wait at least a minute and
// back off exponentially. Any other 403 (a missing permission) is final.
//
// Server errors (5xx) and broken connections are retried the way GitHub's
// own JavaScript client does (octokit/plugin-retry.js: 3 retries, waiting
// (n+1)² seconds, never for 400, 401, 403, 404, 410, 422 or 451), obeying a
// Retry-After the server sends, but only for requests that may be repeated
// (repeatable): a POST that creates something may have been done although
// GitHub answered 5xx (docs/research/github-actions.md §3.3 "Server errors
// and timeouts"), so Client.create retries those, after looking for what
// the failed attempt made.
type retryTransport struct {
	base          http.RoundTripper
	clock         clock.Clock
	maxRetries    int
	serverRetries int
	maxWait       time.Duration
	onEvent       func(string)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	limits, failures := 0, 0
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 && req.Body != nil {
			if req.GetBody == nil {
				return nil, fmt.Errorf("github: cannot retry %s %s: body is not replayable", req.Method, req.URL.Path)
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			if req.Context().Err() != nil || failures >= t.serverRetries || !repeatable(req) {
				return nil, err
			}
			failures++
			if err := t.wait(req, serverBackoff(failures), fmt.Sprintf("GitHub request %s %s failed (%v)", req.Method, req.URL.Path, err), failures, t.serverRetries); err != nil {
				return nil, err
			}
			continue
		}
		if wait, limited := t.rateLimitWait(resp, limits); limited {
			if limits >= t.maxRetries || wait > t.maxWait {
				return resp, nil
			}
			limits++
			discard(resp)
			if err := t.wait(req, wait, fmt.Sprintf("GitHub rate limit on %s %s (HTTP %d)", req.Method, req.URL.Path, resp.StatusCode), limits, t.maxRetries); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 500 && failures < t.serverRetries && repeatable(req) {
			if wait := serverWait(resp, failures+1); wait <= t.maxWait {
				failures++
				discard(resp)
				if err := t.wait(req, wait, fmt.Sprintf("GitHub answered HTTP %d to %s %s", resp.StatusCode, req.Method, req.URL.Path), failures, t.serverRetries); err != nil {
					return nil, err
				}
				continue
			}
		}
		return resp, nil
	}
}

// wait says why and sleeps on the clock.
func (t *retryTransport) wait(req *http.Request, d time.Duration, why string, n, of int) error {
	t.onEvent(fmt.Sprintf("%s: waiting %s before retry %d of %d", why, d, n, of))
	return t.clock.Sleep(req.Context(), d)
}

// serverBackoff is octokit's (n)² seconds for the n-th retry.
func serverBackoff(n int) time.Duration { return time.Duration(n*n) * time.Second }

// serverWait is how long to wait before the n-th retry after the server
// error resp (nil: a broken connection): its Retry-After, else serverBackoff.
func serverWait(resp *http.Response, n int) time.Duration {
	if resp != nil {
		if d, ok := retryAfterHeader(resp); ok {
			return d
		}
	}
	return serverBackoff(n)
}

// repeatable says whether doing req twice is the same as doing it once:
// every method but POST (deploybot's PATCHes and PUTs set whole values), and
// the POSTs deploybot makes that create nothing new: GraphQL (it only
// queries), an installation token (another one is as good), and labels
// (adding a label an issue has changes nothing; creating one that exists is
// a 422 the caller takes as done).
func repeatable(req *http.Request) bool {
	if req.Method != http.MethodPost {
		return true
	}
	p := req.URL.Path
	return strings.HasSuffix(p, "/graphql") || strings.HasSuffix(p, "/access_tokens") || strings.HasSuffix(p, "/labels")
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func retryAfterHeader(resp *http.Response) (time.Duration, bool) {
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}

// rateLimitWait says whether resp is a rate limit and how long to wait.
func (t *retryTransport) rateLimitWait(resp *http.Response, attempt int) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if d, ok := retryAfterHeader(resp); ok {
		return d, true
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			// One extra second: reset is a whole-second instant.
			return max(time.Unix(n, 0).Sub(t.clock.Now()), 0) + time.Second, true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || isSecondaryLimitBody(resp) {
		return time.Minute << min(attempt, 4), true
	}
	return 0, false
}

// isSecondaryLimitBody peeks at a 403 body for GitHub's secondary-limit
// message and puts the body back for go-github to read.
func isSecondaryLimitBody(resp *http.Response) bool {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return false
	}
	s := strings.ToLower(string(b))
	return strings.Contains(s, "secondary rate limit") || strings.Contains(s, "abuse")
}
