package render

import (
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/plan"
)

// A policy change is a statement-level diff: the changed statement as one
// - and one + line (wrapped to the width), two statements of context either
// side, the other unchanged ones counted, not repeated.
func TestPolicyChangeIsAStatementDiff(t *testing.T) {
	before := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"Logs","Effect":"Allow","Action":["logs:GetLogEvents","logs:PutLogEvents"],"Resource":"*"},` +
		`{"Sid":"Network","Effect":"Allow","Action":["ec2:DescribeSubnets","ec2:DescribeVpcs"],"Resource":"*"},` +
		`{"Sid":"Pass","Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::123456789012:role/a"},` +
		`{"Sid":"Run","Effect":"Allow","Action":["ecs:RunTask","ecs:StopTask"],"Resource":"*"},` +
		`{"Sid":"Tag","Effect":"Allow","Action":"ecs:TagResource","Resource":"*"},` +
		`{"Sid":"Describe","Effect":"Allow","Action":"ecs:DescribeTasks","Resource":"*"},` +
		`{"Sid":"Register","Effect":"Allow","Action":"ecs:RegisterTaskDefinition","Resource":"*"}]}`
	after := strings.Replace(before, `"arn:aws:iam::123456789012:role/a"`, `["arn:aws:iam::123456789012:role/a","arn:aws:iam::123456789012:role/b"]`, 1)
	p := &plan.Plan{Environment: "demo", Operation: plan.OpApply, Changes: []plan.Change{{
		Address: "iam_role.task", Kind: "iam_role", Name: "deploybot-demo-task", Action: plan.Update,
		Fields: []plan.FieldChange{{Path: "inline_policy.worker", Before: before, After: after}},
	}}}
	var got []string
	for _, l := range buildLines(p, false).all() {
		got = append(got, diffBlockLine(l))
	}
	want := []string{
		"!   iam_role.task (deploybot-demo-task)",
		"!     inline_policy.worker",
		"        Logs: Allow logs:GetLogEvents, logs:PutLogEvents on *",
		"        Network: Allow ec2:DescribeSubnets, ec2:DescribeVpcs on *",
		"-       Pass: Allow iam:PassRole on arn:aws:iam::123456789012:role/a",
		"+       Pass: Allow iam:PassRole on arn:aws:iam::123456789012:role/a,",
		"+         arn:aws:iam::123456789012:role/b",
		"        Run: Allow ecs:RunTask, ecs:StopTask on *",
		"        Tag: Allow ecs:TagResource on *",
		"        # (2 statements unchanged)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A message from Prefect or AWS is text in the report's story, whatever it
// holds: braces are not a format, markup is escaped.
func TestStoryTakesMessagesAsText(t *testing.T) {
	r := rolledBackReport()
	r.Error = ""
	r.Gate.Reason = "worker {} never came {} <b>online</b> @team"
	md := Comment(nil, r, CommentOptions{})
	checkStructure(t, "comment.md", md)
	if !strings.Contains(md, "worker {} never came {} &lt;b&gt;online&lt;/b&gt; @\u200bteam") {
		t.Errorf("the reason is not shown as its text:\n%s", md)
	}
	var text strings.Builder
	if err := ReportText(&text, r, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "worker {} never came {} <b>online</b> @team") {
		t.Errorf("terminal report:\n%s", text.String())
	}
}
