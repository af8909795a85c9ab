package awssim

import "reflect"

// Dependent actions: the further permissions IAM checks on the caller behind
// one API call. The simulated account enforces them from this table, which is
// its own: it is transcribed from AWS's documentation, each entry under the
// page it comes from, and shares nothing with the table bootstrap grants from
// (internal/bootstrap/policy.go). So a wrong or missing entry in bootstrap's
// table makes a step of the least-privilege proof fail with AccessDenied
// (internal/bootstrap/leastpriv_sar_test.go shows it), instead of being
// enforced and granted alike.
//
// The primary source is the Service Authorization Reference, the "Dependent
// actions" column of each service's Actions table
// (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html;
// the same data is published as JSON per service at
// https://servicereference.us-east-1.amazonaws.com/). The pages were read
// from the copies of AWS's HTML that policy_sentry keeps in its repository
// (Copy), on the date given (Retrieved, the copy's commit date). Where that
// column is silent but the service's own guide documents a check on the
// caller (tag-on-create, permissions used through forward access sessions,
// Application Auto Scaling's validation of target-service permissions), the
// guide is a source of its own, with its URL.
//
// To extend it (a new AWS client in internal/awsapi, say SQS or EventBridge,
// or the Resource Groups Tagging API): add the service's SAR page to
// sarPages with every action deploybot calls, each with its Dependent
// actions (nil when the column is empty), or AllEmpty when the column is
// empty for every action of the page; then any guide that documents more.
// TestDependentActionsCoverEveryCall fails for an action deploybot can call
// that no SAR page lists.

// dependency is one action IAM checks behind a call.
type dependency struct {
	Action string
	// OnlyTagged: checked only when the request tags what it creates
	// (tag-on-create); the Dependent actions column lists the tagging action
	// for exactly that case.
	OnlyTagged bool
}

func deps(actions ...string) []dependency {
	out := make([]dependency, len(actions))
	for i, a := range actions {
		out[i] = dependency{Action: a}
	}
	return out
}

func ifTagged(action string) []dependency {
	return []dependency{{Action: action, OnlyTagged: true}}
}

// dependentSource is one AWS page and what it says.
type dependentSource struct {
	Doc       string // AWS's page
	Where     string // the table column or section read
	Copy      string // the copy read, when not the page itself
	Retrieved string // YYYY-MM-DD
	// Prefix is the IAM service prefix a SAR page covers ("" for guides).
	Prefix string
	// AllEmpty: the page's Dependent actions column is empty for every
	// action (so for every action deploybot may call of this service).
	AllEmpty bool
	// Actions maps an action deploybot calls to its dependent actions (nil:
	// the page lists none).
	Actions map[string][]dependency
}

const (
	sarColumn = `Actions table, column "Dependent actions"`
	// The copies of AWS's SAR pages in salesforce/policy_sentry, at the
	// commits that last changed them.
	sarCopy0510 = "https://github.com/salesforce/policy_sentry/blob/c0d416cc2e40445189a6e7141fb800a86b27a7e5/policy_sentry/shared/data/docs/"
	sarCopy0614 = "https://github.com/salesforce/policy_sentry/blob/81b0a6663059a61cb7e64f7f2b8cfdcaf1b8a7ac/policy_sentry/shared/data/docs/"
	sarBase     = "https://docs.aws.amazon.com/service-authorization/latest/reference/"
)

// sarPages are the Service Authorization Reference's pages of the services
// deploybot calls.
var sarPages = []dependentSource{
	{
		Prefix: "ec2", Doc: sarBase + "list_amazonec2.html", Where: sarColumn,
		Copy: sarCopy0510 + "list_amazonec2.html", Retrieved: "2026-05-10",
		Actions: map[string][]dependency{
			// Each create lists ec2:CreateTags: with TagSpecifications the
			// request is also authorized as ec2:CreateTags, with the
			// ec2:CreateAction condition key set to the create.
			"ec2:CreateVpc":             ifTagged("ec2:CreateTags"),
			"ec2:CreateSubnet":          ifTagged("ec2:CreateTags"),
			"ec2:CreateInternetGateway": ifTagged("ec2:CreateTags"),
			"ec2:CreateRouteTable":      ifTagged("ec2:CreateTags"),
			"ec2:AllocateAddress":       ifTagged("ec2:CreateTags"),
			"ec2:CreateNatGateway":      ifTagged("ec2:CreateTags"),
			"ec2:CreateSecurityGroup":   ifTagged("ec2:CreateTags"),
			// For tags on the new security-group rules (deploybot sets none).
			"ec2:AuthorizeSecurityGroupEgress": ifTagged("ec2:CreateTags"),

			"ec2:DescribeVpcs": nil, "ec2:DeleteVpc": nil, "ec2:ModifyVpcAttribute": nil, "ec2:DescribeVpcAttribute": nil,
			"ec2:DescribeSubnets": nil, "ec2:DeleteSubnet": nil, "ec2:ModifySubnetAttribute": nil,
			"ec2:AttachInternetGateway": nil, "ec2:DetachInternetGateway": nil, "ec2:DeleteInternetGateway": nil, "ec2:DescribeInternetGateways": nil,
			"ec2:DescribeRouteTables": nil, "ec2:DeleteRouteTable": nil, "ec2:CreateRoute": nil, "ec2:ReplaceRoute": nil, "ec2:DeleteRoute": nil,
			"ec2:AssociateRouteTable": nil, "ec2:DisassociateRouteTable": nil,
			"ec2:ReleaseAddress": nil, "ec2:DescribeAddresses": nil, "ec2:DeleteNatGateway": nil, "ec2:DescribeNatGateways": nil,
			"ec2:DeleteSecurityGroup": nil, "ec2:DescribeSecurityGroups": nil, "ec2:RevokeSecurityGroupEgress": nil, "ec2:RevokeSecurityGroupIngress": nil,
			"ec2:DescribeNetworkInterfaces": nil, "ec2:DescribeAvailabilityZones": nil, "ec2:CreateTags": nil, "ec2:DeleteTags": nil,
		},
	},
	{
		Prefix: "ecs", Doc: sarBase + "list_amazonelasticcontainerservice.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_amazonelasticcontainerservice.html", Retrieved: "2026-06-14",
		// The column lists iam:PassRole only for RunTask, StartTask and
		// CreateExpressGatewayService, which deploybot does not call.
		Actions: map[string][]dependency{
			"ecs:CreateCluster": nil, "ecs:DescribeClusters": nil, "ecs:DeleteCluster": nil, "ecs:UpdateClusterSettings": nil,
			"ecs:TagResource": nil, "ecs:UntagResource": nil, "ecs:ListTagsForResource": nil,
			"ecs:RegisterTaskDefinition": nil, "ecs:DescribeTaskDefinition": nil, "ecs:DeregisterTaskDefinition": nil,
			"ecs:DeleteTaskDefinitions": nil, "ecs:ListTaskDefinitions": nil,
			"ecs:CreateService": nil, "ecs:DescribeServices": nil, "ecs:UpdateService": nil, "ecs:DeleteService": nil,
			"ecs:ListServiceDeployments": nil, "ecs:DescribeServiceDeployments": nil, "ecs:ListTasks": nil, "ecs:DescribeTasks": nil,
		},
	},
	{
		Prefix: "iam", Doc: sarBase + "list_awsidentityandaccessmanagementiam.html", Where: sarColumn,
		Copy: sarCopy0510 + "list_awsidentityandaccessmanagementiam.html", Retrieved: "2026-05-10",
		// Only AddRoleToInstanceProfile and GenerateOrganizationsAccessReport
		// have dependent actions; deploybot calls neither.
		Actions: map[string][]dependency{
			"iam:CreateRole": nil, "iam:GetRole": nil, "iam:DeleteRole": nil, "iam:UpdateAssumeRolePolicy": nil,
			"iam:TagRole": nil, "iam:UntagRole": nil, "iam:ListRoleTags": nil,
			"iam:AttachRolePolicy": nil, "iam:DetachRolePolicy": nil, "iam:ListAttachedRolePolicies": nil,
			"iam:PutRolePolicy": nil, "iam:GetRolePolicy": nil, "iam:DeleteRolePolicy": nil, "iam:ListRolePolicies": nil,
			"iam:CreateOpenIDConnectProvider": nil, "iam:GetOpenIDConnectProvider": nil, "iam:ListOpenIDConnectProviders": nil,
			"iam:CreateServiceLinkedRole": nil, "iam:ListRoles": nil,
		},
	},
	{
		Prefix: "logs", Doc: sarBase + "list_amazoncloudwatchlogs.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_amazoncloudwatchlogs.html", Retrieved: "2026-06-14",
		// Only PutDestination and PutSubscriptionFilter (iam:PassRole).
		Actions: map[string][]dependency{
			"logs:CreateLogGroup": nil, "logs:DescribeLogGroups": nil, "logs:DeleteLogGroup": nil, "logs:PutRetentionPolicy": nil,
			"logs:DeleteRetentionPolicy": nil, "logs:ListTagsForResource": nil, "logs:TagResource": nil, "logs:UntagResource": nil,
		},
	},
	{
		Prefix: "secretsmanager", Doc: sarBase + "list_awssecretsmanager.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_awssecretsmanager.html", Retrieved: "2026-06-14", AllEmpty: true,
	},
	{
		Prefix: "servicediscovery", Doc: sarBase + "list_awscloudmap.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_awscloudmap.html", Retrieved: "2026-06-14", AllEmpty: true,
	},
	{
		Prefix: "application-autoscaling", Doc: sarBase + "list_awsapplicationautoscaling.html", Where: sarColumn,
		Copy: sarCopy0510 + "list_awsapplicationautoscaling.html", Retrieved: "2026-05-10",
		Actions: map[string][]dependency{
			// Tags in the request are also authorized as TagResource.
			"application-autoscaling:RegisterScalableTarget":   ifTagged("application-autoscaling:TagResource"),
			"application-autoscaling:DescribeScalableTargets":  nil,
			"application-autoscaling:DeregisterScalableTarget": nil,
			"application-autoscaling:PutScalingPolicy":         nil,
			"application-autoscaling:DescribeScalingPolicies":  nil,
			"application-autoscaling:DeleteScalingPolicy":      nil,
			"application-autoscaling:ListTagsForResource":      nil,
			"application-autoscaling:TagResource":              nil,
			"application-autoscaling:UntagResource":            nil,
		},
	},
	{
		Prefix: "ssm", Doc: sarBase + "list_awssystemsmanager.html", Where: sarColumn,
		Copy: sarCopy0510 + "list_awssystemsmanager.html", Retrieved: "2026-05-10",
		// Only CreateDocument (iam:PassRole).
		Actions: map[string][]dependency{"ssm:PutParameter": nil, "ssm:GetParameter": nil, "ssm:DeleteParameter": nil},
	},
	{
		Prefix: "sts", Doc: sarBase + "list_awssecuritytokenservice.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_awssecuritytokenservice.html", Retrieved: "2026-06-14", AllEmpty: true,
	},
	// Read for the services being added (SQS, EventBridge, the Resource
	// Groups Tagging API): their columns are empty for every action.
	{
		Prefix: "sqs", Doc: sarBase + "list_amazonsqs.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_amazonsqs.html", Retrieved: "2026-06-14", AllEmpty: true,
	},
	{
		Prefix: "events", Doc: sarBase + "list_amazoneventbridge.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_amazoneventbridge.html", Retrieved: "2026-06-14", AllEmpty: true,
	},
	{
		Prefix: "tag", Doc: sarBase + "list_amazonresourcegrouptaggingapi.html", Where: sarColumn,
		Copy: sarCopy0614 + "list_amazonresourcegrouptaggingapi.html", Retrieved: "2026-06-14", AllEmpty: true,
	},
}

// guides are the services' own documentation of checks on the caller that
// the SAR column does not list. Read through the search tool's stored copies
// of the pages on the date given. iam:PassRole behind RegisterTaskDefinition
// is in authz.go (it is checked on each role passed, with
// iam:PassedToService).
var guides = []dependentSource{
	{
		Doc:       "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html",
		Where:     "Grant permission to tag resources on creation",
		Retrieved: "2026-12-01",
		// "If tags are specified in the resource-creating action, AWS
		// performs additional authorization": ecs:TagResource, with
		// ecs:CreateAction set to the create.
		Actions: map[string][]dependency{
			"ecs:CreateCluster":          ifTagged("ecs:TagResource"),
			"ecs:CreateService":          ifTagged("ecs:TagResource"),
			"ecs:RegisterTaskDefinition": ifTagged("ecs:TagResource"),
		},
	},
	{
		Doc:       "https://docs.aws.amazon.com/cloud-map/latest/dg/cloud-map-api-permissions-ref.html",
		Where:     "Required permissions for AWS Cloud Map actions",
		Retrieved: "2026-12-01",
		// Cloud Map makes the Route 53 calls with the caller's permissions
		// (a forward access session, which the SAR's column leaves out).
		// The page lists only the action itself for CreateService,
		// DeleteService and DeleteNamespace.
		Actions: map[string][]dependency{
			"servicediscovery:CreatePrivateDnsNamespace": deps("route53:CreateHostedZone", "route53:GetHostedZone",
				"route53:ListHostedZonesByName", "ec2:DescribeVpcs", "ec2:DescribeRegions"),
			"servicediscovery:DeregisterInstance": deps("route53:GetHealthCheck", "route53:DeleteHealthCheck", "route53:UpdateHealthCheck"),
		},
	},
	{
		Doc:       "https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html",
		Where:     "Permissions validation for API calls on target resources",
		Retrieved: "2026-12-01",
		// "Making authorized requests to Application Auto Scaling API
		// actions requires that the API caller has permissions to access
		// AWS resources in the target service and in CloudWatch." For an
		// ECS service those are the ones
		// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/auto-scaling-IAM.html
		// lists; which call checks which is this table's reading: the
		// target registers against the service, the policies own their
		// CloudWatch alarms.
		Actions: map[string][]dependency{
			"application-autoscaling:RegisterScalableTarget": deps("ecs:DescribeServices", "ecs:UpdateService"),
			"application-autoscaling:PutScalingPolicy":       deps("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"),
			"application-autoscaling:DeleteScalingPolicy":    deps("cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"),
		},
	},
}

// dependentOf indexes both kinds of sources by action.
var dependentOf = func() map[string][]dependency {
	m := map[string][]dependency{}
	for _, src := range append(append([]dependentSource(nil), sarPages...), guides...) {
		for a, ds := range src.Actions {
			m[a] = append(m[a], ds...)
		}
	}
	return m
}()

// requestTagsOf returns the tags a create request carries, whatever the
// service's shape: EC2's TagSpecifications, a list of Key/Value tags (ECS,
// IAM, Secrets Manager, Cloud Map) or a map (Application Auto Scaling,
// CloudWatch Logs, SQS). Unknown shapes carry none.
func requestTagsOf(params any) map[string]string {
	v := reflect.ValueOf(params)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]string{}
	if specs := v.FieldByName("TagSpecifications"); specs.IsValid() && specs.Kind() == reflect.Slice {
		for i := 0; i < specs.Len(); i++ {
			addTags(out, specs.Index(i).FieldByName("Tags"))
		}
	}
	addTags(out, v.FieldByName("Tags"))
	if len(out) == 0 {
		return nil
	}
	return out
}

func addTags(out map[string]string, tags reflect.Value) {
	if !tags.IsValid() {
		return
	}
	deref := func(v reflect.Value) string {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return ""
			}
			v = v.Elem()
		}
		if v.Kind() == reflect.String {
			return v.String()
		}
		return ""
	}
	switch tags.Kind() {
	case reflect.Map:
		for _, k := range tags.MapKeys() {
			out[deref(k)] = deref(tags.MapIndex(k))
		}
	case reflect.Slice:
		for i := 0; i < tags.Len(); i++ {
			t := tags.Index(i)
			if t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct {
				continue
			}
			if k := t.FieldByName("Key"); k.IsValid() {
				out[deref(k)] = deref(t.FieldByName("Value"))
			}
		}
	}
}

// requestTagContext is the aws:RequestTag/KEY condition keys of tags.
func requestTagContext(tags map[string]string) map[string]string {
	ctx := map[string]string{}
	for k, v := range tags {
		ctx["aws:RequestTag/"+k] = v
	}
	return ctx
}
