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

	// timers run simulated processes (AfterFunc); firing is set while a
	// goroutine runs them.
	timers []*timer
	seq    int
	firing bool
}

type timer struct {
	at      time.Time
	seq     int
	f       func()
	stopped bool
}

// NewVirtual starts a virtual clock at a fixed instant, so runs are reproducible.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Advance moves simulated time forward by d, running on the way, in time
// order and with Now() at each one's instant, the timers AfterFunc set.
// While another Advance runs timers (or from inside a timer's function),
// time just moves: those timers run on that goroutine's way.
func (v *Virtual) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	v.mu.Lock()
	target := v.now.Add(d)
	if v.firing || len(v.timers) == 0 {
		if target.After(v.now) {
			v.now = target
		}
		v.mu.Unlock()
		return
	}
	v.firing = true
	for {
		t := v.nextTimer(target)
		if t == nil {
			break
		}
		if t.at.After(v.now) {
			v.now = t.at
		}
		v.mu.Unlock()
		t.f()
		v.mu.Lock()
	}
	if target.After(v.now) {
		v.now = target
	}
	v.firing = false
	v.mu.Unlock()
}

// nextTimer removes and returns the earliest timer due at or before
// target. Callers hold v.mu.
func (v *Virtual) nextTimer(target time.Time) *timer {
	best := -1
	for i, t := range v.timers {
		if t.stopped || t.at.After(target) {
			continue
		}
		if best < 0 || t.at.Before(v.timers[best].at) || (t.at.Equal(v.timers[best].at) && t.seq < v.timers[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	t := v.timers[best]
	v.timers = append(v.timers[:best], v.timers[best+1:]...)
	return t
}

// AfterFunc runs f once simulated time reaches Now()+d, on the goroutine
// whose Advance or Sleep moves time there, with Now() at that instant;
// timers due at the same instant run in the order they were set. It is for
// simulated processes (a Prefect worker polling its pool): f must not
// block, and should not sleep on this clock. stop cancels f if it has not
// run, and says whether it had not.
func (v *Virtual) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seq++
	t := &timer{at: v.now.Add(d), seq: v.seq, f: f}
	v.timers = append(v.timers, t)
	return func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		for i, x := range v.timers {
			if x == t {
				v.timers = append(v.timers[:i], v.timers[i+1:]...)
				return was
			}
		}
		return false
	}
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
