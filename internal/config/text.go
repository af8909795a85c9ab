package config

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// The text of an environment file: what is refused before YAML sees it,
// and what is refused in a value, each at its line.

// encodingProblem finds the first byte that makes data not UTF-8 text (an
// invalid sequence, a NUL or another control character YAML refuses) and
// says where: yaml.v3 reports these at line 1 whatever their line. A file
// starting with a UTF-16 or UTF-32 byte-order mark is said to be one.
func encodingProblem(file string, data []byte) *Problem {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}),
		bytes.HasPrefix(data, []byte{0x00, 0x00, 0xFE, 0xFF}):
		return &Problem{File: file, Line: 1, Message: "the file is UTF-16 or UTF-32 (it starts with a byte-order mark); save the file as UTF-8"}
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &Problem{File: file, Line: line, Message: fmt.Sprintf("byte 0x%02X at column %d is not UTF-8 text; save the file as UTF-8", data[i], col)}
		case r == 0:
			return &Problem{File: file, Line: line, Message: fmt.Sprintf("a NUL byte at column %d; the file is not text (save the file as UTF-8)", col)}
		case r == '\n':
			line, col = line+1, 0
		case r != '\t' && r != '\r' && r < 0x20, r == 0x7F:
			return &Problem{File: file, Line: line, Message: fmt.Sprintf("control character U+%04X at column %d; YAML allows none (save the file as UTF-8 text)", r, col)}
		}
		i += size
		col++
	}
	return nil
}

// lineCount is how many lines data has: a last line without a final
// newline counts; an empty file has one.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) == 0 || data[len(data)-1] != '\n' {
		n++
	}
	return max(n, 1)
}

// invisibleRune returns the first character of s that shows as nothing (or
// as a plain space) but makes s a different string: zero-width and format
// characters (U+200B, U+200D, U+FEFF, bidirectional controls...), other
// controls, spaces other than U+0020 (U+00A0...), line and paragraph
// separators, variation selectors, and the Hangul and Braille blanks. In a
// name (a work pool, an image, a tag) one of these makes a look-alike of
// another name.
func invisibleRune(s string) (r rune, index int, ok bool) {
	i := 0
	for _, c := range s {
		if isInvisible(c) {
			return c, i, true
		}
		i++
	}
	return 0, 0, false
}

func isInvisible(r rune) bool {
	switch {
	case r == ' ':
		return false
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp, unicode.Zs):
		return true
	case unicode.Is(unicode.Variation_Selector, r), r == 0x034F: // combining grapheme joiner
		return true
	case r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, r == 0x2800: // Hangul fillers, Braille blank
		return true
	}
	return false
}

// runeName names the invisible characters people meet, else gives U+XXXX.
func runeName(r rune) string {
	names := map[rune]string{
		0x00A0: "NO-BREAK SPACE", 0x00AD: "SOFT HYPHEN", 0x200B: "ZERO WIDTH SPACE", 0x200C: "ZERO WIDTH NON-JOINER",
		0x200D: "ZERO WIDTH JOINER", 0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK", 0x2060: "WORD JOINER",
		0xFEFF: "ZERO WIDTH NO-BREAK SPACE", 0x202E: "RIGHT-TO-LEFT OVERRIDE", 0x3164: "HANGUL FILLER",
	}
	if n, ok := names[r]; ok {
		return fmt.Sprintf("U+%04X %s", r, n)
	}
	return fmt.Sprintf("U+%04X", r)
}

// shorten cuts s for a message to at most n runes, ending with "…".
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
