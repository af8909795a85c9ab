package docs

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's generated sections")

// TestReadmeReferenceIsCurrent: the environment-file and Action reference in
// README.md are exactly what schema.json and action.yml say.
func TestReadmeReferenceIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("../../environments/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	action, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
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
	example, err := os.ReadFile("../render/testdata/engine/cpu_change.comment.md")
	if err != nil {
		t.Fatal(err)
	}
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
	schema, err := os.ReadFile("../../environments/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := EnvironmentReference(schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"`name`", "`aws.account_id`", "`worker.autoscaling.target_cpu_percent`", "`network.nat`", "`health_gate.timeout`", "`tags`"} {
		if !contains(ref, "| "+f+" |") {
			t.Errorf("reference lacks %s", f)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
