package simtest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/deploybot/deploybot/internal/awssim"
)

// ECSTasksTrustPolicy lets ECS tasks assume a role.
const ECSTasksTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// WorkerStack is what a deploybot environment's worker service needs, made
// by hand with the account's admin: an existing public VPC with a security
// group, the Prefect key's secret, the execution role (ECS managed policy,
// the secret) and the task role, and the cluster. Names follow
// internal/stack's for environment Env.
type WorkerStack struct {
	World                *World
	Env                  string
	Pool                 string
	VPC                  string
	Subnets              []string
	SecurityGroup        string
	Secret               string // the Prefect API key's secret ARN
	ExecutionRole        string
	TaskRole             string
	Cluster              string // name
	ECS                  *ecs.Client
	IAM                  *iam.Client
	TaskRolePolicy       string // the task role's inline policy document
	ExecutionRolePolicy  string
	PrefectAPIURL        string
	PrefectKeyInPlainEnv bool // put the key in the environment instead of a secret
}

// StackOption changes how NewWorkerStack builds the stack.
type StackOption func(*stackSettings)

type stackSettings struct {
	private   bool
	endpoints []string
}

// PrivateSubnets puts the stack in a VPC without a route to the internet,
// with VPC endpoints for the given services ("ecr.api", "ecr.dkr", "s3",
// "secretsmanager", ...).
func PrivateSubnets(endpoints ...string) StackOption {
	return func(s *stackSettings) { s.private, s.endpoints = true, endpoints }
}

// NewWorkerStack builds the stack for environment env whose worker polls
// pool (the World needs WithPrefect). taskPolicy is the task role's inline
// policy ("" for ecs:DescribeTasks only). The roles are older than IAM's
// propagation delay when it returns.
func (w *World) NewWorkerStack(tb testing.TB, env, pool, taskPolicy string, opts ...StackOption) *WorkerStack {
	tb.Helper()
	var set stackSettings
	for _, o := range opts {
		o(&set)
	}
	ctx := context.Background()
	cfg := w.AWS.Config()
	ws := &WorkerStack{World: w, Env: env, Pool: pool, ECS: ecs.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), Cluster: "deploybot-" + env}
	if w.Prefect != nil {
		ws.PrefectAPIURL = w.Prefect.URL()
	}
	ws.VPC, ws.Subnets = w.AWS.SeedExistingVPC("10.0.0.0/16", 2, !set.private)
	for _, e := range set.endpoints {
		w.AWS.SeedVPCEndpoint(ws.VPC, e)
	}
	ws.SecurityGroup = w.AWS.SeedSecurityGroup(ws.VPC, "deploybot-"+env+"-worker")
	sec, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("deploybot/" + env + "/prefect-api-key"), SecretString: aws.String(w.PrefectKey)})
	if err != nil {
		tb.Fatal(err)
	}
	ws.Secret = aws.ToString(sec.ARN)
	if taskPolicy == "" {
		taskPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeTasks","Resource":"*"}]}`
	}
	ws.TaskRolePolicy = taskPolicy
	ws.ExecutionRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"` + ws.Secret + `"}]}`
	ws.ExecutionRole = ws.CreateRole(tb, "deploybot-"+env+"-execution", ws.ExecutionRolePolicy, awssim.ECSTaskExecutionRolePolicyARN)
	ws.TaskRole = ws.CreateRole(tb, "deploybot-"+env+"-task", taskPolicy)
	w.Advance(w.AWS.Timings().IAMPropagation) // ECS may assume the new roles
	if _, err := ws.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(ws.Cluster)}); err != nil {
		tb.Fatal(err)
	}
	return ws
}

// CreateRole creates a role under /deploybot/ that ECS tasks may assume,
// with an inline policy and managed policies, and returns its ARN.
func (ws *WorkerStack) CreateRole(tb testing.TB, name, inline string, managed ...string) string {
	tb.Helper()
	ctx := context.Background()
	out, err := ws.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), Path: aws.String("/deploybot/"),
		AssumeRolePolicyDocument: aws.String(ECSTasksTrustPolicy)})
	if err != nil {
		tb.Fatal(err)
	}
	if inline != "" {
		if _, err := ws.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(inline)}); err != nil {
			tb.Fatal(err)
		}
	}
	for _, arn := range managed {
		if _, err := ws.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			tb.Fatal(err)
		}
	}
	return aws.ToString(out.Role.Arn)
}

// WorkerCommand is the worker container's command under the worker identity
// contract (docs/ARCHITECTURE.md).
var WorkerCommand = []string{"/bin/sh", "-c", `exec prefect worker start --pool "$DEPLOYBOT_WORK_POOL" --type ecs --with-healthcheck --name "$DEPLOYBOT_WORKER_PREFIX-$(hostname)"`}

// WorkerContainer returns the worker's container definition for image, with
// worker-name prefix prefix; extraEnv is added to its environment.
func (ws *WorkerStack) WorkerContainer(image, prefix string, extraEnv map[string]string) ecstypes.ContainerDefinition {
	env := []ecstypes.KeyValuePair{
		{Name: aws.String("DEPLOYBOT_WORK_POOL"), Value: aws.String(ws.Pool)},
		{Name: aws.String("DEPLOYBOT_WORKER_PREFIX"), Value: aws.String(prefix)},
		{Name: aws.String("PREFECT_API_URL"), Value: aws.String(ws.PrefectAPIURL)},
	}
	for _, k := range slices.Sorted(maps.Keys(extraEnv)) {
		env = append(env, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(extraEnv[k])})
	}
	c := ecstypes.ContainerDefinition{Name: aws.String("worker"), Image: aws.String(image), Essential: aws.Bool(true),
		Command: WorkerCommand, Environment: env}
	if ws.PrefectKeyInPlainEnv {
		c.Environment = append(c.Environment, ecstypes.KeyValuePair{Name: aws.String("PREFECT_API_KEY"), Value: aws.String(ws.World.PrefectKey)})
	} else {
		c.Secrets = []ecstypes.Secret{{Name: aws.String("PREFECT_API_KEY"), ValueFrom: aws.String(ws.Secret)}}
	}
	return c
}

// RegisterWorker registers revision n of the worker's family with one
// container (see WorkerContainer, edited by edit when non-nil) and returns
// its ARN.
func (ws *WorkerStack) RegisterWorker(tb testing.TB, image, prefix string, edit func(*ecstypes.ContainerDefinition)) string {
	tb.Helper()
	c := ws.WorkerContainer(image, prefix, nil)
	if edit != nil {
		edit(&c)
	}
	out, err := ws.ECS.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("deploybot-" + ws.Env + "-worker"), RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode: ecstypes.NetworkModeAwsvpc, Cpu: aws.String("512"), Memory: aws.String("1024"),
		ExecutionRoleArn: aws.String(ws.ExecutionRole), TaskRoleArn: aws.String(ws.TaskRole),
		ContainerDefinitions: []ecstypes.ContainerDefinition{c},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// CreateService creates the worker service "worker" running td with
// desired tasks: rolling 100/200 with the circuit breaker and rollback, in
// the stack's subnets with a public IP.
func (ws *WorkerStack) CreateService(tb testing.TB, td string, desired int32) {
	tb.Helper()
	_, err := ws.ECS.CreateService(context.Background(), &ecs.CreateServiceInput{
		Cluster: aws.String(ws.Cluster), ServiceName: aws.String("worker"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(desired), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: ws.Subnets, SecurityGroups: []string{ws.SecurityGroup}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// UpdateService deploys td to the worker service.
func (ws *WorkerStack) UpdateService(tb testing.TB, td string) {
	tb.Helper()
	if _, err := ws.ECS.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String(ws.Cluster), Service: aws.String("worker"), TaskDefinition: aws.String(td)}); err != nil {
		tb.Fatal(err)
	}
}
