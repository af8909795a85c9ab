package action

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/event"
)

// stsAudience is the audience AWS expects in a GitHub ID token
// (docs/research/github-actions.md §2.1).
const stsAudience = "sts.amazonaws.com"

// tokenAttempts bounds the ID-token requests: go-githubactions' GetIDToken
// does not retry, and getIDToken flakes are a known failure
// (docs/research/github-actions.md §2.4 item 5).
const tokenAttempts = 4

// stsAttempts raises the SDK's default 3: parallel jobs meet throttling and
// "Couldn't retrieve verification key" (IDPCommunicationError) for longer
// than that (docs/research/github-actions.md §2.4 items 1 and 3, §2.5).
const stsAttempts = 8

// ErrNoIDToken says the job cannot get a GitHub OIDC token: the runner
// sets both variables only for a job granted `id-token: write`
// (docs/research/github-actions.md §2.1), so Missing names the one absent.
type ErrNoIDToken struct{ Missing string }

func (e ErrNoIDToken) Error() string {
	return "no GitHub OIDC token: " + e.Missing + " is not set; give the job `permissions: id-token: write` and let the runner set it (fork pull requests never get one)"
}

// TokenRefusedError: GitHub's token endpoint answered 401 or 403. That is
// final: the request token or the job's permissions are wrong, and asking
// again gives the same answer.
type TokenRefusedError struct{ Status int }

func (e *TokenRefusedError) Error() string {
	if e.Status == http.StatusForbidden {
		return "GitHub refused the OIDC token request (HTTP 403): the job needs `permissions: id-token: write`"
	}
	return fmt.Sprintf("GitHub refused the OIDC token request (HTTP %d): ACTIONS_ID_TOKEN_REQUEST_TOKEN is not this job's; let the runner set it (do not pass it as an env or input), and re-run the job", e.Status)
}

// oidcStatusKey carries a *int that oidcStatusTransport fills with the
// token endpoint's status: go-githubactions' GetIDToken reports only the body.
type oidcStatusKey struct{}

type oidcStatusTransport struct{ base http.RoundTripper }

func (t oidcStatusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if p, ok := req.Context().Value(oidcStatusKey{}).(*int); ok && resp != nil {
		*p = resp.StatusCode
	}
	return resp, err
}

// awsConfig assumes role by GitHub OIDC (AssumeRoleWithWebIdentity) and
// returns a config whose credentials refresh themselves, fetching a fresh ID
// token on every refresh (the token lives about 5 minutes, §2.5). No
// long-lived key is read or written anywhere. Its errors do not name the
// environment: failure() does, once.
func (r *run) awsConfig(ctx context.Context, env *config.Environment, role, purpose string) (aws.Config, error) {
	for _, v := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"} {
		if r.o.Getenv(v) == "" {
			return aws.Config{}, ErrNoIDToken{Missing: v}
		}
	}
	if role == "" {
		return aws.Config{}, fmt.Errorf("aws.%s_role_arn is not set in %s", purpose, env.File)
	}
	retryer := func() aws.Retryer {
		return retry.AddWithMaxAttempts(retry.AddWithErrorCodes(retry.NewStandard(func(so *retry.StandardOptions) {
			so.RateLimiter = ratelimit.None
			so.Backoff = clockBackoff(r.o.Clock)
		}), "IDPCommunicationError", "InvalidIdentityToken"), stsAttempts)
	}
	var client stscreds.AssumeRoleWithWebIdentityAPIClient
	if r.o.STSHTTPClient != nil {
		client = sts.New(sts.Options{Region: env.AWS.Region, HTTPClient: r.o.STSHTTPClient, Retryer: retryer(), Credentials: aws.AnonymousCredentials{}})
	} else {
		base, err := r.o.LoadAWSConfig(ctx, env.AWS.Region, aws.AnonymousCredentials{})
		if err != nil {
			return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
		}
		client = sts.NewFromConfig(base, func(o *sts.Options) { o.Retryer = retryer() })
	}
	provider := stscreds.NewWebIdentityRoleProvider(client, role, &idTokenRetriever{r: r, ctx: ctx},
		func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = sessionName(r.ghctx.RunID, env.Name) })
	creds := aws.NewCredentialsCache(&maskingProvider{r: r, next: provider, account: env.AWS.AccountID},
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute })
	if _, err := creds.Retrieve(ctx); err != nil {
		var refused *TokenRefusedError
		if errors.As(err, &refused) {
			return aws.Config{}, refused // one line: what is wrong, not the SDK's chain
		}
		return aws.Config{}, fmt.Errorf("assume %s by GitHub OIDC: %w", role, err)
	}
	cfg, err := r.o.LoadAWSConfig(ctx, env.AWS.Region, creds)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// clockBackoff makes the STS retryer wait on our clock (and tells the SDK
// not to wait again), so tests never sleep.
func clockBackoff(c clock.Clock) retry.BackoffDelayer {
	return retry.BackoffDelayerFunc(func(attempt int, err error) (time.Duration, error) {
		d := min(time.Duration(1<<min(attempt, 6))*250*time.Millisecond, 20*time.Second)
		_ = c.Sleep(context.Background(), d)
		return 0, nil
	})
}

var sessionUnsafe = regexp.MustCompile(`[^\w+=,.@-]`)

// sessionName names the role session for CloudTrail: run id and
// environment, within STS's [\w+=,.@-]{2,64} (docs/research/github-actions.md gotcha 6).
func sessionName(runID int64, env string) string {
	s := sessionUnsafe.ReplaceAllString(fmt.Sprintf("deploybot-%d-%s", runID, env), "-")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// idTokenRetriever fetches a GitHub ID token for sts.amazonaws.com on every
// call (stscreds' interface has no context, so it keeps the run's).
type idTokenRetriever struct {
	r   *run
	ctx context.Context
}

func (t *idTokenRetriever) GetIdentityToken() ([]byte, error) {
	var last error
	for attempt := 0; attempt < tokenAttempts; attempt++ {
		if attempt > 0 {
			if err := t.r.o.Clock.Sleep(t.ctx, time.Duration(1<<attempt)*time.Second); err != nil {
				return nil, err
			}
		}
		status := 0
		ctx, cancel := context.WithTimeout(context.WithValue(t.ctx, oidcStatusKey{}, &status), 30*time.Second)
		tok, err := t.r.gha.GetIDToken(ctx, stsAudience)
		cancel()
		if err == nil && tok != "" {
			t.r.mask(tok)
			return []byte(tok), nil
		}
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return nil, &TokenRefusedError{Status: status}
		}
		last = err
		t.r.say(event.Info, "", "GitHub OIDC token request failed (attempt %d of %d): %v", attempt+1, tokenAttempts, err)
	}
	return nil, fmt.Errorf("get GitHub OIDC token: %w", last)
}

// maskingProvider masks the session credentials in the log the moment they
// exist, and refuses credentials of another account than the file's.
type maskingProvider struct {
	r       *run
	next    aws.CredentialsProvider
	account string
}

func (p *maskingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.next.Retrieve(ctx)
	if err != nil {
		return c, err
	}
	p.r.mask(c.SecretAccessKey)
	p.r.mask(c.SessionToken)
	if p.account != "" && c.AccountID != "" && c.AccountID != p.account {
		return aws.Credentials{}, fmt.Errorf("the role belongs to account %s, but the environment file says %s", c.AccountID, p.account)
	}
	return c, nil
}
