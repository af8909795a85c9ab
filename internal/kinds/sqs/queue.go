// Package sqs holds the SQS kind of a stack: the ECS observer's queue and
// its dead-letter queue (docs/research/prefect-flow-runs.md §B.4).
package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// KindQueue is the SQS queue kind.
const KindQueue resource.KindName = "sqs_queue"

// QueueSpec is a standard queue.
type QueueSpec struct {
	Name string
	// VisibilityTimeout and MessageRetention are in seconds.
	VisibilityTimeout int
	MessageRetention  int
	// DeadLetterQueue is the ARN of the queue that messages received
	// MaxReceiveCount times move to; nil for none.
	DeadLetterQueue *resource.Ref
	MaxReceiveCount int
	// Policy is the queue's resource policy; nil for none.
	Policy *iam.PolicyDocument
}

// QueueModel is what a plan compares of a queue.
type QueueModel struct {
	VisibilityTimeout int      `attr:"visibility_timeout_seconds"`
	MessageRetention  int      `attr:"message_retention_seconds"`
	Redrive           *Redrive `attr:"redrive"`
	// Policy is canonical (iam.CanonicalPolicy); nil for none.
	Policy *string `attr:"policy"`
}

// Redrive is a queue's redrive policy.
type Redrive struct {
	DeadLetterQueue string `attr:"dead_letter_queue,replace_if_unknown"`
	MaxReceiveCount int    `attr:"max_receive_count"`
}

// Normalize canonicalises the policy.
func (m *QueueModel) Normalize() {
	if m.Policy != nil && *m.Policy == "" {
		m.Policy = nil
	}
	if m.Policy != nil {
		p := iam.CanonicalPolicy(*m.Policy)
		m.Policy = &p
	}
}

// QueueDetail is what Update and Delete need of a live queue.
type QueueDetail struct{ URL string }

// Queue is the SQS queue kind.
var Queue = resource.Define[QueueSpec, QueueModel, QueueDetail, awsapi.SQSAPI](KindQueue, queueKind{},
	func(a resource.APIs) (awsapi.SQSAPI, error) {
		if a.AWS == nil || a.AWS.SQS == nil {
			return nil, fmt.Errorf("no SQS client")
		}
		return a.AWS.SQS, nil
	})

type queueKind struct{}

type (
	x     = resource.Context[awsapi.SQSAPI]
	queue = resource.Typed[QueueSpec]
	found = resource.Found[QueueModel, QueueDetail]
)

func (queueKind) Desired(r *queue, refs resource.Refs) QueueModel {
	s := r.Spec
	m := QueueModel{VisibilityTimeout: s.VisibilityTimeout, MessageRetention: s.MessageRetention}
	if s.DeadLetterQueue != nil {
		m.Redrive = &Redrive{DeadLetterQueue: s.DeadLetterQueue.Resolve(refs), MaxReceiveCount: s.MaxReceiveCount}
	}
	if s.Policy != nil {
		p := s.Policy.JSON(refs)
		m.Policy = &p
	}
	return m
}

// attributes are the queue attributes the spec sets, as SQS takes them.
func attributes(s *QueueSpec, refs resource.Refs) (map[string]string, error) {
	a := map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(s.VisibilityTimeout),
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(s.MessageRetention),
		string(sqstypes.QueueAttributeNameRedrivePolicy):          "",
		string(sqstypes.QueueAttributeNamePolicy):                 "",
	}
	if s.DeadLetterQueue != nil {
		dlq := s.DeadLetterQueue.Resolve(refs)
		if dlq == plan.Unknown {
			return nil, fmt.Errorf("queue %s: its dead-letter queue does not exist yet", s.Name)
		}
		b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlq, "maxReceiveCount": s.MaxReceiveCount})
		a[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(b)
	}
	if s.Policy != nil {
		a[string(sqstypes.QueueAttributeNamePolicy)] = s.Policy.JSON(refs)
	}
	return a, nil
}

// withoutEmpty drops the attributes a create leaves unset.
func withoutEmpty(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// readAttrs are the attributes a Read asks for.
var readAttrs = []sqstypes.QueueAttributeName{
	sqstypes.QueueAttributeNameQueueArn, sqstypes.QueueAttributeNameVisibilityTimeout,
	sqstypes.QueueAttributeNameMessageRetentionPeriod, sqstypes.QueueAttributeNameRedrivePolicy,
	sqstypes.QueueAttributeNamePolicy,
}

func (queueKind) Read(ctx context.Context, x *x, r *queue) (*found, error) {
	url, err := x.API.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(r.Name)})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GetQueueUrl %s: %w", r.Name, err)
	}
	u := aws.ToString(url.QueueUrl)
	// The attributes and the tags need only the URL: read them at once.
	var (
		attrs   *awssqs.GetQueueAttributesOutput
		tags    *awssqs.ListQueueTagsOutput
		aErr    error
		tErr    error
		done    = make(chan struct{})
		request = &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: readAttrs}
	)
	go func() {
		defer close(done)
		tags, tErr = x.API.ListQueueTags(ctx, &awssqs.ListQueueTagsInput{QueueUrl: aws.String(u)})
	}()
	attrs, aErr = x.API.GetQueueAttributes(ctx, request)
	<-done
	if awserr.IsNotFound(aErr) || awserr.IsNotFound(tErr) {
		return nil, nil // deleted meanwhile
	}
	if aErr != nil {
		return nil, fmt.Errorf("GetQueueAttributes %s: %w", r.Name, aErr)
	}
	if tErr != nil {
		return nil, fmt.Errorf("ListQueueTags %s: %w", r.Name, tErr)
	}
	a := attrs.Attributes
	arn := a[string(sqstypes.QueueAttributeNameQueueArn)]
	m := QueueModel{}
	if p := a[string(sqstypes.QueueAttributeNamePolicy)]; p != "" {
		m.Policy = &p
	}
	m.VisibilityTimeout, _ = strconv.Atoi(a[string(sqstypes.QueueAttributeNameVisibilityTimeout)])
	m.MessageRetention, _ = strconv.Atoi(a[string(sqstypes.QueueAttributeNameMessageRetentionPeriod)])
	if rp := a[string(sqstypes.QueueAttributeNameRedrivePolicy)]; rp != "" {
		rd, err := parseRedrive(rp)
		if err != nil {
			return nil, fmt.Errorf("queue %s: its RedrivePolicy %q: %w", r.Name, rp, err)
		}
		m.Redrive = rd
	}
	return &found{ID: arn, ARN: arn, Tags: tags.Tags, Model: m, Detail: QueueDetail{URL: u},
		Outputs: resource.Outputs{"arn": arn, "url": u, "name": r.Name}}, nil
}

// parseRedrive reads a RedrivePolicy, whose maxReceiveCount SQS gives as a
// number or a string (API_SetQueueAttributes).
func parseRedrive(s string) (*Redrive, error) {
	var raw struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(string(raw.MaxReceiveCount))
	if err != nil {
		var q string
		if json.Unmarshal(raw.MaxReceiveCount, &q) != nil {
			return nil, fmt.Errorf("maxReceiveCount is not a number")
		}
		if n, err = strconv.Atoi(q); err != nil {
			return nil, fmt.Errorf("maxReceiveCount is not a number")
		}
	}
	return &Redrive{DeadLetterQueue: raw.DeadLetterTargetArn, MaxReceiveCount: n}, nil
}

// Error codes of CreateQueue (API_CreateQueue; the SDK reports the query
// protocol's code, docs in internal/awssim/sqs.go), with the exception names
// an endpoint without the query-compatible header answers.
var (
	deletedRecently = awserr.IsCode("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently")
	nameExists      = awserr.IsCode("QueueAlreadyExists", "QueueNameExists")
)

// nameReuseWait bounds the wait for a name SQS keeps for 60 seconds after a
// delete ("you must wait at least 60 seconds before creating a queue with
// the same name", API_DeleteQueue): a destroy and apply in a row, or a
// re-run after a destroy that crashed.
const nameReuseWait = 2 * time.Minute

func (k queueKind) Create(ctx context.Context, x *x, r *queue, refs resource.Refs) (resource.Outputs, error) {
	attrs, err := attributes(r.Spec, refs)
	if err != nil {
		return nil, err
	}
	err = retry.Do(ctx, x.Waits(r.Address, nameReuseWait, resource.RetryEvery), "the queue name "+r.Name+" (SQS keeps a deleted queue's name for 60 s)", deletedRecently, func() error {
		_, err := x.API.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(r.Spec.Name), Attributes: withoutEmpty(attrs), Tags: r.Tags})
		return err
	})
	if err != nil && !nameExists(err) {
		return nil, fmt.Errorf("CreateQueue %s: %w", r.Spec.Name, err)
	}
	live, err := k.Read(ctx, x, r)
	if err != nil {
		return nil, err
	}
	if live == nil {
		return nil, fmt.Errorf("queue %s: created but not found", r.Spec.Name)
	}
	if !resource.IsOurs(r.Tags, live.Tags) {
		return nil, fmt.Errorf("SQS queue %s %w", r.Spec.Name, resource.ErrNotOurs)
	}
	if nameExists(err) {
		// Ours, with other attributes (a run that died between a create and
		// a later change): converge it.
		d := &resource.Delta[QueueModel, QueueDetail]{Desired: resource.Normalize(k.Desired(r, refs)), Live: resource.Normalize(live.Model), Found: live,
			Tags: resource.Tags(r.Tags, live.Tags)}
		return k.Update(ctx, x, r, d, refs)
	}
	return live.Outputs, nil
}

func (queueKind) Update(ctx context.Context, x *x, r *queue, d *resource.Delta[QueueModel, QueueDetail], refs resource.Refs) (resource.Outputs, error) {
	url := d.Found.Detail.URL
	if !d.OnlyTags() {
		attrs, err := attributes(r.Spec, refs)
		if err != nil {
			return nil, err
		}
		if _, err := x.API.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs}); err != nil {
			return nil, fmt.Errorf("SetQueueAttributes %s: %w", r.Name, err)
		}
	}
	if err := awstags.SQS(x.API).Apply(ctx, url, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

func (queueKind) Delete(ctx context.Context, x *x, r *queue, _ *found) error {
	url, err := x.API.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(r.Name)})
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("GetQueueUrl %s: %w", r.Name, err)
	}
	if _, err := x.API.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: url.QueueUrl}); err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteQueue %s: %w", r.Name, err)
	}
	return nil
}
