package demo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

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

// readOutputs parses GITHUB_OUTPUT as the runner does: name=value lines and
// name<<DELIMITER ... DELIMITER blocks (docs/research/github-actions.md §1.6).
func readOutputs(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("GITHUB_OUTPUT: output %s: delimiter never closes", name)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			out[name] = val
		}
	}
	return out, sc.Err()
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
