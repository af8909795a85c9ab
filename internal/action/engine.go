package action

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/secret"
)

// Engine is what the Action needs to plan, apply and destroy one
// environment. The default is internal/deploy, the same orchestration the CLI
// runs (lock, Prefect preflight, stale-plan check, engine, health gate).
type Engine interface {
	Plan(ctx context.Context, r Request) (*deploy.Result, error)
	Apply(ctx context.Context, r Request) (*deploy.Result, error)
	Destroy(ctx context.Context, r Request) (*deploy.Result, error)
}

// Request is one environment's job for the Engine.
type Request struct {
	Env *config.Environment
	// AWS is the config of the assumed role: the plan role for Plan, the
	// apply role for Apply and Destroy.
	AWS aws.Config
	// PrefectCredential is the environment's Prefect credential (masked;
	// never logged): the `prefect-api-key` input, or with prefect.auth:
	// basic the `prefect-auth-string` input.
	PrefectCredential secret.Value
	// Secrets is the run's redactor: deploy redacts what it returns with it.
	Secrets *secret.Redactor
	Clock   clock.Clock
	// ReviewedPlan or ReviewedFingerprint is what was reviewed (Apply);
	// deploy refuses deletes and replacements that were not.
	ReviewedPlan        *plan.Plan
	ReviewedFingerprint string
	// Events receives progress (the lock, Prefect, the engine's steps).
	Events event.Sink
	// Getenv is the runner's environment (the lock names the run holding it).
	Getenv func(string) string
}

// DeployEngine runs internal/deploy with the real resource kinds.
type DeployEngine struct {
	// Kinds are the resource kinds; default kinds.All.
	Kinds func() map[resource.KindName]resource.Kind
	// Prefect makes the Prefect client for an environment; default
	// prefect.New on the environment's api_url.
	Prefect func(env *config.Environment, apiKey string, clk clock.Clock) (deploy.Prefect, error)
	// Lock is the environment lock for apply and destroy; default the SSM
	// lock (deploy.SSMLock) held by this workflow run.
	Lock func(clients *awsapi.Clients, clk clock.Clock) deploy.LockFunc
}

func (d DeployEngine) options(r Request) deploy.Options {
	ks := d.Kinds
	if ks == nil {
		ks = kinds.All
	}
	clients := awsapi.New(r.AWS)
	o := deploy.Options{Env: r.Env, Credential: r.PrefectCredential, Secrets: r.Secrets, Events: r.Events,
		Engine: &engine.Engine{AWS: clients, Clock: r.Clock, Kinds: ks()}}
	if d.Lock != nil {
		o.Lock = d.Lock(clients, r.Clock)
	} else {
		getenv := r.Getenv
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		o.Lock = deploy.SSMLock(clients.SSM, r.Clock, lock.HolderFromEnv("", getenv))
	}
	return o
}

// Plan reads the work pool too when it can (with the prefect-api-key or
// prefect-auth-string input; a self-hosted server may need none): a plan without it says the
// pool was not read, and plans the rest.
func (d DeployEngine) Plan(ctx context.Context, r Request) (*deploy.Result, error) {
	o := d.options(r)
	if p, err := d.prefect(r); err == nil {
		o.Prefect = p
	}
	return deploy.Plan(ctx, o)
}

func (d DeployEngine) Apply(ctx context.Context, r Request) (*deploy.Result, error) {
	o := d.options(r)
	o.ReviewedPlan, o.ReviewedFingerprint = r.ReviewedPlan, r.ReviewedFingerprint
	p, err := d.prefect(r)
	if err != nil {
		return &deploy.Result{Operation: plan.OpApply}, exit.Input(err)
	}
	o.Prefect = p
	return deploy.Apply(ctx, o)
}

// Destroy deletes the work pool deploybot created, or resets the defaults
// it set, when it has the Prefect key; without it the pool is left as it
// is, and the destroy says so.
func (d DeployEngine) Destroy(ctx context.Context, r Request) (*deploy.Result, error) {
	o := d.options(r)
	if p, err := d.prefect(r); err == nil {
		o.Prefect = p
	}
	return deploy.Destroy(ctx, o)
}

// prefect is the environment's Prefect client.
func (d DeployEngine) prefect(r Request) (deploy.Prefect, error) {
	newPrefect := d.Prefect
	if newPrefect == nil {
		newPrefect = func(env *config.Environment, credential string, clk clock.Clock) (deploy.Prefect, error) {
			return deploy.NewPrefectFor(env, credential, prefect.WithClock(clk), prefect.WithUserAgent("deploybot-action"))
		}
	}
	return newPrefect(r.Env, r.PrefectCredential.Reveal(), r.Clock)
}

func defaultEngine() Engine { return DeployEngine{} }
