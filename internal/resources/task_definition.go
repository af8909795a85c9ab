package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// TaskDefinitionKind is the worker's task-definition family. Its live state
// is the revision the ECS service runs, or, without a service, the latest
// ACTIVE revision (ecspresso's rule, docs/research/aws-ecs.md §1.1). A change
// registers a new revision; only a non-empty normalised diff does (§9.1).
type TaskDefinitionKind struct{}

// familyLocks serialise registrations per family: concurrent registrations
// fail with "Too many concurrent attempts to create a new revision of the
// specified family" (docs/research/aws-ecs.md §5, RegisterTaskDefinition row).
var familyLocks sync.Map // family → *sync.Mutex

func lockFamily(family string) func() {
	m, _ := familyLocks.LoadOrStore(family, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (TaskDefinitionKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := mustSpec[stack.TaskDefinitionSpec](r)
	c := s.Container
	a := resource.Attrs{
		"cpu":                      {Value: itoa(s.CPU)},
		"memory":                   {Value: itoa(s.Memory)},
		"network_mode":             {Value: "awsvpc"},
		"requires_compatibilities": {Value: jsonList([]string{"FARGATE"})},
		"execution_role_arn":       {Value: s.ExecutionRoleARN.Resolve(refs)},
		"task_role_arn":            {Value: s.TaskRoleARN.Resolve(refs)},
		"container.name":           {Value: c.Name},
		"container.image":          {Value: c.Image},
		"container.command":        {Value: jsonArray(c.Command)},
		"container.essential":      {Value: "true"},
		"container.log_driver":     {Value: "awslogs"},
		"container.health_check": {Value: healthCheckJSON(c.HealthCheck.Command, c.HealthCheck.Interval,
			c.HealthCheck.Timeout, c.HealthCheck.Retries, c.HealthCheck.StartPeriod)},
	}
	for k, v := range c.Environment {
		// The worker prefix is a hash of the rest of the container
		// definition (docs/ARCHITECTURE.md, worker identity contract).
		a["container.env."+k] = resource.Attr{Value: v, Derived: k == stack.EnvWorkerPrefix}
	}
	for k, ref := range c.Secrets {
		a["container.secret."+k] = resource.Attr{Value: ref.Resolve(refs)}
	}
	for k, v := range c.LogOptions {
		a["container.log_option."+k] = resource.Attr{Value: v}
	}
	addTags(a, r.Tags)
	return a
}

// OutputsChangedByUpdate: an update registers a new revision.
func (TaskDefinitionKind) OutputsChangedByUpdate(*resource.Resource) []string {
	return []string{"arn", "revision", "worker_prefix"}
}

func jsonArray(items []string) string {
	b, _ := json.Marshal(items)
	return string(b)
}

func healthCheckJSON(cmd []string, interval, timeout, retries, start int32) string {
	b, _ := json.Marshal(struct {
		Command     []string `json:"command"`
		Interval    int32    `json:"interval"`
		Timeout     int32    `json:"timeout"`
		Retries     int32    `json:"retries"`
		StartPeriod int32    `json:"start_period"`
	}{cmd, interval, timeout, retries, start})
	return string(b)
}

// fargateUnits normalises ECS's cpu/memory strings: "0.25 vCPU" → "256",
// "1 GB" → "1024" (ecspresso sortTaskDefinition, docs/research/aws-ecs.md §1.1).
func fargateUnits(v string) string {
	v = strings.TrimSpace(v)
	lower := strings.ToLower(v)
	for _, suf := range []struct {
		s    string
		mult float64
	}{{"vcpu", 1024}, {"gb", 1024}} {
		if strings.HasSuffix(lower, suf.s) {
			if f, err := strconv.ParseFloat(strings.TrimSpace(lower[:len(lower)-len(suf.s)]), 64); err == nil {
				return strconv.Itoa(int(f * suf.mult))
			}
		}
	}
	return v
}

type liveTaskDefinition struct {
	arn  string
	tags map[string]string
}

// serviceTaskDefinition returns the task definition the ECS service runs,
// or "" when there is no active service.
func serviceTaskDefinition(ctx context.Context, x *resource.Ctx, cluster, service string) (string, error) {
	svc, err := describeService(ctx, x, cluster, service)
	if err != nil || svc == nil {
		return "", err
	}
	return aws.ToString(svc.TaskDefinition), nil
}

func (TaskDefinitionKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := specOf[stack.TaskDefinitionSpec](r)
	if err != nil {
		return nil, err
	}
	which := s.Family
	used, err := serviceTaskDefinition(ctx, x, s.Cluster, s.Service)
	if err != nil {
		return nil, err
	}
	if used != "" && familyOf(used) == s.Family {
		which = used
	}
	out, err := x.AWS.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(which),
		Include:        []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeTaskDefinition %s: %w", which, err)
	}
	td := out.TaskDefinition
	if td == nil || (which == s.Family && td.Status != ecstypes.TaskDefinitionStatusActive) {
		return nil, nil
	}
	tags := ecsTags(out.Tags)
	var compat []string
	for _, c := range td.RequiresCompatibilities {
		compat = append(compat, string(c))
	}
	a := resource.Attrs{
		"cpu":                      {Value: fargateUnits(aws.ToString(td.Cpu))},
		"memory":                   {Value: fargateUnits(aws.ToString(td.Memory))},
		"network_mode":             {Value: string(td.NetworkMode)},
		"requires_compatibilities": {Value: jsonList(compat)},
		"execution_role_arn":       {Value: aws.ToString(td.ExecutionRoleArn)},
		"task_role_arn":            {Value: aws.ToString(td.TaskRoleArn)},
	}
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) != s.Container.Name {
			continue
		}
		a["container.name"] = resource.Attr{Value: aws.ToString(c.Name)}
		a["container.image"] = resource.Attr{Value: aws.ToString(c.Image)}
		a["container.command"] = resource.Attr{Value: jsonArray(c.Command)}
		a["container.essential"] = resource.Attr{Value: btoa(c.Essential == nil || *c.Essential)}
		for _, e := range c.Environment {
			a["container.env."+aws.ToString(e.Name)] = resource.Attr{Value: aws.ToString(e.Value)}
		}
		for _, sec := range c.Secrets {
			a["container.secret."+aws.ToString(sec.Name)] = resource.Attr{Value: aws.ToString(sec.ValueFrom)}
		}
		if lc := c.LogConfiguration; lc != nil {
			a["container.log_driver"] = resource.Attr{Value: string(lc.LogDriver)}
			for k, v := range lc.Options {
				a["container.log_option."+k] = resource.Attr{Value: v}
			}
		}
		if hc := c.HealthCheck; hc != nil {
			// ECS fills interval 30, timeout 5, retries 3, startPeriod 0
			// when omitted; deploybot always sets them, so compare as read.
			a["container.health_check"] = resource.Attr{Value: healthCheckJSON(hc.Command,
				aws.ToInt32(hc.Interval), aws.ToInt32(hc.Timeout), aws.ToInt32(hc.Retries), aws.ToInt32(hc.StartPeriod))}
		}
	}
	addTags(a, tags)
	arn := aws.ToString(td.TaskDefinitionArn)
	return &resource.Live{ID: arn, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"arn": arn, "family": s.Family, "revision": strconv.Itoa(int(td.Revision)),
			"worker_prefix": a["container.env."+stack.EnvWorkerPrefix].Value},
		Raw: liveTaskDefinition{arn: arn, tags: tags}}, nil
}

// familyOf returns the family of a task-definition ARN
// (arn:aws:ecs:REGION:ACCT:task-definition/FAMILY:REV) or family:rev.
func familyOf(arn string) string {
	s := arn[strings.LastIndex(arn, "/")+1:]
	if i := strings.LastIndex(s, ":"); i >= 0 {
		s = s[:i]
	}
	return s
}

func (TaskDefinitionKind) register(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.TaskDefinitionSpec](r)
	if err != nil {
		return nil, err
	}
	c := s.Container
	in := &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(s.Family),
		Cpu:                     aws.String(itoa(s.CPU)),
		Memory:                  aws.String(itoa(s.Memory)),
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		ExecutionRoleArn:        aws.String(s.ExecutionRoleARN.Resolve(refs)),
		TaskRoleArn:             aws.String(s.TaskRoleARN.Resolve(refs)),
		Tags:                    ecsTagList(r.Tags),
	}
	def := ecstypes.ContainerDefinition{
		Name:      aws.String(c.Name),
		Image:     aws.String(c.Image),
		Essential: aws.Bool(true),
		Command:   c.Command,
		LogConfiguration: &ecstypes.LogConfiguration{
			LogDriver: ecstypes.LogDriverAwslogs,
			Options:   c.LogOptions,
		},
		HealthCheck: &ecstypes.HealthCheck{
			Command:     c.HealthCheck.Command,
			Interval:    aws.Int32(c.HealthCheck.Interval),
			Timeout:     aws.Int32(c.HealthCheck.Timeout),
			Retries:     aws.Int32(c.HealthCheck.Retries),
			StartPeriod: aws.Int32(c.HealthCheck.StartPeriod),
		},
	}
	// Sorted, so the same spec registers byte-identical revisions.
	for _, k := range sortedKeys(c.Environment) {
		def.Environment = append(def.Environment, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(c.Environment[k])})
	}
	for _, k := range sortedKeys(c.Secrets) {
		from := c.Secrets[k].Resolve(refs)
		if from == plan.Unknown {
			return nil, fmt.Errorf("task definition %s: secret %s has no ARN yet", s.Family, k)
		}
		def.Secrets = append(def.Secrets, ecstypes.Secret{Name: aws.String(k), ValueFrom: aws.String(from)})
	}
	in.ContainerDefinitions = []ecstypes.ContainerDefinition{def}

	unlock := lockFamily(s.Family)
	defer unlock()
	out, err := x.AWS.ECS.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("RegisterTaskDefinition %s: %w", s.Family, err)
	}
	td := out.TaskDefinition
	arn := aws.ToString(td.TaskDefinitionArn)
	x.Say(r.Address, "registered "+arn)
	return resource.Outputs{"arn": arn, "family": s.Family, "revision": strconv.Itoa(int(td.Revision)),
		"worker_prefix": c.Environment[stack.EnvWorkerPrefix]}, nil
}

func (k TaskDefinitionKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	return k.register(ctx, x, r, refs)
}

// Update registers a new revision, except when only tags changed: those are
// changed on the live revision in place.
func (k TaskDefinitionKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	if onlyTags(changed) {
		lt := live.Raw.(liveTaskDefinition)
		if err := updateECSTags(ctx, x, lt.arn, r.Tags, lt.tags); err != nil {
			return nil, err
		}
		return live.Outputs, nil
	}
	return k.register(ctx, x, r, refs)
}

// Delete deregisters every ACTIVE revision of the family, then deletes the
// INACTIVE ones (docs/research/aws-ecs.md §5.3 step 5).
func (TaskDefinitionKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	s, err := specOf[stack.TaskDefinitionSpec](r)
	if err != nil {
		return err
	}
	unlock := lockFamily(s.Family)
	defer unlock()
	active, err := listRevisions(ctx, x, s.Family, ecstypes.TaskDefinitionStatusActive)
	if err != nil {
		return err
	}
	for _, arn := range active {
		if _, err := x.AWS.ECS.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeregisterTaskDefinition %s: %w", arn, err)
		}
	}
	if len(active) > 0 {
		x.Say(r.Address, fmt.Sprintf("deregistered %d revision(s) of %s", len(active), s.Family))
	}
	inactive, err := listRevisions(ctx, x, s.Family, ecstypes.TaskDefinitionStatusInactive)
	if err != nil {
		return err
	}
	for start := 0; start < len(inactive); start += 10 { // DeleteTaskDefinitions takes at most 10
		batch := inactive[start:min(start+10, len(inactive))]
		out, err := x.AWS.ECS.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: batch})
		if err != nil {
			return fmt.Errorf("DeleteTaskDefinitions %s: %w", s.Family, err)
		}
		for _, f := range out.Failures {
			// Already being deleted is what we want.
			if !strings.Contains(aws.ToString(f.Reason), "DELETE_IN_PROGRESS") {
				return fmt.Errorf("DeleteTaskDefinitions %s: %s: %s", s.Family, aws.ToString(f.Arn), aws.ToString(f.Reason))
			}
		}
	}
	return nil
}

// listRevisions lists the ARNs of family's revisions with status, only of
// that exact family.
func listRevisions(ctx context.Context, x *resource.Ctx, family string, status ecstypes.TaskDefinitionStatus) ([]string, error) {
	var arns []string
	p := ecs.NewListTaskDefinitionsPaginator(x.AWS.ECS, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: status})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListTaskDefinitions %s %s: %w", family, status, err)
		}
		for _, arn := range page.TaskDefinitionArns {
			if familyOf(arn) == family {
				arns = append(arns, arn)
			}
		}
	}
	return arns, nil
}
