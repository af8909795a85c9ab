package render

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/deploybot/deploybot/internal/plan"
)

// DiffWidth is the longest line, in characters, of a diff block in a PR
// comment or job summary. GitHub's pull-request column is about 850 px
// wide; a code block there (12 px monospace, 16 px padding either side)
// shows about 100 characters before it scrolls sideways, which hides the end
// of a long value (issue 13: the new image tag was cut off). Longer values
// are wrapped, or shown as before and after on lines of their own.
const DiffWidth = 96

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
	sym   string // "+", "-", "~", "-/+", "×", " " (context) or "" (comment)
	depth int    // 0: resource; 1: field; 2+: lines inside a multi-line value
	text  string
	style lineStyle
	// cont marks a continuation of the line before (a wrapped value).
	cont bool
}

// changeGroup says which part of the plan a resource's lines belong to:
// what the file asks for, or what deploybot derives from it.
type changeGroup int

const (
	groupChanges changeGroup = iota
	groupDerived
)

// planLines is the plan laid out as lines, in two groups: the changes a
// person made (and every create, delete, replacement and conflict), then
// the derived changes that follow from them (a worker-name hash, a new
// task-definition revision the service will use).
type planLines struct {
	changes, derived []diffLine
	// common are tag fields every resource of the plan shares, shown once
	// instead of on each resource.
	common []plan.FieldChange
	// symbols are the actions the lines use, for the legend.
	symbols map[plan.Action]bool
}

// insideChange says whether a change or replacement adds or removes a
// value, which the legend then explains.
func (l *planLines) insideChange() bool {
	return l.symbols[plan.Update] || l.symbols[plan.Replace]
}

func (l *planLines) all() []diffLine {
	out := append([]diffLine{}, l.changes...)
	if len(l.changes) > 0 && len(l.derived) > 0 {
		out = append(out, diffLine{})
	}
	return append(out, l.derived...)
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

// buildLines lays out p. withConflicts includes conflicts as lines (the
// terminal has no other place for them; the markdown views list them in
// their own alert).
func buildLines(p *plan.Plan, withConflicts bool) *planLines {
	out := &planLines{symbols: map[plan.Action]bool{}}
	out.common = commonTags(p)
	hidden := map[string]bool{}
	for _, f := range out.common {
		hidden[fieldKey(f)] = true
	}
	lastChange, lastDerived := 0, 0
	for _, c := range changed(p) {
		if c.Action == plan.Conflict && !withConflicts {
			continue
		}
		var mine, derived []plan.FieldChange
		for _, f := range c.Fields {
			switch {
			case hidden[fieldKey(f)]:
			case isNameTag(c, f):
				// The header names the resource already.
			case isDerived(c, f):
				derived = append(derived, f)
			default:
				mine = append(mine, f)
			}
		}
		// A created, deleted or replaced resource is read whole, in the
		// first group; an update is split when part of it is derived.
		if c.Action != plan.Update {
			mine, derived = append(mine, derived...), nil
		}
		if len(mine) > 0 || len(derived) == 0 {
			out.changes = appendBlock(out.changes, resourceLines(c, mine, c.Reason), &lastChange)
			out.symbols[c.Action] = true
		}
		if len(derived) > 0 {
			reason := ""
			if len(mine) == 0 {
				reason = c.Reason
			}
			out.derived = appendBlock(out.derived, resourceLines(c, derived, reason), &lastDerived)
			out.symbols[c.Action] = true
		}
	}
	return out
}

// appendBlock adds a resource's lines after a blank line, except between
// resources of one line each (all their changes are the shared tags, or a
// delete), which read best as a list. last is the previous block's length.
func appendBlock(lines, block []diffLine, last *int) []diffLine {
	if len(lines) > 0 && (len(block) > 1 || *last > 1) {
		lines = append(lines, diffLine{})
	}
	*last = len(block)
	return append(lines, block...)
}

// isDerived: a value deploybot computes (plan.FieldChange.Derived), or one
// an update can only know once a dependency has changed ("known after
// apply": the service's task definition after the new revision).
func isDerived(c plan.Change, f plan.FieldChange) bool {
	return f.Derived || (c.Action == plan.Update && !f.Sensitive && f.After == plan.Unknown)
}

// isNameTag: an EC2 Name tag that only repeats the resource's name.
func isNameTag(c plan.Change, f plan.FieldChange) bool {
	return f.Path == "tags.Name" && !f.Sensitive && f.Before == "" && f.After == c.Name
}

func fieldKey(f plan.FieldChange) string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%t", f.Path, f.Before, f.After, f.Sensitive)
}

// commonTags are the tag fields (path "tags.KEY") that every resource of
// the plan with tag fields has, with the same change: deploybot's own tags
// and the file's `tags` on a new environment, or a tag the file changed on
// every resource. Shown once, they stop being 4 lines of every resource.
func commonTags(p *plan.Plan) []plan.FieldChange {
	count := map[string]int{}
	first := map[string]plan.FieldChange{}
	withTags := 0
	for _, c := range changed(p) {
		if c.Action == plan.Conflict {
			continue
		}
		has := false
		for _, f := range c.Fields {
			// A Name tag names its one resource, however many share it.
			if !strings.HasPrefix(f.Path, "tags.") || f.Sensitive || isNameTag(c, f) {
				continue
			}
			has = true
			k := fieldKey(f)
			count[k]++
			if _, ok := first[k]; !ok {
				first[k] = f
			}
		}
		if has {
			withTags++
		}
	}
	if withTags < 2 {
		return nil
	}
	var out []plan.FieldChange
	for k, n := range count {
		if n == withTags {
			out = append(out, first[k])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// commonTagsTitle introduces the shared tags: those of new resources, or a
// tag change every resource with tag changes has.
func commonTagsTitle(common []plan.FieldChange) string {
	for _, f := range common {
		if f.Before != "" {
			return "Tag changes on every resource below whose tags change (not repeated on each):"
		}
	}
	return "Tags of every resource created below (not repeated on each):"
}

func resourceLines(c plan.Change, fields []plan.FieldChange, reason string) []diffLine {
	addr := OneLine(c.Address)
	head := addr
	if c.Name != "" && !strings.HasSuffix(addr, "."+c.Name) {
		head += " (" + OneLine(c.Name) + ")"
	}
	sym := c.Action.Symbol()
	out := []diffLine{{addr: addr, sym: sym, text: head, style: actionStyle(c.Action)}}
	if reason != "" {
		for _, l := range wrapText(OneLine(reason), textBudget(1)-2) {
			out = append(out, diffLine{addr: addr, depth: 1, text: "# " + l, style: styleComment})
		}
	}
	width := 0
	for _, f := range fields {
		width = max(width, utf8.RuneCountInString(OneLine(f.Path)))
	}
	// Aligning "=" helps only while the labels are short; past that it
	// pushes every value towards the edge.
	width = min(width, 28)
	for _, f := range fields {
		for _, l := range fieldLines(c, f, width) {
			l.addr = addr
			out = append(out, l)
		}
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

var symStyle = map[string]lineStyle{"+": styleCreate, "-": styleDelete, "~": styleUpdate, " ": styleNone}

// textBudget is how many characters a line at depth may have so that its
// diff-block form (symbol column of 4, then 2 spaces per depth) fits
// DiffWidth.
func textBudget(depth int) int {
	return DiffWidth - 4 - 2*depth
}

// fieldLines renders one field. In a created resource every field is
// "+ path = after"; in a destroyed one "- path = before"; in an update or a
// replacement a field that appears is "+", one that disappears "-", and
// one that changes "~ path = before -> after" when that fits on a line,
// else "~ path" followed by the before ("-") and after ("+") on lines of
// their own, so the end of a long value is never off the edge.
func fieldLines(c plan.Change, f plan.FieldChange, width int) []diffLine {
	path := OneLine(f.Path)
	label := path
	if n := utf8.RuneCountInString(path); n < width {
		label += strings.Repeat(" ", width-n)
	}
	suffix := ""
	if f.ForcesReplacement {
		suffix = forcesReplacement
	}
	a := c.Action
	sym := "~"
	switch {
	case a == plan.Create, a != plan.Delete && f.Before == "" && f.After != "" && !f.Sensitive:
		sym = "+"
	case a == plan.Delete, f.After == "" && f.Before != "" && !f.Sensitive:
		sym = "-"
	}
	if f.Sensitive {
		// Before/After are never read for a sensitive field (plan.FieldChange).
		v := plan.SensitiveChanged
		if sym != "~" {
			v = sensitiveNew
		}
		return wrapField(sym, label+" = ", []string{v + suffix})
	}

	if sym == "+" || sym == "-" {
		v := f.After
		if sym == "-" {
			v = f.Before
		}
		vl := formatValue(f.Path, v)
		if len(vl) == 1 && fits(1, label+" = "+vl[0]+suffix) {
			return []diffLine{{sym: sym, depth: 1, text: label + " = " + vl[0] + suffix, style: symStyle[sym]}}
		}
		out := []diffLine{{sym: sym, depth: 1, text: strings.TrimRight(label, " ") + suffix, style: symStyle[sym]}}
		for _, l := range vl {
			out = append(out, wrapValue(sym, 2, l)...)
		}
		return out
	}

	// A change.
	bl, al := formatValue(f.Path, f.Before), formatValue(f.Path, f.After)
	if len(bl) == 1 && len(al) == 1 {
		one := label + " = " + bl[0] + " -> " + al[0] + suffix
		if fits(1, one) {
			return []diffLine{{sym: "~", depth: 1, text: one, style: styleUpdate}}
		}
	}
	out := []diffLine{{sym: "~", depth: 1, text: strings.TrimRight(label, " ") + suffix, style: styleUpdate}}
	// Lists, policies and multi-line values: only what differs, with a
	// little context, the way Terraform shows a jsonencode() change.
	ops := lineDiff(bl, al)
	keep := contextAround(ops, 2)
	for i := 0; i < len(ops); i++ {
		if !keep[i] {
			j := i
			for j < len(ops) && !keep[j] {
				j++
			}
			out = append(out, diffLine{depth: 2, text: fmt.Sprintf("# (%s unchanged)", plural(j-i, valueUnit(f.Before))), style: styleComment})
			i = j - 1
			continue
		}
		d := ops[i]
		out = append(out, wrapValue(string(d.op), 2, d.text)...)
	}
	return out
}

// sensitiveNew is what a created or deleted sensitive value shows: "value
// changed" says nothing true about a value that did not exist before.
const sensitiveNew = "(sensitive value)"

// forcesReplacement marks, Terraform-style, a field that AWS cannot change
// in place.
const forcesReplacement = " # forces replacement"

func fits(depth int, text string) bool {
	return utf8.RuneCountInString(text) <= textBudget(depth)
}

// wrapField is a one-line field ("label = value") wrapped if it must be.
func wrapField(sym, prefix string, value []string) []diffLine {
	text := prefix + strings.Join(value, " ")
	var out []diffLine
	for i, l := range wrapText(text, textBudget(1)) {
		depth := 1
		if i > 0 {
			depth = 2
		}
		out = append(out, diffLine{sym: sym, depth: depth, text: l, style: symStyle[sym], cont: i > 0})
	}
	return out
}

// wrapValue lays out one line of a value at depth, wrapped to the width.
func wrapValue(sym string, depth int, text string) []diffLine {
	var out []diffLine
	for i, l := range wrapText(text, textBudget(depth)-2) {
		d := depth
		if i > 0 {
			d = depth + 1
		}
		out = append(out, diffLine{sym: sym, depth: d, text: l, style: symStyle[sym], cont: i > 0})
	}
	return out
}

// wrapText breaks s into lines of at most n characters: after the last
// space in the line's last third if there is one, else after a comma,
// slash, dash or similar there, else exactly at n (a long hash or token).
func wrapText(s string, n int) []string {
	n = max(n, 20)
	var out []string
	rs := []rune(s)
	for len(rs) > n {
		cut := breakAt(rs, n, " ")
		if cut == 0 {
			cut = breakAt(rs, n, ",/-&?;|=:")
		}
		if cut == 0 {
			cut = n
		}
		out = append(out, strings.TrimRight(string(rs[:cut]), " "))
		rs = rs[cut:]
		for len(rs) > 0 && rs[0] == ' ' {
			rs = rs[1:]
		}
	}
	return append(out, string(rs))
}

// breakAt is the position after the last of chars in rs[n*2/3:n], or 0.
func breakAt(rs []rune, n int, chars string) int {
	for i := n; i > n*2/3; i-- {
		if strings.ContainsRune(chars, rs[i-1]) {
			return i
		}
	}
	return 0
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

type legendEntry struct {
	sym   string
	text  string
	style lineStyle
}

// legend lists the symbols these lines use, in a fixed order, each once.
func legend(used map[plan.Action]bool) []legendEntry {
	var out []legendEntry
	for _, e := range []struct {
		a    plan.Action
		text string
	}{
		{plan.Create, "create"},
		{plan.Update, "change in place"},
		{plan.Replace, "destroy, then create the replacement"},
		{plan.Delete, "destroy"},
		{plan.Conflict, "conflict: exists without deploybot's tags, left alone"},
	} {
		if used[e.a] {
			out = append(out, legendEntry{e.a.Symbol(), e.text, actionStyle(e.a)})
		}
	}
	return out
}
