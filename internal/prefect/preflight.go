package prefect

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Preflight is what the checks before an apply found.
type Preflight struct {
	Warnings    []string
	WorkPoolURL string
	// PoolMissing: the pool does not exist yet, and the apply creates it
	// (prefect.create_work_pool; the stack's work pool resource does, after
	// the account check and under the lock, like every other write).
	PoolMissing bool
}

// PreflightInput is what the preflight checks.
type PreflightInput struct {
	// WorkPool is the pool the worker will poll.
	WorkPool string
	// CreateWorkPool: a missing pool is fine, the apply creates it
	// (prefect.create_work_pool).
	CreateWorkPool bool
	// File names the environment file in messages ("" for none).
	File string
}

// Preflight checks, before anything changes in AWS, that the key works and
// that the work pool exists with type ecs, or may be created by the apply.
// It writes nothing. A paused pool is a warning: the worker starts and
// heartbeats, but picks up no runs (ref §1.7 step 1).
func (c *Client) Preflight(ctx context.Context, in PreflightInput) (*Preflight, error) {
	pool := in.WorkPool
	if pool == "" {
		return nil, fmt.Errorf("prefect preflight%s: prefect.work_pool is empty", fileOf(in))
	}
	out := &Preflight{WorkPoolURL: c.WorkPoolURL(pool)}
	if err := c.CheckKey(ctx); err != nil {
		return nil, c.explain(err, in)
	}
	wp, err := c.ReadWorkPool(ctx, pool)
	if StatusOf(err) == http.StatusNotFound {
		if !in.CreateWorkPool {
			return nil, fmt.Errorf("prefect preflight%s: work pool %q does not exist in %s: create it with `prefect work-pool create %q --type ecs`, or set prefect.create_work_pool: true in the environment file: %w",
				fileOf(in), pool, c.where(), pool, err)
		}
		out.PoolMissing = true
		return out, nil
	}
	if err != nil {
		return nil, c.explain(err, in)
	}
	if wp.Type != "ecs" {
		return nil, fmt.Errorf("prefect preflight%s: work pool %q is of type %q, not ecs: deploybot runs `prefect worker start --type ecs`, which needs an ecs pool (push and managed pools run no worker, ref docs/research/prefect-api.md §1.7); point prefect.work_pool at an ecs pool or create one with `prefect work-pool create <name> --type ecs`",
			fileOf(in), pool, wp.Type)
	}
	if wp.IsPaused || wp.StatusString() == PoolPaused {
		out.Warnings = append(out.Warnings, fmt.Sprintf("work pool %q is paused: the worker will come ONLINE but pick up no flow runs until the pool is resumed (%s)", pool, out.WorkPoolURL))
	}
	return out, nil
}

func (c *Client) where() string {
	if c.cloud {
		return "Prefect Cloud workspace " + c.workspaceID
	}
	return "the Prefect server at " + c.APIURL()
}

// explain turns a failed preflight call into what to fix.
func (c *Client) explain(err error, in PreflightInput) error {
	var hint string
	switch StatusOf(err) {
	case http.StatusUnauthorized:
		if c.cloud {
			hint = "the Prefect API key was rejected: it is wrong or expired; create a new key (a service-account key, pnb_…) and update the prefect-api-key secret"
		} else {
			hint = "the Prefect server rejected the credentials: check the basic-auth string (PREFECT_SERVER_API_AUTH_STRING) or the key"
		}
	case http.StatusForbidden:
		detail := strings.ToLower(err.Error())
		switch {
		case strings.Contains(detail, "plan does not support"):
			hint = "this Prefect Cloud plan does not allow hybrid (ecs) work pools (Hobby has managed pools only); upgrade the plan or create the pool in a workspace that allows it"
		case strings.Contains(detail, "reserved"):
			hint = "pool names starting with \"prefect\" are reserved by Prefect; choose another prefect.work_pool"
		default:
			hint = "the key lacks permission: reading pools needs at least the Viewer role, creating one (create_work_pool) needs Developer"
		}
	case http.StatusNotFound:
		if c.cloud {
			hint = "the key's account is not a member of workspace " + c.workspaceID + ", or the api_url names the wrong account/workspace"
		} else {
			hint = "no Prefect API at " + c.APIURL() + ": a self-hosted api_url ends in /api"
		}
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusMovedPermanently, http.StatusFound:
		hint = "check prefect.api_url"
	case 0:
		hint = "cannot reach " + c.APIURL() + ": check prefect.api_url and the network"
	}
	if hint == "" {
		return fmt.Errorf("prefect preflight%s: %w", fileOf(in), err)
	}
	return fmt.Errorf("prefect preflight%s: %s: %w", fileOf(in), hint, err)
}

// fileOf names the environment file for messages, when there is one.
func fileOf(in PreflightInput) string {
	if in.File == "" {
		return ""
	}
	return " (" + in.File + ")"
}
