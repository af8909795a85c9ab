package bootstrap

// DependentActions returns a copy of bootstrap's dependent-action table.
func DependentActions() map[string][]string {
	out := make(map[string][]string, len(dependentActions))
	for a, xs := range dependentActions {
		out[a] = append([]string(nil), xs...)
	}
	return out
}

// WithDependentActions returns o with table in place of bootstrap's own
// dependent-action table, so that a test can show what a wrong entry does.
func WithDependentActions(o Options, table map[string][]string) Options {
	o.dependent = table
	return o
}
