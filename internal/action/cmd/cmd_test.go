package cmd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/cli"

	_ "github.com/deploybot/deploybot/internal/action/cmd"
)

func TestActionCommandIsRegistered(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantCode int
		wantOut  string
	}{
		{"outside Actions: bad input", map[string]string{}, 2, "GITHUB_REPOSITORY is not set"},
		{"a bad operation: bad input", map[string]string{"GITHUB_REPOSITORY": "o/r", "INPUT_OPERATION": "explode"}, 2, `"explode" is not one of`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			io, _, out, _ := cli.Test()
			f := &cli.Factory{IO: io, Getenv: func(k string) string { return tc.env[k] }}
			code := cli.Main(context.Background(), f, []string{"action"})
			if code != tc.wantCode || !strings.Contains(out.String(), "::error title=deploybot::") || !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("exit %d, stdout %q", code, out.String())
			}
		})
	}
}
