//go:build ignore

// genapi writes internal/awsapi/api.go (run by go generate in that folder):
// consumer interfaces with the SDK's exact method signatures for the
// operations deploybot calls, and the bundle of clients (Clients, New), from
// one table of the services.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

type svc struct {
	// field is the service's field of awsapi.Clients; doc, when set, says
	// more of it there.
	field, doc string
	iface, pkg string
	client     any
	ops        string
}

var svcs = []svc{
	{"EC2", "", "EC2API", "ec2", (*ec2.Client)(nil), `CreateVpc DescribeVpcs DeleteVpc ModifyVpcAttribute DescribeVpcAttribute
		CreateSubnet DescribeSubnets DeleteSubnet ModifySubnetAttribute
		CreateInternetGateway AttachInternetGateway DetachInternetGateway DeleteInternetGateway DescribeInternetGateways
		CreateRouteTable DescribeRouteTables DeleteRouteTable CreateRoute ReplaceRoute DeleteRoute AssociateRouteTable DisassociateRouteTable
		AllocateAddress ReleaseAddress DescribeAddresses CreateNatGateway DeleteNatGateway DescribeNatGateways
		CreateSecurityGroup DeleteSecurityGroup DescribeSecurityGroups AuthorizeSecurityGroupEgress RevokeSecurityGroupEgress RevokeSecurityGroupIngress
		DescribeNetworkInterfaces DescribeAvailabilityZones CreateTags DeleteTags`},
	{"ECS", "", "ECSAPI", "ecs", (*ecs.Client)(nil), `CreateCluster DescribeClusters DeleteCluster TagResource UntagResource ListTagsForResource
		RegisterTaskDefinition DescribeTaskDefinition DeregisterTaskDefinition DeleteTaskDefinitions ListTaskDefinitions
		CreateService DescribeServices UpdateService DeleteService ListServiceDeployments DescribeServiceDeployments
		ListTasks DescribeTasks UpdateClusterSettings`},
	{"IAM", "", "IAMAPI", "iam", (*iam.Client)(nil), `CreateRole GetRole DeleteRole UpdateAssumeRolePolicy TagRole UntagRole ListRoleTags
		AttachRolePolicy DetachRolePolicy ListAttachedRolePolicies PutRolePolicy GetRolePolicy DeleteRolePolicy ListRolePolicies
		CreateOpenIDConnectProvider GetOpenIDConnectProvider ListOpenIDConnectProviders CreateServiceLinkedRole ListRoles`},
	{"Logs", "", "LogsAPI", "cloudwatchlogs", (*cloudwatchlogs.Client)(nil), `CreateLogGroup DescribeLogGroups DeleteLogGroup PutRetentionPolicy
		DeleteRetentionPolicy ListTagsForResource TagResource UntagResource`},
	{"Secrets", "", "SecretsAPI", "secretsmanager", (*secretsmanager.Client)(nil), `CreateSecret DescribeSecret PutSecretValue DeleteSecret RestoreSecret UpdateSecretVersionStage
		TagResource UntagResource`},
	{"Discovery", "", "ServiceDiscoveryAPI", "servicediscovery", (*servicediscovery.Client)(nil), `CreatePrivateDnsNamespace GetNamespace ListNamespaces
		DeleteNamespace GetOperation CreateService GetService ListServices DeleteService UpdateService ListInstances DeregisterInstance
		ListTagsForResource TagResource UntagResource`},
	{"AutoScaling", "", "AutoScalingAPI", "applicationautoscaling", (*applicationautoscaling.Client)(nil), `RegisterScalableTarget DescribeScalableTargets
		DeregisterScalableTarget PutScalingPolicy DescribeScalingPolicies DeleteScalingPolicy ListTagsForResource TagResource UntagResource`},
	{"STS", "", "STSAPI", "sts", (*sts.Client)(nil), `GetCallerIdentity AssumeRoleWithWebIdentity`},
	{"SSM", "", "SSMAPI", "ssm", (*ssm.Client)(nil), `PutParameter GetParameter DeleteParameter`},
	// The inventory of everything tagged for an environment (issue 11 item
	// 11): what its stack no longer has is found and deleted.
	{"Tagging", "lists what is tagged for an environment (internal/inventory)", "TaggingAPI", "resourcegroupstaggingapi", (*resourcegroupstaggingapi.Client)(nil), `GetResources`},
	// The ECS observer's queue and the rule that feeds it (issue 9;
	// docs/research/prefect-flow-runs.md §B.4). The observer's own calls
	// (ReceiveMessage, DeleteMessage, ChangeMessageVisibility) are made by the
	// worker, not by deploybot, so they are not here.
	{"SQS", "holds the ECS observer's queues (internal/kinds/sqs)", "SQSAPI", "sqs", (*sqs.Client)(nil), `CreateQueue GetQueueUrl GetQueueAttributes SetQueueAttributes DeleteQueue
		TagQueue UntagQueue ListQueueTags`},
	{"EventBridge", "holds the rule that feeds them (internal/kinds/eventbridge)", "EventBridgeAPI", "eventbridge", (*eventbridge.Client)(nil), `PutRule DescribeRule DeleteRule
		PutTargets ListTargetsByRule RemoveTargets TagResource UntagResource ListTagsForResource`},
}

func main() {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/tools/genapi; DO NOT EDIT.\n\n")
	b.WriteString("package awsapi\n\nimport (\n\t\"context\"\n\n\t\"github.com/aws/aws-sdk-go-v2/aws\"\n")
	for _, s := range svcs {
		fmt.Fprintf(&b, "\t%q\n", reflect.TypeOf(s.client).Elem().PkgPath())
	}
	b.WriteString(")\n\n")
	for _, s := range svcs {
		t := reflect.TypeOf(s.client)
		fmt.Fprintf(&b, "// %s is the part of *%s.Client that deploybot calls.\ntype %s interface {\n", s.iface, s.pkg, s.iface)
		for _, op := range strings.Fields(s.ops) {
			if _, ok := t.MethodByName(op); !ok {
				panic(s.pkg + " has no " + op)
			}
			fmt.Fprintf(&b, "\t%s(ctx context.Context, params *%s.%sInput, optFns ...func(*%s.Options)) (*%s.%sOutput, error)\n", op, s.pkg, op, s.pkg, s.pkg, op)
		}
		b.WriteString("}\n\n")
		fmt.Fprintf(&b, "var _ %s = (*%s.Client)(nil)\n\n", s.iface, s.pkg)
	}
	b.WriteString("// Clients is every AWS API deploybot talks to, for one account and region.\ntype Clients struct {\n")
	for _, s := range svcs {
		if s.doc != "" {
			fmt.Fprintf(&b, "\t// %s %s.\n", s.field, s.doc)
		}
		fmt.Fprintf(&b, "\t%s %s\n", s.field, s.iface)
	}
	b.WriteString("}\n\n// New builds the real clients from a loaded aws.Config (which already honours\n" +
		"// AWS_ENDPOINT_URL and the rest of the SDK's standard settings).\nfunc New(cfg aws.Config) *Clients {\n\treturn &Clients{\n")
	for _, s := range svcs {
		fmt.Fprintf(&b, "\t\t%s: %s.NewFromConfig(cfg),\n", s.field, s.pkg)
	}
	b.WriteString("\t}\n}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile("api.go", src, 0o644); err != nil {
		panic(err)
	}
}
