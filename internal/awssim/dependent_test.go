package awssim

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
)

// serviceIDs maps an SDK service package to the service id the simulated
// account names its calls by (Action(service, op)).
var serviceIDs = map[string]string{
	reflect.TypeOf(ec2.Options{}).PkgPath():                      ec2.ServiceID,
	reflect.TypeOf(ecs.Options{}).PkgPath():                      ecs.ServiceID,
	reflect.TypeOf(iam.Options{}).PkgPath():                      iam.ServiceID,
	reflect.TypeOf(cloudwatchlogs.Options{}).PkgPath():           cloudwatchlogs.ServiceID,
	reflect.TypeOf(secretsmanager.Options{}).PkgPath():           secretsmanager.ServiceID,
	reflect.TypeOf(servicediscovery.Options{}).PkgPath():         servicediscovery.ServiceID,
	reflect.TypeOf(applicationautoscaling.Options{}).PkgPath():   applicationautoscaling.ServiceID,
	reflect.TypeOf(sts.Options{}).PkgPath():                      sts.ServiceID,
	reflect.TypeOf(ssm.Options{}).PkgPath():                      ssm.ServiceID,
	reflect.TypeOf(resourcegroupstaggingapi.Options{}).PkgPath(): resourcegroupstaggingapi.ServiceID,
	reflect.TypeOf(sqs.Options{}).PkgPath():                      sqs.ServiceID,
	reflect.TypeOf(eventbridge.Options{}).PkgPath():              eventbridge.ServiceID,
}

// calledActions are the IAM actions of every operation in awsapi.Clients,
// named as the simulated account names them.
func calledActions(t *testing.T) []string {
	t.Helper()
	clients := reflect.TypeOf(awsapi.Clients{})
	var out []string
	for i := 0; i < clients.NumField(); i++ {
		it := clients.Field(i).Type
		if it.Kind() != reflect.Interface {
			continue
		}
		for j := 0; j < it.NumMethod(); j++ {
			m := it.Method(j)
			pkg := m.Type.In(1).Elem().PkgPath() // (ctx, *XInput, ...optFns)
			id, ok := serviceIDs[pkg]
			if !ok {
				t.Fatalf("awsapi.Clients.%s calls %s, whose service id this test does not know: add it to serviceIDs", clients.Field(i).Name, pkg)
			}
			out = append(out, Action(id, m.Name))
		}
	}
	if len(out) < 50 {
		t.Fatalf("only %d actions found in awsapi.Clients", len(out))
	}
	return out
}

// TestDependentActionsCoverEveryCall: the Dependent actions column of the
// Service Authorization Reference was read for every action deploybot can
// call (an entry on its service's page, or a page whose column is empty
// throughout).
func TestDependentActionsCoverEveryCall(t *testing.T) {
	t.Parallel()
	pages := map[string]dependentSource{}
	for _, p := range sarPages {
		pages[p.Prefix] = p
	}
	for _, a := range calledActions(t) {
		prefix, _, _ := strings.Cut(a, ":")
		p, ok := pages[prefix]
		if !ok {
			t.Errorf("%s: no Service Authorization Reference page for %q in sarPages", a, prefix)
			continue
		}
		if _, listed := p.Actions[a]; !listed && !p.AllEmpty {
			t.Errorf("%s: not read from %s (add it to that page's Actions, nil when its Dependent actions column is empty)", a, p.Doc)
		}
	}
}

var actionRe = regexp.MustCompile(`^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$`)

// TestDependentActionSourcesAreWellFormed: every source names its page and
// date, SAR pages are one per service and list only their own actions, and
// every dependency is an IAM action.
func TestDependentActionSourcesAreWellFormed(t *testing.T) {
	t.Parallel()
	called := map[string]bool{}
	for _, a := range calledActions(t) {
		called[a] = true
	}
	dateRe := regexp.MustCompile(`^20\d\d-\d\d-\d\d$`)
	prefixes := map[string]bool{}
	check := func(kind string, s dependentSource) {
		if !strings.HasPrefix(s.Doc, "https://docs.aws.amazon.com/") || s.Where == "" || !dateRe.MatchString(s.Retrieved) {
			t.Errorf("%s %s: needs the AWS page, what was read of it and when (%q, %q)", kind, s.Doc, s.Where, s.Retrieved)
		}
		if s.AllEmpty && len(s.Actions) > 0 {
			t.Errorf("%s %s: AllEmpty with entries", kind, s.Doc)
		}
		for a, ds := range s.Actions {
			if !actionRe.MatchString(a) {
				t.Errorf("%s %s: %q is not an IAM action", kind, s.Doc, a)
			}
			if kind == "SAR page" && !strings.HasPrefix(a, s.Prefix+":") {
				t.Errorf("SAR page %s lists %s, of another service", s.Doc, a)
			}
			if kind == "guide" && !called[a] {
				t.Errorf("guide %s: %s is no action deploybot calls", s.Doc, a)
			}
			if kind == "guide" && len(ds) == 0 {
				t.Errorf("guide %s: %s lists nothing", s.Doc, a)
			}
			for _, d := range ds {
				if !actionRe.MatchString(d.Action) {
					t.Errorf("%s %s: %s depends on %q, not an IAM action", kind, s.Doc, a, d.Action)
				}
			}
		}
	}
	for _, p := range sarPages {
		if prefixes[p.Prefix] {
			t.Errorf("two SAR pages for %s", p.Prefix)
		}
		prefixes[p.Prefix] = true
		if !strings.HasPrefix(p.Doc, "https://docs.aws.amazon.com/service-authorization/latest/reference/list_") || p.Copy == "" {
			t.Errorf("SAR page %s: not a Service Authorization Reference page, or the copy read is not named", p.Doc)
		}
		check("SAR page", p)
	}
	for _, g := range guides {
		if g.Prefix != "" || g.AllEmpty {
			t.Errorf("guide %s: Prefix and AllEmpty are for SAR pages", g.Doc)
		}
		check("guide", g)
	}
}

// TestImpliedChecks: what the simulated account authorizes behind a call,
// from the table, with the condition keys tag-on-create carries.
func TestImpliedChecks(t *testing.T) {
	t.Parallel()
	w := New(clock.NewVirtual(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)))
	tags := []ecstypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("lp")}}
	type check struct {
		Action, Resource string
		Context          map[string]string
	}
	tests := []struct {
		name        string
		service, op string
		params      any
		want        []check
	}{
		{"a read: nothing", "EC2", "DescribeVpcs", &ec2.DescribeVpcsInput{}, nil},
		{"an EC2 create without tags: nothing", "EC2", "CreateVpc", &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}, nil},
		{"an EC2 create with tags: ec2:CreateTags for it", "EC2", "CreateVpc", &ec2.CreateVpcInput{TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeVpc, Tags: []ec2types.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("lp")}}}}},
			[]check{{"ec2:CreateTags", "", map[string]string{"ec2:CreateAction": "CreateVpc", "aws:RequestTag/deploybot:environment": "lp"}}}},
		{"an ECS create with tags: ecs:TagResource on the new cluster", "ECS", "CreateCluster", &ecs.CreateClusterInput{ClusterName: aws.String("deploybot-lp"), Tags: tags},
			[]check{{"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-lp", map[string]string{"ecs:CreateAction": "CreateCluster", "aws:RequestTag/deploybot:environment": "lp"}}}},
		{"a task definition: its next revision, and each role passed", "ECS", "RegisterTaskDefinition", &ecs.RegisterTaskDefinitionInput{Family: aws.String("deploybot-lp-worker"), Tags: tags,
			TaskRoleArn: aws.String("arn:aws:iam::123456789012:role/deploybot/deploybot-lp-task")},
			[]check{
				{"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-lp-worker:1", map[string]string{"ecs:CreateAction": "RegisterTaskDefinition", "aws:RequestTag/deploybot:environment": "lp"}},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/deploybot/deploybot-lp-task", map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
			}},
		{"a scalable target with tags: the SAR's TagResource and the target service", "Application Auto Scaling", "RegisterScalableTarget",
			&applicationautoscaling.RegisterScalableTargetInput{Tags: map[string]string{"team": "data"}},
			[]check{{"application-autoscaling:TagResource", "", nil}, {"ecs:DescribeServices", "", nil}, {"ecs:UpdateService", "", nil}}},
		{"a private DNS namespace: Route 53 and EC2 through Cloud Map", "ServiceDiscovery", "CreatePrivateDnsNamespace", &servicediscovery.CreatePrivateDnsNamespaceInput{},
			[]check{{"route53:CreateHostedZone", "", nil}, {"route53:GetHostedZone", "", nil}, {"route53:ListHostedZonesByName", "", nil}, {"ec2:DescribeVpcs", "", nil}, {"ec2:DescribeRegions", "", nil}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []check
			for _, r := range impliedChecks(w, tc.service, tc.op, tc.params) {
				got = append(got, check{r.Action, r.Resource, r.Context})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
