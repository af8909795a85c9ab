// Package render owns every view of a plan and of an apply report: terminal
// text (Text, ReportText), GitHub markdown for the pull-request comment
// (Comment, with its hidden Marker) and the job summary (Summary), and the
// machine-readable JSON (JSON, ReportJSON).
//
// All views are computed from the same pure data (internal/plan) by the same
// line model (buildLines), so they agree with each other. Output is
// deterministic: the same plan rendered twice is byte-identical, so a caller
// can skip a GitHub API call when a comment body has not changed. A field
// marked Sensitive never has a value printed, in any view, even if a caller
// filled Before/After by mistake.
package render

import (
	"fmt"
	"strings"
	"time"

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

// statusHeadline says in a few words how an apply or destroy ended, cause
// first.
func statusHeadline(r *plan.Report) string {
	// Any operation name reads right here, so a caller can report a plan
	// that failed as Operation "plan".
	op := OneLine(string(r.Operation))
	if op == "" {
		op = string(plan.OpApply)
	}
	g := r.Gate
	switch r.Status {
	case plan.StatusSucceeded:
		if r.Operation == plan.OpDestroy {
			return "destroyed"
		}
		if g != nil && g.Passed {
			return op + " succeeded: a worker of the new revision is ONLINE"
		}
		return op + " succeeded"
	case plan.StatusNoChanges:
		return op + ": no changes"
	case plan.StatusFailed:
		if g != nil && g.NothingToRollBack {
			return "first deploy failed the health gate; there is nothing to roll back to"
		}
		if g != nil && !g.Passed {
			return op + " failed the health gate"
		}
		for _, s := range r.Steps {
			if s.Status == "failed" {
				return op + " failed at " + OneLine(s.Address)
			}
		}
		return op + " failed"
	case plan.StatusRolledBack:
		if r.Deployment != nil && strings.HasPrefix(strings.ToUpper(r.Deployment.Status), "ROLLBACK") {
			return op + " rolled back by ECS's circuit breaker"
		}
		return op + " rolled back: the new revision failed the health gate"
	case plan.StatusRefused:
		return op + " refused: nothing was changed"
	}
	return op + " " + string(r.Status)
}
