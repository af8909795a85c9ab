package render

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/deploybot/deploybot/internal/cost"
	"github.com/deploybot/deploybot/internal/plan"
)

// TextOptions controls the terminal views.
type TextOptions struct {
	// Color turns on ANSI colours. The CLI sets it when stdout is a
	// terminal; files, pipes and CI logs get plain text.
	Color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

type painter bool

func (c painter) paint(ansi, s string) string {
	if !c || s == "" {
		return s
	}
	return ansi + s + ansiReset
}

// symbol colours a diff symbol the way Terraform does; "-/+" is red then
// green.
func (c painter) symbol(sym string, st lineStyle) string {
	switch st {
	case styleCreate:
		return c.paint(ansiGreen, sym)
	case styleUpdate:
		return c.paint(ansiYellow, sym)
	case styleDelete:
		return c.paint(ansiRed, sym)
	case styleReplace:
		if sym == "-/+" && c {
			return c.paint(ansiRed, "-") + "/" + c.paint(ansiGreen, "+")
		}
		return sym
	case styleConflict:
		return c.paint(ansiBold+ansiRed, sym)
	}
	return sym
}

// textWriter remembers the first write error so that rendering code reads
// as a sequence of lines.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) line(format string, args ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, format+"\n", args...)
}

// Text writes the plan for a terminal, Terraform-style: a header naming the
// environment, account and region, each changed resource with its symbol and
// field-level before -> after, notes, and the closing summary line.
func Text(w io.Writer, p *plan.Plan, o TextOptions) error {
	return writeText(w, o, p, writePlanText, "plan of "+p.Environment)
}

// writeText writes x to w with write, and says what it was writing when w
// fails.
func writeText[T any](w io.Writer, o TextOptions, x T, write func(*textWriter, painter, T), what string) error {
	t := &textWriter{w: w}
	write(t, painter(o.Color), x)
	if t.err != nil {
		return fmt.Errorf("write %s: %w", what, t.err)
	}
	return nil
}

func writePlanText(t *textWriter, c painter, p *plan.Plan) {
	what := "plan"
	if p.Operation == plan.OpDestroy {
		what = "destroy plan"
	}
	t.line("%s", c.paint(ansiBold, fmt.Sprintf("deploybot %s for environment %s", what, OneLine(p.Environment))))
	t.line("  %s", headerDetails(p))
	t.line("")

	pl := buildLines(p, true)
	lines := pl.all()
	if len(lines) > 0 {
		t.line("Resource actions are indicated with the following symbols:")
		for _, l := range legend(pl.symbols) {
			t.line("  %s %s", padSymbol(c, l.sym, l.style), l.text)
		}
		t.line("")
		if len(pl.common) > 0 {
			t.line("%s", commonTagsTitle(pl.common))
			for _, f := range pl.common {
				t.line("  %s", commonTagText(f))
			}
			t.line("")
		}
		t.line("deploybot will perform the following actions:")
		t.line("")
		for _, l := range pl.changes {
			t.line("%s", terminalLine(c, l))
		}
		if len(pl.derived) > 0 {
			t.line("")
			t.line("%s", c.paint(ansiBold, "Derived from the changes above (deploybot computes these):"))
			t.line("")
			for _, l := range pl.derived {
				t.line("%s", terminalLine(c, l))
			}
		}
		t.line("")
	}

	if len(p.Unread) > 0 {
		t.line("%s", c.paint(ansiBold, "Not read, so not in this plan (an apply refuses it):"))
		for _, u := range p.Unread {
			t.line("  - %s: %s", OneLine(u.Address), OneLine(u.Reason))
		}
		t.line("")
	}
	if len(p.Notes) > 0 {
		t.line("Notes:")
		for _, n := range p.Notes {
			t.line("  - %s", OneLine(n))
		}
		t.line("")
	}

	if e := cost.Of(p); e.Changes() {
		t.line("Estimated cost: %s", costText(&e))
		t.line("  (%s)", costSourceText(&e))
		t.line("")
	}
	t.line("%s", c.paint(ansiBold, summaryLine(p)))
	if n := p.Summary().Conflicts; n > 0 {
		t.line("%s", c.paint(ansiBold+ansiRed, conflictLine(n)))
	}
}

func headerDetails(p *plan.Plan) string {
	var parts []string
	if p.Account != "" {
		parts = append(parts, "account "+OneLine(p.Account))
	}
	if p.Region != "" {
		parts = append(parts, "region "+OneLine(p.Region))
	}
	if p.File != "" {
		parts = append(parts, "file "+OneLine(p.File))
	}
	if p.Fingerprint != "" {
		parts = append(parts, "fingerprint "+OneLine(p.Fingerprint))
	}
	return strings.Join(parts, ", ")
}

// terminalLine lays a line out like Terraform: indentation, then the symbol
// right-aligned in three columns, then the text.
func terminalLine(c painter, l diffLine) string {
	indent := strings.Repeat("    ", l.depth)
	switch {
	case l.text == "" && l.sym == "":
		return ""
	case l.sym == "":
		return "  " + indent + l.text
	case l.cont:
		// A wrapped value goes on under itself, without a symbol.
		return indent + "    " + l.text
	}
	text := l.text
	if l.depth == 0 {
		text = c.paint(ansiBold, text)
	}
	if t, ok := strings.CutSuffix(text, forcesReplacement); ok && bool(c) {
		text = t + c.paint(ansiRed, forcesReplacement)
	}
	return indent + padSymbol(c, l.sym, l.style) + " " + text
}

// padSymbol right-aligns a symbol in three columns before colouring it, so
// escape codes never count towards the alignment.
func padSymbol(c painter, sym string, st lineStyle) string {
	return strings.Repeat(" ", max(0, 3-utf8.RuneCountInString(sym))) + c.symbol(sym, st)
}

// ReportText writes the outcome of an apply or destroy: per-step status and
// durations, the ECS deployment, and the Prefect health gate (workers seen,
// reason, stopped tasks with reasons and exit codes, the rollback).
func ReportText(w io.Writer, r *plan.Report, o TextOptions) error {
	return writeText(w, o, r, writeReportText, "report of "+r.Environment)
}

func writeReportText(t *textWriter, c painter, r *plan.Report) {
	head := fmt.Sprintf("deploybot, environment %s: %s", OneLine(r.Environment), statusHeadline(r))
	if d := r.FinishedAt.Sub(r.StartedAt); !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() && d > 0 {
		head += " (" + formatDuration(d) + ")"
	}
	colour := ansiGreen
	switch r.Status {
	case plan.StatusFailed, plan.StatusRefused:
		colour = ansiRed
	case plan.StatusRolledBack:
		colour = ansiYellow
	}
	t.line("%s", c.paint(ansiBold+colour, head))
	st := newStory(r)
	if st.cause != "" {
		t.line("%s %s", c.paint(ansiBold+ansiRed, st.causeTitle), OneLine(st.cause))
		for _, w := range st.why {
			t.line("  %s", OneLine(w))
		}
	}
	if len(st.steps) > 0 {
		t.line("")
		for i, s := range st.steps {
			t.line("%d. %s", i+1, s.text())
		}
	}
	if st.next != "" {
		t.line("")
		t.line("%s", st.next)
	}

	if len(r.Steps) > 0 {
		t.line("")
		t.line("%s", c.paint(ansiBold, "Resource steps ("+stepCounts(r)+"):"))
		aw, sw := 0, 0
		for _, s := range r.Steps {
			aw = max(aw, len(OneLine(s.Address)))
			sw = max(sw, len(OneLine(s.Status)))
		}
		for _, s := range r.Steps {
			st := stepStyle(s)
			line := fmt.Sprintf("  %s %-*s  %s  %s", padSymbol(c, s.Action.Symbol(), actionStyle(s.Action)), aw, OneLine(s.Address),
				c.paint(st, fmt.Sprintf("%-*s", sw, OneLine(s.Status))), formatDuration(s.Duration))
			t.line("%s", strings.TrimRight(line, " "))
		}
	}

	if g := r.Gate; g != nil {
		if g.WorkPoolURL != "" {
			t.line("")
			t.line("work pool: %s", OneLine(g.WorkPoolURL))
		}
		if len(g.Workers) > 0 {
			t.line("workers in the pool %s: %s", workersWhen(g), workersSeen(g))
			nw := 0
			for _, wk := range g.Workers {
				nw = max(nw, len(OneLine(wk.Name)))
			}
			for _, wk := range g.Workers {
				t.line("  %-*s  %-7s  %s", nw, OneLine(wk.Name), OneLine(wk.Status), workerDetail(wk))
			}
		}
		if fr := g.FlowRun; fr != nil && fr.ID != "" {
			flowRunText(t, fr)
		}
		if len(g.StoppedTasks) > 3 {
			t.line("stopped tasks of the new revision:")
			for _, st := range g.StoppedTasks {
				t.line("  %s: %s", OneLine(st.TaskARN), stoppedTaskDetail(st))
			}
		}
		if len(g.ServiceEvents) > 0 {
			t.line("recent service events:")
			for _, e := range g.ServiceEvents {
				t.line("  - %s", OneLine(e))
			}
		}
		for _, wn := range g.Warnings {
			t.line("%s %s", c.paint(ansiYellow, "warning:"), OneLine(wn))
		}
	}
}

func stepStyle(s plan.StepResult) string {
	switch s.Status {
	case "done":
		return ansiGreen
	case "failed":
		return ansiRed
	}
	return ansiYellow
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// workersWhen says when the workers table was taken: the gate takes it
// at the end of a rollback (Prefect's listing then), else at its last poll.
func workersWhen(g *plan.GateReport) string {
	if g.RolledBack {
		return "after the rollback"
	}
	return "as the health gate last saw them"
}

// workersSeen summarises the workers the gate saw, new revision first.
func workersSeen(g *plan.GateReport) string {
	if len(g.Workers) == 0 {
		return "none"
	}
	online, onlineNew := 0, 0
	for _, w := range g.Workers {
		if w.Status == "ONLINE" {
			online++
			if w.NewRevision {
				onlineNew++
			}
		}
	}
	return fmt.Sprintf("%d (%d online, %d of them of the new revision)", len(g.Workers), online, onlineNew)
}

func workerDetail(w plan.WorkerStatus) string {
	var parts []string
	if w.NewRevision {
		parts = append(parts, "new revision")
	} else {
		parts = append(parts, "earlier revision")
	}
	if s := formatTime(w.LastHeartbeat); s != "" {
		parts = append(parts, "last heartbeat "+s)
	} else {
		parts = append(parts, "no heartbeat")
	}
	return strings.Join(parts, ", ")
}

func stoppedTaskDetail(st plan.StoppedTask) string {
	parts := []string{orDash(OneLine(st.StoppedReason))}
	if st.StopCode != "" {
		parts = append(parts, "stop code "+OneLine(st.StopCode))
	}
	if st.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit code %d", *st.ExitCode))
	}
	if st.ContainerReason != "" && st.ContainerReason != st.StoppedReason {
		parts = append(parts, "container: "+OneLine(st.ContainerReason))
	}
	return strings.Join(parts, "; ")
}
