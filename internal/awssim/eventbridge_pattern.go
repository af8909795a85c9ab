package awssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// EventBridge event patterns: parsing (what PutRule rejects) and matching,
// for the subset deploybot and Prefect's observer use and the common
// operators (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html):
// nested objects, arrays of literal values (string, number, true, false,
// null), prefix, suffix, equals-ignore-case, anything-but (a value, a list
// or a prefix), numeric comparisons, exists and wildcard. A field of the
// event that is an array matches when any of its elements does.

func parseEventPattern(s string) (map[string]any, error) {
	var p map[string]any
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("Filter is not an object")
	}
	if len(p) == 0 {
		return nil, errors.New("Empty objects are not allowed")
	}
	return p, checkPattern(p, "")
}

func checkPattern(p map[string]any, path string) error {
	for k, v := range p {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				return errors.New("Empty objects are not allowed")
			}
			if err := checkPattern(x, path+k+"."); err != nil {
				return err
			}
		case []any:
			if len(x) == 0 {
				return errors.New("Empty arrays are not allowed")
			}
			for _, m := range x {
				if err := checkMatcher(m); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("Match value must be String, number, true, false, or null at %s%s", path, k)
		}
	}
	return nil
}

func checkMatcher(m any) error {
	op, ok := m.(map[string]any)
	if !ok {
		switch m.(type) {
		case string, float64, bool, nil:
			return nil
		}
		return errors.New("Match value must be String, number, true, false, or null")
	}
	if len(op) != 1 {
		return errors.New("Only one key allowed in match expression")
	}
	for name, arg := range op {
		switch name {
		case "prefix", "suffix":
			if _, ok := arg.(string); ok {
				return nil
			}
			if o, ok := arg.(map[string]any); ok {
				if _, ok := o["equals-ignore-case"].(string); ok && len(o) == 1 {
					return nil
				}
			}
			return fmt.Errorf("%s match pattern must be a string", name)
		case "equals-ignore-case", "wildcard":
			if _, ok := arg.(string); !ok {
				return fmt.Errorf("%s match pattern must be a string", name)
			}
		case "exists":
			if _, ok := arg.(bool); !ok {
				return errors.New("exists match pattern must be either true or false.")
			}
		case "anything-but":
			switch a := arg.(type) {
			case string, float64:
			case []any:
				for _, x := range a {
					switch x.(type) {
					case string, float64:
					default:
						return errors.New("Inside anything but list, start|null|boolean is not supported.")
					}
				}
			case map[string]any:
				if _, ok := a["prefix"].(string); !ok || len(a) != 1 {
					return errors.New("Unsupported anything-but pattern")
				}
			default:
				return errors.New("Unsupported anything-but pattern")
			}
		case "numeric":
			a, ok := arg.([]any)
			if !ok || len(a) == 0 || len(a)%2 != 0 || len(a) > 4 {
				return errors.New("Value of numeric must be an array.")
			}
			for i := 0; i < len(a); i += 2 {
				opName, ok1 := a[i].(string)
				_, ok2 := a[i+1].(float64)
				if !ok1 || !ok2 || !containsString([]string{"<", "<=", "=", ">", ">="}, opName) {
					return errors.New("Unrecognized numeric range operator")
				}
			}
		default:
			return fmt.Errorf("Unrecognized match type %s", name)
		}
	}
	return nil
}

// matchPattern says whether event (decoded JSON) matches pattern.
func matchPattern(pattern, event map[string]any) bool {
	for k, want := range pattern {
		got, present := event[k]
		switch p := want.(type) {
		case map[string]any:
			// EventBridge's matcher (aws/event-ruler) flattens the event, so
			// a nested pattern also matches inside an array of objects, e.g.
			// "containers":{"exitCode":[...]} against every container.
			if !matchNested(p, got) {
				return false
			}
		case []any:
			if !matchField(p, got, present) {
				return false
			}
		}
	}
	return true
}

func matchNested(p map[string]any, got any) bool {
	switch v := got.(type) {
	case map[string]any:
		return matchPattern(p, v)
	case []any:
		for _, el := range v {
			if m, ok := el.(map[string]any); ok && matchPattern(p, m) {
				return true
			}
		}
	}
	return false
}

func matchField(matchers []any, got any, present bool) bool {
	values := []any{got}
	if arr, ok := got.([]any); ok {
		values = arr
	}
	for _, m := range matchers {
		if op, ok := m.(map[string]any); ok {
			if exists, ok := op["exists"].(bool); ok {
				if exists == present {
					return true
				}
				continue
			}
		}
		if !present {
			continue
		}
		for _, v := range values {
			if matchValue(m, v) {
				return true
			}
		}
	}
	return false
}

func matchValue(m, v any) bool {
	op, ok := m.(map[string]any)
	if !ok {
		return m == v // literal: same JSON type and value
	}
	s, isString := v.(string)
	for name, arg := range op {
		switch name {
		case "prefix", "suffix":
			if !isString {
				return false
			}
			want, fold := "", false
			switch a := arg.(type) {
			case string:
				want = a
			case map[string]any:
				want, fold = a["equals-ignore-case"].(string), true
			}
			have := s
			if fold {
				want, have = strings.ToLower(want), strings.ToLower(s)
			}
			if name == "prefix" {
				return strings.HasPrefix(have, want)
			}
			return strings.HasSuffix(have, want)
		case "equals-ignore-case":
			return isString && strings.EqualFold(s, arg.(string))
		case "wildcard":
			return isString && wildcardMatch(arg.(string), s)
		case "anything-but":
			switch a := arg.(type) {
			case []any:
				for _, x := range a {
					if x == v {
						return false
					}
				}
				return true
			case map[string]any:
				return isString && !strings.HasPrefix(s, a["prefix"].(string))
			default:
				return a != v
			}
		case "numeric":
			n, ok := v.(float64)
			if !ok {
				return false
			}
			a := arg.([]any)
			for i := 0; i < len(a); i += 2 {
				x := a[i+1].(float64)
				var hold bool
				switch a[i].(string) {
				case "<":
					hold = n < x
				case "<=":
					hold = n <= x
				case "=":
					hold = n == x
				case ">":
					hold = n > x
				case ">=":
					hold = n >= x
				}
				if !hold {
					return false
				}
			}
			return true
		}
	}
	return false
}

// wildcardMatch matches * as any run of characters.
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
