package config

import "time"

// The lists below are the closed sets an environment file may choose from.
// environments/schema.json repeats them as enums; schema_test.go keeps the
// two in sync.

// Defaults filled by Load for keys that are absent (or null).
const (
	DefaultCPU              = 512
	DefaultMemory           = 1024
	DefaultDesiredCount     = 1
	DefaultLogRetentionDays = 30
	DefaultNetworkMode      = "managed"
	DefaultCIDR             = "10.0.0.0/16"
	DefaultAZs              = 2
	DefaultNAT              = "none"
	// DefaultGateTimeout is gate.DefaultTimeout (its comment says why 10
	// minutes: a smoke flow run, then room for a rollback).
	DefaultGateTimeout      = 10 * time.Minute
	DefaultMinOnlineWorkers = 1
	DefaultTargetCPUPercent = 70
	// Flow runs get prefect-aws's own Fargate size when the pool sets none
	// (ECS_DEFAULT_CPU, ECS_DEFAULT_MEMORY: prefect_aws/workers/ecs_worker.py,
	// docs/research/prefect-flow-runs.md §A.3).
	DefaultFlowRunCPU    = 1024
	DefaultFlowRunMemory = 2048
	// The service discovery namespace defaults to NAME + NamespaceSuffix.
	NamespaceSuffix = ".prefect.internal"
)

// NetworkModes are the values of network.mode.
var NetworkModes = []string{"managed", "existing"}

// AuthModes are the values of prefect.auth.
var AuthModes = []string{AuthAPIKey, AuthBasic}

// NATModes are the values of network.nat (managed mode).
var NATModes = []string{"none", "single", "per-az"}

// FargateMemory maps each Fargate task CPU value (CPU units) to the memory
// sizes (MiB) Fargate accepts with it. Source: the ECS developer guide,
// "Task CPU and memory" for Fargate (Linux); 8192 and 16384 CPU need
// platform version 1.4.0, which is the default.
var FargateMemory = map[int][]int{
	256:   {512, 1024, 2048},
	512:   steps(1024, 4096, 1024),
	1024:  steps(2048, 8192, 1024),
	2048:  steps(4096, 16384, 1024),
	4096:  steps(8192, 30720, 1024),
	8192:  steps(16384, 61440, 4096),
	16384: steps(32768, 122880, 8192),
}

// FargateCPUs are the keys of FargateMemory, ascending.
var FargateCPUs = []int{256, 512, 1024, 2048, 4096, 8192, 16384}

func steps(from, to, by int) []int {
	var out []int
	for v := from; v <= to; v += by {
		out = append(out, v)
	}
	return out
}

// LogRetentionDays are the retention periods CloudWatch Logs accepts
// (PutRetentionPolicy's retentionInDays enum).
var LogRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Regions are the AWS regions deploybot knows, with their partition. A region
// launched after this list was written is refused until it is added here:
// that is cheaper than a typo that reaches AWS.
var Regions = map[string]string{
	"us-east-1":      "aws",
	"us-east-2":      "aws",
	"us-west-1":      "aws",
	"us-west-2":      "aws",
	"af-south-1":     "aws",
	"ap-east-1":      "aws",
	"ap-east-2":      "aws",
	"ap-south-1":     "aws",
	"ap-south-2":     "aws",
	"ap-southeast-1": "aws",
	"ap-southeast-2": "aws",
	"ap-southeast-3": "aws",
	"ap-southeast-4": "aws",
	"ap-southeast-5": "aws",
	"ap-southeast-6": "aws",
	"ap-southeast-7": "aws",
	"ap-northeast-1": "aws",
	"ap-northeast-2": "aws",
	"ap-northeast-3": "aws",
	"ca-central-1":   "aws",
	"ca-west-1":      "aws",
	"eu-central-1":   "aws",
	"eu-central-2":   "aws",
	"eu-west-1":      "aws",
	"eu-west-2":      "aws",
	"eu-west-3":      "aws",
	"eu-south-1":     "aws",
	"eu-south-2":     "aws",
	"eu-north-1":     "aws",
	"il-central-1":   "aws",
	"me-south-1":     "aws",
	"me-central-1":   "aws",
	"mx-central-1":   "aws",
	"sa-east-1":      "aws",
	"cn-north-1":     "aws-cn",
	"cn-northwest-1": "aws-cn",
	"us-gov-east-1":  "aws-us-gov",
	"us-gov-west-1":  "aws-us-gov",
}

// Limits that follow from AWS and from the names deploybot derives.
const (
	// MaxNameLen keeps every derived name inside its AWS limit with room to
	// spare; the tightest is the IAM role name (64): "deploybot-" + NAME +
	// "-execution" is 44 characters at most.
	MaxNameLen = 24
	// MaxUserTags: AWS allows 50 tags per resource; deploybot adds three
	// (deploybot:environment, deploybot:stack, managed-by) and, on EC2
	// resources, the Name tag.
	MaxUserTags = 46
	MaxTagKey   = 128
	MaxTagValue = 256
	// MaxWorkers bounds autoscaling.max: a worker polls Prefect, more than
	// a hundred per environment is a mistake, not a plan.
	MaxWorkers = 100
	MinAZs     = 2
	MaxAZs     = 6
	// MinCIDRPrefix..MaxCIDRPrefix: subnets are carved at prefix+4, and
	// AWS's smallest subnet is a /28.
	MinCIDRPrefix = 16
	MaxCIDRPrefix = 24
	// SubnetBits is how many bits the network carves off the VPC prefix.
	SubnetBits = 4
	// ECS awsvpcConfiguration accepts at most 16 subnets and 5 security
	// groups (ECS API reference, AwsVpcConfiguration).
	MaxSubnets        = 16
	MaxSecurityGroups = 5
	// MaxRolePolicies: IAM attaches at most 20 managed policies to a role
	// (10 by default; "Managed policies attached to an IAM role", IAM and
	// AWS STS quotas,
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
	MaxRolePolicies = 20
	// MaxInlinePolicySize: a role's inline policies may hold 10,240
	// characters together, whitespace not counted (the same quotas page).
	MaxInlinePolicySize = 10240
	MinGateTimeout      = 30 * time.Second
	MaxGateTimeout      = time.Hour
)
