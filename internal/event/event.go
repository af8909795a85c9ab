// Package event is how deploybot says what it is doing while it does it:
// one Event type, produced by the engine, the resource kinds, the retry
// waits and the deploy orchestration, and one Sink interface that the
// command line and the GitHub Action choose a rendering for: the terminal
// (stderr, elapsed time per resource), the Actions log (workflow commands
// for warnings and groups) or JSON lines. Producers never print; sinks are
// safe for concurrent use, because a plan reads and an apply writes many
// resources at once.
package event

import (
	"sync"
	"time"
)

// Level says how much an event matters to the person reading the log.
type Level int

const (
	// Info is progress: a step started, a wait goes on, a step is done.
	Info Level = iota
	// Notice is an outcome worth finding again in a long log.
	Notice
	// Warning is something the user should act on that did not stop the run.
	Warning
	// Error is a step that failed.
	Error
)

func (l Level) String() string {
	switch l {
	case Notice:
		return "notice"
	case Warning:
		return "warning"
	case Error:
		return "error"
	default:
		return "info"
	}
}

// Event is one thing that happened.
type Event struct {
	Time time.Time
	// Environment is the environment the run acts on ("" when the sink
	// serves one environment only).
	Environment string
	// Subject is what the event is about: a resource address
	// ("ecs_service.worker") when Resource is set, else a phase of the run
	// ("lock", "prefect").
	Subject  string
	Resource bool
	// Title is the headline of an annotation (a notice, warning or error
	// the Actions log lists on the run's page); "" for none.
	Title   string
	Message string
	// Since is when the subject's step began: sinks show the time elapsed
	// since then. Zero when the event is not part of a step.
	Since time.Time
	Level Level
	// Wait is set on the progress lines of a long wait.
	Wait *Wait
}

// Elapsed is how long the subject's step has taken at the event, and
// whether the event is part of a step at all.
func (e Event) Elapsed() (time.Duration, bool) {
	if e.Since.IsZero() {
		return 0, false
	}
	return e.Time.Sub(e.Since), true
}

// Wait is the state of a long wait when it reports (at least every 30 s,
// issue 11 item 20).
type Wait struct {
	What    string
	Elapsed time.Duration
	Left    time.Duration
}

// Sink receives events. Implementations are safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Func is a function used as a Sink. It is called concurrently.
type Func func(Event)

// Emit calls f.
func (f Func) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = Func(func(Event) {})

// Tee sends every event to each of sinks (nil ones are skipped).
func Tee(sinks ...Sink) Sink {
	var out []Sink
	for _, s := range sinks {
		if s != nil {
			out = append(out, s)
		}
	}
	return Func(func(e Event) {
		for _, s := range out {
			s.Emit(e)
		}
	})
}

// ForEnvironment sets the environment of every event that has none, for a
// sink that serves several environments at once (the Action plans them
// concurrently).
func ForEnvironment(s Sink, env string) Sink {
	if s == nil {
		return Discard
	}
	return Func(func(e Event) {
		if e.Environment == "" {
			e.Environment = env
		}
		s.Emit(e)
	})
}

// Recorder keeps every event, for tests.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Lines is what a terminal would have shown of the recorded events,
// without the indentation of resource lines.
func (r *Recorder) Lines() []string {
	var out []string
	for _, e := range r.Events() {
		out = append(out, Text(e))
	}
	return out
}
