package resource

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/deploybot/deploybot/internal/plan"
)

// A kind's Model is a Go struct of the fields a plan compares. The same
// struct holds the desired state (from the spec and the dependencies'
// outputs) and the live state (from AWS), the kind's Normalize brings both
// to one form, and Flatten turns either into the plan's Attrs. So the field
// names, their formatting and their flags are written once, in the struct's
// tags, for both sides, and a resource just applied diffs as no change by
// construction (kayac/ecspresso's diff.go normalises both sides with one
// function for the same reason).
//
// A field takes part when it has an `attr:"path[,flag...]"` tag. Flags:
//
//	forcenew            AWS cannot change the field in place: a change replaces the resource
//	sensitive           the plan shows only that it changed (a digest, never a value)
//	replace_if_unknown  forcenew while the desired value is not known yet (it names a
//	                    resource the plan replaces)
//	derived             deploybot computes the value from others (a hash of the
//	                    container definition): the plan shows its change after theirs
//
// Values: strings as they are; bools and numbers in Go's canonical form;
// Set and Seq as JSON lists; a type with an AttrValue method as that; a nil
// pointer is a field the resource does not have (on that side); a map is
// one attr per key ("path.KEY"); a nested struct prefixes its own paths
// ("container.image").

// Normalizer is implemented by a model (pointer receiver) whose desired and
// live forms need bringing to one form before they are compared: sorting,
// AWS's defaults, canonical policy documents, "0.25 vCPU" → "256".
type Normalizer interface {
	Normalize()
}

// Valuer is a model field type that formats itself for the plan.
type Valuer interface {
	AttrValue() string
}

// Set is a list whose order does not matter: shown sorted, as a JSON list.
type Set []string

// AttrValue is the sorted list as JSON.
func (s Set) AttrValue() string {
	items := append([]string(nil), s...)
	sort.Strings(items)
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(x))
	}
	b.WriteByte(']')
	return b.String()
}

// Seq is a list whose order matters (a command line): shown as JSON.
type Seq []string

// AttrValue is the list as JSON ("null" for none).
func (s Seq) AttrValue() string {
	b, _ := json.Marshal([]string(s))
	return string(b)
}

// JSON is a field shown as the JSON of its value (a health check).
type JSON[T any] struct{ V T }

// AttrValue is the value's JSON.
func (j JSON[T]) AttrValue() string {
	b, err := json.Marshal(j.V)
	if err != nil {
		panic(fmt.Sprintf("resource: a model's JSON field does not marshal: %v", err)) // models hold plain data
	}
	return string(b)
}

// Normalize returns m brought to its one comparable form (m's Normalize,
// when its model has one).
func Normalize[M any](m M) M {
	if n, ok := any(&m).(Normalizer); ok {
		n.Normalize()
	}
	return m
}

// Flatten returns a model's attrs. m is a struct or a pointer to one (nil:
// no attrs).
func Flatten(m any) Attrs {
	v := reflect.ValueOf(m)
	a := Attrs{}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return a
		}
		v = v.Elem()
	}
	flattenStruct(a, "", v)
	return a
}

type fieldSpec struct {
	index                                        int
	path                                         string
	forceNew, sensitive, replaceUnknown, derived bool
}

var fieldCache sync.Map // reflect.Type → []fieldSpec

func fieldsOf(t reflect.Type) []fieldSpec {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]fieldSpec)
	}
	var fs []fieldSpec
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("attr")
		if !ok || tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		f := fieldSpec{index: i, path: parts[0]}
		for _, flag := range parts[1:] {
			switch flag {
			case "forcenew":
				f.forceNew = true
			case "sensitive":
				f.sensitive = true
			case "replace_if_unknown":
				f.replaceUnknown = true
			case "derived":
				f.derived = true
			default:
				panic(fmt.Sprintf("resource: %s.%s: unknown attr flag %q", t, t.Field(i).Name, flag))
			}
		}
		fs = append(fs, f)
	}
	fieldCache.Store(t, fs)
	return fs
}

var valuerType = reflect.TypeFor[Valuer]()

func flattenStruct(a Attrs, prefix string, v reflect.Value) {
	for _, f := range fieldsOf(v.Type()) {
		flattenField(a, f, prefix+f.path, v.Field(f.index))
	}
}

func flattenField(a Attrs, f fieldSpec, path string, v reflect.Value) {
	if v.Type().Implements(valuerType) && (v.Kind() != reflect.Pointer || !v.IsNil()) {
		a.set(f, path, v.Interface().(Valuer).AttrValue())
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			flattenField(a, f, path, v.Elem())
		}
	case reflect.Struct:
		flattenStruct(a, path+".", v)
	case reflect.Map:
		for _, k := range v.MapKeys() {
			flattenField(a, f, path+"."+k.String(), v.MapIndex(k))
		}
	case reflect.String:
		a.set(f, path, v.String())
	case reflect.Bool:
		a.set(f, path, strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int32, reflect.Int64:
		a.set(f, path, strconv.FormatInt(v.Int(), 10))
	case reflect.Float64:
		a.set(f, path, strconv.FormatFloat(v.Float(), 'f', -1, 64))
	default:
		panic(fmt.Sprintf("resource: model field %s has unsupported type %s", path, v.Type()))
	}
}

func (a Attrs) set(f fieldSpec, path, value string) {
	a[path] = Attr{Value: value, Sensitive: f.sensitive, Derived: f.derived,
		ForceNew: f.forceNew || (f.replaceUnknown && strings.Contains(value, plan.Unknown))}
}

// valuesOf is the attr values of a model, or of one field value (under the
// path "").
func valuesOf(v any) map[string]string {
	rv := reflect.ValueOf(v)
	a := Attrs{}
	if rv.IsValid() {
		for rv.Kind() == reflect.Pointer && !rv.IsNil() && !rv.Type().Implements(valuerType) {
			rv = rv.Elem()
		}
		if rv.Kind() == reflect.Struct && !rv.Type().Implements(valuerType) {
			flattenStruct(a, "", rv)
		} else if rv.Kind() != reflect.Pointer || !rv.IsNil() {
			flattenField(a, fieldSpec{}, "", rv)
		}
	}
	out := make(map[string]string, len(a))
	for p, at := range a {
		out[p] = at.Value
	}
	return out
}
