// Package prefect holds the Prefect kind of a stack: the work pool whose
// ECS base job template sends the worker's flow runs to the stack's
// cluster, network, roles and log group (docs/research/prefect-flow-runs.md
// §A). It talks to Prefect through the run's Prefect API client
// (resource.APIs.Prefect), and to nothing of AWS.
package prefect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	prefectapi "github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/resource"
)

// KindWorkPool is the work pool kind.
const KindWorkPool resource.KindName = "prefect_work_pool"

// PoolAPI is what the work pool kind calls of Prefect (*prefect.Client).
type PoolAPI interface {
	ReadWorkPool(ctx context.Context, name string) (*prefectapi.WorkPool, error)
	CreateWorkPool(ctx context.Context, in prefectapi.WorkPoolCreate) (*prefectapi.WorkPool, error)
	UpdateWorkPool(ctx context.Context, name string, in prefectapi.WorkPoolUpdate) error
	DeleteWorkPool(ctx context.Context, name string) (bool, error)
}

var _ PoolAPI = (*prefectapi.Client)(nil)

// The variables of the ECS job template whose top-level defaults deploybot
// owns (docs/research/prefect-flow-runs.md §A.3, §A.5): it sets them, shows
// a change to any of them as drift, and leaves every other key of the
// template as it finds it. Only top-level variables.properties.X.default
// values reach the worker (§A.4).
const (
	VarCluster              = "cluster"
	VarVPC                  = "vpc_id"
	VarNetwork              = "network_configuration"
	VarExecutionRole        = "execution_role_arn"
	VarTaskRole             = "task_role_arn"
	VarAPIKeySecret         = "prefect_api_key_secret_arn"
	VarAuthStringSecret     = "prefect_api_auth_string_secret_arn"
	VarCloudWatchLogs       = "configure_cloudwatch_logs"
	VarCloudWatchLogOptions = "cloudwatch_logs_options"
	VarImage                = "image"
	VarCPU                  = "cpu"
	VarMemory               = "memory"
	VarEnv                  = "env"
	VarMatchLatestRevision  = "match_latest_revision_in_family"
)

// OwnedVariables are the variables whose defaults deploybot owns, in the
// order plans list them.
var OwnedVariables = []string{VarCluster, VarVPC, VarNetwork, VarExecutionRole, VarTaskRole,
	VarAPIKeySecret, VarAuthStringSecret, VarCloudWatchLogs, VarCloudWatchLogOptions,
	VarImage, VarCPU, VarMemory, VarEnv, VarMatchLatestRevision}

// WorkPoolSpec is the environment's work pool.
type WorkPoolSpec struct {
	Name string
	// Environment is the environment the pool serves: a pool deploybot
	// creates is marked with it (Description).
	Environment string
	// Create: create the pool when it does not exist (prefect.create_work_pool).
	Create bool
	// Defaults are the job template defaults deploybot owns.
	Defaults JobDefaults
}

// JobDefaults are the flow runs' defaults: where they run, as whom, how
// big, with which image, environment and logs.
type JobDefaults struct {
	ClusterARN     string
	VPC            resource.Ref
	Subnets        []resource.Ref
	SecurityGroups []resource.Ref
	AssignPublicIP bool
	ExecutionRole  string
	TaskRole       string
	// Secret is the Prefect credentials' secret, injected into each flow
	// run from SecretVariable (VarAPIKeySecret, or VarAuthStringSecret for
	// a self-hosted server with basic auth); the other secret variable
	// stays unset: prefect-aws removes PREFECT_API_KEY from the run's
	// environment whenever prefect_api_key_secret_arn is set, and a worker
	// without that variable then fails every run with a KeyError
	// (docs/research/prefect-flow-runs.md §A.5).
	Secret         resource.Ref
	SecretVariable string
	LogGroup       string
	Region         string
	StreamPrefix   string
	Image          string
	CPU, Memory    int
	Env            map[string]string
}

// WorkPoolModel is what a plan compares of a pool: its type and the
// defaults deploybot owns, each as ShowValue shows it (a default that is
// not set, or null, is absent).
type WorkPoolModel struct {
	Type     string            `attr:"type"`
	Defaults map[string]string `attr:"defaults"`
}

// WorkPoolDetail is what Update and Delete need of a live pool.
type WorkPoolDetail struct {
	// Template is the pool's whole base job template as Prefect holds it.
	Template map[string]any
	// CreatedByDeploybot: its description carries this environment's
	// creation marker (markerRE): a destroy deletes it.
	CreatedByDeploybot bool
}

// WorkPool is the work pool kind.
var WorkPool = resource.Define[WorkPoolSpec, WorkPoolModel, WorkPoolDetail, PoolAPI](KindWorkPool, poolKind{},
	func(a resource.APIs) (PoolAPI, error) {
		if a.Prefect == nil {
			return nil, nil // Read says the pool was not read
		}
		api, ok := a.Prefect.(PoolAPI)
		if !ok {
			return nil, fmt.Errorf("the run's Prefect client (%T) cannot manage work pools", a.Prefect)
		}
		return api, nil
	}, resource.Untagged())

type poolKind struct{}

type (
	x     = resource.Context[PoolAPI]
	pool  = resource.Typed[WorkPoolSpec]
	found = resource.Found[WorkPoolModel, WorkPoolDetail]
)

// Desired implements resource.Impl.
func (poolKind) Desired(r *pool, refs resource.Refs) WorkPoolModel {
	m := WorkPoolModel{Type: "ecs", Defaults: map[string]string{}}
	for k, v := range r.Spec.Defaults.values(refs) {
		if v != nil {
			m.Defaults[k] = ShowValue(v)
		}
	}
	return m
}

// values are the owned variables' desired defaults as JSON values; nil
// for a variable that must have none.
func (d JobDefaults) values(refs resource.Refs) map[string]any {
	public := "DISABLED"
	if d.AssignPublicIP {
		public = "ENABLED"
	}
	subnets := make([]any, 0, len(d.Subnets))
	for _, s := range resource.ResolveAll(refs, d.Subnets) {
		subnets = append(subnets, s)
	}
	groups := make([]any, 0, len(d.SecurityGroups))
	for _, g := range resource.ResolveAll(refs, d.SecurityGroups) {
		groups = append(groups, g)
	}
	secretVar := d.SecretVariable
	if secretVar == "" {
		secretVar = VarAPIKeySecret
	}
	v := map[string]any{
		VarCluster: d.ClusterARN,
		VarVPC:     d.VPC.Resolve(refs),
		// awsvpcConfiguration's content, at the top level of the variable
		// (not nested under properties as prefect-aws's own deployer
		// writes it, where the worker never reads it: §A.5).
		VarNetwork: map[string]any{
			"subnets":        subnets,
			"securityGroups": groups,
			"assignPublicIp": public,
		},
		VarExecutionRole:    d.ExecutionRole,
		VarTaskRole:         d.TaskRole,
		VarAPIKeySecret:     nil,
		VarAuthStringSecret: nil,
		// The awslogs driver to the stack's own group, which exists: the
		// execution role then needs no logs:CreateLogGroup (§A.6).
		VarCloudWatchLogs: true,
		VarCloudWatchLogOptions: map[string]any{
			"awslogs-group":         d.LogGroup,
			"awslogs-create-group":  "false",
			"awslogs-region":        d.Region,
			"awslogs-stream-prefix": d.StreamPrefix,
		},
		VarImage:  d.Image,
		VarCPU:    jsonInt(d.CPU),
		VarMemory: jsonInt(d.Memory),
		VarEnv:    nil,
		// A new worker reuses the family's latest revision when it is the
		// same, instead of registering one per deployment and restart
		// (§A.7).
		VarMatchLatestRevision: true,
	}
	v[secretVar] = d.Secret.Resolve(refs)
	if len(d.Env) > 0 {
		env := map[string]any{}
		for k, val := range d.Env {
			env[k] = val
		}
		v[VarEnv] = env
	}
	return v
}

func jsonInt(n int) any { return jsonNumber(fmt.Sprint(n)) }

// Read implements resource.Impl.
func (poolKind) Read(ctx context.Context, x *x, r *pool) (*found, error) {
	if x.API == nil {
		return nil, &resource.UnreadableError{Reason: "no Prefect API key was given, so the work pool " + r.Name + " and its job template were not read: set PREFECT_API_KEY for the CLI, or pass the Action its prefect-api-key input"}
	}
	wp, err := x.API.ReadWorkPool(ctx, r.Name)
	switch status := prefectapi.StatusOf(err); {
	case err == nil:
	case status == http.StatusNotFound:
		return nil, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, &resource.UnreadableError{Reason: "Prefect refused the credentials to read the work pool " + r.Name + ": " + err.Error()}
	case status == 0 || status >= 500:
		// Prefect unreachable or down after the client's retries: the AWS
		// side is still planned (an apply refuses the plan).
		return nil, &resource.UnreadableError{Reason: "Prefect did not answer the read of the work pool " + r.Name + ": " + err.Error()}
	default:
		return nil, err
	}
	return foundOf(r, wp)
}

// foundOf is a pool Prefect answered as the kind's live state.
func foundOf(r *pool, wp *prefectapi.WorkPool) (*found, error) {
	if wp.Type != "ecs" {
		return nil, fmt.Errorf("work pool %q is of type %q, not ecs: deploybot's worker runs `prefect worker start --type ecs`, and its job template is the ECS one; point prefect.work_pool at an ecs pool", r.Name, wp.Type)
	}
	owner := markedFor(wp.Description)
	if owner != "" && owner != r.Spec.Environment {
		return nil, fmt.Errorf("work pool %q was created by deploybot for environment %q: two environments cannot share a pool (each would set its job template to its own cluster); give %s its own prefect.work_pool", r.Name, owner, r.Spec.Environment)
	}
	t := wp.BaseJobTemplate
	if t == nil {
		t = map[string]any{}
	}
	m := WorkPoolModel{Type: wp.Type, Defaults: map[string]string{}}
	props := properties(t)
	for _, k := range OwnedVariables {
		if v, ok := defaultOf(props, k); ok {
			m.Defaults[k] = v
		}
	}
	return &found{ID: wp.ID, Model: m, Outputs: resource.Outputs{"id": wp.ID, "name": wp.Name},
		Detail: WorkPoolDetail{Template: t, CreatedByDeploybot: owner == r.Spec.Environment}}, nil
}

// The description of a pool deploybot creates says so, with the
// environment, in words a person reads in the Prefect UI and a marker
// deploybot reads back: only such a pool is deleted by a destroy.
var markerRE = regexp.MustCompile(`\(deploybot:environment=([a-z][a-z0-9-]*)\)`)

// Description is what deploybot writes into a pool it creates.
func Description(environment string) string {
	return "Created by deploybot for environment " + environment + " (deploybot:environment=" + environment + "). " +
		"deploybot sets its job template's defaults; destroying the environment deletes this pool."
}

// markedFor is the environment a pool's description says deploybot created
// it for, or "".
func markedFor(description *string) string {
	if description == nil {
		return ""
	}
	if m := markerRE.FindStringSubmatch(*description); m != nil {
		return m[1]
	}
	return ""
}

// withDefaults is t (or prefect-aws's default template when t is empty)
// with the spec's defaults set and everything else as it was.
func withDefaults(t map[string]any, d JobDefaults, refs resource.Refs) (map[string]any, error) {
	if isEmpty(t) {
		t = DefaultTemplate()
	} else {
		t = deepCopy(t).(map[string]any)
	}
	values := d.values(refs)
	for _, k := range OwnedVariables {
		v := values[k]
		if v == nil {
			resetDefault(t, k)
			continue
		}
		if strings.Contains(ShowValue(v), unknown) {
			return nil, fmt.Errorf("the %s default names a resource that does not exist yet", k)
		}
		setDefault(t, k, v)
	}
	return t, nil
}

// Create implements resource.Impl: a pool is created only when the file
// says so (prefect.create_work_pool), marked as deploybot's.
func (k poolKind) Create(ctx context.Context, x *x, r *pool, refs resource.Refs) (resource.Outputs, error) {
	if x.API == nil {
		return nil, errors.New("no Prefect API client: the work pool cannot be created")
	}
	if !r.Spec.Create {
		return nil, fmt.Errorf("work pool %q does not exist: create it with `prefect work-pool create %q --type ecs`, or set prefect.create_work_pool: true", r.Name, r.Name)
	}
	t, err := withDefaults(nil, r.Spec.Defaults, refs)
	if err != nil {
		return nil, err
	}
	desc := Description(r.Spec.Environment)
	wp, err := x.API.CreateWorkPool(ctx, prefectapi.WorkPoolCreate{Name: r.Name, Type: "ecs", Description: &desc, BaseJobTemplate: t})
	if prefectapi.StatusOf(err) == http.StatusConflict {
		// Created meanwhile (by a worker that started first, or by a run
		// that died after its create): set its defaults.
		live, err := k.Read(ctx, x, r)
		if err != nil {
			return nil, err
		}
		if live == nil {
			return nil, fmt.Errorf("work pool %q: Prefect says it exists but cannot find it", r.Name)
		}
		return k.update(ctx, x, r, refs)
	}
	if prefectapi.StatusOf(err) == http.StatusForbidden {
		hint := "the Prefect API key may not create work pools (that needs at least the Developer role)"
		if strings.Contains(strings.ToLower(err.Error()), "plan does not support") {
			hint = "this Prefect Cloud plan does not allow hybrid (ecs) work pools (Hobby has managed pools only): upgrade the plan, or use a workspace that allows them"
		}
		return nil, fmt.Errorf("create work pool %q: %s: %w", r.Name, hint, err)
	}
	if err != nil {
		return nil, err
	}
	return resource.Outputs{"id": wp.ID, "name": wp.Name}, nil
}

// Update implements resource.Impl: the pool's template as Prefect holds it
// now (read again: PATCH replaces the whole template, and what changed
// since the plan's read must not be lost), with deploybot's defaults set.
func (k poolKind) Update(ctx context.Context, x *x, r *pool, _ *resource.Delta[WorkPoolModel, WorkPoolDetail], refs resource.Refs) (resource.Outputs, error) {
	return k.update(ctx, x, r, refs)
}

func (poolKind) update(ctx context.Context, x *x, r *pool, refs resource.Refs) (resource.Outputs, error) {
	if x.API == nil {
		return nil, errors.New("no Prefect API client: the work pool cannot be changed")
	}
	wp, err := x.API.ReadWorkPool(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	live, err := foundOf(r, wp)
	if err != nil {
		return nil, err
	}
	t, err := withDefaults(live.Detail.Template, r.Spec.Defaults, refs)
	if err != nil {
		return nil, err
	}
	if err := x.API.UpdateWorkPool(ctx, r.Name, prefectapi.WorkPoolUpdate{BaseJobTemplate: t}); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// Delete implements resource.Impl: a pool deploybot created is deleted;
// any other keeps everything but the defaults deploybot set, which go back
// to prefect-aws's (DeleteReason says which in the plan).
func (poolKind) Delete(ctx context.Context, x *x, r *pool, _ *found) error {
	if x.API == nil {
		return errors.New("no Prefect API client: the work pool cannot be reset or deleted")
	}
	wp, err := x.API.ReadWorkPool(ctx, r.Name)
	if prefectapi.StatusOf(err) == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	live, err := foundOf(r, wp)
	if err != nil {
		return err
	}
	if live.Detail.CreatedByDeploybot {
		_, err := x.API.DeleteWorkPool(ctx, r.Name)
		return err
	}
	t := live.Detail.Template
	if isEmpty(t) {
		return nil // nothing of deploybot's in it
	}
	t = deepCopy(t).(map[string]any)
	for _, k := range OwnedVariables {
		resetDefault(t, k)
	}
	return x.API.UpdateWorkPool(ctx, r.Name, prefectapi.WorkPoolUpdate{BaseJobTemplate: t})
}

// DeleteReason implements resource.TypedDeleteExplainer.
func (poolKind) DeleteReason(live *found) string {
	if live.Detail.CreatedByDeploybot {
		return "deploybot created this work pool for the environment (its description says so): destroy deletes it, and deployments that use it keep existing without a pool"
	}
	set := slices.Sorted(maps.Keys(live.Model.Defaults))
	if len(set) == 0 {
		return "deploybot did not create this work pool, and none of the defaults it sets are set: destroy leaves it as it is"
	}
	return "deploybot did not create this work pool: destroy keeps it and resets only the defaults deploybot sets (" + strings.Join(set, ", ") +
		") to prefect-aws's; the rest of its job template stays as it is"
}

// RestoreDefaults puts back the defaults deploybot owns as they were in
// before (a live pool as a plan read it, before an apply changed it), and
// leaves every other key of the pool's template as Prefect holds it now.
// The health gate's rollback uses it: a rollback of the worker's revision
// alone would leave flow runs on the job template the failed deploy wrote
// (its image, roles or network), so that the previous worker could not
// run flows either. restored is false when there was nothing to put back.
func RestoreDefaults(ctx context.Context, api PoolAPI, name string, before *resource.Live) (restored bool, err error) {
	f := resource.FoundOf[WorkPoolModel, WorkPoolDetail](before)
	if f == nil || isEmpty(f.Detail.Template) {
		return false, nil
	}
	wp, err := api.ReadWorkPool(ctx, name)
	if err != nil {
		return false, err
	}
	t := wp.BaseJobTemplate
	if isEmpty(t) {
		t = DefaultTemplate()
	} else {
		t = deepCopy(t).(map[string]any)
	}
	old := properties(f.Detail.Template)
	for _, k := range OwnedVariables {
		p, _ := old[k].(map[string]any)
		if v, ok := p["default"]; ok && v != nil {
			setDefault(t, k, deepCopy(v))
		} else {
			resetDefault(t, k)
		}
	}
	return true, api.UpdateWorkPool(ctx, name, prefectapi.WorkPoolUpdate{BaseJobTemplate: t})
}
