package demo

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

// printer writes the demo's output.
type printer struct {
	out io.Writer
}

func (p *printer) line(format string, args ...any) {
	fmt.Fprintf(p.out, format+"\n", args...)
}

func (p *printer) header(id, title string) {
	p.line("")
	p.line("━━ %s. %s", id, title)
}

// log prints one progress line of the product (not of the Action's log).
func (p *printer) log(format string, args ...any) {
	p.line("  "+format, args...)
}

// quote prints text indented behind a bar; max > 0 keeps the first max lines.
func (p *printer) quote(text string, max int) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	more := 0
	if max > 0 && len(lines) > max {
		more = len(lines) - max
		lines = lines[:max]
	}
	for _, l := range lines {
		p.line("  │ %s", l)
	}
	if more > 0 {
		p.line("  │ … (%d more lines)", more)
	}
}

// runnerLog is the log as the runner keeps it: the values of ::add-mask::
// commands are never shown (the runner consumes those lines).
func runnerLog(raw string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(raw, "\n") {
		if strings.HasPrefix(l, "::add-mask::") {
			b.WriteString("::add-mask::***\n")
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

// actionLog prints a job's log: every line with --verbose; else the
// important ones, with a run of lines that differ only in their numbers (a
// wait's progress every 10 simulated seconds) shown as its first and last.
// Workflow commands are shown as the runner shows them.
func (p *printer) actionLog(jobName, raw string, verbose bool) {
	p.line("  [%s job]", jobName)
	var run []string // similar lines not printed yet
	flush := func() {
		switch {
		case len(run) == 0:
		case len(run) <= 3:
			for _, l := range run {
				p.line("    %s", l)
			}
		default:
			p.line("    %s", run[0])
			p.line("      … %d similar lines …", len(run)-2)
			p.line("    %s", run[len(run)-1])
		}
		run = nil
	}
	for _, l := range strings.Split(strings.TrimRight(raw, "\n"), "\n") {
		if strings.HasPrefix(l, "::add-mask::") || l == "" {
			continue
		}
		if verbose {
			p.line("    %s", l)
			continue
		}
		shown := important(l)
		if len(run) > 0 && shape(run[0]) != shape(shown) {
			flush()
		}
		run = append(run, shown)
	}
	flush()
}

// digits are numbers and durations ("4m53s").
var digits = regexp.MustCompile(`[0-9][0-9hms.]*`)

// shape is a line without its numbers.
func shape(l string) string { return digits.ReplaceAllString(l, "#") }

// important turns a workflow command into what GitHub shows for it (an
// annotation's text); other lines are shown as they are.
func important(l string) string {
	for prefix, label := range map[string]string{"::error": "Error: ", "::warning": "Warning: ", "::notice": "Notice: "} {
		if strings.HasPrefix(l, prefix) {
			if i := strings.Index(l[2:], "::"); i >= 0 {
				return label + strings.NewReplacer("%0A", " ", "%0D", "", "%25", "%").Replace(l[i+4:])
			}
		}
	}
	return l
}

// comment prints a pull-request comment's markdown as GitHub holds it. The
// inside of a closed <details> block (the full plan) is folded, as GitHub
// folds it, unless verbose; the whole body is in file.
func (p *printer) comment(body, file string, verbose bool) {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	folded := 0
	inClosed := false
	for _, l := range lines {
		switch {
		case !verbose && strings.HasPrefix(l, "<details>"):
			inClosed = true
			p.line("  │ %s", l)
			continue
		case inClosed && strings.HasPrefix(l, "</details>"):
			p.line("  │   ┄ %d lines folded, as GitHub shows a closed <details> (the whole comment: %s) ┄", folded, file)
			folded = 0
			inClosed = false
		case inClosed:
			folded++
			continue
		}
		p.line("  │ %s", l)
	}
}

// planBlock is the lines of the diff block of address in a comment's plan
// (its header line and its fields), or none.
func planBlock(body, address string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(body, "\n") {
		header := len(l) > 4 && strings.TrimSpace(l[:4]) != "" && l[1:4] == "   " && l[4] != ' '
		switch {
		case header:
			in = strings.HasPrefix(l[4:], address+" ") || l[4:] == address
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "```"):
			in = false
		}
		if in {
			out = append(out, l)
		}
	}
	return out
}

func (p *printer) table(steps []*Step) {
	p.line("")
	tw := tabwriter.NewWriter(p.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\t\tresult\tAWS calls\tsimulated\treal\t")
	var calls int
	var sim, real time.Duration
	for _, s := range steps {
		mark := "✓"
		if !s.OK {
			mark = "✗"
		}
		res := s.Result
		if s.LogFile != "" {
			res = fmt.Sprintf("%s (exit %d)", s.Result, s.Exit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%d\t%s\t%s\t\n", s.ID, s.Name, mark, res, s.AWSCalls, simDur(s.Sim), realDur(s.Real))
		calls += s.AWSCalls
		sim += s.Sim
		real += s.Real
	}
	fmt.Fprintf(tw, "\ttotal\t\t%d\t%s\t%s\t\n", calls, simDur(sim), realDur(real))
	tw.Flush()
}

func simDur(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

func realDur(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}
