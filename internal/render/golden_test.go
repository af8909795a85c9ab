package render

import (
	"bytes"
	"flag"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/goldenfile"
	"github.com/deploybot/deploybot/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenModulo(t, name, got, nil)
}

// goldenModulo is golden comparing both sides through normalize (nil:
// as they are).
func goldenModulo(t *testing.T, name string, got []byte, normalize func(string) string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got, *update, normalize)
}

func commentOpts(p *plan.Plan) CommentOptions {
	return CommentOptions{
		Marker:       Marker(p.Environment, p.Fingerprint, testHead, testBase),
		HeadSHA:      testHead,
		RunURL:       testRunURL,
		ArtifactName: "deploybot-plan-" + p.Environment + ".json",
	}
}

func summaryOpts(p *plan.Plan) SummaryOptions {
	return SummaryOptions{HeadSHA: testHead, RunURL: testRunURL, ArtifactName: "deploybot-plan-" + p.Environment + ".json"}
}

// renderPlanAll renders a plan in every plan view.
func renderPlanAll(t *testing.T, p *plan.Plan) map[string][]byte {
	t.Helper()
	return renderAll(t, p, Text, JSON, func(p *plan.Plan) string { return Comment(p, nil, commentOpts(p)) },
		func(p *plan.Plan) string { return Summary(p, nil, summaryOpts(p)) })
}

// renderReportAll renders a report in every report view.
func renderReportAll(t *testing.T, r *plan.Report) map[string][]byte {
	t.Helper()
	return renderAll(t, r, ReportText, ReportJSON, func(r *plan.Report) string { return Comment(nil, r, commentOpts(r.Plan)) },
		func(r *plan.Report) string { return Summary(nil, r, summaryOpts(r.Plan)) })
}

// renderAll renders x as plain and coloured text, JSON, a PR comment and a
// job summary, by the view's file suffix.
func renderAll[T any](t *testing.T, x T, text func(io.Writer, T, TextOptions) error, js func(T) ([]byte, error), comment, summary func(T) string) map[string][]byte {
	t.Helper()
	var plain, color bytes.Buffer
	if err := text(&plain, x, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := text(&color, x, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	j, err := js(x)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"txt":        plain.Bytes(),
		"color.txt":  color.Bytes(),
		"comment.md": []byte(comment(x)),
		"summary.md": []byte(summary(x)),
		"json":       j,
	}
}

var planCases = []struct {
	name string
	plan func() *plan.Plan
}{
	{"create", createPlan},
	{"update", updatePlan},
	{"replace", replacePlan},
	{"destroy", destroyPlan},
	{"no_changes", noChangePlan},
	{"conflict", conflictPlan},
}

var reportCases = []struct {
	name   string
	report func() *plan.Report
}{
	{"report_passed", passedReport},
	{"report_rolled_back", rolledBackReport},
	{"report_first_deploy_failed", firstDeployFailedReport},
	{"report_refused", refusedReport},
}

// Rendering the same value twice gives the same bytes, so the Action can
// skip editing a comment whose body has not changed.
func TestDeterministic(t *testing.T) {
	for _, tc := range planCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := renderPlanAll(t, tc.plan()), renderPlanAll(t, tc.plan())
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("two renders differ:\n%s", diff)
			}
		})
	}
	for _, tc := range reportCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := renderReportAll(t, tc.report()), renderReportAll(t, tc.report())
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("two renders differ:\n%s", diff)
			}
		})
	}
	big := bigPlan(200 << 10)
	if a, b := Comment(big, nil, commentOpts(big)), Comment(big, nil, commentOpts(big)); a != b {
		t.Error("two renders of the cut 200 KB comment differ")
	}
}
