package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
)

var (
	errBusy  = errors.New("busy")
	errFatal = errors.New("fatal")
)

func isBusy(err error) bool { return errors.Is(err, errBusy) }

func newClock() *clock.Virtual { return clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

func TestWhen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		failures     int   // attempts that fail with errBusy before success
		fail         error // returned instead of success, when set
		budget       time.Duration
		wantAttempts int
		wantErr      error
		wantTimeout  bool
	}{
		{name: "first attempt", failures: 0, budget: time.Minute, wantAttempts: 1},
		{name: "after retries", failures: 3, budget: time.Minute, wantAttempts: 4},
		{name: "not retryable", failures: 0, fail: errFatal, budget: time.Minute, wantAttempts: 1, wantErr: errFatal},
		{name: "budget runs out", failures: 100, budget: 25 * time.Second, wantAttempts: 4, wantErr: errBusy, wantTimeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			attempts := 0
			v, err := When(context.Background(), Options{Clock: clk, Budget: tt.budget, Every: 10 * time.Second}, "CreateThing", isBusy,
				func() (int, error) {
					attempts++
					if attempts <= tt.failures {
						return 0, errBusy
					}
					if tt.fail != nil {
						return 0, tt.fail
					}
					return 42, nil
				})
			if attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var te *TimeoutError
			if got := errors.As(err, &te); got != tt.wantTimeout || IsTimeout(err) != tt.wantTimeout {
				t.Fatalf("timeout = %v (%v), want %v", got, err, tt.wantTimeout)
			}
			if tt.wantTimeout {
				want := TimeoutError{What: "CreateThing", Budget: 25 * time.Second, Elapsed: 30 * time.Second, Attempts: 4}
				got := *te
				got.Last = nil
				if !errors.Is(te.Last, errBusy) {
					t.Errorf("last error %v, want %v", te.Last, errBusy)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("timeout error (-want +got):\n%s", d)
				}
				if got := te.Error(); got != "CreateThing: still failing after 25s: busy" {
					t.Errorf("message %q", got)
				}
			}
			if err == nil && v != 42 {
				t.Errorf("value %d", v)
			}
		})
	}
}

func TestUntilReportsAtLeastEveryThirtySeconds(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var got []Progress
	polls := 0
	_, err := Until(context.Background(), Options{Clock: clk, Budget: 3 * time.Minute, Every: 10 * time.Second,
		Report: func(p Progress) { got = append(got, p) }}, "subnet-1 network interfaces to go",
		func() (struct{}, bool, error) {
			polls++
			return struct{}{}, polls == 10, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range got {
		lines = append(lines, p.String())
	}
	want := []string{
		"subnet-1 network interfaces to go: waiting (0s elapsed, 3m0s left)",
		"subnet-1 network interfaces to go: waiting (30s elapsed, 2m30s left)",
		"subnet-1 network interfaces to go: waiting (1m0s elapsed, 2m0s left)",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Fatalf("progress (-want +got):\n%s", d)
	}
	// The longest silence is ReportEvery, whatever the poll interval.
	for i := 1; i < len(got); i++ {
		if gap := got[i].Elapsed - got[i-1].Elapsed; gap > ReportEvery {
			t.Errorf("silent for %s", gap)
		}
	}
}

func TestUntilTimesOutWithoutAnError(t *testing.T) {
	t.Parallel()
	_, err := Until(context.Background(), Options{Clock: newClock(), Budget: time.Minute, Every: 15 * time.Second}, "deployment",
		func() (int, bool, error) { return 0, false, nil })
	var te *TimeoutError
	if !errors.As(err, &te) || te.Last != nil || te.Attempts != 5 || err.Error() != "deployment: not done after 1m0s" {
		t.Fatalf("err = %#v", err)
	}
}

func TestBackoffNeverSleepsPastTheBudget(t *testing.T) {
	t.Parallel()
	clk := newClock()
	start := clk.Now()
	var next []time.Duration
	err := Do(context.Background(), Options{Clock: clk, Budget: 6 * time.Second, Every: time.Second, Backoff: true, MaxEvery: 30 * time.Second,
		ReportEach: true, Report: func(p Progress) { next = append(next, p.Next) }}, "create", isBusy,
		func() error { return errBusy })
	var te *TimeoutError
	if !errors.As(err, &te) || te.Attempts != 3 {
		t.Fatalf("err = %v", err)
	}
	if d := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, next); d != "" {
		t.Errorf("pauses (-want +got):\n%s", d)
	}
	if took := clk.Now().Sub(start); took > 6*time.Second {
		t.Errorf("slept %s of a 6s budget", took)
	}
}

func TestStartCountsTimeAlreadySpent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	start := clk.Now()
	clk.Advance(50 * time.Second)
	attempts := 0
	err := Do(context.Background(), Options{Clock: clk, Start: start, Budget: time.Minute, Every: 10 * time.Second}, "delete", isBusy,
		func() error { attempts++; return errBusy })
	var te *TimeoutError
	if !errors.As(err, &te) || attempts != 2 || te.Elapsed != time.Minute {
		t.Fatalf("attempts %d, err %#v", attempts, err)
	}
}

func TestCancelledContextStopsTheWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	err := Do(ctx, Options{Clock: newClock(), Budget: time.Hour, Every: time.Second}, "x", isBusy, func() error {
		attempts++
		if attempts == 2 {
			cancel()
		}
		return errBusy
	})
	if !errors.Is(err, context.Canceled) || attempts != 2 {
		t.Fatalf("attempts %d, err %v", attempts, err)
	}
}
