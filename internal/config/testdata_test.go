package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeFile writes content to name in dir and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// want is an expected problem: exact line and field, and a fragment of the
// message.
type want struct {
	Line     int
	Field    string
	Fragment string
}

// problemsOf asserts err is a *Errors with exit code 2 and returns its
// problems, sorted.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not a *config.Errors", err, err)
	}
	if errs.ExitCode() != 2 {
		t.Errorf("ExitCode() = %d, want 2", errs.ExitCode())
	}
	return errs.Sorted()
}

// matchProblems compares problems with wants: same count, file, line and
// field, and each message containing its fragment.
func matchProblems(t *testing.T, file string, got []Problem, wants []want) {
	t.Helper()
	type row struct {
		File, Field, Message string
		Line                 int
	}
	var g, w []row
	for i, p := range got {
		msg := p.Message
		if i < len(wants) && strings.Contains(msg, wants[i].Fragment) {
			msg = wants[i].Fragment
		}
		g = append(g, row{p.File, p.Field, msg, p.Line})
	}
	for _, x := range wants {
		w = append(w, row{file, x.Field, x.Fragment, x.Line})
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
}
