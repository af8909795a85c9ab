package awssim

import (
	"strings"

	"github.com/deploybot/deploybot/internal/iampolicy"
)

// Policy types are internal/iampolicy's: the simulated account evaluates
// policies with the same code deploybot writes them with.
type (
	PolicyDocument = iampolicy.Document
	Statement      = iampolicy.Statement
	StringList     = iampolicy.StringList
)

// PolicyAllows evaluates doc for one action on one resource ARN ("" = "*").
func PolicyAllows(doc *PolicyDocument, action, resource string) bool {
	return doc.Allows(iampolicy.Request{Action: action, Resource: resource})
}

// ServiceActionPrefix maps an SDK service id to its IAM action prefix.
var ServiceActionPrefix = map[string]string{
	"ECS":                         "ecs",
	"EC2":                         "ec2",
	"IAM":                         "iam",
	"CloudWatch Logs":             "logs",
	"Secrets Manager":             "secretsmanager",
	"ServiceDiscovery":            "servicediscovery",
	"Application Auto Scaling":    "application-autoscaling",
	"STS":                         "sts",
	"SSM":                         "ssm",
	"SQS":                         "sqs",
	"EventBridge":                 "events",
	"Resource Groups Tagging API": "tag",
}

// Action returns the IAM action name of an SDK operation, e.g. "ecs:CreateCluster".
func Action(service, op string) string {
	p, ok := ServiceActionPrefix[service]
	if !ok {
		p = strings.ToLower(strings.ReplaceAll(service, " ", ""))
	}
	return p + ":" + op
}

// authorize checks a call against the principal's identity policy the way
// IAM does: the action, the resource ARN the action is authorized on (see
// authz.go; "*" for actions without resource-level permissions) and the
// condition keys the request carries.
func (w *World) authorize(pr Principal, service, op string, params any) error {
	action := Action(service, op)
	if action == "sts:GetCallerIdentity" {
		// AWS answers it for any valid credentials; no policy can deny it.
		return nil
	}
	req := iampolicy.Request{Action: action}
	req.Resource, req.Context = authzResource(w, service, op, params)
	reqs := append([]iampolicy.Request{req}, impliedChecks(w, service, op, params)...)
	for _, r := range reqs {
		// A queue's own policy can grant (or deny) same-account access too.
		rpAllow, rpDeny := w.queuePolicyDecision(pr, r.Action, r.Resource, r.Context)
		if rpDeny || (!pr.Policy.Allows(r) && !rpAllow) {
			return denied(pr, service, r)
		}
	}
	return nil
}

func denied(pr Principal, service string, req iampolicy.Request) error {
	action := req.Action
	target := req.Resource
	if target == "" {
		target = "*"
	}
	return Err(accessDeniedCode(service), "User: "+pr.ARN+" is not authorized to perform: "+action+" on resource: "+target+" because no identity-based policy allows the "+action+" action")
}

func accessDeniedCode(service string) string {
	return byProtocol(service, "UnauthorizedOperation", "AccessDenied", "AccessDeniedException")
}

// byProtocol picks a service's spelling of a common error: EC2's own, the
// one IAM, STS and SQS share, or the one the JSON services (ECS, Logs,
// Secrets Manager, ...) answer.
func byProtocol(service, ec2, iamSTSSQS, json string) string {
	switch service {
	case "EC2":
		return ec2
	case "IAM", "STS", "SQS":
		return iamSTSSQS
	}
	return json
}
