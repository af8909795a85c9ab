package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/deploybot/deploybot/internal/exit"
)

// Problem is one thing wrong with an environment file.
type Problem struct {
	File string
	// Line is 1-based; 0 when the problem is about the file as a whole
	// (for example it cannot be read).
	Line int
	// Field is the dotted path of the field ("worker.cpu",
	// "network.subnet_ids[1]"), empty when the problem is not about a field.
	Field   string
	Message string
}

// maxShownField bounds a field path in a message: a 200,000-character key
// is named by its first characters, not echoed whole.
const maxShownField = 80

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(shorten(p.Field, maxShownField))
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors holds every problem found in the files of one Load or LoadAll, so
// that a user fixes them all in one round.
type Errors struct {
	Problems []Problem
}

// Error prints one "FILE:LINE: field.path: message" per line, sorted by file
// then line (problems on one line keep the order they were found in).
func (e *Errors) Error() string {
	ps := e.Sorted()
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sorted returns the problems sorted by file, then line.
func (e *Errors) Sorted() []Problem {
	ps := append([]Problem(nil), e.Problems...)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
	return ps
}

// ExitCode is bad input: nothing was written anywhere.
func (e *Errors) ExitCode() exit.Code { return exit.BadInput }

// Locations are the problems, sorted, for printers that place each on its
// file and line (GitHub Actions annotations).
func (e *Errors) Locations() []exit.Location {
	ps := e.Sorted()
	out := make([]exit.Location, len(ps))
	for i, p := range ps {
		msg := p.Message
		if p.Field != "" {
			msg = shorten(p.Field, maxShownField) + ": " + msg
		}
		out[i] = exit.Location{File: p.File, Line: p.Line, Message: msg}
	}
	return out
}

func (e *Errors) add(ps ...Problem) { e.Problems = append(e.Problems, ps...) }

// errOrNil returns e as an error when it holds problems; a nil *Errors in an
// error interface would not compare equal to nil.
func (e *Errors) errOrNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}
