package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ECS: clusters, task definitions and tags here; services, deployments and
// the task scheduler in ecs_service.go and ecs_sched.go; tasks in
// ecs_tasks.go. Behaviour follows docs/research/aws-ecs.md §4 and §5.

type ecsClus struct {
	Name, ARN, Status string
	Created           time.Time
	Tags              []ecstypes.Tag
	Settings          []ecstypes.ClusterSetting
}

type ecsTD struct {
	Def             ecstypes.TaskDefinition
	Tags            []ecstypes.Tag
	DeleteRequested time.Time
}

type ecsState struct {
	Clusters map[string]*ecsClus // by name
	Families map[string][]*ecsTD // revisions in order (index = revision-1)
	Services map[string]*ecsSvc  // by service ARN
	Tasks    map[string]*ecsTask // by task ARN
	// taskOrder keeps tasks in launch order for deterministic listing.
	taskOrder []string
	// now is the simulated instant being processed by the scheduler.
	now time.Time
}

func (w *World) ecs() *ecsState {
	return State(w, "ecs", func() *ecsState {
		return &ecsState{Clusters: map[string]*ecsClus{}, Families: map[string][]*ecsTD{}, Services: map[string]*ecsSvc{}, Tasks: map[string]*ecsTask{}}
	})
}

func (w *World) ecsARN(rest string) string {
	return "arn:aws:ecs:" + w.Region + ":" + w.Account + ":" + rest
}

// clone deep-copies an SDK value so that callers never share memory with the
// simulated state.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func clusterNotFound() error {
	return &ecstypes.ClusterNotFoundException{Message: aws.String("Cluster not found.")}
}

func ecsInvalid(msg string) error {
	return &ecstypes.InvalidParameterException{Message: aws.String(msg)}
}

func ecsClient(msg string) error {
	return &ecstypes.ClientException{Message: aws.String(msg)}
}

// clusterName returns the name from a cluster name or ARN ("" = "default").
func clusterName(ref string) string {
	if ref == "" {
		return "default"
	}
	if strings.HasPrefix(ref, "arn:") {
		return ref[strings.LastIndex(ref, "/")+1:]
	}
	return ref
}

// activeCluster finds an ACTIVE cluster by name or ARN. Callers hold w.Mu.
func (w *World) activeCluster(ref *string) (*ecsClus, error) {
	c, ok := w.ecs().Clusters[clusterName(aws.ToString(ref))]
	if !ok || c.Status != "ACTIVE" {
		return nil, clusterNotFound()
	}
	return c, nil
}

var ecsTags = tagList[ecstypes.Tag](func(t ecstypes.Tag) (*string, *string) { return t.Key, t.Value })

func hasInclude[T ~string](include []T, v string) bool {
	for _, i := range include {
		if string(i) == v {
			return true
		}
	}
	return false
}

func (w *World) clusterView(c *ecsClus, include []ecstypes.ClusterField) ecstypes.Cluster {
	out := ecstypes.Cluster{ClusterArn: aws.String(c.ARN), ClusterName: aws.String(c.Name), Status: aws.String(c.Status),
		CapacityProviders: []string{}, DefaultCapacityProviderStrategy: []ecstypes.CapacityProviderStrategyItem{}}
	if c.Status == "ACTIVE" {
		for _, s := range w.ecs().Services {
			if s.ClusterName == c.Name && s.Status == "ACTIVE" {
				out.ActiveServicesCount++
			}
		}
		for _, t := range w.ecs().Tasks {
			if t.ClusterName != c.Name {
				continue
			}
			switch t.LastStatus {
			case "RUNNING":
				out.RunningTasksCount++
			case "PROVISIONING", "PENDING", "ACTIVATING":
				out.PendingTasksCount++
			}
		}
	}
	if hasInclude(include, "TAGS") {
		out.Tags = clone(c.Tags)
	}
	if hasInclude(include, "SETTINGS") {
		out.Settings = clone(c.Settings)
	}
	return out
}

// Fargate's valid task-level cpu/memory pairs (MiB), per cpu units.
func fargateMemoryOK(cpu, mem int) bool {
	between := func(lo, hi, step int) bool { return mem >= lo && mem <= hi && (mem-lo)%step == 0 }
	switch cpu {
	case 256:
		return mem == 512 || mem == 1024 || mem == 2048
	case 512:
		return between(1024, 4096, 1024)
	case 1024:
		return between(2048, 8192, 1024)
	case 2048:
		return between(4096, 16384, 1024)
	case 4096:
		return between(8192, 30720, 1024)
	case 8192:
		return between(16384, 61440, 4096)
	case 16384:
		return between(32768, 122880, 8192)
	}
	return false
}

var familyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// parseTDRef splits "family", "family:rev" or a task-definition ARN.
func parseTDRef(ref string) (family string, rev int, hasRev bool) {
	if strings.HasPrefix(ref, "arn:") {
		ref = ref[strings.Index(ref, "task-definition/")+len("task-definition/"):]
	}
	if i := strings.LastIndex(ref, ":"); i >= 0 {
		n, err := strconv.Atoi(ref[i+1:])
		if err == nil {
			return ref[:i], n, true
		}
	}
	return ref, 0, false
}

// findTD resolves a task-definition reference; "family" alone means the
// latest ACTIVE revision. Callers hold w.Mu.
func (w *World) findTD(ref string) *ecsTD {
	if !strings.HasPrefix(ref, "arn:") && strings.Contains(ref, "/") {
		return nil
	}
	if strings.HasPrefix(ref, "arn:") && !strings.Contains(ref, ":task-definition/") {
		return nil
	}
	fam, rev, hasRev := parseTDRef(ref)
	revs := w.ecs().Families[fam]
	if hasRev {
		if rev < 1 || rev > len(revs) || revs[rev-1] == nil {
			return nil
		}
		return revs[rev-1]
	}
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i] != nil && revs[i].Def.Status == ecstypes.TaskDefinitionStatusActive {
			return revs[i]
		}
	}
	return nil
}

func tdNotFound() error { return ecsClient("Unable to describe task definition.") }

// fillContainerDefaults adds what ECS fills in on registration, so that a
// DescribeTaskDefinition shows server defaults as the real one does
// (docs/research/aws-ecs.md §1.1: defaults leak into diffs unless normalised).
func fillContainerDefaults(cds []ecstypes.ContainerDefinition, networkMode ecstypes.NetworkMode) {
	for i := range cds {
		cd := &cds[i]
		if cd.Essential == nil {
			cd.Essential = aws.Bool(true)
		}
		for j := range cd.PortMappings {
			pm := &cd.PortMappings[j]
			if pm.Protocol == "" {
				pm.Protocol = ecstypes.TransportProtocolTcp
			}
			if networkMode == ecstypes.NetworkModeAwsvpc && pm.HostPort == nil {
				pm.HostPort = pm.ContainerPort
			}
		}
		if cd.PortMappings == nil {
			cd.PortMappings = []ecstypes.PortMapping{}
		}
		if cd.Environment == nil {
			cd.Environment = []ecstypes.KeyValuePair{}
		}
		if cd.MountPoints == nil {
			cd.MountPoints = []ecstypes.MountPoint{}
		}
		if cd.VolumesFrom == nil {
			cd.VolumesFrom = []ecstypes.VolumeFrom{}
		}
		if cd.SystemControls == nil {
			cd.SystemControls = []ecstypes.SystemControl{}
		}
		if hc := cd.HealthCheck; hc != nil {
			if hc.Interval == nil {
				hc.Interval = aws.Int32(30)
			}
			if hc.Timeout == nil {
				hc.Timeout = aws.Int32(5)
			}
			if hc.Retries == nil {
				hc.Retries = aws.Int32(3)
			}
		}
	}
}

func requiresAttributes(td *ecstypes.TaskDefinition) []ecstypes.Attribute {
	var names []string
	add := func(n string) { names = append(names, n) }
	add("com.amazonaws.ecs.capability.docker-remote-api.1.18")
	if td.NetworkMode == ecstypes.NetworkModeAwsvpc {
		add("ecs.capability.task-eni")
	}
	for _, cd := range td.ContainerDefinitions {
		if cd.LogConfiguration != nil && cd.LogConfiguration.LogDriver == ecstypes.LogDriverAwslogs {
			add("com.amazonaws.ecs.capability.logging-driver.awslogs")
			add("ecs.capability.execution-role-awslogs")
			add("com.amazonaws.ecs.capability.docker-remote-api.1.19")
		}
		if len(cd.Secrets) > 0 {
			add("ecs.capability.secrets.asm.environment-variables")
		}
		if cd.HealthCheck != nil {
			add("ecs.capability.container-health-check")
			add("com.amazonaws.ecs.capability.docker-remote-api.1.24")
		}
	}
	sort.Strings(names)
	var out []ecstypes.Attribute
	for i, n := range names {
		if i > 0 && names[i-1] == n {
			continue
		}
		out = append(out, ecstypes.Attribute{Name: aws.String(n)})
	}
	return out
}

func (w *World) ecsResourceTags(arn string) (*[]ecstypes.Tag, error) {
	st := w.ecs()
	switch {
	case strings.Contains(arn, ":cluster/"):
		if c, ok := st.Clusters[clusterName(arn)]; ok && c.ARN == arn {
			return &c.Tags, nil
		}
	case strings.Contains(arn, ":service/"):
		if s, ok := st.Services[arn]; ok && s.Status != "INACTIVE" {
			return &s.Tags, nil
		}
	case strings.Contains(arn, ":task-definition/"):
		if td := w.findTD(arn); td != nil {
			return &td.Tags, nil
		}
	case strings.Contains(arn, ":task/"):
		if t, ok := st.Tasks[arn]; ok {
			return &t.Tags, nil
		}
	default:
		return nil, ecsInvalid("The ARN provided is invalid.")
	}
	return nil, &ecstypes.ResourceNotFoundException{Message: aws.String("The specified resource could not be found.")}
}

func init() {
	RegisterInventory(func(w *World) []Item {
		st := w.ecs()
		items := listed(st.Clusters, func(_ string, c *ecsClus) (Item, bool) {
			return Item{Service: "ecs", Type: "cluster", ID: c.ARN, Tags: ecsTags.asMap(c.Tags)}, c.Status == "ACTIVE"
		})
		for _, fam := range sortedKeys(st.Families) {
			for _, td := range st.Families[fam] {
				if td != nil && td.Def.Status == ecstypes.TaskDefinitionStatusActive {
					items = append(items, Item{Service: "ecs", Type: "task-definition", ID: aws.ToString(td.Def.TaskDefinitionArn), Tags: ecsTags.asMap(td.Tags)})
				}
			}
		}
		return append(items, listed(st.Services, func(arn string, s *ecsSvc) (Item, bool) {
			return Item{Service: "ecs", Type: "service", ID: arn, Tags: ecsTags.asMap(s.Tags)}, s.Status != "INACTIVE"
		})...)
	})

	Handle(func(ctx context.Context, w *World, in *ecs.CreateClusterInput) (*ecs.CreateClusterOutput, error) {
		w.advance()
		name := aws.ToString(in.ClusterName)
		if name == "" {
			name = "default"
		}
		if !familyRe.MatchString(name) {
			return nil, ecsInvalid("Cluster name can only contain alphanumeric characters, hyphens, and underscores.")
		}
		st := w.ecs()
		// CreateCluster is idempotent for an ACTIVE cluster of that name; an
		// INACTIVE one is brought back under the same ARN.
		c, ok := st.Clusters[name]
		if ok && c.Status == "ACTIVE" {
			return &ecs.CreateClusterOutput{Cluster: ptr(w.clusterView(c, nil))}, nil
		}
		if err := w.needECSServiceLinkedRole(ctx); err != nil {
			return nil, err
		}
		c = &ecsClus{Name: name, ARN: w.ecsARN("cluster/" + name), Status: "ACTIVE", Created: w.Clock.Now(),
			Tags: ecsTags.merge(nil, in.Tags), Settings: clone(in.Settings)}
		hasInsights := false
		for _, set := range c.Settings {
			hasInsights = hasInsights || set.Name == ecstypes.ClusterSettingNameContainerInsights
		}
		if !hasInsights {
			// The account default ECS reports for a cluster created without it.
			c.Settings = append(c.Settings, ecstypes.ClusterSetting{Name: ecstypes.ClusterSettingNameContainerInsights, Value: aws.String("disabled")})
		}
		st.Clusters[name] = c
		v := w.clusterView(c, []ecstypes.ClusterField{"TAGS", "SETTINGS"})
		return &ecs.CreateClusterOutput{Cluster: &v}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
		w.advance()
		refs := in.Clusters
		if len(refs) == 0 {
			refs = []string{"default"}
		}
		out := &ecs.DescribeClustersOutput{Clusters: []ecstypes.Cluster{}, Failures: []ecstypes.Failure{}}
		for _, ref := range refs {
			c, ok := w.ecs().Clusters[clusterName(ref)]
			if !ok {
				arn := ref
				if !strings.HasPrefix(ref, "arn:") {
					arn = w.ecsARN("cluster/" + ref)
				}
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
				continue
			}
			out.Clusters = append(out.Clusters, w.clusterView(c, in.Include))
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.UpdateClusterSettingsInput) (*ecs.UpdateClusterSettingsOutput, error) {
		w.advance()
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		for _, set := range in.Settings {
			replaced := false
			for i := range c.Settings {
				if c.Settings[i].Name == set.Name {
					c.Settings[i].Value = set.Value
					replaced = true
				}
			}
			if !replaced {
				c.Settings = append(c.Settings, ecstypes.ClusterSetting{Name: set.Name, Value: set.Value})
			}
		}
		v := w.clusterView(c, []ecstypes.ClusterField{"SETTINGS"})
		return &ecs.UpdateClusterSettingsOutput{Cluster: &v}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DeleteClusterInput) (*ecs.DeleteClusterOutput, error) {
		w.advance()
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		// docs/research/aws-ecs.md §5 table: DeleteCluster fails while services
		// are ACTIVE or DRAINING, or tasks are still running.
		for _, s := range w.ecs().Services {
			if s.ClusterName == c.Name && (s.Status == "ACTIVE" || s.Status == "DRAINING") {
				return nil, &ecstypes.ClusterContainsServicesException{Message: aws.String("The Cluster cannot be deleted while Services are active.")}
			}
		}
		for _, t := range w.ecs().Tasks {
			if t.ClusterName == c.Name && t.LastStatus != "STOPPED" {
				return nil, &ecstypes.ClusterContainsTasksException{Message: aws.String("The Cluster cannot be deleted while Tasks are active.")}
			}
		}
		c.Status = "INACTIVE"
		v := w.clusterView(c, nil)
		return &ecs.DeleteClusterOutput{Cluster: &v}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.TagResourceInput) (*ecs.TagResourceOutput, error) {
		w.advance()
		tags, err := w.ecsResourceTags(aws.ToString(in.ResourceArn))
		if err != nil {
			return nil, err
		}
		*tags = ecsTags.merge(*tags, in.Tags)
		return &ecs.TagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.UntagResourceInput) (*ecs.UntagResourceOutput, error) {
		w.advance()
		tags, err := w.ecsResourceTags(aws.ToString(in.ResourceArn))
		if err != nil {
			return nil, err
		}
		*tags = ecsTags.untag(*tags, in.TagKeys)
		return &ecs.UntagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.ListTagsForResourceInput) (*ecs.ListTagsForResourceOutput, error) {
		w.advance()
		tags, err := w.ecsResourceTags(aws.ToString(in.ResourceArn))
		if err != nil {
			return nil, err
		}
		out := ecsTags.listed(*tags)
		return &ecs.ListTagsForResourceOutput{Tags: out}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.RegisterTaskDefinitionInput) (*ecs.RegisterTaskDefinitionOutput, error) {
		w.advance()
		fam := aws.ToString(in.Family)
		if !familyRe.MatchString(fam) {
			return nil, ecsClient("Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")
		}
		if len(in.ContainerDefinitions) == 0 {
			return nil, ecsClient("Container list cannot be empty.")
		}
		fargate := false
		for _, c := range in.RequiresCompatibilities {
			fargate = fargate || c == ecstypes.CompatibilityFargate
		}
		if fargate {
			if in.NetworkMode != ecstypes.NetworkModeAwsvpc {
				return nil, ecsClient("Fargate only supports network mode 'awsvpc'.")
			}
			if in.Cpu == nil || in.Memory == nil {
				return nil, ecsClient("Fargate requires that 'cpu' be defined at the task level.")
			}
			cpu, errC := strconv.Atoi(aws.ToString(in.Cpu))
			mem, errM := strconv.Atoi(aws.ToString(in.Memory))
			if errC != nil || errM != nil || !fargateMemoryOK(cpu, mem) {
				return nil, ecsClient(fmt.Sprintf("No Fargate configuration exists for given values: %s CPU, %s memory. See the Amazon ECS documentation for the valid values.", aws.ToString(in.Cpu), aws.ToString(in.Memory)))
			}
			for _, cd := range in.ContainerDefinitions {
				if cd.LogConfiguration != nil && cd.LogConfiguration.LogDriver == ecstypes.LogDriverAwslogs && in.ExecutionRoleArn == nil {
					return nil, ecsClient("Fargate requires task definition to have execution role ARN to support log driver awslogs.")
				}
				if len(cd.Secrets) > 0 && in.ExecutionRoleArn == nil {
					return nil, ecsClient("When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")
				}
			}
		}
		for _, cd := range in.ContainerDefinitions {
			if aws.ToString(cd.Name) == "" || aws.ToString(cd.Image) == "" {
				return nil, ecsClient("Container.name and Container.image should not be null or empty.")
			}
		}
		st := w.ecs()
		rev := int32(len(st.Families[fam]) + 1)
		now := w.Clock.Now()
		def := ecstypes.TaskDefinition{
			Family: aws.String(fam), Revision: rev, TaskDefinitionArn: aws.String(w.ecsARN(fmt.Sprintf("task-definition/%s:%d", fam, rev))),
			ContainerDefinitions: clone(in.ContainerDefinitions), Cpu: in.Cpu, Memory: in.Memory, NetworkMode: in.NetworkMode,
			ExecutionRoleArn: in.ExecutionRoleArn, TaskRoleArn: in.TaskRoleArn, RequiresCompatibilities: clone(in.RequiresCompatibilities),
			RuntimePlatform: clone(in.RuntimePlatform), EphemeralStorage: clone(in.EphemeralStorage), PidMode: in.PidMode, IpcMode: in.IpcMode,
			Volumes: clone(in.Volumes), PlacementConstraints: clone(in.PlacementConstraints),
			Status: ecstypes.TaskDefinitionStatusActive, RegisteredAt: aws.Time(now), RegisteredBy: aws.String(PrincipalOf(ctx).ARN),
			Compatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityEc2},
		}
		if def.NetworkMode == "" {
			def.NetworkMode = ecstypes.NetworkModeBridge
		}
		if def.NetworkMode == ecstypes.NetworkModeAwsvpc {
			def.Compatibilities = append(def.Compatibilities, ecstypes.CompatibilityFargate)
		}
		if def.Volumes == nil {
			def.Volumes = []ecstypes.Volume{}
		}
		if def.PlacementConstraints == nil {
			def.PlacementConstraints = []ecstypes.TaskDefinitionPlacementConstraint{}
		}
		fillContainerDefaults(def.ContainerDefinitions, def.NetworkMode)
		def.RequiresAttributes = requiresAttributes(&def)
		td := &ecsTD{Def: def, Tags: ecsTags.merge(nil, in.Tags)}
		st.Families[fam] = append(st.Families[fam], td)
		out := &ecs.RegisterTaskDefinitionOutput{TaskDefinition: ptr(clone(td.Def)), Tags: clone(td.Tags)}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DescribeTaskDefinitionInput) (*ecs.DescribeTaskDefinitionOutput, error) {
		w.advance()
		td := w.findTD(aws.ToString(in.TaskDefinition))
		if td == nil {
			return nil, tdNotFound()
		}
		out := &ecs.DescribeTaskDefinitionOutput{TaskDefinition: ptr(clone(td.Def))}
		if hasInclude(in.Include, "TAGS") {
			out.Tags = clone(td.Tags)
			if out.Tags == nil {
				out.Tags = []ecstypes.Tag{}
			}
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DeregisterTaskDefinitionInput) (*ecs.DeregisterTaskDefinitionOutput, error) {
		w.advance()
		ref := aws.ToString(in.TaskDefinition)
		if _, _, hasRev := parseTDRef(ref); !hasRev {
			return nil, ecsClient("The specified task definition identifier is invalid. Specify a valid revision.")
		}
		td := w.findTD(ref)
		if td == nil || td.Def.Status == ecstypes.TaskDefinitionStatusDeleteInProgress {
			return nil, tdNotFound()
		}
		if td.Def.Status == ecstypes.TaskDefinitionStatusActive {
			td.Def.Status = ecstypes.TaskDefinitionStatusInactive
			td.Def.DeregisteredAt = aws.Time(w.Clock.Now())
		}
		return &ecs.DeregisterTaskDefinitionOutput{TaskDefinition: ptr(clone(td.Def))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DeleteTaskDefinitionsInput) (*ecs.DeleteTaskDefinitionsOutput, error) {
		w.advance()
		if len(in.TaskDefinitions) == 0 || len(in.TaskDefinitions) > 10 {
			return nil, ecsInvalid("The number of task definitions must be between 1 and 10.")
		}
		out := &ecs.DeleteTaskDefinitionsOutput{TaskDefinitions: []ecstypes.TaskDefinition{}, Failures: []ecstypes.Failure{}}
		for _, ref := range in.TaskDefinitions {
			td := w.findTD(ref)
			_, _, hasRev := parseTDRef(ref)
			switch {
			case td == nil || !hasRev:
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: aws.String(ref), Reason: aws.String("The specified task definition does not exist. Specify a valid account, family, revision and try again.")})
			case td.Def.Status == ecstypes.TaskDefinitionStatusActive:
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: td.Def.TaskDefinitionArn, Reason: aws.String("The specified task definition is still in ACTIVE status. Please deregister the target and try again.")})
			default:
				if td.Def.Status != ecstypes.TaskDefinitionStatusDeleteInProgress {
					td.Def.Status = ecstypes.TaskDefinitionStatusDeleteInProgress
					td.Def.DeleteRequestedAt = aws.Time(w.Clock.Now())
					td.DeleteRequested = w.Clock.Now()
				}
				out.TaskDefinitions = append(out.TaskDefinitions, clone(td.Def))
			}
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.ListTaskDefinitionsInput) (*ecs.ListTaskDefinitionsOutput, error) {
		w.advance()
		status := in.Status
		if status == "" {
			status = ecstypes.TaskDefinitionStatusActive
		}
		type ref struct {
			fam string
			rev int32
			arn string
		}
		var refs []ref
		for fam, revs := range w.ecs().Families {
			// familyPrefix is the full family name, despite its name (ECS API
			// reference, ListTaskDefinitions).
			if p := aws.ToString(in.FamilyPrefix); p != "" && fam != p {
				continue
			}
			for _, td := range revs {
				if td != nil && td.Def.Status == status {
					refs = append(refs, ref{fam, td.Def.Revision, aws.ToString(td.Def.TaskDefinitionArn)})
				}
			}
		}
		sort.Slice(refs, func(i, j int) bool {
			if refs[i].fam != refs[j].fam {
				return refs[i].fam < refs[j].fam
			}
			return refs[i].rev < refs[j].rev
		})
		if in.Sort == ecstypes.SortOrderDesc {
			for i, j := 0, len(refs)-1; i < j; i, j = i+1, j-1 {
				refs[i], refs[j] = refs[j], refs[i]
			}
		}
		arns := make([]string, len(refs))
		for i, r := range refs {
			arns[i] = r.arn
		}
		page, next, err := paginate(arns, in.NextToken, in.MaxResults, 100)
		return &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: page, NextToken: next}, err
	})
}

// paginate pages a sorted list with an opaque numeric token.
func paginate[T any](all []T, token *string, maxResults *int32, max int) ([]T, *string, error) {
	start := 0
	if t := aws.ToString(token); t != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(t, "tok-"))
		if err != nil || n > len(all) {
			return nil, nil, ecsInvalid("Invalid token")
		}
		start = n
	}
	limit := int(aws.ToInt32(maxResults))
	if limit <= 0 || limit > max {
		limit = max
	}
	end := min(start+limit, len(all))
	page := append([]T{}, all[start:end]...)
	if end < len(all) {
		return page, aws.String(fmt.Sprintf("tok-%d", end)), nil
	}
	return page, nil, nil
}

func ptr[T any](v T) *T { return &v }
