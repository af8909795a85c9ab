package awssim

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/google/go-cmp/cmp"
)

// taggingFixture: three log groups (staging, staging with a team, prod),
// an untagged one, a security group tagged for staging and an IAM role
// tagged for staging.
func taggingFixture(t *testing.T) (*World, func(time.Duration), *tagging.Client, *ec2.Client, string) {
	t.Helper()
	w, clk := newTestWorld(t)
	logs := cloudwatchlogs.NewFromConfig(w.Config())
	for name, tags := range map[string]map[string]string{
		"/a": {"deploybot:environment": "staging"},
		"/b": {"deploybot:environment": "staging", "team": "data"},
		"/c": {"deploybot:environment": "prod", "team": "web"},
		"/d": nil,
	} {
		if _, err := logs.CreateLogGroup(bg, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name), Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	e := ec2.NewFromConfig(w.Config())
	vpc, _ := w.SeedExistingVPC("10.0.0.0/16", 1, false)
	sg, err := e.CreateSecurityGroup(bg, &ec2.CreateSecurityGroupInput{GroupName: aws.String("w"), Description: aws.String("d"), VpcId: aws.String(vpc),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := iam.NewFromConfig(w.Config()).CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String("r"), Path: aws.String("/deploybot/"), AssumeRolePolicyDocument: aws.String(trust),
		Tags: []iamtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}); err != nil {
		t.Fatal(err)
	}
	return w, func(d time.Duration) { clk.Advance(d) }, tagging.NewFromConfig(w.Config()), e, aws.ToString(sg.GroupId)
}

func arnsOf(out *tagging.GetResourcesOutput) []string {
	var arns []string
	for _, m := range out.ResourceTagMappingList {
		arns = append(arns, aws.ToString(m.ResourceARN))
	}
	return arns
}

func TestGetResourcesFilters(t *testing.T) {
	t.Parallel()
	_, _, c, _, sg := taggingFixture(t)
	lg := func(n string) string { return "arn:aws:logs:us-east-1:123456789012:log-group:" + n }
	sgARN := "arn:aws:ec2:us-east-1:123456789012:security-group/" + sg
	f := func(k string, v ...string) taggingtypes.TagFilter {
		return taggingtypes.TagFilter{Key: aws.String(k), Values: v}
	}
	cases := []struct {
		name  string
		in    tagging.GetResourcesInput
		want  []string
		error string
	}{
		// No role: the API does not cover IAM roles. No /d: untagged.
		{"one key, one value", tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{f("deploybot:environment", "staging")}},
			[]string{sgARN, lg("/a"), lg("/b")}, ""},
		{"values are OR", tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{f("deploybot:environment", "staging", "prod")}},
			[]string{sgARN, lg("/a"), lg("/b"), lg("/c")}, ""},
		{"filters are AND", tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{f("deploybot:environment", "staging"), f("team", "data")}},
			[]string{lg("/b")}, ""},
		{"a key without values is any value", tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{f("team")}},
			[]string{lg("/b"), lg("/c")}, ""},
		{"service type filter", tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{f("deploybot:environment", "staging")}, ResourceTypeFilters: []string{"ec2"}},
			[]string{sgARN}, ""},
		{"service:type filter", tagging.GetResourcesInput{ResourceTypeFilters: []string{"logs:log-group", "ec2:security-group"}},
			[]string{sgARN, lg("/a"), lg("/b"), lg("/c")}, ""},
		{"too many per page", tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(101)}, nil, "InvalidParameterException"},
		{"ResourceARNList is not simulated", tagging.GetResourcesInput{ResourceARNList: []string{sgARN}}, nil, "InvalidParameterException"},
	}
	for _, tc := range cases {
		out, err := c.GetResources(bg, &tc.in)
		if got := errCode(t, err); got != tc.error {
			t.Fatalf("%s: error %q, want %q (%v)", tc.name, got, tc.error, err)
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tc.want, arnsOf(out)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		if aws.ToString(out.PaginationToken) != "" {
			t.Errorf("%s: a one-page answer has PaginationToken %q", tc.name, aws.ToString(out.PaginationToken))
		}
	}
}

func TestGetResourcesPages(t *testing.T) {
	t.Parallel()
	_, advance, c, _, _ := taggingFixture(t)
	var all []string
	staging := []taggingtypes.TagFilter{{Key: aws.String("deploybot:environment"), Values: []string{"staging"}}}
	p := tagging.NewGetResourcesPaginator(c, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(1), TagFilters: staging})
	pages := allPages(t, p)
	for _, out := range pages {
		all = append(all, arnsOf(out)...)
	}
	if len(pages) != 3 || len(all) != 3 {
		t.Fatalf("%d pages, %d resources; want 3 and 3: %v", len(pages), len(all), all)
	}

	first, err := c.GetResources(bg, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	// A token only goes with the filters it was issued for, and expires.
	_, err = c.GetResources(bg, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(1), PaginationToken: first.PaginationToken, ResourceTypeFilters: []string{"ec2"}})
	if got := errCode(t, err); got != "InvalidParameterException" {
		t.Fatalf("token with other filters: %q (%v)", got, err)
	}
	advance(16 * time.Minute)
	_, err = c.GetResources(bg, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(1), PaginationToken: first.PaginationToken})
	if got := errCode(t, err); got != "PaginationTokenExpiredException" {
		t.Fatalf("token after 16 minutes: %q (%v)", got, err)
	}
}

// TestGetResourcesGhosts: a deleted EC2 resource is still returned for an
// hour; a deleted log group is not.
func TestGetResourcesGhosts(t *testing.T) {
	t.Parallel()
	w, advance, c, e, sg := taggingFixture(t)
	staging := &tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{{Key: aws.String("deploybot:environment"), Values: []string{"staging"}}}}
	if _, err := c.GetResources(bg, staging); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteSecurityGroup(bg, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cloudwatchlogs.NewFromConfig(w.Config()).DeleteLogGroup(bg, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/a")}); err != nil {
		t.Fatal(err)
	}
	sgARN := "arn:aws:ec2:us-east-1:123456789012:security-group/" + sg
	lgB := "arn:aws:logs:us-east-1:123456789012:log-group:/b"
	for _, step := range []struct {
		after time.Duration
		want  []string
	}{
		{0, []string{sgARN, lgB}},
		{59 * time.Minute, []string{sgARN, lgB}},
		{2 * time.Minute, []string{lgB}},
	} {
		advance(step.after)
		out, err := c.GetResources(bg, staging)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(step.want, arnsOf(out)); diff != "" {
			t.Errorf("after +%s (-want +got):\n%s", step.after, diff)
		}
	}
}

func TestListRoles(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	c := iam.NewFromConfig(w.Config())
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	for _, r := range []struct{ name, path string }{{"a", "/deploybot/"}, {"b", "/deploybot/"}, {"c", "/"}, {"d", "/deploybot/x/"}} {
		if _, err := c.CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String(r.name), Path: aws.String(r.path), AssumeRolePolicyDocument: aws.String(trust),
			Tags: []iamtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := iam.NewListRolesPaginator(c, &iam.ListRolesInput{PathPrefix: aws.String("/deploybot/"), MaxItems: aws.Int32(2)})
	for _, out := range allPages(t, p) {
		for _, r := range out.Roles {
			names = append(names, aws.ToString(r.RoleName))
			if len(r.Tags) != 0 {
				t.Errorf("ListRoles returned the tags of %s; IAM's does not", aws.ToString(r.RoleName))
			}
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "d"}, names); diff != "" {
		t.Errorf("roles under /deploybot/ (-want +got):\n%s", diff)
	}
	_, err := c.ListRoles(bg, &iam.ListRolesInput{MaxItems: aws.Int32(1001)})
	if got := errCode(t, err); got != "ValidationError" {
		t.Errorf("MaxItems 1001: %q", got)
	}
}
