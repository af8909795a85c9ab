package engine_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/plan"
)

// TestE2EHandMadeRolePoliciesAreRemoved: someone with admin credentials
// escalates the worker's task role by hand, with an inline policy granting
// everything and an attached AdministratorAccess. The next plan shows
// exactly those two drifts on iam_role.task, the apply removes both and
// touches nothing else, and the plan after it has no changes.
func TestE2EHandMadeRolePoliciesAreRemoved(t *testing.T) {
	t.Parallel()
	const adminPolicy = "arn:aws:iam::aws:policy/AdministratorAccess"
	ctx := context.Background()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)

	admin := iam.NewFromConfig(x.w.Config())
	role := aws.String("deploybot-demo-task")
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("debug-everything"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: role, PolicyArn: aws.String(adminPolicy)}); err != nil {
		t.Fatal(err)
	}

	p := x.plan(env)
	if d := cmp.Diff([]string{"~ iam_role.task inline_policies managed_policies"}, summary(p.Plan)); d != "" {
		t.Fatalf("plan after hand-made policies (-want +got):\n%s", d)
	}
	got := p.Plan.Changes[indexOf(p.Plan, "iam_role.task")].Fields
	want := []plan.FieldChange{
		{Path: "inline_policies", Before: `["debug-everything","deploybot-prefect-worker"]`, After: `["deploybot-prefect-worker"]`},
		{Path: "managed_policies", Before: `["` + adminPolicy + `"]`, After: `[]`},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("iam_role.task fields (-want +got):\n%s", d)
	}

	x.resetCalls()
	x.apply(env)
	if d := cmp.Diff([]string{"IAM.DetachRolePolicy", "IAM.DeleteRolePolicy"}, x.writes()); d != "" {
		t.Errorf("writes of the apply (-want +got):\n%s", d)
	}
	inline, err := admin.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: role})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"deploybot-prefect-worker"}, inline.PolicyNames); d != "" {
		t.Errorf("inline policies after the apply (-want +got):\n%s", d)
	}
	att, err := admin.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: role})
	if err != nil {
		t.Fatal(err)
	}
	if len(att.AttachedPolicies) != 0 {
		t.Errorf("managed policies after the apply: %v", att.AttachedPolicies)
	}
	x.wantNone("plan after removing the hand-made policies has changes", summary(x.plan(env).Plan))
}
