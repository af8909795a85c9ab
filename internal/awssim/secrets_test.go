package awssim

import (
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/google/go-cmp/cmp"
)

const (
	tokA = "11111111-1111-4111-8111-111111111111"
	tokB = "22222222-2222-4222-8222-222222222222"
	tokC = "33333333-3333-4333-8333-333333333333"
)

func TestSecretsLifecycle(t *testing.T) {
	t.Parallel()
	w, clk := newTestWorld(t)
	c := secretsmanager.NewFromConfig(w.Config())
	name := "deploybot/staging/prefect-api-key"
	create := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("pnu_one"), ClientRequestToken: aws.String(tokA),
		Tags: []smtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}
	out, err := c.CreateSecret(bg, create)
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	if !regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:deploybot/staging/prefect-api-key-[A-Za-z0-9]{6}$`).MatchString(arn) {
		t.Fatalf("arn = %s", arn)
	}
	if aws.ToString(out.VersionId) != tokA {
		t.Fatalf("version id = %s, want the ClientRequestToken", aws.ToString(out.VersionId))
	}
	// Retrying the same request is idempotent; the same name with another token is not.
	if again, err := c.CreateSecret(bg, create); err != nil || aws.ToString(again.ARN) != arn {
		t.Fatalf("idempotent retry: %v", err)
	}
	other := *create
	other.ClientRequestToken = aws.String(tokB)
	if _, err := c.CreateSecret(bg, &other); errCode(t, err) != "ResourceExistsException" {
		t.Fatalf("create with another token: %v", err)
	}
	if _, err := c.PutSecretValue(bg, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("pnu_two"), ClientRequestToken: aws.String(tokB)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSecretValue(bg, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("changed"), ClientRequestToken: aws.String(tokB)}); errCode(t, err) != "ResourceExistsException" {
		t.Fatalf("same token, other value: %v", err)
	}
	d, err := c.DescribeSecret(bg, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{tokA: {"AWSPREVIOUS"}, tokB: {"AWSCURRENT"}}, d.VersionIdsToStages); diff != "" {
		t.Fatal(diff)
	}
	if _, err := c.PutSecretValue(bg, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("pnu_three"), ClientRequestToken: aws.String(tokC)}); err != nil {
		t.Fatal(err)
	}
	if v, ok := w.SecretValue(arn); !ok || v != "pnu_three" {
		t.Fatalf("SecretValue = %q %v", v, ok)
	}

	cases := []struct {
		name string
		in   *secretsmanager.DeleteSecretInput
		code string
	}{
		{"window too short", &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), RecoveryWindowInDays: aws.Int64(6)}, "InvalidParameterException"},
		{"both", &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)}, "InvalidParameterException"},
		{"missing", &secretsmanager.DeleteSecretInput{SecretId: aws.String("nope")}, "ResourceNotFoundException"},
		{"default window", &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn)}, ""},
		{"again", &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), RecoveryWindowInDays: aws.Int64(7)}, "InvalidRequestException"},
	}
	for _, tc := range cases {
		if _, err := c.DeleteSecret(bg, tc.in); errCode(t, err) != tc.code {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.code)
		}
	}
	d, err = c.DescribeSecret(bg, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil || d.DeletedDate == nil {
		t.Fatalf("describe of a secret pending deletion: %v %v", d, err)
	}
	if _, err := c.CreateSecret(bg, &other); errCode(t, err) != "InvalidRequestException" || !regexp.MustCompile("scheduled for deletion").MatchString(errMessage(err)) {
		t.Fatalf("create over pending deletion: %v", err)
	}
	if _, ok := w.SecretValue(arn); ok {
		t.Fatal("value of a deleted secret readable")
	}
	if got := w.TaggedFor("staging"); len(got) != 1 || got[0].Type != "secret (pending deletion)" {
		t.Fatalf("inventory = %+v", got)
	}
	if _, err := c.RestoreSecret(bg, &secretsmanager.RestoreSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.DescribeSecret(bg, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); d.DeletedDate != nil {
		t.Fatal("restored secret still has DeletedDate")
	}

	// Force delete: the name stays taken for a short while, then is free.
	if _, err := c.DeleteSecret(bg, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSecret(bg, &other); errCode(t, err) != "InvalidRequestException" {
		t.Fatalf("create right after force delete: %v", err)
	}
	clk.Advance(DefaultTimings().SecretForceDeletePurge + time.Second)
	if _, err := c.DescribeSecret(bg, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); errCode(t, err) != "ResourceNotFoundException" {
		t.Fatalf("describe after purge: %v", err)
	}
	again, err := c.CreateSecret(bg, &other)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.ARN) == arn {
		t.Fatal("a recreated secret got the same ARN suffix")
	}
}

func TestSecretRecoveryWindowExpires(t *testing.T) {
	t.Parallel()
	w, clk := newTestWorld(t)
	c := secretsmanager.NewFromConfig(w.Config())
	out, err := c.CreateSecret(bg, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v")})
	if err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteSecret(bg, &secretsmanager.DeleteSecretInput{SecretId: out.ARN, RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := del.DeletionDate.Sub(simStart), 7*24*time.Hour; got != want {
		t.Fatalf("deletion date in %v, want %v", got, want)
	}
	clk.Advance(7*24*time.Hour + time.Minute)
	if _, err := c.DescribeSecret(bg, &secretsmanager.DescribeSecretInput{SecretId: out.ARN}); errCode(t, err) != "ResourceNotFoundException" {
		t.Fatalf("after the window: %v", err)
	}
}

func TestSecretVersionStageMoves(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	c := secretsmanager.NewFromConfig(w.Config())
	out, err := c.CreateSecret(bg, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("one"), ClientRequestToken: aws.String(tokA)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSecretValue(bg, &secretsmanager.PutSecretValueInput{SecretId: out.ARN, SecretString: aws.String("two"), ClientRequestToken: aws.String(tokB)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   *secretsmanager.UpdateSecretVersionStageInput
		code string
	}{
		{"move without naming the holder", &secretsmanager.UpdateSecretVersionStageInput{SecretId: out.ARN, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tokA)}, "InvalidParameterException"},
		{"move to a missing version", &secretsmanager.UpdateSecretVersionStageInput{SecretId: out.ARN, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tokC), RemoveFromVersionId: aws.String(tokB)}, "ResourceNotFoundException"},
		{"roll back to the first version", &secretsmanager.UpdateSecretVersionStageInput{SecretId: out.ARN, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tokA), RemoveFromVersionId: aws.String(tokB)}, ""},
	}
	for _, tc := range cases {
		if _, err := c.UpdateSecretVersionStage(bg, tc.in); errCode(t, err) != tc.code {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.code)
		}
	}
	d, err := c.DescribeSecret(bg, &secretsmanager.DescribeSecretInput{SecretId: out.ARN})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{tokA: {"AWSCURRENT"}, tokB: {"AWSPREVIOUS"}}, d.VersionIdsToStages); diff != "" {
		t.Fatal(diff)
	}
	if v, _ := w.SecretValue(aws.ToString(out.ARN)); v != "one" {
		t.Fatalf("current value = %q", v)
	}
}
