package awssim

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQS standard queues: the ECS observer's queue and dead-letter queue
// (docs/research/prefect-flow-runs.md §B.2, §B.4). Semantics follow the SQS
// API reference (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/):
// CreateQueue returns the existing queue when every given attribute matches
// and QueueNameExists otherwise; a deleted name can't be reused for 60 s
// (QueueDeletedRecently); ReceiveMessage hides what it returns for the
// visibility timeout, long-polls on the world's clock, and moves a message
// to the redrive policy's dead-letter queue once it has been received
// maxReceiveCount times. FIFO queues are accepted but behave like standard
// queues (no ordering or deduplication): nothing in deploybot uses them.
//
// The SDK speaks SQS's JSON protocol, whose responses carry the query
// protocol's error code in x-amzn-query-error; the SDK puts it in
// ErrorCodeOverride, so ErrorCode() is e.g.
// "AWS.SimpleQueueService.NonExistentQueue" while errors.As finds
// *types.QueueDoesNotExist. The codes are the model's awsQueryError traits
// (aws-sdk-js-v3 clients/client-sqs/src/schemas/schemas_0.ts).

// sqsNameReuse is how long a deleted queue's name stays taken (API_CreateQueue,
// API_DeleteQueue: "you must wait at least 60 seconds").
const sqsNameReuse = 60 * time.Second

type sqsQueue struct {
	Name, URL, ARN    string
	Attrs             map[string]string // settable attributes as stored
	Tags              map[string]string
	Created, Modified time.Time
	msgs              []*sqsMessage // in send order
}

type sqsMessage struct {
	ID, Body     string
	Sent         time.Time
	VisibleAt    time.Time // delayed or in flight until then
	ReceiveCount int
	FirstReceive time.Time
	receipt      string // the latest receipt handle
	Sender       string
	Attrs        map[string]sqstypes.MessageAttributeValue
}

type sqsState struct {
	Queues  map[string]*sqsQueue // by name
	Deleted map[string]time.Time // name → when it was deleted
}

func (w *World) sqs() *sqsState {
	return State(w, "sqs", func() *sqsState {
		return &sqsState{Queues: map[string]*sqsQueue{}, Deleted: map[string]time.Time{}}
	})
}

// sqsQueueAttrs are the settable attributes with their defaults ("" = no
// default, the attribute is absent until set) and their valid integer
// ranges (API_CreateQueue, API_SetQueueAttributes).
var sqsQueueAttrs = map[string]struct {
	def      string
	min, max int64 // for integer attributes; max 0 = not an integer
}{
	"DelaySeconds":                  {"0", 0, 900},
	"MaximumMessageSize":            {"1048576", 1024, 1048576},
	"MessageRetentionPeriod":        {"345600", 60, 1209600},
	"ReceiveMessageWaitTimeSeconds": {"0", 0, 20},
	"VisibilityTimeout":             {"30", 0, 43200},
	"KmsDataKeyReusePeriodSeconds":  {"", 60, 86400},
	"Policy":                        {"", 0, 0},
	"RedrivePolicy":                 {"", 0, 0},
	"RedriveAllowPolicy":            {"", 0, 0},
	"KmsMasterKeyId":                {"", 0, 0},
	"SqsManagedSseEnabled":          {"true", 0, 0},
	"FifoQueue":                     {"", 0, 0},
	"ContentBasedDeduplication":     {"", 0, 0},
	"DeduplicationScope":            {"", 0, 0},
	"FifoThroughputLimit":           {"", 0, 0},
}

// sqsReadOnlyAttrs are the attributes GetQueueAttributes computes.
var sqsReadOnlyAttrs = []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
	"ApproximateNumberOfMessagesNotVisible", "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"}

var sqsNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func sqsNotFound() error {
	return &sqstypes.QueueDoesNotExist{Message: aws.String("The specified queue does not exist."),
		ErrorCodeOverride: aws.String("AWS.SimpleQueueService.NonExistentQueue")}
}

func sqsInvalidValue(name string) error {
	return &sqstypes.InvalidAttributeValue{Message: aws.String("Invalid value for the parameter " + name + ".")}
}

func sqsInvalidParameter(msg string) error {
	// InvalidParameterValue has no modelled exception: the SDK surfaces it as
	// a generic API error with that code.
	return Err("InvalidParameterValue", msg)
}

func (w *World) sqsURL(name string) string {
	return "https://sqs." + w.Region + ".amazonaws.com/" + w.Account + "/" + name
}

func (w *World) sqsARN(name string) string { return w.arn("sqs", name) }

// sqsQueueByURL finds a queue by its URL (either endpoint style the SDK or a
// user may pass: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME or the legacy
// https://REGION.queue.amazonaws.com/ACCOUNT/NAME). Callers hold w.Mu.
func (w *World) sqsQueueByURL(url *string) (*sqsQueue, error) {
	u := aws.ToString(url)
	if u == "" {
		return nil, sqsInvalidParameter("Value for parameter QueueUrl is invalid. Reason: Must specify a queue URL.")
	}
	rest := u
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != w.Account {
		return nil, sqsNotFound()
	}
	q, ok := w.sqs().Queues[parts[2]]
	if !ok {
		return nil, sqsNotFound()
	}
	return q, nil
}

// sqsQueueByARN finds a queue by ARN. Callers hold w.Mu.
func (w *World) sqsQueueByARN(arn string) *sqsQueue {
	prefix := w.sqsARN("")
	if !strings.HasPrefix(arn, prefix) {
		return nil
	}
	return w.sqs().Queues[strings.TrimPrefix(arn, prefix)]
}

// sqsRedrive is a parsed RedrivePolicy.
type sqsRedrive struct {
	DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	MaxReceiveCount     int    `json:"maxReceiveCount"`
}

// parseRedrive reads a RedrivePolicy; maxReceiveCount may be a number or a
// string, as SQS accepts both.
func parseRedrive(s string) (sqsRedrive, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return sqsRedrive{}, err
	}
	var r sqsRedrive
	r.DeadLetterTargetArn, _ = raw["deadLetterTargetArn"].(string)
	switch v := raw["maxReceiveCount"].(type) {
	case float64:
		r.MaxReceiveCount = int(v)
	case string:
		n, err := strconv.Atoi(v)
		if err != nil {
			return r, err
		}
		r.MaxReceiveCount = n
	case nil:
		r.MaxReceiveCount = 10 // API_SetQueueAttributes: "Default: 10"
	default:
		return r, errors.New("maxReceiveCount is not a number")
	}
	return r, nil
}

// normalizeQueueAttrs validates the given attributes and returns them as
// SQS stores them. Callers hold w.Mu (the redrive target must exist).
func (w *World) normalizeQueueAttrs(attrs map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range sortedKeys(attrs) {
		v := attrs[name]
		spec, ok := sqsQueueAttrs[name]
		if !ok {
			return nil, &sqstypes.InvalidAttributeName{Message: aws.String("Unknown Attribute " + name + ".")}
		}
		switch {
		case spec.max > 0:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < spec.min || n > spec.max {
				return nil, sqsInvalidValue(name)
			}
			v = strconv.FormatInt(n, 10)
		case name == "Policy":
			if v != "" && !validResourcePolicy(v) {
				return nil, sqsInvalidValue(name)
			}
		case name == "RedrivePolicy":
			if v == "" {
				break
			}
			r, err := parseRedrive(v)
			if err != nil || r.DeadLetterTargetArn == "" {
				return nil, sqsInvalidParameter("Value " + v + " for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map.")
			}
			if r.MaxReceiveCount < 1 || r.MaxReceiveCount > 1000 {
				return nil, sqsInvalidParameter("Value " + v + " for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: " + strconv.Itoa(r.MaxReceiveCount) + ", valid values are from 1 to 1000 both inclusive.")
			}
			if w.sqsQueueByARN(r.DeadLetterTargetArn) == nil {
				return nil, sqsInvalidParameter("Value " + v + " for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.")
			}
			b, _ := json.Marshal(r)
			v = string(b)
		case name == "SqsManagedSseEnabled" || name == "FifoQueue" || name == "ContentBasedDeduplication":
			if v != "true" && v != "false" {
				return nil, sqsInvalidValue(name)
			}
		}
		out[name] = v
	}
	return out, nil
}

// sqsAttr is an attribute's current value (the default when unset).
func (q *sqsQueue) attr(name string) string {
	if v, ok := q.Attrs[name]; ok {
		return v
	}
	return sqsQueueAttrs[name].def
}

func (q *sqsQueue) seconds(name string) time.Duration {
	n, _ := strconv.Atoi(q.attr(name))
	return time.Duration(n) * time.Second
}

// expire drops messages older than the retention period. Callers hold w.Mu.
func (q *sqsQueue) expire(now time.Time) {
	keep := q.msgs[:0]
	for _, m := range q.msgs {
		if now.Sub(m.Sent) < q.seconds("MessageRetentionPeriod") {
			keep = append(keep, m)
		}
	}
	q.msgs = keep
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// enqueue adds a message sent at `at`. Callers hold w.Mu.
func (w *World) sqsEnqueue(q *sqsQueue, body, sender string, delay time.Duration, at time.Time, attrs map[string]sqstypes.MessageAttributeValue) *sqsMessage {
	m := &sqsMessage{ID: uuidFrom(fmt.Sprintf("sqs#%s#%d", q.ARN, w.NextSeq("sqs-message"))), Body: body, Sent: at,
		VisibleAt: at.Add(delay), Sender: sender, Attrs: attrs}
	q.msgs = append(q.msgs, m)
	return m
}

// receiptHandle is opaque to callers; it names the queue, the message and
// the receive it came from, so a stale one can be told from a bad one.
func receiptHandle(q *sqsQueue, m *sqsMessage) string {
	return "AQEB" + base64.StdEncoding.EncodeToString([]byte(q.Name+"\x00"+m.ID+"\x00"+strconv.Itoa(m.ReceiveCount)))
}

// findReceipt resolves a receipt handle: the message (nil when it is gone)
// and whether the handle is the message's latest.
func (q *sqsQueue) findReceipt(handle string) (*sqsMessage, bool, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(handle, "AQEB"))
	parts := strings.Split(string(raw), "\x00")
	if !strings.HasPrefix(handle, "AQEB") || err != nil || len(parts) != 3 || parts[0] != q.Name {
		return nil, false, &sqstypes.ReceiptHandleIsInvalid{Message: aws.String("The input receipt handle \"" + handle + "\" is not a valid receipt handle."),
			ErrorCodeOverride: aws.String("ReceiptHandleIsInvalid")}
	}
	for _, m := range q.msgs {
		if m.ID == parts[1] {
			return m, m.receipt == handle, nil
		}
	}
	return nil, false, nil
}

// sqsNextVisible is the earliest instant after now at which a message of q
// becomes receivable (zero when none will without a new send).
func (q *sqsQueue) nextVisible(now time.Time) time.Time {
	var best time.Time
	for _, m := range q.msgs {
		if m.VisibleAt.After(now) && (best.IsZero() || m.VisibleAt.Before(best)) {
			best = m.VisibleAt
		}
	}
	return best
}

func (w *World) sqsAttributes(q *sqsQueue, names []string) (map[string]string, error) {
	now := w.Clock.Now()
	want := map[string]bool{}
	for _, n := range names {
		if n == "All" {
			for k := range sqsQueueAttrs {
				want[k] = true
			}
			for _, k := range sqsReadOnlyAttrs {
				want[k] = true
			}
			continue
		}
		if _, ok := sqsQueueAttrs[n]; !ok && !containsString(sqsReadOnlyAttrs, n) {
			return nil, &sqstypes.InvalidAttributeName{Message: aws.String("Unknown Attribute " + n + ".")}
		}
		want[n] = true
	}
	out := map[string]string{}
	for n := range want {
		switch n {
		case "QueueArn":
			out[n] = q.ARN
		case "CreatedTimestamp":
			out[n] = strconv.FormatInt(q.Created.Unix(), 10)
		case "LastModifiedTimestamp":
			out[n] = strconv.FormatInt(q.Modified.Unix(), 10)
		case "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible":
			visible, delayed, inFlight := 0, 0, 0
			for _, m := range q.msgs {
				switch {
				case !m.VisibleAt.After(now):
					visible++
				case m.ReceiveCount == 0:
					delayed++
				default:
					inFlight++
				}
			}
			out[n] = strconv.Itoa(map[string]int{"ApproximateNumberOfMessages": visible,
				"ApproximateNumberOfMessagesDelayed": delayed, "ApproximateNumberOfMessagesNotVisible": inFlight}[n])
		default:
			if v := q.attr(n); v != "" {
				out[n] = v
			}
		}
	}
	return out, nil
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// errLongPoll asks dispatch to release the world, sleep on its clock until
// wake and call the handler again; the handler gives up at deadline.
type errLongPoll struct{ wake, deadline time.Time }

func (e *errLongPoll) Error() string { return "awssim: long poll until " + e.wake.String() }

type longPollKey struct{}

// longPollDeadline is the deadline of a long poll being retried.
func longPollDeadline(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(longPollKey{}).(time.Time)
	return t, ok
}

func init() {
	RegisterInventory(func(w *World) []Item {
		return listed(w.sqs().Queues, func(_ string, q *sqsQueue) (Item, bool) {
			return Item{Service: "sqs", Type: "queue", ID: q.ARN, Tags: copyTags(q.Tags)}, true
		})
	})

	Handle(func(ctx context.Context, w *World, in *sqs.CreateQueueInput) (*sqs.CreateQueueOutput, error) {
		name := aws.ToString(in.QueueName)
		fifo := in.Attributes["FifoQueue"] == "true"
		base := strings.TrimSuffix(name, ".fifo")
		if !sqsNameRe.MatchString(base) || len(name) > 80 || (fifo != strings.HasSuffix(name, ".fifo")) {
			return nil, sqsInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
		}
		st := w.sqs()
		now := w.Clock.Now()
		if at, ok := st.Deleted[name]; ok && now.Sub(at) < sqsNameReuse {
			return nil, &sqstypes.QueueDeletedRecently{Message: aws.String("You must wait 60 seconds after deleting a queue before you can create another with the same name."),
				ErrorCodeOverride: aws.String("AWS.SimpleQueueService.QueueDeletedRecently")}
		}
		attrs, err := w.normalizeQueueAttrs(in.Attributes)
		if err != nil {
			return nil, err
		}
		if q, ok := st.Queues[name]; ok {
			for _, k := range sortedKeys(attrs) {
				if q.attr(k) != attrs[k] {
					return nil, &sqstypes.QueueNameExists{Message: aws.String("A queue already exists with the same name and a different value for attribute " + k),
						ErrorCodeOverride: aws.String("QueueAlreadyExists")}
				}
			}
			return &sqs.CreateQueueOutput{QueueUrl: aws.String(q.URL)}, nil
		}
		q := &sqsQueue{Name: name, URL: w.sqsURL(name), ARN: w.sqsARN(name), Attrs: attrs, Tags: copyTags(in.Tags), Created: now, Modified: now}
		st.Queues[name] = q
		delete(st.Deleted, name)
		return &sqs.CreateQueueOutput{QueueUrl: aws.String(q.URL)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.GetQueueUrlInput) (*sqs.GetQueueUrlOutput, error) {
		if owner := aws.ToString(in.QueueOwnerAWSAccountId); owner != "" && owner != w.Account {
			return nil, sqsNotFound()
		}
		q, ok := w.sqs().Queues[aws.ToString(in.QueueName)]
		if !ok {
			return nil, sqsNotFound()
		}
		return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(q.URL)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		q.expire(w.Clock.Now())
		names := make([]string, len(in.AttributeNames))
		for i, n := range in.AttributeNames {
			names[i] = string(n)
		}
		attrs, err := w.sqsAttributes(q, names)
		return &sqs.GetQueueAttributesOutput{Attributes: attrs}, err
	})

	Handle(func(ctx context.Context, w *World, in *sqs.SetQueueAttributesInput) (*sqs.SetQueueAttributesOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		if v, ok := in.Attributes["FifoQueue"]; ok && v != q.attr("FifoQueue") {
			return nil, sqsInvalidValue("FifoQueue")
		}
		attrs, err := w.normalizeQueueAttrs(in.Attributes)
		if err != nil {
			return nil, err
		}
		for k, v := range attrs {
			if v == "" {
				delete(q.Attrs, k) // an empty Policy or RedrivePolicy removes it
				continue
			}
			q.Attrs[k] = v
		}
		q.Modified = w.Clock.Now()
		return &sqs.SetQueueAttributesOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.DeleteQueueInput) (*sqs.DeleteQueueOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		st := w.sqs()
		delete(st.Queues, q.Name)
		st.Deleted[q.Name] = w.Clock.Now()
		return &sqs.DeleteQueueOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.ListQueuesInput) (*sqs.ListQueuesOutput, error) {
		var urls []string
		for _, n := range sortedKeys(w.sqs().Queues) {
			if strings.HasPrefix(n, aws.ToString(in.QueueNamePrefix)) {
				urls = append(urls, w.sqs().Queues[n].URL)
			}
		}
		if in.MaxResults == nil {
			// Without MaxResults SQS returns up to 1,000 queues and no token.
			return &sqs.ListQueuesOutput{QueueUrls: urls[:min(len(urls), 1000)]}, nil
		}
		page, next, err := paginate(urls, in.NextToken, in.MaxResults, 1000)
		return &sqs.ListQueuesOutput{QueueUrls: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *sqs.TagQueueInput) (*sqs.TagQueueOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		if len(in.Tags) == 0 {
			return nil, sqsInvalidParameter("The request must contain the parameter Tags.")
		}
		for k, v := range in.Tags {
			q.Tags[k] = v
		}
		return &sqs.TagQueueOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.UntagQueueInput) (*sqs.UntagQueueOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		deleteKeys(q.Tags, in.TagKeys)
		return &sqs.UntagQueueOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.ListQueueTagsInput) (*sqs.ListQueueTagsOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		return &sqs.ListQueueTagsOutput{Tags: copyTags(q.Tags)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		body := aws.ToString(in.MessageBody)
		if body == "" {
			return nil, Err("MissingParameter", "The request must contain the parameter MessageBody.")
		}
		if max, _ := strconv.Atoi(q.attr("MaximumMessageSize")); len(body) > max {
			return nil, sqsInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than " + strconv.Itoa(max) + " bytes.")
		}
		delay := q.seconds("DelaySeconds")
		if in.DelaySeconds != 0 {
			if in.DelaySeconds < 0 || in.DelaySeconds > 900 {
				return nil, sqsInvalidParameter("Value " + strconv.Itoa(int(in.DelaySeconds)) + " for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.")
			}
			delay = time.Duration(in.DelaySeconds) * time.Second
		}
		m := w.sqsEnqueue(q, body, PrincipalOf(ctx).ARN, delay, w.Clock.Now(), in.MessageAttributes)
		return &sqs.SendMessageOutput{MessageId: aws.String(m.ID), MD5OfMessageBody: aws.String(md5Hex(body))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		maxN := int(in.MaxNumberOfMessages)
		if maxN == 0 {
			maxN = 1
		}
		if maxN < 1 || maxN > 10 {
			return nil, sqsInvalidParameter("Value " + strconv.Itoa(maxN) + " for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
		}
		// The SDK leaves a zero WaitTimeSeconds or VisibilityTimeout out of
		// the request, so zero means "the queue's attribute".
		wait := q.seconds("ReceiveMessageWaitTimeSeconds")
		if in.WaitTimeSeconds != 0 {
			if in.WaitTimeSeconds < 0 || in.WaitTimeSeconds > 20 {
				return nil, sqsInvalidParameter("Value " + strconv.Itoa(int(in.WaitTimeSeconds)) + " for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
			}
			wait = time.Duration(in.WaitTimeSeconds) * time.Second
		}
		visibility := q.seconds("VisibilityTimeout")
		if in.VisibilityTimeout != 0 {
			if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
				return nil, sqsInvalidParameter("Value " + strconv.Itoa(int(in.VisibilityTimeout)) + " for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.")
			}
			visibility = time.Duration(in.VisibilityTimeout) * time.Second
		}
		now := w.Clock.Now()
		q.expire(now)
		msgs := w.sqsReceive(q, maxN, visibility, now, in)
		if len(msgs) > 0 || wait == 0 || PrincipalOf(ctx).Workload {
			// A simulated process (Principal.Workload) never blocks: it runs
			// inside the clock's own callbacks and schedules its next poll
			// with World.NextEventAt.
			return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
		}
		deadline, retried := longPollDeadline(ctx)
		if !retried {
			deadline = now.Add(wait)
		}
		if !now.Before(deadline) {
			return &sqs.ReceiveMessageOutput{Messages: []sqstypes.Message{}}, nil
		}
		// Long polling: wait on the clock until a message may be receivable
		// (a delayed or in-flight one comes back, or the world's next
		// transition, such as an ECS task event, may deliver one).
		wake := deadline
		if t := q.nextVisible(now); !t.IsZero() && t.Before(wake) {
			wake = t
		}
		if t, ok := w.nextEventAt(now); ok && t.Before(wake) {
			wake = t
		}
		return nil, &errLongPoll{wake: wake, deadline: deadline}
	})

	Handle(func(ctx context.Context, w *World, in *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		m, latest, err := q.findReceipt(aws.ToString(in.ReceiptHandle))
		if err != nil {
			return nil, err
		}
		// A stale handle succeeds without deleting (API_DeleteMessage: "you
		// must provide the most recently received ReceiptHandle ...
		// otherwise, the request succeeds, but the message will not be
		// deleted").
		if m != nil && latest {
			q.remove(m)
		}
		return &sqs.DeleteMessageOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *sqs.ChangeMessageVisibilityInput) (*sqs.ChangeMessageVisibilityOutput, error) {
		q, err := w.sqsQueueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
			return nil, sqsInvalidParameter("Value " + strconv.Itoa(int(in.VisibilityTimeout)) + " for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200.")
		}
		m, _, err := q.findReceipt(aws.ToString(in.ReceiptHandle))
		if err != nil {
			return nil, err
		}
		now := w.Clock.Now()
		if m == nil || m.ReceiveCount == 0 || !m.VisibleAt.After(now) {
			return nil, &sqstypes.MessageNotInflight{ErrorCodeOverride: aws.String("AWS.SimpleQueueService.MessageNotInflight")}
		}
		// The total visibility of a receive is capped at 12 hours from it
		// (API_ChangeMessageVisibility).
		until := now.Add(time.Duration(in.VisibilityTimeout) * time.Second)
		if until.Sub(m.FirstReceive) > 12*time.Hour {
			return nil, sqsInvalidParameter("Value " + strconv.Itoa(int(in.VisibilityTimeout)) + " for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]")
		}
		m.VisibleAt = until
		return &sqs.ChangeMessageVisibilityOutput{}, nil
	})
}

func (q *sqsQueue) remove(m *sqsMessage) {
	for i, x := range q.msgs {
		if x == m {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			return
		}
	}
}

// sqsReceive takes up to n receivable messages of q, moving those received
// maxReceiveCount times already to the dead-letter queue first
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html:
// "When the ReceiveCount for a message exceeds the maxReceiveCount for a
// queue, Amazon SQS moves the message to the dead-letter-queue"). A standard
// queue's message keeps its original enqueue timestamp in the DLQ.
func (w *World) sqsReceive(q *sqsQueue, n int, visibility time.Duration, now time.Time, in *sqs.ReceiveMessageInput) []sqstypes.Message {
	var redrive *sqsRedrive
	if s := q.attr("RedrivePolicy"); s != "" {
		if r, err := parseRedrive(s); err == nil {
			redrive = &r
		}
	}
	out := []sqstypes.Message{}
	for _, m := range append([]*sqsMessage(nil), q.msgs...) {
		if len(out) == n {
			break
		}
		if m.VisibleAt.After(now) {
			continue
		}
		if redrive != nil && m.ReceiveCount >= redrive.MaxReceiveCount {
			if dlq := w.sqsQueueByARN(redrive.DeadLetterTargetArn); dlq != nil {
				q.remove(m)
				moved := *m
				moved.ReceiveCount, moved.receipt, moved.FirstReceive, moved.VisibleAt = 0, "", time.Time{}, now
				dlq.msgs = append(dlq.msgs, &moved)
				continue
			}
		}
		m.ReceiveCount++
		if m.ReceiveCount == 1 {
			m.FirstReceive = now
		}
		m.VisibleAt = now.Add(visibility)
		m.receipt = receiptHandle(q, m)
		msg := sqstypes.Message{MessageId: aws.String(m.ID), ReceiptHandle: aws.String(m.receipt), Body: aws.String(m.Body),
			MD5OfBody: aws.String(md5Hex(m.Body))}
		if attrs := messageSystemAttributes(m, in); len(attrs) > 0 {
			msg.Attributes = attrs
		}
		if len(m.Attrs) > 0 && len(in.MessageAttributeNames) > 0 {
			msg.MessageAttributes = m.Attrs
		}
		out = append(out, msg)
	}
	return out
}

// messageSystemAttributes answers AttributeNames / MessageSystemAttributeNames.
func messageSystemAttributes(m *sqsMessage, in *sqs.ReceiveMessageInput) map[string]string {
	var names []string
	for _, a := range in.AttributeNames {
		names = append(names, string(a))
	}
	for _, a := range in.MessageSystemAttributeNames {
		names = append(names, string(a))
	}
	if len(names) == 0 {
		return nil
	}
	all := map[string]string{
		"SenderId":                         m.Sender,
		"SentTimestamp":                    strconv.FormatInt(m.Sent.UnixMilli(), 10),
		"ApproximateReceiveCount":          strconv.Itoa(m.ReceiveCount),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.FirstReceive.UnixMilli(), 10),
	}
	out := map[string]string{}
	for _, n := range names {
		if n == "All" {
			for k, v := range all {
				out[k] = v
			}
		} else if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	return out
}
