package ecs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/inventory"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// ServiceSpec is the worker's ECS service.
type ServiceSpec struct {
	Cluster        string
	Name           string
	TaskDefinition resource.Ref
	DesiredCount   int
	// Autoscaling: desiredCount belongs to Application Auto Scaling and is
	// not diffed (docs/research/aws-ecs.md §8: the TF module ignores it too).
	Autoscaling     bool
	Subnets         []resource.Ref
	SecurityGroups  []resource.Ref
	AssignPublicIP  bool
	MaximumPercent  int32
	MinimumHealthy  int32
	ServiceRegistry resource.Ref // Cloud Map service ARN
	TaskFamily      string
	// SecretVersion is the secret's desired AWSCURRENT version id: when the
	// version the service was last deployed with differs, the service needs
	// a new deployment so tasks read the new key.
	SecretVersion string
	// DeploymentTimeoutMinutes bounds the wait for the ECS deployment.
	DeploymentTimeoutMinutes int
	// WorkerPrefix is the Prefect worker-name prefix of the desired task
	// definition (docs/ARCHITECTURE.md worker identity contract): the
	// deployment's outcome carries it to the health gate.
	WorkerPrefix string
	// Gated: the health gate's verdict is part of what the service
	// converges to (issue 11 item 2b). The revision that last passed the
	// gate is recorded on the service (TagGatePassed, by RecordGatePassed);
	// a running revision that has not passed it (an apply was stopped
	// while the gate waited, or right after the ECS deployment) is a change
	// of health_gate.passed_revision, which the apply makes by gating it.
	Gated bool
}

// ServiceModel is what a plan compares of the service.
type ServiceModel struct {
	// A DRAINING service is being deleted (an interrupted destroy): it
	// cannot be updated, so an apply replaces it (Delete waits until it is
	// INACTIVE and its tasks have stopped) and a destroy finishes it.
	Status         string `attr:"status,forcenew"`
	LaunchType     string `attr:"launch_type,forcenew"`
	Platform       string `attr:"platform_version"`
	TaskDefinition string `attr:"task_definition"`
	// A service cannot leave subnets, security groups or a Cloud Map
	// service that are being replaced: their deletion waits for its tasks'
	// ENIs and registrations, and their successors do not exist yet. So
	// placement that refers to a resource the plan replaces (its id is not
	// known yet) replaces the service too; a known new value (existing-mode
	// subnet ids edited in the file) is an in-place update with a new
	// deployment.
	Subnets        resource.Set `attr:"network.subnets,replace_if_unknown"`
	SecurityGroups resource.Set `attr:"network.security_groups,replace_if_unknown"`
	AssignPublicIP string       `attr:"network.assign_public_ip"`
	MaxPercent     int32        `attr:"deployment.maximum_percent"`
	MinHealthy     int32        `attr:"deployment.minimum_healthy_percent"`
	// docs/research/aws-ecs.md §4.1: circuit breaker with rollback.
	CircuitBreaker string `attr:"deployment.circuit_breaker"`
	Registry       string `attr:"service_registry,replace_if_unknown"`
	PropagateTags  string `attr:"propagate_tags"`
	ManagedTags    bool   `attr:"enable_ecs_managed_tags"`
	// DesiredCount is not compared with autoscaling.
	DesiredCount *int `attr:"desired_count"`
	// SecretVersion is the version the tasks were deployed with, when the
	// run manages the secret.
	SecretVersion *string `attr:"force_new_deployment,sensitive"`
	// GatePassed is the task definition that last passed the health gate
	// (desired: the one the service runs), when the spec is Gated.
	GatePassed *string `attr:"health_gate.passed_revision,derived"`
}

// Normalize fills the defaults ECS leaves empty, as ecspresso does
// (docs/research/aws-ecs.md §1.1).
func (m *ServiceModel) Normalize() {
	if m.LaunchType == "" {
		m.LaunchType = "(capacity provider strategy)"
	}
	if m.Platform == "" {
		m.Platform = "LATEST"
	}
	if m.PropagateTags == "" {
		m.PropagateTags = string(ecstypes.PropagateTagsNone)
	}
}

// TagGatePassed records on the service the task definition ARN that last
// passed the health gate ("none" after a gate that failed with nothing to
// roll back to).
const TagGatePassed = "deploybot:gate-passed"

// notGated is how a plan shows a service no gate has passed.
const notGated = "(none)"

// RecordGatePassed records that the revision taskDefinition passed the
// health gate, on the service serviceARN: the next plan then shows no
// change for it.
func RecordGatePassed(ctx context.Context, api awsapi.ECSAPI, serviceARN, taskDefinition string) error {
	_, err := api.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(serviceARN),
		Tags: []ecstypes.Tag{{Key: aws.String(TagGatePassed), Value: aws.String(taskDefinition)}}})
	if err != nil {
		return fmt.Errorf("record the health gate's verdict on %s: %w", serviceARN, err)
	}
	return nil
}

// TagSecretVersion records on the service the secret version its tasks were
// deployed with: when the secret's desired version differs, the service
// needs a new deployment to pick up the key (a force_new_deployment change).
const TagSecretVersion = "deploybot:secret-version"

// Service is the worker's Fargate service kind. Create and Update wait for
// the ECS service deployment they caused to finish (docs/research/aws-ecs.md
// §4.3), not for "services stable", and hand back its outcome (*Deployment).
var Service = resource.Define[ServiceSpec, ServiceModel, *ecstypes.Service, awsapi.ECSAPI](KindService, serviceKind{}, connect)

type serviceKind struct{}

type (
	service      = resource.Typed[ServiceSpec]
	foundService = resource.Found[ServiceModel, *ecstypes.Service]
)

// Budgets (before the Ctx budget scaling), docs/research/aws-ecs.md §5:
// CreateService/UpdateService retry for propagationTimeout(2m)+2m; the
// delete timeout is the provider's 20m; then INACTIVE and task drain.
const (
	serviceCreateRetryBudget = 4 * time.Minute
	serviceDeleteBudget      = 20 * time.Minute
	serviceInactiveBudget    = 10 * time.Minute
	taskDrainBudget          = 10 * time.Minute
	drainPollInterval        = 10 * time.Second
)

// deploymentPollInterval is how often the service's deployment is looked
// at while ECS rolls it out (issue 10 item 5: the wait adds at most a few
// seconds after ECS finishes). One look is ListServiceDeployments and
// DescribeServiceDeployments (ecsdeploy.Watcher.Look): 0.67 requests a
// second. ECS throttles each account and Region with token buckets per
// group of actions; the page's own example, cluster reads such as
// DescribeClusters, has a bucket of 50 and a refill of 20 a second
// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html),
// 30 times this wait's rate, and the SDK's standard retryer absorbs a
// throttled look. Progress is said only when the status changes
// (ecsdeploy.WaitOptions.Progress), so the shorter interval adds no log
// lines. (It was 15 s, 30 s with CI=true, after ecspresso's and Copilot's
// cadences, docs/research/aws-ecs.md §1.3, §2.3: up to 15 or 30 s after ECS
// was done.)
const deploymentPollInterval = 3 * time.Second

func publicIP(on bool) string {
	if on {
		return string(ecstypes.AssignPublicIpEnabled)
	}
	return string(ecstypes.AssignPublicIpDisabled)
}

func circuitBreaker(enable, rollback bool) string {
	return fmt.Sprintf("enable=%t,rollback=%t", enable, rollback)
}

func (serviceKind) Desired(r *service, refs resource.Refs) ServiceModel {
	s := r.Spec
	m := ServiceModel{
		Status: "ACTIVE", LaunchType: string(ecstypes.LaunchTypeFargate), Platform: "LATEST",
		TaskDefinition: s.TaskDefinition.Resolve(refs),
		Subnets:        resource.ResolveAll(refs, s.Subnets), SecurityGroups: resource.ResolveAll(refs, s.SecurityGroups),
		AssignPublicIP: publicIP(s.AssignPublicIP),
		MaxPercent:     s.MaximumPercent, MinHealthy: s.MinimumHealthy, CircuitBreaker: circuitBreaker(true, true),
		Registry:      s.ServiceRegistry.Resolve(refs),
		PropagateTags: string(ecstypes.PropagateTagsService), ManagedTags: true,
	}
	if !s.Autoscaling {
		m.DesiredCount = &s.DesiredCount
	}
	if s.SecretVersion != "" {
		m.SecretVersion = aws.String(s.SecretVersion)
	}
	if s.Gated {
		m.GatePassed = aws.String(m.TaskDefinition)
	}
	return m
}

// primaryDeployment returns the PRIMARY deployment's task definition and id.
func primaryDeployment(s *ecstypes.Service) (taskDefinition, id string) {
	for _, d := range s.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			return aws.ToString(d.TaskDefinition), aws.ToString(d.Id)
		}
	}
	return aws.ToString(s.TaskDefinition), ""
}

func (serviceKind) Read(ctx context.Context, x *x, r *service) (*foundService, error) {
	s := r.Spec
	svc, err := describeService(ctx, x, s.Cluster, s.Name)
	if err != nil || svc == nil {
		return nil, err
	}
	tags := awstags.ECSMap(svc.Tags)
	m := ServiceModel{
		Status: aws.ToString(svc.Status), LaunchType: string(svc.LaunchType), Platform: aws.ToString(svc.PlatformVersion),
		TaskDefinition: aws.ToString(svc.TaskDefinition), PropagateTags: string(svc.PropagateTags), ManagedTags: svc.EnableECSManagedTags,
		AssignPublicIP: string(ecstypes.AssignPublicIpDisabled),
	}
	if !s.Autoscaling {
		n := int(svc.DesiredCount)
		m.DesiredCount = &n
	}
	if s.SecretVersion != "" {
		m.SecretVersion = aws.String(tags[TagSecretVersion])
	}
	if s.Gated {
		passed := tags[TagGatePassed]
		if passed == "" {
			passed = notGated
		}
		m.GatePassed = aws.String(passed)
	}
	delete(tags, TagGatePassed)
	// Server defaults, filled as ecspresso does (docs/research/aws-ecs.md §1.1).
	m.MaxPercent, m.MinHealthy = 200, 100
	cbEnable, cbRollback := false, false
	if dc := svc.DeploymentConfiguration; dc != nil {
		if dc.MaximumPercent != nil {
			m.MaxPercent = *dc.MaximumPercent
		}
		if dc.MinimumHealthyPercent != nil {
			m.MinHealthy = *dc.MinimumHealthyPercent
		}
		if cb := dc.DeploymentCircuitBreaker; cb != nil {
			cbEnable, cbRollback = cb.Enable, cb.Rollback
		}
	}
	m.CircuitBreaker = circuitBreaker(cbEnable, cbRollback)
	if nc := svc.NetworkConfiguration; nc != nil && nc.AwsvpcConfiguration != nil {
		m.Subnets, m.SecurityGroups = nc.AwsvpcConfiguration.Subnets, nc.AwsvpcConfiguration.SecurityGroups
		if nc.AwsvpcConfiguration.AssignPublicIp != "" {
			m.AssignPublicIP = string(nc.AwsvpcConfiguration.AssignPublicIp)
		}
	}
	var registries []string
	for _, sr := range svc.ServiceRegistries {
		registries = append(registries, aws.ToString(sr.RegistryArn))
	}
	sort.Strings(registries)
	m.Registry = strings.Join(registries, ",")
	delete(tags, TagSecretVersion)
	arn := aws.ToString(svc.ServiceArn)
	return &foundService{ID: arn, ARN: arn, Tags: tags, Model: m, Detail: svc,
		Outputs: resource.Outputs{"arn": arn, "name": s.Name, "cluster": s.Cluster, "task_definition": aws.ToString(svc.TaskDefinition)}}, nil
}

// serviceInputs are the service's fields with its dependencies' outputs
// resolved.
type serviceInputs struct {
	spec            *ServiceSpec
	taskDefinition  string
	subnets, groups []string
	registry        string
}

func (s serviceInputs) network() *ecstypes.NetworkConfiguration {
	return &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
		Subnets:        s.subnets,
		SecurityGroups: s.groups,
		AssignPublicIp: ecstypes.AssignPublicIp(publicIP(s.spec.AssignPublicIP)),
	}}
}

func (s serviceInputs) deployment() *ecstypes.DeploymentConfiguration {
	return &ecstypes.DeploymentConfiguration{
		MaximumPercent:           aws.Int32(s.spec.MaximumPercent),
		MinimumHealthyPercent:    aws.Int32(s.spec.MinimumHealthy),
		DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true},
	}
}

func resolveService(s *ServiceSpec, refs resource.Refs) (serviceInputs, error) {
	in := serviceInputs{spec: s, taskDefinition: s.TaskDefinition.Resolve(refs),
		subnets: resource.ResolveAll(refs, s.Subnets), groups: resource.ResolveAll(refs, s.SecurityGroups),
		registry: s.ServiceRegistry.Resolve(refs)}
	for _, v := range append(append([]string{in.taskDefinition, in.registry}, in.subnets...), in.groups...) {
		if v == plan.Unknown {
			return in, fmt.Errorf("ECS service %s: a dependency has no id yet", s.Name)
		}
	}
	return in, nil
}

// serviceDraining: a service of that name is still being deleted; it goes
// INACTIVE once its tasks have stopped (docs/research/aws-ecs.md §4.3).
var serviceDraining = awserr.CodeWithMessage("InvalidParameterException", "still Draining")

// roleNotReady: ECS cannot use a role IAM has not propagated yet
// (docs/research/aws-ecs.md §5 ecs/service.go retryServiceCreate).
var roleNotReady = awserr.CodeWithMessage("InvalidParameterException",
	"verify that the ECS service role being passed has the proper permissions",
	"does not have an associated load balancer")

// serviceRetryable: docs/research/aws-ecs.md §5 (ecs/service.go retryServiceCreate).
var serviceRetryable = awserr.AnyOf(
	awserr.CodeWithMessage("ClusterNotFoundException"),
	roleNotReady,
	awserr.CodeWithMessage("InvalidParameterException", "Unable to assume the service linked role"),
)

func (serviceKind) Create(ctx context.Context, x *x, r *service, refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	in, err := resolveService(s, refs)
	if err != nil {
		return nil, err
	}
	tags := maps.Clone(r.Tags)
	if s.SecretVersion != "" {
		tags[TagSecretVersion] = s.SecretVersion
	}
	// ClientToken makes the SDK's retries of this create idempotent (§6
	// [inference]); it is random per call so that a create after a destroy
	// is never answered with the old service.
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	opTime := x.Clock.Now()
	created, err := retry.When(ctx, x.Waits(r.Address, serviceCreateRetryBudget, resource.RetryEvery), "CreateService",
		awserr.AnyOf(serviceRetryable, serviceDraining), func() (*ecstypes.Service, error) {
			out, err := x.API.CreateService(ctx, &awsecs.CreateServiceInput{
				Cluster:                 aws.String(s.Cluster),
				ServiceName:             aws.String(s.Name),
				TaskDefinition:          aws.String(in.taskDefinition),
				DesiredCount:            aws.Int32(int32(s.DesiredCount)),
				LaunchType:              ecstypes.LaunchTypeFargate,
				PlatformVersion:         aws.String("LATEST"),
				NetworkConfiguration:    in.network(),
				DeploymentConfiguration: in.deployment(),
				ServiceRegistries:       []ecstypes.ServiceRegistry{{RegistryArn: aws.String(in.registry)}},
				PropagateTags:           ecstypes.PropagateTagsService,
				EnableECSManagedTags:    true,
				ClientToken:             aws.String(hex.EncodeToString(token)),
				Tags:                    awstags.ECSList(tags),
			})
			if err != nil {
				return nil, err
			}
			return out.Service, nil
		})
	if err != nil {
		return nil, fmt.Errorf("CreateService %s/%s: %w", s.Cluster, s.Name, err)
	}
	arn := aws.ToString(created.ServiceArn)
	x.Say(r.Address, "created "+arn+"; waiting for its deployment")
	primary := ecsdeploy.PrimaryDeploymentID(created.Deployments)
	// A first deployment whose every task ECS failed to launch because it
	// could not assume a role is IAM propagating new roles (deploybot does
	// not sleep after creating them, internal/kinds/iam): deploy again,
	// within IAM's budget from the create.
	return waitDeployment(ctx, x, r, arn, in.taskDefinition, primary, opTime, "", func(f *ecsdeploy.Failure) (string, time.Time, bool) {
		if x.Clock.Now().Sub(opTime) >= x.Wait(iamPropagationBudget) || !roleNotAssumedYet(f) {
			return "", time.Time{}, false
		}
		again := x.Clock.Now()
		out, err := x.API.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name), ForceNewDeployment: true})
		if err != nil {
			return "", time.Time{}, false
		}
		x.Say(r.Address, "ECS could not assume the task's roles yet (IAM is still propagating them); deploying again")
		_, id := primaryDeployment(out.Service)
		return id, again, true
	})
}

// iamPropagationBudget is how long after the service's create a role ECS
// cannot assume is taken for IAM propagating it: the Terraform provider's
// IAM propagation budget (docs/research/aws-ecs.md §5, "We have settled on
// 2 minutes").
const iamPropagationBudget = 2 * time.Minute

// roleNotAssumedYet says whether every task the failed deployment stopped
// was one ECS could not launch because it could not assume its roles:
// "ECS was unable to assume the role '…' that was provided for this task"
// (docs/research/aws-ecs.md §5.2), the stopped reason of a task launched
// before IAM has propagated a new role
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
func roleNotAssumedYet(f *ecsdeploy.Failure) bool {
	if f == nil || len(f.StoppedTasks) == 0 {
		return false
	}
	for _, t := range f.StoppedTasks {
		if !strings.Contains(t.StoppedReason, "ECS was unable to assume the role") {
			return false
		}
	}
	return true
}

func (serviceKind) Update(ctx context.Context, x *x, r *service, d *resource.Delta[ServiceModel, *ecstypes.Service], refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	svc := d.Found.Detail
	if d.OnlyTags() || onlyGate(d) {
		if err := awstags.ECS(x.API).Apply(ctx, d.Found.ID, d.Tags); err != nil {
			return nil, err
		}
		if onlyGate(d) {
			return regate(ctx, x, r, d)
		}
		return d.Found.Outputs, nil
	}
	in, err := resolveService(s, refs)
	if err != nil {
		return nil, err
	}
	// Only what changed goes into UpdateService: an unchanged field sent
	// again may start a deployment nobody asked for.
	want, have := d.Desired, d.Live
	update := &awsecs.UpdateServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name),
		ForceNewDeployment: !resource.Equal(want.SecretVersion, have.SecretVersion)}
	if want.TaskDefinition != have.TaskDefinition {
		update.TaskDefinition = aws.String(in.taskDefinition)
	}
	if want.Platform != have.Platform {
		update.PlatformVersion = aws.String("LATEST")
	}
	if !resource.Equal(want.Subnets, have.Subnets) || !resource.Equal(want.SecurityGroups, have.SecurityGroups) || want.AssignPublicIP != have.AssignPublicIP {
		update.NetworkConfiguration = in.network()
	}
	if want.MaxPercent != have.MaxPercent || want.MinHealthy != have.MinHealthy || want.CircuitBreaker != have.CircuitBreaker {
		update.DeploymentConfiguration = in.deployment()
	}
	if want.Registry != have.Registry {
		update.ServiceRegistries = []ecstypes.ServiceRegistry{{RegistryArn: aws.String(in.registry)}}
	}
	if want.PropagateTags != have.PropagateTags {
		update.PropagateTags = ecstypes.PropagateTagsService
	}
	if want.ManagedTags != have.ManagedTags {
		update.EnableECSManagedTags = aws.Bool(true)
	}
	if !resource.Equal(want.DesiredCount, have.DesiredCount) && !s.Autoscaling {
		update.DesiredCount = aws.Int32(int32(s.DesiredCount))
	}
	previous, previousID := primaryDeployment(svc)
	opTime := x.Clock.Now()
	updated, err := retry.When(ctx, x.Waits(r.Address, serviceCreateRetryBudget, resource.RetryEvery), "UpdateService", roleNotReady,
		func() (*ecstypes.Service, error) {
			out, err := x.API.UpdateService(ctx, update)
			if err != nil {
				return nil, err
			}
			return out.Service, nil
		})
	if err != nil {
		return nil, fmt.Errorf("UpdateService %s/%s: %w", s.Cluster, s.Name, err)
	}
	// The secret version the tasks now run with is recorded with the
	// other tags (or the one recorded before, kept, without the key).
	liveTags := awstags.ECSMap(svc.Tags)
	desiredTags := maps.Clone(r.Tags)
	if s.SecretVersion != "" {
		desiredTags[TagSecretVersion] = s.SecretVersion
	} else if v, ok := liveTags[TagSecretVersion]; ok {
		desiredTags[TagSecretVersion] = v
	}
	// The last verdict stays until the gate gives the next one.
	if v, ok := liveTags[TagGatePassed]; ok {
		desiredTags[TagGatePassed] = v
	}
	if err := awstags.ECS(x.API).Apply(ctx, d.Found.ID, resource.Tags(desiredTags, liveTags)); err != nil {
		return nil, err
	}
	// Not every change starts a deployment (desired count, deployment
	// configuration and tag propagation do not): wait only when the PRIMARY
	// deployment is a new one (the GitHub Action's check, docs/research/aws-ecs.md §3).
	if updated != nil {
		if _, id := primaryDeployment(updated); id == previousID {
			out := maps.Clone(d.Found.Outputs)
			out["task_definition"] = aws.ToString(updated.TaskDefinition)
			return out, nil
		}
	}
	x.Say(r.Address, "updated; waiting for the deployment")
	taskDefinition, primaryID := previous, ""
	if updated != nil {
		taskDefinition, primaryID = primaryDeployment(updated)
	}
	return waitDeployment(ctx, x, r, d.Found.ID, taskDefinition, primaryID, opTime, previous, nil)
}

// onlyGate: the service is as the file wants it, but its running revision
// has not passed the health gate.
func onlyGate(d *resource.Delta[ServiceModel, *ecstypes.Service]) bool {
	want, have := d.Desired, d.Live
	if resource.Equal(want.GatePassed, have.GatePassed) {
		return false
	}
	want.GatePassed, have.GatePassed = nil, nil
	return resource.Equal(want, have)
}

// regate hands the running revision's deployment back for the health gate
// (issue 11 item 2b): an earlier apply changed the service and stopped
// before the gate's verdict, so the revision stands unverified. It waits
// for that deployment first, if ECS is still rolling it out, and does not
// touch the service: the gate judges, the deploy layer records the verdict.
func regate(ctx context.Context, x *x, r *service, d *resource.Delta[ServiceModel, *ecstypes.Service]) (resource.Outputs, error) {
	svc := d.Found.Detail
	td, id := primaryDeployment(svc)
	since := x.Clock.Now()
	for _, dep := range svc.Deployments {
		if aws.ToString(dep.Status) == "PRIMARY" && dep.CreatedAt != nil {
			since = *dep.CreatedAt
		}
	}
	previous := aws.ToString(d.Live.GatePassed)
	if previous == notGated {
		previous = ""
	}
	x.Say(r.Address, fmt.Sprintf("the running revision %s has not passed the health gate (an earlier apply stopped before its verdict); gating it", ecsdeploy.ShortTaskDefinition(td)))
	return waitDeployment(ctx, x, r, d.Found.ID, td, id, since, previous, nil)
}

// ARNTypes and Adopt: a service tagged for the environment that its stack
// does not have (arn:…:service/CLUSTER/NAME, ECS's long ARN format) is read
// by its cluster and name, and its Delete scales it to 0 and waits for its
// tasks like the stack's own. An ARN of the old short format names no
// cluster, so it cannot be read: that is an error, not a resource gone.
func (k serviceKind) ARNTypes() []string { return []string{"ecs:service"} }

func (k serviceKind) Adopt(ctx context.Context, x *x, arn string) (*service, *foundService, error) {
	parts := strings.Split(inventory.Resource(arn), "/")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("ECS service %s: its ARN does not name its cluster (the old short ARN format), so deploybot cannot read it", arn)
	}
	svc := &service{Name: parts[2], Spec: &ServiceSpec{Cluster: parts[1], Name: parts[2]}}
	f, err := k.Read(ctx, x, svc)
	if err != nil || f == nil {
		return nil, nil, err
	}
	svc.Spec.TaskFamily = familyOf(taskDefinitionOf(f.Detail))
	return svc, f, nil
}

// Delete follows docs/research/aws-ecs.md §5.3 step 2: scale to 0, delete
// (retrying while deployments are active), wait INACTIVE (MISSING counts),
// then wait until none of the worker's tasks is still running, so that
// their ENIs can go before the network is torn down (§5.1).
func (serviceKind) Delete(ctx context.Context, x *x, r *service, _ *foundService) error {
	s := r.Spec
	svc, err := describeService(ctx, x, s.Cluster, s.Name)
	if err != nil {
		return err
	}
	if svc != nil {
		if aws.ToString(svc.Status) == "ACTIVE" && svc.DesiredCount > 0 {
			_, err := x.API.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name), DesiredCount: aws.Int32(0)})
			if err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("UpdateService %s/%s desiredCount 0: %w", s.Cluster, s.Name, err)
			}
		}
		err = retry.Do(ctx, x.Waits(r.Address, serviceDeleteBudget, resource.RetryEvery), "DeleteService", awserr.IsDependency, func() error {
			_, err := x.API.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name)})
			return err
		})
		if err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteService %s/%s: %w", s.Cluster, s.Name, err)
		}
		x.Say(r.Address, "deleted; waiting for INACTIVE")
		// A custom ServicesInactive waiter: MISSING is success too (§4.3).
		_, err = retry.Until(ctx, x.Waits(r.Address, serviceInactiveBudget, 5*time.Second), "service "+s.Name+" INACTIVE", func() (struct{}, bool, error) {
			svc, err := describeService(ctx, x, s.Cluster, s.Name)
			return struct{}{}, svc == nil, err
		})
		if err != nil {
			return err
		}
	}
	x.Say(r.Address, "waiting for the worker's tasks to stop")
	_, err = retry.Until(ctx, x.Waits(r.Address, taskDrainBudget, drainPollInterval), "tasks of "+s.TaskFamily+" to stop", func() (struct{}, bool, error) {
		n, err := runningTasks(ctx, x, s.Cluster, s.TaskFamily)
		return struct{}{}, n == 0, err
	})
	return err
}

// runningTasks counts the family's tasks that have not reached STOPPED:
// tasks of a deleted service have desiredStatus STOPPED while they still
// run, so both desired statuses are listed.
func runningTasks(ctx context.Context, x *x, cluster, family string) (int, error) {
	var arns []string
	for _, st := range []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped} {
		p := awsecs.NewListTasksPaginator(x.API, &awsecs.ListTasksInput{Cluster: aws.String(cluster), Family: aws.String(family), DesiredStatus: st})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if awserr.IsNotFound(err) {
				return 0, nil
			}
			if err != nil {
				return 0, fmt.Errorf("ListTasks %s %s: %w", cluster, family, err)
			}
			arns = append(arns, page.TaskArns...)
		}
	}
	n := 0
	for start := 0; start < len(arns); start += 100 { // DescribeTasks takes at most 100
		out, err := x.API.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[start:min(start+100, len(arns))]})
		if err != nil {
			return 0, fmt.Errorf("DescribeTasks %s: %w", cluster, err)
		}
		for _, t := range out.Tasks {
			if aws.ToString(t.LastStatus) != "STOPPED" {
				n++
			}
		}
	}
	return n, nil
}
