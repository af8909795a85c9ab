package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// flowRuns checks the flow_runs section: the flow runs' image and Fargate
// size, their log retention and environment, and the flow-run task role's
// policies.
func (c *checker) flowRuns() {
	f := c.e.FlowRuns
	if c.has("flow_runs.image") {
		if msg := imageProblem(f.Image); msg != "" {
			c.fail("flow_runs.image", "%s", msg)
		}
	}
	c.fargateSize("flow_runs", f.CPU, f.Memory)
	c.logRetention("flow_runs.log_retention_days", f.LogRetentionDays)
	c.env("flow_runs.env", f.Env, flowRunEnvReserved)
	c.policyARNs()
	if c.has("flow_runs.task_role_policy") {
		c.policyDocument("flow_runs.task_role_policy", string(f.TaskRolePolicy))
	}
}

// policyARNRE is a managed policy's ARN: AWS's own (account "aws") or one of
// an account, with an optional path
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
var policyARNRE = regexp.MustCompile(`^arn:([^:]*):iam::([^:]*):policy/((?:[\x21-\x7E]+/)?)([\w+=,.@-]{1,128})$`)

// policyARNs checks flow_runs.task_role_policy_arns: managed policy ARNs of
// the environment's partition, AWS's or the environment's account (IAM
// attaches no other account's customer-managed policy to a role), each once,
// at most MaxRolePolicies.
func (c *checker) policyARNs() {
	const path = "flow_runs.task_role_policy_arns"
	arns := c.e.FlowRuns.TaskRolePolicyARNs
	if !c.has(path) {
		return
	}
	if len(arns) > MaxRolePolicies {
		c.fail(path, "has %d policies; IAM attaches at most %d managed policies to a role (10 unless the account's quota was raised)", len(arns), MaxRolePolicies)
	}
	partition := Regions[c.e.AWS.Region]
	account := c.e.AWS.AccountID
	first := map[string]int{}
	for i, arn := range arns {
		item := fmt.Sprintf("%s[%d]", path, i)
		if c.d.bad[item] {
			continue
		}
		m := policyARNRE.FindStringSubmatch(arn)
		switch {
		case m == nil:
			c.fail(item, "%q is not a managed policy ARN like arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess or arn:aws:iam::%s:policy/flows-read-data", clip(arn), exampleAccount(account, accountRE.MatchString(account)))
			continue
		case partition != "" && m[1] != partition:
			c.fail(item, "is in partition %q but region %s is in %s", clip(m[1]), c.e.AWS.Region, partition)
			continue
		case m[2] != "aws" && m[2] != account:
			c.fail(item, "is a policy of account %s; IAM attaches only AWS managed policies (arn:%s:iam::aws:policy/...) and policies of the role's own account (%s)", clip(m[2]), m[1], account)
			continue
		}
		if l, dup := first[arn]; dup {
			c.fail(item, "is listed twice (first at line %d)", l)
			continue
		}
		first[arn] = c.line(item)
	}
}

// policyDocument checks an identity policy document the way IAM's
// PutRolePolicy would refuse it, before anything reaches AWS: JSON, a
// Version (2012-10-17; 2008-10-17 lacks policy variables), a Statement of
// statements, each with Effect Allow or Deny, an Action or NotAction, a
// Resource or NotResource, no Principal (an identity policy names none),
// actions written service:Action, and the size IAM allows
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html).
func (c *checker) policyDocument(path, doc string) {
	at := func(line int, format string, args ...any) {
		c.d.bad[path] = true
		c.d.fail(line, path, format, args...)
	}
	keyLine := c.line(path)
	if strings.TrimSpace(doc) == "" {
		at(keyLine, "is empty; leave it out for no inline policy, or give a policy document with Version and Statement")
		return
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		at(c.jsonErrorLine(path, doc, err), "is not valid JSON: %s", jsonProblem(doc, err))
		return
	}
	if dec.More() {
		at(keyLine, "has more after the policy document's closing brace; give one JSON object")
		return
	}
	top, ok := raw.(map[string]any)
	if !ok {
		at(keyLine, "must be a JSON object with Version and Statement")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "Version" && k != "Statement" && k != "Id" {
			at(keyLine, "has the key %q; a policy document has Version, Id and Statement", clip(k))
			return
		}
	}
	switch v, ok := top["Version"].(string); {
	case !ok:
		at(keyLine, `has no Version; write "Version": "2012-10-17" (without it IAM uses the 2008 language, which has no policy variables)`)
		return
	case v != "2012-10-17" && v != "2008-10-17":
		at(keyLine, "Version %q is not a policy language version; use 2012-10-17", clip(v))
		return
	}
	var stmts []any
	switch s := top["Statement"].(type) {
	case nil:
		at(keyLine, "has no Statement")
		return
	case map[string]any:
		stmts = []any{s}
	case []any:
		stmts = s
	default:
		at(keyLine, "Statement must be a statement or a list of statements")
		return
	}
	if len(stmts) == 0 {
		at(keyLine, "Statement is empty; a policy needs at least one statement")
		return
	}
	for i, raw := range stmts {
		if msg := statementProblem(raw); msg != "" {
			at(keyLine, "Statement[%d]: %s", i, msg)
			return
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(doc)); err == nil {
		size := len(strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, compact.String()))
		if size > MaxInlinePolicySize {
			at(keyLine, "is %d characters without whitespace; IAM allows a role's inline policies %d together: attach a managed policy (flow_runs.task_role_policy_arns) instead", size, MaxInlinePolicySize)
		}
	}
}

var iamActionRE = regexp.MustCompile(`^(?:\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$`)

// statementProblem says what is wrong with one statement, or "".
func statementProblem(raw any) string {
	s, ok := raw.(map[string]any)
	if !ok {
		return "must be an object with Effect, Action and Resource"
	}
	known := map[string]bool{"Sid": true, "Effect": true, "Action": true, "NotAction": true,
		"Resource": true, "NotResource": true, "Condition": true}
	for _, k := range slices.Sorted(maps.Keys(s)) {
		switch {
		case k == "Principal" || k == "NotPrincipal":
			return "has " + k + "; a role's own policy names no principal (it applies to the role), only resource and trust policies do"
		case !known[k]:
			return fmt.Sprintf("has the key %q; a statement has Sid, Effect, Action or NotAction, Resource or NotResource, and Condition", clip(k))
		}
	}
	if e, _ := s["Effect"].(string); e != "Allow" && e != "Deny" {
		return `Effect must be "Allow" or "Deny"`
	}
	_, hasA := s["Action"]
	_, hasNA := s["NotAction"]
	switch {
	case hasA == hasNA:
		return "needs exactly one of Action and NotAction"
	}
	actions := s["Action"]
	if hasNA {
		actions = s["NotAction"]
	}
	list, err := stringsOf(actions)
	if err != nil {
		return "Action: " + err.Error()
	}
	for _, a := range list {
		if !iamActionRE.MatchString(a) {
			return fmt.Sprintf("action %q is not written service:Action (like s3:GetObject or s3:Get*)", clip(a))
		}
	}
	_, hasR := s["Resource"]
	_, hasNR := s["NotResource"]
	if hasR == hasNR {
		return "needs exactly one of Resource and NotResource"
	}
	res := s["Resource"]
	if hasNR {
		res = s["NotResource"]
	}
	if _, err := stringsOf(res); err != nil {
		return "Resource: " + err.Error()
	}
	if cond, ok := s["Condition"]; ok {
		if _, isMap := cond.(map[string]any); !isMap {
			return "Condition must be an object of operators to keys and values"
		}
	}
	return ""
}

// stringsOf reads a string or a non-empty list of strings.
func stringsOf(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		if len(x) == 0 {
			return nil, errors.New("is an empty list")
		}
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("must be a string or a list of strings")
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, errors.New("must be a string or a list of strings")
}

// jsonErrorLine is the line of the file a JSON error in path's text is on:
// its own line when the text came from a block or one-line scalar whose
// lines are the file's, else the key's.
func (c *checker) jsonErrorLine(path, doc string, err error) int {
	start, ok := c.d.textLines[path]
	if !ok {
		return c.line(path)
	}
	off := jsonOffset(doc, err)
	if off < 0 {
		return c.line(path)
	}
	off = min(off, len(strings.TrimRight(doc, " \t\r\n")))
	return start + strings.Count(doc[:off], "\n")
}

// jsonOffset is the byte offset a JSON decoding error points at, or -1.
func jsonOffset(doc string, err error) int {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// The offset is just past the byte that failed.
		return max(int(se.Offset)-1, 0)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return int(te.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return len(doc)
	}
	return -1
}

// jsonProblem words a JSON error with what follows the place it points at.
func jsonProblem(doc string, err error) string {
	off := jsonOffset(doc, err)
	if off < 0 || off >= len(strings.TrimRight(doc, " \t\r\n")) {
		return "it ends before the document does (a missing closing brace or bracket?)"
	}
	near := doc[off:]
	if i := strings.IndexByte(near, '\n'); i >= 0 {
		near = near[:i]
	}
	return fmt.Sprintf("%s, at %s", strings.TrimPrefix(err.Error(), "json: "), strconv.Quote(clip(near)))
}
