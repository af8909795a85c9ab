package action

import (
	"fmt"
	"path"
	"strings"

	"github.com/deploybot/deploybot/internal/github"
)

// selection is the outcome of the affected-environments rule.
type selection struct {
	Envs []*envFile
	// All is why every environment was selected ("" when only changed ones).
	All string
	// Deleted are environment files the change removed. deploybot never
	// destroys an environment because its file went away: that takes an
	// explicit workflow_dispatch destroy.
	Deleted []string
}

// affected applies deploybot's rule for which environments a change touches:
//
//   - an environment file (a *.yaml/*.yml directly in the environments
//     directory, not a dotfile; config.Discover's rule) that was added or
//     modified selects that environment;
//   - everything is selected when a shared setting or the bot's own version
//     changed: any other file directly in the environments directory (the
//     schema.json, shared fragments), action.yml/action.yaml or the
//     Dockerfile at the repository root (a repository that runs its own
//     checkout of deploybot), or the workflow file that is running (its
//     `uses: deploybot/deploybot@vX` line is the bot's version); without
//     GITHUB_WORKFLOW_REF, any .github/workflows/deploybot*.yml;
//   - everything is selected when GitHub could not list every changed file
//     (3000 files in a pull request, 300 in a comparison, a new branch);
//   - a removed (or renamed-away) environment file is reported, not destroyed.
func (r *run) affected(all []*envFile, ch github.Changes) selection {
	var sel selection
	if !ch.Complete {
		sel.All = ch.Reason
	}
	byPath := map[string]*envFile{}
	for _, ef := range all {
		byPath[ef.Path] = ef
	}
	workflow := r.workflowPath()
	picked := map[string]bool{}
	for _, f := range ch.Files {
		p := path.Clean(f.Path)
		if f.PreviousPath != "" && r.isEnvFile(f.PreviousPath) && f.PreviousPath != p && byPath[f.PreviousPath] == nil {
			sel.Deleted = append(sel.Deleted, f.PreviousPath)
		}
		switch {
		case r.isEnvFile(p):
			if f.Status == "removed" || byPath[p] == nil {
				sel.Deleted = append(sel.Deleted, p)
				continue
			}
			picked[p] = true
		case path.Dir(p) == r.in.envDir && sel.All == "":
			sel.All = fmt.Sprintf("%s changed (a shared setting of every environment)", p)
		case (p == "action.yml" || p == "action.yaml" || p == "Dockerfile") && sel.All == "":
			sel.All = fmt.Sprintf("%s changed (deploybot itself)", p)
		case sel.All == "" && (p == workflow || (workflow == "" && isDeploybotWorkflow(p))):
			sel.All = fmt.Sprintf("%s changed (the workflow that runs deploybot, and so its version)", p)
		}
	}
	for _, ef := range all {
		if sel.All != "" || picked[ef.Path] {
			sel.Envs = append(sel.Envs, ef)
		}
	}
	return sel
}

// isEnvFile says whether a repository path is an environment file.
func (r *run) isEnvFile(p string) bool {
	base := path.Base(p)
	ext := path.Ext(p)
	return path.Dir(p) == r.in.envDir && !strings.HasPrefix(base, ".") && (ext == ".yaml" || ext == ".yml")
}

// workflowPath is the running workflow's file, from GITHUB_WORKFLOW_REF
// ("owner/repo/.github/workflows/deploybot.yml@refs/heads/main").
func (r *run) workflowPath() string {
	ref := r.o.Getenv("GITHUB_WORKFLOW_REF")
	if ref == "" {
		return ""
	}
	ref, _, _ = strings.Cut(ref, "@")
	parts := strings.SplitN(ref, "/", 3)
	if len(parts) != 3 {
		return ""
	}
	return parts[2]
}

func isDeploybotWorkflow(p string) bool {
	return path.Dir(p) == ".github/workflows" && strings.HasPrefix(path.Base(p), "deploybot")
}
