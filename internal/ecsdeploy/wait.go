package ecsdeploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WaitOptions bound and report a Wait.
type WaitOptions struct {
	// Interval between looks.
	Interval time.Duration
	// Budget is how long to wait for ECS to decide; then the deployment
	// is TimedOut (ECS carries on with it).
	Budget time.Duration
	// Progress receives each look whose status differs from the last (nil: none).
	Progress func(Status)
	// Fallback is told once, with the reason (Watcher.Fallback), when the
	// endpoint turns out to lack the service deployments API (nil: not told).
	Fallback func(reason string)
}

// Wait looks at the deployment every Interval until ECS decides or Budget
// runs out. It returns the last status and nil when the deployment is
// SUCCESSFUL; a *Failure when it ended otherwise or timed out (with the
// stopped tasks and service events since d.Since); any other error when it
// could not read ECS.
func (w *Watcher) Wait(ctx context.Context, d *Deployment, o WaitOptions) (Status, error) {
	deadline := w.Clock.Now().Add(o.Budget)
	say, fallback := o.Progress, o.Fallback
	if say == nil {
		say = func(Status) {}
	}
	if fallback == nil {
		fallback = func(string) {}
	}
	var last Status
	announced := false
	for first := true; ; first = false {
		st, err := w.Look(ctx, d)
		if err != nil {
			return last, err
		}
		if w.unsupported != nil && !announced {
			announced = true
			fallback(w.Fallback())
		}
		if first || st != last {
			say(st)
		}
		last = st
		if st.State == Successful {
			return st, nil
		}
		if st.State.Done() {
			return st, w.failure(ctx, d, st)
		}
		left := deadline.Sub(w.Clock.Now())
		if left <= 0 {
			st.Reason = fmt.Sprintf("not done after %s (last %s)", o.Budget, st)
			st.State = TimedOut
			return st, w.failure(ctx, d, st)
		}
		if err := w.Clock.Sleep(ctx, min(o.Interval, left)); err != nil {
			return last, err
		}
	}
}

// failure gathers what explains a deployment that did not succeed: its
// revision's stopped tasks and the service's events since the change.
// Reading them is best effort: the verdict stands without them.
func (w *Watcher) failure(ctx context.Context, d *Deployment, st Status) *Failure {
	f := &Failure{Service: d.Service, Deployment: d.ARN, State: st.State, Reason: st.Reason}
	if f.Deployment == "" {
		f.Deployment = d.ID
	}
	if stopped, err := w.StoppedTasks(ctx, d.Service, TaskFilter{TaskDefinition: d.TaskDefinition, Since: d.Since, Max: MaxStoppedTasks}); err == nil {
		f.StoppedTasks = stopped.Tasks
	}
	if ev, err := w.Events(ctx, d.Service, d.Since, MaxEvents); err == nil {
		f.Events = ev
	}
	return f
}

// AsFailure returns the *Failure in err's chain, or nil.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return nil
}
