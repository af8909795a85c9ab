package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// graph is the dependency graph of a stack: deps[a] are the addresses a
// needs, dependents[a] the addresses that need a.
type graph struct {
	nodes      []string // sorted
	deps       map[string][]string
	dependents map[string][]string
}

func newGraph(deps map[string][]string) (*graph, error) {
	g := &graph{deps: map[string][]string{}, dependents: map[string][]string{}}
	for n := range deps {
		g.nodes = append(g.nodes, n)
	}
	sort.Strings(g.nodes)
	for _, n := range g.nodes {
		ds := append([]string(nil), deps[n]...)
		sort.Strings(ds)
		for i, d := range ds {
			if i > 0 && ds[i-1] == d {
				continue
			}
			if _, ok := deps[d]; !ok {
				return nil, fmt.Errorf("%s depends on %s, which is not in the stack", n, d)
			}
			if d == n {
				return nil, fmt.Errorf("dependency cycle: %s -> %s", n, n)
			}
			g.deps[n] = append(g.deps[n], d)
			g.dependents[d] = append(g.dependents[d], n)
		}
	}
	for _, n := range g.nodes {
		sort.Strings(g.dependents[n])
	}
	return g, nil
}

// topoOrder returns the nodes with every dependency before its dependents;
// among nodes that are ready at the same time the smaller address comes
// first, so the same stack always gives the same order (terraform's dag
// does the same, style-anchors.md §2). A cycle is an error that names it.
func (g *graph) topoOrder() ([]string, error) {
	indegree := map[string]int{}
	for _, n := range g.nodes {
		indegree[n] = len(g.deps[n])
	}
	var ready []string
	for _, n := range g.nodes {
		if indegree[n] == 0 {
			ready = append(ready, n)
		}
	}
	var order []string
	for len(ready) > 0 {
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, d := range g.dependents[n] {
			indegree[d]--
			if indegree[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if len(order) == len(g.nodes) {
		return order, nil
	}
	left := map[string]bool{}
	for _, n := range g.nodes {
		if indegree[n] > 0 {
			left[n] = true
		}
	}
	return nil, &CycleError{Cycle: g.findCycle(left)}
}

// findCycle walks dependencies from the smallest address still blocked until
// it comes back to an address it has seen; every blocked node is on a cycle
// or depends on one, so the walk always finds one.
func (g *graph) findCycle(left map[string]bool) []string {
	var start string
	for _, n := range g.nodes {
		if left[n] {
			start = n
			break
		}
	}
	seen := map[string]int{}
	var path []string
	n := start
	for {
		if i, ok := seen[n]; ok {
			cycle := append([]string(nil), path[i:]...)
			return append(cycle, n)
		}
		seen[n] = len(path)
		path = append(path, n)
		next := ""
		for _, d := range g.deps[n] {
			if left[d] {
				next = d
				break
			}
		}
		if next == "" { // cannot happen for a blocked node; be safe
			return path
		}
		n = next
	}
}

// CycleError is a dependency cycle in a stack, e.g.
// "dependency cycle: a.x -> b.y -> a.x".
type CycleError struct{ Cycle []string }

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Cycle, " -> ")
}

// step is one unit of an apply or destroy walk.
type step struct {
	id    string
	after []string // step ids that must be done first
	run   func(ctx context.Context) error
}

type stepState int

const (
	stepPending stepState = iota
	stepDone
	stepFailed
	stepSkipped
)

// outcome is what happened to one step.
type outcome struct {
	state stepState
	err   error
	// cause is the first failed step upstream of a skipped one.
	cause string
}

// errUpstream marks steps not run because a dependency failed.
var errUpstream = errors.New("upstream dependency failed")

// walk runs steps with at most concurrency at once: a step starts when every
// step it comes after is done; when one of them failed or was skipped, it is
// skipped (one error per failure, not one per dependent: terraform's Walker,
// style-anchors.md §2). Steps are started in slice order among those ready,
// which keeps progress output in a stable order. After ctx is cancelled no
// new step starts; those left are skipped with ctx's error.
func walk(ctx context.Context, steps []*step, concurrency int) map[string]outcome {
	if concurrency < 1 {
		concurrency = 1
	}
	out := make(map[string]outcome, len(steps))
	type result struct {
		id  string
		err error
	}
	results := make(chan result)
	running := 0
	var wg sync.WaitGroup

	for {
		progressed := true
		for progressed {
			progressed = false
			for _, s := range steps {
				if _, ok := out[s.id]; ok {
					continue
				}
				ready, skip, cause := true, false, ""
				for _, a := range s.after {
					o, ok := out[a]
					switch {
					case !ok || o.state == stepPending:
						ready = false
					case o.state == stepFailed:
						skip, cause = true, a
					case o.state == stepSkipped:
						skip, cause = true, o.cause
					}
				}
				if skip && ready {
					out[s.id] = outcome{state: stepSkipped, err: errUpstream, cause: cause}
					progressed = true
					continue
				}
				if !ready {
					continue
				}
				if err := ctx.Err(); err != nil {
					out[s.id] = outcome{state: stepSkipped, err: err}
					progressed = true
					continue
				}
				if running >= concurrency {
					continue
				}
				out[s.id] = outcome{state: stepPending}
				running++
				wg.Add(1)
				go func(s *step) {
					defer wg.Done()
					results <- result{s.id, s.run(ctx)}
				}(s)
			}
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			out[r.id] = outcome{state: stepFailed, err: r.err}
		} else {
			out[r.id] = outcome{state: stepDone}
		}
	}
	wg.Wait()
	// Steps never started wait on each other (or on an unknown step): a
	// deadlock in the step graph. That is a failure, never a quiet skip.
	var stuck []string
	for _, s := range steps {
		if _, ok := out[s.id]; !ok {
			stuck = append(stuck, s.id)
		}
	}
	for _, id := range stuck {
		out[id] = outcome{state: stepFailed, err: &StepDeadlockError{Steps: stuck}}
	}
	return out
}

// StepDeadlockError: steps that wait on each other, so none could start.
type StepDeadlockError struct{ Steps []string }

func (e *StepDeadlockError) Error() string {
	return "steps wait on each other and cannot start: " + strings.Join(e.Steps, ", ")
}
