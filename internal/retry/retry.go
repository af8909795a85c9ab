// Package retry owns every wait of deploybot: calling AWS again while it
// answers with an error that only time fixes (IAM propagation, a dependency
// still being deleted, throttling), and polling until a resource reaches the
// state that is waited for. It is terraform-provider-aws's
// internal/tfresource/retry.go in spirit (RetryWhen[T]: retry while a typed
// predicate says so), with two things of our own: time is the virtual clock
// of internal/clock, so tests never sleep, and a wait is never silent: it
// reports what it waits for, how long it has waited and how much of its
// budget is left at least every ReportEvery (issue 11 item 20).
//
// When the budget runs out the error is a *TimeoutError, which callers
// recognise with errors.As, never by its text.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
)

// ReportEvery is the longest a wait stays silent: a person watching a
// destroy wait twenty minutes for a subnet's network interfaces sees a line
// at least this often (issue 11 item 20).
const ReportEvery = 30 * time.Second

// Options describe one wait.
type Options struct {
	Clock clock.Clock
	// Budget is how long the wait may take, counted from Start.
	Budget time.Duration
	// Start is when the budget began; zero is the first attempt. A delete
	// that spent part of its budget waiting already passes its own start.
	Start time.Time
	// Every is the pause between attempts.
	Every time.Duration
	// Backoff doubles the pause after each attempt up to MaxEvery, and never
	// sleeps past the budget: throttling, where the next attempt is only
	// worth making if it can still be made in time.
	Backoff  bool
	MaxEvery time.Duration
	// Report receives the wait's progress: at the first attempt that has to
	// wait and at least every ReportEvery after it (every attempt with
	// ReportEach). nil: silent.
	Report     func(Progress)
	ReportEach bool
}

// Progress is a wait's state when it reports.
type Progress struct {
	What    string
	Attempt int
	Elapsed time.Duration
	// Left is the budget still to spend; Next the pause before the next attempt.
	Left, Next time.Duration
	// Err is the retryable error of the last attempt (nil for a poll that
	// is simply not done yet).
	Err error
}

// String is the line a person reads: what, why, elapsed and left.
func (p Progress) String() string {
	why := "waiting"
	if p.Err != nil {
		why = "retrying: " + p.Err.Error()
	}
	return fmt.Sprintf("%s: %s (%s elapsed, %s left)", p.What, why, round(p.Elapsed), round(p.Left))
}

// TimeoutError is a wait whose budget ran out.
type TimeoutError struct {
	What     string
	Budget   time.Duration
	Elapsed  time.Duration
	Attempts int
	// Last is the last attempt's retryable error; nil when a poll was
	// never done.
	Last error
}

func (e *TimeoutError) Error() string {
	if e.Last != nil {
		return fmt.Sprintf("%s: still failing after %s: %v", e.What, round(e.Budget), e.Last)
	}
	return fmt.Sprintf("%s: not done after %s", e.What, round(e.Budget))
}

// Unwrap gives the last error, so that its code can still be asked for.
func (e *TimeoutError) Unwrap() error { return e.Last }

// IsTimeout says whether err is (or wraps) a wait whose budget ran out.
func IsTimeout(err error) bool {
	var te *TimeoutError
	return errors.As(err, &te)
}

// When calls f until it succeeds, fails with an error retryable does not
// accept, ctx ends, or the budget runs out (a *TimeoutError wrapping the
// last error).
func When[T any](ctx context.Context, o Options, what string, retryable func(error) bool, f func() (T, error)) (T, error) {
	return loop(ctx, o, what, func() (T, bool, error, error) {
		v, err := f()
		switch {
		case err == nil:
			return v, true, nil, nil
		case retryable(err):
			return v, false, err, nil
		default:
			return v, false, nil, err
		}
	})
}

// Do is When for calls without a result.
func Do(ctx context.Context, o Options, what string, retryable func(error) bool, f func() error) error {
	_, err := When(ctx, o, what, retryable, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// Until calls check until it says done, fails, ctx ends, or the budget runs
// out (a *TimeoutError).
func Until[T any](ctx context.Context, o Options, what string, check func() (T, bool, error)) (T, error) {
	return loop(ctx, o, what, func() (T, bool, error, error) {
		v, done, err := check()
		return v, done, nil, err
	})
}

// loop runs attempt until it is done or fails; retryable is the error of an
// attempt that is to be made again (nil for a poll that is not done).
func loop[T any](ctx context.Context, o Options, what string, attempt func() (v T, done bool, retryable, fatal error)) (T, error) {
	clk := o.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	start := o.Start
	if start.IsZero() {
		start = clk.Now()
	}
	deadline := start.Add(o.Budget)
	delay := o.Every
	var lastReport time.Time
	for n := 1; ; n++ {
		v, done, again, err := attempt()
		if done || err != nil {
			return v, err
		}
		now := clk.Now()
		timedOut := !now.Before(deadline)
		if o.Backoff {
			timedOut = now.Add(delay).After(deadline)
		}
		if timedOut {
			return v, &TimeoutError{What: what, Budget: o.Budget, Elapsed: now.Sub(start), Attempts: n, Last: again}
		}
		if err := ctx.Err(); err != nil {
			return v, err
		}
		if o.Report != nil && (o.ReportEach || lastReport.IsZero() || now.Sub(lastReport) >= ReportEvery) {
			lastReport = now
			o.Report(Progress{What: what, Attempt: n, Elapsed: now.Sub(start), Left: deadline.Sub(now), Next: delay, Err: again})
		}
		if err := clk.Sleep(ctx, delay); err != nil {
			return v, err
		}
		if o.Backoff {
			delay = min(2*delay, max(o.MaxEvery, o.Every))
		}
	}
}

func round(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}
