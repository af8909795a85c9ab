package prefect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	prefectapi "github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/resource"
)

// KindDeployment is the smoke deployment kind: the Prefect deployment of a
// tiny self-contained flow that the health gate runs once per deploy
// (internal/gate, docs/research/prefect-flow-runs.md §C, §D).
const KindDeployment resource.KindName = "prefect_deployment"

// DeploymentAPI is what the smoke deployment kind calls of Prefect
// (*prefect.Client).
type DeploymentAPI interface {
	CreateFlow(ctx context.Context, name string) (*prefectapi.Flow, error)
	ReadDeploymentByName(ctx context.Context, flow, name string) (*prefectapi.Deployment, error)
	UpsertDeployment(ctx context.Context, d prefectapi.DeploymentCreate) (*prefectapi.Deployment, bool, error)
	DeleteDeployment(ctx context.Context, id string) (bool, error)
}

var _ DeploymentAPI = (*prefectapi.Client)(nil)

// SmokeFlow is the smoke flow's name, for the flow the deployment belongs
// to and in the flow's source (they must agree, §D.3).
const SmokeFlow = "deploybot-smoke"

// SmokeEntrypoint is where the pull step writes the flow and what the
// engine loads: a file in the run's working directory (the workspace
// /tmp/prefect-flow-run-… on Prefect ≥ 3.7, the image's /opt/prefect
// before: §D.1, §D.3).
const SmokeEntrypoint = "smoke.py:smoke"

// smokeSource is the flow (§D.2): it needs only Prefect itself, so it runs
// in whatever image the work pool gives flow runs, with no storage.
const smokeSource = `from prefect import flow


@flow(name="` + SmokeFlow + `", log_prints=True)
def smoke():
    print("deploybot smoke flow run: OK")
`

// DeploymentSpec is the smoke deployment of an environment.
type DeploymentSpec struct {
	// Flow and Name name the deployment ("deploybot-smoke/<environment>").
	Flow, Name string
	// WorkPool and WorkQueue are where its runs go: the environment's pool,
	// and a queue of deploybot's own, which no team's deployment uses.
	WorkPool, WorkQueue string
	// Defaults, when set, are the pool's defaults as the file asks for
	// them, sent as the deployment's own job variables: Prefect lays a
	// deployment's job variables over the pool's defaults
	// (docs/research/prefect-flow-runs.md §A.4), so the smoke run gets the
	// new settings while the pool still has the old ones. A default
	// deploybot resets (nil) is not sent: a job variable cannot unset one.
	Defaults *JobDefaults
	// JobVariables override the pool's defaults (and Defaults) for its
	// runs (the smallest Fargate size: the run only imports Prefect and
	// prints a line).
	JobVariables map[string]any
	Description  string
}

// DeploymentModel is what a plan compares of the smoke deployment.
type DeploymentModel struct {
	WorkPool   string `attr:"work_pool"`
	WorkQueue  string `attr:"work_queue"`
	Entrypoint string `attr:"entrypoint"`
	// PullSteps names the pull steps and their digest: the step writes the
	// flow's source in base64, which a reviewer cannot read, and a change to
	// any of it shows as a change of the digest.
	PullSteps              string `attr:"pull_steps"`
	ParameterSchema        string `attr:"parameter_schema"`
	EnforceParameterSchema bool   `attr:"enforce_parameter_schema"`
	JobVariables           string `attr:"job_variables"`
	// PoolDefaults are its other job variables, the pool's defaults as the
	// file asks for them (DeploymentSpec.Defaults), by their digest: the
	// plan shows them once, in the work pool's block.
	PoolDefaults string `attr:"pool_defaults"`
	Paused       bool   `attr:"paused"`
}

// Deployment is the smoke deployment kind. Its labels are its tags: the
// environment's tag on them tells deploybot's deployment from another one
// of the same name.
var Deployment = resource.Define[DeploymentSpec, DeploymentModel, struct{}, DeploymentAPI](KindDeployment, deploymentKind{},
	func(a resource.APIs) (DeploymentAPI, error) {
		if a.Prefect == nil {
			return nil, nil // Read says the deployment was not read
		}
		api, ok := a.Prefect.(DeploymentAPI)
		if !ok {
			return nil, fmt.Errorf("the run's Prefect client (%T) cannot manage deployments", a.Prefect)
		}
		return api, nil
	})

type deploymentKind struct{}

type (
	xd         = resource.Context[DeploymentAPI]
	deployment = resource.Typed[DeploymentSpec]
	foundDep   = resource.Found[DeploymentModel, struct{}]
)

// pullSteps is the one step that writes the flow file (§D.2): a single
// `python -c` line, because run_shell_script runs each line as one process
// without a shell before Prefect 3.6.23 (no redirection, no heredoc), and
// the source in base64 so that nothing in it needs quoting; python is in
// every Prefect image.
func pullSteps() []map[string]any {
	b64 := base64.StdEncoding.EncodeToString([]byte(smokeSource))
	return []map[string]any{{"prefect.deployments.steps.run_shell_script": map[string]any{
		"id":            "write-smoke-flow",
		"stream_output": true,
		"script":        `python -c "import base64,pathlib;pathlib.Path('smoke.py').write_bytes(base64.b64decode('` + b64 + `'))"`,
	}}}
}

// parameterSchema is the flow's (no parameters), sent explicitly: the
// server enforces a deployment's schema by default, and create_flow_run
// answers 409 for a deployment without one (§C.2).
func parameterSchema() map[string]any {
	return map[string]any{"type": "object", "properties": map[string]any{}}
}

func canonical(v any) string {
	if v == nil {
		return ""
	}
	// Through any, so that a struct and what Prefect answers for it (maps
	// with float64 numbers) print the same: maps are sorted by Marshal.
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var x any
	if json.Unmarshal(b, &x) != nil {
		return string(b)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

// jobVariables are the deployment's job variables: Defaults (without
// those reset) with JobVariables on top.
func (s DeploymentSpec) jobVariables(refs resource.Refs) map[string]any {
	out := map[string]any{}
	if s.Defaults != nil {
		for k, v := range s.Defaults.values(refs) {
			if v != nil {
				out[k] = v
			}
		}
	}
	maps.Copy(out, s.JobVariables)
	return out
}

// Desired implements resource.Impl.
func (deploymentKind) Desired(r *deployment, refs resource.Refs) DeploymentModel {
	s := r.Spec
	own, pool := s.split(s.jobVariables(refs))
	return DeploymentModel{WorkPool: s.WorkPool, WorkQueue: s.WorkQueue, Entrypoint: SmokeEntrypoint,
		PullSteps: describeSteps(pullSteps()), ParameterSchema: canonical(parameterSchema()), EnforceParameterSchema: true,
		JobVariables: canonical(own), PoolDefaults: describeDefaults(pool)}
}

// split parts job variables into the spec's own (JobVariables' keys) and
// the rest (the pool's defaults).
func (s DeploymentSpec) split(vars map[string]any) (own, pool map[string]any) {
	own, pool = map[string]any{}, map[string]any{}
	for k, v := range vars {
		if _, ok := s.JobVariables[k]; ok {
			own[k] = v
		} else {
			pool[k] = v
		}
	}
	return own, pool
}

// describeDefaults is how a plan shows the pool's defaults the deployment
// carries: their digest ("none" without any; unknown while a value is).
func describeDefaults(vars map[string]any) string {
	if len(vars) == 0 {
		return "none"
	}
	c := canonical(vars)
	if strings.Contains(c, unknown) {
		return unknown
	}
	sum := sha256.Sum256([]byte(c))
	return "the work pool's defaults (sha256 " + hex.EncodeToString(sum[:])[:12] + ")"
}

// describeSteps is how a plan shows pull steps: each step's function and
// id, and a digest of them all.
func describeSteps(steps []map[string]any) string {
	if len(steps) == 0 {
		return "none"
	}
	var names []string
	for _, st := range steps {
		for fn, raw := range st {
			name := fn[strings.LastIndex(fn, ".")+1:]
			if args, ok := raw.(map[string]any); ok {
				if id, ok := args["id"].(string); ok && id != "" {
					name += " " + id
				}
			}
			names = append(names, name)
		}
	}
	sum := sha256.Sum256([]byte(canonical(steps)))
	return strings.Join(names, ", ") + " (sha256 " + hex.EncodeToString(sum[:])[:12] + ")"
}

func orEmptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Read implements resource.Impl.
func (deploymentKind) Read(ctx context.Context, x *xd, r *deployment) (*foundDep, error) {
	if x.API == nil {
		return nil, &resource.UnreadableError{Reason: "no Prefect credentials were given, so the health gate's smoke deployment " + r.Spec.Flow + "/" + r.Spec.Name +
			" was not read: set PREFECT_API_KEY (or PREFECT_API_AUTH_STRING) for the CLI, or pass the Action its prefect-api-key (or prefect-auth-string) input"}
	}
	d, err := x.API.ReadDeploymentByName(ctx, r.Spec.Flow, r.Spec.Name)
	switch status := prefectapi.StatusOf(err); {
	case err == nil:
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, &resource.UnreadableError{Reason: "Prefect refused the credentials to read the smoke deployment: " + err.Error()}
	case status == 0 || status >= 500:
		return nil, &resource.UnreadableError{Reason: "Prefect did not answer the read of the smoke deployment: " + err.Error()}
	default:
		return nil, err
	}
	if d == nil {
		return nil, nil
	}
	return foundOfDeployment(*r.Spec, d), nil
}

func foundOfDeployment(s DeploymentSpec, d *prefectapi.Deployment) *foundDep {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}

	var schema any
	if d.ParameterOpenAPISchema != nil {
		schema = d.ParameterOpenAPISchema
	}
	m := DeploymentModel{WorkPool: str(d.WorkPoolName), WorkQueue: str(d.WorkQueueName), Entrypoint: str(d.Entrypoint),
		PullSteps: describeSteps(d.PullSteps), ParameterSchema: canonical(schema), EnforceParameterSchema: d.EnforceParameterSchema,
		Paused: d.Paused}
	own, pool := s.split(d.JobVariables)
	m.JobVariables, m.PoolDefaults = canonical(own), describeDefaults(pool)
	labels := map[string]string{}
	for k, v := range d.Labels {
		if s, ok := v.(string); ok {
			labels[k] = s
		}
	}
	return &foundDep{ID: d.ID, Tags: labels, Model: m, Outputs: resource.Outputs{"id": d.ID, "name": d.Name}}
}

// upsert writes every field deploybot owns (the upsert sets only the
// fields sent, §C.2), the tags as the deployment's labels.
func upsert(ctx context.Context, x *xd, r *deployment, refs resource.Refs) (resource.Outputs, error) {
	if x.API == nil {
		return nil, errors.New("no Prefect API client: the smoke deployment cannot be written")
	}
	s := r.Spec
	f, err := x.API.CreateFlow(ctx, s.Flow)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for k, v := range r.Tags {
		labels[k] = v
	}
	d, _, err := x.API.UpsertDeployment(ctx, prefectapi.DeploymentCreate{
		Name: s.Name, FlowID: f.ID, WorkPoolName: s.WorkPool, WorkQueueName: s.WorkQueue, Entrypoint: SmokeEntrypoint,
		PullSteps: pullSteps(), Parameters: map[string]any{}, ParameterOpenAPISchema: parameterSchema(), EnforceParameterSchema: true,
		JobVariables: s.jobVariables(refs), Paused: false, Tags: []string{"deploybot"}, Labels: labels, Description: s.Description,
	})
	if prefectapi.StatusOf(err) == http.StatusNotFound {
		return nil, fmt.Errorf("the smoke deployment's work pool %q does not exist: %w", s.WorkPool, err)
	}
	if err != nil {
		return nil, err
	}
	return resource.Outputs{"id": d.ID, "name": d.Name}, nil
}

// Create implements resource.Impl.
func (deploymentKind) Create(ctx context.Context, x *xd, r *deployment, refs resource.Refs) (resource.Outputs, error) {
	return upsert(ctx, x, r, refs)
}

// Update implements resource.Impl: the same upsert (it keeps the id).
func (deploymentKind) Update(ctx context.Context, x *xd, r *deployment, _ *resource.Delta[DeploymentModel, struct{}], refs resource.Refs) (resource.Outputs, error) {
	return upsert(ctx, x, r, refs)
}

// Delete implements resource.Impl. Prefect also deletes the deployment's
// SCHEDULED runs (§C.6); the flow stays (other environments' smoke
// deployments may belong to it, and a flow without deployments costs
// nothing).
func (deploymentKind) Delete(ctx context.Context, x *xd, r *deployment, live *foundDep) error {
	if x.API == nil {
		return errors.New("no Prefect API client: the smoke deployment cannot be deleted")
	}
	id := ""
	if live != nil {
		id = live.ID
	} else {
		d, err := x.API.ReadDeploymentByName(ctx, r.Spec.Flow, r.Spec.Name)
		if err != nil {
			return err
		}
		if d == nil {
			return nil
		}
		id = d.ID
	}
	_, err := x.API.DeleteDeployment(ctx, id)
	return err
}
