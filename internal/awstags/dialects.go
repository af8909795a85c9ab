package awstags

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/deploybot/deploybot/internal/awsapi"
)

// ECS is the dialect of ECS clusters, services and task definitions (by ARN).
func ECS(api awsapi.ECSAPI) Dialect {
	return Dialect{Service: "ECS",
		Tag: func(ctx context.Context, arn string, set map[string]string) error {
			_, err := api.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: ECSList(set)})
			return err
		},
		Untag: func(ctx context.Context, arn string, keys []string) error {
			_, err := api.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: keys})
			return err
		}}
}

// ECSList is tags as ECS takes them.
func ECSList(tags map[string]string) []ecstypes.Tag {
	return List(tags, func(k, v string) ecstypes.Tag { return ecstypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// ECSMap is ECS's tags as a map.
func ECSMap(tags []ecstypes.Tag) map[string]string {
	return Map(tags, func(t ecstypes.Tag) (*string, *string) { return t.Key, t.Value })
}

// IAMRole is the dialect of IAM roles (by name).
func IAMRole(api awsapi.IAMAPI) Dialect {
	return Dialect{Service: "IAM",
		Tag: func(ctx context.Context, role string, set map[string]string) error {
			_, err := api.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(role), Tags: IAMList(set)})
			return err
		},
		Untag: func(ctx context.Context, role string, keys []string) error {
			_, err := api.UntagRole(ctx, &iam.UntagRoleInput{RoleName: aws.String(role), TagKeys: keys})
			return err
		}}
}

// IAMList is tags as IAM takes them.
func IAMList(tags map[string]string) []iamtypes.Tag {
	return List(tags, func(k, v string) iamtypes.Tag { return iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// IAMMap is IAM's tags as a map.
func IAMMap(tags []iamtypes.Tag) map[string]string {
	return Map(tags, func(t iamtypes.Tag) (*string, *string) { return t.Key, t.Value })
}

// Logs is the dialect of CloudWatch Logs log groups (by ARN without ":*").
func Logs(api awsapi.LogsAPI) Dialect {
	return Dialect{Service: "CloudWatch Logs",
		Tag: func(ctx context.Context, arn string, set map[string]string) error {
			_, err := api.TagResource(ctx, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(arn), Tags: set})
			return err
		},
		Untag: func(ctx context.Context, arn string, keys []string) error {
			_, err := api.UntagResource(ctx, &cloudwatchlogs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: keys})
			return err
		}}
}

// Secrets is the dialect of Secrets Manager secrets (by ARN or name).
func Secrets(api awsapi.SecretsAPI) Dialect {
	return Dialect{Service: "Secrets Manager",
		Tag: func(ctx context.Context, id string, set map[string]string) error {
			_, err := api.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(id), Tags: SecretsList(set)})
			return err
		},
		Untag: func(ctx context.Context, id string, keys []string) error {
			_, err := api.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(id), TagKeys: keys})
			return err
		}}
}

// SecretsList is tags as Secrets Manager takes them.
func SecretsList(tags map[string]string) []smtypes.Tag {
	return List(tags, func(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// SecretsMap is Secrets Manager's tags as a map.
func SecretsMap(tags []smtypes.Tag) map[string]string {
	return Map(tags, func(t smtypes.Tag) (*string, *string) { return t.Key, t.Value })
}

// CloudMap is the dialect of Cloud Map namespaces and services (by ARN).
func CloudMap(api awsapi.ServiceDiscoveryAPI) Dialect {
	return Dialect{Service: "Cloud Map",
		Tag: func(ctx context.Context, arn string, set map[string]string) error {
			_, err := api.TagResource(ctx, &sd.TagResourceInput{ResourceARN: aws.String(arn), Tags: CloudMapList(set)})
			return err
		},
		Untag: func(ctx context.Context, arn string, keys []string) error {
			_, err := api.UntagResource(ctx, &sd.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: keys})
			return err
		}}
}

// CloudMapList is tags as Cloud Map takes them.
func CloudMapList(tags map[string]string) []sdtypes.Tag {
	return List(tags, func(k, v string) sdtypes.Tag { return sdtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// CloudMapRead lists a Cloud Map resource's tags.
func CloudMapRead(ctx context.Context, api awsapi.ServiceDiscoveryAPI, arn string) (map[string]string, error) {
	out, err := api.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	return Map(out.Tags, func(t sdtypes.Tag) (*string, *string) { return t.Key, t.Value }), nil
}

// AutoScaling is the dialect of Application Auto Scaling scalable targets
// (by ARN; scaling policies take no tags).
func AutoScaling(api awsapi.AutoScalingAPI) Dialect {
	return Dialect{Service: "Application Auto Scaling",
		Tag: func(ctx context.Context, arn string, set map[string]string) error {
			_, err := api.TagResource(ctx, &aas.TagResourceInput{ResourceARN: aws.String(arn), Tags: set})
			return err
		},
		Untag: func(ctx context.Context, arn string, keys []string) error {
			_, err := api.UntagResource(ctx, &aas.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: keys})
			return err
		}}
}

// EC2 is the dialect of every EC2 resource (by id).
func EC2(api awsapi.EC2API) Dialect {
	return Dialect{Service: "EC2",
		Tag: func(ctx context.Context, id string, set map[string]string) error {
			_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: EC2List(set)})
			return err
		},
		Untag: func(ctx context.Context, id string, keys []string) error {
			tags := make([]ec2types.Tag, 0, len(keys))
			for _, k := range keys {
				tags = append(tags, ec2types.Tag{Key: aws.String(k)})
			}
			_, err := api.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: tags})
			return err
		}}
}

// EC2List is tags as EC2 takes them.
func EC2List(tags map[string]string) []ec2types.Tag {
	return List(tags, func(k, v string) ec2types.Tag { return ec2types.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// EC2Map is EC2's tags as a map.
func EC2Map(tags []ec2types.Tag) map[string]string {
	return Map(tags, func(t ec2types.Tag) (*string, *string) { return t.Key, t.Value })
}

// EC2Spec tags an EC2 resource in its create call (docs/research/aws-ecs.md
// §6: a crash between create and tag must not leave an untagged orphan).
func EC2Spec(rt ec2types.ResourceType, tags map[string]string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: EC2List(tags)}}
}

// SQS is the dialect of SQS queues (by URL).
func SQS(api awsapi.SQSAPI) Dialect {
	return Dialect{Service: "SQS",
		Tag: func(ctx context.Context, url string, set map[string]string) error {
			_, err := api.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: aws.String(url), Tags: set})
			return err
		},
		Untag: func(ctx context.Context, url string, keys []string) error {
			_, err := api.UntagQueue(ctx, &sqs.UntagQueueInput{QueueUrl: aws.String(url), TagKeys: keys})
			return err
		}}
}

// EventBridge is the dialect of EventBridge rules (by ARN).
func EventBridge(api awsapi.EventBridgeAPI) Dialect {
	return Dialect{Service: "EventBridge",
		Tag: func(ctx context.Context, arn string, set map[string]string) error {
			_, err := api.TagResource(ctx, &eventbridge.TagResourceInput{ResourceARN: aws.String(arn), Tags: EventBridgeList(set)})
			return err
		},
		Untag: func(ctx context.Context, arn string, keys []string) error {
			_, err := api.UntagResource(ctx, &eventbridge.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: keys})
			return err
		}}
}

// EventBridgeList is tags as EventBridge takes them.
func EventBridgeList(tags map[string]string) []ebtypes.Tag {
	return List(tags, func(k, v string) ebtypes.Tag { return ebtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// EventBridgeMap is EventBridge's tags as a map.
func EventBridgeMap(tags []ebtypes.Tag) map[string]string {
	return Map(tags, func(t ebtypes.Tag) (*string, *string) { return t.Key, t.Value })
}
