package render

import (
	"strings"
)

// nextSection ends a pull request's plan comment with what merging it does,
// in the words of what deploybot will actually do (docs/design.md, "The
// three flows"; internal/deploy checkReviewed).
func (d *mdDoc) nextSection() string {
	n := d.o.next
	p := d.p
	env := Code(p.Environment)
	var items []string
	ghEnv := n.GitHubEnvironment
	waits := "waits for the GitHub environment " + Code(ghEnv) + " (its required reviewers, if it has any), then "
	if ghEnv == "" {
		waits = ""
	}
	sum := p.Summary()
	switch {
	case sum.Conflicts > 0:
		items = append(items, "Merging now applies nothing: the apply stops at the same "+plural(sum.Conflicts, "conflict")+
			" before any change. Resolve it first.")
	case !p.HasChanges():
		items = append(items, "Merging changes nothing in AWS for "+env+".")
	default:
		items = append(items, "Merging applies this plan to "+env+": the apply job "+waits+"plans again and applies it.")
		if len(p.Destructive()) > 0 {
			items = append(items, "It applies only what is shown here: the destroys and replacements above are allowed because this comment shows them; any other one is refused and nothing is changed.")
		} else {
			items = append(items, "It applies only what is shown here: if AWS changed meanwhile so that the plan would destroy or replace anything, the apply refuses and changes nothing.")
		}
		items = append(items, "This comment is then edited with the outcome: the ECS deployment and the Prefect health gate.")
	}
	replan := "To plan again, push a commit"
	if n.Branch != "" {
		replan += " to " + Code(n.Branch)
	}
	if u := SafeURL(d.o.runURL); u != "" {
		replan += " or re-run [this workflow run](" + u + ")"
	}
	items = append(items, replan+".")
	var b strings.Builder
	b.WriteString("**What happens next**\n\n")
	for _, it := range items {
		b.WriteString("- " + it + "\n")
	}
	b.WriteString("\n")
	return b.String()
}
