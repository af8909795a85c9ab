// Package lock is the per-environment lease that lets one apply or destroy
// run at a time, across CI runs and laptops. The lease lives in AWS itself,
// next to what it protects: the SSM parameter /deploybot/NAME/lock, created
// only if absent (PutParameter with Overwrite=false, which SSM answers with
// ParameterAlreadyExists for every caller but one). Its value says who holds
// it, from which run, for what, and until when. An expired lease is reported
// as stale, never silently taken: its holder may still be running, so a
// person decides (deploybot unlock -e FILE). plan takes no lock.
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/resource"
)

// ParameterName is the SSM parameter holding environment env's lease.
func ParameterName(env string) string { return "/deploybot/" + env + "/lock" }

// Holder says who takes a lease.
type Holder struct {
	// Who is "user@host" on a laptop or the GitHub actor in Actions.
	Who string
	// Run is the GitHub Actions run URL, or "pid N on host" locally.
	Run string
	// Operation is "apply" or "destroy".
	Operation string
}

// Record is the lease as stored in the parameter (JSON).
type Record struct {
	Holder    string    `json:"holder"`
	Run       string    `json:"run"`
	Operation string    `json:"operation"`
	Acquired  time.Time `json:"acquired"`
	Expires   time.Time `json:"expires"`
	// Token identifies one acquisition, so that Release deletes the lease
	// only while it is still this one.
	Token string `json:"token"`
}

// Lease is a held lock.
type Lease struct {
	Env    string
	Record Record

	ssm awsapi.SSMAPI
	clk clock.Clock
}

// HeldError: someone else holds the lease (or held it: Stale).
type HeldError struct {
	Env    string
	Record Record
	// Raw is the parameter's value when it is not a lease deploybot wrote.
	Raw string
	// Stale: the lease expired; its holder probably died without releasing.
	Stale bool
	Now   time.Time
}

func (e *HeldError) Error() string {
	if e.Raw != "" {
		return fmt.Sprintf("environment %s is locked: SSM parameter %s holds %q, which is not a deploybot lease; if nothing is running, break it with `deploybot unlock -e FILE`",
			e.Env, ParameterName(e.Env), clip(e.Raw, 200))
	}
	r := e.Record
	what := fmt.Sprintf("environment %s is locked by %s (run %s, %s) since %s", e.Env, r.Holder, r.Run, r.Operation, r.Acquired.UTC().Format(time.RFC3339))
	if e.Stale {
		return fmt.Sprintf("%s; the lease expired at %s (%s ago), so it is stale: its holder probably stopped without releasing it. "+
			"Check that run is not still going, then break the lock with `deploybot unlock -e FILE`",
			what, r.Expires.UTC().Format(time.RFC3339), e.Now.Sub(r.Expires).Round(time.Second))
	}
	return fmt.Sprintf("%s, lease expires %s (in %s); wait for it to finish, or if that run is gone, break the lock with `deploybot unlock -e FILE`",
		what, r.Expires.UTC().Format(time.RFC3339), r.Expires.Sub(e.Now).Round(time.Second))
}

// LostError: Release or Renew found the lease no longer ours (it was broken,
// and maybe taken by someone else). Nothing was deleted.
type LostError struct {
	Env string
	Now *Record // the lease there now, nil if none
}

func (e *LostError) Error() string {
	if e.Now == nil {
		return fmt.Sprintf("the lock of environment %s was broken while this run held it", e.Env)
	}
	return fmt.Sprintf("the lock of environment %s was broken while this run held it and is now held by %s (run %s, %s); it was left alone",
		e.Env, e.Now.Holder, e.Now.Run, e.Now.Operation)
}

// Acquire takes environment env's lease for ttl, or fails fast with a
// *HeldError naming the holder.
func Acquire(ctx context.Context, api awsapi.SSMAPI, clk clock.Clock, env string, h Holder, ttl time.Duration) (*Lease, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	// A lease released between our failed put and our read leaves nothing to
	// report: try again, a few times.
	for attempt := 0; attempt < 3; attempt++ {
		now := clk.Now().UTC()
		rec := Record{Holder: h.Who, Run: h.Run, Operation: h.Operation, Acquired: now, Expires: now.Add(ttl), Token: token}
		value, _ := json.Marshal(rec)
		_, err := api.PutParameter(ctx, &ssm.PutParameterInput{
			Name:        aws.String(ParameterName(env)),
			Value:       aws.String(string(value)),
			Type:        ssmtypes.ParameterTypeString,
			Overwrite:   aws.Bool(false),
			Description: aws.String("deploybot lock of environment " + env + "; break a stale one with deploybot unlock -e FILE"),
			Tags: []ssmtypes.Tag{
				{Key: aws.String(resource.TagEnvironment), Value: aws.String(env)},
				{Key: aws.String(resource.TagManagedBy), Value: aws.String(resource.ManagedByValue)},
			},
		})
		if err == nil {
			return &Lease{Env: env, Record: rec, ssm: api, clk: clk}, nil
		}
		if !awserr.IsAlreadyExists(err) {
			return nil, fmt.Errorf("lock environment %s: PutParameter %s: %w", env, ParameterName(env), err)
		}
		held, raw, err := Read(ctx, api, env)
		if err != nil {
			return nil, fmt.Errorf("lock environment %s: %w", env, err)
		}
		if held == nil && raw == "" {
			continue
		}
		he := &HeldError{Env: env, Raw: raw, Now: now}
		if held != nil {
			he.Record = *held
			he.Stale = !now.Before(held.Expires)
		}
		return nil, he
	}
	return nil, fmt.Errorf("lock environment %s: the lease kept changing hands; try again", env)
}

// Read returns the lease there now: (nil, "", nil) when unlocked; (nil, raw,
// nil) when the parameter holds something that is not a deploybot lease.
func Read(ctx context.Context, api awsapi.SSMAPI, env string) (*Record, string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ParameterName(env))})
	if awserr.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("GetParameter %s: %w", ParameterName(env), err)
	}
	value := aws.ToString(out.Parameter.Value)
	var rec Record
	if err := json.Unmarshal([]byte(value), &rec); err != nil || rec.Token == "" {
		return nil, value, nil
	}
	return &rec, "", nil
}

// Release deletes the lease if the parameter still holds this one; a lease
// broken meanwhile is left alone and reported as *LostError. SSM has no
// conditional delete, so a lease broken and re-taken between the read and
// the delete here would be deleted: the window is one round trip, and only
// opens after someone broke a live lease by hand.
func (l *Lease) Release(ctx context.Context) error {
	cur, _, err := Read(ctx, l.ssm, l.Env)
	if err != nil {
		return fmt.Errorf("unlock environment %s: %w", l.Env, err)
	}
	if cur == nil || cur.Token != l.Record.Token {
		return &LostError{Env: l.Env, Now: cur}
	}
	_, err = l.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(ParameterName(l.Env))})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("unlock environment %s: DeleteParameter %s: %w", l.Env, ParameterName(l.Env), err)
	}
	return nil
}

// Renew pushes the lease's expiry to now+ttl, if it is still this one (a long
// destroy waiting on ENIs and NAT gateways can outlast a short ttl).
func (l *Lease) Renew(ctx context.Context, ttl time.Duration) error {
	cur, _, err := Read(ctx, l.ssm, l.Env)
	if err != nil {
		return fmt.Errorf("renew lock of environment %s: %w", l.Env, err)
	}
	if cur == nil || cur.Token != l.Record.Token {
		return &LostError{Env: l.Env, Now: cur}
	}
	rec := l.Record
	rec.Expires = l.clk.Now().UTC().Add(ttl)
	value, _ := json.Marshal(rec)
	if _, err := l.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(ParameterName(l.Env)), Value: aws.String(string(value)),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
		return fmt.Errorf("renew lock of environment %s: PutParameter: %w", l.Env, err)
	}
	l.Record = rec
	return nil
}

// Break deletes environment env's lease whoever holds it (deploybot unlock)
// and returns what it was, nil if the environment was not locked.
func Break(ctx context.Context, api awsapi.SSMAPI, env string) (*Record, error) {
	cur, raw, err := Read(ctx, api, env)
	if err != nil {
		return nil, fmt.Errorf("break lock of environment %s: %w", env, err)
	}
	if cur == nil && raw == "" {
		return nil, nil
	}
	_, err = api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(ParameterName(env))})
	if err != nil && !awserr.IsNotFound(err) {
		return nil, fmt.Errorf("break lock of environment %s: DeleteParameter %s: %w", env, ParameterName(env), err)
	}
	if cur == nil {
		cur = &Record{Holder: "(not a deploybot lease: " + clip(raw, 80) + ")"}
	}
	return cur, nil
}

// IsHeld reports whether err is (or wraps) a *HeldError.
func IsHeld(err error) bool {
	var he *HeldError
	return errors.As(err, &he)
}

// HolderFromEnv says who is running: in GitHub Actions the actor and the
// run's URL (GITHUB_ACTOR, GITHUB_SERVER_URL, GITHUB_REPOSITORY,
// GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT); elsewhere user@host and the pid.
// getenv is os.Getenv in production.
func HolderFromEnv(operation string, getenv func(string) string) Holder {
	if getenv("GITHUB_ACTIONS") == "true" && getenv("GITHUB_RUN_ID") != "" {
		server := getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		run := fmt.Sprintf("%s/%s/actions/runs/%s", strings.TrimSuffix(server, "/"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"))
		if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" && a != "1" {
			run += "/attempts/" + a
		}
		who := getenv("GITHUB_ACTOR")
		if who == "" {
			who = "github-actions"
		}
		return Holder{Who: who, Run: run, Operation: operation}
	}
	name := getenv("USER")
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return Holder{Who: name + "@" + host, Run: fmt.Sprintf("pid %d on %s", os.Getpid(), host), Operation: operation}
}

func newToken() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lock token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
