package main

// The release workflow's steps that make the release commit and move the
// tags, run with bash against scratch repositories: a clone of a source
// repository with its earlier releases, pushing to a bare "origin", with a
// stand-in for the gh CLI. What the workflow does on GitHub beyond that
// (building and pushing the image) is not run here.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

type workflowStep struct {
	ID   string            `yaml:"id"`
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	Env  map[string]string `yaml:"env"`
}

func releaseSteps(t *testing.T) map[string]workflowStep {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Jobs map[string]struct {
			Steps []workflowStep `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	steps := map[string]workflowStep{}
	for _, s := range w.Jobs["release"].Steps {
		if s.Run != "" {
			steps[s.Name] = s
		}
	}
	for _, name := range []string{"pin action.yml to the image digest", "tag the release commit", "push the tags and publish the release"} {
		if _, ok := steps[name]; !ok {
			t.Fatalf("release.yml's release job has no step %q", name)
		}
	}
	return steps
}

// scratch is a source repository's clone, as actions/checkout leaves it.
type scratch struct {
	t                 *testing.T
	dir, origin, home string
	ghLog             string
}

func (s *scratch) git(args ...string) string {
	s.t.Helper()
	return s.gitIn(s.dir, args...)
}

func (s *scratch) gitIn(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// env isolates git from the machine's configuration and puts the gh
// stand-in first on PATH.
func (s *scratch) env() []string {
	return append(os.Environ(),
		"HOME="+s.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(s.home, "gitconfig"),
		"GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com",
		"PATH="+filepath.Join(s.home, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// newScratch makes origin (bare) with one commit per earlier release,
// tagged as release.yml tags them (earlier maps a release to its aliases),
// then a source commit on main, and clones it.
func newScratch(t *testing.T, earlier map[string][]string, order []string) *scratch {
	t.Helper()
	root := t.TempDir()
	s := &scratch{t: t, home: filepath.Join(root, "home"), origin: filepath.Join(root, "origin.git"), dir: filepath.Join(root, "checkout")}
	if err := os.MkdirAll(filepath.Join(s.home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.ghLog = filepath.Join(s.home, "gh.log")
	gh := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + s.ghLog + "\n"
	if err := os.WriteFile(filepath.Join(s.home, "bin", "gh"), []byte(gh), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "src")
	s.gitIn(root, "init", "-q", "--bare", "-b", "main", s.origin)
	s.gitIn(root, "init", "-q", "-b", "main", src)
	action, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range append(append([]string(nil), order...), "") {
		body := string(action) + "# revision " + string(rune('a'+i)) + "\n"
		if err := os.WriteFile(filepath.Join(src, "action.yml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s.gitIn(src, "add", "action.yml")
		s.gitIn(src, "commit", "-q", "-m", "revision "+string(rune('a'+i)))
		if v != "" {
			s.gitIn(src, "tag", "-a", "-m", v, v)
			for _, alias := range earlier[v] {
				s.gitIn(src, "tag", "-f", "-a", "-m", v, alias)
			}
		}
	}
	s.gitIn(src, "push", "-q", s.origin, "main", "--tags")
	s.gitIn(root, "clone", "-q", s.origin, s.dir)
	return s
}

// run runs a step's script as the runner does (bash -eo pipefail), with
// the step's env resolved from the expressions the test knows.
func (s *scratch) run(step workflowStep, known map[string]string, output string) (string, error) {
	s.t.Helper()
	env := s.env()
	for k, expr := range step.Env {
		v, ok := known[expr]
		if !ok {
			s.t.Fatalf("step %q: env %s = %s, an expression the test does not know", step.Name, k, expr)
		}
		env = append(env, k+"="+v)
	}
	env = append(env, "GITHUB_OUTPUT="+output)
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.Run)
	cmd.Dir = s.dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// remoteTags maps each tag of origin to its commit.
func (s *scratch) remoteTags() map[string]string {
	tags := map[string]string{}
	for _, line := range strings.Split(s.gitIn(s.origin, "for-each-ref", "--format=%(refname:short) %(objectname) %(*objectname)", "refs/tags"), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			tags[f[0]] = f[2] // annotated: the commit it points at
		}
	}
	return tags
}

func TestReleaseWorkflowPinsTheImageAndMovesTheTags(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run release.yml's steps: ", err)
	}
	steps := releaseSteps(t)
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		earlier map[string][]string
		order   []string
		version string
		// Which tags point at the new release commit afterwards, and
		// which keep pointing at an earlier release.
		wantMoved []string
		wantKept  map[string]string
	}{
		{"first release", nil, nil, "v1.0.0", []string{"v1", "v1.0", "v1.0.0"}, nil},
		{"a minor release moves v1, starts v1.2", map[string][]string{"v1.0.0": {"v1", "v1.0"}, "v1.1.0": {"v1", "v1.1"}}, []string{"v1.0.0", "v1.1.0"},
			"v1.2.0", []string{"v1", "v1.2", "v1.2.0"}, map[string]string{"v1.1": "v1.1.0", "v1.0": "v1.0.0"}},
		{"a patch of an older line leaves v1 at the newest", map[string][]string{"v1.2.4": {"v1", "v1.2"}, "v1.3.0": {"v1", "v1.3"}}, []string{"v1.2.4", "v1.3.0"},
			"v1.2.5", []string{"v1.2", "v1.2.5"}, map[string]string{"v1": "v1.3.0", "v1.3": "v1.3.0"}},
		{"a new major leaves v1", map[string][]string{"v1.4.0": {"v1", "v1.4"}}, []string{"v1.4.0"},
			"v2.0.0", []string{"v2", "v2.0", "v2.0.0"}, map[string]string{"v1": "v1.4.0", "v1.4": "v1.4.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScratch(t, tc.earlier, tc.order)
			source := s.git("rev-parse", "HEAD")
			before, err := os.ReadFile(filepath.Join(s.dir, "action.yml"))
			if err != nil {
				t.Fatal(err)
			}
			known := map[string]string{
				"${{ inputs.version }}":             tc.version,
				"${{ needs.image.outputs.digest }}": digest,
				"${{ github.token }}":               "test-token",
			}
			output := filepath.Join(t.TempDir(), "output")
			for _, name := range []string{"pin action.yml to the image digest", "tag the release commit"} {
				if out, err := s.run(steps[name], known, output); err != nil {
					t.Fatalf("step %q: %v\n%s", name, err, out)
				}
			}
			b, err := os.ReadFile(output)
			if err != nil {
				t.Fatal(err)
			}
			tags, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "tags=")
			if !ok {
				t.Fatalf("the tag step's output: %q", b)
			}
			known["${{ steps.tag.outputs.tags }}"] = tags
			if out, err := s.run(steps["push the tags and publish the release"], known, output); err != nil {
				t.Fatalf("push: %v\n%s", err, out)
			}

			// The release commit: on top of the source, changing only
			// runs.image to the digest.
			release := s.git("rev-parse", tc.version+"^{commit}")
			if parent := s.git("rev-parse", release+"^"); parent != source {
				t.Errorf("the release commit's parent is %s, want the released source %s", parent, source)
			}
			after := s.git("show", release+":action.yml")
			wantAfter := regexp.MustCompile(`(?m)^  image: .*$`).ReplaceAllString(strings.TrimSpace(string(before)), "  image: docker://ghcr.io/deploybot/deploybot@"+digest)
			if diff := cmp.Diff(wantAfter, after); diff != "" {
				t.Errorf("action.yml at %s (-want +got):\n%s", tc.version, diff)
			}
			if branch := s.git("branch", "-r", "--contains", release); branch != "" {
				t.Errorf("the release commit is on %s; it belongs to no branch", branch)
			}

			remote := s.remoteTags()
			for _, tag := range tc.wantMoved {
				if remote[tag] != release {
					t.Errorf("origin's %s is at %.12s, want the release commit %.12s", tag, remote[tag], release)
				}
			}
			for tag, at := range tc.wantKept {
				if remote[tag] != remote[at] || remote[tag] == "" {
					t.Errorf("origin's %s is at %.12s, want it kept at %s (%.12s)", tag, remote[tag], at, remote[at])
				}
			}
			gh, _ := os.ReadFile(s.ghLog)
			if want := "release create " + tc.version + " --verify-tag --title " + tc.version + " --generate-notes\n"; string(gh) != want {
				t.Errorf("gh was run as %q, want %q", gh, want)
			}
		})
	}
}

// TestReleaseWorkflowRefusesAnExistingVersion: a release tag is made once.
func TestReleaseWorkflowRefusesAnExistingVersion(t *testing.T) {
	steps := releaseSteps(t)
	s := newScratch(t, map[string][]string{"v1.0.0": {"v1", "v1.0"}}, []string{"v1.0.0"})
	known := map[string]string{
		"${{ inputs.version }}":             "v1.0.0",
		"${{ needs.image.outputs.digest }}": "sha256:" + strings.Repeat("ab", 32),
	}
	output := filepath.Join(t.TempDir(), "output")
	if out, err := s.run(steps["pin action.yml to the image digest"], known, output); err != nil {
		t.Fatalf("pin: %v\n%s", err, out)
	}
	if out, err := s.run(steps["tag the release commit"], known, output); err == nil {
		t.Fatalf("the tag step re-made v1.0.0:\n%s", out)
	}
	for _, bad := range []string{"", "sha256:short", "latest"} {
		known["${{ needs.image.outputs.digest }}"] = bad
		if out, err := s.run(steps["pin action.yml to the image digest"], known, output); err == nil {
			t.Errorf("pin accepted the digest %q:\n%s", bad, out)
		}
	}
}
