// Package action is the `deploybot action` entry point: it turns a GitHub
// Actions event into plans, applies, teardowns and drift checks, and speaks on
// the pull request. Everything comes from the runner's environment through
// go-githubactions (GITHUB_*, INPUT_*, ACTIONS_ID_TOKEN_*), everything goes
// out through the runner's file commands (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY)
// and the GitHub API, all of it redacted with one secret.Redactor. AWS
// credentials come only from GitHub OIDC (docs/research/github-actions.md §2).
// The clock, the HTTP clients, the AWS config, the Prefect client and the
// engine are injectable through Options, so tests run the whole Action
// against githubsim, awssim and prefectsim.
package action

import (
	"context"
	"io"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/secret"
)

// Options are the Action's seams. The zero value runs for real.
type Options struct {
	// Getenv reads the runner's environment; default os.Getenv.
	Getenv func(string) string
	// Stdout receives workflow commands and the log; default os.Stdout.
	// Run redacts everything it writes there but the ::add-mask:: commands.
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
	// Secrets is the process's redactor; Run registers every credential it
	// reads. Default a new one.
	Secrets *secret.Redactor
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
	if o.Secrets == nil {
		o.Secrets = &secret.Redactor{}
	}
}

// Main runs the Action and returns the exit code, printing the error once
// as workflow error annotations, with exit.Print and exit.CodeOf as the
// CLI's Main does (the container runs `deploybot action` through the CLI's
// Main, which prints there instead).
func Main(ctx context.Context, o Options) int {
	o.defaults()
	err := Run(ctx, o)
	w := o.Secrets.Writer(o.Stdout)
	exit.Print(w, err, exit.Workflow)
	_ = w.Flush()
	return int(exit.CodeOf(err))
}
