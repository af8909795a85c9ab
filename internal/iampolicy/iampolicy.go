// Package iampolicy is IAM policy documents as data, and an evaluator with
// IAM's semantics for the parts deploybot uses: explicit Deny wins, an Allow
// must match action, resource and every condition, otherwise implicit deny.
// deploybot writes policies with it (bootstrap, the task roles) and the
// simulated account evaluates them with it.
package iampolicy

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
)

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement. Principal is used by trust policies only.
type Statement struct {
	Sid       string                           `json:"Sid,omitempty"`
	Effect    string                           `json:"Effect"`
	Principal map[string]StringList            `json:"Principal,omitempty"`
	Action    StringList                       `json:"Action"`
	Resource  StringList                       `json:"Resource,omitempty"`
	Condition map[string]map[string]StringList `json:"Condition,omitempty"`
}

// StringList is a JSON string or list of strings, as IAM accepts both.
type StringList []string

func (s *StringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// MarshalJSON writes a single value as a string, as the console does.
func (s StringList) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]string(s))
}

// Version2012 is the only policy language version deploybot writes.
const Version2012 = "2012-10-17"

// Parse reads a policy document, URL-decoding it first when it came back
// URL-encoded (IAM's GetRole/GetRolePolicy return documents that way).
func Parse(s string) (*Document, error) {
	if strings.HasPrefix(s, "%7B") || strings.HasPrefix(s, "%7b") {
		if d, err := url.QueryUnescape(s); err == nil {
			s = d
		}
	}
	var d Document
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// JSON returns the canonical compact JSON of the document.
func (d *Document) JSON() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// Indented returns the document as people read it.
func (d *Document) Indented() string {
	b, _ := json.MarshalIndent(d, "", "  ")
	return string(b)
}

// Request is one authorization question.
type Request struct {
	Action   string // "ecs:CreateService"
	Resource string // ARN, or "" when the action has no resource-level support ("*")
	// Context holds condition keys known for this request
	// ("iam:PassedToService", "aws:RequestTag/deploybot:environment", ...).
	Context map[string]string
}

// Allows evaluates an identity policy for one request.
func (d *Document) Allows(r Request) bool {
	allowed := false
	for _, s := range d.Statement {
		if !matchAny(s.Action, r.Action, true) {
			continue
		}
		res := r.Resource
		if res == "" {
			res = "*"
		}
		// Trust policies have no Resource: the role itself is the resource.
		if len(s.Resource) > 0 && !matchAny(s.Resource, res, false) {
			continue
		}
		deny := strings.EqualFold(s.Effect, "Deny")
		if !conditionsHold(s.Condition, r.Context, deny) {
			continue
		}
		if deny {
			return false
		}
		if strings.EqualFold(s.Effect, "Allow") {
			allowed = true
		}
	}
	return allowed
}

// conditionsHold: every operator's every key must hold. A key absent from
// the request fails the condition (IAM: a missing key makes StringEquals
// false), unless the operator ends in IfExists. Unknown operators fail an
// Allow (fail closed) and hold for a Deny (fail closed too).
func conditionsHold(cond map[string]map[string]StringList, ctx map[string]string, deny bool) bool {
	for op, kv := range cond {
		ifExists := strings.HasSuffix(op, "IfExists")
		base := strings.TrimSuffix(op, "IfExists")
		for key, want := range kv {
			got, ok := lookup(ctx, key)
			if !ok {
				if ifExists {
					continue
				}
				return false
			}
			var hold bool
			switch base {
			case "StringEquals", "ArnEquals":
				hold = contains(want, got, false)
			case "StringEqualsIgnoreCase":
				hold = contains(want, got, true)
			case "StringLike", "ArnLike":
				hold = matchAny(want, got, false)
			case "StringNotEquals":
				hold = !contains(want, got, false)
			case "StringNotLike":
				hold = !matchAny(want, got, false)
			default:
				return deny
			}
			if !hold {
				return false
			}
		}
	}
	return true
}

func lookup(ctx map[string]string, key string) (string, bool) {
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func contains(list []string, v string, fold bool) bool {
	for _, x := range list {
		if x == v || (fold && strings.EqualFold(x, v)) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, v string, fold bool) bool {
	for _, p := range patterns {
		if Match(p, v, fold) {
			return true
		}
	}
	return false
}

// Match reports whether v matches the IAM pattern p, where * matches any run
// of characters (including '/' and ':') and ? any one character.
func Match(p, v string, fold bool) bool {
	if fold {
		p, v = strings.ToLower(p), strings.ToLower(v)
	}
	// Iterative wildcard matching with backtracking on the last '*'.
	pi, vi, star, mark := 0, 0, -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, vi
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			vi = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Actions returns the sorted set of actions the document allows by name
// (wildcards are returned as written).
func (d *Document) Actions() []string {
	seen := map[string]bool{}
	for _, s := range d.Statement {
		if strings.EqualFold(s.Effect, "Allow") {
			for _, a := range s.Action {
				seen[a] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
