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

// retryTransport waits out GitHub's rate limits and retries the request. It
// works below go-github on purpose: go-github v62 maps a 429 to a plain
// ErrorResponse, and after a 403 secondary limit it refuses every further
// request until a reset computed from the wall clock (docs/research/github-actions.md
// §3.3), which a virtual clock could never reach. Here the limit never
// reaches go-github unless the retries run out.
//
// The rules are GitHub's (rate-limits-for-the-rest-api.md via
// docs/research/github-actions.md §3.3): on 403 or 429, obey retry-after; else, when
// x-ratelimit-remaining is 0, wait until x-ratelimit-reset; else, for a
// secondary limit without headers, wait at least a minute and back off
// exponentially. Any other 403 (a missing permission) is not retried.
type retryTransport struct {
	base       http.RoundTripper
	clock      clock.Clock
	maxRetries int
	maxWait    time.Duration
	onEvent    func(string)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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
			return nil, err
		}
		wait, limited := t.rateLimitWait(resp, attempt)
		if !limited || attempt >= t.maxRetries || wait > t.maxWait {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.onEvent(fmt.Sprintf("GitHub rate limit on %s %s (HTTP %d): waiting %s before retry %d of %d",
			req.Method, req.URL.Path, resp.StatusCode, wait, attempt+1, t.maxRetries))
		if err := t.clock.Sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// rateLimitWait says whether resp is a rate limit and how long to wait.
func (t *retryTransport) rateLimitWait(resp *http.Response, attempt int) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
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
