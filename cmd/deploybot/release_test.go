package main

// What ships: the release image's binary is built by the Dockerfile's one
// `go build` line, which these tests parse (so that they cannot drift from
// it) and run: it must link the product only, no simulator, no demo and no
// test support, and stay within the size targets (docs/ARCHITECTURE.md
// "What ships").

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const repoRoot = "../.."

// The release targets (issue 12): the binary at most 25 MB, its image
// layer at most 8 MB gzip-compressed. The release workflow checks the
// pushed layers against the same numbers.
const (
	maxBinaryBytes = 25_000_000
	maxLayerBytes  = 8_000_000
)

// testSupport are the packages that exist for tests and `deploybot demo`:
// no product package may import them outside its tests, and the release
// binary links none of them. A new test-support package (one that imports
// a simulator, say) belongs here.
var testSupport = []string{
	"github.com/deploybot/deploybot/internal/awssim",
	"github.com/deploybot/deploybot/internal/prefectsim",
	"github.com/deploybot/deploybot/internal/githubsim",
	"github.com/deploybot/deploybot/internal/simtest",
	"github.com/deploybot/deploybot/internal/demo",
	"github.com/deploybot/deploybot/internal/fakekey",
	"github.com/deploybot/deploybot/internal/config/configtest",
	"github.com/deploybot/deploybot/internal/goldenfile",
	"github.com/deploybot/deploybot/internal/tools",
	"net/http/httptest",
}

func isTestSupport(pkg string) bool {
	for _, p := range testSupport {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// dockerBuild is the Dockerfile's go build command for one platform, with
// the Dockerfile's ARGs expanded.
type dockerBuild struct {
	env  []string // the NAME=VALUE assignments before `go`
	args []string // what follows `go build`
}

// withoutOutput returns the build flags and packages, without -o FILE.
func (b dockerBuild) withoutOutput() []string {
	var out []string
	for i := 0; i < len(b.args); i++ {
		if b.args[i] == "-o" {
			i++
			continue
		}
		if strings.HasPrefix(b.args[i], "-o=") {
			continue
		}
		out = append(out, b.args[i])
	}
	return out
}

// readDockerBuild parses the Dockerfile's RUN instruction that runs `go
// build`. args gives the build arguments (TARGETOS, TARGETARCH, which
// BuildKit sets from the platform, and any --build-arg); the rest come from
// the ARG defaults.
func readDockerBuild(t *testing.T, args map[string]string) dockerBuild {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	var runs []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		if strings.HasSuffix(trim, "\\") {
			cur.WriteString(strings.TrimSuffix(trim, "\\") + " ")
			continue
		}
		cur.WriteString(trim)
		ins := cur.String()
		cur.Reset()
		cmd, rest, _ := strings.Cut(ins, " ")
		switch strings.ToUpper(cmd) {
		case "ARG":
			// An ARG without a default (TARGETOS) has the value the build
			// gives it, or none: only the caller's args set it.
			if name, def, ok := strings.Cut(strings.TrimSpace(rest), "="); ok {
				vars[name] = strings.Trim(def, `"`)
			}
		case "RUN":
			if regexp.MustCompile(`(^|\s)go\s+build\s`).MatchString(rest) {
				runs = append(runs, rest)
			}
		}
	}
	if len(runs) != 1 {
		t.Fatalf("the Dockerfile has %d RUN instructions with `go build`, want exactly 1", len(runs))
	}
	for k, v := range args {
		vars[k] = v
	}
	words, err := shellWords(runs[0], vars)
	if err != nil {
		t.Fatalf("the Dockerfile's go build: %v", err)
	}
	var d dockerBuild
	i := 0
	for ; i < len(words) && strings.HasPrefix(words[i], "--"); i++ {
		// RUN's own options (--mount=...).
	}
	for ; i < len(words) && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[i]); i++ {
		d.env = append(d.env, words[i])
	}
	if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
		t.Fatalf("the Dockerfile's RUN is not `[NAME=VALUE...] go build ...`: %q (update readDockerBuild with it)", words)
	}
	for _, w := range words[i+2:] {
		if w == "&&" || w == ";" || w == "||" || w == "|" {
			t.Fatalf("the Dockerfile's RUN chains another command after go build (%q): keep the build alone on its line", w)
		}
		d.args = append(d.args, w)
	}
	return d
}

// shellWords splits a shell command line into words as sh does for the
// subset Dockerfiles use here: blanks, single and double quotes, and $NAME
// and ${NAME} expansion (outside single quotes). An unknown variable is an
// error, not an empty string: the test must know what the build gets.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (int, error) {
		// s[i] == '$'
		j := i + 1
		var name string
		if j < len(s) && s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				return 0, fmt.Errorf("unclosed ${ at %d", i)
			}
			name, j = s[j+1:j+end], j+end+1
		} else {
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			name = s[i+1 : j]
		}
		v, ok := vars[name]
		if !ok {
			return 0, fmt.Errorf("$%s is neither an ARG of the Dockerfile nor a build argument the test gives", name)
		}
		w.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unclosed ' at %d", i)
			}
			w.WriteString(s[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unclosed \" in %s", s)
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '$' {
					j, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = j
					continue
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`, s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
				i++
			}
		case c == '$':
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord, i = true, j
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// withLDFlag returns args with one more linker flag in -ldflags.
func withLDFlag(args []string, flag string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "-ldflags" && i+1 < len(out) {
			out[i+1] += " " + flag
			return out
		}
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			out[i] = "-ldflags=" + v + " " + flag
			return out
		}
	}
	return append([]string{"-ldflags", flag}, out...)
}

// goCmd runs the go command in the repository root with the build's
// environment. GOFLAGS is -buildvcs=false as in the image's build stage,
// whose context has no .git (.dockerignore), so that the developer's own
// GOFLAGS cannot change what is built.
func goCmd(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	out, _ := goCmdStderr(t, env, args...)
	return out
}

// goCmdStderr is goCmd that also returns what the command wrote to stderr.
func goCmdStderr(t *testing.T, env []string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-buildvcs=false"), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%.4000s", strings.Join(args, " "), err, errb.String())
	}
	return out, errb.Bytes()
}

// TestReleaseBuildLinksOnlyTheProduct lists the packages of the image's
// binary, for both platforms the release workflow builds.
func TestReleaseBuildLinksOnlyTheProduct(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			b := readDockerBuild(t, map[string]string{"TARGETOS": "linux", "TARGETARCH": arch})
			deps := strings.Fields(string(goCmd(t, b.env, append([]string{"list", "-deps"}, b.withoutOutput()...)...)))
			for _, p := range deps {
				if isTestSupport(p) {
					t.Errorf("the release binary links %s", p)
				}
			}
			// The product is there: the container's entry point and the CLI
			// (so that an empty or wrong listing cannot pass).
			for _, p := range []string{
				"github.com/deploybot/deploybot/cmd/deploybot",
				"github.com/deploybot/deploybot/internal/action/cmd",
				"github.com/deploybot/deploybot/internal/cli",
				"github.com/deploybot/deploybot/internal/engine",
			} {
				if !slices.Contains(deps, p) {
					t.Errorf("the release binary does not link %s", p)
				}
			}
		})
	}
}

// TestDockerContextLeavesOutTestSupport: the image's build context lacks
// every test-support package of this module, so that an import of one
// fails the image build outright.
func TestDockerContextLeavesOutTestSupport(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	const module = "github.com/deploybot/deploybot/"
	for _, p := range testSupport {
		dir, ok := strings.CutPrefix(p, module)
		if !ok {
			continue
		}
		if !slices.Contains(lines, dir+"/") {
			t.Errorf(".dockerignore does not leave out %s/", dir)
		}
	}
}

// TestDefaultBuildHasTheDemo: without the release tag, `go run
// ./cmd/deploybot demo` works on a fresh machine.
func TestDefaultBuildHasTheDemo(t *testing.T) {
	deps := strings.Fields(string(goCmd(t, nil, "list", "-deps", "./cmd/deploybot")))
	if !slices.Contains(deps, "github.com/deploybot/deploybot/internal/demo") {
		t.Error("the default build of cmd/deploybot lacks internal/demo")
	}
}

// TestNoProductPackageImportsTestSupport: outside their tests, the
// product's packages import no simulator, no demo and no test support,
// whether or not the release binary reaches them today.
func TestNoProductPackageImportsTestSupport(t *testing.T) {
	out := goCmd(t, nil, "list", "-tags", "release", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	products := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || isTestSupport(f[0]) {
			continue
		}
		products++
		for _, imp := range f[1:] {
			if isTestSupport(imp) {
				t.Errorf("%s imports %s outside its tests", f[0], imp)
			}
		}
	}
	if products < 10 {
		t.Fatalf("only %d product packages listed", products)
	}
}

// TestReleaseBinary builds the image's binary for linux/amd64 exactly as
// the Dockerfile does (with a version and commit as the release workflow
// passes them) and checks its size, its image layer's gzip-compressed
// size, and what --version prints.
func TestReleaseBinary(t *testing.T) {
	const version, commit = "v0.0.0-releasetest", "0123456789abcdef0123456789abcdef01234567"
	bin := filepath.Join(t.TempDir(), "deploybot")
	b := readDockerBuild(t, map[string]string{"TARGETOS": "linux", "TARGETARCH": "amd64", "VERSION": version, "COMMIT": commit})
	goCmd(t, b.env, append([]string{"build", "-o", bin}, b.withoutOutput()...)...)

	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := layerSize(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release binary (linux/amd64): %d bytes; its image layer: %d bytes gzip-compressed", len(raw), layer)
	if len(raw) > maxBinaryBytes {
		t.Errorf("the release binary is %d bytes, over the %d target: is something keeping every SDK method (reflect.Type.Method, docs/ARCHITECTURE.md \"What ships\")?", len(raw), maxBinaryBytes)
	}
	if layer > maxLayerBytes {
		t.Errorf("the binary's image layer is %d bytes gzip-compressed, over the %d target", layer, maxLayerBytes)
	}

	// The -X flags name variables that exist: run the binary (for the host
	// when it is not linux/amd64).
	run := bin
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		run = filepath.Join(t.TempDir(), "deploybot-host")
		host := readDockerBuild(t, map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": version, "COMMIT": commit})
		goCmd(t, host.env, append([]string{"build", "-o", run}, host.withoutOutput()...)...)
	}
	want := "deploybot version " + version + " (commit " + commit + ")\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(run, args...).CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("deploybot %s: %q (%v), want %q", args[0], out, err, want)
		}
	}
	if out, err := exec.Command(run, "demo").CombinedOutput(); err == nil || !strings.Contains(string(out), `unknown command "demo"`) {
		t.Errorf("the release binary runs `deploybot demo`: %v\n%s", err, out)
	}
}

// TestReleaseBinaryKeepsNoMethodByReflection links the image's binary with
// the linker's dependency dump (-ldflags=-dumpdep), which marks
// <ReflectMethod> on every reachable function that looks methods up by
// reflection (reflect.Type.Method, Value.MethodByName with a computed
// name, text/template's execution). One such function makes the linker
// keep every exported method of every type in the binary: all of each SDK
// client, three times the size. The failure names the path to it.
func TestReleaseBinaryKeepsNoMethodByReflection(t *testing.T) {
	b := readDockerBuild(t, map[string]string{"TARGETOS": "linux", "TARGETARCH": "amd64"})
	args := append([]string{"build", "-o", filepath.Join(t.TempDir(), "deploybot")}, withLDFlag(b.withoutOutput(), "-dumpdep")...)
	_, dump := goCmdStderr(t, b.env, args...)
	edges := 0
	var bad []string
	for _, line := range strings.Split(string(dump), "\n") {
		if !strings.Contains(line, " -> ") {
			continue
		}
		edges++
		// The edges into such a function from one that is not: who
		// brings it in.
		from, to, _ := strings.Cut(line, " -> ")
		if strings.Contains(to, "<ReflectMethod>") && !strings.Contains(from, "<ReflectMethod>") && len(bad) < 20 {
			bad = append(bad, line)
		}
	}
	if edges < 10000 {
		t.Fatalf("the linker's dependency dump has %d edges: did -dumpdep reach the linker?", edges)
	}
	if len(bad) > 0 {
		t.Errorf("the release binary reaches functions that look methods up by reflection, so the linker keeps every method of every SDK client:\n%s", strings.Join(bad, "\n"))
	}
}

// layerSize is the gzip-compressed size of the image layer that holds the
// binary: a tar with the one file /deploybot, compressed at gzip's default
// level as BuildKit does by default for the layers it pushes.
func layerSize(bin []byte) (int, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "deploybot", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return 0, err
	}
	if _, err := tw.Write(bin); err != nil {
		return 0, err
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return buf.Len(), nil
}
