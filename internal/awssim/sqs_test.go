package awssim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

func newSQS(t *testing.T) (*World, *sqs.Client, func(time.Duration)) {
	t.Helper()
	w, clk := newTestWorld(t)
	return w, sqs.NewFromConfig(w.Config()), clk.Advance
}

func createQueue(t *testing.T, c *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := c.CreateQueue(bg, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func TestSQSQueueLifecycleAndErrorCodes(t *testing.T) {
	t.Parallel()
	_, c, advance := newSQS(t)
	url := createQueue(t, c, "demo-ecs-events", map[string]string{"VisibilityTimeout": "300", "MessageRetentionPeriod": "604800"})
	if url != "https://sqs.us-east-1.amazonaws.com/123456789012/demo-ecs-events" {
		t.Fatalf("url %s", url)
	}
	attrs, err := c.GetQueueAttributes(bg, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"VisibilityTimeout": "300", "MessageRetentionPeriod": "604800", "DelaySeconds": "0", "MaximumMessageSize": "1048576",
		"ReceiveMessageWaitTimeSeconds": "0", "SqsManagedSseEnabled": "true", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:demo-ecs-events",
		"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
	for k, v := range want {
		if attrs.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs.Attributes[k], v)
		}
	}

	// The same create again is the same queue; a different value is refused.
	if again := createQueue(t, c, "demo-ecs-events", map[string]string{"VisibilityTimeout": "300"}); again != url {
		t.Fatalf("second create gave %s", again)
	}
	_, err = c.CreateQueue(bg, &sqs.CreateQueueInput{QueueName: aws.String("demo-ecs-events"), Attributes: map[string]string{"VisibilityTimeout": "30"}})
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) || errCode(t, err) != "QueueAlreadyExists" {
		t.Fatalf("create with another visibility: %v", err)
	}

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown queue name", call(bg, c.GetQueueUrl, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")}), "AWS.SimpleQueueService.NonExistentQueue"},
		{"unknown queue url", call(bg, c.GetQueueAttributes, &sqs.GetQueueAttributesInput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/nope")}), "AWS.SimpleQueueService.NonExistentQueue"},
		{"unknown attribute", call(bg, c.SetQueueAttributes, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"VisibilityTimeoutSeconds": "300"}}), "InvalidAttributeName"},
		{"visibility out of range", call(bg, c.SetQueueAttributes, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"VisibilityTimeout": "43201"}}), "InvalidAttributeValue"},
		{"policy not a policy", call(bg, c.SetQueueAttributes, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"Policy": `{"Statement":"x"}`}}), "InvalidAttributeValue"},
		{"redrive to a missing queue", call(bg, c.SetQueueAttributes, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{
			"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:missing","maxReceiveCount":3}`}}), "InvalidParameterValue"},
		{"bad queue name", call(bg, c.CreateQueue, &sqs.CreateQueueInput{QueueName: aws.String("no spaces")}), "InvalidParameterValue"},
	}
	for _, tt := range tests {
		if code := errCode(t, tt.call()); code != tt.code {
			t.Errorf("%s: code %q, want %q", tt.name, code, tt.code)
		}
	}
	var notExist *sqstypes.QueueDoesNotExist
	if _, err := c.GetQueueUrl(bg, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")}); !errors.As(err, &notExist) {
		t.Fatalf("errors.As QueueDoesNotExist: %v", err)
	}

	// Tags.
	if _, err := c.TagQueue(bg, &sqs.TagQueueInput{QueueUrl: &url, Tags: map[string]string{"deploybot:environment": "demo", "x": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagQueue(bg, &sqs.UntagQueueInput{QueueUrl: &url, TagKeys: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListQueueTags(bg, &sqs.ListQueueTagsInput{QueueUrl: &url})
	if err != nil || !cmp.Equal(tags.Tags, map[string]string{"deploybot:environment": "demo"}) {
		t.Fatalf("tags %v %v", tags, err)
	}

	// A deleted name is gone at once and can be reused after 60 seconds.
	if _, err := c.DeleteQueue(bg, &sqs.DeleteQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetQueueUrl(bg, &sqs.GetQueueUrlInput{QueueName: aws.String("demo-ecs-events")}); errCode(t, err) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Fatalf("after delete: %v", err)
	}
	advance(59 * time.Second)
	_, err = c.CreateQueue(bg, &sqs.CreateQueueInput{QueueName: aws.String("demo-ecs-events")})
	var recently *sqstypes.QueueDeletedRecently
	if !errors.As(err, &recently) || errCode(t, err) != "AWS.SimpleQueueService.QueueDeletedRecently" {
		t.Fatalf("recreate after 59 s: %v", err)
	}
	advance(time.Second)
	createQueue(t, c, "demo-ecs-events", nil)
}

func receiveOne(t *testing.T, c *sqs.Client, url string, visibility int32) *sqstypes.Message {
	t.Helper()
	out, err := c.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url, VisibilityTimeout: visibility,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) == 0 {
		return nil
	}
	return &out.Messages[0]
}

func TestSQSVisibilityDeleteAndRedrive(t *testing.T) {
	t.Parallel()
	_, c, advance := newSQS(t)
	dlq := createQueue(t, c, "dlq", map[string]string{"MessageRetentionPeriod": "1209600"})
	url := createQueue(t, c, "events", map[string]string{"VisibilityTimeout": "60",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":2}`})
	sent, err := c.SendMessage(bg, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(`{"detail":{}}`)})
	if err != nil || aws.ToString(sent.MD5OfMessageBody) != md5Hex(`{"detail":{}}`) {
		t.Fatalf("send: %v %v", sent, err)
	}
	first := receiveOne(t, c, url, 0)
	if first == nil || first.Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("first receive: %+v", first)
	}
	if m := receiveOne(t, c, url, 0); m != nil {
		t.Fatal("an in-flight message was received again")
	}
	// Extending the visibility keeps it hidden past the queue's 60 s.
	if _, err := c.ChangeMessageVisibility(bg, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 120}); err != nil {
		t.Fatal(err)
	}
	advance(90 * time.Second)
	if m := receiveOne(t, c, url, 0); m != nil {
		t.Fatal("visible before the extended timeout")
	}
	advance(31 * time.Second)
	second := receiveOne(t, c, url, 0)
	if second == nil || second.Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("second receive: %+v", second)
	}
	// The first receive's handle is stale: deleting with it succeeds and
	// deletes nothing.
	if _, err := c.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: first.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("garbage")}); errCode(t, err) != "ReceiptHandleIsInvalid" {
		t.Fatalf("bad handle: %v", err)
	}
	if _, err := c.ChangeMessageVisibility(bg, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: second.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	// Received maxReceiveCount (2) times: the next receive moves it to the DLQ.
	if m := receiveOne(t, c, url, 0); m != nil {
		t.Fatalf("received a third time: %+v", m)
	}
	moved := receiveOne(t, c, dlq, 0)
	if moved == nil || aws.ToString(moved.Body) != `{"detail":{}}` || moved.Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("dead-letter queue: %+v", moved)
	}
	if _, err := c.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: &dlq, ReceiptHandle: moved.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeMessageVisibility(bg, &sqs.ChangeMessageVisibilityInput{QueueUrl: &dlq, ReceiptHandle: moved.ReceiptHandle, VisibilityTimeout: 10}); errCode(t, err) != "AWS.SimpleQueueService.MessageNotInflight" {
		t.Fatalf("visibility of a deleted message: %v", err)
	}
	attrs, _ := c.GetQueueAttributes(bg, &sqs.GetQueueAttributesInput{QueueUrl: &dlq, AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
	if attrs.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Fatalf("DLQ after delete: %v", attrs.Attributes)
	}
}

func TestSQSLongPollingOnTheClock(t *testing.T) {
	t.Parallel()
	w, c, _ := newSQS(t)
	url := createQueue(t, c, "events", nil)
	start := w.Clock.Now()
	out, err := c.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("empty queue: %+v %v", out, err)
	}
	if waited := w.Clock.Now().Sub(start); waited != 20*time.Second {
		t.Fatalf("long poll of an empty queue took %s of the clock, want 20s", waited)
	}
	// A delayed message ends the wait when it becomes visible.
	if _, err := c.SendMessage(bg, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("later"), DelaySeconds: 7}); err != nil {
		t.Fatal(err)
	}
	start = w.Clock.Now()
	out, err = c.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("delayed message: %+v %v", out, err)
	}
	if waited := w.Clock.Now().Sub(start); waited != 7*time.Second {
		t.Fatalf("returned after %s, want 7s", waited)
	}
	// A simulated process never blocks.
	w.AddPrincipal("ASIAWORKLOAD00000001", Principal{ARN: "arn:aws:sts::123456789012:assumed-role/r/s", Workload: true})
	wc := sqs.NewFromConfig(w.ConfigFor(credentials.NewStaticCredentialsProvider("ASIAWORKLOAD00000001", "s", "t")))
	start = w.Clock.Now()
	if _, err := wc.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20}); err != nil {
		t.Fatal(err)
	}
	if !w.Clock.Now().Equal(start) {
		t.Fatal("a workload's long poll moved the clock")
	}
	if n := len(w.WorkloadCalls()); n != 1 {
		t.Fatalf("workload calls %d", n)
	}
}

func TestSQSAuthorization(t *testing.T) {
	t.Parallel()
	w, admin, _ := newSQS(t)
	url := createQueue(t, admin, "events", nil)
	queueARN := "arn:aws:sqs:us-east-1:123456789012:events"
	key := "ASIAOBSERVER00000001"
	doc := &PolicyDocument{Version: "2012-10-17", Statement: []Statement{{Effect: "Allow",
		Action: StringList{"sqs:ReceiveMessage", "sqs:GetQueueUrl"}, Resource: StringList{queueARN}}}}
	w.AddPrincipal(key, Principal{ARN: "arn:aws:sts::123456789012:assumed-role/worker-task/t1", Policy: doc})
	c := sqs.NewFromConfig(w.ConfigFor(credentials.NewStaticCredentialsProvider(key, "s", "t")))
	if _, err := c.GetQueueUrl(bg, &sqs.GetQueueUrlInput{QueueName: aws.String("events")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("AQEBx")})
	if errCode(t, err) != "AccessDenied" || !strings.Contains(errMessage(err), "sqs:DeleteMessage on resource: "+queueARN) {
		t.Fatalf("delete without permission: %v", err)
	}
	// The queue's own policy may grant what the identity policy does not.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/worker-task"},"Action":"sqs:DeleteMessage","Resource":"` + queueARN + `"}]}`
	if _, err := admin.SetQueueAttributes(bg, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"Policy": policy}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("AQEB" + "eA==")}); errCode(t, err) != "ReceiptHandleIsInvalid" {
		t.Fatalf("delete allowed by the queue policy: %v", err)
	}
}
