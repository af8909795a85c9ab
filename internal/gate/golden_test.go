package gate

import (
	"flag"
	"testing"

	"github.com/deploybot/deploybot/internal/goldenfile"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	goldenfile.Check(t, path, got, *update, nil)
}
