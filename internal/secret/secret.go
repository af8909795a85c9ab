// Package secret is deploybot's one type for a credential and its one
// redaction. A Value holds a credential (the Prefect API key or auth string,
// an AWS secret key or session token, a GitHub token, a GitHub App's private
// key) and never shows it: every formatting verb, JSON and text encoding and
// slog print "[redacted]". A Redactor knows every credential the process
// holds and takes them out of any text; its Writer does so on a stream, so
// stdout, stderr, comments, summaries, outputs and JSON files all pass
// through the same code. Redact first, then cut: Cut does both in that order,
// so a credential straddling a cut can never leave half of itself behind.
package secret

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mark replaces a credential wherever one is found.
const Mark = "[redacted]"

// minLen is the shortest text taken for a credential: shorter ones would
// redact ordinary words, and no credential deploybot holds is that short.
const minLen = 4

// minLineLen is the shortest line of a multi-line credential taken on its own.
const minLineLen = 16

// Value is a credential. The zero Value is "no credential".
type Value struct{ s string }

// New wraps s. Surrounding whitespace (a pasted secret's newline) is kept:
// what is sent is what was given.
func New(s string) Value { return Value{s: s} }

// Reveal returns the credential itself, for the one place that sends it
// (an Authorization header, a Secrets Manager write).
func (v Value) Reveal() string { return v.s }

// IsZero says whether there is no credential.
func (v Value) IsZero() bool { return v.s == "" }

func (v Value) shown() string {
	if v.s == "" {
		return "(none)"
	}
	return Mark
}

// String redacts.
func (v Value) String() string { return v.shown() }

// GoString redacts (%#v).
func (v Value) GoString() string { return v.shown() }

// Format redacts for every verb (%v, %+v, %s, %q, %x, %d...).
func (v Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, v.shown()) }

// MarshalJSON redacts.
func (v Value) MarshalJSON() ([]byte, error) { return json.Marshal(v.shown()) }

// MarshalText redacts (YAML, encoding/xml, map keys).
func (v Value) MarshalText() ([]byte, error) { return []byte(v.shown()), nil }

// LogValue redacts in log/slog.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.shown()) }

// Redactor holds every credential of a process and replaces each with Mark.
// The zero value holds none; it is safe for concurrent use.
type Redactor struct {
	mu sync.RWMutex
	// texts are the forms to replace, longest first, so that a credential
	// containing another is replaced whole.
	texts []string
	seen  map[string]bool
}

// Add registers credentials. Besides each credential as given it registers
// the forms it takes in output: trimmed, JSON-escaped (a plan JSON file, an
// API body), and line by line for multi-line ones (a PEM key is printed
// and masked one line at a time).
func (r *Redactor) Add(vs ...Value) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	for _, v := range vs {
		for _, form := range forms(v.s) {
			if len(form) < minLen || r.seen[form] {
				continue
			}
			r.seen[form] = true
			r.texts = append(r.texts, form)
		}
	}
	sort.SliceStable(r.texts, func(i, j int) bool { return len(r.texts[i]) > len(r.texts[j]) })
}

// AddString registers a credential held as a plain string (one read from
// the environment, or returned by an SDK).
func (r *Redactor) AddString(ss ...string) {
	for _, s := range ss {
		r.Add(New(s))
	}
}

func forms(s string) []string {
	out := []string{s, strings.TrimSpace(s)}
	if b, err := json.Marshal(s); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	if strings.ContainsAny(s, "\r\n") {
		for _, line := range strings.FieldsFunc(s, func(c rune) bool { return c == '\n' || c == '\r' }) {
			line = strings.TrimSpace(line)
			// PEM armour lines ("-----BEGIN RSA PRIVATE KEY-----") are
			// public, and a short last line ("Zg==") would redact ordinary
			// text: the whole key still covers it.
			if strings.HasPrefix(line, "-----") || len(line) < minLineLen {
				continue
			}
			out = append(out, line)
		}
	}
	return out
}

// Redact returns s with every registered credential replaced by Mark.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, t := range r.texts {
		if strings.Contains(s, t) {
			s = strings.ReplaceAll(s, t, Mark)
		}
	}
	return s
}

// Error returns err with a redacted message. errors.Is and errors.As still
// see the original chain (a typed error keeps its exit code); only the text
// changes. nil stays nil.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.Redact(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Cut redacts s, then shortens it to at most n bytes on a rune boundary,
// ending with "…" when it cut. Use it for every untrusted text that is
// shortened (an API's error body, a value echoed in a message).
func (r *Redactor) Cut(s string, n int) string {
	return Cut(r.Redact(s), n)
}

// Cut shortens s to at most n bytes on a rune boundary, ending with "…"
// when it cut. It does not redact: call Redactor.Cut for text that may hold
// a credential.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	keep := max(n-len(ellipsis), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + ellipsis
}

// heldBack is how much of the end of text could be the start of a
// credential: the longest suffix of text that is a proper prefix of one.
func (r *Redactor) heldBack(text string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	best := 0
	for _, t := range r.texts {
		// Candidate starts are the positions of t's first byte within the
		// last len(t)-1 bytes; the earliest that matches is the longest.
		from := max(len(text)-(len(t)-1), 0)
		for i := from; i < len(text)-best; i++ {
			j := strings.IndexByte(text[i:len(text)-best], t[0])
			if j < 0 {
				break
			}
			i += j
			if strings.HasPrefix(t, text[i:]) {
				best = len(text) - i
				break
			}
		}
	}
	return best
}

// Writer is a redacting io.Writer. Text is written through as soon as it
// cannot be the start of a credential; the end of a write that could be is
// held back until the next write shows it is not (or Flush). A credential
// split across writes is therefore still redacted.
type Writer struct {
	r       *Redactor
	mu      sync.Mutex
	w       io.Writer
	pending string
}

// Writer returns a redacting writer onto w.
func (r *Redactor) Writer(w io.Writer) *Writer { return &Writer{r: r, w: w} }

// Write redacts and writes p; it reports len(p) on success.
func (x *Writer) Write(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	text := x.pending + string(p)
	hold := x.r.heldBack(text)
	out := text[:len(text)-hold]
	x.pending = text[len(text)-hold:]
	if out == "" {
		return len(p), nil
	}
	if _, err := io.WriteString(x.w, x.r.Redact(out)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteUnredacted writes p as it is, after what was held back: for the one
// text that must carry a credential, the GitHub Actions runner's
// ::add-mask:: command (which makes the runner hide it from the log).
func (x *Writer) WriteUnredacted(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.pending != "" {
		if _, err := io.WriteString(x.w, x.r.Redact(x.pending)); err != nil {
			return 0, err
		}
		x.pending = ""
	}
	return x.w.Write(p)
}

// Unredacted is an io.Writer that writes through WriteUnredacted.
func (x *Writer) Unredacted() io.Writer { return unredacted{x} }

type unredacted struct{ x *Writer }

func (u unredacted) Write(p []byte) (int, error) { return u.x.WriteUnredacted(p) }

// Flush writes what was held back.
func (x *Writer) Flush() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.pending == "" {
		return nil
	}
	_, err := io.WriteString(x.w, x.r.Redact(x.pending))
	x.pending = ""
	return err
}
