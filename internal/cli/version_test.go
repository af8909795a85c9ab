package cli

import (
	"runtime/debug"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Version: "v1.4.0-0.20260301090000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name            string
		version, commit string // what -ldflags -X set
		info            *debug.BuildInfo
		wantV, wantC    string
	}{
		{"release build", "v1.4.2", "89abcdef0123456789abcdef0123456789abcdef", stamped, "v1.4.2", "89abcdef0123456789abcdef0123456789abcdef"},
		{"a checkout: the go command's stamps", "", "", stamped, "v1.4.0-0.20260301090000-0123456789ab+dirty", "0123456789abcdef0123456789abcdef01234567 (modified)"},
		{"clean checkout", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fedcba9876543210fedcba9876543210fedcba98"}, {Key: "vcs.modified", Value: "false"}}}, "dev", "fedcba9876543210fedcba9876543210fedcba98"},
		{"go install module@version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.2"}}, "v1.4.2", "unknown"},
		{"release version, commit from the stamps", "v1.4.2", "", stamped, "v1.4.2", "0123456789abcdef0123456789abcdef01234567 (modified)"},
		{"no build info", "", "", nil, "dev", "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, c := resolveVersion(tc.version, tc.commit, tc.info)
			if v != tc.wantV || c != tc.wantC {
				t.Errorf("got %q, %q; want %q, %q", v, c, tc.wantV, tc.wantC)
			}
		})
	}
}
