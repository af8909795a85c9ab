package inventory_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/inventory"
)

const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// TestList: every page of what is tagged for the environment (more than
// GetResources returns at once), its roles by path and name prefix (not
// those of an environment whose name shares the prefix only by path, nor
// those under another path), and not what the query keeps.
func TestList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := awssim.New(clock.NewVirtual(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	logs := cloudwatchlogs.NewFromConfig(w.Config())
	var want []string
	for i := range 130 {
		name := fmt.Sprintf("/deploybot/demo/g%03d", i)
		if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name), Tags: map[string]string{"deploybot:environment": "demo"}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, "arn:aws:logs:us-east-1:123456789012:log-group:"+name)
	}
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/other"), Tags: map[string]string{"deploybot:environment": "prod"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(w.Config()).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/deploybot/demo/lock"), Value: aws.String("x"),
		Type: ssmtypes.ParameterTypeString, Tags: []ssmtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("demo")}}}); err != nil {
		t.Fatal(err)
	}
	c := iam.NewFromConfig(w.Config())
	for _, r := range []struct{ name, path string }{
		{"deploybot-demo-task", "/deploybot/"}, {"deploybot-demo-flow-run", "/deploybot/"},
		{"deploybot-prod-task", "/deploybot/"}, {"deploybot-demo-other", "/elsewhere/"},
	} {
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(r.name), Path: aws.String(r.path), AssumeRolePolicyDocument: aws.String(trust),
			Tags: []iamtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("demo")}}}); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, "arn:aws:iam::123456789012:role/deploybot/deploybot-demo-flow-run", "arn:aws:iam::123456789012:role/deploybot/deploybot-demo-task")

	got, err := inventory.List(ctx, tagging.NewFromConfig(w.Config()), c, inventory.Query{TagKey: "deploybot:environment", TagValue: "demo",
		RolePath: "/deploybot/", RolePrefix: "deploybot-demo-", Keep: []string{"parameter/deploybot/demo/lock"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(slices.Sorted(slices.Values(want)), got); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
}

func TestARNParts(t *testing.T) {
	t.Parallel()
	cases := []struct{ arn, typ, res, id string }{
		{"arn:aws:ec2:us-east-1:123456789012:security-group/sg-1", "ec2:security-group", "security-group/sg-1", "sg-1"},
		{"arn:aws:logs:us-east-1:123456789012:log-group:/deploybot/x/worker", "logs:log-group", "log-group:/deploybot/x/worker", "worker"},
		{"arn:aws:iam::123456789012:role/deploybot/deploybot-x-task", "iam:role", "role/deploybot/deploybot-x-task", "deploybot-x-task"},
		{"arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-x-worker:3", "ecs:task-definition", "task-definition/deploybot-x-worker:3", "deploybot-x-worker:3"},
		{"arn:aws:ssm:us-east-1:123456789012:parameter/deploybot/x/lock", "ssm:parameter", "parameter/deploybot/x/lock", "lock"},
		{"not an arn", "", "", ""},
	}
	for _, c := range cases {
		if got := inventory.Type(c.arn); got != c.typ {
			t.Errorf("Type(%s) = %q, want %q", c.arn, got, c.typ)
		}
		if got := inventory.Resource(c.arn); got != c.res {
			t.Errorf("Resource(%s) = %q, want %q", c.arn, got, c.res)
		}
		if got := inventory.ID(c.arn); got != c.id {
			t.Errorf("ID(%s) = %q, want %q", c.arn, got, c.id)
		}
	}
}
