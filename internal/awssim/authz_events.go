package awssim

import (
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Authorization of the SQS and EventBridge actions: the resource ARN and
// condition keys of each, from the Service Authorization Reference
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html)
// and SQS's ABAC keys
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-abac-condition-keys.html:
// aws:RequestTag and aws:TagKeys on CreateQueue, TagQueue and UntagQueue,
// aws:ResourceTag on queue operations). Queue actions are authorized on
// arn:aws:sqs:REGION:ACCOUNT:NAME; ListQueues on "*". Rule actions on
// arn:aws:events:REGION:ACCOUNT:rule/NAME; the list operations ListRules
// and ListRuleNamesByTarget on "*" (their rule scoping is not modelled).

// queueAndRuleAuthz answers authzResource for SQS and EventBridge inputs
// (ok false for other services). Callers do not hold w.Mu.
func (w *World) queueAndRuleAuthz(params any) (resource string, ctx map[string]string, ok bool) {
	queueByURL := func(u string) (string, map[string]string) {
		name := u[strings.LastIndex(u, "/")+1:]
		return w.sqsARN(name), w.queueTagContext(name)
	}
	switch in := params.(type) {
	case *sqs.CreateQueueInput:
		return w.sqsARN(aws.ToString(in.QueueName)), queueRequestTags(in.Tags), true
	case *sqs.GetQueueUrlInput:
		name := aws.ToString(in.QueueName)
		return w.sqsARN(name), w.queueTagContext(name), true
	case *sqs.TagQueueInput:
		r, c := queueByURL(aws.ToString(in.QueueUrl))
		for k, v := range queueRequestTags(in.Tags) {
			c[k] = v
		}
		return r, c, true
	case *sqs.UntagQueueInput:
		r, c := queueByURL(aws.ToString(in.QueueUrl))
		if len(in.TagKeys) > 0 {
			c["aws:TagKeys"] = strings.Join(in.TagKeys, ",")
		}
		return r, c, true
	case *sqs.ListQueuesInput:
		return "", nil, true
	case *sqs.GetQueueAttributesInput, *sqs.SetQueueAttributesInput, *sqs.DeleteQueueInput, *sqs.ListQueueTagsInput,
		*sqs.SendMessageInput, *sqs.ReceiveMessageInput, *sqs.DeleteMessageInput, *sqs.ChangeMessageVisibilityInput:
		r, c := queueByURL(inputString(in, "QueueUrl"))
		return r, c, true

	case *eventbridge.PutRuleInput:
		c := map[string]string{"events:creatorAccount": w.Account}
		for _, t := range in.Tags {
			c["aws:RequestTag/"+aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		return w.ebRuleARN(aws.ToString(in.Name)), c, true
	case *eventbridge.DescribeRuleInput, *eventbridge.DeleteRuleInput:
		name := inputString(in, "Name")
		return w.ruleAuthz(name), w.ruleTagContext(name), true
	case *eventbridge.ListTargetsByRuleInput, *eventbridge.RemoveTargetsInput:
		name := inputString(in, "Rule")
		return w.ruleAuthz(name), w.ruleTagContext(name), true
	case *eventbridge.PutTargetsInput:
		c := w.ruleTagContext(aws.ToString(in.Rule))
		if len(in.Targets) > 0 {
			c["events:TargetArn"] = aws.ToString(in.Targets[0].Arn)
		}
		return w.ruleAuthz(aws.ToString(in.Rule)), c, true
	case *eventbridge.TagResourceInput:
		c := map[string]string{}
		for _, t := range in.Tags {
			c["aws:RequestTag/"+aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		return aws.ToString(in.ResourceARN), c, true
	case *eventbridge.UntagResourceInput, *eventbridge.ListTagsForResourceInput:
		return inputString(in, "ResourceARN"), nil, true
	case *eventbridge.ListRulesInput, *eventbridge.ListRuleNamesByTargetInput:
		return "", nil, true
	}
	return "", nil, false
}

func (w *World) ruleAuthz(name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	return w.ebRuleARN(name)
}

func queueRequestTags(tags map[string]string) map[string]string {
	c := map[string]string{}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		c["aws:RequestTag/"+k] = v
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		c["aws:TagKeys"] = strings.Join(sortedStrings(keys), ",")
	}
	return c
}

func (w *World) queueTagContext(name string) map[string]string {
	c := map[string]string{}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	if q, ok := w.sqs().Queues[name]; ok {
		for k, v := range q.Tags {
			c["aws:ResourceTag/"+k] = v
		}
	}
	return c
}

func (w *World) ruleTagContext(name string) map[string]string {
	c := map[string]string{}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	if r, ok := w.eb().Rules[lastSegment(name)]; ok {
		for k, v := range r.Tags {
			c["aws:ResourceTag/"+k] = v
		}
	}
	return c
}

// queuePolicyDecision applies a queue's resource policy to a same-account
// principal's request: IAM allows the call when either the identity policy
// or the queue policy allows it, and denies it when either denies
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
// It answers (allow, deny) for SQS requests on an existing queue.
func (w *World) queuePolicyDecision(pr Principal, action, resource string, ctx map[string]string) (allow, deny bool) {
	if !strings.HasPrefix(action, "sqs:") || resource == "" {
		return false, false
	}
	w.Mu.Lock()
	q := w.sqsQueueByARN(resource)
	policy := ""
	if q != nil {
		policy = q.attr("Policy")
	}
	w.Mu.Unlock()
	arn := pr.ARN
	// An assumed-role session acts as its role
	// (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION matches a policy naming
	// arn:aws:iam::ACCOUNT:role/NAME).
	if strings.HasPrefix(arn, "arn:aws:sts::") && strings.Contains(arn, ":assumed-role/") {
		parts := strings.Split(arn, "/")
		arn = "arn:aws:iam::" + w.Account + ":role/" + parts[1]
	}
	return evalResourcePolicy(policy, resourceRequest{Principal: principalRef{ARN: arn}, Action: action, Resource: resource, Context: ctx})
}

func sortedStrings(s []string) []string { sort.Strings(s); return s }
