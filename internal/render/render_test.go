package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/plan"
)

// bigPlan builds a plan whose diff is at least size bytes: destroys and
// replacements first (so the warnings have something to list), then many
// created resources with long JSON values.
func bigPlan(size int) *plan.Plan {
	p := stagingPlan(plan.OpApply, nil, "A very large plan, built by the test.")
	for i := range 8 {
		p.Changes = append(p.Changes, plan.Change{Address: fmt.Sprintf("log_group.old_%d", i), Kind: "log_group",
			Name: fmt.Sprintf("/deploybot/staging/old-%d", i), Action: plan.Delete, Reason: "no longer in the environment file"})
	}
	for i := range 4 {
		p.Changes = append(p.Changes, plan.Change{Address: fmt.Sprintf("security_group.extra_%d", i), Kind: "security_group",
			Action: plan.Replace, Reason: "vpc_id changed",
			Fields: []plan.FieldChange{{Path: "vpc_id", Before: "vpc-1", After: "vpc-2", ForcesReplacement: true}}})
	}
	total := 0
	for i := 0; total < size; i++ {
		c := plan.Change{Address: fmt.Sprintf("ecs_task_definition.worker_%04d", i), Kind: "ecs_task_definition",
			Name: fmt.Sprintf("deploybot-staging-worker-%04d", i), Action: plan.Create,
			Fields: []plan.FieldChange{
				{Path: "container_definitions", After: containerDefinition(fmt.Sprintf("registry.example.com/team/worker:%d", i))},
				{Path: "cpu", After: "512"},
				{Path: "memory", After: "1024"},
			}}
		p.Changes = append(p.Changes, c)
		for _, l := range buildLines(&plan.Plan{Changes: []plan.Change{c}}, false).all() {
			total += len(diffBlockLine(l)) + 1
		}
	}
	p.Fingerprint = p.ComputeFingerprint()
	return p
}

// checkMarkdown checks a comment's structure as GitHub would parse it
// (checkStructure).
func checkMarkdown(t *testing.T, md string) {
	t.Helper()
	checkStructure(t, "comment.md", md)
}

var fenceLines = regexp.MustCompile("(?s)\n(`{3,})diff\n(.*?)\n`{3,}\n")

func TestCommentCutTo65536(t *testing.T) {
	p := bigPlan(200 << 10)
	if n := len(strings.Join(diffTexts(p), "\n")); n < 200<<10 {
		t.Fatalf("test plan too small: %d bytes of diff", n)
	}
	o := commentOpts(p)
	got := Comment(p, nil, o)

	if len(got) > DefaultCommentMaxLen || utf8.RuneCountInString(got) > DefaultCommentMaxLen {
		t.Fatalf("comment is %d bytes, over GitHub's %d", len(got), DefaultCommentMaxLen)
	}
	if len(got) < DefaultCommentMaxLen-4096 {
		t.Errorf("comment is only %d bytes: the cut threw away more than it had to", len(got))
	}
	if !strings.HasPrefix(got, o.Marker+"\n") {
		t.Errorf("marker is not the first line: %q", firstLine(got))
	}
	if m, ok := ParseMarker(got); !ok || m.Fingerprint != p.Fingerprint {
		t.Errorf("ParseMarker = %+v, %v; want fingerprint %s", m, ok, p.Fingerprint)
	}
	checkMarkdown(t, got)
	for _, want := range []string{
		"**Plan: " + fmt.Sprint(len(p.Changes)-12) + " to add, 0 to change, 4 to replace, 8 to destroy.**",
		"> [!CAUTION]",
		"`log_group.old_0` (`/deploybot/staging/old-0`) **will be destroyed**: no longer in the environment file",
		"`security_group.extra_3` **will be replaced**: vpc\\_id changed",
		"A very large plan, built by the test.",
		"the [job summary](" + testRunURL + ")",
		"`deploybot-plan-staging.json`",
		"planned at commit `9f8e7d6`",
		"[workflow run](" + testRunURL + ")",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("cut comment lacks %q", want)
		}
	}
	for _, addr := range p.Destructive() {
		if !strings.Contains(got, "`"+addr+"`") {
			t.Errorf("cut comment does not warn about %s", addr)
		}
	}

	// The notice says exactly how many lines were kept and cut.
	m := fenceLines.FindStringSubmatch(got)
	if m == nil {
		t.Fatal("no diff block in the cut comment")
	}
	kept := strings.Count(m[2], "\n") + 1
	total := len(buildLines(p, false).all())
	notice := fmt.Sprintf("it shows the first %d of %d diff lines; the last %d lines", kept, total, total-kept)
	if !strings.Contains(got, notice) {
		t.Errorf("cut notice does not say %q", notice)
	}
	if want := strings.Join(diffTexts(p)[:kept], "\n"); m[2] != want {
		t.Error("the kept diff is not the plan's first lines, unchanged")
	}
	if next := diffTexts(p)[kept]; next != "" {
		t.Errorf("the cut splits a resource: the first line cut is %q", next)
	}
	if !regexp.MustCompile("were cut, from `ecs_task_definition\\.worker_\\d{4}` on\\.").MatchString(got) {
		t.Error("cut notice does not name the first resource cut")
	}
}

// Short diffs are shown open; longer ones folded (Atlantis folds beyond 12
// lines). The job summary is always open.
func TestDiffFolding(t *testing.T) {
	short := &plan.Plan{Environment: "staging", Operation: plan.OpApply, Changes: []plan.Change{
		{Address: "ecs_service.worker", Kind: "ecs_service", Action: plan.Update,
			Fields: []plan.FieldChange{{Path: "desired_count", Before: "1", After: "2"}}}}}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"short comment", Comment(short, nil, CommentOptions{}), "<details open><summary>"},
		{"long comment", Comment(updatePlan(), nil, CommentOptions{}), "<details><summary>The plan"},
		{"long summary", Summary(updatePlan(), nil, SummaryOptions{}), "<details open><summary>The plan"},
	}
	for _, tc := range tests {
		if !strings.Contains(tc.got, tc.want) {
			t.Errorf("%s lacks %q", tc.name, tc.want)
		}
	}
}

// outsideFences drops the contents of fenced code blocks, where text is
// shown literally and cannot act as markdown or HTML.
func outsideFences(md string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func diffTexts(p *plan.Plan) []string {
	var out []string
	for _, l := range buildLines(p, false).all() {
		out = append(out, diffBlockLine(l))
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Whatever the budget, the comment fits and stays well-formed.
func TestCommentFitsAnyLimit(t *testing.T) {
	many := destroyPlan()
	for i := range 3000 {
		many.Changes = append(many.Changes, plan.Change{Address: fmt.Sprintf("log_group.extra_%04d", i), Kind: "log_group",
			Action: plan.Delete, Reason: "no longer in the environment file"})
	}
	many.Fingerprint = many.ComputeFingerprint()
	unicodePlan := updatePlan()
	unicodePlan.Notes = []string{strings.Repeat("日本語の説明 🚀 ", 400)}
	unicodePlan.Changes[2].Fields[1].After = strings.Repeat("é", 5000)

	inputs := []struct {
		name string
		p    *plan.Plan
		r    *plan.Report
	}{
		{"big", bigPlan(200 << 10), nil},
		{"many destroys", many, nil},
		{"unicode", unicodePlan, nil},
		{"rolled back", nil, rolledBackReport()},
		{"first deploy failed", nil, firstDeployFailedReport()},
	}
	for _, in := range inputs {
		p := reportPlan(in.p, in.r)
		for _, limit := range []int{64, 200, 700, 1500, 3000, 6000, 12000, 30000, 65536} {
			t.Run(fmt.Sprintf("%s/%d", in.name, limit), func(t *testing.T) {
				o := commentOpts(p)
				o.MaxLen = limit
				got := Comment(in.p, in.r, o)
				if len(got) > limit {
					t.Fatalf("%d bytes, over the limit of %d", len(got), limit)
				}
				if !utf8.ValidString(got) {
					t.Fatal("not valid UTF-8")
				}
				if limit >= 200 && !strings.HasPrefix(got, o.Marker) {
					t.Errorf("marker lost: %q", firstLine(got))
				}
				if limit >= 700 && !strings.Contains(got, Escape(summaryLine(p))) {
					t.Errorf("summary line lost")
				}
				if limit >= 200 {
					checkMarkdown(t, got)
				}
			})
		}
	}

	// With 3,012 destroys at the real limit, the list is shortened and says
	// how many it left out.
	got := Comment(many, nil, commentOpts(many))
	if len(got) > DefaultCommentMaxLen {
		t.Fatalf("%d bytes", len(got))
	}
	if !regexp.MustCompile(`> - … and \d+ more destroyed resources, not shown for lack of space\.`).MatchString(got) {
		t.Error("shortened warning list does not say how many resources it left out")
	}
}

func TestSummaryCutTo1MB(t *testing.T) {
	p := bigPlan(1536 << 10)
	got := Summary(p, nil, summaryOpts(p))
	if len(got) > DefaultSummaryMaxLen {
		t.Fatalf("summary is %d bytes, over %d", len(got), DefaultSummaryMaxLen)
	}
	if len(got) < DefaultSummaryMaxLen-8192 {
		t.Errorf("summary is only %d bytes", len(got))
	}
	checkStructure(t, "summary.md", got)
	for _, want := range []string{"The plan is too long for a job summary", "the plan JSON artifact `deploybot-plan-staging.json` of [this run](" + testRunURL + ")", "> [!CAUTION]"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	// Small plans are shown whole and open.
	small := Summary(updatePlan(), nil, summaryOpts(updatePlan()))
	if !strings.Contains(small, "<details open>") || strings.Contains(small, "too long") {
		t.Error("a small plan's summary should be complete and expanded")
	}
}

// A field marked Sensitive never shows a value, in any view, even when a
// caller wrongly filled Before/After.
func TestSensitiveNeverPrinted(t *testing.T) {
	const before, after = "pnu_OLDSECRETvalue1234", "pnu_NEWSECRETvalue5678"
	p := updatePlan()
	p.Changes = append(p.Changes, plan.Change{Address: "secret.prefect_api_key", Kind: "secret", Name: "deploybot/staging/prefect-api-key",
		Action: plan.Update, Fields: []plan.FieldChange{{Path: "value", Before: before, After: after, Sensitive: true}}})
	created := createPlan()
	created.Changes[3].Fields = append(created.Changes[3].Fields, plan.FieldChange{Path: "value2", After: after, Sensitive: true})
	deleted := destroyPlan()
	deleted.Changes[8].Fields = append(deleted.Changes[8].Fields, plan.FieldChange{Path: "value", Before: before, Sensitive: true})

	for _, p := range []*plan.Plan{p, created, deleted} {
		r := passedReport()
		r.Plan = p
		views := renderPlanAll(t, p)
		for k, v := range renderReportAll(t, r) {
			views["report "+k] = v
		}
		for name, out := range views {
			for _, secret := range []string{before, after, "OLDSECRET", "NEWSECRET"} {
				if bytes.Contains(out, []byte(secret)) {
					t.Errorf("%s of %s prints the sensitive value %q", name, p.Environment, secret)
				}
			}
			if name == "txt" || name == "comment.md" || name == "summary.md" {
				if !bytes.Contains(out, []byte("(sensitive value")) {
					t.Errorf("%s does not say the value is sensitive", name)
				}
			}
			if name == "json" && !bytes.Contains(out, []byte(`"sensitive": true`)) {
				t.Errorf("json does not mark the field sensitive")
			}
		}
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	tests := []MarkerData{
		{Env: "staging", Fingerprint: "3f2a9b8c7d6e5f40", HeadSHA: testHead, BaseSHA: testBase},
		{Env: "prod-eu", Fingerprint: "0000000000000000"},
		{Env: "weird name --> <b>x</b>", Fingerprint: "a b=c", HeadSHA: "%41", BaseSHA: "\n"},
		{Env: "ünïcode", HeadSHA: testHead},
	}
	for _, want := range tests {
		t.Run(want.Env, func(t *testing.T) {
			m := Marker(want.Env, want.Fingerprint, want.HeadSHA, want.BaseSHA)
			if strings.Count(m, "-->") != 1 || !strings.HasSuffix(m, " -->") || strings.Contains(m, "\n") {
				t.Fatalf("marker is not one closed HTML comment: %q", m)
			}
			got, ok := ParseMarker(m + "\n### deploybot plan\n")
			if !ok {
				t.Fatalf("ParseMarker(%q) failed", m)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	if m := Marker("staging", "f", "h", "b"); m != "<!-- deploybot:plan env=staging fingerprint=f head=h base=b -->" {
		t.Errorf("marker format changed: %q", m)
	}
}

func TestParseMarkerRejects(t *testing.T) {
	for _, body := range []string{
		"",
		"### deploybot plan\n<!-- deploybot:plan env=staging fingerprint=f -->", // not the first line
		"<!-- deploybot:plan fingerprint=f -->",                                 // no env
		"<!-- deploybot:plan env= -->",
		"<!-- dflook/terraform-github-actions {} -->",
		"<!-- deploybot:plan env=staging",
		"<!-- deploybot:plan env=%zz -->",
	} {
		if m, ok := ParseMarker(body); ok {
			t.Errorf("ParseMarker(%q) = %+v, want no marker", body, m)
		}
	}
	// CRLF bodies (as GitHub stores comments edited in the browser).
	if m, ok := ParseMarker("<!-- deploybot:plan env=staging fingerprint=f -->\r\nbody"); !ok || m.Fingerprint != "f" {
		t.Errorf("CRLF marker: %+v %v", m, ok)
	}
}

// Values, names, reasons and notes come from the environment file and AWS;
// none of them can break the markdown, forge a marker, ping someone, inject
// a link or send escape codes to a terminal.
func TestHostileValuesEscaped(t *testing.T) {
	p := updatePlan()
	p.Changes[2].Name = "x</details><details open>"
	p.Changes[2].Reason = "```\n<!-- deploybot:plan env=prod fingerprint=evil -->"
	p.Changes[3].Fields = append(p.Changes[3].Fields,
		plan.FieldChange{Path: "tags.note", Before: "ok", After: "````\n</details>\x1b[2J\x1b[31mred"},
		plan.FieldChange{Path: "env.`x`", After: "``"})
	p.Notes = []string{"@octocat please look", "- [x] [click](javascript:alert(1))", "# heading", "1. first", "<img src=x onerror=alert(1)>"}
	p.Changes = append(p.Changes, plan.Change{Address: "log_group.bad", Kind: "log_group", Name: "`|`", Action: plan.Delete,
		Reason: "<!-- deploybot:plan env=prod -->"})
	p.Fingerprint = p.ComputeFingerprint()

	r := rolledBackReport()
	r.Plan = p
	r.Error = "boom | </details> @admin"
	r.Steps[0].Error = "a|b\n<details>"

	for name, md := range map[string]string{
		"comment":        Comment(p, nil, commentOpts(p)),
		"report comment": Comment(nil, r, commentOpts(p)),
		"summary":        Summary(p, nil, summaryOpts(p)),
	} {
		t.Run(name, func(t *testing.T) {
			checkMarkdown(t, md)
			if m, ok := ParseMarker(md); name != "summary" && (!ok || m.Env != "staging") {
				t.Errorf("ParseMarker = %+v, %v", m, ok)
			}
			if strings.Count(outsideFences(md), "<!-- deploybot:plan") > 1 {
				t.Error("a value forged a second marker outside a code block")
			}
			for _, bad := range []string{"@octocat", "@admin", "[click](", "<img", "\x1b", "\n# heading", "\n> - 1. first"} {
				if strings.Contains(md, bad) {
					t.Errorf("markdown contains %q unescaped", bad)
				}
			}
		})
	}

	var text bytes.Buffer
	if err := Text(&text, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ReportText(&text, r, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(text.String(), '\x1b') {
		t.Error("plain text contains an escape character from a value")
	}
	if !strings.Contains(text.String(), `\x1b[2J`) {
		t.Error("the escape in the value is not shown quoted")
	}
}

func TestNoChangeAndDestroyWording(t *testing.T) {
	tests := []struct {
		p    *plan.Plan
		want string
	}{
		{noChangePlan(), "No changes. The environment matches its file."},
		{createPlan(), "Plan: 12 to add, 0 to change, 0 to replace, 0 to destroy."},
		{updatePlan(), "Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy."},
		{replacePlan(), "Plan: 0 to add, 1 to change, 2 to replace, 0 to destroy."},
		{destroyPlan(), "Plan: 0 to add, 0 to change, 0 to replace, 12 to destroy."},
		{&plan.Plan{Environment: "gone", Operation: plan.OpDestroy}, "No changes. Nothing of environment gone exists to destroy."},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := Text(&b, tc.p, TextOptions{}); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(b.String(), tc.want+"\n") {
			t.Errorf("%s: text does not end with %q:\n%s", tc.p.Environment, tc.want, b.String())
		}
	}
}

func TestFormatValue(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		path, in string
		want     []string
	}{
		{"cpu", "512", []string{"512"}},
		{"n", "-1", []string{"-1"}},
		{"n", "0x10", []string{`"0x10"`}},
		{"n", "NaN", []string{`"NaN"`}},
		{"b", "true", []string{"true"}},
		{"x", plan.Unknown, []string{plan.Unknown}},
		{"x", "", []string{`""`}},
		{"x", "a\nb", []string{`"a\nb"`}},
		{"x", `["a","b"]`, []string{`["a", "b"]`}},
		{"x", `{"a":"` + long + `"}`, []string{"{", `  "a": "` + long + `"`, "}"}},
		{"x", `{"a":"` + long[:100] + `"}`, []string{`{"a": "` + long[:100] + `"}`}},
		{"x", `{"interval":30,"retries":3}`, []string{`{"interval": 30, "retries": 3}`}},
		{"x", "[not json", []string{`"[not json"`}},
		// Shapes a reviewer reads faster than their JSON.
		{"task_definition", "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:7", []string{"deploybot-demo-worker:7"}},
		{"egress", `["-1:0-0:0.0.0.0/0"]`, []string{"all to 0.0.0.0/0"}},
		{"ingress", `["tcp:443-443:10.0.0.0/16","udp:1000-2000:sg-0123"]`, []string{"tcp 443 from 10.0.0.0/16", "udp 1000-2000 from sg-0123"}},
		{"ingress", `[]`, []string{"none"}},
		{"inline_policy.x", `{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:x"}]}`,
			[]string{"Read: Allow secretsmanager:GetSecretValue on arn:x"}},
		{"trust_policy", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}`,
			[]string{"Allow sts:AssumeRole by Service ecs-tasks.amazonaws.com if StringEquals aws:SourceAccount = 123456789012"}},
		{"inline_policy.x", `{"Statement":[{"Effect":"Deny","NotAction":"iam:*","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"NotResource":"arn:y"}]}`,
			[]string{"Deny everything but iam:* by anyone but AWS arn:aws:iam::123456789012:root on everything but arn:y"}},
		{"x", `["` + long + `","b"]`, []string{`"` + long + `"`, `"b"`}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, formatValue(tc.path, tc.in)); diff != "" {
			t.Errorf("formatValue(%q, %q) (-want +got):\n%s", tc.path, tc.in, diff)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func TestTextWriteErrors(t *testing.T) {
	if err := Text(failingWriter{}, updatePlan(), TextOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Text error = %v", err)
	}
	if err := ReportText(failingWriter{}, passedReport(), TextOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("ReportText error = %v", err)
	}
}

// roundTrip decodes what js writes of x and checks it is doc(x); it returns
// the decoded document.
func roundTrip[T, D any](t *testing.T, x T, js func(T) ([]byte, error), doc func(T) D) D {
	t.Helper()
	b, err := js(x)
	if err != nil {
		t.Fatal(err)
	}
	var got D
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(doc(x), got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	return got
}

// The JSON documents decode back into their types unchanged, so the Action
// (and anyone's scripts) can read them with the exported types.
func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range planCases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.plan()
			got := roundTrip(t, p, JSON, NewPlanDoc)
			if got.FormatVersion != FormatVersion || got.Fingerprint != p.Fingerprint {
				t.Errorf("format_version %q, fingerprint %q", got.FormatVersion, got.Fingerprint)
			}
		})
	}
	for _, tc := range reportCases {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, tc.report(), ReportJSON, NewReportDoc)
		})
	}
	// A plan without a stored fingerprint gets the computed one.
	p := updatePlan()
	want := p.Fingerprint
	p.Fingerprint = ""
	if got := NewPlanDoc(p).Fingerprint; got != want {
		t.Errorf("fingerprint = %q, want %q", got, want)
	}
}

// A plan that could not be made is reported with no plan at all.
func TestReportWithoutPlan(t *testing.T) {
	r := &plan.Report{Environment: "staging", Operation: "plan", Status: plan.StatusFailed,
		Error: "read iam_role.task: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/deploybot-plan/gh is not authorized to perform: iam:GetRole"}
	o := CommentOptions{Marker: Marker("staging", "", testHead, testBase), HeadSHA: testHead, RunURL: testRunURL}
	md := Comment(nil, r, o)
	var text bytes.Buffer
	if err := ReportText(&text, r, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"comment": md, "summary": Summary(nil, r, SummaryOptions{}), "text": text.String()} {
		for _, want := range []string{"plan failed", "iam:GetRole"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, got)
			}
		}
		if strings.Contains(got, "#### Plan") || strings.Contains(got, "applied at") {
			t.Errorf("%s talks about a plan or apply that did not happen:\n%s", name, got)
		}
	}
	if m, ok := ParseMarker(md); !ok || m.Env != "staging" {
		t.Errorf("ParseMarker = %+v %v", m, ok)
	}
	checkMarkdown(t, md)
}
