package bootstrap

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/iampolicy"
)

func testEnv() *config.Environment {
	return &config.Environment{
		Name: "staging",
		AWS: config.AWS{AccountID: "123456789012", Region: "us-east-1",
			PlanRoleARN:  "arn:aws:iam::123456789012:role/deploybot-plan",
			ApplyRoleARN: "arn:aws:iam::123456789012:role/ci/deploybot-apply-staging"},
	}
}

func TestBuildIsValidIAMJSON(t *testing.T) {
	t.Parallel()
	r, err := Build(testEnv(), Options{Repo: "acme/infra"})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []Role{r.PlanRole, r.ApplyRole} {
		for name, doc := range map[string]*iampolicy.Document{"trust": role.Trust, "policy": role.Policy} {
			var raw map[string]any
			if err := json.Unmarshal([]byte(doc.JSON()), &raw); err != nil {
				t.Fatalf("%s %s: not JSON: %v", role.Name, name, err)
			}
			if raw["Version"] != "2012-10-17" {
				t.Errorf("%s %s: Version = %v", role.Name, name, raw["Version"])
			}
			sids := map[string]bool{}
			for _, s := range doc.Statement {
				if s.Effect != "Allow" || len(s.Action) == 0 {
					t.Errorf("%s %s: statement %+v", role.Name, name, s)
				}
				if name == "policy" && len(s.Resource) == 0 {
					t.Errorf("%s: statement %s has no Resource", role.Name, s.Sid)
				}
				if sids[s.Sid] {
					t.Errorf("%s %s: duplicate Sid %s (IAM requires unique Sids)", role.Name, name, s.Sid)
				}
				sids[s.Sid] = true
			}
			// IAM's limit for an inline role policy is 10,240 characters (without whitespace).
			if len(doc.JSON()) > 10240 {
				t.Errorf("%s %s is %d characters, over IAM's inline limit", role.Name, name, len(doc.JSON()))
			}
		}
	}
	if r.ApplyRole.Path != "/ci/" || r.ApplyRole.Name != "deploybot-apply-staging" {
		t.Errorf("apply role path/name = %q %q", r.ApplyRole.Path, r.ApplyRole.Name)
	}
}

func TestPlanRoleIsReadOnly(t *testing.T) {
	t.Parallel()
	r, err := Build(testEnv(), Options{Repo: "acme/infra"})
	if err != nil {
		t.Fatal(err)
	}
	implied := map[string]bool{}
	for _, xs := range dependentActions {
		for _, x := range xs {
			implied[x] = true
		}
	}
	for _, a := range r.PlanRole.Policy.Actions() {
		_, op, _ := strings.Cut(a, ":")
		if !readOnly(op) && !implied[a] {
			t.Errorf("plan role may %s, which is not a read", a)
		}
	}
	for _, a := range r.PlanRole.Policy.Actions() {
		if a == "secretsmanager:GetSecretValue" {
			t.Error("plan role must not read the secret's value")
		}
	}
}

func TestTrustPolicies(t *testing.T) {
	t.Parallel()
	r, err := Build(testEnv(), Options{Repo: "acme/infra"})
	if err != nil {
		t.Fatal(err)
	}
	optIn, err := Build(testEnv(), Options{Repo: "acme/infra", ApplyOnDefaultBranch: true})
	if err != nil {
		t.Fatal(err)
	}
	trusted := func(doc *iampolicy.Document, sub string) bool {
		return doc.Allows(iampolicy.Request{Action: "sts:AssumeRoleWithWebIdentity", Resource: "*", Context: map[string]string{
			OIDCHost + ":aud": OIDCAudience, OIDCHost + ":sub": sub}})
	}
	for _, c := range []struct {
		role *iampolicy.Document
		sub  string
		want bool
	}{
		{r.PlanRole.Trust, "repo:acme/infra:pull_request", true},
		{r.PlanRole.Trust, "repo:acme@1234/infra@5678:pull_request", true},
		{r.PlanRole.Trust, "repo:acme/infra:ref:refs/heads/main", true}, // drift checks and manual plans
		{r.PlanRole.Trust, "repo:acme/infra:ref:refs/heads/feature", false},
		{r.PlanRole.Trust, "repo:acme/infra:environment:staging", false},
		{r.PlanRole.Trust, "repo:evil/infra:pull_request", false},
		{r.ApplyRole.Trust, "repo:acme/infra:environment:staging", true},
		{r.ApplyRole.Trust, "repo:acme@1/infra@2:environment:staging", true},
		// Issue 11 item 1: the default branch does not get the apply role
		// (it would skip the environment's required reviewers) unless asked.
		{r.ApplyRole.Trust, "repo:acme/infra:ref:refs/heads/main", false},
		{r.ApplyRole.Trust, "repo:acme@1/infra@2:ref:refs/heads/main", false},
		{optIn.ApplyRole.Trust, "repo:acme/infra:ref:refs/heads/main", true},
		{optIn.ApplyRole.Trust, "repo:acme/infra:environment:staging", true},
		{optIn.ApplyRole.Trust, "repo:acme/infra:ref:refs/heads/feature", false},
		{r.ApplyRole.Trust, "repo:acme/infra:environment:production", false},
		{r.ApplyRole.Trust, "repo:acme/infra:pull_request", false},
		{r.ApplyRole.Trust, "repo:acme/infra:ref:refs/heads/feature", false},
	} {
		if got := trusted(c.role, c.sub); got != c.want {
			t.Errorf("sub %q: trusted = %v, want %v", c.sub, got, c.want)
		}
	}
	// The audience is required.
	if r.PlanRole.Trust.Allows(iampolicy.Request{Action: "sts:AssumeRoleWithWebIdentity", Resource: "*", Context: map[string]string{OIDCHost + ":sub": "repo:acme/infra:pull_request", OIDCHost + ":aud": "other"}}) {
		t.Error("a token for another audience must not be trusted")
	}
}

func TestBadRepo(t *testing.T) {
	t.Parallel()
	if _, err := Build(testEnv(), Options{Repo: "not a repo"}); err == nil || !strings.Contains(err.Error(), "OWNER/NAME") {
		t.Fatalf("err = %v", err)
	}
}
