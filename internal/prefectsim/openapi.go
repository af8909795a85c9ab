package prefectsim

import (
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Request bodies of the flow, deployment, flow-run and log routes are
// validated against Prefect's own OpenAPI schemas (openapi/, copied from
// docs/research/prefect-openapi/), the way FastAPI and pydantic validate
// them: unknown fields of a model with additionalProperties false are
// "extra_forbidden", a missing required field is "missing", a value of the
// wrong type is "<type>_type", each with its location (["body", ...]). Job
// variables are validated against a pool's variables schema the way
// prefect.utilities.schema_tools.validate does (jsonschema), with its
// message shape (src/prefect/utilities/schema_tools/validation.py:76-120).

//go:embed openapi/flow-runs-endpoints.json openapi/ecs-default-base-job-template.json
var openapiFiles embed.FS

// flowSchemas are the components.schemas of flow-runs-endpoints.json.
var flowSchemas = func() map[string]any {
	b, err := openapiFiles.ReadFile("openapi/flow-runs-endpoints.json")
	if err != nil {
		panic(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		panic(err)
	}
	return doc.Components.Schemas
}()

// ecsDefaultTemplate returns a fresh copy of the ECS worker's default base
// job template.
// ECSDefaultTemplate is prefect-aws's default base job template for ECS
// pools (openapi/ecs-default-base-job-template.json), a fresh copy.
func ECSDefaultTemplate() map[string]any { return ecsDefaultTemplate() }

func ecsDefaultTemplate() map[string]any {
	b, err := openapiFiles.ReadFile("openapi/ecs-default-base-job-template.json")
	if err != nil {
		panic(err)
	}
	var t map[string]any
	if err := json.Unmarshal(b, &t); err != nil {
		panic(err)
	}
	return t
}

// schemaValidator validates JSON values (decoded with UseNumber) against a
// JSON schema, resolving "#/components/schemas/X" and "#/definitions/X"
// references in its own document.
type schemaValidator struct {
	defs map[string]any
	// jsonschema: report as jsonschema does (for job variables) rather
	// than as pydantic does (for request bodies).
	jsonschema bool
}

// validateBody validates a request body against the named component.
func validateBody(component string, body any) []verr {
	v := schemaValidator{defs: flowSchemas}
	return v.validate(flowSchemas[component], body, []any{"body"})
}

func (v schemaValidator) resolve(sc map[string]any) map[string]any {
	for i := 0; i < 16; i++ {
		ref, ok := sc["$ref"].(string)
		if !ok {
			return sc
		}
		name := ref[strings.LastIndex(ref, "/")+1:]
		next, ok := v.defs[name].(map[string]any)
		if !ok {
			return map[string]any{}
		}
		sc = next
	}
	return sc
}

func typeName(val any) string {
	switch x := val.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return "integer"
		}
		return "number"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// pydanticType is pydantic's error type and message for a wrong type.
var pydanticType = map[string][2]string{
	"string":  {"string_type", "Input should be a valid string"},
	"integer": {"int_type", "Input should be a valid integer"},
	"number":  {"float_type", "Input should be a valid number"},
	"boolean": {"bool_type", "Input should be a valid boolean"},
	"array":   {"list_type", "Input should be a valid list"},
	"object":  {"dict_type", "Input should be a valid dictionary"},
	"null":    {"none_required", "Input should be None"},
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func (v schemaValidator) validate(raw any, val any, loc []any) []verr {
	sc, ok := raw.(map[string]any)
	if !ok || len(sc) == 0 {
		return nil // {} accepts anything
	}
	sc = v.resolve(sc)
	at := func(typ, msg string) []verr {
		return []verr{{Type: typ, Loc: append([]any(nil), loc...), Msg: msg, Input: val}}
	}
	if alts, ok := sc["anyOf"].([]any); ok {
		var first []verr
		for _, a := range alts {
			errs := v.validate(a, val, loc)
			if len(errs) == 0 {
				return nil
			}
			if first == nil {
				first = errs
			}
		}
		if v.jsonschema {
			return at("anyOf", fmt.Sprintf("%s is not valid under any of the given schemas", pyRepr(val)))
		}
		return first
	}
	if enum, ok := sc["enum"].([]any); ok {
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(val) {
				return nil
			}
		}
		var names []string
		for _, e := range enum {
			names = append(names, fmt.Sprintf("'%v'", e))
		}
		if v.jsonschema {
			return at("enum", fmt.Sprintf("%s is not one of [%s]", pyRepr(val), strings.Join(names, ", ")))
		}
		msg := "Input should be " + strings.Join(names[:len(names)-1], ", ")
		if len(names) > 1 {
			msg += " or " + names[len(names)-1]
		} else {
			msg = "Input should be " + names[0]
		}
		return at("enum", msg)
	}
	if want, ok := sc["type"].(string); ok {
		got := typeName(val)
		if got != want && !(want == "number" && got == "integer") {
			if v.jsonschema {
				return at("type", fmt.Sprintf("%s is not of type '%s'", pyRepr(val), want))
			}
			t := pydanticType[want]
			return at(t[0], t[1])
		}
	}
	switch x := val.(type) {
	case string:
		switch sc["format"] {
		case "uuid":
			if !uuidRe.MatchString(x) {
				return at("uuid_parsing", "Input should be a valid UUID, invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `"+firstBad(x)+"`")
			}
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				return at("datetime_from_date_parsing", "Input should be a valid datetime or date, invalid character in date")
			}
		}
		if p, ok := sc["pattern"].(string); ok {
			if re, err := regexp.Compile(p); err == nil && !re.MatchString(x) {
				return at("string_pattern_mismatch", "String should match pattern '"+p+"'")
			}
		}
	case json.Number:
		f, _ := x.Float64()
		if m, ok := sc["minimum"].(float64); ok && f < m {
			return at("greater_than_equal", fmt.Sprintf("Input should be greater than or equal to %v", m))
		}
		if m, ok := sc["exclusiveMinimum"].(float64); ok && f <= m {
			return at("greater_than", fmt.Sprintf("Input should be greater than %v", m))
		}
		if m, ok := sc["maximum"].(float64); ok && f > m {
			return at("less_than_equal", fmt.Sprintf("Input should be less than or equal to %v", m))
		}
	case []any:
		var errs []verr
		for i, it := range x {
			errs = append(errs, v.validate(sc["items"], it, append(append([]any(nil), loc...), i))...)
		}
		return errs
	case map[string]any:
		var errs []verr
		props, _ := sc["properties"].(map[string]any)
		if req, ok := sc["required"].([]any); ok && !v.jsonschema {
			for _, r := range req {
				if _, has := x[r.(string)]; !has {
					errs = append(errs, verr{Type: "missing", Loc: append(append([]any(nil), loc...), r), Msg: "Field required", Input: val})
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := append(append([]any(nil), loc...), k)
			if p, known := props[k]; known {
				errs = append(errs, v.validate(p, x[k], sub)...)
				continue
			}
			switch extra := sc["additionalProperties"].(type) {
			case bool:
				if !extra {
					errs = append(errs, verr{Type: "extra_forbidden", Loc: sub, Msg: "Extra inputs are not permitted", Input: x[k]})
				}
			case map[string]any:
				errs = append(errs, v.validate(extra, x[k], sub)...)
			}
		}
		return errs
	}
	return nil
}

func firstBad(s string) string {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF-", r) {
			return string(r)
		}
	}
	return ""
}

// pyRepr is how jsonschema's messages print a value (Python's repr).
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		if strings.Contains(x, "'") && !strings.Contains(x, `"`) {
			return `"` + x + `"`
		}
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case json.Number:
		return string(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
