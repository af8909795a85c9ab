package docs

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's generated sections")

// readFile is the file at path, or the test fails.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadmeReferenceIsCurrent: the environment-file and Action reference in
// README.md are exactly what schema.json and action.yml say.
func TestReadmeReferenceIsCurrent(t *testing.T) {
	readme := readFile(t, "../../README.md")
	schema := readFile(t, "../../environments/schema.json")
	action := readFile(t, "../../action.yml")
	envRef, err := EnvironmentReference(schema)
	if err != nil {
		t.Fatal(err)
	}
	actRef, err := ActionReference(action)
	if err != nil {
		t.Fatal(err)
	}
	want := string(readme)
	if want, err = Replace(want, "ENVIRONMENT REFERENCE", envRef); err != nil {
		t.Fatal(err)
	}
	if want, err = Replace(want, "ACTION REFERENCE", actRef); err != nil {
		t.Fatal(err)
	}
	// One PR comment as render writes it (its golden file, made from a
	// plan of the real engine), without the hidden marker line.
	example := readFile(t, "../render/testdata/engine/cpu_change.comment.md")
	_, body, _ := strings.Cut(string(example), "\n")
	if want, err = Replace(want, "EXAMPLE COMMENT", "\n"+strings.TrimRight(body, "\n")+"\n\n"); err != nil {
		t.Fatal(err)
	}
	if want == string(readme) {
		return
	}
	if *update {
		if err := os.WriteFile("../../README.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's generated sections are out of date with environments/schema.json, action.yml or the example comment's golden file; run: go test ./internal/docs -update")
}

func TestEnvironmentReferenceHasEveryField(t *testing.T) {
	schema := readFile(t, "../../environments/schema.json")
	ref, err := EnvironmentReference(schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"`name`", "`aws.account_id`", "`worker.autoscaling.target_cpu_percent`", "`network.nat`", "`health_gate.timeout`", "`tags`"} {
		if !strings.Contains(ref, "| "+f+" |") {
			t.Errorf("reference lacks %s", f)
		}
	}
}
