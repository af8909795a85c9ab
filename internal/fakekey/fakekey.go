// Package fakekey makes credentials for tests: generated at run time, so no
// credential-shaped literal lives in the repository, and marked as fake so
// nobody mistakes one for a real key in a log.
package fakekey

import (
	"crypto/rand"
	"encoding/hex"
)

// Prefect returns a fake Prefect Cloud API key ("pnu_" + "fake" + label +
// random hex): the shape deploybot's redaction and validation know, never a
// real key.
func Prefect(label string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "pnu_fake" + label + hex.EncodeToString(b)
}
