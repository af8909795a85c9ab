package render

import (
	"fmt"
	"strings"

	"github.com/deploybot/deploybot/internal/plan"
)

// The health gate's smoke flow run in the views (issue 10 item 1): its
// name and link to the Prefect UI, how it ended and in how long, the worker
// that ran it (of the new revision or not) and the ECS task it ran as; when
// it did not complete, Prefect's state message, why its ECS task stopped
// and the first lines of its logs.

// flowRunStep is the run's step of the story.
func flowRunStep(fr *plan.GateFlowRun) storyStep {
	mark := "✅"
	if fr.State != "COMPLETED" || !fr.NewRevision {
		mark = "❌"
	}
	format, args := "Smoke flow run {} ended {}", []any{fr.Name, plain(flowRunState(fr))}
	if fr.State == "" {
		format, args = "Smoke flow run {} never reported a state", []any{fr.Name}
	}
	format += " after " + formatDuration(fr.Duration)
	if fr.Worker != "" {
		format += " on worker {}"
		args = append(args, fr.Worker)
		if !fr.NewRevision {
			format += " (not of the new revision)"
		}
	}
	if fr.Task != "" {
		format += ", as ECS task {}"
		args = append(args, taskID(fr.Task))
	}
	if fr.Cancelled {
		format += "; deploybot cancelled it"
	}
	return step(mark, format+".", args...)
}

func flowRunState(fr *plan.GateFlowRun) string {
	s := fr.State
	if fr.StateName != "" && !strings.EqualFold(fr.StateName, fr.State) {
		s += " (" + fr.StateName + ")"
	}
	return s
}

// flowRunFailed says whether the run's details are what explains a failure.
func flowRunFailed(fr *plan.GateFlowRun) bool {
	return fr != nil && (fr.State != "COMPLETED" || !fr.NewRevision)
}

// flowRunFacts are the run's details, one per line, each with its label;
// link renders the run's name with its URL.
func flowRunFacts(fr *plan.GateFlowRun, text func(string) string, code func(string) string, link func(name, url string) string) []string {
	facts := []string{"flow run: " + link(fr.Name, fr.URL) + " (deployment " + code(fr.Deployment) + ")"}
	if fr.State != "" {
		facts = append(facts, "state: "+text(flowRunState(fr)))
	}
	if m := strings.TrimSpace(fr.Message); m != "" {
		facts = append(facts, "Prefect's state message: "+text(m))
	}
	if fr.Worker != "" {
		rev := "of the new revision"
		if !fr.NewRevision {
			rev = "not of the new revision"
		}
		facts = append(facts, "worker: "+code(fr.Worker)+" ("+rev+")")
	}
	if fr.Task != "" {
		facts = append(facts, "ECS task: "+code(fr.Task))
	}
	if fr.Stopped != nil {
		facts = append(facts, "its ECS task stopped: "+text(stoppedTaskDetail(*fr.Stopped)))
	}
	facts = append(facts, "duration: "+formatDuration(fr.Duration))
	return facts
}

// flowRunMarkdown is the run's details block of a report.
func flowRunMarkdown(fr *plan.GateFlowRun) string {
	var b strings.Builder
	open := "<details>"
	if flowRunFailed(fr) {
		open = "<details open>"
	}
	fmt.Fprintf(&b, "%s<summary>%s</summary>\n\n", open, EscapeHTML("Smoke flow run "+fr.Name+": "+orDash(flowRunState(fr))))
	for _, f := range flowRunFacts(fr, Escape, Code, Link) {
		b.WriteString("- " + f + "\n")
	}
	if len(fr.Logs) > 0 && flowRunFailed(fr) {
		b.WriteString("\nIts first log lines:\n\n" + CodeBlock(strings.Join(fr.Logs, "\n"), "text") + "\n")
	}
	b.WriteString("\n</details>\n\n")
	return b.String()
}

// flowRunText is the run's details in the terminal report.
func flowRunText(t *textWriter, fr *plan.GateFlowRun) {
	t.line("smoke flow run:")
	for _, f := range flowRunFacts(fr, OneLine, OneLine, func(name, url string) string {
		if url == "" {
			return OneLine(name)
		}
		return OneLine(name) + " " + OneLine(url)
	}) {
		t.line("  %s", f)
	}
	if len(fr.Logs) > 0 && flowRunFailed(fr) {
		t.line("  first log lines:")
		for _, l := range fr.Logs {
			t.line("    %s", OneLine(l))
		}
	}
}
