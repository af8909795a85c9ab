package stack

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/kinds/eventbridge"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/kinds/logs"
	"github.com/deploybot/deploybot/internal/kinds/sqs"
	"github.com/deploybot/deploybot/internal/resource"
)

// What the stack sets up for the flow runs the worker launches
// (docs/research/prefect-flow-runs.md §A, §B): their IAM roles, log group
// and security group, and the ECS observer's queues and rule, which the
// work pool's job template (workpool.go) and the worker's task role name.

// Addresses of the flow-run resources.
const (
	AddrFlowRunLogGroup      = "log_group.flow_runs"
	AddrFlowExecutionRole    = "iam_role.flow_execution"
	AddrFlowTaskRole         = "iam_role.flow_task"
	AddrFlowRunSecurityGroup = "security_group.flow_runs"
	AddrObserverDLQ          = "sqs_queue.observer_dlq"
	AddrObserverQueue        = "sqs_queue.observer"
	AddrObserverRule         = "event_rule.ecs_tasks"
)

// Inline policy names of the flow-run roles.
const (
	FlowExecutionPolicy = "deploybot-flow-run-execution"
	FlowTaskPolicy      = "deploybot-flow-runs"
)

// The ECS observer's settings, read by prefect-aws's worker from its
// environment (PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_*, prefect_aws/settings.py;
// docs/research/prefect-flow-runs.md §B.1).
const (
	EnvObserverEnabled     = "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_ENABLED"
	EnvObserverQueueName   = "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME"
	EnvObserverQueueRegion = "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_REGION"
)

// The observer's queues are Prefect's own stack's
// (prefect_aws/templates/ecs/events-only.json, docs/research/prefect-flow-runs.md
// §B.4): the queue keeps events 7 days and hides a message 300 s while the
// observer handles it (it extends that every 240 s, §B.2); a message that
// fails 3 times moves to the dead-letter queue, which keeps it 14 days.
const (
	observerVisibilitySeconds = 300
	observerRetentionSeconds  = 7 * 24 * 3600
	observerMaxReceiveCount   = 3
	dlqVisibilitySeconds      = 60
	dlqRetentionSeconds       = 14 * 24 * 3600
	// flowRunLogStreamPrefix is the awslogs-stream-prefix of flow runs:
	// streams are flow-run/prefect/<task id> (§A.6).
	flowRunLogStreamPrefix = "flow-run"
)

// flowRunResources are the flow-run roles, log group and security group,
// and the observer's queues and rule.
func flowRunResources(env *config.Environment, n Names, np NetworkPlacement, secretARN resource.Ref, tags map[string]string) []resource.Resource {
	var sgDeps []string
	if np.VPC.Address != "" {
		sgDeps = append(sgDeps, np.VPC.Address)
	}
	out := []resource.Resource{
		logs.Group.New(AddrFlowRunLogGroup, n.FlowRunLogGroup, nil, &logs.GroupSpec{Name: n.FlowRunLogGroup, RetentionDays: env.FlowRuns.LogRetentionDays}, maps.Clone(tags)),
		iam.Role.New(AddrFlowExecutionRole, n.FlowExecutionRole, []string{n.SecretAddress}, flowExecutionRole(n, secretARN), maps.Clone(tags)),
		iam.Role.New(AddrFlowTaskRole, n.FlowTaskRole, nil, flowTaskRole(env, n), maps.Clone(tags)),
		sqs.Queue.New(AddrObserverDLQ, n.ObserverDLQ, nil, &sqs.QueueSpec{
			Name: n.ObserverDLQ, VisibilityTimeout: dlqVisibilitySeconds, MessageRetention: dlqRetentionSeconds,
		}, maps.Clone(tags)),
		sqs.Queue.New(AddrObserverQueue, n.ObserverQueue, []string{AddrObserverDLQ}, &sqs.QueueSpec{
			Name: n.ObserverQueue, VisibilityTimeout: observerVisibilitySeconds, MessageRetention: observerRetentionSeconds,
			DeadLetterQueue: &resource.Ref{Address: AddrObserverDLQ, Key: "arn"}, MaxReceiveCount: observerMaxReceiveCount,
			Policy: observerQueuePolicy(n),
		}, maps.Clone(tags)),
		// The rule names the queue, so a destroy removes the rule (its
		// targets first) before the queue.
		eventbridge.Rule.New(AddrObserverRule, n.ObserverRule, []string{AddrObserverQueue}, &eventbridge.RuleSpec{
			Name:         n.ObserverRule,
			Description:  "deploybot " + env.Name + ": ECS task state changes of " + n.Cluster + " for the Prefect worker's ECS observer",
			EventPattern: observerEventPattern(n),
			Targets:      map[string]resource.Ref{"observer": {Address: AddrObserverQueue, Key: "arn"}},
		}, maps.Clone(tags)),
	}
	if !ownSecurityGroups(env) {
		out = append(out, flowRunSecurityGroup(env, n, np, tags, sgDeps))
	}
	return out
}

// ownSecurityGroups says whether the file names the worker's security
// groups (network.security_group_ids): the flow runs then run in those
// too, as the team's network rules say, and deploybot makes none for them.
func ownSecurityGroups(env *config.Environment) bool {
	return env.Network.Mode == "existing" && len(env.Network.SecurityGroupIDs) > 0
}

// flowRunSecurityGroup is the flow runs' own group: egress only, like the
// worker's (a flow calls out; nothing connects in).
func flowRunSecurityGroup(env *config.Environment, n Names, np NetworkPlacement, tags map[string]string, deps []string) resource.Resource {
	return ec2.SecurityGroup.New(AddrFlowRunSecurityGroup, n.FlowRunSecurityGroup, deps, &ec2.SecurityGroupSpec{
		Name:        n.FlowRunSecurityGroup,
		Description: "deploybot flow runs of " + env.Name + " (egress only)",
		VPC:         np.VPC,
		Egress:      []string{"-1:0-0:0.0.0.0/0"},
	}, withName(tags, n.FlowRunSecurityGroup))
}

// flowRunSecurityGroups are the groups the pool gives flow runs.
func flowRunSecurityGroups(env *config.Environment, np NetworkPlacement) []resource.Ref {
	if ownSecurityGroups(env) {
		return np.SecurityGroups
	}
	return []resource.Ref{{Address: AddrFlowRunSecurityGroup, Key: "id"}}
}

// observerEventPattern matches the task state changes of the stack's
// cluster, and only those (docs/research/prefect-flow-runs.md §B.4; the
// event's shape: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html).
func observerEventPattern(n Names) string {
	b, _ := json.Marshal(map[string]any{
		"source":      []string{"aws.ecs"},
		"detail-type": []string{"ECS Task State Change"},
		"detail":      map[string]any{"clusterArn": []string{n.ClusterARN}},
	})
	return string(b)
}

// observerQueuePolicy lets only the stack's rule send to the queue: the
// events service, on behalf of exactly that rule (aws:SourceArn). Prefect's
// CDK stack also emits the statement without the condition, which lets any
// rule of any account send (docs/research/prefect-flow-runs.md §B.4); the
// worker reads the queue with its task role's identity policy, in the same
// account, so it needs no statement here.
func observerQueuePolicy(n Names) *iam.PolicyDocument {
	return &iam.PolicyDocument{Statements: []iam.PolicyStatement{{
		Sid:       "ECSTaskEventsFromTheRule",
		Effect:    "Allow",
		Principal: map[string][]string{"Service": {"events.amazonaws.com"}},
		Actions:   []string{"sqs:SendMessage"},
		Resources: []resource.Ref{{Literal: n.ObserverQueueARN}},
		Condition: map[string]map[string][]string{"ArnEquals": {"aws:SourceArn": {n.ObserverRuleARN}}},
	}}}
}

// flowExecutionRole is the role ECS uses to start a flow run's task: pull
// its image, write its logs to the flow-run log group and inject the
// Prefect API key (docs/research/prefect-flow-runs.md §A.6, §A.8). Its
// policy is written out rather than the ECS task execution managed policy
// attached, which allows logs:PutLogEvents on every log group of the
// account; the image pull keeps that policy's ECR actions on "*": a
// team's flow images may be in any repository (and
// ecr:GetAuthorizationToken has no resource,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html).
func flowExecutionRole(n Names, secretARN resource.Ref) *iam.RoleSpec {
	group := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", partition(n.Region), n.Region, n.Account, n.FlowRunLogGroup)
	return ecsTaskRole(n, n.FlowExecutionRole, "deploybot: ECS pulls flow-run images, writes their logs and injects the Prefect API key",
		map[string]iam.PolicyDocument{FlowExecutionPolicy: {Statements: []iam.PolicyStatement{
			{
				Sid:    "PullFlowRunImages",
				Effect: "Allow",
				Actions: []string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
					"ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer"},
				Resources: []resource.Ref{{Literal: "*"}},
			},
			{
				Sid:       "WriteFlowRunLogs",
				Effect:    "Allow",
				Actions:   []string{"logs:CreateLogStream", "logs:PutLogEvents"},
				Resources: []resource.Ref{{Literal: group}, {Literal: group + ":log-stream:*"}},
			},
			readSecret(secretARN),
		}}})
}

// flowTaskRole is the role the flows' code runs as: exactly what the file
// lists in flow_runs (nothing at all by default).
func flowTaskRole(env *config.Environment, n Names) *iam.RoleSpec {
	s := ecsTaskRole(n, n.FlowTaskRole, "deploybot: the role the flow runs of "+env.Name+" run as (flow_runs.task_role_policy_arns, flow_runs.task_role_policy)", nil)
	s.ManagedPolicyARNs = append([]string(nil), env.FlowRuns.TaskRolePolicyARNs...)
	if doc := string(env.FlowRuns.TaskRolePolicy); doc != "" {
		s.Inline = map[string]iam.PolicyDocument{FlowTaskPolicy: {Raw: doc}}
	}
	return s
}

// partition is the ARN partition of a region.
func partition(region string) string {
	switch {
	case len(region) > 3 && region[:3] == "cn-":
		return "aws-cn"
	case len(region) > 7 && region[:7] == "us-gov-":
		return "aws-us-gov"
	}
	return "aws"
}
