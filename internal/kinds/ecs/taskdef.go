package ecs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// TaskDefinitionSpec is the worker's task definition (Fargate, awsvpc).
type TaskDefinitionSpec struct {
	Family           string
	CPU              int
	Memory           int
	ExecutionRoleARN resource.Ref
	TaskRoleARN      resource.Ref
	Container        ContainerSpec
	// Cluster and Service name the ECS service whose revision is the live
	// one (Read compares with what runs, not with the newest revision).
	Cluster, Service string
}

// ContainerSpec is the one worker container (docs/ARCHITECTURE.md worker
// identity contract).
type ContainerSpec struct {
	Name        string
	Image       string
	Command     []string
	Environment map[string]string
	// Secrets maps an env var to the ARN it is read from.
	Secrets map[string]resource.Ref
	// LogOptions are the awslogs driver's options (no awslogs-create-group:
	// docs/research/aws-ecs.md §4.4).
	LogOptions  map[string]string
	HealthCheck HealthCheck
	// Derived names the environment variables deploybot computes from the
	// rest of the definition (the worker prefix, a hash of it:
	// docs/ARCHITECTURE.md worker identity contract); a plan shows their
	// change after the changes that cause it.
	Derived []string
}

// HealthCheck is the container health check (docs/research/aws-ecs.md §4.4).
type HealthCheck struct {
	Command                                 []string
	Interval, Timeout, Retries, StartPeriod int32
}

// TaskDefinitionModel is what a plan compares of a revision.
type TaskDefinitionModel struct {
	// CPU and Memory in ECS's units: "0.25 vCPU" and "1 GB" are read as
	// "256" and "1024" (Normalize).
	CPU                     string          `attr:"cpu"`
	Memory                  string          `attr:"memory"`
	NetworkMode             string          `attr:"network_mode"`
	RequiresCompatibilities resource.Set    `attr:"requires_compatibilities"`
	ExecutionRoleARN        string          `attr:"execution_role_arn"`
	TaskRoleARN             string          `attr:"task_role_arn"`
	Container               *ContainerModel `attr:"container"`
}

// ContainerModel is the worker container as a plan compares it; a live
// revision without a container of the worker's name has none.
type ContainerModel struct {
	Name      string                 `attr:"name"`
	Image     string                 `attr:"image"`
	Command   resource.Seq           `attr:"command"`
	Essential bool                   `attr:"essential"`
	LogDriver *string                `attr:"log_driver"`
	Health    *resource.JSON[health] `attr:"health_check"`
	Env       map[string]string      `attr:"env"`
	// Derived are the environment variables deploybot computes
	// (ContainerSpec.Derived).
	Derived map[string]string `attr:"env,derived"`
	Secrets map[string]string `attr:"secret"`
	LogOpts map[string]string `attr:"log_option"`
}

// health is a health check as the plan shows it. ECS fills interval 30,
// timeout 5, retries 3, startPeriod 0 when omitted; deploybot always sets
// them, so they are compared as read.
type health struct {
	Command     []string `json:"command"`
	Interval    int32    `json:"interval"`
	Timeout     int32    `json:"timeout"`
	Retries     int32    `json:"retries"`
	StartPeriod int32    `json:"start_period"`
}

// Normalize reads ECS's units as deploybot writes them.
func (m *TaskDefinitionModel) Normalize() {
	m.CPU, m.Memory = fargateUnits(m.CPU), fargateUnits(m.Memory)
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

// TaskDefinition is the task-definition family kind. Its live state is the
// revision the ECS service runs, or, without a service, the latest ACTIVE
// revision (ecspresso's rule, docs/research/aws-ecs.md §1.1). A change
// registers a new revision; only a non-empty normalised diff does (§9.1).
var TaskDefinition = resource.Define[TaskDefinitionSpec, TaskDefinitionModel, struct{}, awsapi.ECSAPI](KindTaskDefinition, taskDefinitionKind{}, connect)

type taskDefinitionKind struct{}

type (
	taskDefinition      = resource.Typed[TaskDefinitionSpec]
	foundTaskDefinition = resource.Found[TaskDefinitionModel, struct{}]
)

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

func (taskDefinitionKind) Desired(r *taskDefinition, refs resource.Refs) TaskDefinitionModel {
	s := r.Spec
	c := s.Container
	m := TaskDefinitionModel{
		CPU: strconv.Itoa(s.CPU), Memory: strconv.Itoa(s.Memory), NetworkMode: "awsvpc",
		RequiresCompatibilities: resource.Set{"FARGATE"},
		ExecutionRoleARN:        s.ExecutionRoleARN.Resolve(refs),
		TaskRoleARN:             s.TaskRoleARN.Resolve(refs),
		Container: &ContainerModel{
			Name: c.Name, Image: c.Image, Command: c.Command, Essential: true,
			LogDriver: aws.String(string(ecstypes.LogDriverAwslogs)),
			Health: &resource.JSON[health]{V: health{c.HealthCheck.Command, c.HealthCheck.Interval,
				c.HealthCheck.Timeout, c.HealthCheck.Retries, c.HealthCheck.StartPeriod}},
			Secrets: map[string]string{}, LogOpts: maps.Clone(c.LogOptions),
		},
	}
	m.Container.Env, m.Container.Derived = splitEnv(c.Environment, c.Derived)
	for k, ref := range c.Secrets {
		m.Container.Secrets[k] = ref.Resolve(refs)
	}
	return m
}

// OutputsChangedByUpdate: an update registers a new revision.
func (taskDefinitionKind) OutputsChangedByUpdate(*taskDefinition) []string {
	return []string{"arn", "revision"}
}

func (taskDefinitionKind) Read(ctx context.Context, x *x, r *taskDefinition) (*foundTaskDefinition, error) {
	s := r.Spec
	which := s.Family
	if s.Service != "" {
		svc, err := describeService(ctx, x, s.Cluster, s.Service)
		if err != nil {
			return nil, err
		}
		if used := taskDefinitionOf(svc); used != "" && familyOf(used) == s.Family {
			which = used
		}
	}
	out, err := x.API.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{
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
	return foundRevision(s, out), nil
}

// ARNTypes and Adopt: a family tagged for the environment that its stack
// does not have is read as its newest ACTIVE revision, and its Delete
// removes every revision. Its other revisions are listed too; they are
// that family's, so only the newest is adopted (the others read as nil).
func (k taskDefinitionKind) ARNTypes() []string { return []string{"ecs:task-definition"} }

func (k taskDefinitionKind) Adopt(ctx context.Context, x *x, arn string) (*taskDefinition, *foundTaskDefinition, error) {
	family := familyOf(arn)
	td := &taskDefinition{Name: family, Spec: &TaskDefinitionSpec{Family: family}}
	f, err := k.Read(ctx, x, td)
	if err != nil || f == nil || f.ARN != arn {
		return nil, nil, err
	}
	return td, f, nil
}

// foundRevision is a revision as Read and register see it.
func foundRevision(s *TaskDefinitionSpec, out *awsecs.DescribeTaskDefinitionOutput) *foundTaskDefinition {
	td := out.TaskDefinition
	arn := aws.ToString(td.TaskDefinitionArn)
	f := &foundTaskDefinition{ID: arn, ARN: arn, Tags: awstags.ECSMap(out.Tags),
		// Every revision of the family: Delete deregisters and deletes them all.
		Covers: []string{arn[:strings.LastIndex(arn, ":")+1]},
		Model: TaskDefinitionModel{
			CPU: aws.ToString(td.Cpu), Memory: aws.ToString(td.Memory), NetworkMode: string(td.NetworkMode),
			ExecutionRoleARN: aws.ToString(td.ExecutionRoleArn), TaskRoleARN: aws.ToString(td.TaskRoleArn),
		},
		Outputs: resource.Outputs{"arn": arn, "family": s.Family, "revision": strconv.Itoa(int(td.Revision))}}
	for _, c := range td.RequiresCompatibilities {
		f.Model.RequiresCompatibilities = append(f.Model.RequiresCompatibilities, string(c))
	}
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) == s.Container.Name {
			f.Model.Container = containerModel(c, s.Container.Derived)
		}
	}
	return f
}

// splitEnv splits a container's environment into what the file sets and
// what deploybot derives (the derived names).
func splitEnv(all map[string]string, derived []string) (set, rest map[string]string) {
	set, rest = map[string]string{}, map[string]string{}
	for k, v := range all {
		if slices.Contains(derived, k) {
			rest[k] = v
		} else {
			set[k] = v
		}
	}
	return set, rest
}

func containerModel(c ecstypes.ContainerDefinition, derived []string) *ContainerModel {
	m := &ContainerModel{Name: aws.ToString(c.Name), Image: aws.ToString(c.Image), Command: c.Command,
		Essential: c.Essential == nil || *c.Essential, Secrets: map[string]string{}}
	env := map[string]string{}
	for _, e := range c.Environment {
		env[aws.ToString(e.Name)] = aws.ToString(e.Value)
	}
	m.Env, m.Derived = splitEnv(env, derived)
	for _, s := range c.Secrets {
		m.Secrets[aws.ToString(s.Name)] = aws.ToString(s.ValueFrom)
	}
	if lc := c.LogConfiguration; lc != nil {
		m.LogDriver, m.LogOpts = aws.String(string(lc.LogDriver)), lc.Options
	}
	if hc := c.HealthCheck; hc != nil {
		m.Health = &resource.JSON[health]{V: health{hc.Command, aws.ToInt32(hc.Interval), aws.ToInt32(hc.Timeout),
			aws.ToInt32(hc.Retries), aws.ToInt32(hc.StartPeriod)}}
	}
	return m
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

// register registers r's definition as a new revision. An update first
// takes the newest revision when it is already that (registered); a create
// need not look: its plan found no ACTIVE revision at all.
func register(ctx context.Context, x *x, r *taskDefinition, refs resource.Refs, update bool) (resource.Outputs, error) {
	s := r.Spec
	c := s.Container
	in := &awsecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(s.Family),
		Cpu:                     aws.String(strconv.Itoa(s.CPU)),
		Memory:                  aws.String(strconv.Itoa(s.Memory)),
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		ExecutionRoleArn:        aws.String(s.ExecutionRoleARN.Resolve(refs)),
		TaskRoleArn:             aws.String(s.TaskRoleARN.Resolve(refs)),
		Tags:                    awstags.ECSList(r.Tags),
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
	for _, k := range slices.Sorted(maps.Keys(c.Environment)) {
		def.Environment = append(def.Environment, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(c.Environment[k])})
	}
	for _, k := range slices.Sorted(maps.Keys(c.Secrets)) {
		from := c.Secrets[k].Resolve(refs)
		if from == plan.Unknown {
			return nil, fmt.Errorf("task definition %s: secret %s has no ARN yet", s.Family, k)
		}
		def.Secrets = append(def.Secrets, ecstypes.Secret{Name: aws.String(k), ValueFrom: aws.String(from)})
	}
	in.ContainerDefinitions = []ecstypes.ContainerDefinition{def}

	unlock := lockFamily(s.Family)
	defer unlock()
	if update {
		f, err := registered(ctx, x, r, refs)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return f.Outputs, nil
		}
	}
	out, err := x.API.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("RegisterTaskDefinition %s: %w", s.Family, err)
	}
	td := out.TaskDefinition
	arn := aws.ToString(td.TaskDefinitionArn)
	x.Say(r.Address, "registered "+arn)
	return resource.Outputs{"arn": arn, "family": s.Family, "revision": strconv.Itoa(int(td.Revision))}, nil
}

func (taskDefinitionKind) Create(ctx context.Context, x *x, r *taskDefinition, refs resource.Refs) (resource.Outputs, error) {
	return register(ctx, x, r, refs, false)
}

// registered returns the family's newest ACTIVE revision when it is this
// environment's and already what r asks for (tags aside, which it sets),
// else nil. The service may not run it yet: a run that registered it died
// before updating the service, and the re-run's plan, which compares with
// the revision the service runs, asks for it again. Registering is not
// idempotent (every call makes a revision), so it is taken instead of
// registering the same definition twice.
func registered(ctx context.Context, x *x, r *taskDefinition, refs resource.Refs) (*foundTaskDefinition, error) {
	out, err := x.API.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(r.Spec.Family),
		Include:        []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeTaskDefinition %s: %w", r.Spec.Family, err)
	}
	if out.TaskDefinition == nil || out.TaskDefinition.Status != ecstypes.TaskDefinitionStatusActive {
		return nil, nil
	}
	f := foundRevision(r.Spec, out)
	want := resource.Normalize(taskDefinitionKind{}.Desired(r, refs))
	if !resource.IsOurs(r.Tags, f.Tags) || !resource.Equal(want, resource.Normalize(f.Model)) {
		return nil, nil
	}
	if err := awstags.ECS(x.API).Apply(ctx, f.ID, resource.Tags(r.Tags, f.Tags)); err != nil {
		return nil, err
	}
	x.Say(r.Address, "already registered: "+f.ARN)
	return f, nil
}

// Update registers a new revision, except when only tags changed: those are
// changed on the live revision in place.
func (taskDefinitionKind) Update(ctx context.Context, x *x, r *taskDefinition, d *resource.Delta[TaskDefinitionModel, struct{}], refs resource.Refs) (resource.Outputs, error) {
	if d.OnlyTags() {
		if err := awstags.ECS(x.API).Apply(ctx, d.Found.ID, d.Tags); err != nil {
			return nil, err
		}
		return d.Found.Outputs, nil
	}
	return register(ctx, x, r, refs, true)
}

// Delete deregisters every ACTIVE revision of the family, then deletes the
// INACTIVE ones (docs/research/aws-ecs.md §5.3 step 5).
func (taskDefinitionKind) Delete(ctx context.Context, x *x, r *taskDefinition, _ *foundTaskDefinition) error {
	family := r.Spec.Family
	unlock := lockFamily(family)
	defer unlock()
	active, err := listRevisions(ctx, x, family, ecstypes.TaskDefinitionStatusActive)
	if err != nil {
		return err
	}
	for _, arn := range active {
		if _, err := x.API.DeregisterTaskDefinition(ctx, &awsecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeregisterTaskDefinition %s: %w", arn, err)
		}
	}
	if len(active) > 0 {
		x.Say(r.Address, fmt.Sprintf("deregistered %d revision(s) of %s", len(active), family))
	}
	inactive, err := listRevisions(ctx, x, family, ecstypes.TaskDefinitionStatusInactive)
	if err != nil {
		return err
	}
	for start := 0; start < len(inactive); start += 10 { // DeleteTaskDefinitions takes at most 10
		batch := inactive[start:min(start+10, len(inactive))]
		out, err := x.API.DeleteTaskDefinitions(ctx, &awsecs.DeleteTaskDefinitionsInput{TaskDefinitions: batch})
		if err != nil {
			return fmt.Errorf("DeleteTaskDefinitions %s: %w", family, err)
		}
		for _, f := range out.Failures {
			// Already being deleted is what we want.
			if !strings.Contains(aws.ToString(f.Reason), "DELETE_IN_PROGRESS") {
				return fmt.Errorf("DeleteTaskDefinitions %s: %s: %s", family, aws.ToString(f.Arn), aws.ToString(f.Reason))
			}
		}
	}
	return nil
}

// listRevisions lists the ARNs of family's revisions with status, only of
// that exact family.
func listRevisions(ctx context.Context, x *x, family string, status ecstypes.TaskDefinitionStatus) ([]string, error) {
	var arns []string
	p := awsecs.NewListTaskDefinitionsPaginator(x.API, &awsecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: status})
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
