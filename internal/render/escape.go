package render

import (
	"html"
	"strings"
	"unicode"
)

// This file is how an untrusted string (a file or branch name from the pull
// request, a value from the environment file, a message from AWS or Prefect)
// goes into GitHub markdown. Each function is for one place in a document;
// whatever the string holds, the result renders as that string's text there
// and nothing else: no HTML, no link or image, no heading or list, no
// @-mention or #-reference, no math, no end of the enclosing block (issue 11
// item 4; GitHub flavored markdown, https://github.github.com/gfm/).
//
// Every function makes the string one line first (OneLine), except
// CodeBlock, whose content may span lines.

// OneLine makes a string safe for a single line: line breaks and tabs become
// spaces and other control characters (terminal escapes included) are
// dropped, so nothing can fake a diff line, break a markdown block, inject a
// workflow command on a line of its own, or recolour a terminal.
func OneLine(s string) string {
	if !strings.ContainsFunc(s, isControlOrSeparator) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == '\u2028' || r == '\u2029' || r == '\u0085':
			b.WriteByte(' ')
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControlOrSeparator(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// zeroWidthSpace breaks what GitHub would otherwise link: "@name" (a
// mention, which notifies the person or team) and "#123" (a reference,
// which adds a cross-reference to that timeline). GitHub links
// these in text after markdown is parsed, so a backslash does not stop them.
const zeroWidthSpace = "\u200b"

// Escape renders s as plain text inside markdown prose (a paragraph, a list
// item, an alert, a table cell's text): markdown punctuation is
// backslash-escaped; "<", ">" and "&" become entities, so no value
// opens HTML (<details>, <img>, a comment or a fake marker); "@name" and
// "#123" are broken so nobody is pinged and no issue is referenced, and so
// are URLs, so none becomes a link; "$" is
// escaped so GitHub does not typeset math between two of them
// (https://docs.github.com/en/get-started/writing-on-github/working-with-advanced-formatting/writing-mathematical-expressions).
func Escape(s string) string {
	s = strings.TrimSpace(OneLine(s))
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		next := rune(0)
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\\', '`', '*', '_', '[', ']', '|', '~', '$':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '@':
			b.WriteRune(r)
			if unicode.IsLetter(next) || unicode.IsDigit(next) {
				b.WriteString(zeroWidthSpace)
			}
		case '#':
			if i == 0 {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
			if unicode.IsDigit(next) {
				b.WriteString(zeroWidthSpace)
			}
		case '-', '+', '=':
			// At the start of a line these begin a list or underline a
			// heading.
			if i == 0 {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case '.', ')':
			// "1." or "1)" at the start begins an ordered list.
			if i > 0 && allDigits(rs[:i]) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return breakAutolinks(b.String())
}

// breakAutolinks stops GFM's extended autolinks (https://github.github.com/gfm/#autolinks-extension-)
// from turning a URL in an untrusted string into a link a reader might
// follow: GitHub links "www." and "scheme://" in plain text.
func breakAutolinks(s string) string {
	if !strings.Contains(s, "://") && !strings.Contains(strings.ToLower(s), "www.") {
		return s
	}
	s = strings.ReplaceAll(s, "://", ":/"+zeroWidthSpace+"/")
	for _, w := range []string{"www.", "WWW.", "Www."} {
		s = strings.ReplaceAll(s, w, w[:3]+zeroWidthSpace+".")
	}
	return s
}

func allDigits(rs []rune) bool {
	for _, r := range rs {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Code renders s as an inline code span, which shows every character
// literally (no emphasis, links, HTML, mentions or references). The
// delimiter is longer than any run of backticks in s, and a space pads a
// value that starts or ends with a backtick or a space (GFM §6.1, code
// spans). Inside a table cell, wrap the result in TableCell.
func Code(s string) string {
	s = OneLine(s)
	if s == "" {
		return "``"
	}
	delim := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || s[0] == ' ' || s[len(s)-1] == ' ' {
		return delim + " " + s + " " + delim
	}
	return delim + s + delim
}

// CodeBlock renders s, which may span lines, as a fenced code block ending
// in a newline, with info (e.g. "diff", "text") after the opening fence. The
// fence is longer than any run of backticks at the start of a line of s, so
// nothing in s can close the block early (GFM §4.5); control characters
// other than line breaks are dropped. The block must start at the beginning
// of a line.
func CodeBlock(s, info string) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n"), "\n")
	for i, l := range lines {
		lines[i] = OneLine(l)
	}
	fence := Fence(lines)
	// The info string ends at the first space; a backtick in it would be
	// refused by GFM for a backtick fence.
	info, _, _ = strings.Cut(strings.TrimSpace(OneLine(info)), " ")
	info = strings.ReplaceAll(info, "`", "")
	return fence + info + "\n" + strings.Join(lines, "\n") + "\n" + fence + "\n"
}

// Fence returns a code fence longer than any run of backticks in lines.
func Fence(lines []string) string {
	longest := 0
	for _, l := range lines {
		longest = max(longest, longestRun(l, '`'))
	}
	return strings.Repeat("`", max(3, longest+1))
}

func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// EscapeHTML renders s as text inside an HTML element of the document, such
// as <summary>: one line (a blank line would end GitHub's HTML block and let
// markdown back in), with "<", ">", "&", and quotes as entities.
func EscapeHTML(s string) string {
	return html.EscapeString(strings.TrimSpace(OneLine(s)))
}

// TableCell makes a rendered fragment (from Escape or Code) safe inside a
// GFM table cell, where "|" ends the cell even inside a code span (GFM §4.10).
func TableCell(fragment string) string {
	return strings.ReplaceAll(fragment, "|", `\|`)
}

// SafeURL returns u as a markdown link destination when it is an http or
// https URL, percent-encoding what would end the destination early; for
// anything else (javascript:, data:, a relative path) it returns "", so a
// tampered input cannot make a link that runs code.
func SafeURL(u string) string {
	u = strings.TrimSpace(OneLine(u))
	lower := strings.ToLower(u)
	if !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") {
		return ""
	}
	r := strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", `"`, "%22", "`", "%60", "\\", "%5C", "[", "%5B", "]", "%5D")
	return r.Replace(u)
}

// Link renders a markdown link with text escaped like Escape; when u is not
// a safe URL (SafeURL), the text alone.
func Link(text, u string) string {
	if s := SafeURL(u); s != "" {
		return "[" + Escape(text) + "](" + s + ")"
	}
	return Escape(text)
}
