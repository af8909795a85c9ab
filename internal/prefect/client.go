// Package prefect owns deploybot's conversation with the Prefect REST API
// (Prefect Cloud or a self-hosted server): the client (auth, retries,
// errors that never carry the key), the preflight key and work-pool check
// that runs before anything changes in AWS, and the worker listing the
// health gate (internal/gate) judges. It knows nothing of AWS or of the
// environment file. Endpoints, shapes and semantics follow
// docs/research/prefect-api.md (cited below as "ref §N") and
// docs/research/prefect-openapi/.
package prefect

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/secret"
)

const (
	// DefaultRequestTimeout bounds one HTTP attempt (not the retries).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxRetries matches Prefect's own client: 5 retries of 429/502/503
	// (ref §2.4, settings/models/client.py max_retries=5).
	DefaultMaxRetries = 5
	// MaxRetryAfter is the longest Retry-After deploybot agrees to sleep; a
	// longer one fails the call instead of silently eating the gate's timeout.
	MaxRetryAfter = 2 * time.Minute
	// apiVersion is the optional X-Prefect-Api-Version header (ref §2.1).
	apiVersion = "0.8.4"
	// maxBody caps how much of a response deploybot reads.
	maxBody = 4 << 20
)

// cloudPathRe matches a Prefect Cloud workspace URL path; Prefect's own client
// parses it with `accounts/(.{36})/workspaces/(.{36})` (ref §2.1).
var cloudPathRe = regexp.MustCompile(`^(.*)/accounts/([0-9A-Fa-f-]{36})/workspaces/([0-9A-Fa-f-]{36})$`)

// Client talks to one Prefect API (a Cloud workspace or a self-hosted server).
// It holds the API key but never puts it anywhere but the Authorization header.
type Client struct {
	api         *url.URL // the API base, without a trailing slash
	cloud       bool
	cloudRoot   *url.URL // Cloud only: the API root (https://api.prefect.cloud/api)
	accountID   string
	workspaceID string

	apiKey              string
	basicUser, basicPas string
	authString          string // WithAuthString; "" = basicUser:basicPas
	basic               bool

	http           *http.Client
	clock          clock.Clock
	userAgent      string
	requestTimeout time.Duration
	maxRetries     int

	// skew is Prefect's clock minus ours, from the Date header of the last
	// answer (skewKnown once one came with a Date).
	skewMu    sync.Mutex
	skew      time.Duration
	skewKnown bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (its redirects are turned off: a
// redirect from Prefect means a wrong path, ref §2.1 "Trailing slash matters").
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithClock sets the clock retries wait on.
func WithClock(k clock.Clock) Option { return func(c *Client) { c.clock = k } }

// WithBasicAuth authenticates to a self-hosted server that runs with
// PREFECT_SERVER_API_AUTH_STRING="user:pass" (ref §2.2). It replaces the
// Bearer key on every request: exactly one scheme is ever sent.
func WithBasicAuth(user, pass string) Option {
	return func(c *Client) { c.basicUser, c.basicPas, c.basic = user, pass, true }
}

// WithAuthString authenticates to a self-hosted server that runs with
// PREFECT_SERVER_API_AUTH_STRING: the client sends the string exactly as
// Prefect's own client does, `Authorization: Basic base64(auth_string)`
// (src/prefect/client/orchestration/__init__.py:353-362,
// docs/research/prefect-flow-runs.md §F). It is WithBasicAuth for a string
// already in "user:pass" form; the server compares the decoded string
// whole, so it is never split or trimmed.
func WithAuthString(s string) Option {
	return func(c *Client) { c.authString, c.basic = s, true }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRequestTimeout bounds each HTTP attempt.
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.requestTimeout = d } }

// WithMaxRetries bounds the retries of 429/502/503/504 and transport errors.
func WithMaxRetries(n int) Option { return func(c *Client) { c.maxRetries = n } }

// New makes a client for apiURL, a Prefect Cloud workspace URL
// (https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>, Bearer apiKey)
// or a self-hosted server's API URL (<server>/api; Basic auth with
// WithBasicAuth, otherwise Bearer apiKey if one is given, otherwise none).
func New(apiURL, apiKey string, opts ...Option) (*Client, error) {
	shown := safeURL(apiURL)
	u, err := url.Parse(strings.TrimSpace(apiURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("prefect api_url %q: want an http(s) URL such as https://api.prefect.cloud/api/accounts/<id>/workspaces/<id> or https://prefect.example.com/api", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("prefect api_url %q: must not carry a query, fragment or credentials", shown)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		api:            u,
		apiKey:         apiKey,
		clock:          clock.Real{},
		userAgent:      "deploybot",
		requestTimeout: DefaultRequestTimeout,
		maxRetries:     DefaultMaxRetries,
	}
	for _, o := range opts {
		o(c)
	}
	if m := cloudPathRe.FindStringSubmatch(u.Path); m != nil {
		c.cloud = true
		root := *u
		root.Path = m[1]
		c.cloudRoot = &root
		c.accountID, c.workspaceID = m[2], m[3]
	} else if strings.EqualFold(u.Hostname(), "api.prefect.cloud") {
		// Prefect's Go provider refuses the same (validateCloudEndpoint, ref §2.2).
		return nil, fmt.Errorf("prefect api_url %q: a Prefect Cloud URL must name the workspace: https://api.prefect.cloud/api/accounts/<account id>/workspaces/<workspace id>", shown)
	}
	if c.cloud {
		if c.basic {
			return nil, fmt.Errorf("prefect api_url %q is Prefect Cloud, which takes an API key (Bearer), not basic auth", shown)
		}
		if apiKey == "" {
			return nil, fmt.Errorf("prefect api_url %q is Prefect Cloud: an API key is required", shown)
		}
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	hc := *c.http // a copy: the caller's client keeps its redirect policy
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	if c.maxRetries < 0 {
		c.maxRetries = 0
	}
	return c, nil
}

// safeURL is apiURL as it may be printed: without user info or query.
func safeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "(not a URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// IsCloud says whether the client talks to a Prefect Cloud workspace.
func (c *Client) IsCloud() bool { return c.cloud }

// APIURL is the API base URL (no credentials in it, safe to print).
func (c *Client) APIURL() string { return c.api.String() }

// WorkPoolURL is the Prefect UI page of a work pool. Cloud:
// https://app.prefect.cloud/account/<a>/workspace/<w>/work-pools/work-pool/<pool>;
// self-hosted: the server root (the API URL without its /api) +
// /work-pools/work-pool/<pool>.
func (c *Client) WorkPoolURL(pool string) string {
	return c.uiURL("/work-pools/work-pool/" + url.PathEscape(pool))
}

// uiURL is the Prefect UI page at tail (starting with "/").
func (c *Client) uiURL(tail string) string {
	if c.cloud {
		host := c.api.Scheme + "://" + c.api.Host
		if strings.EqualFold(c.api.Hostname(), "api.prefect.cloud") {
			host = "https://app.prefect.cloud"
		}
		return host + "/account/" + c.accountID + "/workspace/" + c.workspaceID + tail
	}
	root := *c.api
	root.Path = strings.TrimSuffix(root.Path, "/api")
	return strings.TrimRight(root.String(), "/") + tail
}

// APIError is a Prefect call that failed: which call, and what Prefect
// answered. It never carries the key.
type APIError struct {
	Op         string // what deploybot was doing, e.g. `read work pool "ecs-pool"`
	Method     string
	Path       string // relative to the API base (from the host for /api/me/)
	StatusCode int    // 0 when no HTTP answer came back
	Detail     string // Prefect's "detail" (or exception_message), or the transport error
	Location   string // for a 3xx: where Prefect redirected to
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prefect: %s: %s %s", e.Op, e.Method, e.Path)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		fmt.Fprintf(&b, " to %s (deploybot used a path Prefect does not serve; a trailing-slash mismatch answers 307)", e.Location)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// StatusOf returns the HTTP status of a Prefect error, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// call is one Prefect API request.
type call struct {
	op     string
	method string
	path   string // relative to the API base, starting with "/"
	root   bool   // path is relative to the Cloud API root instead
	in     any    // JSON body, or nil
	out    any    // decoded on 2xx, or nil
	// status receives the 2xx status (201 from 200 tells a create from a
	// get or an update), or nil.
	status *int
}

func (c *Client) urlFor(cl call) string {
	base := c.api
	if cl.root && c.cloudRoot != nil {
		base = c.cloudRoot
	}
	return base.String() + cl.path
}

// shownPath is the call's path as errors show it: relative to the API base,
// or from the host for calls on the Cloud API root (/api/me/).
func (c *Client) shownPath(cl call) string {
	if cl.root && c.cloudRoot != nil {
		return c.cloudRoot.Path + cl.path
	}
	return cl.path
}

// do runs one call with retries on 429/502/503/504 (honouring Retry-After,
// seconds or HTTP date, ref §2.4) and on transport errors, each attempt bounded
// by the request timeout; waits are on the client's clock.
func (c *Client) do(ctx context.Context, cl call) error {
	var body []byte
	if cl.in != nil {
		var err error
		if body, err = json.Marshal(cl.in); err != nil {
			return fmt.Errorf("prefect: %s: encode request: %w", cl.op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		status, hdr, respBody, err := c.attempt(ctx, cl, body)
		if err != nil {
			if ctx.Err() != nil || attempt >= c.maxRetries {
				return &APIError{Op: cl.op, Method: cl.method, Path: c.shownPath(cl), Detail: c.redact(err.Error())}
			}
			if err := c.clock.Sleep(ctx, backoff(attempt)); err != nil {
				return &APIError{Op: cl.op, Method: cl.method, Path: c.shownPath(cl), Detail: err.Error()}
			}
			continue
		}
		if retryable(status) && attempt < c.maxRetries {
			wait, ok := retryAfter(hdr.Get("Retry-After"), c.clock.Now())
			if !ok {
				wait = backoff(attempt)
			}
			if wait > MaxRetryAfter {
				e := c.apiError(cl, status, hdr, respBody)
				e.Detail = strings.TrimPrefix(e.Detail+fmt.Sprintf("; Prefect asked to retry after %s, longer than deploybot waits (%s)", wait, MaxRetryAfter), "; ")
				return e
			}
			if err := c.clock.Sleep(ctx, wait); err != nil {
				return &APIError{Op: cl.op, Method: cl.method, Path: c.shownPath(cl), StatusCode: status, Detail: err.Error()}
			}
			continue
		}
		if status >= 200 && status < 300 {
			if cl.status != nil {
				*cl.status = status
			}
			if cl.out != nil && len(bytes.TrimSpace(respBody)) > 0 {
				// Numbers stay json.Number: a pool's job template comes back
				// whole in a PATCH, and a default of 1e400 or 0.10 must not
				// become another number on the way (only fields typed any
				// or map[string]any are affected).
				dec := json.NewDecoder(bytes.NewReader(respBody))
				dec.UseNumber()
				if err := dec.Decode(cl.out); err != nil {
					return &APIError{Op: cl.op, Method: cl.method, Path: c.shownPath(cl), StatusCode: status, Detail: "cannot decode the answer: " + err.Error()}
				}
			}
			return nil
		}
		return c.apiError(cl, status, hdr, respBody)
	}
}

func (c *Client) attempt(ctx context.Context, cl call, body []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		// A bytes.Reader makes net/http send Content-Length, which Prefect
		// Cloud requires on POST/PUT/PATCH (411 otherwise, ref §2.4).
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.urlFor(cl), rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Prefect-Api-Version", apiVersion)
	switch {
	case c.basic: // self-hosted with an auth string: Basic only (ref §2.2)
		req.Header.Set("Authorization", "Basic "+c.basicAuthToken())
	case c.apiKey != "":
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	c.noteDate(resp.Header.Get("Date"))
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, resp.Header, respBody, nil
}

func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is 1s, 2s, 4s, ... capped at 30s, for answers without Retry-After.
func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 5)
	return min(d, 30*time.Second)
}

// retryAfter parses Retry-After: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func (c *Client) apiError(cl call, status int, hdr http.Header, body []byte) *APIError {
	detail, raw := detailOf(body)
	// Redact first, then cut: a credential straddling the cut must not
	// leave half of itself behind (issue 11 item 8).
	detail = c.redact(detail)
	if raw {
		detail = secret.Cut(detail, maxRawDetail)
	}
	e := &APIError{Op: cl.op, Method: cl.method, Path: c.shownPath(cl), StatusCode: status, Detail: detail}
	if status >= 300 && status < 400 {
		e.Location = hdr.Get("Location")
	}
	return e
}

// maxRawDetail bounds how much of an answer that is not Prefect's JSON (a
// proxy's HTML page) an error quotes.
const maxRawDetail = 300

// detailOf extracts what Prefect said: {"detail": "..."}, {"detail": [
// {loc, msg, type}]} (HTTPValidationError in the OpenAPI), the server's
// {"exception_message": ..., "exception_detail": [...]} for request validation,
// or the OSS basic-auth {"exception_message": "Unauthorized"} (ref §2.2).
// raw says the body was not JSON: the caller cuts it, after redacting.
func detailOf(body []byte) (detail string, raw bool) {
	var v struct {
		Detail           json.RawMessage `json:"detail"`
		ExceptionMessage string          `json:"exception_message"`
		ExceptionDetail  json.RawMessage `json:"exception_detail"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return strings.TrimSpace(string(body)), true
	}
	var parts []string
	if v.ExceptionMessage != "" {
		parts = append(parts, v.ExceptionMessage)
	}
	for _, raw := range []json.RawMessage{v.Detail, v.ExceptionDetail} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			parts = append(parts, s)
			continue
		}
		var items []struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal(raw, &items) == nil {
			for _, it := range items {
				loc := make([]string, len(it.Loc))
				for i, l := range it.Loc {
					loc[i] = fmt.Sprint(l)
				}
				parts = append(parts, strings.Join(loc, ".")+": "+it.Msg)
			}
			continue
		}
		parts = append(parts, string(raw))
	}
	return strings.Join(parts, "; "), false
}

// redact removes the credentials from text that came from elsewhere (a
// transport error, a server's echo), belt and braces: deploybot never puts
// them in a URL or body.
func (c *Client) redact(s string) string {
	var r secret.Redactor
	r.AddString(c.apiKey, c.basicPas, c.authString, c.basicAuthToken())
	return r.Redact(s)
}

func (c *Client) basicAuthToken() string {
	if !c.basic {
		return ""
	}
	s := c.authString
	if s == "" {
		s = c.basicUser + ":" + c.basicPas
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// noteDate records how far Prefect's clock is from ours, from an answer's
// Date header (an origin server with a clock sends one: RFC 9110 §6.6.1).
// Prefect stamps a worker's heartbeats with its own clock
// (src/prefect/server/models/workers.py worker_heartbeat), so the health
// gate compares heartbeats with Prefect's now, not with deploybot's: a
// server a minute out of step must not fail healthy deploys. The header has
// one-second resolution, fine against 30-second heartbeats.
func (c *Client) noteDate(v string) {
	if v == "" {
		return
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return
	}
	skew := t.Sub(c.clock.Now().Truncate(time.Second))
	c.skewMu.Lock()
	c.skew, c.skewKnown = skew, true
	c.skewMu.Unlock()
}

// ClockSkew is Prefect's clock minus deploybot's, as the last answer's Date
// header said; known is false (and the skew 0) until an answer came with one.
func (c *Client) ClockSkew() (skew time.Duration, known bool) {
	c.skewMu.Lock()
	defer c.skewMu.Unlock()
	return c.skew, c.skewKnown
}
