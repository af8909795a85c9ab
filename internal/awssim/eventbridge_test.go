package awssim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

const observerPattern = `{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"clusterArn":["arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-staging"]}}`

func TestEventBridgeRulesTargetsAndErrors(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	eb := eventbridge.NewFromConfig(w.Config())
	out, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("staging-ecs-task-events"), EventPattern: aws.String(observerPattern),
		Tags: []ebtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}})
	if err != nil {
		t.Fatal(err)
	}
	ruleARN := "arn:aws:events:us-east-1:123456789012:rule/staging-ecs-task-events"
	if aws.ToString(out.RuleArn) != ruleARN {
		t.Fatalf("rule ARN %s", aws.ToString(out.RuleArn))
	}
	d, err := eb.DescribeRule(bg, &eventbridge.DescribeRuleInput{Name: aws.String("staging-ecs-task-events")})
	if err != nil || d.State != ebtypes.RuleStateEnabled || aws.ToString(d.EventPattern) != observerPattern || aws.ToString(d.EventBusName) != "default" {
		t.Fatalf("describe: %+v %v", d, err)
	}
	tags, err := eb.ListTagsForResource(bg, &eventbridge.ListTagsForResourceInput{ResourceARN: aws.String(ruleARN)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "staging" {
		t.Fatalf("tags %+v %v", tags, err)
	}
	queueARN := "arn:aws:sqs:us-east-1:123456789012:staging-ecs-events"
	pt, err := eb.PutTargets(bg, &eventbridge.PutTargetsInput{Rule: aws.String("staging-ecs-task-events"),
		Targets: []ebtypes.Target{{Id: aws.String("Target0"), Arn: aws.String(queueARN)}}})
	if err != nil || pt.FailedEntryCount != 0 {
		t.Fatalf("put targets: %+v %v", pt, err)
	}
	names, err := eb.ListRuleNamesByTarget(bg, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(queueARN)})
	if err != nil || !cmp.Equal(names.RuleNames, []string{"staging-ecs-task-events"}) {
		t.Fatalf("rules by target: %+v %v", names, err)
	}

	_, err = eb.DeleteRule(bg, &eventbridge.DeleteRuleInput{Name: aws.String("staging-ecs-task-events")})
	if errCode(t, err) != "ValidationException" || errMessage(err) != "Rule can't be deleted since it has targets." {
		t.Fatalf("delete with targets: %v", err)
	}
	var many []ebtypes.Target
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		many = append(many, ebtypes.Target{Id: aws.String(id), Arn: aws.String(queueARN)})
	}
	pt, err = eb.PutTargets(bg, &eventbridge.PutTargetsInput{Rule: aws.String("staging-ecs-task-events"), Targets: many})
	if err != nil || pt.FailedEntryCount != 1 || aws.ToString(pt.FailedEntries[0].ErrorCode) != "LimitExceededException" {
		t.Fatalf("sixth target: %+v %v", pt, err)
	}

	_, err = eb.DescribeRule(bg, &eventbridge.DescribeRuleInput{Name: aws.String("missing")})
	var nf *ebtypes.ResourceNotFoundException
	if !errors.As(err, &nf) || errMessage(err) != "Rule missing does not exist on EventBus default." {
		t.Fatalf("describe missing: %v", err)
	}
	if _, err := eb.PutTargets(bg, &eventbridge.PutTargetsInput{Rule: aws.String("missing"), Targets: many[:1]}); !errors.As(err, &nf) {
		t.Fatalf("targets on a missing rule: %v", err)
	}
	_, err = eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("bad"), EventPattern: aws.String(`{"source":"aws.ecs"}`)})
	var bad *ebtypes.InvalidEventPatternException
	if !errors.As(err, &bad) || !strings.HasPrefix(errMessage(err), "Event pattern is not valid. Reason: ") {
		t.Fatalf("pattern without an array: %v", err)
	}
	if _, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("empty")}); errCode(t, err) != "ValidationException" {
		t.Fatalf("rule without pattern or schedule: %v", err)
	}
	if _, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(observerPattern), EventBusName: aws.String("custom")}); !errors.As(err, &nf) {
		t.Fatalf("unknown bus: %v", err)
	}

	var ids []string
	for _, tg := range append(many[:4], ebtypes.Target{Id: aws.String("Target0")}) {
		ids = append(ids, aws.ToString(tg.Id))
	}
	if _, err := eb.RemoveTargets(bg, &eventbridge.RemoveTargetsInput{Rule: aws.String("staging-ecs-task-events"), Ids: ids}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.DeleteRule(bg, &eventbridge.DeleteRuleInput{Name: aws.String("staging-ecs-task-events")}); err != nil {
		t.Fatal(err)
	}
	// Deleting a rule that does not exist succeeds, as on AWS.
	if _, err := eb.DeleteRule(bg, &eventbridge.DeleteRuleInput{Name: aws.String("staging-ecs-task-events")}); err != nil {
		t.Fatal(err)
	}
	list, err := eb.ListRules(bg, &eventbridge.ListRulesInput{})
	if err != nil || len(list.Rules) != 0 {
		t.Fatalf("rules left: %+v %v", list, err)
	}
}

func TestEventPatternMatching(t *testing.T) {
	t.Parallel()
	event := map[string]any{"source": "aws.ecs", "detail-type": "ECS Task State Change",
		"detail": map[string]any{"clusterArn": "arn:aws:ecs:us-east-1:1:cluster/c", "group": "family:prefect_pool_1", "lastStatus": "STOPPED",
			"containers": []any{map[string]any{"name": "prefect", "exitCode": float64(137)}}, "version": float64(5)}}
	tests := []struct {
		pattern string
		want    bool
	}{
		{observerPattern, false},
		{`{"source":["aws.ecs"],"detail":{"clusterArn":["arn:aws:ecs:us-east-1:1:cluster/c"]}}`, true},
		{`{"detail":{"group":[{"prefix":"family:prefect_"}]}}`, true},
		{`{"detail":{"group":[{"prefix":"service:"}]}}`, false},
		{`{"detail":{"lastStatus":[{"anything-but":["RUNNING","PENDING"]}]}}`, true},
		{`{"detail":{"lastStatus":[{"anything-but":"STOPPED"}]}}`, false},
		{`{"detail":{"stopCode":[{"exists":false}]}}`, true},
		{`{"detail":{"stopCode":[{"exists":true}]}}`, false},
		{`{"detail":{"containers":{"exitCode":[{"numeric":[">",0]}]}}}`, true}, // inside the array of containers
		{`{"detail":{"containers":{"name":["worker"]}}}`, false},
		{`{"detail":{"version":[{"numeric":[">=",5,"<",6]}]}}`, true},
		{`{"detail-type":[{"equals-ignore-case":"ecs task state change"}]}`, true},
		{`{"detail":{"clusterArn":[{"wildcard":"arn:aws:ecs:*:cluster/c"}]}}`, true},
		{`{"detail":{"clusterArn":[{"suffix":"/d"}]}}`, false},
	}
	for _, tt := range tests {
		p, err := parseEventPattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		if got := matchPattern(p, event); got != tt.want {
			t.Errorf("%s matched %v, want %v", tt.pattern, got, tt.want)
		}
	}
	for _, bad := range []string{`[]`, `{}`, `{"source":"aws.ecs"}`, `{"source":[]}`, `{"detail":{"x":[{"bogus":1}]}}`, `{"detail":{"x":[{"numeric":[">"]}]}}`} {
		if _, err := parseEventPattern(bad); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

// TestECSTaskEventsReachTheObserverQueue: the ECS task state changes of a
// cluster reach the queue of a rule that matches them, only while the
// queue's policy lets EventBridge send for that rule
// (docs/research/prefect-flow-runs.md §B.4).
func TestECSTaskEventsReachTheObserverQueue(t *testing.T) {
	t.Parallel()
	ruleARN := "arn:aws:events:us-east-1:123456789012:rule/staging-ecs-task-events"
	policyFor := func(sourceArn string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},` +
			`"Action":["sqs:GetQueueAttributes","sqs:GetQueueUrl","sqs:SendMessage"],"Resource":"arn:aws:sqs:us-east-1:123456789012:staging-ecs-events",` +
			`"Condition":{"ArnEquals":{"aws:SourceArn":"` + sourceArn + `"}}}]}`
	}
	tests := []struct {
		name      string
		policy    string
		delivered bool
		reason    string
	}{
		{"policy for the rule", policyFor(ruleARN), true, ""},
		{"no queue policy", "", false, "does not allow events.amazonaws.com"},
		{"policy for another rule", policyFor("arn:aws:events:us-east-1:123456789012:rule/other"), false, "aws:SourceArn " + ruleARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
			q := sqs.NewFromConfig(f.w.Config())
			attrs := map[string]string{"VisibilityTimeout": "300"}
			if tt.policy != "" {
				attrs["Policy"] = tt.policy
			}
			url := createQueue(t, q, "staging-ecs-events", attrs)
			eb := eventbridge.NewFromConfig(f.w.Config())
			if _, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("staging-ecs-task-events"), EventPattern: aws.String(observerPattern)}); err != nil {
				t.Fatal(err)
			}
			if _, err := eb.PutTargets(bg, &eventbridge.PutTargetsInput{Rule: aws.String("staging-ecs-task-events"),
				Targets: []ebtypes.Target{{Id: aws.String("Target0"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:staging-ecs-events")}}}); err != nil {
				t.Fatal(err)
			}
			// A worker image that crashes 20 s after it starts.
			f.createService(t, f.register(t, "prefecthq/prefect:crashloop"), 1)
			f.clk.Advance(2 * time.Minute)

			deliveries := f.w.EventDeliveries()
			if len(deliveries) == 0 {
				t.Fatal("no event matched the rule")
			}
			for _, d := range deliveries {
				if d.Delivered != tt.delivered || !strings.Contains(d.Reason, tt.reason) || d.Rule != ruleARN {
					t.Fatalf("delivery %+v, want delivered=%v reason ~%q", d, tt.delivered, tt.reason)
				}
			}
			out, err := q.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.delivered {
				if len(out.Messages) != 0 {
					t.Fatalf("%d messages arrived without permission", len(out.Messages))
				}
				return
			}
			var stopped map[string]any
			var statuses []string
			for len(out.Messages) > 0 {
				for _, m := range out.Messages {
					var ev map[string]any
					if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
						t.Fatal(err)
					}
					if ev["detail-type"] != "ECS Task State Change" || ev["source"] != "aws.ecs" {
						t.Fatalf("event %v", ev)
					}
					detail := ev["detail"].(map[string]any)
					statuses = append(statuses, detail["lastStatus"].(string))
					if detail["lastStatus"] == "STOPPED" && stopped == nil {
						stopped = detail
					}
				}
				out, _ = q.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
			}
			if stopped == nil {
				t.Fatalf("no STOPPED event among %v", statuses)
			}
			containers := stopped["containers"].([]any)
			c := containers[0].(map[string]any)
			if stopped["stopCode"] != "EssentialContainerExited" || stopped["stoppedReason"] != "Essential container in task exited" ||
				c["exitCode"] != float64(1) || c["name"] != "worker" || stopped["group"] != "service:worker" ||
				stopped["clusterArn"] != "arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-staging" {
				t.Fatalf("STOPPED detail: %v", stopped)
			}
			if statuses[0] != "PROVISIONING" {
				t.Fatalf("first event %s, want PROVISIONING (statuses %v)", statuses[0], statuses)
			}
		})
	}
}

func TestEventBridgeAuthorization(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	ruleARN := "arn:aws:events:us-east-1:123456789012:rule/staging-ecs-task-events"
	key := "ASIAAPPLYROLE0000001"
	w.AddPrincipal(key, Principal{ARN: "arn:aws:sts::123456789012:assumed-role/deploybot-apply-staging/run", Policy: &PolicyDocument{Version: "2012-10-17",
		Statement: []Statement{{Effect: "Allow", Action: StringList{"events:PutRule", "events:DescribeRule"}, Resource: StringList{ruleARN},
			Condition: map[string]map[string]StringList{"StringEqualsIfExists": {"aws:RequestTag/deploybot:environment": {"staging"}}}}}}})
	eb := eventbridge.NewFromConfig(w.ConfigFor(credentials.NewStaticCredentialsProvider(key, "s", "t")))
	if _, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("staging-ecs-task-events"), EventPattern: aws.String(observerPattern),
		Tags: []ebtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"another rule", func() error {
			_, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("other"), EventPattern: aws.String(observerPattern)})
			return err
		}},
		{"tagged for another environment", func() error {
			_, err := eb.PutRule(bg, &eventbridge.PutRuleInput{Name: aws.String("staging-ecs-task-events"), EventPattern: aws.String(observerPattern),
				Tags: []ebtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("prod")}}})
			return err
		}},
		{"targets not granted", func() error {
			_, err := eb.PutTargets(bg, &eventbridge.PutTargetsInput{Rule: aws.String("staging-ecs-task-events"),
				Targets: []ebtypes.Target{{Id: aws.String("Target0"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:q")}}})
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.call(); errCode(t, err) != "AccessDeniedException" {
			t.Errorf("%s: %v, want AccessDeniedException", tt.name, err)
		}
	}
}
