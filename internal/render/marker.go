package render

import (
	"net/url"
	"strings"
)

// markerPrefix opens the hidden first line of every deploybot plan comment.
const markerPrefix = "<!-- deploybot:plan "

// MarkerData is what a plan comment's hidden marker carries: which
// environment the comment is for, and which plan (fingerprint) of which
// commits (head and base SHA) was reviewed. The apply on merge compares the
// fingerprint with its own re-plan (docs/design.md, "The three flows").
type MarkerData struct {
	Env         string
	Fingerprint string
	HeadSHA     string
	BaseSHA     string
}

// Marker builds the hidden HTML comment that identifies one environment's
// plan comment on a pull request:
//
//	<!-- deploybot:plan env=NAME fingerprint=F head=SHA base=SHA -->
//
// Comment puts it on the first line, so cutting a long comment can never
// remove it (docs/research/pr-comment-bots.md §5, cdk-diff-action). Values are
// percent-encoded where they contain anything but letters, digits and
// "._:/-", so no value can end the HTML comment or add a field. Empty values
// are left out.
func Marker(env, fingerprint, headSHA, baseSHA string) string {
	var b strings.Builder
	b.WriteString(markerPrefix)
	b.WriteString("env=" + markerEscape(env))
	for _, kv := range [][2]string{{"fingerprint", fingerprint}, {"head", headSHA}, {"base", baseSHA}} {
		if kv[1] != "" {
			b.WriteString(" " + kv[0] + "=" + markerEscape(kv[1]))
		}
	}
	b.WriteString(" -->")
	return b.String()
}

// ParseMarker reads the marker from a comment body. Only the first line is
// looked at: that is where Comment puts it, and it means a marker-shaped
// string quoted inside the plan (a tag value, a note) can never be taken for
// the real one. Unknown fields are ignored, so that a newer deploybot's
// comments stay readable. The env field is required.
func ParseMarker(body string) (MarkerData, bool) {
	first, _, _ := strings.Cut(body, "\n")
	first = strings.TrimSpace(strings.TrimPrefix(first, "\ufeff"))
	if !strings.HasPrefix(first, markerPrefix) || !strings.HasSuffix(first, "-->") {
		return MarkerData{}, false
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(first, markerPrefix), "-->")
	var m MarkerData
	seenEnv := false
	for _, field := range strings.Fields(inner) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return MarkerData{}, false
		}
		switch k {
		case "env":
			m.Env, seenEnv = val, true
		case "fingerprint":
			m.Fingerprint = val
		case "head":
			m.HeadSHA = val
		case "base":
			m.BaseSHA = val
		}
	}
	if !seenEnv || m.Env == "" {
		return MarkerData{}, false
	}
	return m, true
}

func markerEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '/', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
