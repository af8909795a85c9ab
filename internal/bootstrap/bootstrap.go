package bootstrap

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/iampolicy"
)

// GitHub's OIDC issuer and the audience deploybot requests
// (docs/research/github-actions.md §2.1-2.3).
const (
	OIDCHost     = "token.actions.githubusercontent.com"
	OIDCURL      = "https://" + OIDCHost
	OIDCAudience = "sts.amazonaws.com"
)

// Role is one IAM role to create or update.
type Role struct {
	Name        string
	Path        string
	ARN         string
	Description string
	Trust       *iampolicy.Document
	// InlinePolicyName is per environment, so that one plan role can serve
	// several environments, each bootstrap adding its own inline policy.
	InlinePolicyName string
	Policy           *iampolicy.Document
}

// Result is everything bootstrap would create for one environment.
type Result struct {
	Environment string
	Repo        string
	ProviderARN string
	PlanRole    Role
	ApplyRole   Role
	// ServiceLinkedRoles are the account's roles that ECS and Application
	// Auto Scaling use; see ServiceLinkedRoles.
	ServiceLinkedRoles []ServiceLinkedRole
}

// ServiceLinkedRole is an AWS service's role in the account, created once
// per account with CreateServiceLinkedRole.
type ServiceLinkedRole struct {
	Name    string // the role's name, fixed by AWS
	Service string // the service principal (iam:AWSServiceName)
}

// ServiceLinkedRoles are the service-linked roles a first apply needs. ECS
// creates AWSServiceRoleForECS on the first CreateCluster, and Application
// Auto Scaling creates its ECS role on the first RegisterScalableTarget,
// only if the caller may iam:CreateServiceLinkedRole; otherwise the call
// fails and retrying does not help
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html,
// https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html).
// bootstrap, which runs once with admin credentials, creates them when
// missing, so the apply role never needs the right to create roles in the
// account (a CreateServiceLinkedRole grant, even conditioned on
// iam:AWSServiceName, is an account-wide IAM write on a per-environment
// role). Both are created whether or not the file asks for autoscaling:
// they are account-wide, cost nothing, and a later file that turns
// autoscaling on then needs no second bootstrap.
var ServiceLinkedRoles = []ServiceLinkedRole{
	{Name: "AWSServiceRoleForECS", Service: "ecs.amazonaws.com"},
	{Name: "AWSServiceRoleForApplicationAutoScaling_ECSService", Service: "ecs.application-autoscaling.amazonaws.com"},
}

// Options say which repository the roles trust.
type Options struct {
	Repo          string // OWNER/NAME
	DefaultBranch string // default "main"
	// ApplyOnDefaultBranch also lets jobs on the default branch assume the
	// apply role, without a GitHub environment. Off by default: such a job
	// runs without the environment's required reviewers, and any workflow
	// on the default branch with id-token: write (a drift check, a manual
	// plan) could apply. An explicit opt-in for teams without GitHub
	// environments.
	ApplyOnDefaultBranch bool

	// dependent replaces dependentActions (tests that corrupt it).
	dependent map[string][]string
}

var repoRe = regexp.MustCompile(`^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$`)
var roleARNRe = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/(.+)$`)

// Build derives the OIDC provider and both roles for env.
func Build(env *config.Environment, o Options) (*Result, error) {
	if !repoRe.MatchString(o.Repo) {
		return nil, fmt.Errorf("--repo: %q is not OWNER/NAME", o.Repo)
	}
	if o.DefaultBranch == "" {
		o.DefaultBranch = "main"
	}
	n := namesOf(env)
	provider := "arn:" + n.Partition + ":iam::" + n.Account + ":oidc-provider/" + OIDCHost
	plan, err := roleFromARN(env.AWS.PlanRoleARN, "aws.plan_role_arn")
	if err != nil {
		return nil, err
	}
	apply, err := roleFromARN(env.AWS.ApplyRoleARN, "aws.apply_role_arn")
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(o.Repo, "/")
	// Both sub formats GitHub issues: the legacy repo:OWNER/NAME:... and the
	// immutable repo:OWNER@ID/NAME@ID:... (docs/research/github-actions.md §2.2).
	subs := func(suffix string) iampolicy.StringList {
		return iampolicy.StringList{
			"repo:" + owner + "/" + name + ":" + suffix,
			"repo:" + owner + "@*/" + name + "@*:" + suffix,
		}
	}
	trust := func(subjects iampolicy.StringList) *iampolicy.Document {
		return &iampolicy.Document{Version: iampolicy.Version2012, Statement: []iampolicy.Statement{{
			Sid:       "GitHubActionsOIDC",
			Effect:    "Allow",
			Principal: map[string]iampolicy.StringList{"Federated": {provider}},
			Action:    iampolicy.StringList{"sts:AssumeRoleWithWebIdentity"},
			Condition: map[string]map[string]iampolicy.StringList{
				"StringEquals": {OIDCHost + ":aud": {OIDCAudience}},
				"StringLike":   {OIDCHost + ":sub": subjects},
			},
		}}}
	}
	reads, writes := EngineActions()
	reads, writes = forNetwork(env, reads), forNetwork(env, writes)
	writeSet := map[string]bool{}
	for _, a := range writes {
		writeSet[a] = true
	}
	plan.Description = "deploybot plan (read-only), assumed by pull-request and default-branch jobs of " + o.Repo
	// Pull-request jobs plan; so do the scheduled drift check and manual
	// plans, which run on the default branch. The role is read-only, and
	// the default branch is the protected one.
	plan.Trust = trust(append(subs("pull_request"), subs("ref:refs/heads/"+o.DefaultBranch)...))
	plan.InlinePolicyName = "deploybot-plan-" + env.Name
	var planReads []string
	for _, a := range reads {
		if !applyOnlyReads[a] {
			planReads = append(planReads, a)
		}
	}
	plan.Policy = Policy(n, planReads, writeSet)

	apply.Description = "deploybot apply/destroy for environment " + env.Name + " of " + o.Repo
	// Only jobs that run in the GitHub environment of the same name: GitHub
	// issues them a token with sub ...:environment:NAME only once its
	// protection rules (required reviewers, deployment branches) have passed
	// (docs/research/github-actions.md §2.3). The default branch only when
	// asked for (Options.ApplyOnDefaultBranch).
	applySubs := subs("environment:" + env.Name)
	if o.ApplyOnDefaultBranch {
		applySubs = append(applySubs, subs("ref:refs/heads/"+o.DefaultBranch)...)
		apply.Description += "; also trusted by default-branch jobs without an environment (--apply-on-default-branch)"
	}
	apply.Trust = trust(applySubs)
	apply.InlinePolicyName = "deploybot-apply-" + env.Name
	all := append(append([]string(nil), reads...), writes...)
	sort.Strings(all)
	apply.Policy = Policy(n, all, writeSet)
	// ECS needs iam:PassRole on the two roles of the stack, to ECS tasks only.
	apply.Policy.Statement = append(apply.Policy.Statement, iampolicy.Statement{
		Sid: "PassStackRoles", Effect: "Allow", Action: iampolicy.StringList{"iam:PassRole"},
		Resource:  iampolicy.StringList{n.roleARNs()},
		Condition: map[string]map[string]iampolicy.StringList{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}},
	})
	// The flow-run task role carries the managed policies the file lists
	// (flow_runs.task_role_policy_arns), whatever they are: the apply role
	// may already put any inline policy on the stack's roles (PutRolePolicy
	// on deploybot-NAME-*), so attaching a managed one to this role grants
	// nothing more, and a file that adds a policy needs no new bootstrap.
	// Every other role of the stack may only get the ECS task execution
	// policy (ExecutionRoleManagedPolicy).
	apply.Policy.Statement = append(apply.Policy.Statement, iampolicy.Statement{
		Sid: "FlowRunTaskRolePolicies", Effect: "Allow", Action: iampolicy.StringList{"iam:AttachRolePolicy"},
		Resource: iampolicy.StringList(n.flowTaskRoles()),
	})
	// Tagging in the create call needs ec2:CreateTags for that create action.
	var creates iampolicy.StringList
	for op := range createsWithTags {
		if env.Network.Mode != "existing" || op == "CreateSecurityGroup" {
			creates = append(creates, op)
		}
	}
	sort.Strings(creates)
	if len(creates) > 0 && !(env.Network.Mode == "existing" && len(env.Network.SecurityGroupIDs) > 0) {
		apply.Policy.Statement = append(apply.Policy.Statement, ec2TagOnCreate(env, creates))
	}
	for _, r := range []*Role{&plan, &apply} {
		addImplied(r.Policy, o.dependent)
	}
	return &Result{Environment: env.Name, Repo: o.Repo, ProviderARN: provider, PlanRole: plan, ApplyRole: apply,
		ServiceLinkedRoles: ServiceLinkedRoles}, nil
}

func ec2TagOnCreate(env *config.Environment, creates iampolicy.StringList) iampolicy.Statement {
	return iampolicy.Statement{
		Sid: "Ec2TagOnCreate", Effect: "Allow", Action: iampolicy.StringList{"ec2:CreateTags"}, Resource: iampolicy.StringList{"*"},
		Condition: map[string]map[string]iampolicy.StringList{"StringEquals": {
			"ec2:CreateAction":                     creates,
			"aws:RequestTag/deploybot:environment": {env.Name},
		}},
	}
}

// existingNetworkEC2 are the EC2 operations of an environment in an
// existing VPC: its worker security group (with the revoke of an inbound
// rule added by hand) and the ENI wait before deleting it. Nothing else of
// the user's VPC may be touched.
var existingNetworkEC2 = map[string]bool{
	"ec2:DescribeSecurityGroups": true, "ec2:DescribeNetworkInterfaces": true,
	"ec2:CreateSecurityGroup": true, "ec2:DeleteSecurityGroup": true,
	"ec2:AuthorizeSecurityGroupEgress": true, "ec2:RevokeSecurityGroupEgress": true,
	"ec2:RevokeSecurityGroupIngress": true,
	"ec2:CreateTags":                 true, "ec2:DeleteTags": true,
}

// forNetwork drops the EC2 actions env's network mode never needs: in an
// existing VPC only the security group's (none when security_group_ids is
// given); a managed network needs them all.
func forNetwork(env *config.Environment, actions []string) []string {
	if env.Network.Mode != "existing" {
		return actions
	}
	var out []string
	for _, a := range actions {
		if !strings.HasPrefix(a, "ec2:") || (existingNetworkEC2[a] && len(env.Network.SecurityGroupIDs) == 0) {
			out = append(out, a)
		}
	}
	return out
}

// applyOnlyReads are reads deploybot makes only while applying or
// destroying (deployment and teardown waits, cleanup, the lock), never in a
// plan; the read-only plan role does without them. TestPlanRoleGrantsExactly
// WhatPlansCall keeps this list honest.
var applyOnlyReads = map[string]bool{
	"ecs:DescribeServiceDeployments": true,
	"ecs:ListServiceDeployments":     true,
	"ecs:DescribeTasks":              true,
	"ecs:ListTasks":                  true,
	"ecs:ListTaskDefinitions":        true,
	"ecs:ListTagsForResource":        true,
	"ssm:GetParameter":               true,
	"servicediscovery:GetNamespace":  true,
	"servicediscovery:GetService":    true,
	"servicediscovery:GetOperation":  true,
	"servicediscovery:ListInstances": true,
	"iam:ListRoleTags":               true,
	"ec2:DescribeNetworkInterfaces":  true,
}

func roleFromARN(arn, field string) (Role, error) {
	m := roleARNRe.FindStringSubmatch(arn)
	if m == nil {
		return Role{}, fmt.Errorf("%s: %q is not an IAM role ARN", field, arn)
	}
	full := m[3]
	path := "/"
	name := full
	if i := strings.LastIndex(full, "/"); i >= 0 {
		path = "/" + full[:i+1]
		name = full[i+1:]
	}
	return Role{Name: name, Path: path, ARN: arn}, nil
}
