package prefect

import (
	"encoding/json"
	"regexp"
	"testing"
)

// TestDefaultTemplate: the embedded copy of prefect-aws's template is one a
// worker and Prefect accept: both keys, every placeholder of the job
// configuration declared as a variable (what PATCH checks), and every
// variable deploybot owns declared, with prefect-aws's defaults.
func TestDefaultTemplate(t *testing.T) {
	tpl := DefaultTemplate()
	props := properties(tpl)
	if isEmpty(tpl) || props == nil {
		t.Fatal("the embedded template is empty")
	}
	b, _ := json.Marshal(tpl["job_configuration"])
	for _, m := range regexp.MustCompile(`\{\{\s*(\S+?)\s*\}\}`).FindAllStringSubmatch(string(b), -1) {
		if _, ok := props[m[1]]; !ok {
			t.Errorf("job_configuration uses {{ %s }}, which is not a variable", m[1])
		}
	}
	for _, k := range OwnedVariables {
		if _, ok := props[k]; !ok {
			t.Errorf("the variable %s deploybot sets is not in prefect-aws's template", k)
		}
		if v, ok := defaultOf(props, k); ok && k != VarMatchLatestRevision {
			t.Errorf("prefect-aws's %s default is %s, want none", k, v)
		}
	}
	if v, _ := defaultOf(props, VarMatchLatestRevision); v != "false" {
		t.Errorf("match_latest_revision_in_family default = %q, want false", v)
	}
	// A fresh copy each time: changing one does not change the next.
	props["cluster"].(map[string]any)["default"] = "x"
	if _, ok := defaultOf(properties(DefaultTemplate()), "cluster"); ok {
		t.Error("DefaultTemplate returned a shared copy")
	}
}

func TestShowValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"arn:aws:ecs:us-east-1:1:cluster/x", "arn:aws:ecs:us-east-1:1:cluster/x"},
		{"1024", `"1024"`}, // a string that reads as a number differs from one
		{json.Number("1024"), "1024"},
		{true, "true"},
		{"true", `"true"`},
		{"", `""`},
		{map[string]any{"b": "x<y", "a": []any{"1"}}, `{"a":["1"],"b":"x<y"}`},
	} {
		if got := ShowValue(tc.in); got != tc.want {
			t.Errorf("ShowValue(%#v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
