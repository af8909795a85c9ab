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
// outputs (the execution role's statement names the secret's ARN).
type PolicyDocument struct {
	Statements []PolicyStatement
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
