// Package clock owns time for everything that waits: the engine's polls and
// retries, the health gate, and the simulators. Tests and the demo use a
// Virtual clock so that minutes of AWS waiting take no real time.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock is the only source of "now" and "wait" in deploybot.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done; it returns ctx.Err() if cancelled.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Virtual is a simulated clock: Sleep advances simulated time at once instead of
// waiting. Concurrent sleepers each push time forward, so simulated elapsed time
// is an upper bound of what the real services would take; state transitions in
// the simulators are functions of Now(), so they stay correct.
//
// RealPerSimSecond, when non-zero, makes each Sleep also wait that much real time
// per simulated second (benchmarks use it so that waits show in wall time).
type Virtual struct {
	mu               sync.Mutex
	now              time.Time
	RealPerSimSecond time.Duration
}

// NewVirtual starts a virtual clock at a fixed instant, so runs are reproducible.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Advance moves simulated time forward by d.
func (v *Virtual) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	v.mu.Lock()
	v.now = v.now.Add(d)
	v.mu.Unlock()
}

func (v *Virtual) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if v.RealPerSimSecond > 0 && d > 0 {
		if err := (Real{}).Sleep(ctx, time.Duration(float64(v.RealPerSimSecond)*d.Seconds())); err != nil {
			return err
		}
	}
	v.Advance(d)
	return nil
}
