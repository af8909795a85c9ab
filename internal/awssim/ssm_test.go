package awssim

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestSSMParameters(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	c := ssm.NewFromConfig(w.Config())
	name := aws.String("/deploybot/staging/lock")
	tags := []ssmtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"get missing", call(bg, c.GetParameter, &ssm.GetParameterInput{Name: name}), "ParameterNotFound"},
		{"create", call(bg, c.PutParameter, &ssm.PutParameterInput{Name: name, Value: aws.String("a"), Type: ssmtypes.ParameterTypeString, Tags: tags}), ""},
		{"create again", call(bg, c.PutParameter, &ssm.PutParameterInput{Name: name, Value: aws.String("b"), Type: ssmtypes.ParameterTypeString}), "ParameterAlreadyExists"},
		{"overwrite with tags", call(bg, c.PutParameter, &ssm.PutParameterInput{Name: name, Value: aws.String("b"), Overwrite: aws.Bool(true), Tags: tags}), "ValidationException"},
		{"overwrite", call(bg, c.PutParameter, &ssm.PutParameterInput{Name: name, Value: aws.String("b"), Overwrite: aws.Bool(true)}), ""},
	}
	for _, tc := range cases {
		if got := errCode(t, tc.call()); got != tc.code {
			t.Fatalf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	got, err := c.GetParameter(bg, &ssm.GetParameterInput{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Parameter.Value) != "b" || got.Parameter.Version != 2 {
		t.Fatalf("parameter = %s v%d", aws.ToString(got.Parameter.Value), got.Parameter.Version)
	}
	if items := w.TaggedFor("staging"); len(items) != 1 || items[0].ID != "arn:aws:ssm:us-east-1:123456789012:parameter/deploybot/staging/lock" {
		t.Fatalf("inventory = %+v", items)
	}
	if _, err := c.DeleteParameter(bg, &ssm.DeleteParameterInput{Name: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteParameter(bg, &ssm.DeleteParameterInput{Name: name}); errCode(t, err) != "ParameterNotFound" {
		t.Fatalf("delete twice: %v", err)
	}
}
