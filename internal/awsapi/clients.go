// Package awsapi holds the consumer interfaces (SDK-exact signatures, generated
// by internal/tools/genapi) and the bundle of clients the engine uses. The real
// *xxx.Client values satisfy them; so do clients built on an awssim world.
package awsapi

//go:generate go run ../tools/genapi/main.go

import (
	"github.com/aws/aws-sdk-go-v2/aws"
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

// Clients is every AWS API deploybot talks to, for one account and region.
type Clients struct {
	EC2         EC2API
	ECS         ECSAPI
	IAM         IAMAPI
	Logs        LogsAPI
	Secrets     SecretsAPI
	Discovery   ServiceDiscoveryAPI
	AutoScaling AutoScalingAPI
	STS         STSAPI
	SSM         SSMAPI
	// Tagging lists what is tagged for an environment (internal/inventory).
	Tagging TaggingAPI
	// SQS and EventBridge are the ECS observer's queues and the rule that
	// feeds them (internal/kinds/sqs, internal/kinds/eventbridge).
	SQS         SQSAPI
	EventBridge EventBridgeAPI
}

// New builds the real clients from a loaded aws.Config (which already honours
// AWS_ENDPOINT_URL and the rest of the SDK's standard settings).
func New(cfg aws.Config) *Clients {
	return &Clients{
		EC2:         ec2.NewFromConfig(cfg),
		ECS:         ecs.NewFromConfig(cfg),
		IAM:         iam.NewFromConfig(cfg),
		Logs:        cloudwatchlogs.NewFromConfig(cfg),
		Secrets:     secretsmanager.NewFromConfig(cfg),
		Discovery:   servicediscovery.NewFromConfig(cfg),
		AutoScaling: applicationautoscaling.NewFromConfig(cfg),
		STS:         sts.NewFromConfig(cfg),
		SSM:         ssm.NewFromConfig(cfg),
		Tagging:     resourcegroupstaggingapi.NewFromConfig(cfg),
		SQS:         sqs.NewFromConfig(cfg),
		EventBridge: eventbridge.NewFromConfig(cfg),
	}
}
