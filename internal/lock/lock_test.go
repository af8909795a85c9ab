package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/simtest"
)

func newSSM(t *testing.T) (*awssim.World, *ssm.Client, *clock.Virtual) {
	t.Helper()
	world := simtest.New(t, simtest.WithStart(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	return world.AWS, ssm.NewFromConfig(world.AWS.Config()), world.Clock
}

// acquire takes the staging lease for h, which must succeed.
func acquire(t *testing.T, ctx context.Context, c *ssm.Client, clk *clock.Virtual, h Holder, ttl time.Duration) *Lease {
	t.Helper()
	l, err := Acquire(ctx, c, clk, "staging", h, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var (
	alice = Holder{Who: "alice@laptop", Run: "pid 4242 on laptop", Operation: "destroy"}
	ci    = Holder{Who: "octocat", Run: "https://github.com/acme/infra/actions/runs/99", Operation: "apply"}
)

func TestTwoAcquirersExactlyOneWins(t *testing.T) {
	t.Parallel()
	for round := 0; round < 20; round++ {
		w, c, clk := newSSM(t)
		holders := []Holder{alice, ci}
		leases := make([]*Lease, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range holders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				leases[i], errs[i] = Acquire(context.Background(), c, clk, "staging", holders[i], 30*time.Minute)
			}()
		}
		close(start)
		wg.Wait()
		winner, loser := 0, 1
		if leases[0] == nil {
			winner, loser = 1, 0
		}
		if leases[winner] == nil || leases[loser] != nil {
			t.Fatalf("round %d: leases = %v, errs = %v; want exactly one", round, leases, errs)
		}
		var he *HeldError
		if !errors.As(errs[loser], &he) {
			t.Fatalf("round %d: loser error = %v, want *HeldError", round, errs[loser])
		}
		w2 := holders[winner]
		for _, s := range []string{w2.Who, w2.Run, w2.Operation, "deploybot unlock -e"} {
			if !strings.Contains(he.Error(), s) {
				t.Errorf("round %d: %q does not name %q", round, he.Error(), s)
			}
		}
		if he.Stale {
			t.Errorf("a fresh lease is not stale")
		}
		if got := w.TaggedFor("staging"); len(got) != 1 || got[0].Service != "ssm" {
			t.Errorf("inventory = %+v, want the one lock parameter", got)
		}
	}
}

func TestReleaseThenAcquireAgain(t *testing.T) {
	t.Parallel()
	w, c, clk := newSSM(t)
	ctx := context.Background()
	l := acquire(t, ctx, c, clk, alice, time.Hour)
	rec, _, err := Read(ctx, c, "staging")
	if err != nil {
		t.Fatal(err)
	}
	want := Record{Holder: alice.Who, Run: alice.Run, Operation: "destroy", Acquired: clk.Now(), Expires: clk.Now().Add(time.Hour), Token: l.Record.Token}
	if d := cmp.Diff(&want, rec); d != "" {
		t.Fatalf("stored lease (-want +got):\n%s", d)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.TaggedFor("staging"); len(got) != 0 {
		t.Fatalf("release left %+v", got)
	}
	if _, err := Acquire(ctx, c, clk, "staging", ci, time.Hour); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	// Other environments are independent.
	if _, err := Acquire(ctx, c, clk, "prod", alice, time.Hour); err != nil {
		t.Fatalf("acquire another environment: %v", err)
	}
}

func TestExpiredLeaseIsReportedStaleNotTaken(t *testing.T) {
	t.Parallel()
	_, c, clk := newSSM(t)
	ctx := context.Background()
	acquire(t, ctx, c, clk, ci, 30*time.Minute)
	clk.Advance(2 * time.Hour)
	_, err := Acquire(ctx, c, clk, "staging", alice, 30*time.Minute)
	var he *HeldError
	if !errors.As(err, &he) || !he.Stale {
		t.Fatalf("err = %v, want a stale *HeldError", err)
	}
	for _, s := range []string{"stale", ci.Who, ci.Run, "1h30m0s ago", "deploybot unlock -e FILE"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not mention %q", err, s)
		}
	}
	rec, _, _ := Read(ctx, c, "staging")
	if rec == nil || rec.Holder != ci.Who {
		t.Fatalf("the stale lease must stay until broken; now %+v", rec)
	}
}

func TestBreakAndReleaseOfABrokenLease(t *testing.T) {
	t.Parallel()
	_, c, clk := newSSM(t)
	ctx := context.Background()
	stuck := acquire(t, ctx, c, clk, ci, time.Hour)
	was, err := Break(ctx, c, "staging")
	if err != nil || was == nil || was.Holder != ci.Who {
		t.Fatalf("break = %+v, %v", was, err)
	}
	mine, err := Acquire(ctx, c, clk, "staging", alice, time.Hour)
	if err != nil {
		t.Fatalf("acquire after break: %v", err)
	}
	// The broken holder comes back: its release must not delete our lease.
	err = stuck.Release(ctx)
	var lost *LostError
	if !errors.As(err, &lost) || lost.Now == nil || lost.Now.Holder != alice.Who {
		t.Fatalf("release of a broken lease = %v, want *LostError naming the new holder", err)
	}
	if rec, _, _ := Read(ctx, c, "staging"); rec == nil || rec.Token != mine.Record.Token {
		t.Fatalf("our lease was deleted by the old holder: %+v", rec)
	}
	if err := stuck.Renew(ctx, time.Hour); !errors.As(err, &lost) {
		t.Fatalf("renew of a broken lease = %v, want *LostError", err)
	}
	if err := mine.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if was, err := Break(ctx, c, "staging"); err != nil || was != nil {
		t.Fatalf("break of an unlocked environment = %+v, %v; want nil, nil", was, err)
	}
}

func TestRenewExtendsExpiry(t *testing.T) {
	t.Parallel()
	_, c, clk := newSSM(t)
	ctx := context.Background()
	l := acquire(t, ctx, c, clk, ci, 10*time.Minute)
	clk.Advance(9 * time.Minute)
	if err := l.Renew(ctx, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	_, err := Acquire(ctx, c, clk, "staging", alice, time.Minute)
	var he *HeldError
	if !errors.As(err, &he) || he.Stale {
		t.Fatalf("after renew the lease is live: %v", err)
	}
}

func TestForeignValueIsHeldButNotParsed(t *testing.T) {
	t.Parallel()
	_, c, clk := newSSM(t)
	ctx := context.Background()
	if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(ParameterName("staging")), Value: aws.String("someone's note")}); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(ctx, c, clk, "staging", alice, time.Hour)
	var he *HeldError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "someone's note") || !IsHeld(err) {
		t.Fatalf("err = %v", err)
	}
	if was, err := Break(ctx, c, "staging"); err != nil || was == nil {
		t.Fatalf("break = %v %v", was, err)
	}
}

func TestHolderFromEnv(t *testing.T) {
	t.Parallel()
	gh := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "123", "GITHUB_REPOSITORY": "acme/infra",
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_ACTOR": "octocat", "GITHUB_RUN_ATTEMPT": "2"}
	got := HolderFromEnv("apply", func(k string) string { return gh[k] })
	want := Holder{Who: "octocat", Run: "https://github.com/acme/infra/actions/runs/123/attempts/2", Operation: "apply",
		Repository: "acme/infra", RunID: "123", Attempt: 2}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	local := HolderFromEnv("destroy", func(k string) string { return map[string]string{"USER": "alice"}[k] })
	if !strings.HasPrefix(local.Who, "alice@") || !strings.HasPrefix(local.Run, "pid ") || local.PID != os.Getpid() || local.Host == "" {
		t.Fatalf("local holder = %+v", local)
	}
}

// TestTakeoverOnlyFromAStoppedHolder is issue 11 item 19: a lease left by
// a killed run is taken over, and said so, when its holder is known to have
// stopped (an earlier attempt of the same GitHub run; a process of this host
// that no longer exists); any other holder is still refused and named.
func TestTakeoverOnlyFromAStoppedHolder(t *testing.T) {
	run := func(id string, attempt int) Holder {
		return Holder{Who: "octocat", Run: "https://github.com/acme/infra/actions/runs/" + id, Operation: "apply",
			Repository: "acme/infra", RunID: id, Attempt: attempt}
	}
	local := func(host string, pid int) Holder {
		return Holder{Who: "alice@" + host, Run: fmt.Sprintf("pid %d on %s", pid, host), Operation: "destroy", Host: host, PID: pid}
	}
	const deadPID, livePID = 4001, 4002
	ProcessAlive = func(pid int) bool { return pid != deadPID }
	t.Cleanup(func() { ProcessAlive = processAlive })
	cases := []struct {
		name         string
		held, taker  Holder
		takeover     bool
		wantInNote   string
		wantInRefuse string
	}{
		{"a re-attempt of the same run", run("99", 1), run("99", 2), true, "attempt 1 of this same workflow run", ""},
		{"the same attempt (another job of the run)", run("99", 2), run("99", 2), false, "", "runs/99"},
		{"an earlier attempt does not take a later one's", run("99", 3), run("99", 2), false, "", "runs/99"},
		{"another run", run("98", 1), run("99", 2), false, "", "runs/98"},
		{"the same run id in another repository", Holder{Who: "x", Run: "r", Repository: "other/repo", RunID: "99", Attempt: 1}, run("99", 2), false, "", "run r"},
		{"a dead process on this host", local("laptop", deadPID), local("laptop", 5000), true, "pid 4001 on laptop", ""},
		{"a live process on this host", local("laptop", livePID), local("laptop", 5000), false, "", "pid 4002 on laptop"},
		{"a dead pid on another host", local("desktop", deadPID), local("laptop", 5000), false, "", "pid 4001 on desktop"},
		{"a laptop does not take a CI run's", run("99", 1), local("laptop", 5000), false, "", "runs/99"},
		{"a CI run does not take a laptop's", local("laptop", deadPID), run("99", 1), false, "", "pid 4001 on laptop"},
		{"an old lease without identity", Holder{Who: "bob", Run: "pid 7 on laptop", Operation: "apply"}, local("laptop", 5000), false, "", "bob"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, api, clk := newSSM(t)
			ctx := context.Background()
			acquire(t, ctx, api, clk, c.held, time.Hour)
			l, err := Acquire(ctx, api, clk, "staging", c.taker, time.Hour)
			if !c.takeover {
				var he *HeldError
				if !errors.As(err, &he) || !strings.Contains(err.Error(), c.wantInRefuse) {
					t.Fatalf("err = %v, want a *HeldError naming %q", err, c.wantInRefuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("takeover refused: %v", err)
			}
			note := l.TakeoverNote()
			for _, want := range []string{"took over the lock of environment staging", c.held.Who, c.held.Run, c.wantInNote} {
				if !strings.Contains(note, want) {
					t.Errorf("note %q does not say %q", note, want)
				}
			}
			rec, _, _ := Read(ctx, api, "staging")
			if rec == nil || rec.Token != l.Record.Token {
				t.Errorf("the lease stored is %+v, not the new one", rec)
			}
		})
	}
}

func TestProcessAliveOfThisProcess(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Error("this process is not alive")
	}
}
