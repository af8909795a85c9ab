package resources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// ServiceKind is the worker's Fargate service. Create and Update wait for
// the ECS service deployment they caused to finish (docs/research/aws-ecs.md
// §4.3), not for "services stable".
type ServiceKind struct{}

// TagSecretVersion records on the service the secret version its tasks were
// deployed with: when the secret's desired version differs, the service
// needs a new deployment to pick up the key (a force_new_deployment change).
const TagSecretVersion = "deploybot:secret-version"

// Budgets (before Ctx.Budget scaling), docs/research/aws-ecs.md §5:
// CreateService/UpdateService retry for propagationTimeout(2m)+2m; the delete
// timeout is the provider's 20m; then INACTIVE and task drain.
const (
	serviceCreateRetryBudget = 4 * time.Minute
	serviceDeleteBudget      = 20 * time.Minute
	serviceInactiveBudget    = 10 * time.Minute
	taskDrainBudget          = 10 * time.Minute
	drainPollInterval        = 10 * time.Second
)

// deploymentPollInterval is 15 s, 30 s when CI=true (docs/research/aws-ecs.md
// §1.3 waiterMaxDelay 15s; §2.3 Copilot renders every 30 s in CI).
func deploymentPollInterval() time.Duration {
	if os.Getenv("CI") == "true" {
		return 30 * time.Second
	}
	return 15 * time.Second
}

func publicIP(on bool) string {
	if on {
		return string(ecstypes.AssignPublicIpEnabled)
	}
	return string(ecstypes.AssignPublicIpDisabled)
}

func resolveAll(refs resource.Refs, rs []stack.Ref) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Resolve(refs))
	}
	return out
}

func circuitBreaker(enable, rollback bool) string {
	return fmt.Sprintf("enable=%t,rollback=%t", enable, rollback)
}

func (ServiceKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := mustSpec[stack.ServiceSpec](r)
	a := resource.Attrs{
		"status":                             {Value: "ACTIVE", ForceNew: true},
		"launch_type":                        {Value: string(ecstypes.LaunchTypeFargate), ForceNew: true},
		"platform_version":                   {Value: "LATEST"},
		"task_definition":                    {Value: s.TaskDefinition.Resolve(refs)},
		"network.subnets":                    {Value: jsonList(resolveAll(refs, s.Subnets))},
		"network.security_groups":            {Value: jsonList(resolveAll(refs, s.SecurityGroups))},
		"network.assign_public_ip":           {Value: publicIP(s.AssignPublicIP)},
		"deployment.maximum_percent":         {Value: i32(s.MaximumPercent)},
		"deployment.minimum_healthy_percent": {Value: i32(s.MinimumHealthy)},
		// docs/research/aws-ecs.md §4.1: circuit breaker with rollback.
		"deployment.circuit_breaker": {Value: circuitBreaker(true, true)},
		"service_registry":           {Value: s.ServiceRegistry.Resolve(refs)},
		"propagate_tags":             {Value: string(ecstypes.PropagateTagsService)},
		"enable_ecs_managed_tags":    {Value: "true"},
	}
	if !s.Autoscaling {
		a["desired_count"] = resource.Attr{Value: itoa(s.DesiredCount)}
	}
	if s.SecretVersion != "" {
		a["force_new_deployment"] = resource.Attr{Value: s.SecretVersion, Sensitive: true}
	}
	// A service cannot leave subnets, security groups or a Cloud Map service
	// that are being replaced: their deletion waits for its tasks' ENIs and
	// registrations, and their successors do not exist yet. So placement
	// that refers to a resource the plan replaces (its id is not known yet)
	// replaces the service too; a known new value (existing-mode subnet ids
	// edited in the file) is an in-place update with a new deployment.
	for _, path := range []string{"network.subnets", "network.security_groups", "service_registry"} {
		if v := a[path]; strings.Contains(v.Value, plan.Unknown) {
			v.ForceNew = true
			a[path] = v
		}
	}
	addTags(a, r.Tags)
	return a
}

// describeService returns the service unless it is missing or INACTIVE
// (deleted services linger as INACTIVE, then MISSING: §4.3).
func describeService(ctx context.Context, x *resource.Ctx, cluster, name string) (*ecstypes.Service, error) {
	out, err := x.AWS.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster:  aws.String(cluster),
		Services: []string{name},
		Include:  []ecstypes.ServiceField{ecstypes.ServiceFieldTags},
	})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeServices %s/%s: %w", cluster, name, err)
	}
	for i := range out.Services {
		s := &out.Services[i]
		if aws.ToString(s.ServiceName) == name && aws.ToString(s.Status) != "INACTIVE" {
			return s, nil
		}
	}
	return nil, nil
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

func (ServiceKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := specOf[stack.ServiceSpec](r)
	if err != nil {
		return nil, err
	}
	svc, err := describeService(ctx, x, s.Cluster, s.Name)
	if err != nil || svc == nil {
		return nil, err
	}
	tags := ecsTags(svc.Tags)
	a := resource.Attrs{
		// A DRAINING service is being deleted (an interrupted destroy): it
		// cannot be updated, so an apply replaces it (Delete waits until it
		// is INACTIVE and its tasks have stopped) and a destroy finishes it.
		"status":                  {Value: aws.ToString(svc.Status), ForceNew: true},
		"launch_type":             {Value: string(svc.LaunchType), ForceNew: true},
		"platform_version":        {Value: aws.ToString(svc.PlatformVersion)},
		"task_definition":         {Value: aws.ToString(svc.TaskDefinition)},
		"service_registry":        {Value: ""},
		"propagate_tags":          {Value: string(svc.PropagateTags)},
		"enable_ecs_managed_tags": {Value: btoa(svc.EnableECSManagedTags)},
	}
	if svc.LaunchType == "" {
		a["launch_type"] = resource.Attr{Value: "(capacity provider strategy)", ForceNew: true}
	}
	if a["platform_version"].Value == "" {
		a["platform_version"] = resource.Attr{Value: "LATEST"}
	}
	if a["propagate_tags"].Value == "" {
		a["propagate_tags"] = resource.Attr{Value: string(ecstypes.PropagateTagsNone)}
	}
	if !s.Autoscaling {
		a["desired_count"] = resource.Attr{Value: itoa(int(svc.DesiredCount))}
	}
	if s.SecretVersion != "" {
		a["force_new_deployment"] = resource.Attr{Value: tags[TagSecretVersion], Sensitive: true}
	}
	// Server defaults, filled as ecspresso does (docs/research/aws-ecs.md §1.1).
	maxPct, minPct, cbEnable, cbRollback := int32(200), int32(100), false, false
	if dc := svc.DeploymentConfiguration; dc != nil {
		if dc.MaximumPercent != nil {
			maxPct = *dc.MaximumPercent
		}
		if dc.MinimumHealthyPercent != nil {
			minPct = *dc.MinimumHealthyPercent
		}
		if cb := dc.DeploymentCircuitBreaker; cb != nil {
			cbEnable, cbRollback = cb.Enable, cb.Rollback
		}
	}
	a["deployment.maximum_percent"] = resource.Attr{Value: i32(maxPct)}
	a["deployment.minimum_healthy_percent"] = resource.Attr{Value: i32(minPct)}
	a["deployment.circuit_breaker"] = resource.Attr{Value: circuitBreaker(cbEnable, cbRollback)}
	var subnets, groups []string
	assign := string(ecstypes.AssignPublicIpDisabled)
	if nc := svc.NetworkConfiguration; nc != nil && nc.AwsvpcConfiguration != nil {
		subnets, groups = nc.AwsvpcConfiguration.Subnets, nc.AwsvpcConfiguration.SecurityGroups
		if nc.AwsvpcConfiguration.AssignPublicIp != "" {
			assign = string(nc.AwsvpcConfiguration.AssignPublicIp)
		}
	}
	a["network.subnets"] = resource.Attr{Value: jsonList(subnets)}
	a["network.security_groups"] = resource.Attr{Value: jsonList(groups)}
	a["network.assign_public_ip"] = resource.Attr{Value: assign}
	var registries []string
	for _, sr := range svc.ServiceRegistries {
		registries = append(registries, aws.ToString(sr.RegistryArn))
	}
	sort.Strings(registries)
	a["service_registry"] = resource.Attr{Value: strings.Join(registries, ",")}
	delete(tags, TagSecretVersion)
	addTags(a, tags)
	arn := aws.ToString(svc.ServiceArn)
	return &resource.Live{ID: arn, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"arn": arn, "name": s.Name, "cluster": s.Cluster, "task_definition": aws.ToString(svc.TaskDefinition)},
		Raw:     svc}, nil
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

type serviceInputs struct {
	spec            *stack.ServiceSpec
	taskDefinition  string
	subnets, groups []string
	registry        string
}

func resolveService(r *resource.Resource, refs resource.Refs) (serviceInputs, error) {
	s, err := specOf[stack.ServiceSpec](r)
	if err != nil {
		return serviceInputs{}, err
	}
	in := serviceInputs{spec: s, taskDefinition: s.TaskDefinition.Resolve(refs),
		subnets: resolveAll(refs, s.Subnets), groups: resolveAll(refs, s.SecurityGroups),
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
var serviceDraining = codeWithMessage("InvalidParameterException", "still Draining")

// serviceRetryable: docs/research/aws-ecs.md §5 (ecs/service.go retryServiceCreate).
var serviceRetryable = anyOf(
	codeWithMessage("ClusterNotFoundException"),
	codeWithMessage("InvalidParameterException",
		"verify that the ECS service role being passed has the proper permissions",
		"does not have an associated load balancer",
		"Unable to assume the service linked role"),
)

func (k ServiceKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	in, err := resolveService(r, refs)
	if err != nil {
		return nil, err
	}
	s := in.spec
	tags := copyMap(r.Tags)
	if s.SecretVersion != "" {
		tags[TagSecretVersion] = s.SecretVersion
	}
	// ClientToken makes the SDK's retries of this create idempotent (§6
	// [inference]); it is random per call so that a create after a destroy
	// is never answered with the old service.
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	opTime := x.Clock.Now()
	var arn, primaryID string
	err = retry(ctx, x, r.Address, "CreateService", serviceCreateRetryBudget, anyOf(serviceRetryable, serviceDraining), func() error {
		out, err := x.AWS.ECS.CreateService(ctx, &ecs.CreateServiceInput{
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
			Tags:                    ecsTagList(tags),
		})
		if err == nil {
			arn, primaryID = aws.ToString(out.Service.ServiceArn), ecsdeploy.PrimaryDeploymentID(out.Service.Deployments)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("CreateService %s/%s: %w", s.Cluster, s.Name, err)
	}
	x.Say(r.Address, "created "+arn+"; waiting for its deployment")
	return waitDeployment(ctx, x, r, s, arn, in.taskDefinition, primaryID, opTime, "")
}

func (k ServiceKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	svc := live.Raw.(*ecstypes.Service)
	s, err := specOf[stack.ServiceSpec](r)
	if err != nil {
		return nil, err
	}
	liveTags := ecsTags(svc.Tags)
	if onlyTags(changed) {
		if err := updateECSTags(ctx, x, live.ID, r.Tags, liveTags, TagSecretVersion); err != nil {
			return nil, err
		}
		return live.Outputs, nil
	}
	in, err := resolveService(r, refs)
	if err != nil {
		return nil, err
	}
	// Only what changed goes into UpdateService: an unchanged field sent
	// again may start a deployment nobody asked for.
	ch := changedPaths(changed)
	changedPrefix := func(prefix string) bool {
		for p := range ch {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		}
		return false
	}
	update := &ecs.UpdateServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name),
		ForceNewDeployment: ch["force_new_deployment"]}
	if ch["task_definition"] {
		update.TaskDefinition = aws.String(in.taskDefinition)
	}
	if ch["platform_version"] {
		update.PlatformVersion = aws.String("LATEST")
	}
	if changedPrefix("network.") {
		update.NetworkConfiguration = in.network()
	}
	if changedPrefix("deployment.") {
		update.DeploymentConfiguration = in.deployment()
	}
	if ch["service_registry"] {
		update.ServiceRegistries = []ecstypes.ServiceRegistry{{RegistryArn: aws.String(in.registry)}}
	}
	if ch["propagate_tags"] {
		update.PropagateTags = ecstypes.PropagateTagsService
	}
	if ch["enable_ecs_managed_tags"] {
		update.EnableECSManagedTags = aws.Bool(true)
	}
	if ch["desired_count"] && !s.Autoscaling {
		update.DesiredCount = aws.Int32(int32(s.DesiredCount))
	}
	previous, previousID := primaryDeployment(svc)
	opTime := x.Clock.Now()
	var updated *ecstypes.Service
	err = retry(ctx, x, r.Address, "UpdateService", serviceCreateRetryBudget, codeWithMessage("InvalidParameterException",
		"verify that the ECS service role being passed has the proper permissions",
		"does not have an associated load balancer"), func() error {
		out, err := x.AWS.ECS.UpdateService(ctx, update)
		if err == nil {
			updated = out.Service
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("UpdateService %s/%s: %w", s.Cluster, s.Name, err)
	}
	desiredTags := copyMap(r.Tags)
	if s.SecretVersion != "" {
		desiredTags[TagSecretVersion] = s.SecretVersion
	} else if v, ok := liveTags[TagSecretVersion]; ok {
		desiredTags[TagSecretVersion] = v
	}
	if err := updateECSTags(ctx, x, live.ID, desiredTags, liveTags); err != nil {
		return nil, err
	}
	// Not every change starts a deployment (desired count, deployment
	// configuration and tag propagation do not): wait only when the PRIMARY
	// deployment is a new one (the GitHub Action's check, docs/research/aws-ecs.md §3).
	if updated != nil {
		if _, id := primaryDeployment(updated); id == previousID {
			out := copyMap(live.Outputs)
			out["task_definition"] = aws.ToString(updated.TaskDefinition)
			return out, nil
		}
	}
	x.Say(r.Address, "updated; waiting for the deployment")
	taskDefinition, primaryID := previous, ""
	if updated != nil {
		taskDefinition, primaryID = primaryDeployment(updated)
	}
	return waitDeployment(ctx, x, r, s, live.ID, taskDefinition, primaryID, opTime, previous)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Delete follows docs/research/aws-ecs.md §5.3 step 2: scale to 0, delete
// (retrying while deployments are active), wait INACTIVE (MISSING counts),
// then wait until none of the worker's tasks is still running, so that
// their ENIs can go before the network is torn down (§5.1).
func (ServiceKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	s, err := specOf[stack.ServiceSpec](r)
	if err != nil {
		return err
	}
	svc, err := describeService(ctx, x, s.Cluster, s.Name)
	if err != nil {
		return err
	}
	if svc != nil {
		if aws.ToString(svc.Status) == "ACTIVE" && svc.DesiredCount > 0 {
			_, err := x.AWS.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name), DesiredCount: aws.Int32(0)})
			if err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("UpdateService %s/%s desiredCount 0: %w", s.Cluster, s.Name, err)
			}
		}
		err = retry(ctx, x, r.Address, "DeleteService", serviceDeleteBudget, awserr.IsDependency, func() error {
			_, err := x.AWS.ECS.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(s.Cluster), Service: aws.String(s.Name)})
			return err
		})
		if err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteService %s/%s: %w", s.Cluster, s.Name, err)
		}
		x.Say(r.Address, "deleted; waiting for INACTIVE")
		// A custom ServicesInactive waiter: MISSING is success too (§4.3).
		err = poll(ctx, x, "service "+s.Name+" INACTIVE", 5*time.Second, serviceInactiveBudget, func() (bool, error) {
			svc, err := describeService(ctx, x, s.Cluster, s.Name)
			return svc == nil, err
		})
		if err != nil {
			return err
		}
	}
	x.Say(r.Address, "waiting for the worker's tasks to stop")
	return poll(ctx, x, "tasks of "+s.TaskFamily+" to stop", drainPollInterval, taskDrainBudget, func() (bool, error) {
		n, err := runningTasks(ctx, x, s.Cluster, s.TaskFamily)
		return n == 0, err
	})
}

// runningTasks counts the family's tasks that have not reached STOPPED:
// tasks of a deleted service have desiredStatus STOPPED while they still
// run, so both desired statuses are listed.
func runningTasks(ctx context.Context, x *resource.Ctx, cluster, family string) (int, error) {
	var arns []string
	for _, st := range []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped} {
		p := ecs.NewListTasksPaginator(x.AWS.ECS, &ecs.ListTasksInput{Cluster: aws.String(cluster), Family: aws.String(family), DesiredStatus: st})
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
		out, err := x.AWS.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[start:min(start+100, len(arns))]})
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
