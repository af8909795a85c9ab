package prefectsim

import (
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
)

// A work pool's base_job_template, kept as Prefect keeps it
// (docs/research/prefect-flow-runs.md §A): created as given (its defaults
// validated against its variables schema), replaced whole by PATCH with only
// its structure checked, and filled with the worker's own default by the
// first ECS worker that syncs with a pool whose template is empty (§A.1).

// placeholderRe finds "{{ name }}" placeholders
// (src/prefect/utilities/templating/__init__.py, find_placeholders).
var placeholderRe = regexp.MustCompile(`\{\{\s*(\S+?)\s*\}\}`)

// checkTemplateStructure is validate_base_job_template
// (src/prefect/server/schemas/actions.py:884-910): an empty template is
// fine; otherwise both keys, and every placeholder of the job configuration
// declared as a variable. Placeholders of blocks, variables and the
// environment ("prefect.…") are not variables.
func checkTemplateStructure(t map[string]any) error {
	if len(t) == 0 {
		return nil
	}
	job, _ := t["job_configuration"].(map[string]any)
	vars, _ := t["variables"].(map[string]any)
	if len(job) == 0 || len(vars) == 0 {
		return errors.New("The `base_job_template` must contain both a `job_configuration` key and a `variables` key.")
	}
	props, _ := vars["properties"].(map[string]any)
	var missing []string
	seen := map[string]bool{}
	for _, v := range job {
		b, _ := json.Marshal(v)
		for _, m := range placeholderRe.FindAllStringSubmatch(string(b), -1) {
			name := m[1]
			if strings.HasPrefix(name, "prefect.") || seen[name] {
				continue
			}
			seen[name] = true
			if _, ok := props[name]; !ok {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return errors.New("The variables specified in the job configuration template must be present as properties in the variables schema. Your job configuration uses the following undeclared variable(s): " + strings.Join(missing, " ,") + ".")
	}
	return nil
}

// templateDefaults are the top-level variable defaults (only those reach a
// worker, §A.4 step 1, base:175-188).
func templateDefaults(t map[string]any) map[string]any {
	out := map[string]any{}
	vars, _ := t["variables"].(map[string]any)
	props, _ := vars["properties"].(map[string]any)
	for name, p := range props {
		pm, _ := p.(map[string]any)
		if d, ok := pm["default"]; ok {
			out[name] = d
		}
	}
	return out
}

// validateJobVariables validates the pool's defaults overlaid with layers
// (deployment, flow run) against its variables schema, as
// _validate_work_pool_job_variables does (src/prefect/server/api/validation.py):
// required variables are checked only when checkRequired. It returns the
// message of the first failure, as schema_tools.validate words it, or "".
func validateJobVariables(t map[string]any, checkRequired bool, layers ...map[string]any) string {
	vars, _ := t["variables"].(map[string]any)
	if len(vars) == 0 {
		return ""
	}
	all := templateDefaults(t)
	for _, l := range layers {
		for k, v := range l {
			all[k] = v
		}
	}
	defs, _ := vars["definitions"].(map[string]any)
	v := schemaValidator{defs: defs, jsonschema: true}
	props, _ := vars["properties"].(map[string]any)
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		p, ok := props[name]
		if !ok {
			continue // the variables schema lists no additionalProperties (§A.1)
		}
		if errs := v.validate(p, jsonNumbers(all[name]), []any{name}); len(errs) > 0 {
			return "Validation failed for field '" + locPath(errs[0].Loc) + "'. Failure reason: " + errs[0].Msg
		}
	}
	if checkRequired {
		if req, ok := vars["required"].([]any); ok {
			for _, r := range req {
				if _, has := all[r.(string)]; !has {
					return "Validation failed. Failure reason: '" + r.(string) + "' is a required property"
				}
			}
		}
	}
	return ""
}

func locPath(loc []any) string {
	var parts []string
	for _, l := range loc {
		switch x := l.(type) {
		case string:
			parts = append(parts, x)
		default:
			parts[len(parts)-1] += "[" + jsonString(x) + "]"
		}
	}
	return strings.Join(parts, ".")
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// jsonNumbers turns float64 numbers (from templates decoded without
// UseNumber) into json.Number, as request bodies carry them.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		b, _ := json.Marshal(x)
		return json.Number(b)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonNumbers(e)
		}
		return out
	}
	return v
}
