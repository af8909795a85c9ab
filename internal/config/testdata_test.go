package config

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// baseFile is a valid environment whose line numbers the tables rely on.
// Cases replace or append numbered lines (see edit).
const baseFile = `name: demo
aws:
  account_id: "123456789012"
  region: us-east-1
  plan_role_arn: arn:aws:iam::123456789012:role/deploybot-plan
  apply_role_arn: arn:aws:iam::123456789012:role/deploybot-apply
prefect:
  api_url: https://api.prefect.cloud/api/accounts/9b2f6c1e-4d3a-4f8b-a1c2-5e7d9f0b3a64/workspaces/3c8e1a7d-52f4-4b96-8d0e-f61a2b9c7e15
  work_pool: demo-pool
worker:
  image: prefecthq/prefect-aws:latest
  cpu: 512
  memory: 1024
health_gate:
  timeout: 5m
tags:
  team: data
network:
  mode: managed
`

// edit returns base with the given 1-based lines replaced; a line number past
// the end appends (blank lines fill any gap), so numbering stays predictable.
func edit(base string, lines map[int]string) string {
	ls := strings.Split(strings.TrimSuffix(base, "\n"), "\n")
	nums := make([]int, 0, len(lines))
	for n := range lines {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		for len(ls) < n {
			ls = append(ls, "")
		}
		ls[n-1] = lines[n]
	}
	return strings.Join(ls, "\n") + "\n"
}

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
