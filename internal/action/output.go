package action

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	githubactions "github.com/sethvargo/go-githubactions"

	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/render"
)

// PlanJSONPath is where the plan-json output points, relative to the
// workspace: inside a container action the workspace is /github/workspace,
// on the runner it is the job's checkout, and later steps start there, so a
// relative path is right on both sides (docs/research/github-actions.md §1.1 mounts).
const PlanJSONPath = ".deploybot/plan.json"

// summaryBudget is what deploybot writes to the job summary at most: GitHub
// drops a step summary over 1 MiB entirely (docs/research/github-actions.md §4).
const summaryBudget = 1_000_000

// finish writes the job summary, the plan JSON file and the outputs; it
// runs whatever happened, so a failed run still says why.
func (r *run) finish(runErr error) error {
	var errs []string
	planPath := ""
	if len(r.results) > 0 {
		b, err := r.planJSON()
		if err == nil {
			full := filepath.Join(r.o.Workdir, filepath.FromSlash(PlanJSONPath))
			if err = os.MkdirAll(filepath.Dir(full), 0o755); err == nil {
				err = os.WriteFile(full, []byte(r.secrets.Redact(string(b))), 0o644)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("write %s: %v", PlanJSONPath, err))
		} else {
			planPath = PlanJSONPath
		}
	}
	r.writeSummary(runErr, planPath)

	changes := false
	var urls []string
	for _, res := range r.results {
		if res.Plan != nil && res.Plan.HasChanges() {
			changes = true
		}
		if res.EnvURL != "" {
			urls = append(urls, res.EnvURL)
		}
	}
	for _, kv := range [][2]string{
		{"changes", fmt.Sprint(changes)},
		{"plan-json", planPath},
		{"result", r.result(runErr)},
		{"deployment-url", strings.Join(urls, "\n")},
		{"environments", r.environmentsJSON()},
	} {
		if err := r.setOutput(kv[0], kv[1]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("write the Action's outputs: %s", strings.Join(errs, "; "))
	}
	return nil
}

// environmentsJSON is the environments output: a JSON array of names.
func (r *run) environmentsJSON() string {
	b, _ := json.Marshal(append([]string{}, r.selected...))
	return string(b)
}

// result is the `result` output: one word for the whole run.
func (r *run) result(runErr error) string {
	if len(r.results) == 0 {
		switch {
		case runErr != nil:
			if exit.CodeOf(runErr) == exit.BadInput {
				return "refused"
			}
			return "failed"
		case r.outcome != "":
			return r.outcome
		default:
			return "no_changes"
		}
	}
	worst := ""
	rank := map[string]int{"no_changes": 0, "planned": 1, "drift": 2, "applied": 2, "destroyed": 2, "refused": 3, "rolled_back": 4, "failed": 5}
	for _, res := range r.results {
		var s string
		switch {
		case res.Err != nil:
			s = "failed"
		case res.Report != nil:
			switch res.Report.Status {
			case plan.StatusSucceeded:
				s = "applied"
				if res.Report.Operation == plan.OpDestroy {
					s = "destroyed"
				}
			case plan.StatusNoChanges:
				s = "no_changes"
			default:
				s = string(res.Report.Status)
			}
		case res.Plan != nil && res.Plan.HasChanges():
			s = "planned"
			if r.in.operation == OpDrift || r.ghctx.EventName == "schedule" {
				s = "drift"
			}
		default:
			s = "no_changes"
		}
		if worst == "" || rank[s] > rank[worst] {
			worst = s
		}
	}
	return worst
}

// setOutput appends name to GITHUB_OUTPUT in the multi-line form
// name<<DELIM / value / DELIM with a random delimiter that is checked not to
// occur in the value, as actions/toolkit does (go-githubactions' SetOutput
// uses a fixed, unchecked one: docs/research/github-actions.md §1.6).
func (r *run) setOutput(name, value string) error {
	if r.o.Getenv("GITHUB_OUTPUT") == "" {
		r.say(event.Info, "", "output %s=%s", name, value)
		return nil
	}
	value = r.secrets.Redact(value)
	var delim string
	for {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		delim = "ghadelimiter_" + hex.EncodeToString(b)
		if !strings.Contains(value, delim) {
			break
		}
	}
	return r.fileCommand("output", fmt.Sprintf("%s<<%s%s%s%s%s", name, delim, githubactions.EOF, value, githubactions.EOF, delim))
}

// fileCommand appends to a runner file, redacted; go-githubactions panics
// when the variable is unset, which setOutput and writeSummary check first.
func (r *run) fileCommand(name, msg string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r.gha.IssueFileCommand(&githubactions.Command{Name: name, Message: r.secrets.Redact(msg)})
	return nil
}

// writeSummary appends the job summary: what ran, the notes, each
// environment's full plan or outcome (render.Summary, the budget shared
// between environments), and the error.
func (r *run) writeSummary(runErr error, planPath string) {
	if r.o.Getenv("GITHUB_STEP_SUMMARY") == "" {
		return
	}
	var b strings.Builder
	eventName := ""
	if r.ghctx != nil {
		eventName = r.ghctx.EventName
	}
	fmt.Fprintf(&b, "## deploybot %s (%s)\n\n", firstNonEmpty(r.op, "run"), render.Escape(firstNonEmpty(eventName, "no event")))
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(r.notes) > 0 {
		b.WriteString("\n")
	}
	if runErr != nil {
		what := "Failed"
		if exit.CodeOf(runErr) == exit.BadInput {
			what = "Refused before any AWS call"
		}
		fmt.Fprintf(&b, "> [!CAUTION]\n> **%s:** %s\n\n", what, quoteLines(runErr.Error()))
	}
	per := summaryBudget / max(len(r.results), 1)
	head := ""
	if r.ghctx != nil {
		head = r.ghctx.SHA
	}
	for _, res := range r.results {
		switch {
		case res.Plan == nil && res.Report == nil:
			fmt.Fprintf(&b, "### %s\n\n❌ %s\n\n", render.Escape(res.File.Name), render.Escape(fmt.Sprint(res.Err)))
		default:
			b.WriteString(render.Summary(res.Plan, res.Report, render.SummaryOptions{HeadSHA: head, RunURL: r.runURL, MaxLen: per - 512}))
			b.WriteString("\n")
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(&b, "> [!WARNING]\n> %s: %s\n\n", render.Escape(res.File.Name), render.Escape(w))
		}
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "> [!NOTE]\n> %s: %s\n\n", render.Escape(res.File.Name), render.Escape(n))
		}
		if res.CommentURL != "" {
			fmt.Fprintf(&b, "%s\n\n", render.Link("The pull request comment", res.CommentURL))
		}
	}
	if planPath != "" {
		fmt.Fprintf(&b, "The plans as JSON: `%s` (output `plan-json`).\n", planPath)
	}
	if err := r.fileCommand("step-summary", b.String()); err != nil {
		r.say(event.Warning, "", "could not write the job summary: %v", err)
	}
}

// quoteLines escapes a multi-line untrusted text (an error naming files,
// quoting AWS) for a block quote: each line escaped on its own, the quote
// continued on every line, so no line can become a heading or end the quote.
func quoteLines(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = render.Escape(l)
	}
	return strings.Join(lines, "\n> ")
}
