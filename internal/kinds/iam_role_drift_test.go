package kinds_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// TestRoleHandMadePoliciesAreDrift: an inline policy put or a managed policy
// attached by hand to one of the stack's roles (a privilege escalation of
// the worker, say) shows as drift in inline_policies / managed_policies, and
// Update deletes and detaches exactly those, leaving ours alone unless its
// document differs.
func TestRoleHandMadePoliciesAreDrift(t *testing.T) {
	t.Parallel()
	const admin = "arn:aws:iam::aws:policy/AdministratorAccess"
	const star = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	for _, tc := range []struct {
		name    string
		address string
		ours    string // our inline policy
		// hand-made changes, with the admin credentials
		putInline []string
		attach    []string
		rewriteUs bool // also put a different document under our inline policy's name
		wantPaths []string
		wantCalls []string // the writes of Update, in order
	}{
		{name: "task role, extra inline and managed", address: stack.AddrTaskRole, ours: stack.TaskWorkerPolicy,
			putInline: []string{"hand-made"}, attach: []string{admin},
			wantPaths: []string{"inline_policies", "managed_policies"},
			wantCalls: []string{"DetachRolePolicy", "DeleteRolePolicy"}},
		{name: "execution role keeps the ECS execution policy", address: stack.AddrExecutionRole, ours: stack.ExecutionSecretPolicy,
			attach: []string{admin}, wantPaths: []string{"managed_policies"},
			wantCalls: []string{"DetachRolePolicy"}},
		{name: "two extra inline policies", address: stack.AddrExecutionRole, ours: stack.ExecutionSecretPolicy,
			putInline: []string{"b-extra", "a-extra"}, wantPaths: []string{"inline_policies"},
			wantCalls: []string{"DeleteRolePolicy", "DeleteRolePolicy"}},
		{name: "ours rewritten and an extra one", address: stack.AddrTaskRole, ours: stack.TaskWorkerPolicy,
			putInline: []string{"hand-made"}, rewriteUs: true,
			wantPaths: []string{"inline_policies", "inline_policy." + stack.TaskWorkerPolicy},
			wantCalls: []string{"PutRolePolicy", "DeleteRolePolicy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newComputeWorld(t, computeKey)
			c.ensure(tc.address)
			r := c.res(tc.address)
			k := c.kind(r)
			name := aws.String(r.Name)
			adminIAM := awsiam.NewFromConfig(c.w.Config())
			put := tc.putInline
			if tc.rewriteUs {
				put = append(put, tc.ours)
			}
			for _, p := range put {
				if _, err := adminIAM.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: name, PolicyName: aws.String(p), PolicyDocument: aws.String(star)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range tc.attach {
				if _, err := adminIAM.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: name, PolicyArn: aws.String(a)}); err != nil {
					t.Fatal(err)
				}
			}

			live := c.read(r)
			diff := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs)
			if d := cmp.Diff(tc.wantPaths, changePaths(diff)); d != "" {
				t.Fatalf("drift (-want +got):\n%s%s", d, describeChanges(diff))
			}
			for _, f := range diff {
				switch f.Path {
				case "inline_policies":
					want := jsonList(append([]string{tc.ours}, tc.putInline...))
					if f.Before != want || f.After != jsonList([]string{tc.ours}) {
						t.Errorf("inline_policies %q → %q, want %q → %q", f.Before, f.After, want, jsonList([]string{tc.ours}))
					}
				case "managed_policies":
					desired := r.Spec.(*iam.RoleSpec).ManagedPolicyARNs
					if f.Before != jsonList(append(append([]string(nil), desired...), tc.attach...)) || f.After != jsonList(desired) {
						t.Errorf("managed_policies %q → %q", f.Before, f.After)
					}
				}
			}

			c.w.ResetCalls()
			if _, err := k.Update(ctx, c.x, r, live, c.refs(r), diff); err != nil {
				t.Fatalf("update: %v", err)
			}
			var writes []string
			for _, call := range c.w.Calls() {
				if call.Write {
					writes = append(writes, call.Operation)
				}
			}
			if d := cmp.Diff(tc.wantCalls, writes); d != "" {
				t.Errorf("update writes (-want +got):\n%s", d)
			}
			inline, err := adminIAM.ListRolePolicies(ctx, &awsiam.ListRolePoliciesInput{RoleName: name})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]string{tc.ours}, inline.PolicyNames); d != "" {
				t.Errorf("inline policies after update (-want +got):\n%s", d)
			}
			att, err := adminIAM.ListAttachedRolePolicies(ctx, &awsiam.ListAttachedRolePoliciesInput{RoleName: name})
			if err != nil {
				t.Fatal(err)
			}
			var arns []string
			for _, a := range att.AttachedPolicies {
				arns = append(arns, aws.ToString(a.PolicyArn))
			}
			if d := cmp.Diff(r.Spec.(*iam.RoleSpec).ManagedPolicyARNs, arns); d != "" {
				t.Errorf("managed policies after update (-want +got):\n%s", d)
			}
			if d := computeDiff(must(k.Desired(r, c.refs(r))), c.read(r).Attrs); len(d) > 0 {
				t.Fatalf("changes after update:%s", describeChanges(d))
			}
		})
	}
}

// jsonList is a list as the plan shows it.
func jsonList(items []string) string { return resource.Set(items).AttrValue() }
