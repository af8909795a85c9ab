package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The tests here keep environments/schema.json in sync with the Go types and
// rules: an editor must not accept what validate refuses for any of the
// closed lists, nor miss a key the loader knows.

type schemaNode = map[string]any

func loadSchema(t *testing.T) schemaNode {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "environments", "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s schemaNode
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", s["$schema"])
	}
	return s
}

// jsonType is the JSON Schema type the loader accepts for a Go field type.
func jsonType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "string"
	case t == policyJSONType:
		// A policy document as a mapping, or its JSON as a string.
		return "[object string]"
	case t.Kind() == reflect.Pointer:
		return jsonType(t.Elem())
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int:
		return "integer"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return "object"
	case t.Kind() == reflect.Slice:
		return "array"
	}
	return "unknown " + t.String()
}

// schemaAt returns the schema of a dotted yaml path.
func schemaAt(t *testing.T, s schemaNode, path string) schemaNode {
	t.Helper()
	node := s
	for _, key := range strings.Split(path, ".") {
		props, _ := node["properties"].(schemaNode)
		next, ok := props[key].(schemaNode)
		if !ok {
			t.Fatalf("schema has no property %s", path)
		}
		node = next
	}
	return node
}

// TestSchemaMatchesTypes walks the yaml tags of Environment: every key is a
// schema property of the matching JSON type and vice versa, objects with
// fixed keys forbid others, and required lists match the loader's.
func TestSchemaMatchesTypes(t *testing.T) {
	s := loadSchema(t)
	var walk func(typ reflect.Type, node schemaNode, path string)
	walk = func(typ reflect.Type, node schemaNode, path string) {
		name := path
		if name == "" {
			name = "(root)"
		}
		if node["additionalProperties"] != false {
			t.Errorf("schema %s: additionalProperties must be false", name)
		}
		props, _ := node["properties"].(schemaNode)
		keys, index := yamlFields(typ)
		var schemaKeys []string
		for k := range props {
			schemaKeys = append(schemaKeys, k)
		}
		sortedKeys := slices.Clone(keys)
		sort.Strings(sortedKeys)
		sort.Strings(schemaKeys)
		if diff := cmp.Diff(sortedKeys, schemaKeys); diff != "" {
			t.Errorf("schema %s: properties differ from the Go yaml keys (-go +schema):\n%s", name, diff)
		}
		var required []string
		if r, ok := node["required"].([]any); ok {
			for _, k := range r {
				required = append(required, k.(string))
			}
		}
		if diff := cmp.Diff(requiredKeys[path], required, cmpEmpty); diff != "" {
			t.Errorf("schema %s: required differs from requiredKeys (-go +schema):\n%s", name, diff)
		}
		for _, key := range keys {
			child, ok := props[key].(schemaNode)
			if !ok {
				continue
			}
			p := childPath(path, key)
			ft := typ.Field(index[key]).Type
			if got, want := fmt.Sprint(child["type"]), jsonType(ft); got != want {
				t.Errorf("schema %s: type %v, want %s (Go %s)", p, got, want, ft)
			}
			if _, ok := child["description"].(string); !ok {
				t.Errorf("schema %s: no description", p)
			}
			st := ft
			if st.Kind() == reflect.Pointer {
				st = st.Elem()
			}
			if st.Kind() == reflect.Struct && st != durationType {
				walk(st, child, p)
			}
			if st.Kind() == reflect.Slice {
				items, _ := child["items"].(schemaNode)
				if items["type"] != jsonType(st.Elem()) {
					t.Errorf("schema %s: items type %v, want %s", p, items["type"], jsonType(st.Elem()))
				}
			}
		}
	}
	walk(reflect.TypeOf(Environment{}), s, "")
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool {
	return len(a) == 0 && len(b) == 0 || slices.Equal(a, b)
})

func anyInts(xs []any) []int {
	var out []int
	for _, x := range xs {
		out = append(out, int(x.(float64)))
	}
	return out
}

func anyStrings(xs []any) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.(string))
	}
	return out
}

// TestSchemaEnumsAndLimits: the closed lists and numeric limits are the ones
// validation uses.
func TestSchemaEnumsAndLimits(t *testing.T) {
	s := loadSchema(t)
	enum := func(path string) []any {
		e, ok := schemaAt(t, s, path)["enum"].([]any)
		if !ok {
			t.Fatalf("schema %s has no enum", path)
		}
		return e
	}
	var allMemory []int
	for _, mems := range FargateMemory {
		allMemory = append(allMemory, mems...)
	}
	sort.Ints(allMemory)
	allMemory = slices.Compact(allMemory)
	regions := regionNames()
	checks := []struct {
		path      string
		got, want any
	}{
		{"network.mode", anyStrings(enum("network.mode")), NetworkModes},
		{"network.nat", anyStrings(enum("network.nat")), NATModes},
		{"prefect.auth", anyStrings(enum("prefect.auth")), AuthModes},
		{"aws.region", anyStrings(enum("aws.region")), regions},
		{"worker.cpu", anyInts(enum("worker.cpu")), FargateCPUs},
		{"worker.memory", anyInts(enum("worker.memory")), allMemory},
		{"worker.log_retention_days", anyInts(enum("worker.log_retention_days")), LogRetentionDays},
		{"flow_runs.cpu", anyInts(enum("flow_runs.cpu")), FargateCPUs},
		{"flow_runs.memory", anyInts(enum("flow_runs.memory")), allMemory},
		{"flow_runs.log_retention_days", anyInts(enum("flow_runs.log_retention_days")), LogRetentionDays},
		{"task_role_policy_arns maxItems", schemaAt(t, s, "flow_runs.task_role_policy_arns")["maxItems"], float64(MaxRolePolicies)},
		{"name maxLength", schemaAt(t, s, "name")["maxLength"], float64(MaxNameLen)},
		{"tags maxProperties", schemaAt(t, s, "tags")["maxProperties"], float64(MaxUserTags)},
		{"availability_zones minimum", schemaAt(t, s, "network.availability_zones")["minimum"], float64(MinAZs)},
		{"availability_zones maximum", schemaAt(t, s, "network.availability_zones")["maximum"], float64(MaxAZs)},
		{"autoscaling.max maximum", schemaAt(t, s, "worker.autoscaling.max")["maximum"], float64(MaxWorkers)},
		{"desired_count maximum", schemaAt(t, s, "worker.desired_count")["maximum"], float64(MaxWorkers)},
		{"subnet_ids maxItems", schemaAt(t, s, "network.subnet_ids")["maxItems"], float64(MaxSubnets)},
		{"security_group_ids maxItems", schemaAt(t, s, "network.security_group_ids")["maxItems"], float64(MaxSecurityGroups)},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("schema %s differs from Go (-go +schema):\n%s", c.path, diff)
		}
	}

	// worker.allOf and flow_runs.allOf hold one if/then per Fargate CPU
	// size with its memory; the clause of the default CPU also holds when
	// cpu is left out.
	for _, sec := range []struct {
		section    string
		defaultCPU int
	}{{"worker", DefaultCPU}, {"flow_runs", DefaultFlowRunCPU}} {
		pairs := map[int][]int{}
		defaulted := 0
		for _, clause := range schemaAt(t, s, sec.section)["allOf"].([]any) {
			c := clause.(schemaNode)
			cond := c["if"].(schemaNode)
			anyOf, isDefault := cond["anyOf"].([]any)
			if isDefault {
				cond = anyOf[len(anyOf)-1].(schemaNode) // the default-cpu clause
			}
			cpu := int(cond["properties"].(schemaNode)["cpu"].(schemaNode)["const"].(float64))
			if isDefault {
				defaulted = cpu
			}
			mem := c["then"].(schemaNode)["properties"].(schemaNode)["memory"].(schemaNode)["enum"].([]any)
			pairs[cpu] = anyInts(mem)
		}
		if diff := cmp.Diff(FargateMemory, pairs); diff != "" {
			t.Errorf("schema %s cpu/memory pairs differ from FargateMemory (-go +schema):\n%s", sec.section, diff)
		}
		if defaulted != sec.defaultCPU {
			t.Errorf("schema %s: the clause for a missing cpu is for %d, the default is %d", sec.section, defaulted, sec.defaultCPU)
		}
	}
}

// TestSchemaDefaults: every default in the schema is what Load fills in for
// a file that leaves the key out.
func TestSchemaDefaults(t *testing.T) {
	s := loadSchema(t)
	env, err := Load(writeFile(t, t.TempDir(), "demo.yaml", minimalFile+"  autoscaling: {min: 1, max: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Optional booleans are pointers; nil means their documented default.
	effective := map[string]any{
		"prefect.prune_offline_workers": env.Prune(),
		"health_gate.flow_run":          env.SmokeFlowRun(),
		"network.assign_public_ip":      env.Network.AssignPublicIP != nil && *env.Network.AssignPublicIP,
	}
	count := 0
	var walk func(node schemaNode, v reflect.Value, path string)
	walk = func(node schemaNode, v reflect.Value, path string) {
		props, _ := node["properties"].(schemaNode)
		_, index := yamlFields(v.Type())
		for key, raw := range props {
			child := raw.(schemaNode)
			p := childPath(path, key)
			fv := v.Field(index[key])
			if def, ok := child["default"]; ok {
				count++
				got := effective[p]
				if got == nil {
					got = fv.Interface()
				}
				var want any
				switch g := got.(type) {
				case int:
					want, got = int(def.(float64)), g
				case time.Duration:
					d, err := time.ParseDuration(def.(string))
					if err != nil {
						t.Errorf("schema %s: default %v is not a duration", p, def)
					}
					want = d
				default:
					want = def
				}
				if !reflect.DeepEqual(want, got) {
					t.Errorf("schema %s: default %v, Load fills %v", p, want, got)
				}
			}
			if fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct && !fv.IsNil() {
				walk(child, fv.Elem(), p)
			} else if fv.Kind() == reflect.Struct && fv.Type() != durationType {
				walk(child, fv, p)
			}
		}
	}
	walk(s, reflect.ValueOf(env).Elem(), "")
	// cpu, memory, desired_count, log_retention_days, target_cpu_percent,
	// mode, cidr, availability_zones, nat, assign_public_ip, timeout,
	// min_online_workers, flow_run, protect, create_work_pool,
	// prune_offline_workers, auth, and flow_runs' cpu, memory and
	// log_retention_days.
	if count != 20 {
		t.Errorf("schema has %d defaults, want 20: a default was added or lost", count)
	}
}
