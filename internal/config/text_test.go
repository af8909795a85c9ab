package config

import (
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

// TestTextProblemsAtTheirLine is issue 11 item 18: every problem with the
// file's text is reported at its own line: a tab in the indentation, a byte
// that is not UTF-8, a NUL, an error at the end of a file without a final
// newline; a huge key is named, not echoed whole; an invisible character in
// a name is refused.
func TestTextProblemsAtTheirLine(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(configtest.Environment, "\n"), "\n")
	with := func(n int, l string) string {
		ls := append([]string(nil), lines...)
		ls[n-1] = l
		return strings.Join(ls, "\n") + "\n"
	}
	noFinalNewline := strings.TrimSuffix(configtest.Environment, "\n") + "\nprotect: ["
	cases := []struct {
		name, file string
		want       want
	}{
		{"tab indentation on line 12", with(12, "\tcpu: 512"), want{12, "", "found a tab character that violates indentation"}},
		{"tab after spaces on line 12", with(12, "  \tcpu: 512"), want{12, "", "tab character"}},
		{"NUL byte on line 19", with(19, "  mode: mana\x00ged"), want{19, "", "a NUL byte at column 13; the file is not text (save the file as UTF-8)"}},
		{"Latin-1 byte on line 19", with(19, "  mode: caf\xe9"), want{19, "", "byte 0xE9 at column 12 is not UTF-8 text; save the file as UTF-8"}},
		{"a control character", with(4, "  region: us-east-1\x1b[31m"), want{4, "", "control character U+001B at column 20"}},
		{"UTF-16", "\xff\xfen\x00a\x00m\x00e\x00", want{1, "", "UTF-16 or UTF-32"}},
		{"error at the end without a final newline", noFinalNewline, want{20, "", "invalid YAML"}},
		{"zero-width space in the work pool", with(9, "  work_pool: demo\u200b-pool"), want{9, "prefect.work_pool", "invisible character (U+200B ZERO WIDTH SPACE) at character 5"}},
		{"no-break space in the image", with(11, "  image: prefecthq/prefect-aws:latest\u00a0"), want{11, "worker.image", "U+00A0 NO-BREAK SPACE"}},
		{"right-to-left override in a tag", with(17, "  team: da\u202eta"), want{17, "tags.team", "U+202E RIGHT-TO-LEFT OVERRIDE"}},
		{"zero-width joiner in the name", with(1, "name: de\u200dmo"), want{1, "name", "U+200D ZERO WIDTH JOINER"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "env.yaml", c.file)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			got := problemsOf(t, err)
			if n := lineCount([]byte(c.file)); got[0].Line > n {
				t.Errorf("line %d is past the file's %d lines", got[0].Line, n)
			}
			matchProblems(t, path, got[:1], []want{c.want})
		})
	}

	// A huge key is named by its start, not echoed whole: a plain one (YAML
	// allows 1024 characters) and an explicit one ("? key"), of any length.
	for _, key := range []string{strings.Repeat("k", 1000) + ": 1\n", "? " + strings.Repeat("k", 200_000) + "\n: 1\n"} {
		path := writeFile(t, t.TempDir(), "env.yaml", configtest.Environment+key)
		_, err := Load(path)
		if err == nil || len(err.Error()) > 1000 || !strings.Contains(err.Error(), path+":20: kkkk") || !strings.Contains(err.Error(), "…: unknown key") {
			t.Errorf("err = %.300q… (%d bytes)", err, len(err.Error()))
		}
	}
	// Environment variable values are the user's text.
	if _, err := Load(writeFile(t, t.TempDir(), "env.yaml", with(13, "  env: {GREETING: \"hello\u00a0world\"}"))); err != nil {
		t.Errorf("an env value with a no-break space was refused: %v", err)
	}
}
