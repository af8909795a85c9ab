package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a YAML node tree into an Environment by the struct's yaml
// tags, instead of yaml.Unmarshal, so that every problem carries its line,
// all problems are collected rather than the first, and types are strict
// (no "512" for 512, no yes for true).
type decoder struct {
	file  string
	probs []Problem
	// lines: dotted path -> line of every key present (also null ones).
	lines map[string]int
	// set: paths that had a usable non-null value; defaults fill the rest.
	set map[string]bool
	// bad: paths whose value could not be decoded; validation skips them so
	// that one mistake is reported once.
	bad map[string]bool
	// textLines: for a PolicyJSON given as a literal block scalar, the line
	// of the file its text's first line is on, so that a JSON syntax error
	// inside it is reported at its own line.
	textLines map[string]int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}, set: map[string]bool{}, bad: map[string]bool{}, textLines: map[string]int{}}
}

func (d *decoder) fail(line int, field, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) failBad(n *yaml.Node, field, format string, args ...any) {
	d.bad[field] = true
	d.fail(n.Line, field, format, args...)
}

var (
	durationType   = reflect.TypeOf(time.Duration(0))
	policyJSONType = reflect.TypeOf(PolicyJSON(""))
)

// yamlFields returns the yaml keys of struct type t in declaration order
// with their field indexes.
func yamlFields(t reflect.Type) (keys []string, index map[string]int) {
	index = map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		keys = append(keys, key)
		index[key] = i
	}
	return keys, index
}

// childPath joins a struct field or map key onto path. Map keys that are not
// plain words are quoted so the path stays unambiguous.
func childPath(path, key string) string {
	if !plainKey.MatchString(key) {
		key = "[" + strconv.Quote(key) + "]"
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func resolveAlias(n *yaml.Node) *yaml.Node {
	// yaml.v3 refuses recursive anchors, but bound the walk anyway.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("a value tagged %s", n.ShortTag())
	}
	return "an unexpected YAML node"
}

// clip shortens a user's value for a message, on a rune boundary.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:37]) + "..."
	}
	return s
}

// mapping decodes mapping node n into the struct v (addressable).
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.failBad(n, path, "must be a mapping of %s, not %s", strings.Join(mustKeys(v.Type()), ", "), describe(n))
		return
	}
	keys, index := yamlFields(v.Type())
	d.entries(n, path, true, func(kn, vn *yaml.Node, field string) {
		fi, known := index[kn.Value]
		if !known {
			d.fail(kn.Line, field, "unknown key%s (allowed: %s)", suggest(kn.Value, keys), strings.Join(keys, ", "))
			return
		}
		d.lines[field] = kn.Line
		d.value(vn, field, kn.Line, v.Field(fi))
	})
}

// entries calls f with each key and value of mapping n and the key's path,
// in order, after reporting and skipping what cannot be a key: a merge key
// (<<), a key that is not a scalar (with plain, one that is not a string;
// without, a null one) and a duplicate.
func (d *decoder) entries(n *yaml.Node, path string, plain bool, f func(kn, vn *yaml.Node, field string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if kn == nil || vn == nil {
			continue
		}
		if kn.ShortTag() == "!!merge" {
			d.fail(kn.Line, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		switch {
		case plain && (kn.Kind != yaml.ScalarNode || kn.ShortTag() != "!!str"):
			d.fail(kn.Line, path, "keys must be plain names, not %s", describe(kn))
			continue
		case !plain && (kn.Kind != yaml.ScalarNode || isNull(kn)):
			d.fail(kn.Line, path, "keys must be names, not %s", describe(kn))
			continue
		}
		field := childPath(path, kn.Value)
		if first, dup := seen[kn.Value]; dup {
			d.failBad(kn, field, "duplicate key (first defined at line %d)", first)
			continue
		}
		seen[kn.Value] = kn.Line
		f(kn, vn, field)
	}
}

func mustKeys(t reflect.Type) []string {
	keys, _ := yamlFields(t)
	return keys
}

// value decodes n into the field v at path. keyLine is the line of the key,
// where problems with the value are reported.
func (d *decoder) value(n *yaml.Node, path string, keyLine int, v reflect.Value) {
	if isNull(n) {
		// null means "not set": the default applies, or a required field
		// is reported missing.
		return
	}
	at := func(format string, args ...any) {
		d.bad[path] = true
		d.fail(keyLine, path, format, args...)
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			at("must be a duration with a unit, like 5m or 90s, not %s", describe(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			at("%q is not a duration; write it like 5m, 90s or 1h30m", clip(n.Value))
			return
		}
		v.SetInt(int64(dur))
	case t == policyJSONType:
		if !d.policyJSON(n, path, keyLine, v) {
			return
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
				why := ""
				if path == "aws.account_id" || strings.HasPrefix(n.Value, "0") {
					why = ": YAML reads unquoted digits as a number, which drops leading zeros"
				}
				at("must be a string, not %s; quote it (%q)%s", describe(n), n.Value, why)
				return
			}
			at("must be a string, not %s", describe(n))
			return
		}
		if d.invisible(n.Value, path, keyLine) {
			return
		}
		v.SetString(n.Value)
	case t.Kind() == reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			at("must be a whole number, not %s", describe(n))
			return
		}
		var i int
		if err := n.Decode(&i); err != nil {
			at("%s is out of range", clip(n.Value))
			return
		}
		v.SetInt(int64(i))
	case t.Kind() == reflect.Bool:
		if !d.boolValue(n, path, keyLine, v) {
			return
		}
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		var b bool
		if !d.boolValue(n, path, keyLine, reflect.ValueOf(&b).Elem()) {
			return
		}
		v.Set(reflect.ValueOf(&b))
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at("must be a mapping of %s, not %s", strings.Join(mustKeys(t.Elem()), ", "), describe(n))
			return
		}
		p := reflect.New(t.Elem())
		d.mapping(n, path, p.Elem())
		v.Set(p)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at("must be a mapping of %s, not %s", strings.Join(mustKeys(t), ", "), describe(n))
			return
		}
		d.mapping(n, path, v)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		d.stringMap(n, path, keyLine, v)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		d.stringList(n, path, keyLine, v)
	default:
		// Only reachable if types.go gains a field of a new kind.
		at("cannot decode into %s", t)
		return
	}
	d.set[path] = true
}

// policyJSON decodes an IAM policy document given as a string of JSON or
// as a YAML mapping (turned into JSON); validation parses it.
func (d *decoder) policyJSON(n *yaml.Node, path string, keyLine int, v reflect.Value) bool {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		if n.Style&yaml.LiteralStyle != 0 {
			// A literal block's text starts on the line after its
			// indicator and keeps its line breaks.
			d.textLines[path] = n.Line + 1
		} else if n.Style&(yaml.FoldedStyle) == 0 && !strings.Contains(n.Value, "\n") {
			d.textLines[path] = n.Line
		}
		v.SetString(n.Value)
		return true
	case n.Kind == yaml.MappingNode:
		doc, err := jsonValue(n, 0)
		if err != nil {
			d.failBad(n, path, "cannot be read as a policy document: %v", err)
			return false
		}
		b, err := json.Marshal(doc)
		if err != nil {
			d.bad[path] = true
			d.fail(keyLine, path, "cannot be written as JSON: %v", err)
			return false
		}
		v.SetString(string(b))
		return true
	}
	d.bad[path] = true
	d.fail(keyLine, path, "must be an IAM policy document: a mapping with Version and Statement, or a string holding its JSON; not %s", describe(n))
	return false
}

// jsonValue is a YAML node as the JSON value it spells. Scalars other than
// numbers, booleans and null are strings as written, so that a policy's
// Version: 2012-10-17 stays the string IAM wants (YAML would read a date).
func jsonValue(n *yaml.Node, depth int) (any, error) {
	n = resolveAlias(n)
	if n == nil || depth > 32 {
		return nil, fmt.Errorf("nested too deeply")
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolveAlias(n.Content[i])
			if k == nil || k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys must be names", n.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, clip(k.Value))
			}
			v, err := jsonValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := jsonValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, err
			}
			return b, nil
		case "!!int", "!!float":
			if json.Valid([]byte(n.Value)) {
				return json.Number(n.Value), nil
			}
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: not a JSON value", n.Line)
}

func (d *decoder) boolValue(n *yaml.Node, path string, keyLine int, v reflect.Value) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.bad[path] = true
		d.fail(keyLine, path, "must be true or false, not %s", describe(n))
		return false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.bad[path] = true
		d.fail(keyLine, path, "must be true or false, not %s", describe(n))
		return false
	}
	v.SetBool(b)
	return true
}

// stringMap decodes a mapping of names to scalar values (worker.env, tags).
// Values may be written as numbers or booleans (PORT: 8080): the source text
// is kept verbatim, so nothing is lost the way a number conversion would.
func (d *decoder) stringMap(n *yaml.Node, path string, keyLine int, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.bad[path] = true
		d.fail(keyLine, path, "must be a mapping of names to values, not %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	d.entries(n, path, false, func(kn, vn *yaml.Node, field string) {
		d.lines[field] = kn.Line
		switch {
		case vn.Kind != yaml.ScalarNode:
			d.failBad(kn, field, "must be a single value, not %s", describe(vn))
			return
		case isNull(vn):
			d.failBad(kn, field, `has no value; write "" for an empty one`)
			return
		case d.invisible(kn.Value, field, kn.Line):
			return
		case path != "worker.env" && d.invisible(vn.Value, field, kn.Line):
			// An environment variable's value is the user's text; a tag's
			// is a name AWS refuses invisible characters in anyway.
			return
		}
		d.set[field] = true
		m.SetMapIndex(reflect.ValueOf(kn.Value), reflect.ValueOf(vn.Value))
	})
	v.Set(m)
}

func (d *decoder) stringList(n *yaml.Node, path string, keyLine int, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.bad[path] = true
		d.fail(keyLine, path, "must be a list of strings, not %s", describe(n))
		return
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolveAlias(item)
		if item == nil {
			continue
		}
		field := fmt.Sprintf("%s[%d]", path, i)
		d.lines[field] = item.Line
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			d.failBad(item, field, "must be a string, not %s", describe(item))
			out = append(out, "")
			continue
		}
		if d.invisible(item.Value, field, item.Line) {
			out = append(out, "")
			continue
		}
		d.set[field] = true
		out = append(out, item.Value)
	}
	v.Set(reflect.ValueOf(out))
}

// invisible reports a value with an invisible character (invisibleRune) at
// path and says whether it did: in a name it would make a look-alike.
func (d *decoder) invisible(value, path string, line int) bool {
	r, i, ok := invisibleRune(value)
	if !ok {
		return false
	}
	d.bad[path] = true
	d.fail(line, path, "contains an invisible character (%s) at character %d; retype the value without it", runeName(r), i+1)
	return true
}

// suggest returns `; did you mean "x"?` for the allowed key closest to key,
// or "" when none is close.
func suggest(key string, allowed []string) string {
	best, bestDist := "", -1
	for _, a := range allowed {
		dist := editDistance(strings.ToLower(key), a)
		if bestDist < 0 || dist < bestDist {
			best, bestDist = a, dist
		}
	}
	limit := max(2, len(key)/3)
	if best == "" || bestDist > limit {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// suggestFrom is suggest for a value out of a closed list.
func suggestFrom(value string, allowed []string) string {
	sorted := append([]string(nil), allowed...)
	sort.Strings(sorted)
	return suggest(value, sorted)
}

// editDistance is the Levenshtein distance, with a transposition counted as
// one edit (Damerau, optimal string alignment): "cpus"/"cpu" is 1, and so is
// "regoin"/"region".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Nobody mistypes a key by that much; keep the table small.
		return 1 << 20
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
