package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/deploybot/deploybot/internal/plan"
)

// story is an apply's or destroy's report as one account, cause first
// (issue 10 item 7, issue 13 item 6): why it ended the way it did, printed
// once; what happened, in order, with ECS's own deployment state and the
// rollback as a step of its own; and what to do now. The markdown and
// terminal views both tell it.
type story struct {
	causeTitle string
	cause      string
	// why are the underlying reasons: a stopped task's reason, a failed
	// step's error when it is not the cause itself.
	why   []string
	steps []storyStep
	next  string
}

type storyStep struct {
	mark string // ✅ ❌ ↩️ ⛔ ⚠️ or ""
	// format is deploybot's own text with {} where each of args goes: a
	// string arg is an identifier, shown as code; a plain arg is text
	// (AWS's or Prefect's words, which must not be read as a format).
	format string
	args   []any
}

// plain is an argument of a step shown as text.
type plain string

func step(mark, format string, args ...any) storyStep {
	return storyStep{mark: mark, format: format, args: args}
}

func (s storyStep) render(text func(string) string, code func(string) string) string {
	var b strings.Builder
	if s.mark != "" {
		b.WriteString(s.mark + " ")
	}
	parts := strings.Split(s.format, "{}")
	for i, p := range parts {
		// Escape trims; the spaces around an argument are ours.
		t := strings.TrimSpace(p)
		if strings.HasPrefix(p, " ") && i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(text(t))
		if strings.HasSuffix(p, " ") && t != "" {
			b.WriteString(" ")
		}
		if i < len(s.args) {
			switch a := s.args[i].(type) {
			case plain:
				b.WriteString(text(string(a)))
			case string:
				b.WriteString(code(a))
			}
		}
	}
	return b.String()
}

func (s storyStep) md() string { return s.render(Escape, Code) }

func (s storyStep) text() string { return s.render(OneLine, OneLine) }

func newStory(r *plan.Report) story {
	var st story
	g := r.Gate
	op := string(r.Operation)
	if op == "" {
		op = string(plan.OpApply)
	}

	// The cause, once. The gate's reason names the revision and what it
	// waited for; the error often repeats it with the ECS details, which
	// are listed on their own below.
	errText := trimDetails(strings.TrimSpace(r.Error))
	cause := errText
	if g != nil && !g.Passed && g.Reason != "" {
		switch {
		case strings.Contains(errText, g.Reason):
		case errText == "" || strings.Contains(g.Reason, errText) || overlap(errText, g.Reason):
			cause = g.Reason
		default:
			st.why = append(st.why, "Health gate: "+g.Reason)
		}
	}
	switch r.Status {
	case plan.StatusRefused:
		st.causeTitle = "Refused, nothing was changed:"
	case plan.StatusRolledBack:
		st.causeTitle = "Why it was rolled back:"
	case plan.StatusFailed:
		st.causeTitle = "Why it failed:"
	default:
		if cause != "" {
			st.causeTitle = "Note:"
		}
	}
	st.cause = cause
	if g != nil {
		// The same reason on every stopped task is said once, with a count.
		seen := map[string]int{}
		var order []string
		for _, t := range g.StoppedTasks {
			d := stoppedTaskDetail(t)
			if seen[d] == 0 {
				order = append(order, d)
			}
			seen[d]++
		}
		for _, d := range order {
			if n := seen[d]; n > 1 {
				st.why = append(st.why, fmt.Sprintf("%d tasks of the new revision stopped: %s", n, d))
			} else {
				st.why = append(st.why, "A task of the new revision stopped: "+d)
			}
		}
	}
	for _, s := range r.Steps {
		if e := trimDetails(s.Error); s.Status == "failed" && e != "" && !strings.Contains(cause, e) && !overlap(cause, e) {
			st.why = append(st.why, s.Address+": "+e)
		}
	}

	// What happened, in order.
	counts := map[string]int{}
	failedAt := ""
	for _, s := range r.Steps {
		counts[s.Status]++
		if s.Status == "failed" && failedAt == "" {
			failedAt = s.Address
		}
	}
	switch {
	case r.Status == plan.StatusRefused:
		st.steps = append(st.steps, step("⛔", "Nothing was changed in AWS."))
	case r.Status == plan.StatusNoChanges:
		st.steps = append(st.steps, step("✅", "AWS already matches the file: nothing to change."))
	case len(r.Steps) > 0:
		what := "Changed AWS: "
		if op == string(plan.OpDestroy) {
			what = "Deleted everything: "
		}
		switch {
		case failedAt != "":
			st.steps = append(st.steps, step("❌", "Changing AWS failed at {}: {}.", failedAt, plain(stepCounts(r))))
		default:
			st.steps = append(st.steps, step("✅", what+"{}.", plain(stepCounts(r))))
		}
	}
	if dp := r.Deployment; dp != nil {
		format, args := "ECS deployment {} of {}", []any{orDash(dp.DeploymentID), revisionName(dp.TaskDefinition)}
		if dp.PreviousTaskDefinition != "" {
			format += " (replacing {})"
			args = append(args, revisionName(dp.PreviousTaskDefinition))
		} else {
			format += " (the first deploy)"
		}
		mark, meaning := ecsStatusMeaning(dp.Status)
		format += ": ECS reports {}" + meaning
		args = append(args, orDash(dp.Status))
		if dp.WorkerPrefix != "" {
			format += "; its workers are named {}"
			args = append(args, dp.WorkerPrefix+"-…")
		}
		st.steps = append(st.steps, step(mark, format+".", args...))
	}
	if g != nil {
		mark, verdict := "✅", "passed"
		if !g.Passed {
			mark, verdict = "❌", "failed"
		}
		reason := g.Reason
		if !g.Passed && strings.Contains(st.cause, g.Reason) {
			reason = "the reason above"
		}
		st.steps = append(st.steps, step(mark, "Prefect health gate "+verdict+" after "+formatDuration(g.Duration)+": {}.", plain(strings.TrimSuffix(reason, "."))))
		if fr := g.FlowRun; fr != nil && fr.ID != "" {
			st.steps = append(st.steps, flowRunStep(fr))
		}
		switch {
		case g.RolledBack:
			target := revisionName(g.RolledBackTo)
			if rb := r.Rollback; rb != nil {
				_, meaning := ecsStatusMeaning(rb.Status)
				st.steps = append(st.steps, step("↩️", "Rolled back to {}: ECS rollback deployment {} reports {}"+meaning+".", target, orDash(rb.DeploymentID), orDash(rb.Status)))
			} else {
				st.steps = append(st.steps, step("↩️", "Rolled back: the service runs {} again.", target))
			}
			if g.RestoredWorkerOnline {
				st.steps = append(st.steps, step("✅", "A worker of {} is ONLINE in the pool again.", target))
			} else {
				st.steps = append(st.steps, step("❌", "No worker of {} has come back ONLINE in the pool: check the work pool now.", target))
			}
		case g.NothingToRollBack:
			st.steps = append(st.steps, step("⚠️", "Nothing to roll back to: this was the environment's first deploy, so the pool has no working worker of deploybot."))
		}
		if g.PrunedWorkers > 0 {
			st.steps = append(st.steps, step("", "Removed "+plural(g.PrunedWorkers, "offline worker")+" that earlier revisions left in the pool."))
		}
	}

	// What to do now.
	switch r.Status {
	case plan.StatusRefused:
		st.next = "Fix the cause, then push a commit or re-run the workflow to plan again."
	case plan.StatusRolledBack:
		st.next = "The environment runs its previous revision. Fix the image or settings in a new pull request; its merge deploys again."
	case plan.StatusFailed:
		if g != nil && g.NothingToRollBack {
			st.next = "The resources exist but the worker does not work. Fix the cause in a new pull request; its merge applies and gates again."
		} else {
			st.next = "What was done stays done. deploybot reads AWS again on every run, so re-running the apply job continues from where AWS is now."
		}
	}
	return st
}

// ecsStatusMeaning says what an ECS deployment's rolloutState (or a
// deployment's status from DescribeServiceDeployments) means for the
// reader (docs/research/aws-ecs.md §4).
func ecsStatusMeaning(status string) (mark, meaning string) {
	switch strings.ToUpper(status) {
	case "SUCCESSFUL", "COMPLETED":
		return "✅", " (its tasks started and passed ECS's health check)"
	case "IN_PROGRESS", "PENDING":
		return "⏳", " (still in progress)"
	case "ROLLBACK_SUCCESSFUL":
		return "↩️", " (ECS's circuit breaker rolled the deployment back to the previous revision)"
	case "ROLLBACK_FAILED":
		return "❌", " (ECS's circuit breaker tried to roll back and failed)"
	case "ROLLBACK_IN_PROGRESS", "ROLLBACK_REQUESTED":
		return "↩️", " (ECS is rolling the deployment back)"
	case "FAILED", "STOPPED":
		return "❌", " (ECS stopped the deployment)"
	case "TIMED_OUT":
		return "❌", " (deploybot stopped waiting for it)"
	case "":
		return "", ""
	}
	return "", ""
}

// revisionName shows a task-definition ARN as family:revision.
func revisionName(arn string) string {
	if fr := taskDefinitionRevision(arn); fr != "" {
		return fr
	}
	if arn == "" {
		return "-"
	}
	return arn
}

// stepCounts says how far the steps got: "2 of 2 steps done", "17 of 18
// steps done, 1 failed, 3 not started"; never "0 failed" in a failed apply.
func stepCounts(r *plan.Report) string {
	counts := map[string]int{}
	for _, s := range r.Steps {
		counts[s.Status]++
	}
	s := fmt.Sprintf("%d of %s done", counts["done"], plural(len(r.Steps), "step"))
	for _, k := range []string{"failed", "skipped"} {
		if n := counts[k]; n > 0 {
			s += fmt.Sprintf(", %d %s", n, stepStatusWord(k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if k != "done" && k != "failed" && k != "skipped" {
			s += fmt.Sprintf(", %d %s", counts[k], OneLine(k))
		}
	}
	return s
}

// trimDetails drops the stopped tasks and service events an engine error
// appends ("...; stopped task: ...; event: ..."): the report lists them on
// their own.
func trimDetails(err string) string {
	for _, sep := range []string{"; stopped task: ", "; event: "} {
		if i := strings.Index(err, sep); i >= 0 {
			err = err[:i]
		}
	}
	return strings.TrimSpace(err)
}

// overlap says whether a and b share a run of 40 characters: the same
// message quoted in both.
func overlap(a, b string) bool {
	const n = 40
	if len(a) < n || len(b) < n {
		return false
	}
	for i := 0; i+n <= len(a); i += 8 {
		if strings.Contains(b, a[i:i+n]) {
			return true
		}
	}
	return false
}

func stepStatusWord(s string) string {
	if s == "skipped" {
		return "not started (a dependency failed)"
	}
	return s
}

// reportIcon marks how it ended, for the title.
func reportIcon(r *plan.Report) string {
	switch r.Status {
	case plan.StatusSucceeded, plan.StatusNoChanges:
		return "✅ "
	case plan.StatusFailed:
		return "❌ "
	case plan.StatusRolledBack:
		return "↩️ "
	case plan.StatusRefused:
		return "⛔ "
	}
	return ""
}

// reportVerb is what happened at the commit, for the footer: a refused
// apply was not "applied at commit".
func reportVerb(r *plan.Report) string {
	destroy := r.Operation == plan.OpDestroy
	switch r.Status {
	case plan.StatusRefused:
		return "refused"
	case plan.StatusFailed:
		if destroy {
			return "destroy failed"
		}
		return "apply failed"
	case plan.StatusRolledBack:
		return "rolled back"
	case plan.StatusNoChanges:
		return "nothing to do"
	}
	if destroy {
		return "destroyed"
	}
	return "applied"
}

func planVerb(r *plan.Report) string {
	switch r.Status {
	case plan.StatusRefused:
		return "refused"
	case plan.StatusSucceeded, plan.StatusNoChanges, plan.StatusRolledBack:
		return "applied"
	}
	return "attempted"
}
