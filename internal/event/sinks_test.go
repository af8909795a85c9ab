package event

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// events is one of each shape a run produces.
func events() []Event {
	return []Event{
		{Time: t0, Subject: "lock", Message: "taking the lock of environment staging…"},
		{Time: t0, Subject: "ecs_service.worker", Resource: true, Message: "creating…"},
		{Time: t0.Add(75 * time.Second), Since: t0, Subject: "ecs_service.worker", Resource: true,
			Message: "waiting for the deployment (1m15s elapsed, 18m45s left)",
			Wait:    &Wait{What: "the deployment", Elapsed: 75 * time.Second, Left: 1125 * time.Second}},
		{Time: t0.Add(90 * time.Second), Since: t0, Subject: "ecs_service.worker", Resource: true, Message: "created"},
		{Time: t0, Subject: "prefect", Level: Warning, Message: "work pool is paused"},
		{Time: t0, Subject: "subnet.public_a", Resource: true, Level: Error, Since: t0, Message: "AWS said:\nDependencyViolation 100%\r\n::error::injected"},
	}
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	s := Terminal(&b)
	for _, e := range events() {
		s.Emit(e)
	}
	want := strings.Join([]string{
		"lock: taking the lock of environment staging…",
		"  ecs_service.worker: creating…",
		"  ecs_service.worker: waiting for the deployment (1m15s elapsed, 18m45s left)",
		"  ecs_service.worker: created (1m30s)",
		"warning: prefect: work pool is paused",
		"  subnet.public_a: AWS said: DependencyViolation 100% ::error::injected (0s)",
	}, "\n") + "\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("terminal (-want +got):\n%s", d)
	}
}

func TestActionsNeverLetsAMessageBecomeACommand(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	s := ForEnvironment(Actions(&b, ActionsOptions{}), "staging")
	for _, e := range events() {
		s.Emit(e)
	}
	s.Emit(Event{Time: t0, Message: "::set-output name=x::y"})
	want := strings.Join([]string{
		"[staging] lock: taking the lock of environment staging…",
		"[staging] ecs_service.worker: creating…",
		"[staging] ecs_service.worker: waiting for the deployment (1m15s elapsed, 18m45s left)",
		"[staging] ecs_service.worker: created (1m30s)",
		"::warning::[staging] prefect: work pool is paused",
		"::error::[staging] subnet.public_a: AWS said: DependencyViolation 100%25 ::error::injected (0s)",
		"[staging] ::set-output name=x::y",
	}, "\n") + "\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("actions (-want +got):\n%s", d)
	}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if strings.HasPrefix(line, "::") && !strings.HasPrefix(line, "::warning::") && !strings.HasPrefix(line, "::error::") {
			t.Errorf("unexpected workflow command %q", line)
		}
	}
	// An environment's name comes from a file name: it is one line too.
	b.Reset()
	ForEnvironment(Actions(&b, ActionsOptions{}), "x\n## pwned\r::warning::injected").Emit(Event{Time: t0, Message: "selected"})
	if got, want := b.String(), "[x ## pwned ::warning::injected] selected\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// The older command form, "##[", is broken up wherever it stands.
	b.Reset()
	Actions(&b, ActionsOptions{}).Emit(Event{Time: t0, Message: "file x ##[error]forged"})
	if got, want := b.String(), "file x # #[error]forged\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A title is the annotation's property, escaped as one.
	b.Reset()
	Actions(&b, ActionsOptions{}).Emit(Event{Time: t0, Level: Notice, Title: "fork: x,y\n::error::z", Message: "not planned"})
	if got, want := b.String(), "::notice title=fork%3A x%2Cy%0A%3A%3Aerror%3A%3Az::not planned\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Without an environment, a message that looks like a command is quoted.
	b.Reset()
	Actions(&b, ActionsOptions{}).Emit(Event{Time: t0, Message: "  ::add-mask::x"})
	if got := b.String(); strings.HasPrefix(strings.TrimSpace(got), "::") {
		t.Errorf("a message became a command: %q", got)
	}
}

func TestActionsEscapeHook(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	Actions(&b, ActionsOptions{Escape: strings.ToUpper}).Emit(Event{Time: t0, Level: Notice, Subject: "prefect", Message: "gate passed"})
	if got, want := b.String(), "::notice::PREFECT: GATE PASSED\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestJSONLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	s := JSONLines(&b)
	for _, e := range events()[:3] {
		s.Emit(e)
	}
	want := strings.Join([]string{
		`{"time":"2026-03-01T09:00:00Z","level":"info","subject":"lock","message":"taking the lock of environment staging…"}`,
		`{"time":"2026-03-01T09:00:00Z","level":"info","subject":"ecs_service.worker","resource":true,"message":"creating…"}`,
		`{"time":"2026-03-01T09:01:15Z","level":"info","subject":"ecs_service.worker","resource":true,"message":"waiting for the deployment (1m15s elapsed, 18m45s left)","elapsed_ms":75000,"wait":{"what":"the deployment","elapsed_ms":75000,"left_ms":1125000}}`,
	}, "\n") + "\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("json lines (-want +got):\n%s", d)
	}
}

// TestSinksWriteWholeLines: concurrent events never interleave within a line.
func TestSinksWriteWholeLines(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(*bytes.Buffer) Sink{
		"terminal": func(b *bytes.Buffer) Sink { return Terminal(b) },
		"actions":  func(b *bytes.Buffer) Sink { return Actions(b, ActionsOptions{}) },
		"json":     func(b *bytes.Buffer) Sink { return JSONLines(b) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			s := mk(&b)
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Go(func() { s.Emit(Event{Time: t0, Subject: "x", Message: strings.Repeat("y", 200)}) })
			}
			wg.Wait()
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if len(lines) != 50 {
				t.Fatalf("%d lines", len(lines))
			}
			for _, l := range lines {
				if l != lines[0] {
					t.Fatalf("interleaved line %q", l)
				}
			}
		})
	}
}

func TestTeeAndRecorder(t *testing.T) {
	t.Parallel()
	var a, b Recorder
	s := Tee(&a, nil, &b)
	s.Emit(Event{Subject: "lock", Message: "released"})
	if d := cmp.Diff([]string{"lock: released"}, b.Lines()); d != "" || len(a.Events()) != 1 {
		t.Fatalf("tee: %s %v", d, a.Events())
	}
}
