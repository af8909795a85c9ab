// Package github is deploybot's side of the GitHub REST API (go-github v62):
// one pull request comment per environment found by a hidden marker and edited
// in place, the reviewed plan fingerprint, the changed files of a pull request
// or a push, the merged pull request of a push, Deployments and their
// statuses, and drift issues. Authentication is the job's GITHUB_TOKEN or a
// GitHub App installation (ghinstallation); GITHUB_API_URL selects GitHub
// Enterprise Server. Secondary rate limits are waited out on a clock.Clock
// (docs/research/github-actions.md §3.3). The package never prints: it reports through
// Options.OnEvent.
package github

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
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
	// APIURL is GITHUB_API_URL; "" means github.com. Anything else is taken
	// as a GitHub Enterprise Server API root (https://HOST/api/v3).
	APIURL string
	Auth   Auth
	// Transport is the base HTTP transport (tests pass the simulator's).
	Transport http.RoundTripper
	// Clock waits out rate limits; default the wall clock.
	Clock clock.Clock
	// MaxRetries bounds how often one request is retried after a rate
	// limit; default 5.
	MaxRetries int
	// MaxWait is the longest single rate-limit wait deploybot accepts; a
	// longer one fails the request instead. Default 15 minutes.
	MaxWait time.Duration
	// BotLogin, when set, is the only author whose marked comments count as
	// deploybot's; otherwise any Bot account's do (never a person's, so
	// nobody can plant a reviewed fingerprint by pasting a marker).
	BotLogin string
	// OnEvent receives one-line notes (rate-limit waits, cut bodies).
	OnEvent func(msg string)
}

// Client talks to one GitHub (github.com or a GHES instance).
type Client struct {
	rest     *gh.Client
	clock    clock.Clock
	botLogin string
	onEvent  func(string)
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
	retrying := &retryTransport{base: o.Transport, clock: o.Clock, maxRetries: o.MaxRetries, maxWait: o.MaxWait, onEvent: o.OnEvent}

	rest := gh.NewClient(&http.Client{Transport: retrying})
	apiURL := strings.TrimRight(o.APIURL, "/")
	if apiURL != "" && apiURL != DefaultAPIURL {
		// GHES: GITHUB_API_URL is https://HOST/api/v3 (docs/research/github-actions.md §1.5,
		// §3.1); WithEnterpriseURLs keeps it, NewEnterpriseClient is deprecated.
		var err error
		if rest, err = rest.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("github api url %q: %w", o.APIURL, err)
		}
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
	return &Client{rest: rest, clock: o.Clock, botLogin: o.BotLogin, onEvent: o.OnEvent}, nil
}

// REST is the underlying go-github client, for calls this package does not wrap.
func (c *Client) REST() *gh.Client { return c.rest }

const perPage = 100
