package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/deploybot/deploybot/internal/plan"
)

// formatValue renders a normalised plan value (plan.FieldChange: numbers in
// decimal, lists and maps as canonical JSON) as one or more lines, in the
// form a reviewer reads fastest. The shape of the value decides, not the
// resource kind, so a new kind's values read the same way:
//   - the unknown marker, numbers and booleans bare;
//   - a task-definition ARN as family:revision;
//   - an IAM policy document as one line per statement ("Allow
//     ecs:RunTask on *"), so a changed statement is one - and one + line;
//   - security-group rules ("proto:from-to:source", paths egress and
//     ingress) as "all to 0.0.0.0/0" or "tcp 443 from sg-…";
//   - a JSON list as one line if it fits, else one item per line, so a
//     changed item is one - and one + line;
//   - other JSON compact if it fits, else indented;
//   - anything else as a Go-quoted string, which escapes control
//     characters, so no value can move the cursor or recolour a terminal.
func formatValue(path, v string) []string {
	switch {
	case v == plan.Unknown:
		return []string{v}
	case v == "true" || v == "false" || isNumber(v):
		return []string{v}
	}
	if fr := taskDefinitionRevision(v); fr != "" {
		return []string{fr}
	}
	t := strings.TrimSpace(v)
	if t == "" || (t[0] != '{' && t[0] != '[') || !json.Valid([]byte(t)) {
		return []string{strconv.Quote(v)}
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return []string{strconv.Quote(v)}
	}
	if lines, ok := policyLines(doc); ok {
		return lines
	}
	if list, ok := doc.([]any); ok {
		if rules, ok := ruleLines(path, list); ok {
			return rules
		}
		if len(list) == 0 {
			return []string{"[]"}
		}
		var items []string
		for _, it := range list {
			items = append(items, compactJSON(it))
		}
		one := "[" + strings.Join(items, ", ") + "]"
		if len(one) <= 60 {
			return []string{one}
		}
		return items
	}
	// An object reads best on one (wrapped) line while it is short; a big
	// one is indented, so a change in it is a line of its own.
	if c := compactJSON(doc); len(c) <= 3*textBudget(2) {
		return []string{c}
	}
	var ind bytes.Buffer
	_ = json.Indent(&ind, []byte(compactJSONRaw(doc)), "", "  ")
	return strings.Split(ind.String(), "\n")
}

func isNumber(v string) bool {
	if v == "" || len(v) > 30 {
		return false
	}
	_, err := strconv.ParseFloat(v, 64)
	return err == nil && !strings.ContainsAny(v, "xXpP_nN+") && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

var taskDefARN = regexp.MustCompile(`^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/([A-Za-z0-9_-]+:\d+)$`)

// taskDefinitionRevision returns family:revision for a task-definition
// ARN, the form ECS's console and `aws ecs` commands take.
func taskDefinitionRevision(v string) string {
	if m := taskDefARN.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// compactJSON renders a decoded JSON value on one line, with a space after
// each comma and colon so that the line can be wrapped.
func compactJSON(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	case []any:
		var parts []string
		for _, it := range x {
			parts = append(parts, compactJSON(it))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, strconv.Quote(k)+": "+compactJSON(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func compactJSONRaw(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// policyLines renders an IAM policy document (an object with "Statement")
// as one line per statement, Sid first:
//
//	ReadPrefectAPIKey: Allow secretsmanager:GetSecretValue on arn:aws:…
//	Allow sts:AssumeRole by Service ecs-tasks.amazonaws.com if StringEquals aws:SourceAccount = 1234…
//
// A Version other than 2012-10-17 is shown; the usual one is not.
func policyLines(doc any) ([]string, bool) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, false
	}
	raw, ok := m["Statement"]
	if !ok {
		return nil, false
	}
	var stmts []any
	switch s := raw.(type) {
	case []any:
		stmts = s
	case map[string]any:
		stmts = []any{s}
	default:
		return nil, false
	}
	var out []string
	if v, ok := m["Version"].(string); ok && v != "2012-10-17" {
		out = append(out, "Version "+v)
	}
	for _, s := range stmts {
		st, ok := s.(map[string]any)
		if !ok {
			return nil, false
		}
		out = append(out, statementText(st))
	}
	if len(out) == 0 {
		return []string{"(no statements)"}, true
	}
	return out, true
}

// statementElements are the elements of a policy statement that read as
// words, in the order they are read, after the effect.
var statementElements = []struct {
	key, prefix string
	text        func(any) string
}{
	{"Action", " ", policyList},
	{"NotAction", " everything but ", policyList},
	{"Principal", " by ", principalText},
	{"NotPrincipal", " by anyone but ", principalText},
	{"Resource", " on ", policyList},
	{"NotResource", " on everything but ", policyList},
}

func statementText(st map[string]any) string {
	var b strings.Builder
	if sid, ok := st["Sid"].(string); ok && sid != "" {
		b.WriteString(sid + ": ")
	}
	effect, _ := st["Effect"].(string)
	b.WriteString(effect)
	for _, e := range statementElements {
		if v := e.text(st[e.key]); v != "" {
			b.WriteString(e.prefix + v)
		}
	}
	if c, ok := st["Condition"].(map[string]any); ok && len(c) > 0 {
		b.WriteString(" if " + conditionText(c))
	}
	// Anything else a statement may carry is shown as it is.
	var extra []string
	for _, k := range slices.Sorted(maps.Keys(st)) {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Principal", "NotPrincipal", "Resource", "NotResource", "Condition":
		default:
			extra = append(extra, k+" "+compactJSON(st[k]))
		}
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	}
	return b.String()
}

func policyList(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, it := range x {
			if s, ok := it.(string); ok {
				parts = append(parts, s)
			} else {
				parts = append(parts, compactJSON(it))
			}
		}
		return strings.Join(parts, ", ")
	case nil:
		return ""
	}
	return compactJSON(v)
}

func principalText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+" "+policyList(x[k]))
		}
		return strings.Join(parts, " and ")
	case nil:
		return ""
	}
	return compactJSON(v)
}

func conditionText(c map[string]any) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(c)) {
		keys, ok := c[op].(map[string]any)
		if !ok {
			parts = append(parts, op+" "+compactJSON(c[op]))
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			parts = append(parts, op+" "+k+" = "+policyList(keys[k]))
		}
	}
	return strings.Join(parts, " and ")
}

// ruleLines renders security-group rules, which the kinds normalise as
// "PROTOCOL:FROM-TO:SOURCE" (protocol -1 is all traffic), one per line:
// "all to 0.0.0.0/0", "tcp 443 from 10.0.0.0/16", "udp 1000-2000 from sg-…".
func ruleLines(path string, list []any) ([]string, bool) {
	dir := ""
	switch {
	case strings.HasSuffix(path, "egress"):
		dir = "to"
	case strings.HasSuffix(path, "ingress"):
		dir = "from"
	default:
		return nil, false
	}
	if len(list) == 0 {
		return []string{"none"}, true
	}
	var out []string
	for _, it := range list {
		s, ok := it.(string)
		if !ok {
			return nil, false
		}
		parts := strings.SplitN(s, ":", 3)
		if len(parts) != 3 {
			return nil, false
		}
		from, to, ok := strings.Cut(parts[1], "-")
		if !ok {
			return nil, false
		}
		proto := parts[0]
		ports := " " + from
		if to != from {
			ports += "-" + to
		}
		switch {
		case proto == "-1":
			proto, ports = "all", ""
		case from == "0" && (to == "65535" || to == "0"):
			ports = ""
		case proto == "icmp" || proto == "1":
			proto, ports = "icmp", fmt.Sprintf(" type %s code %s", from, to)
		}
		out = append(out, proto+ports+" "+dir+" "+parts[2])
	}
	return out, true
}

// valueUnit names what one line of a multi-line value is, for "(3
// statements unchanged)".
func valueUnit(v string) string {
	t := strings.TrimSpace(v)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return "line"
	}
	var doc any
	if json.Unmarshal([]byte(t), &doc) != nil {
		return "line"
	}
	if _, ok := policyLines(doc); ok {
		return "statement"
	}
	if _, ok := doc.([]any); ok {
		return "item"
	}
	return "line"
}
