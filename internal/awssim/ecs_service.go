package awssim

import (
	"context"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

type ecsSvc struct {
	Name, ARN, ClusterName string
	Status                 string // ACTIVE | DRAINING | INACTIVE
	TaskDef                string
	Desired                int32
	DepConf                ecstypes.DeploymentConfiguration
	Registries             []ecstypes.ServiceRegistry
	PlatformVersion        string
	PropagateTags          ecstypes.PropagateTags
	ManagedTags            bool
	ExecuteCommand         bool
	Tags                   []ecstypes.Tag
	ClientToken            string
	Created                time.Time
	CreatedBy              string
	InactiveAt             time.Time
	Events                 []ecstypes.ServiceEvent // oldest first
	Deployments            []*ecsDep               // PRIMARY first, then ACTIVE
	SDs                    []*svcDeployment        // oldest first
	CurrentSD              string
	lastCompleted          *ecsDep
	// gen distinguishes a service recreated under the same ARN from the
	// INACTIVE one it replaces (their tasks must not mix).
	gen int
}

type ecsDep struct {
	ID, Status, TD  string
	Net             *ecstypes.NetworkConfiguration
	PlatformVersion string
	Created         time.Time
	Updated         time.Time
	Rollout         ecstypes.DeploymentRolloutState
	RolloutReason   string
	Failed          int32
	SD              *svcDeployment
	rollback        bool
	revisionARN     string
	startAt         time.Time
	nextLaunchAt    time.Time
	steadySince     time.Time
}

type svcDeployment struct {
	ARN                                 string
	Status                              ecstypes.ServiceDeploymentStatus
	StatusReason                        string
	Created, Started, Finished, Stopped time.Time
	Updated                             time.Time
	CB                                  ecstypes.ServiceDeploymentCircuitBreaker
	Rollback                            *ecstypes.Rollback
	DepConf                             ecstypes.DeploymentConfiguration
	target                              *ecsDep
	sources                             []*ecsDep
}

func serviceNotFound() error {
	return &ecstypes.ServiceNotFoundException{Message: aws.String("Service not found.")}
}

func serviceNotActive() error {
	return &ecstypes.ServiceNotActiveException{Message: aws.String("Service was not ACTIVE.")}
}

func (w *World) serviceARN(cluster, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return w.ecsARN("service/" + cluster + "/" + ref)
}

// findService finds a service (any status) in an ACTIVE cluster.
func (w *World) findService(cluster *string, ref string) (*ecsClus, *ecsSvc, error) {
	c, err := w.activeCluster(cluster)
	if err != nil {
		return nil, nil, err
	}
	s, ok := w.ecs().Services[w.serviceARN(c.Name, ref)]
	if !ok || s.ClusterName != c.Name {
		return c, nil, serviceNotFound()
	}
	return c, s, nil
}

// activeService finds a service that UpdateService and DeleteService may
// act on: a DRAINING or INACTIVE one is ServiceNotActiveException.
func (w *World) activeService(cluster *string, ref string) (*ecsSvc, error) {
	_, s, err := w.findService(cluster, ref)
	if err == nil && s.Status != "ACTIVE" {
		err = serviceNotActive()
	}
	return s, err
}

// fillDeploymentDefaults sets what DescribeServices shows when the caller
// left them out (docs/research/aws-ecs.md §1.1: 200/100, circuit breaker off).
func fillDeploymentDefaults(dc *ecstypes.DeploymentConfiguration) {
	if dc.MaximumPercent == nil {
		dc.MaximumPercent = aws.Int32(200)
	}
	if dc.MinimumHealthyPercent == nil {
		dc.MinimumHealthyPercent = aws.Int32(100)
	}
	if dc.DeploymentCircuitBreaker == nil {
		dc.DeploymentCircuitBreaker = &ecstypes.DeploymentCircuitBreaker{}
	}
	if dc.Strategy == "" {
		dc.Strategy = ecstypes.DeploymentStrategyRolling
	}
}

// validateNetwork checks an awsvpc configuration against the EC2 state.
func (w *World) validateNetwork(nc *ecstypes.NetworkConfiguration) error {
	if nc == nil || nc.AwsvpcConfiguration == nil {
		return ecsInvalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	vpc := nc.AwsvpcConfiguration
	if len(vpc.Subnets) == 0 {
		return ecsInvalid("subnets can not be empty.")
	}
	if len(vpc.Subnets) > 16 {
		return ecsInvalid("subnets can have at most 16 items.")
	}
	ec2 := w.EC2State()
	vpcID := ""
	for _, id := range vpc.Subnets {
		sn, ok := ec2.Subnets[id]
		if !ok {
			return ecsInvalid("Error retrieving subnet information for [" + id + "]: The subnet ID '" + id + "' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)")
		}
		if vpcID != "" && sn.VPCID != vpcID {
			return ecsInvalid("The subnets must all belong to the same VPC.")
		}
		vpcID = sn.VPCID
	}
	for _, id := range vpc.SecurityGroups {
		sg, ok := ec2.SecurityGroups[id]
		if !ok {
			return ecsInvalid("Error retrieving security group information for [" + id + "]: The security group '" + id + "' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidGroup.NotFound)")
		}
		if sg.VPCID != vpcID {
			return ecsInvalid("Security group " + id + " does not belong to the VPC of the subnets.")
		}
	}
	return nil
}

// resolveServiceTD resolves the task definition a service is given.
func (w *World) resolveServiceTD(ref string) (*ecsTD, error) {
	td := w.findTD(ref)
	if td == nil || td.Def.Status == ecstypes.TaskDefinitionStatusDeleteInProgress {
		return nil, ecsInvalid("TaskDefinition not found.")
	}
	if td.Def.Status != ecstypes.TaskDefinitionStatusActive {
		return nil, ecsInvalid("TaskDefinition is inactive")
	}
	fargate := false
	for _, c := range td.Def.Compatibilities {
		fargate = fargate || c == ecstypes.CompatibilityFargate
	}
	if !fargate {
		return nil, ecsInvalid("Task definition does not support launch_type FARGATE.")
	}
	return td, nil
}

func (w *World) validateRegistries(regs []ecstypes.ServiceRegistry) error {
	for _, r := range regs {
		if w.sdServiceByARN(aws.ToString(r.RegistryArn)) == nil {
			return ecsInvalid("The service registry " + aws.ToString(r.RegistryArn) + " does not exist.")
		}
	}
	return nil
}

func (w *World) serviceView(s *ecsSvc, withTags bool) ecstypes.Service {
	out := ecstypes.Service{
		ServiceArn: aws.String(s.ARN), ServiceName: aws.String(s.Name), ClusterArn: aws.String(w.ecsARN("cluster/" + s.ClusterName)),
		Status: aws.String(s.Status), DesiredCount: s.Desired, LaunchType: ecstypes.LaunchTypeFargate,
		PlatformVersion: aws.String(s.PlatformVersion), PlatformFamily: aws.String("Linux"), TaskDefinition: aws.String(s.TaskDef),
		DeploymentConfiguration: ptr(clone(s.DepConf)), LoadBalancers: []ecstypes.LoadBalancer{},
		ServiceRegistries: clone(s.Registries), CreatedAt: aws.Time(s.Created), CreatedBy: aws.String(s.CreatedBy),
		PlacementConstraints: []ecstypes.PlacementConstraint{}, PlacementStrategy: []ecstypes.PlacementStrategy{},
		SchedulingStrategy: ecstypes.SchedulingStrategyReplica, DeploymentController: &ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerTypeEcs},
		EnableECSManagedTags: s.ManagedTags, PropagateTags: s.PropagateTags, EnableExecuteCommand: s.ExecuteCommand,
		AvailabilityZoneRebalancing: ecstypes.AvailabilityZoneRebalancingDisabled, Deployments: []ecstypes.Deployment{}, Events: []ecstypes.ServiceEvent{},
	}
	if out.ServiceRegistries == nil {
		out.ServiceRegistries = []ecstypes.ServiceRegistry{}
	}
	if s.CurrentSD != "" {
		out.CurrentServiceDeployment = aws.String(s.CurrentSD)
	}
	if len(s.Deployments) > 0 {
		out.NetworkConfiguration = clone(s.Deployments[0].Net)
	}
	if s.Status != "INACTIVE" {
		for _, d := range s.Deployments {
			dv := w.deploymentView(s, d)
			out.RunningCount += dv.RunningCount
			out.PendingCount += dv.PendingCount
			out.Deployments = append(out.Deployments, dv)
		}
	}
	for i := len(s.Events) - 1; i >= 0; i-- {
		out.Events = append(out.Events, s.Events[i])
	}
	if withTags {
		out.Tags = clone(s.Tags)
		if out.Tags == nil {
			out.Tags = []ecstypes.Tag{}
		}
	}
	return out
}

func (w *World) deploymentView(s *ecsSvc, d *ecsDep) ecstypes.Deployment {
	dv := ecstypes.Deployment{Id: aws.String(d.ID), Status: aws.String(d.Status), TaskDefinition: aws.String(d.TD), DesiredCount: 0,
		CreatedAt: aws.Time(d.Created), UpdatedAt: aws.Time(d.Updated), LaunchType: ecstypes.LaunchTypeFargate,
		PlatformVersion: aws.String("1.4.0"), PlatformFamily: aws.String("Linux"), NetworkConfiguration: clone(d.Net),
		RolloutState: d.Rollout, RolloutStateReason: aws.String(d.RolloutReason), FailedTasks: d.Failed}
	if d.Status == "PRIMARY" {
		dv.DesiredCount = s.Desired
	}
	for _, t := range w.ecs().Tasks {
		if t.Dep != d || t.DesiredStatus != "RUNNING" {
			continue
		}
		switch t.LastStatus {
		case "RUNNING":
			dv.RunningCount++
		case "PROVISIONING", "PENDING", "ACTIVATING":
			dv.PendingCount++
		}
	}
	return dv
}

func (w *World) revisionSummary(s *ecsSvc, d *ecsDep) ecstypes.ServiceRevisionSummary {
	dv := w.deploymentView(s, d)
	sum := ecstypes.ServiceRevisionSummary{Arn: aws.String(d.revisionARN), RunningTaskCount: dv.RunningCount, PendingTaskCount: dv.PendingCount}
	if d.Status == "PRIMARY" {
		sum.RequestedTaskCount = s.Desired
	}
	return sum
}

func (w *World) serviceDeploymentView(s *ecsSvc, sd *svcDeployment) ecstypes.ServiceDeployment {
	out := ecstypes.ServiceDeployment{ServiceDeploymentArn: aws.String(sd.ARN), ServiceArn: aws.String(s.ARN),
		ClusterArn: aws.String(w.ecsARN("cluster/" + s.ClusterName)), CreatedAt: aws.Time(sd.Created), UpdatedAt: aws.Time(sd.Updated),
		Status: sd.Status, DeploymentConfiguration: ptr(clone(sd.DepConf)), DeploymentCircuitBreaker: ptr(sd.CB),
		TargetServiceRevision: ptr(w.revisionSummary(s, sd.target)), SourceServiceRevisions: []ecstypes.ServiceRevisionSummary{},
		Rollback: clone(sd.Rollback)}
	if sd.StatusReason != "" {
		out.StatusReason = aws.String(sd.StatusReason)
	}
	for _, src := range sd.sources {
		out.SourceServiceRevisions = append(out.SourceServiceRevisions, w.revisionSummary(s, src))
	}
	for _, p := range []struct {
		t   time.Time
		dst **time.Time
	}{{sd.Started, &out.StartedAt}, {sd.Finished, &out.FinishedAt}, {sd.Stopped, &out.StoppedAt}} {
		if !p.t.IsZero() {
			*p.dst = aws.Time(p.t)
		}
	}
	return out
}

func init() {
	registerAdvancer(func(w *World) { w.ecsAdvance() })

	Handle(func(ctx context.Context, w *World, in *ecs.CreateServiceInput) (*ecs.CreateServiceOutput, error) {
		w.advance()
		// docs/research/aws-ecs.md §5 table: CreateService answers
		// ClusterNotFoundException until the cluster exists; ClientToken
		// makes retries idempotent.
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		name := aws.ToString(in.ServiceName)
		if !familyRe.MatchString(name) {
			return nil, ecsInvalid("Service name can only contain alphanumeric characters, hyphens, and underscores.")
		}
		arn := w.serviceARN(c.Name, name)
		st := w.ecs()
		gen := 1
		if old, ok := st.Services[arn]; ok {
			switch old.Status {
			case "ACTIVE":
				if tok := aws.ToString(in.ClientToken); tok != "" && tok == old.ClientToken {
					return &ecs.CreateServiceOutput{Service: ptr(w.serviceView(old, false))}, nil
				}
				return nil, ecsInvalid("Creation of service was not idempotent.")
			case "DRAINING":
				return nil, ecsInvalid("Unable to Start a service that is still Draining.")
			}
			gen = old.gen + 1
		}
		if in.LaunchType != "" && in.LaunchType != ecstypes.LaunchTypeFargate {
			return nil, ecsInvalid("The simulated account runs FARGATE services only.")
		}
		if len(in.LoadBalancers) > 0 {
			return nil, ecsInvalid("Load balancers are not simulated.")
		}
		td, err := w.resolveServiceTD(aws.ToString(in.TaskDefinition))
		if err != nil {
			return nil, err
		}
		if err := w.validateNetwork(in.NetworkConfiguration); err != nil {
			return nil, err
		}
		if err := w.validateRegistries(in.ServiceRegistries); err != nil {
			return nil, err
		}
		if in.HealthCheckGracePeriodSeconds != nil {
			// docs/research/aws-ecs.md §4.4: only with load balancers.
			return nil, ecsInvalid("Health check grace period is only valid for services configured to use load balancers")
		}
		now := w.Clock.Now()
		s := &ecsSvc{Name: name, ARN: arn, ClusterName: c.Name, Status: "ACTIVE", TaskDef: aws.ToString(td.Def.TaskDefinitionArn),
			Desired: aws.ToInt32(in.DesiredCount), Registries: clone(in.ServiceRegistries), PlatformVersion: aws.ToString(in.PlatformVersion),
			PropagateTags: in.PropagateTags, ManagedTags: in.EnableECSManagedTags, ExecuteCommand: in.EnableExecuteCommand,
			Tags: ecsTags.merge(nil, in.Tags), ClientToken: aws.ToString(in.ClientToken), Created: now, CreatedBy: PrincipalOf(ctx).ARN, gen: gen}
		if s.PlatformVersion == "" {
			s.PlatformVersion = "LATEST"
		}
		if s.PropagateTags == "" {
			s.PropagateTags = ecstypes.PropagateTagsNone
		}
		if in.DeploymentConfiguration != nil {
			s.DepConf = clone(*in.DeploymentConfiguration)
		}
		fillDeploymentDefaults(&s.DepConf)
		st.Services[arn] = s
		w.newDeployment(s, s.TaskDef, clone(in.NetworkConfiguration), now, nil)
		return &ecs.CreateServiceOutput{Service: ptr(w.serviceView(s, false))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DescribeServicesInput) (*ecs.DescribeServicesOutput, error) {
		w.advance()
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		if len(in.Services) == 0 || len(in.Services) > 10 {
			return nil, ecsInvalid("Services cannot be empty and can have at most 10 items.")
		}
		out := &ecs.DescribeServicesOutput{Services: []ecstypes.Service{}, Failures: []ecstypes.Failure{}}
		for _, ref := range in.Services {
			arn := w.serviceARN(c.Name, ref)
			s, ok := w.ecs().Services[arn]
			if !ok || s.ClusterName != c.Name {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
				continue
			}
			out.Services = append(out.Services, w.serviceView(s, hasInclude(in.Include, "TAGS")))
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.UpdateServiceInput) (*ecs.UpdateServiceOutput, error) {
		w.advance()
		s, err := w.activeService(in.Cluster, aws.ToString(in.Service))
		if err != nil {
			return nil, err
		}
		prim := s.Deployments[0]
		newTD, net, regs, pv := prim.TD, prim.Net, s.Registries, s.PlatformVersion
		if in.TaskDefinition != nil {
			td, err := w.resolveServiceTD(aws.ToString(in.TaskDefinition))
			if err != nil {
				return nil, err
			}
			newTD = aws.ToString(td.Def.TaskDefinitionArn)
		}
		if in.NetworkConfiguration != nil {
			if err := w.validateNetwork(in.NetworkConfiguration); err != nil {
				return nil, err
			}
			net = clone(in.NetworkConfiguration)
		}
		if in.ServiceRegistries != nil {
			if err := w.validateRegistries(in.ServiceRegistries); err != nil {
				return nil, err
			}
			regs = clone(in.ServiceRegistries)
		}
		if in.PlatformVersion != nil {
			pv = aws.ToString(in.PlatformVersion)
		}
		if in.DeploymentConfiguration != nil {
			s.DepConf = clone(*in.DeploymentConfiguration)
			fillDeploymentDefaults(&s.DepConf)
		}
		if in.DesiredCount != nil {
			s.Desired = aws.ToInt32(in.DesiredCount)
		}
		if in.PropagateTags != "" {
			s.PropagateTags = in.PropagateTags
		}
		if in.EnableECSManagedTags != nil {
			s.ManagedTags = aws.ToBool(in.EnableECSManagedTags)
		}
		if in.EnableExecuteCommand != nil {
			s.ExecuteCommand = aws.ToBool(in.EnableExecuteCommand)
		}
		// A new deployment only when what the tasks run changes (or on
		// forceNewDeployment); a desiredCount change alone just scales.
		changed := newTD != prim.TD || !reflect.DeepEqual(net, prim.Net) || !reflect.DeepEqual(regs, s.Registries) || pv != s.PlatformVersion
		s.Registries, s.PlatformVersion = regs, pv
		if changed || in.ForceNewDeployment {
			s.TaskDef = newTD
			w.newDeployment(s, newTD, net, w.Clock.Now(), nil)
		}
		return &ecs.UpdateServiceOutput{Service: ptr(w.serviceView(s, false))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DeleteServiceInput) (*ecs.DeleteServiceOutput, error) {
		w.advance()
		s, err := w.activeService(in.Cluster, aws.ToString(in.Service))
		if err != nil {
			return nil, err
		}
		if s.Desired > 0 && !aws.ToBool(in.Force) {
			return nil, ecsInvalid("The service cannot be stopped while it is scaled above 0.")
		}
		// DRAINING while the tasks stop (TaskDrain), then INACTIVE, later
		// MISSING (docs/research/aws-ecs.md §4.3, §5.3).
		s.Desired = 0
		s.Status = "DRAINING"
		w.reconcile(s, w.Clock.Now())
		return &ecs.DeleteServiceOutput{Service: ptr(w.serviceView(s, false))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.ListServiceDeploymentsInput) (*ecs.ListServiceDeploymentsOutput, error) {
		w.advance()
		_, s, err := w.findService(in.Cluster, aws.ToString(in.Service))
		if err != nil {
			return nil, err
		}
		var briefs []ecstypes.ServiceDeploymentBrief
		for i := len(s.SDs) - 1; i >= 0; i-- { // newest first
			sd := s.SDs[i]
			if len(in.Status) > 0 && !hasInclude(in.Status, string(sd.Status)) {
				continue
			}
			if ca := in.CreatedAt; ca != nil && ((ca.After != nil && !sd.Created.After(*ca.After)) || (ca.Before != nil && !sd.Created.Before(*ca.Before))) {
				continue
			}
			v := w.serviceDeploymentView(s, sd)
			briefs = append(briefs, ecstypes.ServiceDeploymentBrief{ServiceDeploymentArn: v.ServiceDeploymentArn, ServiceArn: v.ServiceArn,
				ClusterArn: v.ClusterArn, CreatedAt: v.CreatedAt, StartedAt: v.StartedAt, FinishedAt: v.FinishedAt,
				TargetServiceRevisionArn: v.TargetServiceRevision.Arn, Status: v.Status, StatusReason: v.StatusReason})
		}
		page, next, err := paginate(briefs, in.NextToken, in.MaxResults, 20)
		return &ecs.ListServiceDeploymentsOutput{ServiceDeployments: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DescribeServiceDeploymentsInput) (*ecs.DescribeServiceDeploymentsOutput, error) {
		w.advance()
		if len(in.ServiceDeploymentArns) == 0 || len(in.ServiceDeploymentArns) > 20 {
			return nil, ecsInvalid("serviceDeploymentArns must contain between 1 and 20 items.")
		}
		out := &ecs.DescribeServiceDeploymentsOutput{ServiceDeployments: []ecstypes.ServiceDeployment{}, Failures: []ecstypes.Failure{}}
		for _, arn := range in.ServiceDeploymentArns {
			var found bool
			for _, sarn := range sortedKeys(w.ecs().Services) {
				s := w.ecs().Services[sarn]
				for _, sd := range s.SDs {
					if sd.ARN == arn {
						out.ServiceDeployments = append(out.ServiceDeployments, w.serviceDeploymentView(s, sd))
						found = true
					}
				}
			}
			if !found {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			}
		}
		return out, nil
	})
}

// setServiceDesired sets a service's desired count the way Application
// Auto Scaling does (no new deployment). Callers hold w.Mu.
func (w *World) setServiceDesired(s *ecsSvc, n int32) {
	if s.Desired != n {
		s.Desired = n
		w.reconcile(s, w.ecs().now)
	}
}

// activeServiceByResourceID finds the ACTIVE service of an Application Auto
// Scaling resource id "service/CLUSTER/SERVICE". Callers hold w.Mu.
func (w *World) activeServiceByResourceID(id string) *ecsSvc {
	parts := strings.Split(id, "/")
	if len(parts) != 3 || parts[0] != "service" {
		return nil
	}
	s, ok := w.ecs().Services[w.ecsARN("service/"+parts[1]+"/"+parts[2])]
	if !ok || s.Status != "ACTIVE" {
		return nil
	}
	if c, ok := w.ecs().Clusters[parts[1]]; !ok || c.Status != "ACTIVE" {
		return nil
	}
	return s
}
