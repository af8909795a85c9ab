package action

import (
	"errors"
	"testing"

	"github.com/deploybot/deploybot/internal/github"
	"github.com/deploybot/deploybot/internal/plan"
)

func TestPRLabelFromThePlans(t *testing.T) {
	none := &plan.Plan{Changes: []plan.Change{{Address: "a", Action: plan.NoOp}}}
	update := &plan.Plan{Changes: []plan.Change{{Address: "a", Action: plan.Update}}}
	replace := &plan.Plan{Changes: []plan.Change{{Address: "a", Action: plan.Replace}}}
	destroy := &plan.Plan{Changes: []plan.Change{{Address: "a", Action: plan.Delete}}}
	res := func(name string, p *plan.Plan, err error) *envResult {
		return &envResult{File: &envFile{Name: name}, Plan: p, Err: err}
	}
	tests := []struct {
		name    string
		results []*envResult
		want    github.Label
		unknown string
	}{
		{"nothing selected", nil, github.PRLabels.NoChanges, ""},
		{"no changes anywhere", []*envResult{res("a", none, nil), res("b", none, nil)}, github.PRLabels.NoChanges, ""},
		{"one change", []*envResult{res("a", none, nil), res("b", update, nil)}, github.PRLabels.Changes, ""},
		{"a replacement wins", []*envResult{res("a", replace, nil), res("b", update, nil)}, github.PRLabels.Destroy, ""},
		{"a destroy wins after a change", []*envResult{res("a", update, nil), res("b", destroy, nil)}, github.PRLabels.Destroy, ""},
		{"a failed plan leaves the labels", []*envResult{res("a", update, nil), res("b", nil, errors.New("boom"))}, github.Label{}, "b"},
	}
	for _, tc := range tests {
		got, unknown := prLabel(tc.results)
		if got != tc.want || unknown != tc.unknown {
			t.Errorf("%s: got %q (unknown %q), want %q (unknown %q)", tc.name, got.Name, unknown, tc.want.Name, tc.unknown)
		}
	}
}
