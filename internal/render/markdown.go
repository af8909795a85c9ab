package render

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"unicode/utf8"

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
	limit := o.MaxLen
	if limit <= 0 {
		limit = DefaultCommentMaxLen
	}
	d := newMDDoc(reportPlan(p, r), r, mdOptions{
		marker:            strings.TrimSpace(OneLine(o.Marker)),
		headSHA:           o.HeadSHA,
		runURL:            o.RunURL,
		artifactName:      o.ArtifactName,
		collapsed:         true,
		surface:           "pull-request comment",
		limitText:         "GitHub allows 65,536 characters",
		fullPlanInSummary: true,
	})
	return d.fit(limit)
}

// Summary renders the job summary for one environment: the same sections as
// Comment, with the whole plan shown open, cut (like Comment) only beyond
// MaxLen.
func Summary(p *plan.Plan, r *plan.Report, o SummaryOptions) string {
	limit := o.MaxLen
	if limit <= 0 {
		limit = DefaultSummaryMaxLen
	}
	d := newMDDoc(reportPlan(p, r), r, mdOptions{
		headSHA:      o.HeadSHA,
		runURL:       o.RunURL,
		artifactName: o.ArtifactName,
		collapsed:    false,
		surface:      "job summary",
		limitText:    "GitHub drops a step summary over 1 MiB entirely",
	})
	return d.fit(limit)
}

type mdOptions struct {
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

	diff     []diffLine
	diffText []string // diff lines laid out for a ```diff block
}

func newMDDoc(p *plan.Plan, r *plan.Report, o mdOptions) *mdDoc {
	d := &mdDoc{o: o, p: p, r: r}
	if p != nil {
		d.diff = diffLines(p)
		for _, l := range d.diff {
			d.diffText = append(d.diffText, diffBlockLine(l))
		}
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
		icon := map[plan.Status]string{
			plan.StatusSucceeded:  "✅",
			plan.StatusNoChanges:  "✅",
			plan.StatusFailed:     "❌",
			plan.StatusRolledBack: "↩️",
			plan.StatusRefused:    "⛔",
		}[d.r.Status]
		if icon != "" {
			icon += " "
		}
		return fmt.Sprintf("### %s%s: %s", icon, Code(env), Escape(statusHeadline(d.r)))
	}
	what := "plan"
	if d.p != nil && d.p.Operation == plan.OpDestroy {
		what = "destroy plan"
	}
	return fmt.Sprintf("### deploybot %s for %s", what, Code(env))
}

// capList returns the first n items (all when n < 0) and how many were left.
func capList[T any](items []T, n int) ([]T, int) {
	if n < 0 || len(items) <= n {
		return items, 0
	}
	return items[:n], len(items) - n
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

	w("**", Escape(summaryLine(p)), "**")
	if ctx := planContext(p); ctx != "" {
		w(" ", ctx)
	}
	w("\n\n")

	// Destroys and replacements: every address with its reason, above the
	// fold, in GitHub's loudest alert (docs/research/pr-comment-bots.md §8
	// lesson 8; tfcmt's deletion warning).
	var destructive, conflicts []plan.Change
	for _, c := range p.Changes {
		switch c.Action {
		case plan.Delete, plan.Replace:
			destructive = append(destructive, c)
		case plan.Conflict:
			conflicts = append(conflicts, c)
		}
	}
	if len(destructive) > 0 {
		s := p.Summary()
		w("> [!CAUTION]\n> **", Escape(destructiveHeadline(s.Destroy, s.Replace)), "**\n>\n")
		shown, more := capList(destructive, itemCap)
		for _, c := range shown {
			w("> - ", destructiveItem(c), "\n")
		}
		w(d.moreItem("> ", more, "destroyed or replaced resources"))
		w("\n")
	}
	if len(conflicts) > 0 {
		w("> [!WARNING]\n> **", Escape(conflictLine(len(conflicts))), "**\n>\n")
		shown, more := capList(conflicts, itemCap)
		for _, c := range shown {
			item := Code(c.Address)
			if c.Name != "" {
				item += " (" + Code(c.Name) + ")"
			}
			if c.Reason != "" {
				item += ": " + Escape(c.Reason)
			}
			w("> - ", item, "\n")
		}
		w(d.moreItem("> ", more, "conflicts"))
		w("\n")
	}
	if len(p.Notes) > 0 {
		w("> [!NOTE]\n")
		shown, more := capList(p.Notes, itemCap)
		for _, n := range shown {
			w("> - ", Escape(n), "\n")
		}
		w(d.moreItem("> ", more, "notes"))
		w("\n")
	}

	if len(d.diffText) == 0 {
		return b.String()
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
	label := fmt.Sprintf("Show plan (%d resources, %d lines)", len(changed(p)), total)
	if keep < total {
		label = fmt.Sprintf("Show plan (first %d of %d lines)", keep, total)
	}
	w(open, "<summary>", html.EscapeString(label), "</summary>\n\n")
	w(legendMD(p), "\n\n")
	fence := Fence(d.diffText[:keep])
	w(fence, "diff\n")
	for _, l := range d.diffText[:keep] {
		w(l, "\n")
	}
	w(fence, "\n\n</details>\n\n")
	return b.String()
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
	if len(forcing) > 0 {
		item += " (forced by " + strings.Join(forcing, ", ") + ")"
	}
	return item
}

// legendMD explains the symbols of the diff block; "~" is shown as "!"
// there because GitHub's diff highlighting colours "!" lines and not "~"
// (terraform-pr-commenter's trick, docs/research/pr-comment-bots.md §5).
func legendMD(p *plan.Plan) string {
	var parts []string
	for _, e := range legend(p) {
		parts = append(parts, Code(diffSymbol(e.sym))+" "+Escape(e.text))
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
		return indent + l.text
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
		switch d.r.Operation {
		case plan.OpApply, "":
			verb = "applied"
		case plan.OpDestroy:
			verb = "destroyed"
		}
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

// reportSection renders the apply's outcome above the plan.
func (d *mdDoc) reportSection(itemCap int) string {
	r := d.r
	var b strings.Builder
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	line := "**Status:** " + Escape(strings.ReplaceAll(string(r.Status), "_", " "))
	if dur := r.FinishedAt.Sub(r.StartedAt); !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() && dur > 0 {
		line += " after " + formatDuration(dur)
	}
	w(line, "\n\n")
	if r.Error != "" {
		w("> [!CAUTION]\n> **Error:** ", Escape(r.Error), "\n\n")
	}

	if dp := r.Deployment; dp != nil {
		s := "**ECS deployment:** " + Code(dp.Cluster+"/"+dp.Service)
		if dp.DeploymentID != "" {
			s += " deployment " + Code(dp.DeploymentID)
		}
		if dp.Status != "" {
			s += ": **" + Escape(dp.Status) + "**"
		}
		w(s, "\n")
		w("- task definition ", codeOrDash(dp.TaskDefinition), "\n")
		if dp.PreviousTaskDefinition != "" {
			w("- previous task definition ", Code(dp.PreviousTaskDefinition), "\n")
		} else {
			w("- previous task definition: none (first deploy)\n")
		}
		if dp.WorkerPrefix != "" {
			w("- worker name prefix ", Code(dp.WorkerPrefix), "\n")
		}
		if s := formatTime(dp.StartedAt); s != "" {
			w("- started ", s, "\n")
		}
		w("\n")
	}

	if g := r.Gate; g != nil {
		verdict := "✅ passed"
		if !g.Passed {
			verdict = "❌ failed"
		}
		s := "**Prefect health gate:** " + verdict + " after " + formatDuration(g.Duration)
		if g.Reason != "" {
			s += ": " + Escape(g.Reason)
		}
		if u := SafeURL(g.WorkPoolURL); u != "" {
			s += " ([work pool](" + u + "))"
		}
		w(s, "\n\n")
		switch {
		case g.RolledBack && g.RestoredWorkerOnline:
			w("> [!NOTE]\n> **Rolled back** to ", codeOrDash(g.RolledBackTo), "; the previous worker is ONLINE again.\n\n")
		case g.RolledBack:
			w("> [!CAUTION]\n> **Rolled back** to ", codeOrDash(g.RolledBackTo), ", but the previous worker has NOT come back online.\n\n")
		case g.NothingToRollBack:
			w("> [!WARNING]\n> **Nothing to roll back to: this was the first deploy.**\n\n")
		}
		w("Workers seen: ", Escape(workersSeen(g)), "\n\n")
		if len(g.Workers) > 0 {
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
			w("\n")
		}
		if len(g.StoppedTasks) > 0 {
			w("Stopped tasks of the new revision:\n\n| task | stopped reason | stop code | exit code | container |\n|---|---|---|---|---|\n")
			shown, more := capList(g.StoppedTasks, itemCap)
			for _, st := range shown {
				exit := "-"
				if st.ExitCode != nil {
					exit = strconv.Itoa(int(*st.ExitCode))
				}
				w("| ", TableCell(Code(taskID(st.TaskARN))), " | ", TableCell(escOrDash(st.StoppedReason)), " | ", TableCell(escOrDash(st.StopCode)),
					" | ", exit, " | ", TableCell(escOrDash(st.ContainerReason)), " |\n")
			}
			if more > 0 {
				w(fmt.Sprintf("| … and %d more | | | | |\n", more))
			}
			w("\n")
		}
		if len(g.ServiceEvents) > 0 {
			w("<details><summary>Recent ECS service events (", strconv.Itoa(len(g.ServiceEvents)), ")</summary>\n\n")
			shown, more := capList(g.ServiceEvents, itemCap)
			for _, e := range shown {
				w("- ", Escape(e), "\n")
			}
			w(d.moreItem("", more, "events"))
			w("\n</details>\n\n")
		}
		if g.PrunedWorkers > 0 {
			w("Pruned ", plural(g.PrunedWorkers, "offline worker"), " left by earlier revisions.\n\n")
		}
		if len(g.Warnings) > 0 {
			w("> [!WARNING]\n")
			shown, more := capList(g.Warnings, itemCap)
			for _, wn := range shown {
				w("> - ", Escape(wn), "\n")
			}
			w(d.moreItem("> ", more, "warnings"))
			w("\n")
		}
	}

	if len(r.Steps) > 0 {
		counts := map[string]int{}
		for _, s := range r.Steps {
			counts[s.Status]++
		}
		summary := fmt.Sprintf("Steps: %d done, %d failed, %d skipped", counts["done"], counts["failed"], counts["skipped"])
		open := "<details>"
		if counts["failed"] > 0 || !d.o.collapsed {
			open = "<details open>"
		}
		w(open, "<summary>", summary, "</summary>\n\n| action | resource | status | duration | error |\n|---|---|---|---|---|\n")
		shown, more := capList(r.Steps, itemCap)
		for _, s := range shown {
			status := Escape(s.Status)
			if s.Status == "failed" {
				status = "**failed**"
			}
			w("| ", TableCell(Escape(string(s.Action))), " | ", TableCell(Code(s.Address)), " | ", TableCell(status), " | ",
				formatDuration(s.Duration), " | ", TableCell(Escape(s.Error)), " |\n")
		}
		if more > 0 {
			w(fmt.Sprintf("| | … and %d more | | | |\n", more))
		}
		w("\n</details>\n\n")
	}
	if d.p != nil {
		w("#### Plan\n\n")
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
