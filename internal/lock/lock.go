// Package lock is the per-environment lease that lets one apply or destroy
// run at a time, across CI runs and laptops. The lease lives in AWS itself,
// next to what it protects: the SSM parameter /deploybot/NAME/lock, created
// only if absent (PutParameter with Overwrite=false, which SSM answers with
// ParameterAlreadyExists for every caller but one). Its value says who holds
// it, from which run, for what, and until when. A lease is taken over only
// when its holder is known to have stopped: it was left by an earlier
// attempt of the same GitHub Actions run (GitHub re-runs only a finished
// run), or by a process on this host that no longer exists (a SIGKILL, a
// closed laptop lid...). Anything else, an expired lease included, is
// reported with its holder and never silently taken: its holder may still
// be running, so a person decides (deploybot unlock -e FILE). plan takes no
// lock.
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
	"strconv"
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

	// In GitHub Actions: the repository (owner/name), the run id and its
	// attempt (GITHUB_RUN_ATTEMPT, 1 for the first).
	Repository string
	RunID      string
	Attempt    int
	// Elsewhere: the host name and the process id.
	Host string
	PID  int
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

	// Who holds it, precisely enough to know when that holder has stopped
	// (see Holder); absent from leases written by older versions, which
	// are never taken over.
	Repository string `json:"repository,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	Attempt    int    `json:"attempt,omitempty"`
	Host       string `json:"host,omitempty"`
	PID        int    `json:"pid,omitempty"`
}

// Lease is a held lock.
type Lease struct {
	Env    string
	Record Record
	// TookOver is the lease this one replaced, and Why it could: its
	// holder had stopped. nil when the environment was not locked.
	TookOver *Record
	Why      string

	ssm awsapi.SSMAPI
	clk clock.Clock
}

// TakeoverNote says which lease this one took over and why, or "".
func (l *Lease) TakeoverNote() string {
	if l.TookOver == nil {
		return ""
	}
	r := l.TookOver
	return fmt.Sprintf("took over the lock of environment %s held by %s (run %s, %s) since %s: %s",
		l.Env, r.Holder, r.Run, r.Operation, r.Acquired.UTC().Format(time.RFC3339), l.Why)
}

// ProcessAlive says whether a process of this host exists (signal 0); the
// lock asks it before taking over a lease of this host. Tests replace it.
var ProcessAlive = processAlive

// supersedes says whether h may take over the lease held: h is a later
// attempt of the same GitHub Actions run (GitHub starts a new attempt only
// once the run has completed: its rerun endpoints answer 403 "The workflow
// run containing this job is already running" before, as
// https://github.com/cli/cli/issues/9221 shows; see also
// https://docs.github.com/en/actions/managing-workflow-runs-and-deployments/managing-workflow-runs/re-running-workflows-and-jobs),
// or h runs on the holder's host and the holder's process is gone. It says
// why, for the note.
func supersedes(held Record, h Holder) (string, bool) {
	switch {
	case held.RunID != "" && h.RunID != "":
		if held.Repository == h.Repository && held.RunID == h.RunID && h.Attempt > held.Attempt && held.Attempt > 0 {
			return fmt.Sprintf("it was left by attempt %d of this same workflow run, and GitHub re-runs a run only after it has finished", held.Attempt), true
		}
	case held.RunID == "" && h.RunID == "":
		if held.Host != "" && held.Host == h.Host && held.PID > 0 && held.PID != h.PID && !ProcessAlive(held.PID) {
			return fmt.Sprintf("its process (pid %d on %s) no longer exists", held.PID, held.Host), true
		}
	}
	return "", false
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
	// report, and one taken over was deleted: try again, a few times.
	var tookOver *Record
	var why string
	for attempt := 0; attempt < 3; attempt++ {
		now := clk.Now().UTC()
		rec := Record{Holder: h.Who, Run: h.Run, Operation: h.Operation, Acquired: now, Expires: now.Add(ttl), Token: token,
			Repository: h.Repository, RunID: h.RunID, Attempt: h.Attempt, Host: h.Host, PID: h.PID}
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
			return &Lease{Env: env, Record: rec, TookOver: tookOver, Why: why, ssm: api, clk: clk}, nil
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
		if held != nil && tookOver == nil {
			if w, ok := supersedes(*held, h); ok {
				// SSM has no conditional delete: a lease taken by a third
				// party between the read and this delete would go too; the
				// create below then fails for one of us, who reports the other.
				if _, err := api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(ParameterName(env))}); err != nil && !awserr.IsNotFound(err) {
					return nil, fmt.Errorf("lock environment %s: take over the lease of %s: DeleteParameter %s: %w", env, held.Holder, ParameterName(env), err)
				}
				tookOver, why = held, w
				continue
			}
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
		attempt, err := strconv.Atoi(getenv("GITHUB_RUN_ATTEMPT"))
		if err != nil || attempt < 1 {
			attempt = 1
		}
		if attempt > 1 {
			run += "/attempts/" + strconv.Itoa(attempt)
		}
		who := getenv("GITHUB_ACTOR")
		if who == "" {
			who = "github-actions"
		}
		return Holder{Who: who, Run: run, Operation: operation,
			Repository: getenv("GITHUB_REPOSITORY"), RunID: getenv("GITHUB_RUN_ID"), Attempt: attempt}
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
	return Holder{Who: name + "@" + host, Run: fmt.Sprintf("pid %d on %s", os.Getpid(), host), Operation: operation,
		Host: host, PID: os.Getpid()}
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
