package engine

import (
	"context"
	"errors"
	"testing"
)

// TestWalkDeadlockFails: steps that wait on each other fail, naming the
// steps; they are never quietly skipped (which once let an apply that did
// nothing report success).
func TestWalkDeadlockFails(t *testing.T) {
	t.Parallel()
	ran := false
	run := func(context.Context) error { ran = true; return nil }
	steps := []*step{
		{id: "delete:nat", after: []string{"apply:rt"}, run: run},
		{id: "apply:rt", after: []string{"apply:vpc"}, run: run},
		{id: "apply:vpc", after: []string{"delete:nat"}, run: run},
		{id: "apply:free", run: run},
	}
	out := walk(context.Background(), steps, 4)
	if !ran || out["apply:free"].state != stepDone {
		t.Fatalf("an independent step must still run: %+v", out["apply:free"])
	}
	for _, id := range []string{"delete:nat", "apply:rt", "apply:vpc"} {
		o := out[id]
		var dl *StepDeadlockError
		if o.state != stepFailed || !errors.As(o.err, &dl) || len(dl.Steps) != 3 {
			t.Errorf("%s: state %v err %v, want failed with a deadlock naming 3 steps", id, o.state, o.err)
		}
	}
}
