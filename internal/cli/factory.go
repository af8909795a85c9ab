// Package cli is deploybot's command line: one Options struct, NewCmdX and
// xRun per command (cli/cli's shape), every dependency in a Factory so that
// tests and `deploybot demo` run the real commands against the simulated AWS
// account and Prefect API. Errors become exit codes in one place (Main).
package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/term"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/secret"
)

// IOStreams are the command's standard streams: data on Out, progress and
// errors on ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// InTTY: a person can answer a question on In. OutTTY: Out is a
	// terminal (colour).
	InTTY, OutTTY bool
}

// System returns the process's streams. A stream is a terminal when the
// operating system says its file descriptor is one (golang.org/x/term,
// isatty(3)): /dev/null is a character device but not a terminal, so
// `apply < /dev/null` refuses to prompt.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, InTTY: isTerminal(os.Stdin), OutTTY: isTerminal(os.Stdout)}
}

// Test returns streams backed by buffers, not terminals.
func Test() (io *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Factory holds what commands need from the outside world. Zero fields get
// the real thing (see Defaults).
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
	// AWSConfig loads the AWS configuration for a region: by default the
	// SDK's standard chain (credentials, AWS_ENDPOINT_URL, ...).
	AWSConfig func(ctx context.Context, region string) (aws.Config, error)
	// AWSConfigFor loads the AWS configuration for a region with the given
	// credentials (the roles `deploybot action` assumes by OIDC); nil: the
	// SDK's standard chain with those credentials.
	AWSConfigFor func(ctx context.Context, region string, creds aws.CredentialsProvider) (aws.Config, error)
	// HTTPClient carries deploybot's own HTTP requests (the Prefect API;
	// for `deploybot action` also the GitHub API and the OIDC token
	// endpoint); nil: http.DefaultClient.
	HTTPClient *http.Client
	Clock      clock.Clock
	// Prefect makes the Prefect API client for an environment.
	Prefect func(env *config.Environment, apiKey string) (deploy.Prefect, error)
	// Lock returns the environment lock for apply and destroy, and Unlock
	// breaks it.
	Lock   func(clients *awsapi.Clients, clk clock.Clock) deploy.LockFunc
	Unlock func(ctx context.Context, clients *awsapi.Clients, clk clock.Clock, env *config.Environment) (string, error)
	Kinds  func() map[resource.KindName]resource.Kind
	// Secrets holds every credential the process has read: the Prefect API
	// key and the AWS session's secret key and token as soon as the SDK
	// resolves them. Main wraps standard output and error in its Writer,
	// and everything else deploybot writes (--out, the Action's files and
	// API bodies) is redacted with it too.
	Secrets *secret.Redactor
}

// Defaults fills the zero fields of f with the real implementations.
func (f *Factory) Defaults() *Factory {
	if f.IO == nil {
		f.IO = System()
	}
	if f.Getenv == nil {
		f.Getenv = os.Getenv
	}
	if f.Secrets == nil {
		f.Secrets = &secret.Redactor{}
	}
	if f.AWSConfig == nil {
		f.AWSConfig = func(ctx context.Context, region string) (aws.Config, error) {
			// LoadDefaultConfig is the SDK's standard way: it honours
			// AWS_PROFILE, AWS_ENDPOINT_URL and the rest (docs/design.md).
			return awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		}
	}
	if f.Clock == nil {
		f.Clock = clock.Real{}
	}
	if f.Prefect == nil {
		f.Prefect = func(env *config.Environment, apiKey string) (deploy.Prefect, error) {
			opts := []prefect.Option{prefect.WithClock(f.Clock), prefect.WithUserAgent(userAgent())}
			if f.HTTPClient != nil {
				opts = append(opts, prefect.WithHTTPClient(f.HTTPClient))
			}
			return deploy.NewPrefectFor(env, apiKey, opts...)
		}
	}
	if f.Lock == nil {
		f.Lock = f.defaultLock
	}
	if f.Unlock == nil {
		f.Unlock = defaultUnlock
	}
	if f.Kinds == nil {
		f.Kinds = kinds.All
	}
	return f
}

// prefectIfAny is the environment's Prefect client when one can be made:
// Prefect Cloud needs the key; a self-hosted server may need none. nil
// otherwise: the plan then says it could not read the work pool.
func (f *Factory) prefectIfAny(env *config.Environment, key secret.Value) deploy.Prefect {
	p, err := f.Prefect(env, key.Reveal())
	if err != nil {
		return nil
	}
	return p
}

// credential is the environment's Prefect credential from Prefect's own
// variables: PREFECT_API_KEY, or with prefect.auth: basic
// PREFECT_API_AUTH_STRING (src/prefect/settings/models/api.py), registered
// with the redactor the moment it is read, and the auth string's Basic
// token with it.
func (f *Factory) credential(env *config.Environment) secret.Value {
	if env.BasicAuth() {
		v := secret.New(f.Getenv("PREFECT_API_AUTH_STRING"))
		f.Secrets.Add(v)
		if !v.IsZero() {
			f.Secrets.AddString(base64.StdEncoding.EncodeToString([]byte(v.Reveal())))
		}
		return v
	}
	v := secret.New(strings.TrimSpace(f.Getenv("PREFECT_API_KEY")))
	f.Secrets.Add(v)
	return v
}

// credentialVariable names the variable credential reads.
func credentialVariable(env *config.Environment) string {
	if env.BasicAuth() {
		return "PREFECT_API_AUTH_STRING"
	}
	return "PREFECT_API_KEY"
}

// color says whether to colour output on a terminal: not when NO_COLOR is
// set to anything (https://no-color.org).
func (f *Factory) color() bool { return f.IO.OutTTY && f.Getenv("NO_COLOR") == "" }

// clients loads the AWS configuration for env's region, with credentials
// that register their secret parts with the redactor whenever the SDK
// resolves them.
func (f *Factory) clients(ctx context.Context, env *config.Environment) (*awsapi.Clients, error) {
	cfg, err := f.AWSConfig(ctx, env.AWS.Region)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials != nil {
		cfg.Credentials = &redactingCredentials{next: cfg.Credentials, secrets: f.Secrets}
	}
	return awsapi.New(cfg), nil
}

// redactingCredentials registers every credential the SDK resolves (the
// secret access key and the session token) with the redactor before the
// SDK uses it.
type redactingCredentials struct {
	next    aws.CredentialsProvider
	secrets *secret.Redactor
}

func (c *redactingCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.next.Retrieve(ctx)
	if err == nil {
		c.secrets.AddString(creds.SecretAccessKey, creds.SessionToken)
	}
	return creds, err
}

// engine builds the engine for env, with progress on stderr.
func (f *Factory) engine(ctx context.Context, env *config.Environment, p *progress) (*engine.Engine, error) {
	c, err := f.clients(ctx, env)
	if err != nil {
		return nil, err
	}
	return &engine.Engine{AWS: c, Clock: f.Clock, Kinds: f.Kinds(), Events: p.events()}, nil
}

// progress writes progress lines to stderr, one at a time (the engine
// reports from concurrent steps). Stderr is the process's redacting writer.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *progress) line(s string) { _, _ = p.Write([]byte(s + "\n")) }

// Write writes b whole: lines from concurrent steps never interleave.
func (p *progress) Write(b []byte) (int, error) {
	s := string(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, s)
	return len(b), err
}

// events are the terminal's rendering of the engine's and deploy's
// progress: resource steps indented, with their elapsed time.
func (p *progress) events() event.Sink { return event.Terminal(p) }
