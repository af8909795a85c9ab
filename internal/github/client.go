// Package github is deploybot's side of the GitHub REST API (go-github v62):
// one pull request comment per environment found by a hidden marker and edited
// in place, the reviewed plan fingerprint, the changed files of a pull request
// or a push, the merged pull request of a push, Deployments and their
// statuses, and drift issues. Authentication is the job's GITHUB_TOKEN, a
// personal access token or a GitHub App installation (ghinstallation); the
// client learns whose identity that is and owns only that account's
// comments. GITHUB_API_URL is used exactly as the runner gives it (GitHub
// Enterprise Server's https://HOST/api/v3, GHE.com's https://api.SUBDOMAIN.ghe.com).
// Rate limits and server errors are retried on a clock.Clock
// (docs/research/github-actions.md §3.3). Everything sent is redacted first
// (Options.Redact). The package never prints: it reports through
// Options.OnEvent.
package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v62/github"

	"github.com/deploybot/deploybot/internal/clock"
)

// DefaultAPIURL is GITHUB_API_URL on github.com.
const DefaultAPIURL = "https://api.github.com"

// MaxCommentChars is GitHub's comment body limit (docs/research/pr-comment-bots.md §0).
const MaxCommentChars = 65536

// Auth says how to authenticate: a token (GITHUB_TOKEN or a PAT), or a GitHub
// App installation. A token wins when both are given.
type Auth struct {
	Token             string
	AppID             int64
	AppPrivateKey     []byte // PEM
	AppInstallationID int64
}

// Options configure a Client.
type Options struct {
	// APIURL is GITHUB_API_URL, used exactly as given; "" means github.com.
	APIURL string
	// GraphQLURL is GITHUB_GRAPHQL_URL; "" derives it from APIURL (GHES:
	// https://HOST/api/graphql; otherwise APIURL/graphql).
	GraphQLURL string
	Auth       Auth
	// Transport is the base HTTP transport (tests pass the simulator's).
	Transport http.RoundTripper
	// Clock waits out rate limits; default the wall clock.
	Clock clock.Clock
	// MaxRetries bounds how often one request is retried after a rate
	// limit; default 5.
	MaxRetries int
	// ServerRetries bounds the retries of a server error (5xx) or broken
	// connection; default 3 (octokit's); negative: none.
	ServerRetries int
	// MaxWait is the longest single rate-limit wait deploybot accepts; a
	// longer one fails the request instead. Default 15 minutes.
	MaxWait time.Duration
	// BotLogin, when set, is the account deploybot writes as; otherwise
	// the client asks GitHub (Login). Only that account's marked comments
	// count as deploybot's, so nobody else, person or bot, can plant a
	// reviewed fingerprint by pasting a marker.
	BotLogin string
	// Redact takes every credential out of a text before it is sent
	// (comment and issue bodies, titles, deployment descriptions); nil
	// sends texts as they are.
	Redact func(string) string
	// OnEvent receives one-line notes (rate-limit waits, cut bodies).
	OnEvent func(msg string)
}

// Client talks to one GitHub (github.com, GHE.com or a GHES instance).
type Client struct {
	rest       *gh.Client
	graphqlURL string
	clock      clock.Clock
	redact     func(string) string
	onEvent    func(string)
	// serverRetries and maxWait bound Client.create as they bound the
	// transport's retries.
	serverRetries int
	maxWait       time.Duration

	loginMu  sync.Mutex
	botLogin string
}

// New builds a client. It makes no request.
func New(o Options) (*Client, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.MaxWait == 0 {
		o.MaxWait = 15 * time.Minute
	}
	if o.OnEvent == nil {
		o.OnEvent = func(string) {}
	}
	if o.ServerRetries == 0 {
		o.ServerRetries = 3
	}
	retrying := &retryTransport{base: o.Transport, clock: o.Clock, maxRetries: o.MaxRetries, serverRetries: max(o.ServerRetries, 0),
		maxWait: o.MaxWait, onEvent: o.OnEvent}

	rest := gh.NewClient(&http.Client{Transport: retrying})
	if o.APIURL != "" {
		// The runner's GITHUB_API_URL is the API root on every kind of
		// GitHub (docs/research/github-actions.md §1.5): set it as is.
		// go-github's WithEnterpriseURLs would append /api/v3 to any host
		// not starting with "api.", which is wrong for some of them.
		base, err := url.Parse(o.APIURL)
		if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
			return nil, fmt.Errorf("GITHUB_API_URL %q is not an http(s) URL", o.APIURL)
		}
		if !strings.HasSuffix(base.Path, "/") {
			base.Path += "/"
		}
		rest.BaseURL = base
	}
	switch {
	case o.Auth.Token != "":
		rest = rest.WithAuthToken(o.Auth.Token)
	case o.Auth.AppID != 0:
		if o.Auth.AppInstallationID == 0 || len(o.Auth.AppPrivateKey) == 0 {
			return nil, errors.New("github app auth needs app-id, app-private-key and app-installation-id")
		}
		itr, err := ghinstallation.New(retrying, o.Auth.AppID, o.Auth.AppInstallationID, o.Auth.AppPrivateKey)
		if err != nil {
			return nil, fmt.Errorf("github app %d: private key: %w", o.Auth.AppID, err)
		}
		// The token refresh must go to the same API root, or it fails on GHES
		// (docs/research/github-actions.md §3.1).
		itr.BaseURL = strings.TrimRight(rest.BaseURL.String(), "/")
		base := rest.BaseURL
		rest = gh.NewClient(&http.Client{Transport: itr})
		rest.BaseURL = base
	default:
		return nil, errors.New("github auth: no token and no app configured")
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	return &Client{rest: rest, graphqlURL: graphqlURL(o.GraphQLURL, rest.BaseURL), clock: o.Clock,
		botLogin: o.BotLogin, redact: o.Redact, onEvent: o.OnEvent, serverRetries: retrying.serverRetries, maxWait: o.MaxWait}, nil
}

// graphqlURL is GITHUB_GRAPHQL_URL, or the GraphQL endpoint next to the
// REST root: GHES serves it at /api/graphql beside /api/v3
// (https://docs.github.com/en/enterprise-server@latest/graphql/guides/forming-calls-with-graphql),
// github.com and GHE.com at /graphql on the API host.
func graphqlURL(given string, rest *url.URL) string {
	if given != "" {
		return given
	}
	u := *rest
	if p, ok := strings.CutSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v3"); ok {
		u.Path = p + "/api/graphql"
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/graphql"
	}
	return u.String()
}

// Login is the account this client writes as: the token's user for a
// personal access token, github-actions[bot] for the job's GITHUB_TOKEN,
// <slug>[bot] for a GitHub App. It asks GraphQL's viewer once, which
// answers for user and installation tokens alike (REST GET /user refuses
// installation tokens with 403, and GET /app needs the App's JWT); see
// https://docs.github.com/en/graphql/reference/queries#viewer.
func (c *Client) Login(ctx context.Context) (string, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.botLogin != "" {
		return c.botLogin, nil
	}
	body, _ := json.Marshal(map[string]string{"query": "query { viewer { login } }"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.graphqlURL, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("learn the GitHub identity: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.rest.Client().Do(req)
	if err != nil {
		return "", fmt.Errorf("learn the GitHub identity (GraphQL viewer at %s): %w", c.graphqlURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Data struct {
			Viewer struct{ Login string } `json:"viewer"`
		} `json:"data"`
		Errors  []struct{ Message string } `json:"errors"`
		Message string                     `json:"message"`
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != http.StatusOK || out.Data.Viewer.Login == "" {
		why := out.Message
		if len(out.Errors) > 0 {
			why = out.Errors[0].Message
		}
		return "", fmt.Errorf("learn the GitHub identity (GraphQL viewer at %s): HTTP %d %s", c.graphqlURL, resp.StatusCode, why)
	}
	c.botLogin = out.Data.Viewer.Login
	return c.botLogin, nil
}

// REST is the underlying go-github client, for calls this package does not wrap.
func (c *Client) REST() *gh.Client { return c.rest }

const perPage = 100
