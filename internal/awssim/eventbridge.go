package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// EventBridge rules on the default event bus, with targets, and the
// delivery of the account's own events (ECS task state changes) to the SQS
// queues they target: the feed of Prefect's ECS observer
// (docs/research/prefect-flow-runs.md §B.4). Behaviour follows the
// EventBridge API reference (https://docs.aws.amazon.com/eventbridge/latest/APIReference/):
//   - PutRule creates or replaces a rule and answers its ARN
//     (arn:aws:events:REGION:ACCOUNT:rule/NAME on the default bus);
//   - an unknown rule is ResourceNotFoundException "Rule NAME does not exist
//     on EventBus default." (as real DescribeRule/PutTargets answer:
//     turbot/steampipe-plugin-aws#1591);
//   - DeleteRule is refused with ValidationException "Rule can't be deleted
//     since it has targets." while targets remain
//     (hashicorp/terraform-provider-aws#18519), and succeeds for a rule that
//     does not exist (getmoto/moto#5631, checked against AWS);
//   - PutTargets accepts any well-formed ARN (a missing queue fails only at
//     delivery) and at most 5 targets per rule.
//
// Delivery to an SQS queue needs the queue's policy to let the service
// principal events.amazonaws.com call sqs:SendMessage with aws:SourceArn
// equal to the rule's ARN (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions);
// otherwise EventBridge cannot deliver and the event is dropped (the real
// service retries for up to 24 hours and then drops it, or sends it to the
// target's dead-letter queue; the simulation drops at once and records why,
// see World.EventDeliveries).

type ebRule struct {
	Name, ARN, Bus       string
	Pattern              string
	pattern              map[string]any
	Schedule             string
	State                ebtypes.RuleState
	Description, RoleArn string
	Tags                 map[string]string
	Targets              []ebtypes.Target // in the order they were put
	Created              time.Time
	CreatedBy, ManagedBy string
}

type ebState struct {
	Rules      map[string]*ebRule // by name (default bus only)
	Deliveries []EventDelivery
}

// EventDelivery is one event that matched one rule's target, delivered or
// not.
type EventDelivery struct {
	At        time.Time
	Rule      string // rule ARN
	Target    string // target ARN
	EventID   string
	Delivered bool
	Reason    string // why not, when not delivered
}

func (w *World) eb() *ebState {
	return State(w, "eventbridge", func() *ebState { return &ebState{Rules: map[string]*ebRule{}} })
}

// EventDeliveries lists every matched event and whether it reached its
// target, oldest first.
func (w *World) EventDeliveries() []EventDelivery {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.advance()
	return append([]EventDelivery(nil), w.eb().Deliveries...)
}

var ebNameRe = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,64}$`)

func (w *World) ebRuleARN(name string) string { return w.arn("events", "rule/"+name) }

func ebNotFound(rule string) error {
	return &ebtypes.ResourceNotFoundException{Message: aws.String("Rule " + rule + " does not exist on EventBus default.")}
}

func ebValidation(msg string) error { return Err("ValidationException", msg) }

// ebBus checks the event bus parameter: only the default bus exists in the
// simulated account (by name or ARN).
func (w *World) ebBus(name *string) error {
	n := aws.ToString(name)
	if n == "" || n == "default" || n == w.arn("events", "event-bus/default") {
		return nil
	}
	return &ebtypes.ResourceNotFoundException{Message: aws.String("Event bus " + n + " does not exist.")}
}

func (w *World) ebRule(name *string, bus *string) (*ebRule, error) {
	if err := w.ebBus(bus); err != nil {
		return nil, err
	}
	n := aws.ToString(name)
	if strings.HasPrefix(n, "arn:") {
		n = lastSegment(n)
	}
	r, ok := w.eb().Rules[n]
	if !ok {
		return nil, ebNotFound(n)
	}
	return r, nil
}

// ebRuleByARN finds a rule by its ARN (the tagging APIs' ResourceARN).
func (w *World) ebRuleByARN(arn string) (*ebRule, error) {
	prefix := w.arn("events", "rule/")
	if !strings.HasPrefix(arn, prefix) {
		return nil, ebValidation("Parameter ResourceARN is not valid. Reason: Provided Arn is not in correct format.")
	}
	name := strings.TrimPrefix(arn, prefix)
	r, ok := w.eb().Rules[name]
	if !ok {
		return nil, ebNotFound(name)
	}
	return r, nil
}

var arnRe = regexp.MustCompile(`^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]*:.+$`)

func (r *ebRule) view(w *World) (out struct {
	Arn, Name, EventPattern, ScheduleExpression, Description, RoleArn, EventBusName, CreatedBy, ManagedBy *string
	State                                                                                                 ebtypes.RuleState
}) {
	out.Arn, out.Name, out.EventBusName = aws.String(r.ARN), aws.String(r.Name), aws.String("default")
	out.State = r.State
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return aws.String(s)
	}
	out.EventPattern, out.ScheduleExpression = opt(r.Pattern), opt(r.Schedule)
	out.Description, out.RoleArn, out.CreatedBy, out.ManagedBy = opt(r.Description), opt(r.RoleArn), opt(r.CreatedBy), opt(r.ManagedBy)
	return out
}

func init() {
	RegisterInventory(func(w *World) []Item {
		return listed(w.eb().Rules, func(_ string, r *ebRule) (Item, bool) {
			return Item{Service: "events", Type: "rule", ID: r.ARN, Tags: copyTags(r.Tags)}, true
		})
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.PutRuleInput) (*eventbridge.PutRuleOutput, error) {
		if err := w.ebBus(in.EventBusName); err != nil {
			return nil, err
		}
		name := aws.ToString(in.Name)
		if !ebNameRe.MatchString(name) {
			return nil, ebValidation("1 validation error detected: Value '" + name + "' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
		}
		pattern, schedule := aws.ToString(in.EventPattern), aws.ToString(in.ScheduleExpression)
		if pattern == "" && schedule == "" {
			return nil, ebValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
		}
		var parsed map[string]any
		if pattern != "" {
			var err error
			if parsed, err = parseEventPattern(pattern); err != nil {
				return nil, &ebtypes.InvalidEventPatternException{Message: aws.String("Event pattern is not valid. Reason: " + err.Error())}
			}
		}
		state := in.State
		if state == "" {
			state = ebtypes.RuleStateEnabled
		}
		if state != ebtypes.RuleStateEnabled && state != ebtypes.RuleStateDisabled && state != ebtypes.RuleStateEnabledWithAllCloudtrailManagementEvents {
			return nil, ebValidation("1 validation error detected: Value '" + string(state) + "' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]")
		}
		st := w.eb()
		r, exists := st.Rules[name]
		if !exists {
			r = &ebRule{Name: name, ARN: w.ebRuleARN(name), Bus: "default", Created: w.Clock.Now(), CreatedBy: w.Account, Tags: map[string]string{}}
			for _, t := range in.Tags {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			st.Rules[name] = r
		}
		// PutRule replaces the rule's definition with what is given; tags of
		// an existing rule change only through TagResource/UntagResource.
		r.Pattern, r.pattern, r.Schedule, r.State = pattern, parsed, schedule, state
		r.Description, r.RoleArn = aws.ToString(in.Description), aws.ToString(in.RoleArn)
		return &eventbridge.PutRuleOutput{RuleArn: aws.String(r.ARN)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.DescribeRuleInput) (*eventbridge.DescribeRuleOutput, error) {
		r, err := w.ebRule(in.Name, in.EventBusName)
		if err != nil {
			return nil, err
		}
		v := r.view(w)
		return &eventbridge.DescribeRuleOutput{Arn: v.Arn, Name: v.Name, EventPattern: v.EventPattern, ScheduleExpression: v.ScheduleExpression,
			State: v.State, Description: v.Description, RoleArn: v.RoleArn, EventBusName: v.EventBusName, CreatedBy: v.CreatedBy, ManagedBy: v.ManagedBy}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.DeleteRuleInput) (*eventbridge.DeleteRuleOutput, error) {
		if err := w.ebBus(in.EventBusName); err != nil {
			return nil, err
		}
		r, ok := w.eb().Rules[aws.ToString(in.Name)]
		if !ok {
			return &eventbridge.DeleteRuleOutput{}, nil
		}
		if len(r.Targets) > 0 {
			return nil, ebValidation("Rule can't be deleted since it has targets.")
		}
		delete(w.eb().Rules, r.Name)
		return &eventbridge.DeleteRuleOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.ListRulesInput) (*eventbridge.ListRulesOutput, error) {
		if err := w.ebBus(in.EventBusName); err != nil {
			return nil, err
		}
		var rules []ebtypes.Rule
		for _, n := range sortedKeys(w.eb().Rules) {
			if !strings.HasPrefix(n, aws.ToString(in.NamePrefix)) {
				continue
			}
			v := w.eb().Rules[n].view(w)
			rules = append(rules, ebtypes.Rule{Arn: v.Arn, Name: v.Name, EventPattern: v.EventPattern, ScheduleExpression: v.ScheduleExpression,
				State: v.State, Description: v.Description, RoleArn: v.RoleArn, EventBusName: v.EventBusName, ManagedBy: v.ManagedBy})
		}
		page, next, err := ebPaginate(rules, in.NextToken, in.Limit)
		return &eventbridge.ListRulesOutput{Rules: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.ListRuleNamesByTargetInput) (*eventbridge.ListRuleNamesByTargetOutput, error) {
		if err := w.ebBus(in.EventBusName); err != nil {
			return nil, err
		}
		target := aws.ToString(in.TargetArn)
		var names []string
		for _, n := range sortedKeys(w.eb().Rules) {
			for _, t := range w.eb().Rules[n].Targets {
				if aws.ToString(t.Arn) == target {
					names = append(names, n)
					break
				}
			}
		}
		page, next, err := ebPaginate(names, in.NextToken, in.Limit)
		return &eventbridge.ListRuleNamesByTargetOutput{RuleNames: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.PutTargetsInput) (*eventbridge.PutTargetsOutput, error) {
		r, err := w.ebRule(in.Rule, in.EventBusName)
		if err != nil {
			return nil, err
		}
		if len(in.Targets) == 0 || len(in.Targets) > 10 {
			return nil, ebValidation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10")
		}
		out := &eventbridge.PutTargetsOutput{FailedEntries: []ebtypes.PutTargetsResultEntry{}}
		for _, t := range in.Targets {
			id, arn := aws.ToString(t.Id), aws.ToString(t.Arn)
			if !ebNameRe.MatchString(id) {
				return nil, ebValidation("1 validation error detected: Value '" + id + "' at 'targets.1.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
			}
			if !arnRe.MatchString(arn) {
				return nil, ebValidation("Parameter " + arn + " is not valid. Reason: Provided Arn is not in correct format.")
			}
			replaced := false
			for i := range r.Targets {
				if aws.ToString(r.Targets[i].Id) == id {
					r.Targets[i] = clone(t)
					replaced = true
				}
			}
			if replaced {
				continue
			}
			// A rule has at most 5 targets (EventBridge quotas).
			if len(r.Targets) >= 5 {
				out.FailedEntries = append(out.FailedEntries, ebtypes.PutTargetsResultEntry{TargetId: aws.String(id),
					ErrorCode: aws.String("LimitExceededException"), ErrorMessage: aws.String("The requested resource exceeds the maximum number allowed.")})
				continue
			}
			r.Targets = append(r.Targets, clone(t))
		}
		out.FailedEntryCount = int32(len(out.FailedEntries))
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.ListTargetsByRuleInput) (*eventbridge.ListTargetsByRuleOutput, error) {
		r, err := w.ebRule(in.Rule, in.EventBusName)
		if err != nil {
			return nil, err
		}
		page, next, err := ebPaginate(clone(r.Targets), in.NextToken, in.Limit)
		if err != nil {
			return nil, err
		}
		if page == nil {
			page = []ebtypes.Target{}
		}
		return &eventbridge.ListTargetsByRuleOutput{Targets: page, NextToken: next}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.RemoveTargetsInput) (*eventbridge.RemoveTargetsOutput, error) {
		r, err := w.ebRule(in.Rule, in.EventBusName)
		if err != nil {
			return nil, err
		}
		if len(in.Ids) == 0 {
			return nil, ebValidation("1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 and 100")
		}
		var keep []ebtypes.Target
		for _, t := range r.Targets {
			if !containsString(in.Ids, aws.ToString(t.Id)) {
				keep = append(keep, t)
			}
		}
		r.Targets = keep
		return &eventbridge.RemoveTargetsOutput{FailedEntries: []ebtypes.RemoveTargetsResultEntry{}}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.TagResourceInput) (*eventbridge.TagResourceOutput, error) {
		r, err := w.ebRuleByARN(aws.ToString(in.ResourceARN))
		if err != nil {
			return nil, err
		}
		for _, t := range in.Tags {
			r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		return &eventbridge.TagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.UntagResourceInput) (*eventbridge.UntagResourceOutput, error) {
		r, err := w.ebRuleByARN(aws.ToString(in.ResourceARN))
		if err != nil {
			return nil, err
		}
		deleteKeys(r.Tags, in.TagKeys)
		return &eventbridge.UntagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *eventbridge.ListTagsForResourceInput) (*eventbridge.ListTagsForResourceOutput, error) {
		r, err := w.ebRuleByARN(aws.ToString(in.ResourceARN))
		if err != nil {
			return nil, err
		}
		tags := []ebtypes.Tag{}
		for _, k := range sortedKeys(r.Tags) {
			tags = append(tags, ebtypes.Tag{Key: aws.String(k), Value: aws.String(r.Tags[k])})
		}
		return &eventbridge.ListTagsForResourceOutput{Tags: tags}, nil
	})
}

// ebPaginate pages with EventBridge's limits (Limit 1..100).
func ebPaginate[T any](all []T, token *string, limit *int32) ([]T, *string, error) {
	if limit != nil && (*limit < 1 || *limit > 100) {
		return nil, nil, ebValidation("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 100")
	}
	page, next, err := paginate(all, token, limit, 100)
	if err != nil {
		return nil, nil, ebValidation("The NextToken provided is invalid.")
	}
	return page, next, nil
}

// emitEvent puts an event of the account on the default bus at `at` and
// delivers it to the SQS targets of every enabled rule whose pattern
// matches. Callers hold w.Mu.
func (w *World) emitEvent(at time.Time, source, detailType string, resources []string, detail map[string]any) {
	st := w.eb()
	if len(st.Rules) == 0 {
		return
	}
	id := uuidFrom(fmt.Sprintf("event#%d", w.NextSeq("event")))
	event := map[string]any{
		"version": "0", "id": id, "detail-type": detailType, "source": source, "account": w.Account,
		"time": at.UTC().Format("2006-01-02T15:04:05Z"), "region": w.Region, "resources": resources, "detail": detail,
	}
	body, _ := json.Marshal(event)
	var generic map[string]any
	_ = json.Unmarshal(body, &generic) // numbers as float64, as patterns compare them
	for _, name := range sortedKeys(st.Rules) {
		r := st.Rules[name]
		if r.State == ebtypes.RuleStateDisabled || r.pattern == nil || !matchPattern(r.pattern, generic) {
			continue
		}
		for _, t := range r.Targets {
			d := EventDelivery{At: at, Rule: r.ARN, Target: aws.ToString(t.Arn), EventID: id}
			d.Delivered, d.Reason = w.deliverToTarget(at, r, t, string(body))
			st.Deliveries = append(st.Deliveries, d)
		}
	}
	if len(st.Deliveries) > 10000 {
		st.Deliveries = st.Deliveries[len(st.Deliveries)-10000:]
	}
}

// deliverToTarget sends an event to one target as EventBridge would.
func (w *World) deliverToTarget(at time.Time, r *ebRule, t ebtypes.Target, body string) (bool, string) {
	arn := aws.ToString(t.Arn)
	if !strings.HasPrefix(arn, "arn:aws:sqs:") {
		return false, "only SQS targets are simulated"
	}
	q := w.sqsQueueByARN(arn)
	if q == nil {
		return false, "the queue " + arn + " does not exist"
	}
	req := resourceRequest{Principal: servicePrincipal("events.amazonaws.com"), Action: "sqs:SendMessage", Resource: q.ARN,
		Context: map[string]string{"aws:SourceArn": r.ARN, "aws:SourceAccount": w.Account}}
	if !resourcePolicyAllows(q.attr("Policy"), req) {
		return false, "the queue's policy does not allow events.amazonaws.com to sqs:SendMessage with aws:SourceArn " + r.ARN
	}
	if in := aws.ToString(t.Input); in != "" {
		body = in
	}
	w.sqsEnqueue(q, body, "AIDAIEVENTBRIDGESENDER", 0, at, nil)
	return true, ""
}
