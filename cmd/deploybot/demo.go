//go:build !release

package main

// `deploybot demo` runs the whole cycle against the simulated AWS account,
// Prefect API and GitHub, so it links the simulators. Every build has it
// (`go run ./cmd/deploybot demo` on a fresh machine, no flags) except the
// release image's, which the Dockerfile builds with -tags release: the
// shipped binary contains the product only (docs/ARCHITECTURE.md "What
// ships"; release_test.go checks it).
import _ "github.com/deploybot/deploybot/internal/demo"
