package iam

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/deploybot/deploybot/internal/iampolicy"
	"github.com/deploybot/deploybot/internal/resource"
)

// PolicyDocument is an IAM policy whose resources may be other resources'
// outputs (the execution role's statement names the secret's ARN), or a
// document given whole as JSON (Raw: the flow-run task role's policy from
// the environment file).
type PolicyDocument struct {
	Statements []PolicyStatement
	Raw        string
}

// PolicyStatement is one IAM statement.
type PolicyStatement struct {
	Sid       string
	Effect    string
	Principal map[string][]string // e.g. {"Service": ["ecs-tasks.amazonaws.com"]}
	Actions   []string
	Resources []resource.Ref
	// Condition is operator → key → values.
	Condition map[string]map[string][]string
}

// JSON renders the document with its refs resolved (plan.Unknown where a
// resource does not exist yet). The result is valid IAM policy JSON;
// CanonicalPolicy makes it comparable with what IAM returns.
func (d PolicyDocument) JSON(refs resource.Refs) string {
	if d.Raw != "" {
		return d.Raw
	}
	type stmt struct {
		Sid       string                         `json:"Sid,omitempty"`
		Effect    string                         `json:"Effect"`
		Principal map[string][]string            `json:"Principal,omitempty"`
		Action    []string                       `json:"Action"`
		Resource  []string                       `json:"Resource,omitempty"`
		Condition map[string]map[string][]string `json:"Condition,omitempty"`
	}
	doc := struct {
		Version   string `json:"Version"`
		Statement []stmt `json:"Statement"`
	}{Version: "2012-10-17"}
	for _, s := range d.Statements {
		out := stmt{Sid: s.Sid, Effect: s.Effect, Principal: s.Principal, Action: s.Actions, Condition: s.Condition}
		for _, r := range s.Resources {
			out.Resource = append(out.Resource, r.Resolve(refs))
		}
		doc.Statement = append(doc.Statement, out)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("iam: marshal policy: %v", err)) // only strings and maps: cannot fail
	}
	return string(b)
}

// CanonicalPolicy is the comparable form of a policy document: URL-decoded
// (IAM returns documents URL-encoded), single values and lists alike, every
// list sorted, statements in a fixed order, compact JSON. A document that
// does not parse is compared as it is.
func CanonicalPolicy(doc string) string {
	if strings.HasPrefix(strings.TrimSpace(doc), "%") {
		if d, err := url.QueryUnescape(doc); err == nil {
			doc = d
		}
	}
	if !modelled(doc) {
		return canonicalAny(doc)
	}
	d, err := iampolicy.Parse(doc)
	if err != nil {
		return doc
	}
	if d.Version == "" {
		d.Version = iampolicy.Version2012
	}
	keyed := make([]struct {
		key string
		st  iampolicy.Statement
	}, len(d.Statement))
	for i, st := range d.Statement {
		sort.Strings(st.Action)
		sort.Strings(st.Resource)
		for _, v := range st.Principal {
			sort.Strings(v)
		}
		for _, m := range st.Condition {
			for _, v := range m {
				sort.Strings(v)
			}
		}
		b, _ := json.Marshal(st)
		keyed[i].key, keyed[i].st = string(b), st
	}
	sort.Slice(keyed, func(i, j int) bool { return keyed[i].key < keyed[j].key })
	for i := range keyed {
		d.Statement[i] = keyed[i].st
	}
	return d.JSON()
}

// modelledKeys are the keys iampolicy.Document keeps; a document with any
// other (NotAction, NotResource, Id, a condition that is not a map of
// lists) is canonicalised without it, so that nothing in it is dropped.
var (
	modelledTop       = map[string]bool{"Version": true, "Statement": true}
	modelledStatement = map[string]bool{"Sid": true, "Effect": true, "Principal": true, "Action": true, "Resource": true, "Condition": true}
)

// modelled says whether doc holds only what iampolicy.Document keeps.
func modelled(doc string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(doc), &top) != nil {
		return true // CanonicalPolicy keeps a broken document as it is
	}
	for k := range top {
		if !modelledTop[k] {
			return false
		}
	}
	var stmts []map[string]json.RawMessage
	if json.Unmarshal(top["Statement"], &stmts) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(top["Statement"], &one) != nil {
			return false
		}
		stmts = append(stmts, one)
	}
	for _, st := range stmts {
		for k := range st {
			if !modelledStatement[k] {
				return false
			}
		}
		if c, ok := st["Condition"]; ok {
			var m map[string]map[string]iampolicy.StringList
			if json.Unmarshal(c, &m) != nil {
				return false
			}
		}
	}
	return true
}

// canonicalAny canonicalises any policy document as IAM compares it: a
// single value and a list of one alike, lists sorted, statements in a fixed
// order, keys sorted, compact. Numbers keep their text.
func canonicalAny(doc string) string {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return doc
	}
	if _, ok := v["Version"]; !ok {
		v["Version"] = iampolicy.Version2012
	}
	var stmts []any
	switch s := v["Statement"].(type) {
	case []any:
		stmts = s
	case map[string]any:
		stmts = []any{s}
	}
	keyed := make([]string, 0, len(stmts))
	for _, raw := range stmts {
		st, ok := raw.(map[string]any)
		if ok {
			for _, k := range []string{"Action", "NotAction", "Resource", "NotResource"} {
				if x, has := st[k]; has {
					st[k] = sortedList(x)
				}
			}
			for _, k := range []string{"Principal", "NotPrincipal"} {
				if m, isMap := st[k].(map[string]any); isMap {
					for pk, pv := range m {
						m[pk] = sortedList(pv)
					}
				}
			}
			if c, isMap := st["Condition"].(map[string]any); isMap {
				for _, ops := range c {
					if m, isMap := ops.(map[string]any); isMap {
						for ck, cv := range m {
							m[ck] = sortedList(cv)
						}
					}
				}
			}
		}
		b, _ := json.Marshal(raw)
		keyed = append(keyed, string(b))
	}
	sort.Strings(keyed)
	out := make([]any, len(keyed))
	for i, k := range keyed {
		out[i] = json.RawMessage(k)
	}
	v["Statement"] = out
	b, err := json.Marshal(v)
	if err != nil {
		return doc
	}
	return string(b)
}

// sortedList is a JSON string or list of strings as a sorted list (other
// values as they are).
func sortedList(v any) any {
	switch x := v.(type) {
	case string:
		return []any{x}
	case []any:
		strs := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return v
			}
			strs = append(strs, s)
		}
		sort.Strings(strs)
		out := make([]any, len(strs))
		for i, s := range strs {
			out[i] = s
		}
		return out
	}
	return v
}
