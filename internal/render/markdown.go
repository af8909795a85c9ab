package render

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/deploybot/deploybot/internal/cost"
	"github.com/deploybot/deploybot/internal/plan"
)

// DefaultCommentMaxLen is GitHub's limit on an issue or pull-request comment
// body: the API answers 422 "body is too long (maximum is 65536 characters)"
// (docs/research/github-actions.md §4; docs/research/pr-comment-bots.md §0).
// GitHub counts characters; Comment counts UTF-8 bytes, which are never
// fewer than characters however GitHub counts them (code points or UTF-16
// units), so a body within MaxLen bytes is within the limit
// (docs/research/github-actions.md §4, "Budget in bytes").
const DefaultCommentMaxLen = 65536

// resourceBoundarySlack is how many diff lines a cut gives up to end
// between two resources rather than inside one.
const resourceBoundarySlack = 60

// maxOpenDiffLines is the longest diff a comment shows without folding.
const maxOpenDiffLines = 12

// DefaultSummaryMaxLen is the budget for one job-summary section. GitHub
// accepts 1 MiB per step summary and silently drops the WHOLE summary when it
// is larger, and actions/runner#4337 reports drops just under 1 MiB
// (docs/research/github-actions.md §4), so the default stays at 1,000,000 bytes.
const DefaultSummaryMaxLen = 1_000_000

// CommentOptions controls Comment.
type CommentOptions struct {
	// Marker is the hidden first line that identifies the comment; build it
	// with Marker. Empty: no marker line.
	Marker string
	// HeadSHA is the commit the plan was made for (shown as 7 characters).
	HeadSHA string
	// RunURL is the workflow run; the footer links it, and the cut notice
	// sends readers there for the job summary.
	RunURL string
	// MaxLen is the budget in bytes; 0 means DefaultCommentMaxLen.
	MaxLen int
	// ArtifactName names the uploaded plan JSON, if there is one, so the
	// cut notice can say exactly where the full plan is.
	ArtifactName string
	// Next, when set, ends a plan comment with what merging does.
	Next *NextSteps
}

// NextSteps is what a pull request's plan comment says happens next.
type NextSteps struct {
	// GitHubEnvironment is the GitHub environment whose protection rules
	// (required reviewers, wait timer, branches) the apply job waits for;
	// by convention the deploybot environment's own name.
	GitHubEnvironment string
	// Branch is the pull request's head branch (untrusted: escaped).
	Branch string
}

// SummaryOptions controls Summary.
type SummaryOptions struct {
	HeadSHA string
	RunURL  string
	// MaxLen is the budget in bytes; 0 means DefaultSummaryMaxLen. GitHub's
	// 1 MiB is per step and counts everything appended to
	// GITHUB_STEP_SUMMARY, so a step that writes several environments must
	// divide it between them.
	MaxLen       int
	ArtifactName string
}

// Comment renders the pull-request comment for one environment: the marker
// first; a title; when r is not nil, the apply's outcome (status, ECS
// deployment, health gate); the one-line summary; loud warnings for destroys,
// replacements and conflicts, each address with its reason; notes; the diff
// in a collapsed section (open when it is 12 lines or fewer); a footer with
// the short commit and the run link.
//
// It never exceeds MaxLen: the diff is cut on line boundaries first (the
// marker, summary, warnings and footer stay), and the comment says how much
// was cut and where the full plan is. p may be nil when r carries the plan.
func Comment(p *plan.Plan, r *plan.Report, o CommentOptions) string {
	d := newMDDoc(reportPlan(p, r), r, mdOptions{
		next:              o.Next,
		marker:            strings.TrimSpace(OneLine(o.Marker)),
		headSHA:           o.HeadSHA,
		runURL:            o.RunURL,
		artifactName:      o.ArtifactName,
		collapsed:         true,
		surface:           "pull-request comment",
		limitText:         "GitHub allows 65,536 characters",
		fullPlanInSummary: true,
	})
	return d.fit(maxLen(o.MaxLen, DefaultCommentMaxLen))
}

// Summary renders the job summary for one environment: the same sections as
// Comment, with the whole plan shown open, cut (like Comment) only beyond
// MaxLen.
func Summary(p *plan.Plan, r *plan.Report, o SummaryOptions) string {
	d := newMDDoc(reportPlan(p, r), r, mdOptions{
		headSHA:      o.HeadSHA,
		runURL:       o.RunURL,
		artifactName: o.ArtifactName,
		collapsed:    false,
		surface:      "job summary",
		limitText:    "GitHub drops a step summary over 1 MiB entirely",
	})
	return d.fit(maxLen(o.MaxLen, DefaultSummaryMaxLen))
}

// maxLen is an options' MaxLen, or dflt when it is not positive.
func maxLen(n, dflt int) int {
	if n <= 0 {
		return dflt
	}
	return n
}

type mdOptions struct {
	next                                  *NextSteps
	marker, headSHA, runURL, artifactName string
	collapsed                             bool
	surface, limitText                    string
	// fullPlanInSummary: the cut notice points at the job summary too.
	fullPlanInSummary bool
}

// mdDoc holds the parts of a markdown view, so fit can render it with less
// of the diff, or fewer list items, until it fits.
type mdDoc struct {
	o mdOptions
	p *plan.Plan
	r *plan.Report

	lines *planLines
	// diff is the changes, then the derived changes (from split on);
	// diffText is each line laid out for a ```diff block.
	diff     []diffLine
	split    int
	diffText []string
	cost     cost.Estimate
}

func newMDDoc(p *plan.Plan, r *plan.Report, o mdOptions) *mdDoc {
	d := &mdDoc{o: o, p: p, r: r}
	if p != nil {
		d.lines = buildLines(p, false)
		d.diff = append(append([]diffLine{}, d.lines.changes...), d.lines.derived...)
		d.split = len(d.lines.changes)
		for _, l := range d.diff {
			d.diffText = append(d.diffText, diffBlockLine(l))
		}
		d.cost = cost.Of(p)
	}
	return d
}

// fit renders the document within limit bytes. First the whole thing; then
// as many leading diff lines as fit; then, with no diff, as many items of
// every list (warnings, notes, steps, ...) as fit; last, a minimal body.
func (d *mdDoc) fit(limit int) string {
	all := len(d.diffText)
	if s := d.render(all, -1); len(s) <= limit {
		return s
	}
	// The largest number of diff lines that fits.
	lo, hi := -1, all-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(d.render(mid, -1)) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo >= 0 {
		// End on a resource boundary when one is near, so no resource is
		// shown half.
		for k := lo; k > 0 && k > lo-resourceBoundarySlack; k-- {
			if d.diffText[k] == "" {
				// Fewer lines can still mean a longer notice (more digits),
				// so the shorter cut is checked too.
				if s := d.render(k, -1); len(s) <= limit {
					return s
				}
				break
			}
		}
		return d.render(lo, -1)
	}
	// Even without the diff it does not fit: shorten the lists.
	maxItems := d.longestList()
	lo, hi = -1, maxItems
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(d.render(0, mid)) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo >= 0 {
		return d.render(0, lo)
	}
	return d.minimal(limit)
}

// longestList is the length of the longest list fit may shorten.
func (d *mdDoc) longestList() int {
	n := 0
	if d.p != nil {
		n = max(n, len(d.p.Changes), len(d.p.Notes))
	}
	if d.r != nil {
		n = max(n, len(d.r.Steps))
		if g := d.r.Gate; g != nil {
			n = max(n, len(g.Workers), len(g.StoppedTasks), len(g.ServiceEvents), len(g.Warnings))
		}
	}
	return n
}

// minimal is the last resort: marker, title, summary line, and a pointer to
// the full plan, cut to the limit on a character boundary.
func (d *mdDoc) minimal(limit int) string {
	var b strings.Builder
	if d.o.marker != "" {
		b.WriteString(d.o.marker + "\n")
	}
	b.WriteString(d.title() + "\n\n")
	if d.p != nil {
		b.WriteString("**" + Escape(summaryLine(d.p)) + "**\n\n")
	}
	b.WriteString("This plan is too large to show here. " + d.whereFull() + "\n")
	s := b.String()
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// render builds the document with the first diffKeep diff lines and at most
// itemCap items per list (-1: all).
func (d *mdDoc) render(diffKeep, itemCap int) string {
	var b strings.Builder
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	if d.o.marker != "" {
		w(d.o.marker, "\n")
	}
	w(d.title(), "\n\n")

	if d.r != nil {
		w(d.reportSection(itemCap))
	}
	if d.p != nil {
		w(d.planSection(diffKeep, itemCap))
	}
	w(d.footer())
	return b.String()
}

func (d *mdDoc) title() string {
	env := ""
	if d.p != nil {
		env = d.p.Environment
	} else if d.r != nil {
		env = d.r.Environment
	}
	if d.r != nil {
		return "### " + reportIcon(d.r) + Code(env) + ": " + Escape(statusHeadline(d.r))
	}
	what := "plan"
	if d.p != nil && d.p.Operation == plan.OpDestroy {
		what = "destroy plan"
	}
	t := fmt.Sprintf("### deploybot %s for %s", what, Code(env))
	if d.p != nil && d.p.Summary().Conflicts > 0 {
		// A conflict is the headline: nothing below can be applied.
		t = "### ⛔ " + t[4:] + ": cannot be applied"
	}
	return t
}

// capList returns the first n items (all when n < 0) and how many were left.
func capList[T any](items []T, n int) ([]T, int) {
	if n < 0 || len(items) <= n {
		return items, 0
	}
	return items[:n], len(items) - n
}

// bullets is a list item for each of the first n items (all with n < 0),
// each line after prefix ("> " inside a callout), and a last one that says
// how many more there are and where they are.
func bullets[T any](d *mdDoc, prefix string, items []T, n int, what string, item func(T) string) string {
	shown, more := capList(items, n)
	var b strings.Builder
	for _, x := range shown {
		b.WriteString(prefix + "- " + item(x) + "\n")
	}
	return b.String() + d.moreItem(prefix, more, what)
}

func (d *mdDoc) moreItem(prefix string, n int, what string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%s- … and %d more %s, not shown for lack of space. %s\n", prefix, n, what, d.whereFull())
}

func (d *mdDoc) planSection(diffKeep, itemCap int) string {
	p := d.p
	var b strings.Builder
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	sum := p.Summary()

	// 1. The summary line; with a conflict, the reason it cannot be applied.
	if sum.Conflicts > 0 {
		w("**", Escape(conflictLine(sum.Conflicts)), "**\n\n")
		w("Without the conflict: ", Escape(summaryLine(p)))
	} else {
		w("**", Escape(summaryLine(p)), "**")
	}
	if ctx := planContext(p); ctx != "" {
		w(" ", ctx)
	}
	w("\n\n")
	if d.cost.Changes() {
		w("**Estimated cost:** ", costTotalMD(&d.cost), "\n\n")
	}

	// 2. Dangers, above the fold, each with its reason
	// (docs/research/pr-comment-bots.md §8 lesson 8; tfcmt's deletion warning).
	var destructive, conflicts []plan.Change
	for _, c := range p.Changes {
		switch c.Action {
		case plan.Delete, plan.Replace:
			destructive = append(destructive, c)
		case plan.Conflict:
			conflicts = append(conflicts, c)
		}
	}
	if len(conflicts) > 0 {
		w("> [!CAUTION]\n> **Conflicts: deploybot never takes over a resource it did not create.** Delete or rename each one, or use another environment name, then push a commit to plan again:\n>\n")
		w(bullets(d, "> ", conflicts, itemCap, "conflicts", func(c plan.Change) string {
			item := Code(c.Address)
			if c.Name != "" {
				item += " (" + Code(c.Name) + ")"
			}
			if c.Reason != "" {
				item += ": " + Escape(c.Reason)
			}
			return item
		}), "\n")
	}
	if len(p.Unread) > 0 {
		// What the plan could not look at: a reviewer must know the plan
		// is not the whole story, and that merging will not apply it.
		w("> [!WARNING]\n> **Not read, so not in this plan** (an apply refuses a plan that could not read them):\n>\n")
		for _, u := range p.Unread {
			w("> - ", Code(u.Address), ": ", Escape(u.Reason), "\n")
		}
		w("\n")
	}
	if len(destructive) > 0 {
		w(d.dangerSection(destructive, sum, itemCap))
	}
	// Notes explain what a new or rebuilt stack will be like; on a plan
	// that only changes settings they are the same every time, and a
	// reviewer learns to skip the box (issue 13).
	if len(p.Notes) > 0 && (sum.Add+sum.Replace+sum.Destroy > 0 || !d.o.collapsed) {
		w("> [!NOTE]\n", bullets(d, "> ", p.Notes, itemCap, "notes", Escape), "\n")
	}

	// 3. The diff: the changes, then what deploybot derives from them.
	if len(d.diffText) > 0 {
		w(d.diffSection(diffKeep))
	}

	// 4. The cost, line by line, when there is more than the total says.
	if d.cost.Changes() && (len(d.cost.Lines) > 1 || len(d.cost.Unknown) > 0 || len(d.cost.UsageBased) > 0) {
		w(d.costSection(itemCap))
	}

	// 5. What merging does.
	if d.o.next != nil && d.r == nil {
		w(d.nextSection())
	}
	return b.String()
}

// dangerSection lists destroys and replacements. A destroy plan, or any
// plan whose deletions share one reason, says the reason once.
func (d *mdDoc) dangerSection(destructive []plan.Change, sum plan.Summary, itemCap int) string {
	var b strings.Builder
	reasons := map[string]bool{}
	for _, c := range destructive {
		if c.Action == plan.Delete {
			reasons[c.Reason] = true
		}
	}
	if d.p.Operation == plan.OpDestroy {
		b.WriteString("> [!CAUTION]\n> **This destroys environment " + Code(d.p.Environment) + ": " + plural(sum.Destroy, "resource") + ", in this order:**\n>\n> ")
		shown, more := capList(destructive, itemCap)
		var items []string
		for _, c := range shown {
			items = append(items, Code(c.Address))
		}
		b.WriteString(strings.Join(items, " → "))
		b.WriteString("\n")
		b.WriteString(d.moreItem("> ", more, "destroyed resources"))
		b.WriteString("\n")
		return b.String()
	}
	b.WriteString("> [!CAUTION]\n> **" + Escape(destructiveHeadline(sum.Destroy, sum.Replace)) + "**\n>\n")
	b.WriteString(bullets(d, "> ", destructive, itemCap, "destroyed or replaced resources", destructiveItem))
	b.WriteString("\n")
	return b.String()
}

// diffSection is the folded plan: the legend and the shared tags once, the
// changes, then the derived changes, in ```diff blocks GitHub colours.
func (d *mdDoc) diffSection(diffKeep int) string {
	var b strings.Builder
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	total := len(d.diffText)
	keep := min(max(diffKeep, 0), total)
	if keep < total {
		w(d.cutNotice(keep), "\n")
	}
	if keep == 0 {
		return b.String()
	}
	// A short diff is shown open: collapsing a few lines only costs the
	// reviewer a click (Atlantis folds beyond 12 lines, dflook beyond 10;
	// docs/research/pr-comment-bots.md §1, §2).
	open := "<details>"
	if !d.o.collapsed || keep <= maxOpenDiffLines {
		open = "<details open>"
	}
	n := len(changed(d.p)) - d.p.Summary().Conflicts
	label := fmt.Sprintf("The plan: %s, %d lines", plural(n, "resource"), total)
	if keep < total {
		label = fmt.Sprintf("The plan: the first %d of %d lines", keep, total)
	}
	w(open, "<summary>", EscapeHTML(label), "</summary>\n\n")
	w(legendMD(d.lines.symbols, d.lines.insideChange()), "\n\n")
	if len(d.lines.common) > 0 {
		var tags []string
		for _, f := range d.lines.common {
			tags = append(tags, Code(commonTagText(f)))
		}
		w(Escape(commonTagsTitle(d.lines.common)), " ", strings.Join(tags, " · "), "\n\n")
	}
	first := d.diffText[:min(keep, d.split)]
	if len(first) > 0 {
		w(diffBlock(first))
	}
	if keep > d.split {
		if len(first) > 0 {
			w("\n")
		}
		w("Derived from the changes above (values deploybot computes, and what uses them):\n\n")
		w(diffBlock(d.diffText[d.split:keep]))
	}
	w("\n</details>\n\n")
	return b.String()
}

func diffBlock(lines []string) string {
	fence := Fence(lines)
	return fence + "diff\n" + strings.Join(lines, "\n") + "\n" + fence + "\n"
}

// commonTagText is one shared tag: "team=data-platform", or its change.
func commonTagText(f plan.FieldChange) string {
	k := strings.TrimPrefix(f.Path, "tags.")
	switch {
	case f.Before == "":
		return k + "=" + f.After
	case f.After == "":
		return k + "=" + f.Before + " (removed)"
	}
	return k + ": " + f.Before + " → " + f.After
}

func planContext(p *plan.Plan) string {
	var parts []string
	if p.Account != "" {
		parts = append(parts, "account "+Code(p.Account))
	}
	if p.Region != "" {
		parts = append(parts, Code(p.Region))
	}
	if p.File != "" {
		parts = append(parts, Code(p.File))
	}
	return strings.Join(parts, " · ")
}

func destructiveHeadline(destroy, replace int) string {
	var parts []string
	if destroy > 0 {
		parts = append(parts, fmt.Sprintf("destroys %s", plural(destroy, "resource")))
	}
	if replace > 0 {
		parts = append(parts, fmt.Sprintf("replaces %s", plural(replace, "resource")))
	}
	msg := "This plan " + strings.Join(parts, " and ") + "."
	if replace > 0 {
		msg += " A replaced resource is deleted and created again; anything using it is interrupted."
	}
	return msg + " Check each one:"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// destructiveItem names the resource, what happens, why, and which fields
// force a replacement.
func destructiveItem(c plan.Change) string {
	item := Code(c.Address)
	if c.Name != "" {
		item += " (" + Code(c.Name) + ")"
	}
	if c.Action == plan.Delete {
		item += " **will be destroyed**"
	} else {
		item += " **will be replaced**"
	}
	if c.Reason != "" {
		item += ": " + Escape(c.Reason)
	}
	var forcing []string
	for _, f := range c.Fields {
		if f.ForcesReplacement {
			forcing = append(forcing, Code(f.Path))
		}
	}
	if len(forcing) > 0 && !strings.Contains(c.Reason, strings.Trim(forcing[0], "`")) {
		item += " (forced by " + strings.Join(forcing, ", ") + ")"
	}
	return item
}

// legendMD explains the symbols of the diff blocks, once per comment; "~"
// is shown as "!" there because GitHub's diff highlighting colours "!"
// lines and not "~" (terraform-pr-commenter's trick,
// docs/research/pr-comment-bots.md §5), and "!" means nothing else.
func legendMD(used map[plan.Action]bool, insideChange bool) string {
	var parts []string
	for _, e := range legend(used) {
		text := e.text
		switch {
		case e.sym == "+" && insideChange:
			text += " (or, inside a change, a value added)"
		case e.sym == "-" && insideChange:
			text += " (or, inside a change, a value removed)"
		}
		parts = append(parts, Code(diffSymbol(e.sym))+" "+Escape(text))
	}
	return "Symbols: " + strings.Join(parts, " · ")
}

func diffSymbol(sym string) string {
	if sym == "~" {
		return "!"
	}
	return sym
}

// diffBlockLine lays a line out for a ```diff block: the symbol in column 0
// so GitHub colours added lines green and removed lines red.
func diffBlockLine(l diffLine) string {
	indent := strings.Repeat("  ", l.depth)
	switch {
	case l.text == "" && l.sym == "":
		return ""
	case l.sym == "":
		return "    " + indent + l.text
	}
	return fmt.Sprintf("%-3s %s%s", diffSymbol(l.sym), indent, l.text)
}

// cutNotice says exactly how much of the diff was left out and where the
// full plan is.
func (d *mdDoc) cutNotice(keep int) string {
	total := len(d.diffText)
	cutBytes := 0
	for _, l := range d.diffText[keep:] {
		cutBytes += len(l) + 1
	}
	var msg string
	if keep == 0 {
		msg = fmt.Sprintf("The plan is too long for a %s (%s), so its %d diff lines (%s) are not shown here.",
			d.o.surface, d.o.limitText, total, byteSize(cutBytes))
	} else {
		from := ""
		for i := keep; i < total; i++ {
			if a := d.diff[i].addr; a != "" {
				from = a
				break
			}
		}
		msg = fmt.Sprintf("The plan is too long for a %s (%s): it shows the first %d of %d diff lines; the last %d lines (%s) were cut",
			d.o.surface, d.o.limitText, keep, total, total-keep, byteSize(cutBytes))
		if from != "" && d.diff[keep-1].addr == from {
			msg += ", from the middle of " + Code(from) + " on"
		} else if from != "" {
			msg += ", from " + Code(from) + " on"
		}
		msg += "."
	}
	return "> [!IMPORTANT]\n> " + msg + " " + d.whereFull() + "\n"
}

// whereFull points at the complete plan.
func (d *mdDoc) whereFull() string {
	artifact := "the plan JSON artifact"
	if d.o.artifactName != "" {
		artifact += " " + Code(d.o.artifactName)
	}
	where := artifact + " of this run"
	if d.o.fullPlanInSummary {
		summary := "the job summary"
		if u := SafeURL(d.o.runURL); u != "" {
			summary = "the [job summary](" + u + ")"
		}
		where = summary + " and in " + artifact + " of this run"
	} else if u := SafeURL(d.o.runURL); u != "" {
		where = artifact + " of [this run](" + u + ")"
	}
	return "The full plan is in " + where + "."
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return plural(n, "byte")
}

func (d *mdDoc) footer() string {
	var parts []string
	parts = append(parts, "deploybot")
	verb := "planned"
	if d.r != nil {
		verb = reportVerb(d.r)
	}
	if d.o.headSHA != "" {
		parts = append(parts, verb+" at commit "+Code(shortSHA(d.o.headSHA)))
	}
	if u := SafeURL(d.o.runURL); u != "" {
		parts = append(parts, "[workflow run]("+u+")")
	}
	if d.p != nil && d.p.Fingerprint != "" {
		parts = append(parts, "plan fingerprint "+Code(d.p.Fingerprint))
	}
	return "---\n<sub>" + strings.Join(parts, " · ") + "</sub>\n"
}

// reportSection tells what happened, cause first: the cause, then the
// story in order (the changes, the ECS deployment in ECS's own words, the
// health gate, the rollback as a step of its own), then the details.
func (d *mdDoc) reportSection(itemCap int) string {
	r := d.r
	var b strings.Builder
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	st := newStory(r)
	if st.cause != "" {
		kind := "CAUTION"
		if r.Status == plan.StatusRefused {
			kind = "WARNING"
		}
		w("> [!", kind, "]\n> **", Escape(st.causeTitle), "** ", Escape(st.cause), "\n")
		for _, why := range st.why {
			w(">\n> ", Escape(why), "\n")
		}
		w("\n")
	}
	if len(st.steps) > 0 {
		for i, s := range st.steps {
			w(fmt.Sprintf("%d. ", i+1), s.md(), "\n")
		}
		w("\n")
	}
	if next := st.next; next != "" {
		w(Escape(next), "\n\n")
	}

	if g := r.Gate; g != nil && g.FlowRun != nil && g.FlowRun.ID != "" {
		w(flowRunMarkdown(g.FlowRun))
	}
	if g := r.Gate; g != nil && len(g.Workers) > 0 {
		w("<details><summary>", EscapeHTML(fmt.Sprintf("Prefect workers in the pool %s: %s", workersWhen(g), workersSeen(g))), "</summary>\n\n")
		w("| worker | status | revision | last heartbeat |\n|---|---|---|---|\n")
		shown, more := capList(g.Workers, itemCap)
		for _, wk := range shown {
			rev := "earlier"
			if wk.NewRevision {
				rev = "**new**"
			}
			w("| ", TableCell(Code(wk.Name)), " | ", TableCell(Escape(wk.Status)), " | ", rev, " | ", orDash(formatTime(wk.LastHeartbeat)), " |\n")
		}
		if more > 0 {
			w(fmt.Sprintf("| … and %d more | | | |\n", more))
		}
		w("\n</details>\n\n")
	}
	if g := r.Gate; g != nil && len(g.StoppedTasks) > 1 {
		w("<details><summary>", EscapeHTML(fmt.Sprintf("Stopped tasks of the new revision (%d)", len(g.StoppedTasks))), "</summary>\n\n")
		w(bullets(d, "", g.StoppedTasks, itemCap, "stopped tasks", func(t plan.StoppedTask) string {
			return Code(taskID(t.TaskARN)) + ": " + Escape(stoppedTaskDetail(t))
		}), "\n</details>\n\n")
	}
	if g := r.Gate; g != nil && len(g.ServiceEvents) > 0 {
		w("<details><summary>Recent ECS service events (", strconv.Itoa(len(g.ServiceEvents)), ")</summary>\n\n")
		w(bullets(d, "", g.ServiceEvents, itemCap, "events", Escape), "\n</details>\n\n")
	}
	if g := r.Gate; g != nil && len(g.Warnings) > 0 {
		w("> [!WARNING]\n", bullets(d, "> ", g.Warnings, itemCap, "warnings", Escape), "\n")
	}
	if len(r.Steps) > 0 {
		open := "<details>"
		if !d.o.collapsed {
			open = "<details open>"
		}
		w(open, "<summary>", EscapeHTML("Resource steps: "+stepCounts(r)), "</summary>\n\n| action | resource | status | duration |\n|---|---|---|---|\n")
		shown, more := capList(r.Steps, itemCap)
		for _, s := range shown {
			status := Escape(stepStatusWord(s.Status))
			if s.Status == "failed" {
				status = "**failed**"
			}
			w("| ", TableCell(Escape(string(s.Action))), " | ", TableCell(Code(s.Address)), " | ", TableCell(status), " | ",
				formatDuration(s.Duration), " |\n")
		}
		if more > 0 {
			w(fmt.Sprintf("| | … and %d more | | |\n", more))
		}
		w("\n</details>\n\n")
	}
	if d.p != nil {
		w("#### The plan that was ", planVerb(r), "\n\n")
	}
	return b.String()
}

func escOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return Escape(s)
}

// taskID shortens a task ARN to its id, which is what the ECS console and
// the service events show.
func taskID(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 && i < len(arn)-1 {
		return arn[i+1:]
	}
	return arn
}

func codeOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return Code(s)
}
