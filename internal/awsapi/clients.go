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
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
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
	// SQSAPI and EventBridgeAPI (api.go) join this bundle with the ECS
	// observer's kinds (issue 9 item 4): bootstrap grants every operation
	// of every field here, and its least-privilege proof needs each granted
	// action to be called, so the fields come with the code that calls
	// them and the statements that scope them.
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
	}
}
