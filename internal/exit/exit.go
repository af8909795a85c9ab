// Package exit is deploybot's one policy for failures: the exit codes, the
// error types that carry them, the one mapping from an error to a code
// (CodeOf) and the one printer (Print), for a terminal and for the GitHub
// Actions log. The CLI's Main, the Action's Main and the container's entry
// point all end in CodeOf and Print; nothing else decides an exit code or
// prints an error, and nothing decides either from an error's text.
package exit

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	githubactions "github.com/sethvargo/go-githubactions"
)

// Code is a process exit code (README "The CLI", docs/ARCHITECTURE.md "Exit codes").
type Code int

const (
	// OK: done.
	OK Code = 0
	// Failure: AWS, Prefect or GitHub failed, a stale plan was refused, the
	// environment is locked.
	Failure Code = 1
	// BadInput: the input is wrong (file, line and field named) and nothing
	// was written to AWS.
	BadInput Code = 2
	// GateFailed: the deploy happened and the health gate judged it
	// unhealthy (rolled back, or nothing to roll back to).
	GateFailed Code = 3
	// ChangesPending: plan --detailed-exitcode found changes.
	ChangesPending Code = 4
)

// Coded is an error that knows its exit code. config.Errors (BadInput) and
// deploy.GateError (GateFailed) are, besides the types of this package.
type Coded interface {
	error
	ExitCode() Code
}

// InputError is bad input: a flag, an input of the Action, the event, a
// confirmation that does not match. It is raised before any AWS write.
type InputError struct{ Err error }

func (e *InputError) Error() string  { return e.Err.Error() }
func (e *InputError) Unwrap() error  { return e.Err }
func (e *InputError) ExitCode() Code { return BadInput }

// Input marks err as bad input (nil stays nil).
func Input(err error) error {
	if err == nil {
		return nil
	}
	return &InputError{Err: err}
}

// Inputf is Input(fmt.Errorf(format, args...)).
func Inputf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// SilentError ends the process with Code without printing anything: what
// there was to say has been said (a cancelled prompt), or there is nothing
// to say (plan --detailed-exitcode with changes).
type SilentError struct{ Code Code }

func (e *SilentError) Error() string  { return "exit status " + strconv.Itoa(int(e.Code)) }
func (e *SilentError) ExitCode() Code { return e.Code }

// Silent returns a SilentError for code.
func Silent(code Code) error { return &SilentError{Code: code} }

// Location is one problem at a place in a file.
type Location struct {
	File    string
	Line    int // 1-based; 0 when about the whole file
	Message string
}

// Located is an error made of problems in files (config.Errors): the
// Actions log shows each as an annotation on its file and line.
type Located interface {
	error
	Locations() []Location
}

// rank orders codes for an error made of several (a run over many
// environments): a failed gate is the most important to report, then any
// failure, then bad input (only when every part is bad input may the run
// promise that nothing was written), then pending changes.
var rank = map[Code]int{OK: 0, ChangesPending: 1, BadInput: 2, Failure: 3, GateFailed: 4}

// CodeOf maps an error to the exit code: nil is OK; along a chain of
// wrapped errors the outermost that knows its code gives it; an error
// joining several (errors.Join) gives the most important of its parts'
// codes; anything else is Failure.
func CodeOf(err error) Code {
	switch e := err.(type) {
	case nil:
		return OK
	case Coded:
		return e.ExitCode()
	case interface{ Unwrap() []error }:
		best := OK
		for _, part := range e.Unwrap() {
			if part == nil {
				continue
			}
			if c := CodeOf(part); rank[c] > rank[best] {
				best = c
			}
		}
		if best == OK {
			return Failure
		}
		return best
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return CodeOf(inner)
		}
	}
	return Failure
}

// Style is where an error is printed.
type Style int

const (
	// Terminal: "error: message", or one "FILE:LINE: field: message" per
	// problem of an environment file (what editors and CI link to).
	Terminal Style = iota
	// Workflow: GitHub Actions error annotations (docs/research/github-actions.md
	// §1.4), one per problem on its file and line, the message and the
	// properties escaped as GitHub documents, so no text in an error can
	// end the command or start another.
	Workflow
)

// Print writes err once, in style s, to w (which should be the process's
// redacting writer). A SilentError prints nothing.
func Print(w io.Writer, err error, s Style) {
	if err == nil {
		return
	}
	if _, silent := err.(*SilentError); silent {
		return
	}
	switch s {
	case Workflow:
		for _, part := range parts(err) {
			var loc Located
			if errors.As(part, &loc) {
				for _, l := range loc.Locations() {
					props := githubactions.CommandProperties{"title": "deploybot", "file": l.File}
					if l.Line > 0 {
						props["line"] = strconv.Itoa(l.Line)
					}
					annotate(w, props, l.Message)
				}
				continue
			}
			annotate(w, githubactions.CommandProperties{"title": "deploybot"}, part.Error())
		}
	default:
		msg := err.Error()
		var loc Located
		if !errors.As(err, &loc) || loc.Error() != msg {
			msg = "error: " + msg
		}
		fmt.Fprintln(w, strings.TrimRight(msg, "\n"))
	}
}

func annotate(w io.Writer, props githubactions.CommandProperties, msg string) {
	c := githubactions.Command{Name: "error", Properties: props, Message: msg}
	fmt.Fprintln(w, c.String())
}

// parts splits an error of several parts into them (one level), else
// returns err.
func parts(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			if e != nil {
				out = append(out, e)
			}
		}
		return out
	}
	return []error{err}
}
