package awssim

import (
	"path"
	"strings"
)

// PolicyDocument is an IAM policy as deploybot writes them: a list of
// statements with Effect, Action and Resource (strings or lists of strings).
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Action    StringList     `json:"Action"`
	Resource  StringList     `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// StringList accepts a JSON string or list of strings, as IAM does.
type StringList []string

// ServiceActionPrefix maps an SDK service id to its IAM action prefix.
var ServiceActionPrefix = map[string]string{
	"ECS":                      "ecs",
	"EC2":                      "ec2",
	"IAM":                      "iam",
	"CloudWatch Logs":          "logs",
	"Secrets Manager":          "secretsmanager",
	"ServiceDiscovery":         "servicediscovery",
	"Application Auto Scaling": "application-autoscaling",
	"STS":                      "sts",
	"SSM":                      "ssm",
}

// Action returns the IAM action name of an SDK operation, e.g. "ecs:CreateCluster".
func Action(service, op string) string {
	p, ok := ServiceActionPrefix[service]
	if !ok {
		p = strings.ToLower(strings.ReplaceAll(service, " ", ""))
	}
	return p + ":" + op
}

// Allows evaluates the policy the way IAM does for one action: an explicit
// Deny wins, otherwise some Allow must match, otherwise it is an implicit
// deny. Action and resource patterns use IAM's * and ? wildcards; actions
// match case-insensitively. resource "" means the call names no resource ARN
// (only statements with Resource "*" can allow it).
func (p *PolicyDocument) Allows(action, resource string) bool {
	allowed := false
	for _, s := range p.Statement {
		if !matchAny(s.Action, action, true) {
			continue
		}
		res := resource
		if res == "" {
			res = "*"
		}
		if !matchAny(s.Resource, res, false) {
			continue
		}
		if strings.EqualFold(s.Effect, "Deny") {
			return false
		}
		if strings.EqualFold(s.Effect, "Allow") {
			allowed = true
		}
	}
	return allowed
}

func matchAny(patterns []string, v string, fold bool) bool {
	for _, pat := range patterns {
		a, b := pat, v
		if fold {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		if a == "*" {
			return true
		}
		// path.Match treats '/' specially; IAM does not, so match segment-free.
		if ok, _ := path.Match(strings.ReplaceAll(a, "/", "\x00"), strings.ReplaceAll(b, "/", "\x00")); ok {
			return true
		}
	}
	return false
}

// authorize checks a call against the principal's policy. Resource-level
// checks use the ARN a handler family reports through ResourceARNOf; calls
// without one are checked against "*".
func (w *World) authorize(pr Principal, service, op string, params any) error {
	action := Action(service, op)
	res := ""
	if f := resourceOf; f != nil {
		res = f(w, service, op, params)
	}
	if pr.Policy.Allows(action, res) {
		return nil
	}
	target := res
	if target == "" {
		target = "*"
	}
	return Err(accessDeniedCode(service), "User: "+pr.ARN+" is not authorized to perform: "+action+" on resource: "+target+" because no identity-based policy allows the "+action+" action")
}

// resourceOf names the resource ARN a call acts on, for resource-level
// policy checks; nil means every call is checked against "*".
var resourceOf func(w *World, service, op string, params any) string

func accessDeniedCode(service string) string {
	switch service {
	case "EC2":
		return "UnauthorizedOperation"
	case "IAM", "STS":
		return "AccessDenied"
	default:
		return "AccessDeniedException"
	}
}
