package render

import (
	"bytes"
	"html"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	extast "github.com/yuin/goldmark/extension/ast"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
)

// hostile are strings an attacker controls: file and branch names from a
// fork, values in an environment file, AWS and Prefect messages (issue 11
// item 4).
var hostile = []string{
	"environments/y` **@acme-admins** <img src=x> `.yaml",
	"environments/a\n# injected heading\n::warning::forged",
	"</details><details open><summary>x</summary>",
	"<!-- deploybot:plan env=prod fingerprint=evil -->",
	"[click](javascript:alert(1))",
	"![img](https://evil.example/x.png)",
	"- [x] done",
	"1. first",
	"2) second",
	"# heading",
	"> quote",
	"    indented code",
	"| a | b |",
	"~~struck~~ *em* __strong__",
	"costs $5 and $6",
	"fixes #12 and @octocat/team",
	"a\\`b``c```d",
	"`",
	"``",
	" `x` ",
	"&lt;not an entity&gt; &amp;",
	"\x1b[31mred\x1b[0m",
	"line\u2028separator",
	"<https://autolink.example>",
	"===",
	"---",
	"+ plus",
	"*",
	"_",
	"\\",
	"",
}

var gfm = goldmark.New(goldmark.WithExtensions(extension.GFM))

// parse renders src with goldmark's GFM (tables, strikethrough, autolinks,
// task lists) and returns the document.
func parse(src string) (ast.Node, []byte) {
	b := []byte(src)
	return gfm.Parser().Parse(text.NewReader(b)), b
}

// toHTML renders src as goldmark's GFM does, raw HTML passed through (as
// an unsafe renderer would), so that any HTML an escaped string smuggled in
// shows up in the output.
func toHTML(t *testing.T, src string) string {
	t.Helper()
	var b bytes.Buffer
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(gmhtml.WithUnsafe()))
	if err := md.Convert([]byte(src), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// paragraphText checks that out is one paragraph of text (and, with
// allowCode, code spans) and returns that text.
func paragraphText(t *testing.T, in, out string, allowCode bool) string {
	t.Helper()
	body, ok := strings.CutPrefix(strings.TrimSuffix(out, "\n"), "<p>")
	body, ok2 := strings.CutSuffix(body, "</p>")
	if !ok || !ok2 {
		t.Errorf("%q renders as %q, not one paragraph", in, out)
		return ""
	}
	if allowCode {
		body = strings.NewReplacer("<code>", "", "</code>", "").Replace(body)
	}
	if strings.ContainsAny(body, "<>") {
		t.Errorf("%q renders as %q: markup in the text", in, out)
	}
	return strings.ReplaceAll(html.UnescapeString(body), zeroWidthSpace, "")
}

func TestEscapeRendersAsItsText(t *testing.T) {
	for _, s := range hostile {
		t.Run(s, func(t *testing.T) {
			got := Escape(s)
			if strings.ContainsAny(got, "\n\r\x1b<>") {
				t.Errorf("Escape(%q) = %q still holds a line break, an escape or an angle bracket", s, got)
			}
			want := "text " + strings.TrimSpace(OneLine(s)) + " text"
			if strings.TrimSpace(OneLine(s)) == "" {
				want = "text  text"
			}
			if rendered := paragraphText(t, s, toHTML(t, "text "+got+" text"), false); rendered != want {
				t.Errorf("Escape(%q) = %q renders as %q, want %q", s, got, rendered, want)
			}
		})
	}
}

func TestEscapeBreaksMentionsAndReferences(t *testing.T) {
	for in, bad := range map[string]string{
		"ping @acme-admins": "@acme-admins",
		"fixes #12":         "#12",
		"costs $5 and $6":   "$5 and $",
	} {
		if got := Escape(in); strings.Contains(got, bad) {
			t.Errorf("Escape(%q) = %q, still contains %q", in, got, bad)
		}
	}
	// An address or a channel name is not broken needlessly.
	if got := Escape("a@ b# c"); got != "a@ b# c" {
		t.Errorf("Escape changed text that GitHub does not link: %q", got)
	}
}

func TestCodeRendersAsItsText(t *testing.T) {
	for _, s := range hostile {
		t.Run(s, func(t *testing.T) {
			want := OneLine(s)
			if want == "" {
				return
			}
			got := Code(s)
			// A code span drops one space either side when both are there
			// (GFM §6.1), which is what Code pads with.
			if rendered := paragraphText(t, s, toHTML(t, "x "+got+" x"), true); rendered != "x "+want+" x" {
				t.Errorf("Code(%q) = %q renders as %q, want %q", s, got, rendered, "x "+want+" x")
			}
		})
	}
}

func TestCodeBlockCannotBeClosed(t *testing.T) {
	for _, s := range append(hostile, "```\n</details>", "````\nx\n```", "~~~\nx") {
		block := CodeBlock(s, "text")
		doc, src := parse(block + "\nafter\n")
		var blocks, paras int
		var content string
		for c := doc.FirstChild(); c != nil; c = c.NextSibling() {
			switch c.Kind() {
			case ast.KindFencedCodeBlock:
				blocks++
				lines := c.Lines()
				for i := 0; i < lines.Len(); i++ {
					seg := lines.At(i)
					content += string(seg.Value(src))
				}
			case ast.KindParagraph:
				paras++
			default:
				t.Errorf("CodeBlock(%q): unexpected %s", s, c.Kind())
			}
		}
		if blocks != 1 || paras != 1 {
			t.Errorf("CodeBlock(%q) = %q: %d code blocks and %d paragraphs, want 1 and 1 (\"after\")", s, block, blocks, paras)
		}
		if strings.ContainsRune(content, '\x1b') {
			t.Errorf("CodeBlock(%q) kept an escape character", s)
		}
	}
	if got := CodeBlock("x", "diff extra`"); !strings.HasPrefix(got, "```diff\n") {
		t.Errorf("info string: %q", got)
	}
	if got := CodeBlock("x", ""); got != "```\nx\n```\n" {
		t.Errorf("empty info: %q", got)
	}
}

func TestTableCellKeepsTheRow(t *testing.T) {
	for _, s := range hostile {
		row := "| " + TableCell(Code(s)) + " | " + TableCell(Escape(s)) + " |"
		doc, _ := parse("| a | b |\n|---|---|\n" + row + "\n")
		tbl := doc.FirstChild()
		if tbl == nil || tbl.Kind() != extast.KindTable {
			t.Fatalf("%q: no table", s)
		}
		rows := 0
		for r := tbl.FirstChild(); r != nil; r = r.NextSibling() {
			if r.Kind() == extast.KindTableRow {
				rows++
				if n := r.ChildCount(); n != 2 {
					t.Errorf("%q: the row has %d cells, want 2", s, n)
				}
			}
		}
		if rows != 1 {
			t.Errorf("%q: %d body rows, want 1", s, rows)
		}
	}
}

func TestEscapeHTMLAndURLs(t *testing.T) {
	if got := EscapeHTML("a</summary>\n\n# x"); got != "a&lt;/summary&gt;  # x" {
		t.Errorf("EscapeHTML = %q", got)
	}
	for u, want := range map[string]string{
		"https://github.com/o/r/actions/runs/1": "https://github.com/o/r/actions/runs/1",
		"javascript:alert(1)":                   "",
		"JAVASCRIPT:alert(1)":                   "",
		"data:text/html,x":                      "",
		"/relative":                             "",
		"https://x.example/a b)(<>\"`[]":        "https://x.example/a%20b%29%28%3C%3E%22%60%5B%5D",
		"https://x.example/\nnext":              "https://x.example/ next",
	} {
		if got := SafeURL(u); got != strings.ReplaceAll(want, " ", "%20") {
			t.Errorf("SafeURL(%q) = %q, want %q", u, got, want)
		}
	}
	if got := Link("run *1*", "javascript:x"); got != `run \*1\*` {
		t.Errorf("Link with a bad URL = %q", got)
	}
	if got := Link("run", "https://x.example/r"); got != "[run](https://x.example/r)" {
		t.Errorf("Link = %q", got)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if strings.ContainsAny(got, "\n\r<>") {
			t.Fatalf("Escape(%q) = %q", s, got)
		}
		_ = paragraphText(t, s, toHTML(t, "a "+got+" b"), false)
		if OneLine(s) != "" {
			_ = paragraphText(t, s, toHTML(t, "a "+Code(s)+" b"), true)
		}
	})
}
