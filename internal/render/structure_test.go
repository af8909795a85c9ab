package render

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/yuin/goldmark/ast"
	extast "github.com/yuin/goldmark/extension/ast"
)

// The HTML deploybot itself writes into a comment or summary; anything else
// that parses as HTML came from a value and is a defect.
var ownHTML = []*regexp.Regexp{
	regexp.MustCompile(`^<details( open)?><summary>[^<>]*</summary>$`),
	regexp.MustCompile(`^</details>$`),
	regexp.MustCompile(`^<!-- deploybot:plan [^<>]* -->$`),
	regexp.MustCompile(`^</?sub>$`),
}

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

var alertKinds = map[string]bool{"NOTE": true, "TIP": true, "IMPORTANT": true, "WARNING": true, "CAUTION": true}

// checkStructure parses a markdown view with goldmark's GFM (as GitHub's
// cmark-gfm does) and checks what a reviewer relies on: only deploybot's own
// HTML, every <details> closed, every block quote a GitHub alert of a known
// kind with its marker first, diff blocks no wider than DiffWidth, and the
// size under GitHub's limits. Text and JSON views are checked for what they
// promise too.
func checkStructure(t *testing.T, view, out string) {
	t.Helper()
	switch {
	case strings.HasSuffix(view, ".md"):
	case view == "json":
		if !json.Valid([]byte(out)) {
			t.Errorf("%s: not valid JSON", view)
		}
		return
	case view == "color.txt":
		// Only deploybot's own SGR colour codes: ESC [ digits (; digits) m.
		if rest := sgr.ReplaceAllString(out, ""); strings.ContainsRune(rest, '\x1b') {
			t.Errorf("%s: an escape sequence that is not a colour", view)
		}
		return
	default:
		if strings.ContainsRune(out, '\x1b') {
			t.Errorf("%s: an escape character in plain text", view)
		}
		return
	}
	limit := DefaultSummaryMaxLen
	if strings.HasPrefix(view, "comment") {
		limit = DefaultCommentMaxLen
	}
	if len(out) > limit {
		t.Errorf("%s: %d bytes, over GitHub's %d", view, len(out), limit)
	}
	doc, src := parse(out)
	depth := 0
	checkHTML := func(raw string) {
		for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			ok := false
			for _, re := range ownHTML {
				if re.MatchString(l) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: HTML that deploybot does not write: %q", view, l)
			}
			depth += strings.Count(l, "<details") - strings.Count(l, "</details>")
			if depth < 0 {
				t.Errorf("%s: </details> without <details>", view)
			}
		}
	}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n.Kind() {
		case ast.KindHTMLBlock:
			var b strings.Builder
			lines := n.Lines()
			for i := 0; i < lines.Len(); i++ {
				seg := lines.At(i)
				b.Write(seg.Value(src))
			}
			if hb := n.(*ast.HTMLBlock); hb.HasClosure() {
				b.Write(hb.ClosureLine.Value(src))
			}
			checkHTML(b.String())
		case ast.KindRawHTML:
			var b strings.Builder
			segs := n.(*ast.RawHTML).Segments
			for i := 0; i < segs.Len(); i++ {
				seg := segs.At(i)
				b.Write(seg.Value(src))
			}
			checkHTML(b.String())
		case ast.KindBlockquote:
			// GitHub's alerts: the marker alone on the quote's first line,
			// content after it, not nested in another block.
			first := n.FirstChild()
			marker := ""
			if first != nil && first.Kind() == ast.KindParagraph && (first.Lines().Len() > 1 || first.NextSibling() != nil) {
				seg := first.Lines().At(0)
				marker = strings.TrimSpace(string(seg.Value(src)))
			}
			kind := strings.TrimSuffix(strings.TrimPrefix(marker, "[!"), "]")
			if !strings.HasPrefix(marker, "[!") || !alertKinds[kind] || n.Parent().Kind() != ast.KindDocument {
				t.Errorf("%s: a block quote that is not a GitHub alert (marker alone on its first line, then content): %q", view, marker)
			}
		case ast.KindFencedCodeBlock:
			fb := n.(*ast.FencedCodeBlock)
			if string(fb.Language(src)) != "diff" {
				return ast.WalkContinue, nil
			}
			lines := n.Lines()
			for i := 0; i < lines.Len(); i++ {
				seg := lines.At(i)
				l := strings.TrimRight(string(seg.Value(src)), "\n")
				if n := utf8.RuneCountInString(l); n > DiffWidth {
					t.Errorf("%s: a diff line of %d characters, over %d: %q", view, n, DiffWidth, l)
				}
			}
		case extast.KindTable:
			head := n.FirstChild()
			for row := head.NextSibling(); row != nil; row = row.NextSibling() {
				if row.ChildCount() != head.ChildCount() {
					t.Errorf("%s: a table row with %d cells under a header of %d", view, row.ChildCount(), head.ChildCount())
				}
			}
		}
		return ast.WalkContinue, nil
	})
	if depth != 0 {
		t.Errorf("%s: %d <details> left open", view, depth)
	}
}
