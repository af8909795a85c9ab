// Package eventbridge holds the EventBridge kind of a stack: the rule that
// sends the cluster's ECS task state changes to the ECS observer's queue
// (docs/research/prefect-flow-runs.md §B.4), with its targets.
package eventbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// KindRule is the EventBridge rule kind.
const KindRule resource.KindName = "event_rule"

// RuleSpec is a rule on the account's default event bus.
type RuleSpec struct {
	Name        string
	Description string
	// EventPattern is the pattern as JSON.
	EventPattern string
	// Targets are by target id.
	Targets map[string]resource.Ref
}

// RuleModel is what a plan compares of a rule.
type RuleModel struct {
	// EventPattern is canonical JSON (keys sorted, compact).
	EventPattern string            `attr:"event_pattern"`
	State        string            `attr:"state"`
	Description  string            `attr:"description"`
	Targets      map[string]string `attr:"target"`
}

// Normalize canonicalises the pattern.
func (m *RuleModel) Normalize() { m.EventPattern = canonicalJSON(m.EventPattern) }

// canonicalJSON is doc with its keys sorted and no whitespace (a document
// that does not parse stays as it is, and so shows as a change).
func canonicalJSON(doc string) string {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return doc
	}
	b, err := json.Marshal(v)
	if err != nil {
		return doc
	}
	return string(b)
}

// Rule is the EventBridge rule kind.
var Rule = resource.Define[RuleSpec, RuleModel, struct{}, awsapi.EventBridgeAPI](KindRule, ruleKind{},
	func(a resource.APIs) (awsapi.EventBridgeAPI, error) {
		if a.AWS == nil || a.AWS.EventBridge == nil {
			return nil, fmt.Errorf("no EventBridge client")
		}
		return a.AWS.EventBridge, nil
	})

type ruleKind struct{}

type (
	x     = resource.Context[awsapi.EventBridgeAPI]
	rule  = resource.Typed[RuleSpec]
	found = resource.Found[RuleModel, struct{}]
)

// stateEnabled: the rule sends events (PutRule's State).
const stateEnabled = string(ebtypes.RuleStateEnabled)

func (ruleKind) Desired(r *rule, refs resource.Refs) RuleModel {
	m := RuleModel{EventPattern: r.Spec.EventPattern, State: stateEnabled, Description: r.Spec.Description, Targets: map[string]string{}}
	for id, ref := range r.Spec.Targets {
		m.Targets[id] = ref.Resolve(refs)
	}
	return m
}

func (ruleKind) Read(ctx context.Context, x *x, r *rule) (*found, error) {
	out, err := x.API.DescribeRule(ctx, &eb.DescribeRuleInput{Name: aws.String(r.Name)})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeRule %s: %w", r.Name, err)
	}
	arn := aws.ToString(out.Arn)
	f := &found{ID: arn, ARN: arn, Outputs: resource.Outputs{"arn": arn, "name": r.Name},
		Model: RuleModel{EventPattern: aws.ToString(out.EventPattern), State: string(out.State), Description: aws.ToString(out.Description), Targets: map[string]string{}}}
	// The tags and the targets need only the rule: read them at once.
	var (
		wg           sync.WaitGroup
		tags         map[string]string
		targets      map[string]string
		tErr, tgtErr error
	)
	wg.Go(func() {
		out, err := x.API.ListTagsForResource(ctx, &eb.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
		if err == nil {
			tags = awstags.EventBridgeMap(out.Tags)
		}
		tErr = err
	})
	wg.Go(func() { targets, tgtErr = listTargets(ctx, x, r.Name) })
	wg.Wait()
	if awserr.IsNotFound(tErr) || awserr.IsNotFound(tgtErr) {
		return nil, nil // deleted meanwhile
	}
	if tErr != nil {
		return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, tErr)
	}
	if !resource.IsOurs(r.Tags, tags) {
		f.Tags = tags
		return f, nil // a conflict: its targets are not compared
	}
	if tgtErr != nil {
		return nil, tgtErr
	}
	f.Tags, f.Model.Targets = tags, targets
	return f, nil
}

// listTargets is every target of the rule by id, all pages.
func listTargets(ctx context.Context, x *x, name string) (map[string]string, error) {
	out := map[string]string{}
	var token *string
	for {
		page, err := x.API.ListTargetsByRule(ctx, &eb.ListTargetsByRuleInput{Rule: aws.String(name), NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("ListTargetsByRule %s: %w", name, err)
		}
		for _, t := range page.Targets {
			out[aws.ToString(t.Id)] = aws.ToString(t.Arn)
		}
		if token = page.NextToken; token == nil || *token == "" {
			return out, nil
		}
	}
}

func putRule(ctx context.Context, x *x, r *rule, tags bool) (string, error) {
	in := &eb.PutRuleInput{Name: aws.String(r.Spec.Name), EventPattern: aws.String(r.Spec.EventPattern),
		State: ebtypes.RuleStateEnabled, Description: aws.String(r.Spec.Description)}
	if tags {
		// Tags go with the create; PutRule on an existing rule leaves its
		// tags as they are (API_PutRule).
		in.Tags = awstags.EventBridgeList(r.Tags)
	}
	out, err := x.API.PutRule(ctx, in)
	if err != nil {
		return "", fmt.Errorf("PutRule %s: %w", r.Spec.Name, err)
	}
	return aws.ToString(out.RuleArn), nil
}

// putTargets sets the spec's targets of the rule whose live targets are
// have (only those that differ).
func putTargets(ctx context.Context, x *x, r *rule, refs resource.Refs, have map[string]string) error {
	var targets []ebtypes.Target
	for _, id := range slices.Sorted(maps.Keys(r.Spec.Targets)) {
		arn := r.Spec.Targets[id].Resolve(refs)
		if arn == plan.Unknown {
			return fmt.Errorf("rule %s: target %s does not exist yet", r.Spec.Name, id)
		}
		if have[id] != arn {
			targets = append(targets, ebtypes.Target{Id: aws.String(id), Arn: aws.String(arn)})
		}
	}
	if len(targets) > 0 {
		out, err := x.API.PutTargets(ctx, &eb.PutTargetsInput{Rule: aws.String(r.Spec.Name), Targets: targets})
		if err != nil {
			return fmt.Errorf("PutTargets %s: %w", r.Spec.Name, err)
		}
		if out.FailedEntryCount > 0 {
			f := out.FailedEntries[0]
			return fmt.Errorf("PutTargets %s: target %s: %s: %s", r.Spec.Name, aws.ToString(f.TargetId), aws.ToString(f.ErrorCode), aws.ToString(f.ErrorMessage))
		}
	}
	var extra []string
	for id := range have {
		if _, ours := r.Spec.Targets[id]; !ours {
			extra = append(extra, id)
		}
	}
	return removeTargets(ctx, x, r.Spec.Name, extra)
}

func removeTargets(ctx context.Context, x *x, name string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	out, err := x.API.RemoveTargets(ctx, &eb.RemoveTargetsInput{Rule: aws.String(name), Ids: ids})
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("RemoveTargets %s: %w", name, err)
	}
	if out.FailedEntryCount > 0 {
		f := out.FailedEntries[0]
		return fmt.Errorf("RemoveTargets %s: target %s: %s: %s", name, aws.ToString(f.TargetId), aws.ToString(f.ErrorCode), aws.ToString(f.ErrorMessage))
	}
	return nil
}

func (k ruleKind) Create(ctx context.Context, x *x, r *rule, refs resource.Refs) (resource.Outputs, error) {
	// PutRule creates or updates: look first, so that a rule under our name
	// that is not ours is never taken over.
	live, err := k.Read(ctx, x, r)
	if err != nil {
		return nil, err
	}
	if live != nil && !resource.IsOurs(r.Tags, live.Tags) {
		return nil, fmt.Errorf("EventBridge rule %s %w", r.Spec.Name, resource.ErrNotOurs)
	}
	arn, err := putRule(ctx, x, r, live == nil)
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	if live != nil {
		have = live.Model.Targets
		if err := awstags.EventBridge(x.API).Apply(ctx, arn, resource.Tags(r.Tags, live.Tags)); err != nil {
			return nil, err
		}
	}
	if err := putTargets(ctx, x, r, refs, have); err != nil {
		return nil, err
	}
	return resource.Outputs{"arn": arn, "name": r.Spec.Name}, nil
}

func (ruleKind) Update(ctx context.Context, x *x, r *rule, d *resource.Delta[RuleModel, struct{}], refs resource.Refs) (resource.Outputs, error) {
	if d.Desired.EventPattern != d.Live.EventPattern || d.Desired.State != d.Live.State || d.Desired.Description != d.Live.Description {
		if _, err := putRule(ctx, x, r, false); err != nil {
			return nil, err
		}
	}
	if !resource.Equal(d.Desired.Targets, d.Live.Targets) {
		if err := putTargets(ctx, x, r, refs, d.Live.Targets); err != nil {
			return nil, err
		}
	}
	if err := awstags.EventBridge(x.API).Apply(ctx, d.Found.ID, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

// hasTargets is DeleteRule's refusal while targets remain (API_DeleteRule:
// "you must remove all targets from the rule").
var hasTargets = awserr.CodeWithMessage("ValidationException", "targets")

func (ruleKind) Delete(ctx context.Context, x *x, r *rule, _ *found) error {
	// The targets go before the rule (API_DeleteRule), and only then may
	// the queue they name go.
	targets, err := listTargets(ctx, x, r.Name)
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := removeTargets(ctx, x, r.Name, slices.Collect(maps.Keys(targets))); err != nil {
		return err
	}
	err = retry.Do(ctx, x.Waits(r.Address, time.Minute, resource.RetryEvery), "DeleteRule "+r.Name, hasTargets, func() error {
		_, err := x.API.DeleteRule(ctx, &eb.DeleteRuleInput{Name: aws.String(r.Name)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteRule %s: %w", r.Name, err)
	}
	return nil
}
