package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Credential-shaped values are built at run time (see internal/fakekey for
// why no literal key lives in the repository).
var (
	prefectKey = "pnu_" + strings.Repeat("Q7x", 12)
	awsSecret  = "wJalr" + strings.Repeat("XUtnF/EMI+K7MDENG", 2)
	pem        = "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n", 3) + "-----END RSA PRIVATE KEY-----\n"
)

func TestValueNeverShowsItself(t *testing.T) {
	v := New(prefectKey)
	type holder struct {
		Key   Value
		Other string
	}
	h := holder{Key: v, Other: "x"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("m", "key", v)
	j, _ := json.Marshal(h)
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", v), "%s": fmt.Sprintf("%s", v), "%q": fmt.Sprintf("%q", v), "%x": fmt.Sprintf("%x", v),
		"%+v struct": fmt.Sprintf("%+v", h), "%#v struct": fmt.Sprintf("%#v", h), "json": string(j), "slog": logged.String(),
	} {
		if strings.Contains(s, prefectKey) || strings.Contains(s, prefectKey[:8]) || !strings.Contains(s, Mark) {
			t.Errorf("%s = %q", name, s)
		}
	}
	if v.Reveal() != prefectKey || v.IsZero() || !New("").IsZero() || New("").String() != "(none)" {
		t.Error("Reveal, IsZero or the zero Value's text is wrong")
	}
}

func TestRedactEveryForm(t *testing.T) {
	var r Redactor
	r.Add(New(prefectKey), New(pem), New("ab")) // "ab" is too short to be taken
	r.AddString(awsSecret, `we"ird\pass<word>`)
	jsonOf := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	cases := map[string]string{
		"plain":       "prefect said " + prefectKey + " is wrong",
		"twice":       prefectKey + prefectKey,
		"json":        jsonOf("key=" + prefectKey + " aws=" + awsSecret),
		"escaped":     jsonOf(`auth we"ird\pass<word> failed`),
		"pem line":    "line: " + strings.Split(pem, "\n")[2],
		"pem whole":   pem,
		"aws in json": `{"SecretAccessKey":"` + awsSecret + `"}`,
	}
	for name, in := range cases {
		got := r.Redact(in)
		for _, s := range []string{prefectKey, awsSecret, "MIIEowIBAAKCAQEAu1SU1Lf", `we"ird`, `we\"ird`, `pass\u003cword`} {
			if strings.Contains(got, s) {
				t.Errorf("%s: %q still holds %.8s…", name, got, s)
			}
		}
		if !strings.Contains(got, Mark) {
			t.Errorf("%s: nothing redacted in %q", name, got)
		}
	}
	if got := r.Redact("abc ab"); got != "abc ab" {
		t.Errorf("a too-short credential was taken: %q", got)
	}
	if got := r.Redact("-----BEGIN RSA PRIVATE KEY-----"); got != "-----BEGIN RSA PRIVATE KEY-----" {
		t.Errorf("PEM armour is public: %q", got)
	}
	var nilR *Redactor
	if nilR.Redact("x") != "x" {
		t.Error("a nil Redactor changes text")
	}
}

// TestCutRedactsFirst is issue 11 item 8: a credential straddling the cut
// must not leave its first half behind.
func TestCutRedactsFirst(t *testing.T) {
	var r Redactor
	r.AddString(prefectKey)
	body := strings.Repeat("x", 290) + prefectKey + " tail"
	got := r.Cut(body, 300)
	if strings.Contains(got, prefectKey[:6]) || len(got) > 300 || !strings.HasSuffix(got, "…") {
		t.Errorf("Cut = %q (%d bytes)", got, len(got))
	}
	// Cut keeps runes whole.
	if got := Cut("ééé", 4); got != "…" && got != "é…" {
		t.Errorf("Cut on runes = %q", got)
	}
	if got := Cut("short", 10); got != "short" {
		t.Errorf("Cut of a short text = %q", got)
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	var r Redactor
	r.AddString(prefectKey)
	base := &typed{msg: "prefect: " + prefectKey}
	err := r.Error(fmt.Errorf("preflight: %w", base))
	var got *typed
	if !errors.As(err, &got) || strings.Contains(err.Error(), prefectKey) {
		t.Errorf("err = %v; As = %v", err, errors.As(err, &got))
	}
	if r.Error(nil) != nil {
		t.Error("nil became an error")
	}
	clean := errors.New("clean")
	if r.Error(clean) != clean {
		t.Error("an error without a credential was wrapped")
	}
}

type typed struct{ msg string }

func (e *typed) Error() string { return e.msg }

// TestWriterSplitWrites: a credential written in pieces, at every split
// point, never reaches the underlying writer, and nothing else is lost.
func TestWriterSplitWrites(t *testing.T) {
	var r Redactor
	r.AddString(prefectKey, awsSecret)
	text := "start " + prefectKey + " middle " + awsSecret + " end: "
	want := "start " + Mark + " middle " + Mark + " end: "
	for cut1 := 0; cut1 <= len(text); cut1 += 3 {
		for cut2 := cut1; cut2 <= len(text); cut2 += 7 {
			var out bytes.Buffer
			w := r.Writer(&out)
			for _, part := range []string{text[:cut1], text[cut1:cut2], text[cut2:]} {
				if n, err := w.Write([]byte(part)); err != nil || n != len(part) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, out.String()); d != "" {
				t.Fatalf("cuts %d,%d (-want +got):\n%s", cut1, cut2, d)
			}
		}
	}
}

// TestWriterDoesNotHoldPrompts: text that cannot start a credential is
// written at once (a question on a terminal must show before the answer).
func TestWriterDoesNotHoldPrompts(t *testing.T) {
	var r Redactor
	r.AddString(prefectKey)
	var out bytes.Buffer
	w := r.Writer(&out)
	fmt.Fprint(w, "Apply these changes? Only 'yes' will be accepted: ")
	if out.String() != "Apply these changes? Only 'yes' will be accepted: " {
		t.Errorf("held back %q", out.String())
	}
	fmt.Fprint(w, "key pnu")
	if out.String() != "Apply these changes? Only 'yes' will be accepted: key " {
		t.Errorf("the start of a credential was not held back: %q", out.String())
	}
	_ = w.Flush()
	if !strings.HasSuffix(out.String(), "key pnu") {
		t.Errorf("Flush lost the held text: %q", out.String())
	}
}

func BenchmarkWriter(b *testing.B) {
	var r Redactor
	r.AddString(prefectKey, awsSecret, strings.Repeat("IQoJb3JpZ2luX2VjEJr", 60), pem)
	line := []byte("  ecs_service.worker: waiting for the deployment to complete… (1m30s)\n")
	w := r.Writer(&bytes.Buffer{})
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = w.Write(line)
	}
}
