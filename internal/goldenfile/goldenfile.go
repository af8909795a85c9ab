// Package goldenfile compares what a test rendered with a file checked in
// beside the test (a golden file), or rewrites the file when the test runs
// with its package's -update flag. Tests import it; no binary does.
package goldenfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Check compares got with the file at path, both through normalize (nil: as
// they are), or with update writes got to path. The file keeps what was
// rendered, so that it reads as users see it.
func Check(t testing.TB, path string, got []byte, update bool, normalize func(string) string) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run the test with -update to create it): %v", err)
	}
	w, g := string(want), string(got)
	if normalize != nil {
		w, g = normalize(w), normalize(g)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", path, diff)
	}
}
