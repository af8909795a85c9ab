// Package action is the `deploybot action` entry point: it turns a GitHub
// Actions event into plans, applies, teardowns and drift checks, and speaks on
// the pull request. Everything comes from the runner's environment through
// go-githubactions (GITHUB_*, INPUT_*, ACTIONS_ID_TOKEN_*), everything goes
// out through the runner's file commands (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY)
// and the GitHub API. AWS credentials come only from GitHub OIDC
// (docs/research/github-actions.md §2). The clock, the HTTP clients, the AWS config, the
// Prefect client and the engine are injectable through Options, so tests run
// the whole Action against githubsim, awssim and prefectsim.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/deploybot/deploybot/internal/clock"
)

// Exit codes, the same as the CLI's (docs/design.md "Architecture", cli).
const (
	ExitOK         = 0
	ExitError      = 1
	ExitBadInput   = 2
	ExitGateFailed = 3
)

// Options are the Action's seams. The zero value runs for real.
type Options struct {
	// Getenv reads the runner's environment; default os.Getenv.
	Getenv func(string) string
	// Stdout receives workflow commands and the log; default os.Stdout.
	Stdout io.Writer
	// Clock is used for every wait; default the wall clock.
	Clock clock.Clock
	// HTTPClient talks to the GitHub API and the OIDC token endpoint;
	// default http.DefaultClient (with go-githubactions' 10 s token timeout).
	HTTPClient *http.Client
	// LoadAWSConfig builds the aws.Config for a region with the given
	// credentials; default config.LoadDefaultConfig, so AWS_ENDPOINT_URL and
	// the SDK's other settings apply.
	LoadAWSConfig func(ctx context.Context, region string, creds aws.CredentialsProvider) (aws.Config, error)
	// STSHTTPClient, when set, carries the AssumeRoleWithWebIdentity calls
	// (tests answer them); default the loaded config's client.
	STSHTTPClient aws.HTTPClient
	// Engine plans, applies and destroys; default the deploy engine.
	Engine Engine
	// Workdir is the checked-out repository; default GITHUB_WORKSPACE, then ".".
	Workdir string
}

func (o *Options) defaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.LoadAWSConfig == nil {
		o.LoadAWSConfig = func(ctx context.Context, region string, creds aws.CredentialsProvider) (aws.Config, error) {
			return config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithCredentialsProvider(creds))
		}
	}
	if o.Engine == nil {
		o.Engine = defaultEngine()
	}
	if o.Workdir == "" {
		o.Workdir = o.Getenv("GITHUB_WORKSPACE")
	}
	if o.Workdir == "" {
		o.Workdir = "."
	}
}

// InputError is a refusal caused by the Action's inputs or event (a missing
// or wrong confirm, an unknown environment, a protected environment); it is
// always raised before any AWS call. Exit code 2.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// ExitCode is 2.
func (e *InputError) ExitCode() int { return ExitBadInput }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// GateError is a failed Prefect health gate (exit code 3).
type GateError struct{ Envs []string }

func (e *GateError) Error() string {
	return fmt.Sprintf("the Prefect health gate failed for %v", e.Envs)
}

// ExitCode is 3.
func (e *GateError) ExitCode() int { return ExitGateFailed }

// ExitCode maps Run's error to the process exit code: an error that knows
// its code gives it (bad input 2, health gate 3, as deploy.ExitCode does),
// any other error 1.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return ExitError
}

// Main runs the Action and returns the exit code, printing the error once
// as a workflow error annotation.
func Main(ctx context.Context, o Options) int {
	err := Run(ctx, o)
	if err != nil {
		o.defaults()
		Annotate(o.Stdout, err)
	}
	return ExitCode(err)
}

// Annotate prints err as a workflow error annotation (docs/research/github-actions.md
// §1.4), so it shows on the run's summary page.
func Annotate(w io.Writer, err error) {
	fmt.Fprintf(w, "::error title=deploybot::%s\n", escapeData(err.Error()))
}
