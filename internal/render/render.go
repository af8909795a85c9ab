// Package render owns every view of a plan and of an apply report: terminal
// text (Text, ReportText), GitHub markdown for the pull-request comment
// (Comment, with its hidden Marker) and the job summary (Summary), and the
// machine-readable JSON (JSON, ReportJSON).
//
// All views are computed from the same pure data (internal/plan) by the same
// line model (diffLines), so they agree with each other. Output is
// deterministic: the same plan rendered twice is byte-identical, so a caller
// can skip a GitHub API call when a comment body has not changed. A field
// marked Sensitive never has a value printed, in any view, even if a caller
// filled Before/After by mistake.
package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deploybot/deploybot/internal/plan"
)

// summaryLine is Terraform's closing line, with replacements counted apart
// because a replacement of the ECS service or a role is what a reviewer must
// notice (docs/research/pr-comment-bots.md §8 lesson 8).
func summaryLine(p *plan.Plan) string {
	if !p.HasChanges() {
		if p.Operation == plan.OpDestroy {
			return fmt.Sprintf("No changes. Nothing of environment %s exists to destroy.", p.Environment)
		}
		return "No changes. The environment matches its file."
	}
	s := p.Summary()
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to replace, %d to destroy.", s.Add, s.Change, s.Replace, s.Destroy)
}

// conflictLine explains why a plan with conflicts cannot be applied.
func conflictLine(n int) string {
	if n == 1 {
		return "1 conflict: a resource exists under deploybot's name without its tags. deploybot never takes it over; the plan cannot be applied until it is resolved."
	}
	return fmt.Sprintf("%d conflicts: resources exist under deploybot's names without its tags. deploybot never takes them over; the plan cannot be applied until they are resolved.", n)
}

// actionPhrase is what happens to a resource, for headers and warnings.
func actionPhrase(a plan.Action) string {
	switch a {
	case plan.Create:
		return "will be created"
	case plan.Update:
		return "will be updated in place"
	case plan.Delete:
		return "will be destroyed"
	case plan.Replace:
		return "must be replaced"
	case plan.Conflict:
		return "is in the way (conflict)"
	default:
		return "is unchanged"
	}
}

// changed returns the changes a reviewer must read: everything but no-ops,
// in the plan's own (apply) order.
func changed(p *plan.Plan) []plan.Change {
	var out []plan.Change
	for _, c := range p.Changes {
		if c.Action != plan.NoOp && c.Action != "" {
			out = append(out, c)
		}
	}
	return out
}

// lineStyle decides a line's colour in the terminal.
type lineStyle int

const (
	styleNone lineStyle = iota
	styleComment
	styleCreate
	styleUpdate
	styleDelete
	styleReplace
	styleConflict
)

// diffLine is one line of the rendered plan, before it is laid out for the
// terminal (symbol right-aligned after indentation, like Terraform) or for a
// GitHub ```diff block (symbol in column 0, so that GitHub colours it).
type diffLine struct {
	addr  string // the resource the line belongs to
	sym   string // "+", "-", "~", "-/+", "!", " " (context) or "" (comment)
	depth int    // 0: resource; 1: field; 2+: lines inside a multi-line value
	text  string
	style lineStyle
	// cont marks a continuation line of a multi-line value: the terminal
	// prints blanks instead of the symbol, the diff block repeats it so the
	// whole value is coloured.
	cont bool
}

// diffLines turns the plan's changes into lines. Values are formatted by
// formatValue; sensitive fields never reach it.
func diffLines(p *plan.Plan) []diffLine {
	var out []diffLine
	for i, c := range changed(p) {
		if i > 0 {
			out = append(out, diffLine{})
		}
		for _, l := range resourceLines(c) {
			l.addr = c.Address
			out = append(out, l)
		}
	}
	return out
}

func resourceLines(c plan.Change) []diffLine {
	addr := OneLine(c.Address)
	head := "# " + addr
	if c.Name != "" {
		head += " (" + OneLine(c.Name) + ")"
	}
	head += " " + actionPhrase(c.Action)
	out := []diffLine{{depth: 0, text: head, style: styleComment}}
	if c.Reason != "" {
		out = append(out, diffLine{depth: 0, text: "# (" + OneLine(c.Reason) + ")", style: styleComment})
	}
	out = append(out, diffLine{sym: c.Action.Symbol(), depth: 0, text: addr, style: actionStyle(c.Action)})

	width := 0
	for _, f := range c.Fields {
		width = max(width, utf8.RuneCountInString(OneLine(f.Path)))
	}
	for _, f := range c.Fields {
		out = append(out, fieldLines(c.Action, f, width)...)
	}
	return out
}

func actionStyle(a plan.Action) lineStyle {
	switch a {
	case plan.Create:
		return styleCreate
	case plan.Update:
		return styleUpdate
	case plan.Delete:
		return styleDelete
	case plan.Replace:
		return styleReplace
	case plan.Conflict:
		return styleConflict
	}
	return styleNone
}

// fieldLines renders one field. Within a created resource every field is
// "+ path = after"; within a destroyed one "- path = before"; within an
// update or replacement a field that appears is "+", one that disappears "-",
// and one that changes "~ path = before -> after".
func fieldLines(a plan.Action, f plan.FieldChange, width int) []diffLine {
	path := OneLine(f.Path)
	label := path + strings.Repeat(" ", width-utf8.RuneCountInString(path))
	suffix := ""
	if f.ForcesReplacement {
		suffix = forcesReplacement
	}

	sym := "~"
	switch {
	case a == plan.Create, a != plan.Delete && f.Before == "" && f.After != "" && !f.Sensitive:
		sym = "+"
	case a == plan.Delete, f.After == "" && f.Before != "" && !f.Sensitive:
		sym = "-"
	}
	style := map[string]lineStyle{"+": styleCreate, "-": styleDelete, "~": styleUpdate}[sym]

	if f.Sensitive {
		// Before/After are never read for a sensitive field (plan.FieldChange).
		return []diffLine{{sym: sym, depth: 1, text: label + " = " + plan.SensitiveChanged + suffix, style: style}}
	}

	switch sym {
	case "+", "-":
		v := f.After
		if sym == "-" {
			v = f.Before
		}
		vl := formatValue(v)
		lines := []diffLine{{sym: sym, depth: 1, text: label + " = " + vl[0] + ifOne(vl, suffix), style: style}}
		for i, l := range vl[1:] {
			lines = append(lines, diffLine{sym: sym, depth: 2, text: l + ifLast(i == len(vl)-2, suffix), style: style, cont: true})
		}
		return lines
	}

	bl, al := formatValue(f.Before), formatValue(f.After)
	if len(bl) == 1 && len(al) == 1 {
		return []diffLine{{sym: "~", depth: 1, text: label + " = " + bl[0] + " -> " + al[0] + suffix, style: styleUpdate}}
	}
	// A multi-line (JSON) value: show a line diff of its indented form, the
	// way Terraform shows jsonencode() changes, so a one-statement change in
	// a policy is one - and one + line instead of two whole documents.
	lines := []diffLine{{sym: "~", depth: 1, text: label + " = (JSON, changed)" + suffix, style: styleUpdate}}
	ops := lineDiff(bl, al)
	keep := contextAround(ops, 3)
	for i := 0; i < len(ops); i++ {
		if !keep[i] {
			// Long unchanged stretches hide what changed; say how many lines
			// are left out, like a unified diff's context.
			j := i
			for j < len(ops) && !keep[j] {
				j++
			}
			lines = append(lines, diffLine{depth: 2, text: fmt.Sprintf("# (%d unchanged lines hidden)", j-i), style: styleComment})
			i = j - 1
			continue
		}
		d := ops[i]
		st := map[byte]lineStyle{'+': styleCreate, '-': styleDelete, ' ': styleNone}[d.op]
		lines = append(lines, diffLine{sym: string(d.op), depth: 2, text: d.text, style: st})
	}
	return lines
}

// contextAround marks the changed lines and n unchanged lines either side of
// them; a hidden stretch shorter than two lines is shown anyway.
func contextAround(ops []diffOp, n int) []bool {
	keep := make([]bool, len(ops))
	for i, d := range ops {
		if d.op == ' ' {
			continue
		}
		for j := max(0, i-n); j <= min(len(ops)-1, i+n); j++ {
			keep[j] = true
		}
	}
	for i := 0; i < len(ops); {
		if keep[i] {
			i++
			continue
		}
		j := i
		for j < len(ops) && !keep[j] {
			j++
		}
		if j-i < 2 {
			for k := i; k < j; k++ {
				keep[k] = true
			}
		}
		i = j
	}
	return keep
}

// forcesReplacement marks, Terraform-style, a field that AWS cannot change
// in place.
const forcesReplacement = " # forces replacement"

func ifOne(vl []string, s string) string {
	if len(vl) == 1 {
		return s
	}
	return ""
}

func ifLast(last bool, s string) string {
	if last {
		return s
	}
	return ""
}

// formatValue renders a normalised plan value (plan.FieldChange: numbers in
// decimal, lists and maps as canonical JSON) as one or more lines: the
// unknown marker bare, numbers and booleans bare, long JSON indented over
// several lines, and anything else as a Go-quoted string. Quoting escapes
// control characters, so no value can move the cursor or recolour a terminal,
// and no value can span lines in a markdown code block.
func formatValue(v string) []string {
	switch {
	case v == plan.Unknown:
		return []string{v}
	case v == "true" || v == "false" || isNumber(v):
		return []string{v}
	}
	if t := strings.TrimSpace(v); t != "" && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(t)); err == nil {
			if compact.Len() <= 60 || compact.String() == "{}" || compact.String() == "[]" {
				return []string{compact.String()}
			}
			var ind bytes.Buffer
			_ = json.Indent(&ind, compact.Bytes(), "", "  ")
			return strings.Split(ind.String(), "\n")
		}
	}
	return []string{strconv.Quote(v)}
}

func isNumber(v string) bool {
	if v == "" || len(v) > 30 {
		return false
	}
	_, err := strconv.ParseFloat(v, 64)
	return err == nil && !strings.ContainsAny(v, "xXpP_nN+") && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

// lineDiff is a longest-common-subsequence line diff. Values are small
// (policies, container definitions); past a size where the quadratic table
// would be costly it shows the whole before and after instead.
type diffOp struct {
	op   byte // '+', '-', ' '
	text string
}

func lineDiff(a, b []string) []diffOp {
	if len(a)*len(b) > 1_000_000 {
		var out []diffOp
		for _, l := range a {
			out = append(out, diffOp{'-', l})
		}
		for _, l := range b {
			out = append(out, diffOp{'+', l})
		}
		return out
	}
	// lcs[i][j] = LCS length of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffOp
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, diffOp{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffOp{'-', a[i]})
			i++
		default:
			out = append(out, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, diffOp{'-', a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, diffOp{'+', b[j]})
	}
	return out
}

// formatDuration prints durations the way people read them: "850ms",
// "12.4s", "3m12s".
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// formatTime prints a timestamp in UTC, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// shortSHA is the 7-character form GitHub shows.
func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// reportPlan is the plan a report was made from, preferring the one passed
// explicitly.
func reportPlan(p *plan.Plan, r *plan.Report) *plan.Plan {
	if p != nil {
		return p
	}
	if r != nil {
		return r.Plan
	}
	return nil
}

// statusHeadline says in a few words how an apply or destroy ended.
func statusHeadline(r *plan.Report) string {
	// Any operation name reads right here, so a caller can report a plan
	// that failed as Operation "plan".
	op := OneLine(string(r.Operation))
	if op == "" {
		op = string(plan.OpApply)
	}
	switch r.Status {
	case plan.StatusSucceeded:
		if r.Gate != nil && r.Gate.Passed {
			return op + " succeeded: the new worker is online"
		}
		return op + " succeeded"
	case plan.StatusNoChanges:
		return op + ": no changes"
	case plan.StatusFailed:
		return op + " failed"
	case plan.StatusRolledBack:
		return op + " failed the health gate and was rolled back"
	case plan.StatusRefused:
		return op + " refused: nothing was changed"
	}
	return op + " " + string(r.Status)
}
