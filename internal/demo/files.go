package demo

import (
	"io"
	"os"
	"sync"

	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/render"
)

// planFile is the Action's plan-json file (.deploybot/plan.json): for each
// environment, the plan and, after an apply or destroy, the report.
type planFile struct {
	FormatVersion string `json:"format_version"`
	Event         string `json:"event"`
	RunURL        string `json:"run_url"`
	Environments  []struct {
		Environment string            `json:"environment"`
		File        string            `json:"file"`
		Plan        *render.PlanDoc   `json:"plan"`
		Report      *render.ReportDoc `json:"report"`
		Error       string            `json:"error"`
		CommentURL  string            `json:"comment_url"`
	} `json:"environments"`
}

// env returns the document of one environment.
func (p *planFile) env(name string) (plan *render.PlanDoc, report *render.ReportDoc, errText string) {
	if p == nil {
		return nil, nil, ""
	}
	for _, e := range p.Environments {
		if e.Environment == name {
			return e.Plan, e.Report, e.Error
		}
	}
	return nil, nil, ""
}

// readOutputs reads the step's GITHUB_OUTPUT (githubsim.ReadOutputs); a
// step that wrote no outputs has none.
func readOutputs(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return githubsim.ReadOutputs(f)
}

// lockedWriter serialises writes (the Action logs from concurrent plans).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
