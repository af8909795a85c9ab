package exit_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/exit"
)

type gateErr struct{}

func (gateErr) Error() string       { return "health gate failed" }
func (gateErr) ExitCode() exit.Code { return exit.GateFailed }

type problems struct{ locs []exit.Location }

func (p problems) Error() string {
	s := ""
	for i, l := range p.locs {
		if i > 0 {
			s += "\n"
		}
		s += fmt.Sprintf("%s:%d: %s", l.File, l.Line, l.Message)
	}
	return s
}
func (p problems) ExitCode() exit.Code        { return exit.BadInput }
func (p problems) Locations() []exit.Location { return p.locs }

func TestCodeOf(t *testing.T) {
	plain := errors.New("AWS said no")
	bad := exit.Inputf("--confirm %q does not match", "x")
	cases := []struct {
		name string
		err  error
		want exit.Code
	}{
		{"nil", nil, exit.OK},
		{"plain", plain, exit.Failure},
		{"bad input", bad, exit.BadInput},
		{"wrapped bad input", fmt.Errorf("staging: %w", bad), exit.BadInput},
		{"gate", fmt.Errorf("staging: %w", gateErr{}), exit.GateFailed},
		{"silent", exit.Silent(exit.ChangesPending), exit.ChangesPending},
		{"all bad input", errors.Join(bad, fmt.Errorf("qa: %w", bad)), exit.BadInput},
		{"bad input and a failure", errors.Join(bad, plain), exit.Failure},
		{"a gate among failures", errors.Join(plain, bad, gateErr{}), exit.GateFailed},
		{"a wrapped join", fmt.Errorf("run: %w", errors.Join(bad, bad)), exit.BadInput},
		{"outer code wins", exit.Input(gateErr{}), exit.BadInput},
		{"nil input", exit.Input(nil), exit.OK},
	}
	for _, c := range cases {
		if got := exit.CodeOf(c.err); got != c.want {
			t.Errorf("%s: CodeOf(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}

func TestPrint(t *testing.T) {
	locs := problems{locs: []exit.Location{
		{File: "environments/a,b.yaml", Line: 12, Message: "worker.cpu: must be 256, 512, ..."},
		{File: "environments/x\n::warning::y.yaml", Line: 3, Message: "name: 50% done\n::error::injected"},
	}}
	cases := []struct {
		name  string
		err   error
		style exit.Style
		want  string
	}{
		{"terminal error", errors.New("AWS said no"), exit.Terminal, "error: AWS said no\n"},
		{"terminal problems", locs, exit.Terminal, locs.Error() + "\n"},
		{"terminal silent", exit.Silent(exit.Failure), exit.Terminal, ""},
		{"workflow error", errors.New("50% of\nthe\r::error::lines"), exit.Workflow, "::error title=deploybot::50%25 of%0Athe%0D::error::lines\n"},
		{"workflow problems", locs, exit.Workflow,
			"::error file=environments/a%2Cb.yaml,line=12,title=deploybot::worker.cpu: must be 256, 512, ...\n" +
				"::error file=environments/x%0A%3A%3Awarning%3A%3Ay.yaml,line=3,title=deploybot::name: 50%25 done%0A::error::injected\n"},
		{"workflow join", errors.Join(errors.New("staging: boom"), fmt.Errorf("qa: %w", locs)), exit.Workflow,
			"::error title=deploybot::staging: boom\n" +
				"::error file=environments/a%2Cb.yaml,line=12,title=deploybot::worker.cpu: must be 256, 512, ...\n" +
				"::error file=environments/x%0A%3A%3Awarning%3A%3Ay.yaml,line=3,title=deploybot::name: 50%25 done%0A::error::injected\n"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		exit.Print(&b, c.err, c.style)
		if d := cmp.Diff(c.want, b.String()); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
		// Every printed line is one command or one message: no text of the
		// error starts a line of its own.
		if c.style == exit.Workflow {
			for _, line := range bytes.Split(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte("\n")) {
				if !bytes.HasPrefix(line, []byte("::error ")) || bytes.ContainsAny(line, "\r") {
					t.Errorf("%s: line %q is not one error command", c.name, line)
				}
			}
		}
	}
}
