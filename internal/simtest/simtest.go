// Package simtest is the test support shared by every package whose tests
// run against the simulated services: one simulated AWS account (awssim), a
// Prefect API (prefectsim) and the virtual clock they share, set up the same
// way everywhere, plus the fixtures several packages build on (a worker
// stack's roles, secret and cluster, and a worker task definition that
// follows the worker identity contract of docs/ARCHITECTURE.md).
//
// Each World has its own clock, account and server, with its own timings
// (awssim.WithTimings, prefectsim.WithTimings), so tests that use it may run
// with t.Parallel(). Only tests import this package.
package simtest

import (
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/prefectsim"
)

// Start is when a World's clock starts unless WithStart says otherwise.
var Start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// World is one simulated AWS account and, with WithPrefect, one simulated
// Prefect API whose workers come from the account's ECS tasks.
type World struct {
	Clock *clock.Virtual
	AWS   *awssim.World
	// Prefect is nil unless WithPrefect was given.
	Prefect *prefectsim.Server
	// PrefectKey is an API key the Prefect server accepts (generated, so
	// that nothing can depend on its value).
	PrefectKey string
}

type settings struct {
	start       time.Time
	aws         []awssim.Option
	prefect     bool
	prefectOpts []prefectsim.Option
	pools       []string
	key         string
}

// Option configures New.
type Option func(*settings)

// WithStart sets when the clock starts.
func WithStart(t time.Time) Option { return func(s *settings) { s.start = t } }

// WithAWS passes options to awssim.New (timings, account, region).
func WithAWS(opts ...awssim.Option) Option {
	return func(s *settings) { s.aws = append(s.aws, opts...) }
}

// WithPrefect starts a simulated Prefect API on the world, accepting
// World.PrefectKey, with the given options besides.
func WithPrefect(opts ...prefectsim.Option) Option {
	return func(s *settings) { s.prefect = true; s.prefectOpts = append(s.prefectOpts, opts...) }
}

// WithPool creates an ecs work pool of that name (and implies WithPrefect).
func WithPool(name string) Option {
	return func(s *settings) { s.prefect = true; s.pools = append(s.pools, name) }
}

// WithPrefectKey makes key the valid API key instead of a generated one.
func WithPrefectKey(key string) Option { return func(s *settings) { s.key = key } }

// New makes a World; the Prefect server, if any, is closed when the test ends.
func New(tb testing.TB, opts ...Option) *World {
	tb.Helper()
	s := settings{start: Start}
	for _, o := range opts {
		o(&s)
	}
	w := &World{Clock: clock.NewVirtual(s.start)}
	w.AWS = awssim.New(w.Clock, s.aws...)
	if !s.prefect {
		return w
	}
	w.PrefectKey = s.key
	if w.PrefectKey == "" {
		w.PrefectKey = fakekey.Prefect("Simtest")
	}
	w.Prefect = prefectsim.New(w.AWS, append([]prefectsim.Option{prefectsim.WithKey(w.PrefectKey)}, s.prefectOpts...)...)
	tb.Cleanup(w.Prefect.Close)
	// An unexpected call to a double is a test failure, not a quiet 404.
	tb.Cleanup(func() {
		if u := w.Prefect.Unexpected(); len(u) > 0 {
			tb.Errorf("requests the simulated Prefect API does not know: %v", u)
		}
	})
	for _, p := range s.pools {
		w.Prefect.AddWorkPool(p, "ecs", false)
	}
	return w
}

// Advance moves the world's time on.
func (w *World) Advance(d time.Duration) { w.Clock.Advance(d) }
