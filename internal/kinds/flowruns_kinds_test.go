package kinds_test

import (
	"testing"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/eventbridge"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/kinds/logs"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/kinds/sqs"
	"github.com/deploybot/deploybot/internal/stack"
)

// freshPool makes the world's file name a pool that does not exist, which
// the apply may create.
func freshPool(e *config.Environment) {
	e.Prefect.WorkPool = "fresh-pool"
	e.Prefect.CreateWorkPool = true
}

// TestLifecycleFlowRunKinds: the kinds issue 9 adds pass the lifecycle every
// kind passes (create, no diff, change, update, no diff, delete, absent,
// delete again).
func TestLifecycleFlowRunKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []lifecycleCase{
		{address: stack.AddrFlowRunLogGroup, change: editSpec(func(s *logs.GroupSpec) { s.RetentionDays = 90 }), wantChanged: []string{"retention_days"}},
		{address: stack.AddrFlowExecutionRole, change: setTags, wantChanged: tagChangePaths},
		{address: stack.AddrFlowTaskRole, edits: []func(*config.Environment){func(e *config.Environment) {
			e.FlowRuns.TaskRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`
		}}, change: editSpec(func(s *iam.RoleSpec) {
			s.ManagedPolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
			// A change only in NotAction, which the modelled policy
			// documents do not know: it must show.
			s.Inline = map[string]iam.PolicyDocument{stack.FlowTaskPolicy: {Raw: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"}]}`}}
		}), wantChanged: []string{"inline_policy." + stack.FlowTaskPolicy, "managed_policies"}},
		{address: stack.AddrFlowRunSecurityGroup, change: setTags, wantChanged: tagChangePaths},
		{address: stack.AddrObserverDLQ, change: andTags(editSpec(func(s *sqs.QueueSpec) { s.MessageRetention = 3600 })), wantChanged: plusTags("message_retention_seconds")},
		{address: stack.AddrObserverQueue, change: editSpec(func(s *sqs.QueueSpec) {
			s.VisibilityTimeout = 600
			s.MaxReceiveCount = 5
		}), wantChanged: []string{"redrive.max_receive_count", "visibility_timeout_seconds"}},
		{address: stack.AddrObserverRule, change: andTags(editSpec(func(s *eventbridge.RuleSpec) {
			s.Description = "another"
			s.EventPattern = `{"source":["aws.ecs"],"detail-type":["ECS Task State Change"]}`
		})), wantChanged: plusTags("description", "event_pattern")},
		{address: stack.AddrWorkPool, edits: []func(*config.Environment){freshPool}, change: editSpec(func(s *prefect.WorkPoolSpec) {
			s.Defaults.CPU, s.Defaults.Memory = 2048, 4096
			s.Defaults.Env = map[string]string{"DATA_BUCKET": "acme"}
		}), wantChanged: []string{"defaults.cpu", "defaults.env", "defaults.memory"}},
	} {
		t.Run(tc.address, func(t *testing.T) { runLifecycle(t, tc) })
	}
}
