package prefect

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/deploybot/deploybot/internal/plan"
)

// The default base job template of prefect-aws's ECS worker, which
// deploybot writes, with its defaults set, into a pool whose template is
// empty (a pool created with only {name, type}, before any worker synced;
// a syncing worker would fill it with its own: docs/research/prefect-flow-runs.md
// §A.1) and into a pool it creates.
//
// It is ECSWorker.get_default_base_job_template() of prefect-aws 0.7.11
// (PrefectHQ/prefect tag prefect-aws-0.7.11, commit 3a42f2f6ed2d:
// src/integrations/prefect-aws/prefect_aws/workers/ecs_worker.py, the
// ECSJobConfiguration templates at lines 121-147 and 279-356 and the
// ECSVariables fields at 477-680, with BaseVariables' name, env, labels and
// command from src/prefect/workers/base.py:545-566), the same file as at
// the research's commit ce79dd3d6c (3.8.4.dev6), as JSON: the job
// configuration with every field's "{{ field }}" placeholder and the
// variables' JSON schema with its definitions, as
// src/prefect/workers/base.py:762-778 returns them. It is the product's own
// copy: the simulated Prefect (internal/prefectsim) keeps another, so that
// a mistake in one is caught by the other.
//
//go:embed ecs_base_job_template.json
var ecsBaseJobTemplate []byte

// DefaultTemplate returns a fresh copy of prefect-aws's default ECS base
// job template.
func DefaultTemplate() map[string]any {
	t, err := decodeTemplate(ecsBaseJobTemplate)
	if err != nil {
		panic(fmt.Sprintf("prefect: the embedded ECS base job template does not decode: %v", err)) // a build-time file
	}
	return t
}

func decodeTemplate(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		return nil, err
	}
	return t, nil
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// properties are a template's variables.properties (nil when it has none).
func properties(t map[string]any) map[string]any {
	vars, _ := t["variables"].(map[string]any)
	props, _ := vars["properties"].(map[string]any)
	return props
}

// isEmpty says whether a template is one no worker can use: {} (a pool
// created without one) or one without variables or job configuration.
func isEmpty(t map[string]any) bool {
	job, _ := t["job_configuration"].(map[string]any)
	return len(job) == 0 || properties(t) == nil
}

// defaultOf is a variable's top-level default as the plan shows it, and
// whether it has one (a null default is none: the worker drops the key,
// docs/research/prefect-flow-runs.md §A.4).
func defaultOf(props map[string]any, key string) (string, bool) {
	p, _ := props[key].(map[string]any)
	d, ok := p["default"]
	if !ok || d == nil {
		return "", false
	}
	return ShowValue(d), true
}

// ShowValue is a default as a plan shows it: a string as it is (unless it
// would read as another JSON value), anything else as compact JSON with
// keys sorted.
func ShowValue(v any) string {
	if s, ok := v.(string); ok {
		if s == plan.Unknown || !looksLikeJSON(s) {
			return s
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// looksLikeJSON says whether a string would read as a number, a boolean,
// null, an object, a list or a quoted string: such a string is shown
// quoted, so that "1024" and 1024 differ in a plan.
func looksLikeJSON(s string) bool {
	if s == "" {
		return true
	}
	var v any
	return json.Unmarshal([]byte(s), &v) == nil || strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")
}

// setDefault makes value the top-level default of variable key in t,
// keeping the variable's type, title and everything else. A variable the
// template does not declare is added with prefect-aws's declaration of it.
func setDefault(t map[string]any, key string, value any) {
	props := ensureProperties(t)
	p, ok := props[key].(map[string]any)
	if !ok {
		p = map[string]any{}
		if d, ok := properties(DefaultTemplate())[key].(map[string]any); ok {
			p = d
		}
		props[key] = p
	}
	p["default"] = value
}

// resetDefault gives variable key back the default prefect-aws's template
// has for it (null, false, or no default at all), leaving everything else
// of the variable as it is. A variable the template does not declare is
// left undeclared.
func resetDefault(t map[string]any, key string) {
	p, ok := properties(t)[key].(map[string]any)
	if !ok {
		return
	}
	if d, ok := properties(DefaultTemplate())[key].(map[string]any); ok {
		if v, has := d["default"]; has {
			p["default"] = v
			return
		}
	}
	delete(p, "default")
}

func ensureProperties(t map[string]any) map[string]any {
	vars, ok := t["variables"].(map[string]any)
	if !ok {
		vars = map[string]any{"type": "object"}
		t["variables"] = vars
	}
	props, ok := vars["properties"].(map[string]any)
	if !ok {
		props = map[string]any{}
		vars["properties"] = props
	}
	return props
}

// jsonNumber is a number as decoded templates hold them.
type jsonNumber = json.Number

// unknown is what a default shows while it names a resource not created yet.
const unknown = plan.Unknown
