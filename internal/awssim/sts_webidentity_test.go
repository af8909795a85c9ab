package awssim

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func fakeJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("not-verified"))
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	ic := iam.NewFromConfig(w.Config())
	if _, err := ic.CreateOpenIDConnectProvider(bg, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://token.actions.githubusercontent.com"), ClientIDList: []string{"sts.amazonaws.com"}}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},` +
		`"StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/infra:*"}}}]}`
	role, err := ic.CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String("deploybot-plan"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutRolePolicy(bg, &iam.PutRolePolicyInput{RoleName: aws.String("deploybot-plan"), PolicyName: aws.String("read"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:DescribeLogGroups"],"Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	exp := float64(simStart.Add(time.Hour).Unix())
	good := map[string]any{"iss": "https://token.actions.githubusercontent.com", "aud": "sts.amazonaws.com", "sub": "repo:acme/infra:pull_request", "exp": exp}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	s := sts.NewFromConfig(w.Config())
	cases := []struct {
		name  string
		token string
		role  string
		code  string
	}{
		{"not a jwt", "abc", *role.Role.Arn, "InvalidIdentityToken"},
		{"unknown issuer", fakeJWT(t, with("iss", "https://example.com")), *role.Role.Arn, "InvalidIdentityToken"},
		{"wrong audience", fakeJWT(t, with("aud", "other")), *role.Role.Arn, "InvalidIdentityToken"},
		{"expired", fakeJWT(t, with("exp", float64(simStart.Add(-time.Minute).Unix()))), *role.Role.Arn, "ExpiredTokenException"},
		{"other repository", fakeJWT(t, with("sub", "repo:evil/infra:pull_request")), *role.Role.Arn, "AccessDenied"},
		{"missing role", fakeJWT(t, good), "arn:aws:iam::123456789012:role/nope", "AccessDenied"},
		{"allowed", fakeJWT(t, good), *role.Role.Arn, ""},
	}
	var out *sts.AssumeRoleWithWebIdentityOutput
	for _, tc := range cases {
		o, err := s.AssumeRoleWithWebIdentity(bg, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(tc.role), RoleSessionName: aws.String("gha-run-1"), WebIdentityToken: aws.String(tc.token)})
		if got := errCode(t, err); got != tc.code {
			t.Fatalf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
		if err == nil {
			out = o
		}
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::123456789012:assumed-role/deploybot-plan/gha-run-1" {
		t.Fatalf("assumed role = %s", got)
	}
	creds := credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	cfg := w.ConfigFor(creds)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != aws.ToString(out.AssumedRoleUser.Arn) || aws.ToString(id.UserId) != aws.ToString(out.AssumedRoleUser.AssumedRoleId) {
		t.Fatalf("caller identity = %s %s", aws.ToString(id.Arn), aws.ToString(id.UserId))
	}
	// The session carries the role's policies: reads allowed, writes denied.
	logs := cloudwatchlogs.NewFromConfig(cfg)
	if _, err := logs.DescribeLogGroups(bg, &cloudwatchlogs.DescribeLogGroupsInput{}); err != nil {
		t.Fatalf("allowed read: %v", err)
	}
	if _, err := logs.CreateLogGroup(bg, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/x")}); errCode(t, err) != "AccessDeniedException" {
		t.Fatalf("write with a read-only session: %v", err)
	}
}
