package action_test

// Static checks of what ships with the Action, since this machine has no
// Docker and no runner: action.yml against the code's inputs and outputs,
// the Dockerfile's stages and build flags, and the workflows' permissions,
// concurrency and action inputs.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/deploybot/deploybot/internal/action"
)

const repoRoot = "../.."

type actionYML struct {
	Name        string
	Description string
	Inputs      map[string]struct {
		Description string
		Default     *string
		Required    bool
	}
	Outputs map[string]struct{ Description string }
	Runs    struct {
		Using      string
		Image      string
		Entrypoint string
		Args       []string
	}
}

func readActionYML(t *testing.T) actionYML {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a actionYML
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestActionYML(t *testing.T) {
	t.Parallel()
	a := readActionYML(t)
	if a.Name == "" || a.Description == "" {
		t.Error("name and description are required")
	}
	// The source tree builds the Dockerfile; a release commit (made by
	// release.yml, which cmd/deploybot/release_test.go checks) names the
	// published image by digest.
	if a.Runs.Using != "docker" || a.Runs.Image != "Dockerfile" && !regexp.MustCompile(`^docker://ghcr\.io/deploybot/deploybot@sha256:[0-9a-f]{64}$`).MatchString(a.Runs.Image) {
		t.Errorf("runs = %+v, want the Dockerfile, or on a release tag the image by digest", a.Runs)
	}
	if a.Runs.Entrypoint != "" || len(a.Runs.Args) != 0 {
		t.Error("the image's ENTRYPOINT (deploybot action) must not be overridden")
	}
	want := append([]string(nil), action.InputNames...)
	sort.Strings(want)
	if diff := cmp.Diff(want, sortedKeys(a.Inputs)); diff != "" {
		t.Errorf("inputs (-code +action.yml):\n%s", diff)
	}
	wantOut := append([]string(nil), action.OutputNames...)
	sort.Strings(wantOut)
	if diff := cmp.Diff(wantOut, sortedKeys(a.Outputs)); diff != "" {
		t.Errorf("outputs (-code +action.yml):\n%s", diff)
	}
	for name, in := range a.Inputs {
		if in.Description == "" || in.Default == nil {
			t.Errorf("input %s needs a description and a default", name)
		}
		if in.Required {
			t.Errorf("input %s: required is not enforced by the runner; validate in Go instead", name)
		}
	}
	if d := a.Inputs["github-token"].Default; d == nil || *d != "${{ github.token }}" {
		t.Error("github-token must default to ${{ github.token }} (the runner does not set GITHUB_TOKEN)")
	}
	for _, o := range a.Outputs {
		if o.Description == "" {
			t.Error("every output needs a description")
		}
	}
	// Every input the code reads is declared.
	src, err := os.ReadFile("run.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`r\.input\("([a-z-]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		if !slices.Contains(action.InputNames, m[1]) {
			t.Errorf("the code reads input %q, which InputNames lacks", m[1])
		}
	}
}

// dockerfile is the Dockerfile's instructions, continuation lines joined.
type instruction struct{ Cmd, Args string }

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if cur.Len() == 0 && (trim == "" || strings.HasPrefix(trim, "#")) {
			continue
		}
		if strings.HasSuffix(trim, "\\") {
			cur.WriteString(strings.TrimSuffix(trim, "\\") + " ")
			continue
		}
		cur.WriteString(trim)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t)
	type stage struct {
		from, name string
		ins        []instruction
	}
	var stages []*stage
	for _, in := range ins {
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := &stage{}
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				case st.from == "":
					st.from = f[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	if len(stages) != 2 {
		t.Fatalf("stages = %d, want 2 (build, final)", len(stages))
	}
	build, final := stages[0], stages[1]
	if !strings.HasPrefix(build.from, "golang:") || build.name == "" {
		t.Errorf("build stage FROM %s AS %s, want golang:… AS <name>", build.from, build.name)
	}
	var buildRun string
	for _, in := range build.ins {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			buildRun = in.Args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-tags release", "-ldflags", "-s -w", "./cmd/deploybot"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("the go build lacks %q: %s", want, buildRun)
		}
	}
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want scratch or distroless static", final.from)
	}
	if strings.Contains(final.from, "nonroot") {
		t.Error("the final image must run as root: the runner's file commands need it")
	}
	var entry string
	copied := false
	for _, in := range final.ins {
		switch in.Cmd {
		case "USER":
			t.Errorf("USER %s: container actions must run as root (docs/research/github-actions.md §1.1)", in.Args)
		case "WORKDIR":
			t.Error("WORKDIR: the runner sets the working directory to /github/workspace")
		case "ENTRYPOINT":
			entry = in.Args
		case "COPY":
			copied = copied || strings.Contains(in.Args, "--from="+build.name)
		}
	}
	if entry != `["/deploybot", "action"]` {
		t.Errorf("ENTRYPOINT %s, want the exec form [\"/deploybot\", \"action\"]", entry)
	}
	if !copied {
		t.Error("the final stage does not copy the binary from the build stage")
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil || !strings.Contains(string(ignore), ".git") && !strings.HasPrefix(strings.TrimSpace(stripComments(string(ignore))), "*") {
		t.Errorf(".dockerignore must keep the context small: %v", err)
	}
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type workflow struct {
	On          map[string]any `yaml:"on"`
	Permissions any
	Jobs        map[string]struct {
		If          string
		Permissions map[string]string
		Environment any
		Concurrency *struct {
			Group            string `yaml:"group"`
			CancelInProgress bool   `yaml:"cancel-in-progress"`
		}
		Steps []struct {
			Uses string
			With map[string]string
			Run  string
		}
	}
}

func readWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

func TestWorkflows(t *testing.T) {
	t.Parallel()
	a := readActionYML(t)
	files, _ := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.yml"))
	if len(files) < 2 {
		t.Fatalf("workflows = %v", files)
	}
	for _, f := range files {
		w := readWorkflow(t, filepath.Base(f))
		if m, ok := w.Permissions.(map[string]any); !ok || len(m) != 0 {
			t.Errorf("%s: the top-level permissions must be {} (default-deny), got %v", filepath.Base(f), w.Permissions)
		}
		for name, j := range w.Jobs {
			if len(j.Permissions) == 0 {
				t.Errorf("%s: job %s lists no permissions", filepath.Base(f), name)
			}
			for _, s := range j.Steps {
				if !strings.HasPrefix(s.Uses, "deploybot/deploybot@") {
					continue
				}
				for k := range s.With {
					if _, ok := a.Inputs[k]; !ok {
						t.Errorf("%s: job %s passes %q, which action.yml does not declare", filepath.Base(f), name, k)
					}
				}
			}
		}
	}

	w := readWorkflow(t, "deploybot.yml")
	for _, ev := range []string{"pull_request", "push", "workflow_dispatch", "schedule"} {
		if _, ok := w.On[ev]; !ok {
			t.Errorf("deploybot.yml does not run on %s", ev)
		}
	}
	if pr, _ := w.On["pull_request"].(map[string]any); pr == nil || !slices.ContainsFunc(toStrings(pr["paths"]), func(p string) bool { return strings.HasPrefix(p, "environments/") }) {
		t.Error("pull_request needs a paths filter on environments/**")
	}
	inputs, _ := w.On["workflow_dispatch"].(map[string]any)["inputs"].(map[string]any)
	for _, in := range []string{"environment", "confirm", "operation"} {
		if _, ok := inputs[in]; !ok {
			t.Errorf("workflow_dispatch lacks the %s input", in)
		}
	}
	// Least privilege, job by job.
	want := map[string]map[string]string{
		"plan":        {"contents": "read", "pull-requests": "write", "id-token": "write"},
		"affected":    {"contents": "read"},
		"apply":       {"contents": "read", "id-token": "write", "deployments": "write", "pull-requests": "write"},
		"destroy":     {"contents": "read", "id-token": "write", "deployments": "write"},
		"manual-plan": {"contents": "read", "id-token": "write"},
		"drift":       {"contents": "read", "id-token": "write", "issues": "write"},
	}
	got := map[string]map[string]string{}
	for name, j := range w.Jobs {
		got[name] = j.Permissions
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("job permissions (-want +got):\n%s", diff)
	}
	for _, name := range []string{"apply", "destroy"} {
		j := w.Jobs[name]
		if j.Concurrency == nil || j.Concurrency.CancelInProgress || !strings.Contains(j.Concurrency.Group, "environment") {
			t.Errorf("%s: concurrency %+v, want a per-environment group with cancel-in-progress: false", name, j.Concurrency)
		}
		if j.Environment == nil {
			t.Errorf("%s: no environment: protection", name)
		}
	}
	if g1, g2 := w.Jobs["apply"].Concurrency.Group, w.Jobs["destroy"].Concurrency.Group; strings.Split(g1, "$")[0] != strings.Split(g2, "$")[0] {
		t.Errorf("apply (%s) and destroy (%s) must share the per-environment group", g1, g2)
	}

	r := readWorkflow(t, "release.yml")
	if d, _ := r.On["workflow_dispatch"].(map[string]any); d == nil || d["inputs"].(map[string]any)["version"] == nil {
		t.Error("release.yml must run on workflow_dispatch with a version input")
	}
	img, ok := r.Jobs["image"]
	if !ok || img.Permissions["packages"] != "write" {
		t.Errorf("release.yml: the image job needs packages: write, got %v", img.Permissions)
	}
	pushes := false
	for _, s := range img.Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") && s.With["push"] == "true" &&
			strings.Contains(s.With["platforms"], "linux/amd64") && strings.Contains(s.With["platforms"], "linux/arm64") && s.With["file"] == "" {
			pushes = true
		}
	}
	if !pushes {
		t.Error("release.yml does not build the Dockerfile and push the image for amd64 and arm64")
	}
	if rel, ok := r.Jobs["release"]; !ok || rel.Permissions["contents"] != "write" {
		t.Errorf("release.yml: the release job (tags) needs contents: write, got %v", rel.Permissions)
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
