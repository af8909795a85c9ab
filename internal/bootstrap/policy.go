// Package bootstrap derives what the GitHub Action needs in an AWS account
// from an environment file: the GitHub OIDC identity provider, a read-only
// plan role trusted only by the repository's pull-request jobs, and an apply
// role for the environment trusted only by its GitHub environment (the
// default branch too only on request), each with a least-privilege policy,
// and the account's service-linked roles for ECS and Application Auto
// Scaling. The actions come from
// internal/awsapi (the only AWS operations deploybot can call); resources
// are the environment's deterministic names and tags where AWS supports
// resource-level permissions (docs/research/aws-ecs.md §6 naming, §7 roles).
package bootstrap

//go:generate go run ../tools/genactions -o actions_gen.go

import (
	"sort"
	"strings"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/iampolicy"
)

// notForRoles are operations only bootstrap itself (with admin credentials)
// or the credential chain performs; the roles never need them.
// sts:GetCallerIdentity needs no permission at all (AWS answers it for any
// valid credentials) and AssumeRoleWithWebIdentity is authorized by the
// trust policy, not by an identity policy.
var notForRoles = map[string]bool{
	"iam:CreateOpenIDConnectProvider": true,
	"iam:GetOpenIDConnectProvider":    true,
	"iam:ListOpenIDConnectProviders":  true,
	"sts:GetCallerIdentity":           true,
	"sts:AssumeRoleWithWebIdentity":   true,
	// bootstrap creates the service-linked roles (ServiceLinkedRoles).
	"iam:CreateServiceLinkedRole": true,
}

// readOnly says whether an operation only reads.
func readOnly(op string) bool {
	return strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "List") || strings.HasPrefix(op, "Get")
}

// EngineActions returns every IAM action deploybot's engine may call, split
// into reads and writes, sorted. The list is generated from internal/awsapi
// (actions_gen.go, `go generate ./internal/bootstrap`): reading the
// interfaces' methods here, with reflect, would make the linker keep every
// method of every SDK client in the binary (docs/ARCHITECTURE.md "What
// ships").
func EngineActions() (reads, writes []string) {
	for _, a := range apiActions {
		if notForRoles[a] {
			continue
		}
		_, op, _ := strings.Cut(a, ":")
		if readOnly(op) {
			reads = append(reads, a)
		} else {
			writes = append(writes, a)
		}
	}
	sort.Strings(reads)
	sort.Strings(writes)
	return reads, writes
}

// scope is where an action's permission is granted: resource ARN patterns
// and conditions. Actions without resource-level support get "*".
type scope struct {
	sid        string
	resources  []string
	conditions map[string]map[string]iampolicy.StringList
}

// Names are the deterministic names deploybot gives an environment's
// resources (COMMON naming: see internal/stack).
type Names struct {
	Env, Account, Region, Partition string
}

func (n Names) arn(service, rest string) string {
	return "arn:" + n.Partition + ":" + service + ":" + n.Region + ":" + n.Account + ":" + rest
}

func (n Names) cluster() string { return "deploybot-" + n.Env }
func (n Names) family() string  { return "deploybot-" + n.Env + "-worker" }
func (n Names) roleARNs() string {
	return "arn:" + n.Partition + ":iam::" + n.Account + ":role/deploybot/deploybot-" + n.Env + "-*"
}
func (n Names) rolesNoPath() string {
	return "arn:" + n.Partition + ":iam::" + n.Account + ":role/deploybot-" + n.Env + "-*"
}
func (n Names) logGroup() string { return "/deploybot/" + n.Env + "/worker" }
func (n Names) flowRunLogGroup() string {
	return "/deploybot/" + n.Env + "/flow-runs"
}
func (n Names) observerQueues() string { return "deploybot-" + n.Env + "-ecs-events*" }
func (n Names) observerRule() string   { return "deploybot-" + n.Env + "-ecs-task-events" }
func (n Names) flowTaskRoles() []string {
	return []string{
		"arn:" + n.Partition + ":iam::" + n.Account + ":role/deploybot/deploybot-" + n.Env + "-flow-task",
		"arn:" + n.Partition + ":iam::" + n.Account + ":role/deploybot-" + n.Env + "-flow-task",
	}
}
func (n Names) secretName() string { return "deploybot/" + n.Env + "/prefect-api-key" }

// authStringSecretName is the secret of a self-hosted server's auth string
// (prefect.auth: basic), which an environment may switch to.
func (n Names) authStringSecretName() string { return "deploybot/" + n.Env + "/prefect-auth-string" }
func (n Names) lockParameter() string        { return "/deploybot/" + n.Env + "/lock" }

// scopeOf returns where action is granted for environment n. The mapping of
// actions to resource types follows the AWS Service Authorization Reference
// (and is what the simulated account enforces, see internal/awssim/authz.go).
func scopeOf(n Names, action string, write bool) scope {
	svc, op, _ := strings.Cut(action, ":")
	envTag := map[string]map[string]iampolicy.StringList{}
	switch svc {
	case "ecs":
		switch op {
		case "CreateCluster", "DeleteCluster", "DescribeClusters":
			return scope{sid: "EcsCluster", resources: []string{n.arn("ecs", "cluster/"+n.cluster())}}
		case "CreateService", "UpdateService", "DeleteService", "DescribeServices", "ListServiceDeployments":
			return scope{sid: "EcsService", resources: []string{n.arn("ecs", "service/"+n.cluster()+"/*")}}
		case "DescribeServiceDeployments":
			return scope{sid: "EcsServiceDeployments", resources: []string{n.arn("ecs", "service-deployment/"+n.cluster()+"/*")}}
		case "DescribeTasks":
			return scope{sid: "EcsTasks", resources: []string{n.arn("ecs", "task/"+n.cluster()+"/*")}}
		case "DeleteTaskDefinitions":
			return scope{sid: "EcsTaskDefinitionDelete", resources: []string{n.arn("ecs", "task-definition/"+n.family()+":*")}}
		case "TagResource", "UntagResource", "ListTagsForResource":
			return scope{sid: "EcsTags", resources: []string{
				n.arn("ecs", "cluster/"+n.cluster()),
				n.arn("ecs", "service/"+n.cluster()+"/*"),
				n.arn("ecs", "task-definition/"+n.family()+":*"),
			}}
		}
	case "logs":
		if op != "DescribeLogGroups" {
			lg := n.arn("logs", "log-group:"+n.logGroup())
			flows := n.arn("logs", "log-group:"+n.flowRunLogGroup())
			return scope{sid: "Logs", resources: []string{lg, lg + ":*", flows, flows + ":*"}}
		}
	case "sqs":
		// The ECS observer's queue and dead-letter queue
		// (arn:PARTITION:sqs:REGION:ACCOUNT:NAME, Service Authorization
		// Reference, Amazon SQS "queue").
		return scope{sid: "ObserverQueues", resources: []string{n.arn("sqs", n.observerQueues())}}
	case "events":
		rule := n.arn("events", "rule/"+n.observerRule())
		if op == "PutTargets" {
			// The rule may send only to the observer's queue
			// (events:TargetArn, Service Authorization Reference, Amazon
			// EventBridge).
			return scope{sid: "ObserverRuleTargets", resources: []string{rule}, conditions: map[string]map[string]iampolicy.StringList{
				"ArnLike": {"events:TargetArn": {n.arn("sqs", n.observerQueues())}}}}
		}
		return scope{sid: "ObserverRule", resources: []string{rule}}
	case "secretsmanager":
		return scope{sid: "PrefectApiKeySecret", resources: []string{n.arn("secretsmanager", "secret:"+n.secretName()+"-??????"),
			n.arn("secretsmanager", "secret:"+n.authStringSecretName()+"-??????")}}
	case "iam":
		if op == "ListRoles" {
			// Lists by path; the Service Authorization Reference gives
			// ListRoles no resource type, so it is granted on "*" (and
			// answers names and ARNs only, never a role's policies).
			return scope{sid: "ReadOrUnscoped", resources: []string{"*"}}
		}
		// IAM authorizes a call on a role that does not exist yet on
		// role/NAME (it cannot know the path), so reads before the first
		// apply need the path-less ARN too.
		s := scope{sid: "Roles", resources: []string{n.roleARNs(), n.rolesNoPath()}}
		// DetachRolePolicy stays unconditioned: a plan shows a managed
		// policy attached by hand to the stack's roles as drift, and the
		// apply detaches it, whatever it is. Detaching only takes
		// permissions away from the stack's own roles, whose inline
		// policies the role may already write and delete, so it grants no
		// new power; attaching could, so it keeps the condition.
		if op == "AttachRolePolicy" {
			// Only the ECS task execution managed policy may be attached.
			s.sid = "ExecutionRoleManagedPolicy"
			s.conditions = map[string]map[string]iampolicy.StringList{"ArnEquals": {"iam:PolicyARN": {"arn:" + n.Partition + ":iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}}}
		}
		return s
	case "ssm":
		return scope{sid: "Lock", resources: []string{n.arn("ssm", "parameter"+n.lockParameter())}}
	case "ec2":
		if !write {
			break
		}
		if op == "DisassociateRouteTable" {
			// Names only an association id, which carries no tags.
			break
		}
		if createsWithTags[op] {
			// Creates must carry our environment tag in the request.
			envTag["StringEquals"] = map[string]iampolicy.StringList{"aws:RequestTag/deploybot:environment": {n.Env}}
			return scope{sid: "Ec2CreateTagged", resources: []string{"*"}, conditions: envTag}
		}
		// Everything else may only touch resources tagged for this environment.
		envTag["StringEquals"] = map[string]iampolicy.StringList{"aws:ResourceTag/deploybot:environment": {n.Env}}
		return scope{sid: "Ec2OwnTagged", resources: []string{"*"}, conditions: envTag}
	}
	return scope{sid: "ReadOrUnscoped", resources: []string{"*"}}
}

// createsWithTags are the EC2 creates deploybot tags in the create call
// itself (TagSpecifications), so the request carries the environment tag.
var createsWithTags = map[string]bool{
	"CreateVpc": true, "CreateSubnet": true, "CreateInternetGateway": true, "CreateRouteTable": true,
	"AllocateAddress": true, "CreateNatGateway": true, "CreateSecurityGroup": true,
}

// Policy builds the identity policy for a role that may call actions.
func Policy(n Names, actions []string, writes map[string]bool) *iampolicy.Document {
	type key struct{ sid, res, cond string }
	groups := map[key]*iampolicy.Statement{}
	var order []key
	for _, a := range actions {
		s := scopeOf(n, a, writes[a])
		sid := s.sid
		if !writes[a] && (sid == "ReadOrUnscoped") {
			sid = "Read"
		}
		k := key{sid, strings.Join(s.resources, ","), condKey(s.conditions)}
		st, ok := groups[k]
		if !ok {
			st = &iampolicy.Statement{Sid: sidName(sid, len(order)), Effect: "Allow", Resource: s.resources, Condition: s.conditions}
			groups[k] = st
			order = append(order, k)
		}
		st.Action = append(st.Action, a)
	}
	sort.Slice(order, func(i, j int) bool { return groups[order[i]].Sid < groups[order[j]].Sid })
	doc := &iampolicy.Document{Version: iampolicy.Version2012}
	for _, k := range order {
		doc.Statement = append(doc.Statement, *groups[k])
	}
	return doc
}

func sidName(s string, _ int) string { return s }

func condKey(c map[string]map[string]iampolicy.StringList) string {
	if len(c) == 0 {
		return ""
	}
	var parts []string
	for op, kv := range c {
		for k, v := range kv {
			parts = append(parts, op+"|"+k+"|"+strings.Join(v, ","))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

// namesOf returns the naming context of an environment.
func namesOf(env *config.Environment) Names {
	part := "aws"
	if strings.HasPrefix(env.AWS.Region, "cn-") {
		part = "aws-cn"
	} else if strings.HasPrefix(env.AWS.Region, "us-gov-") {
		part = "aws-us-gov"
	}
	return Names{Env: env.Name, Account: env.AWS.AccountID, Region: env.AWS.Region, Partition: part}
}

// dependentActions are the permissions AWS checks on the caller behind an
// action, besides the action itself, which bootstrap grants beside the
// actions that need them. This is bootstrap's own table; the simulated
// account enforces a separate one, transcribed from the same documentation
// (internal/awssim/dependent.go), so that a wrong entry here fails the
// least-privilege proof. Tag-on-create is granted elsewhere: ec2:CreateTags
// by the Ec2TagOnCreate statement, ecs:TagResource and
// application-autoscaling:TagResource with the engine's own actions; and
// iam:PassRole by PassStackRoles.
var dependentActions = map[string][]string{
	// Cloud Map makes the Route 53 calls with the caller's permissions:
	// https://docs.aws.amazon.com/cloud-map/latest/dg/cloud-map-api-permissions-ref.html
	"servicediscovery:CreatePrivateDnsNamespace": {"route53:CreateHostedZone", "route53:GetHostedZone", "route53:ListHostedZonesByName", "ec2:DescribeVpcs", "ec2:DescribeRegions"},
	"servicediscovery:DeregisterInstance":        {"route53:GetHealthCheck", "route53:DeleteHealthCheck", "route53:UpdateHealthCheck"},
	// Application Auto Scaling validates that the caller may use the target
	// service and CloudWatch:
	// https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html
	// and, for ECS, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/auto-scaling-IAM.html
	"application-autoscaling:RegisterScalableTarget": {"ecs:DescribeServices", "ecs:UpdateService"},
	"application-autoscaling:PutScalingPolicy":       {"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"},
	"application-autoscaling:DeleteScalingPolicy":    {"cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"},
}

// addImplied grants, in one statement on "*", the dependent actions of what
// doc allows, except those doc already allows on "*" without conditions
// (table nil: dependentActions).
func addImplied(doc *iampolicy.Document, table map[string][]string) {
	if table == nil {
		table = dependentActions
	}
	granted := map[string]bool{}
	for _, st := range doc.Statement {
		if len(st.Resource) == 1 && st.Resource[0] == "*" && len(st.Condition) == 0 {
			for _, a := range st.Action {
				granted[a] = true
			}
		}
	}
	seen := map[string]bool{}
	var extra []string
	for _, a := range doc.Actions() {
		for _, x := range table[a] {
			if !seen[x] && !granted[x] {
				seen[x] = true
				extra = append(extra, x)
			}
		}
	}
	if len(extra) == 0 {
		return
	}
	sort.Strings(extra)
	doc.Statement = append(doc.Statement, iampolicy.Statement{Sid: "CheckedByAWSBehindTheseCalls", Effect: "Allow", Action: extra, Resource: iampolicy.StringList{"*"}})
}
