package github

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	gh "github.com/google/go-github/v62/github"
)

// Deployment states deploybot uses (docs/research/github-actions.md §3.3).
const (
	StateInProgress = "in_progress"
	StateSuccess    = "success"
	StateFailure    = "failure"
	StateError      = "error"
	StateInactive   = "inactive"
)

// NewDeployment is a GitHub Deployment for one environment.
type NewDeployment struct {
	Ref         string // the commit SHA deployed
	Environment string // the deploybot environment name
	Description string
	Payload     map[string]any // e.g. the plan fingerprint
}

// CreateDeployment records a Deployment. auto_merge is false and
// required_contexts empty on purpose: GitHub's defaults would merge the
// default branch into the ref (202) or refuse over a failing status check
// (409) (docs/research/github-actions.md §3.3, gotcha 8).
func (c *Client) CreateDeployment(ctx context.Context, owner, repo string, d NewDeployment) (int64, error) {
	req := &gh.DeploymentRequest{
		Ref:                  gh.String(d.Ref),
		Task:                 gh.String("deploy"),
		AutoMerge:            gh.Bool(false),
		RequiredContexts:     &[]string{},
		Environment:          gh.String(d.Environment),
		Description:          gh.String(cut140(c.redact(d.Description))),
		TransientEnvironment: gh.Bool(false),
	}
	// The payload carries a key of this request, so that after an
	// ambiguous failure the deployment it may have made is told from
	// others of the same commit and environment (a re-run's).
	key, err := requestKey()
	if err != nil {
		return 0, fmt.Errorf("create deployment of %s: %w", d.Environment, err)
	}
	payload := map[string]any{RequestKeyField: key}
	for k, v := range d.Payload {
		payload[k] = v
	}
	req.Payload = payload
	var dep *gh.Deployment
	err = c.create(ctx, "create deployment of "+d.Environment, func() (err error) {
		dep, _, err = c.rest.Repositories.CreateDeployment(ctx, owner, repo, req)
		return err
	}, func() (bool, error) {
		dep, err = c.findDeployment(ctx, owner, repo, d, key)
		return dep != nil, err
	})
	if err != nil {
		var acc *gh.AcceptedError
		if errors.As(err, &acc) {
			return 0, fmt.Errorf("create deployment of %s: GitHub answered 202 (it merged instead of deploying): %w", d.Environment, err)
		}
		return 0, fmt.Errorf("create deployment of %s: %w", d.Environment, err)
	}
	return dep.GetID(), nil
}

// RequestKeyField is the payload field that names the CreateDeployment call
// that made a deployment.
const RequestKeyField = "deploybot_request"

func requestKey() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("a request key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// findDeployment returns the deployment of d's commit, environment and task
// whose payload carries key, or nil.
func (c *Client) findDeployment(ctx context.Context, owner, repo string, d NewDeployment, key string) (*gh.Deployment, error) {
	opts := &gh.DeploymentsListOptions{SHA: d.Ref, Task: "deploy", Environment: d.Environment, ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		page, resp, err := c.rest.Repositories.ListDeployments(ctx, owner, repo, opts)
		if err != nil {
			return nil, fmt.Errorf("list deployments of %s: %w", d.Environment, err)
		}
		for _, dep := range page {
			var p map[string]any
			if json.Unmarshal(dep.Payload, &p) == nil && p[RequestKeyField] == key {
				return dep, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

// Status is one deployment status.
type Status struct {
	State          string
	Description    string // redacted, then cut to GitHub's 140 characters
	LogURL         string // the Actions run
	EnvironmentURL string // the Prefect work pool
}

// SetDeploymentStatus adds a status to a deployment.
func (c *Client) SetDeploymentStatus(ctx context.Context, owner, repo string, id int64, s Status) error {
	req := &gh.DeploymentStatusRequest{State: gh.String(s.State), Description: gh.String(cut140(c.redact(s.Description)))}
	if s.LogURL != "" {
		req.LogURL = gh.String(s.LogURL)
	}
	if s.EnvironmentURL != "" {
		req.EnvironmentURL = gh.String(s.EnvironmentURL)
	}
	err := c.create(ctx, fmt.Sprintf("set status %s of deployment %d", s.State, id), func() error {
		_, _, err := c.rest.Repositories.CreateDeploymentStatus(ctx, owner, repo, id, req)
		return err
	}, func() (bool, error) {
		// Done when the newest status is this one: a status is a state,
		// and the deployment is in it.
		sts, _, err := c.rest.Repositories.ListDeploymentStatuses(ctx, owner, repo, id, &gh.ListOptions{PerPage: 1})
		if err != nil || len(sts) == 0 {
			return false, err
		}
		st := sts[0]
		return st.GetState() == req.GetState() && st.GetDescription() == req.GetDescription() &&
			st.GetLogURL() == req.GetLogURL() && st.GetEnvironmentURL() == req.GetEnvironmentURL(), nil
	})
	if err != nil {
		return fmt.Errorf("deployment %d: set status %s: %w", id, s.State, err)
	}
	return nil
}

// DeactivateDeployments marks every deployment of env that is not inactive
// yet as inactive (after a destroy), returning how many it marked.
func (c *Client) DeactivateDeployments(ctx context.Context, owner, repo, env string, s Status) (int, error) {
	opts := &gh.DeploymentsListOptions{Environment: env, ListOptions: gh.ListOptions{PerPage: perPage}}
	var ids []int64
	for {
		page, resp, err := c.rest.Repositories.ListDeployments(ctx, owner, repo, opts)
		if err != nil {
			return 0, fmt.Errorf("list deployments of %s: %w", env, err)
		}
		for _, d := range page {
			ids = append(ids, d.GetID())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	s.State = StateInactive
	n := 0
	for _, id := range ids {
		sts, _, err := c.rest.Repositories.ListDeploymentStatuses(ctx, owner, repo, id, &gh.ListOptions{PerPage: 1})
		if err != nil {
			return n, fmt.Errorf("deployment %d of %s: list statuses: %w", id, env, err)
		}
		if len(sts) > 0 && sts[0].GetState() == StateInactive {
			continue
		}
		if err := c.SetDeploymentStatus(ctx, owner, repo, id, s); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func cut140(s string) string {
	r := []rune(s)
	if len(r) <= 140 {
		return s
	}
	return string(r[:139]) + "…"
}
