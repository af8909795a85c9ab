package awssim

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/google/go-cmp/cmp"
)

func TestLogGroups(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	c := cloudwatchlogs.NewFromConfig(w.Config())
	for _, n := range []string{"/deploybot/staging/worker", "/deploybot/staging-2/worker", "/other"} {
		if _, err := c.CreateLogGroup(bg, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(n), Tags: map[string]string{"deploybot:environment": "staging"}}); err != nil {
			t.Fatal(err)
		}
	}
	arn := "arn:aws:logs:us-east-1:123456789012:log-group:/deploybot/staging/worker"
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"create twice", call(bg, c.CreateLogGroup, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/other")}), "ResourceAlreadyExistsException"},
		{"retention", call(bg, c.PutRetentionPolicy, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/deploybot/staging/worker"), RetentionInDays: aws.Int32(30)}), ""},
		{"retention not allowed", call(bg, c.PutRetentionPolicy, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/other"), RetentionInDays: aws.Int32(31)}), "InvalidParameterException"},
		{"retention missing group", call(bg, c.PutRetentionPolicy, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/nope"), RetentionInDays: aws.Int32(30)}), "ResourceNotFoundException"},
		{"tag", call(bg, c.TagResource, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"team": "data"}}), ""},
		{"tag with :* arn", call(bg, c.TagResource, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(arn + ":*"), Tags: map[string]string{"team": "data"}}), "InvalidParameterException"},
		{"delete missing", call(bg, c.DeleteLogGroup, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/nope")}), "ResourceNotFoundException"},
	}
	for _, tc := range cases {
		if got := errCode(t, tc.call()); got != tc.code {
			t.Fatalf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	d, err := c.DescribeLogGroups(bg, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/deploybot/staging")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range d.LogGroups {
		names = append(names, aws.ToString(g.LogGroupName))
	}
	// Prefix semantics: the other environment's group matches too.
	if diff := cmp.Diff([]string{"/deploybot/staging-2/worker", "/deploybot/staging/worker"}, names); diff != "" {
		t.Fatal(diff)
	}
	if got := aws.ToInt32(d.LogGroups[1].RetentionInDays); got != 30 {
		t.Fatalf("retention = %d", got)
	}
	if got := aws.ToString(d.LogGroups[1].Arn); got != arn+":*" {
		t.Fatalf("arn = %s", got)
	}
	tags, err := c.ListTagsForResource(bg, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"deploybot:environment": "staging", "team": "data"}, tags.Tags); diff != "" {
		t.Fatal(diff)
	}
	// Paginator over a limit of 1.
	p := cloudwatchlogs.NewDescribeLogGroupsPaginator(c, &cloudwatchlogs.DescribeLogGroupsInput{Limit: aws.Int32(1)})
	n := 0
	for _, page := range allPages(t, p) {
		n += len(page.LogGroups)
	}
	if n != 3 {
		t.Fatalf("paginated %d groups, want 3", n)
	}
	if _, err := c.DeleteLogGroup(bg, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/deploybot/staging/worker")}); err != nil {
		t.Fatal(err)
	}
	if got := len(w.TaggedFor("staging")); got != 2 {
		t.Fatalf("tagged for staging after delete: %d, want 2", got)
	}
}
