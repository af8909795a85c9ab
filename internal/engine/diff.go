package engine

import (
	"sort"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// diffAttrs compares desired with live attrs (both already normalised by the
// kind, so a resource just applied has none) and returns the changed fields
// sorted by path. Sensitive fields carry no values, only that they changed.
// A path only on the live side is a field the file no longer sets (a removed
// tag): it changes to "".
func diffAttrs(desired, live resource.Attrs) []plan.FieldChange {
	paths := make([]string, 0, len(desired)+len(live))
	for p := range desired {
		paths = append(paths, p)
	}
	for p := range live {
		if _, ok := desired[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []plan.FieldChange
	for _, p := range paths {
		d, inDesired := desired[p]
		l, inLive := live[p]
		if inDesired && inLive && d.Value == l.Value && d.Value != plan.Unknown {
			continue
		}
		if !inDesired && !inLive {
			continue
		}
		fc := plan.FieldChange{Path: p, ForcesReplacement: d.ForceNew || (!inDesired && l.ForceNew), Derived: d.Derived || (!inDesired && l.Derived)}
		if d.Sensitive || l.Sensitive {
			fc.Sensitive = true
		} else {
			fc.Before, fc.After = l.Value, d.Value
		}
		out = append(out, fc)
	}
	return out
}

// createFields lists every desired field of a resource to be created.
func createFields(desired resource.Attrs) []plan.FieldChange {
	paths := make([]string, 0, len(desired))
	for p := range desired {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]plan.FieldChange, 0, len(paths))
	for _, p := range paths {
		a := desired[p]
		fc := plan.FieldChange{Path: p, Derived: a.Derived}
		if a.Sensitive {
			fc.Sensitive = true
		} else {
			fc.After = a.Value
		}
		out = append(out, fc)
	}
	return out
}

// forcedBy returns the first field that forces a replacement, or "".
func forcedBy(fields []plan.FieldChange) string {
	for _, f := range fields {
		if f.ForcesReplacement {
			return f.Path
		}
	}
	return ""
}

// attrValues are the non-sensitive values of attrs, for plan.Change's
// Before and After.
func attrValues(attrs resource.Attrs) map[string]string {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]string, len(attrs))
	for p, a := range attrs {
		if !a.Sensitive {
			out[p] = a.Value
		}
	}
	return out
}
