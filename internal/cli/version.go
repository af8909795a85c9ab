package cli

import (
	"runtime/debug"
	"strings"
)

// Version and Commit are set by the release build (the Dockerfile passes
// -ldflags "-X github.com/deploybot/deploybot/internal/cli.Version=v1.2.3
// -X github.com/deploybot/deploybot/internal/cli.Commit=<sha>"). Left
// empty, they come from what the go command records in the binary (see
// BuildVersion).
var (
	Version string
	Commit  string
)

// BuildVersion returns this binary's version and commit: the release
// build's, else the module version and VCS revision the go command stamps
// into binaries built from a checkout (runtime/debug.ReadBuildInfo; `go
// build` and `go run` record vcs.revision and vcs.modified, and since Go
// 1.24 a version derived from the tag or commit), else "dev" and
// "unknown".
func BuildVersion() (version, commit string) {
	info, _ := debug.ReadBuildInfo()
	return resolveVersion(Version, Commit, info)
}

// resolveVersion prefers what the release build set, then the build info
// (nil when the binary has none).
func resolveVersion(version, commit string, info *debug.BuildInfo) (string, string) {
	if info != nil && version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	if info != nil && commit == "" {
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if commit != "" && modified {
			commit += " (modified)"
		}
	}
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		commit = "unknown"
	}
	return version, commit
}

// versionString is the version and commit as `deploybot version` and
// `deploybot --version` print them: "deploybot version v1.2.3 (commit
// <sha>)".
func versionString() string {
	v, c := BuildVersion()
	return v + " (commit " + c + ")"
}

// userAgent names deploybot and its version to the services it calls.
func userAgent() string {
	v, _ := BuildVersion()
	return "deploybot/" + strings.ReplaceAll(v, " ", "_")
}
