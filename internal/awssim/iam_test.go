package awssim

import (
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/google/go-cmp/cmp"
)

const ecsTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func TestIAMRoleLifecycle(t *testing.T) {
	t.Parallel()
	w, clk := newTestWorld(t)
	c := iam.NewFromConfig(w.Config())
	out, err := c.CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String("deploybot-staging-execution"), Path: aws.String("/deploybot/"),
		AssumeRolePolicyDocument: aws.String(ecsTrust), MaxSessionDuration: aws.Int32(7200),
		Tags: []iamtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Role.Arn)
	if want := "arn:aws:iam::123456789012:role/deploybot/deploybot-staging-execution"; arn != want {
		t.Fatalf("arn = %s, want %s", arn, want)
	}
	if w.RoleAssumableByECS(arn) {
		t.Fatal("a role ECS can assume right after creation: IAM propagation is not modelled")
	}
	clk.Advance(DefaultTimings().IAMPropagation)
	if !w.RoleAssumableByECS(arn) {
		t.Fatal("role still not assumable after propagation")
	}

	got, err := c.GetRole(bg, &iam.GetRoleInput{RoleName: aws.String("deploybot-staging-execution")})
	if err != nil {
		t.Fatal(err)
	}
	if doc := aws.ToString(got.Role.AssumeRolePolicyDocument); doc == ecsTrust {
		t.Fatal("GetRole returned the trust policy decoded; IAM returns it URL-encoded")
	} else if dec, _ := url.QueryUnescape(doc); dec != ecsTrust {
		t.Fatalf("decoded trust policy = %s", dec)
	}
	if diff := cmp.Diff(int32(7200), aws.ToInt32(got.Role.MaxSessionDuration)); diff != "" {
		t.Fatal(diff)
	}

	inline := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"}]}`
	steps := []struct {
		name string
		call func() error
		code string
	}{
		{"create twice", call(bg, c.CreateRole, &iam.CreateRoleInput{RoleName: aws.String("deploybot-staging-execution"), AssumeRolePolicyDocument: aws.String(ecsTrust)}), "EntityAlreadyExists"},
		{"bad json", call(bg, c.CreateRole, &iam.CreateRoleInput{RoleName: aws.String("other"), AssumeRolePolicyDocument: aws.String("{nope")}), "MalformedPolicyDocument"},
		{"unknown oidc principal", call(bg, c.CreateRole, &iam.CreateRoleInput{RoleName: aws.String("other"), AssumeRolePolicyDocument: aws.String(
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`)}), "MalformedPolicyDocument"},
		{"attach unknown policy", call(bg, c.AttachRolePolicy, &iam.AttachRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyArn: aws.String("arn:aws:iam::aws:policy/Nope")}), "NoSuchEntity"},
		{"attach", call(bg, c.AttachRolePolicy, &iam.AttachRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyArn: aws.String(ECSTaskExecutionRolePolicyARN)}), ""},
		{"put inline", call(bg, c.PutRolePolicy, &iam.PutRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyName: aws.String("secret"), PolicyDocument: aws.String(inline)}), ""},
		{"delete with policies attached", call(bg, c.DeleteRole, &iam.DeleteRoleInput{RoleName: aws.String("deploybot-staging-execution")}), "DeleteConflict"},
		{"get missing inline", call(bg, c.GetRolePolicy, &iam.GetRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyName: aws.String("nope")}), "NoSuchEntity"},
		{"detach", call(bg, c.DetachRolePolicy, &iam.DetachRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyArn: aws.String(ECSTaskExecutionRolePolicyARN)}), ""},
		{"delete with inline policy", call(bg, c.DeleteRole, &iam.DeleteRoleInput{RoleName: aws.String("deploybot-staging-execution")}), "DeleteConflict"},
	}
	for _, s := range steps {
		if got := errCode(t, s.call()); got != s.code {
			t.Fatalf("%s: code %q, want %q", s.name, got, s.code)
		}
	}

	if !w.RoleAllows(arn, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf") {
		t.Fatal("inline policy does not allow the secret")
	}
	if w.RoleAllows(arn, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf") {
		t.Fatal("inline policy allows another secret")
	}
	pol, err := c.GetRolePolicy(bg, &iam.GetRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyName: aws.String("secret")})
	if err != nil {
		t.Fatal(err)
	}
	if dec, _ := url.QueryUnescape(aws.ToString(pol.PolicyDocument)); dec != inline || aws.ToString(pol.PolicyDocument) == inline {
		t.Fatalf("GetRolePolicy document = %s", aws.ToString(pol.PolicyDocument))
	}
	names, err := c.ListRolePolicies(bg, &iam.ListRolePoliciesInput{RoleName: aws.String("deploybot-staging-execution")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"secret"}, names.PolicyNames); diff != "" {
		t.Fatal(diff)
	}
	if _, err := c.DeleteRolePolicy(bg, &iam.DeleteRolePolicyInput{RoleName: aws.String("deploybot-staging-execution"), PolicyName: aws.String("secret")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(bg, &iam.DeleteRoleInput{RoleName: aws.String("deploybot-staging-execution")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRole(bg, &iam.GetRoleInput{RoleName: aws.String("deploybot-staging-execution")}); errCode(t, err) != "NoSuchEntity" {
		t.Fatalf("GetRole after delete: %v", err)
	}
	// The SDK's own waiter runs against the simulation.
	if err := iam.NewRoleExistsWaiter(c, func(o *iam.RoleExistsWaiterOptions) { o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond }).Wait(bg,
		&iam.GetRoleInput{RoleName: aws.String("deploybot-staging-execution")}, 20*time.Millisecond); err == nil {
		t.Fatal("RoleExists waiter succeeded for a deleted role")
	}
}

func TestIAMOIDCProvider(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	c := iam.NewFromConfig(w.Config())
	in := &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://token.actions.githubusercontent.com"), ClientIDList: []string{"sts.amazonaws.com"}}
	out, err := c.CreateOpenIDConnectProvider(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"; aws.ToString(out.OpenIDConnectProviderArn) != want {
		t.Fatalf("arn = %s", aws.ToString(out.OpenIDConnectProviderArn))
	}
	if _, err := c.CreateOpenIDConnectProvider(bg, in); errCode(t, err) != "EntityAlreadyExists" {
		t.Fatalf("second create: %v", err)
	}
	got, err := c.GetOpenIDConnectProvider(bg, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: out.OpenIDConnectProviderArn})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"token.actions.githubusercontent.com", "sts.amazonaws.com"}, []string{aws.ToString(got.Url), got.ClientIDList[0]}); diff != "" {
		t.Fatal(diff)
	}
	list, err := c.ListOpenIDConnectProviders(bg, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(list.OpenIDConnectProviderList) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := c.GetOpenIDConnectProvider(bg, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::123456789012:oidc-provider/x")}); errCode(t, err) != "NoSuchEntity" {
		t.Fatalf("get missing: %v", err)
	}
}

// TestIAMListRolePoliciesPages: ListRolePolicies and ListAttachedRolePolicies
// page like IAM (MaxItems, IsTruncated, Marker), so that the SDK's
// paginators, which deploybot uses, see every page.
func TestIAMListRolePoliciesPages(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	c := iam.NewFromConfig(w.Config())
	role := aws.String("deploybot-staging-task")
	if _, err := c.CreateRole(bg, &iam.CreateRoleInput{RoleName: role, AssumeRolePolicyDocument: aws.String(ecsTrust)}); err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	names := []string{"a", "b", "c"}
	for _, n := range names {
		if _, err := c.PutRolePolicy(bg, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String(n), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	arns := []string{ECSTaskExecutionRolePolicyARN, "arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AdministratorAccess"}
	for _, a := range arns {
		if _, err := c.AttachRolePolicy(bg, &iam.AttachRolePolicyInput{RoleName: role, PolicyArn: aws.String(a)}); err != nil {
			t.Fatal(err)
		}
	}

	first, err := c.ListRolePolicies(bg, &iam.ListRolePoliciesInput{RoleName: role, MaxItems: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, first.PolicyNames); diff != "" || !first.IsTruncated || first.Marker == nil {
		t.Fatalf("first page: truncated %v, marker %v, names (-want +got):\n%s", first.IsTruncated, first.Marker, diff)
	}
	second, err := c.ListRolePolicies(bg, &iam.ListRolePoliciesInput{RoleName: role, MaxItems: aws.Int32(2), Marker: first.Marker})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c"}, second.PolicyNames); diff != "" || second.IsTruncated || second.Marker != nil {
		t.Fatalf("last page: truncated %v, marker %v, names (-want +got):\n%s", second.IsTruncated, second.Marker, diff)
	}

	var gotNames []string
	pn := iam.NewListRolePoliciesPaginator(c, &iam.ListRolePoliciesInput{RoleName: role}, func(o *iam.ListRolePoliciesPaginatorOptions) { o.Limit = 1 })
	for _, page := range allPages(t, pn) {
		gotNames = append(gotNames, page.PolicyNames...)
	}
	if diff := cmp.Diff(names, gotNames); diff != "" {
		t.Fatalf("inline policies through the paginator (-want +got):\n%s", diff)
	}
	var gotARNs []string
	pa := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: role}, func(o *iam.ListAttachedRolePoliciesPaginatorOptions) { o.Limit = 2 })
	for _, page := range allPages(t, pa) {
		for _, p := range page.AttachedPolicies {
			gotARNs = append(gotARNs, aws.ToString(p.PolicyArn))
		}
	}
	if diff := cmp.Diff(arns, gotARNs); diff != "" {
		t.Fatalf("attached policies through the paginator (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		in   *iam.ListRolePoliciesInput
		code string
	}{
		{"bad marker", &iam.ListRolePoliciesInput{RoleName: role, Marker: aws.String("nope")}, "InvalidInput"},
		{"max items 0", &iam.ListRolePoliciesInput{RoleName: role, MaxItems: aws.Int32(0)}, "ValidationError"},
		{"max items 1001", &iam.ListRolePoliciesInput{RoleName: role, MaxItems: aws.Int32(1001)}, "ValidationError"},
		{"no such role", &iam.ListRolePoliciesInput{RoleName: aws.String("nope")}, "NoSuchEntity"},
	} {
		_, err := c.ListRolePolicies(bg, tc.in)
		if got := errCode(t, err); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
}
