package awssim

import (
	"encoding/json"
	"strings"
)

// Resource-based policies (an SQS queue's Policy attribute), evaluated the
// way IAM does for the cases the simulated account meets: a statement
// applies when its Principal, Action, Resource and every Condition match;
// an explicit Deny wins; otherwise an Allow grants
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
// This evaluator is the simulator's own: deploybot writes queue policies,
// and the simulated account must not judge them with deploybot's code.

// principalRef is who asks: a service principal ("events.amazonaws.com")
// or an IAM principal ARN.
type principalRef struct {
	Service string
	ARN     string
}

func servicePrincipal(s string) principalRef { return principalRef{Service: s} }

type resourceRequest struct {
	Principal principalRef
	Action    string // "sqs:SendMessage"
	Resource  string
	Context   map[string]string // condition keys: aws:SourceArn, aws:SourceAccount, ...
}

type rpStatement struct {
	Effect    string
	Principal json.RawMessage
	Action    json.RawMessage
	Resource  json.RawMessage
	Condition map[string]map[string]json.RawMessage
}

type rpDocument struct {
	Version   string
	Statement json.RawMessage
}

// strOrList reads a JSON string or list of strings.
func strOrList(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, true
	}
	return nil, false
}

func parseResourcePolicy(s string) ([]rpStatement, bool) {
	var d rpDocument
	if err := json.Unmarshal([]byte(s), &d); err != nil || len(d.Statement) == 0 {
		return nil, false
	}
	var stmts []rpStatement
	if err := json.Unmarshal(d.Statement, &stmts); err != nil {
		var one rpStatement
		if err := json.Unmarshal(d.Statement, &one); err != nil {
			return nil, false
		}
		stmts = []rpStatement{one}
	}
	for _, st := range stmts {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, false
		}
		if _, ok := strOrList(st.Action); !ok {
			return nil, false
		}
		if len(st.Principal) == 0 {
			return nil, false // a resource policy statement names its principal
		}
	}
	return stmts, true
}

// validResourcePolicy is the structural check SQS makes on a Policy
// attribute (a JSON policy whose statements have Effect, Principal, Action).
func validResourcePolicy(s string) bool {
	_, ok := parseResourcePolicy(s)
	return ok
}

// resourcePolicyAllows evaluates a resource policy ("" denies everything).
func resourcePolicyAllows(policy string, req resourceRequest) bool {
	allowed, denied := evalResourcePolicy(policy, req)
	return allowed && !denied
}

// evalResourcePolicy says whether some statement allows the request and
// whether some statement denies it.
func evalResourcePolicy(policy string, req resourceRequest) (allowed, denied bool) {
	if policy == "" {
		return false, false
	}
	stmts, ok := parseResourcePolicy(policy)
	if !ok {
		return false, false
	}
	for _, st := range stmts {
		if !principalMatches(st.Principal, req.Principal) {
			continue
		}
		actions, _ := strOrList(st.Action)
		if !anyGlob(actions, req.Action, true) {
			continue
		}
		if res, ok := strOrList(st.Resource); ok && !anyGlob(res, req.Resource, false) {
			continue
		}
		if !rpConditionsHold(st.Condition, req.Context) {
			continue
		}
		if st.Effect == "Deny" {
			denied = true
		} else {
			allowed = true
		}
	}
	return allowed, denied
}

func principalMatches(raw json.RawMessage, p principalRef) bool {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	if p.Service != "" {
		svc, _ := strOrList(m["Service"])
		return containsString(svc, p.Service)
	}
	arns, _ := strOrList(m["AWS"])
	for _, a := range arns {
		if a == "*" || a == p.ARN {
			return true
		}
		// An account ("123456789012" or its root ARN) stands for every
		// principal of that account.
		account := strings.TrimSuffix(strings.TrimPrefix(a, "arn:aws:iam::"), ":root")
		if parts := strings.Split(p.ARN, ":"); len(parts) > 4 && parts[4] == account {
			return true
		}
	}
	return false
}

func rpConditionsHold(cond map[string]map[string]json.RawMessage, ctx map[string]string) bool {
	for op, kv := range cond {
		ifExists := strings.HasSuffix(op, "IfExists")
		base := strings.TrimSuffix(op, "IfExists")
		for key, rawWant := range kv {
			want, ok := strOrList(rawWant)
			if !ok {
				return false
			}
			got, present := "", false
			for k, v := range ctx {
				if strings.EqualFold(k, key) {
					got, present = v, true
				}
			}
			if !present {
				if ifExists || strings.HasPrefix(base, "StringNot") || strings.HasPrefix(base, "ArnNot") {
					continue
				}
				return false
			}
			var hold bool
			switch base {
			case "StringEquals", "ArnEquals":
				hold = containsString(want, got)
			case "StringEqualsIgnoreCase":
				for _, x := range want {
					hold = hold || strings.EqualFold(x, got)
				}
			case "StringLike", "ArnLike":
				hold = anyGlob(want, got, false)
			case "StringNotEquals", "ArnNotEquals":
				hold = !containsString(want, got)
			case "StringNotLike", "ArnNotLike":
				hold = !anyGlob(want, got, false)
			default:
				return false // an operator the simulation does not know grants nothing
			}
			if !hold {
				return false
			}
		}
	}
	return true
}

// anyGlob matches v against IAM wildcard patterns (* and ?).
func anyGlob(patterns []string, v string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if globMatch(strings.ToLower(p), strings.ToLower(v)) {
				return true
			}
		} else if globMatch(p, v) {
			return true
		}
	}
	return false
}

func globMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}
