package iampolicy

import (
	"net/url"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, v string
		want bool
	}{
		{"*", "anything", true},
		{"ecs:Describe*", "ecs:DescribeServices", true},
		{"ecs:Describe*", "ecs:CreateService", false},
		{"arn:aws:ecs:us-east-1:1:service/deploybot-x/*", "arn:aws:ecs:us-east-1:1:service/deploybot-x/worker", true},
		{"arn:aws:ecs:us-east-1:1:service/deploybot-x/*", "arn:aws:ecs:us-east-1:1:service/deploybot-y/worker", false},
		{"arn:aws:secretsmanager:*:1:secret:deploybot/x/prefect-api-key-??????", "arn:aws:secretsmanager:us-east-1:1:secret:deploybot/x/prefect-api-key-AbCdEf", true},
		{"arn:aws:secretsmanager:*:1:secret:deploybot/x/prefect-api-key-??????", "arn:aws:secretsmanager:us-east-1:1:secret:deploybot/x/prefect-api-key-AbCdE", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
	} {
		if got := Match(c.p, c.v, false); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.p, c.v, got, c.want)
		}
	}
}

func TestAllows(t *testing.T) {
	doc := &Document{Version: Version2012, Statement: []Statement{
		{Effect: "Allow", Action: StringList{"ecs:Describe*", "ecs:ListTasks"}, Resource: StringList{"*"}},
		{Effect: "Allow", Action: StringList{"iam:PassRole"}, Resource: StringList{"arn:aws:iam::1:role/deploybot/*"},
			Condition: map[string]map[string]StringList{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}}},
		{Effect: "Deny", Action: StringList{"ecs:DescribeClusters"}, Resource: StringList{"arn:aws:ecs:*:1:cluster/secret"}},
	}}
	for _, c := range []struct {
		name string
		r    Request
		want bool
	}{
		{"wildcard action", Request{Action: "ecs:DescribeServices"}, true},
		{"action case-insensitive", Request{Action: "ECS:describeservices"}, true},
		{"not allowed", Request{Action: "ecs:DeleteService"}, false},
		{"explicit deny wins", Request{Action: "ecs:DescribeClusters", Resource: "arn:aws:ecs:us-east-1:1:cluster/secret"}, false},
		{"condition holds", Request{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/deploybot/r", Context: map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}}, true},
		{"condition wrong value", Request{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/deploybot/r", Context: map[string]string{"iam:PassedToService": "lambda.amazonaws.com"}}, false},
		{"condition key missing", Request{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/deploybot/r"}, false},
		{"resource outside pattern", Request{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/admin", Context: map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}}, false},
	} {
		if got := doc.Allows(c.r); got != c.want {
			t.Errorf("%s: Allows = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseURLEncoded(t *testing.T) {
	raw := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":["a","b"]}]}`
	d, err := Parse(url.QueryEscape(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Statement) != 1 || d.Statement[0].Action[0] != "s3:GetObject" || len(d.Statement[0].Resource) != 2 {
		t.Fatalf("parsed %+v", d)
	}
	if d.JSON() != raw {
		t.Fatalf("round trip:\n%s\n%s", d.JSON(), raw)
	}
}
