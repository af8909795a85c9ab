package kinds_test

import (
	"net/url"
	"testing"

	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

func TestCanonicalPolicy(t *testing.T) {
	t.Parallel()
	ours := `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["s3:Get","ecs:RunTask"],"Resource":["*"]},{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"aws:SourceAccount":["1"]}}}]}`
	want := iam.CanonicalPolicy(ours)
	for _, tc := range []struct {
		name, doc string
		same      bool
	}{
		{"identical", ours, true},
		{"URL-encoded, as IAM returns it", url.QueryEscape(ours), true},
		{"URL-encoded with %20 spaces", url.PathEscape(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}, {"Sid": "A", "Effect": "Allow", "Action": ["ecs:RunTask", "s3:Get"], "Resource": "*"}]}`), true},
		{"single values and another statement order", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"1"}}},{"Sid":"A","Effect":"Allow","Action":["ecs:RunTask","s3:Get"],"Resource":"*"}]}`, true},
		{"an action more", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["s3:Get","ecs:RunTask","ecs:StopTask"],"Resource":["*"]},{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"aws:SourceAccount":["1"]}}}]}`, false},
		{"another account", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["s3:Get","ecs:RunTask"],"Resource":["*"]},{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"aws:SourceAccount":["2"]}}}]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := iam.CanonicalPolicy(tc.doc)
			if (got == want) != tc.same {
				t.Errorf("canonical forms equal = %t, want %t\n got: %s\nwant: %s", got == want, tc.same, got, want)
			}
		})
	}
}

// TestServiceDesiredCountWithAutoscaling: Application Auto Scaling owns the
// desired count, so it is not desired (and not diffed) when autoscaling is on.
func TestServiceDesiredCountWithAutoscaling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		autoscaling bool
		want        bool
	}{{false, true}, {true, false}} {
		r := &resource.Resource{Address: stack.AddrService, Kind: "ecs_service", Spec: &ecs.ServiceSpec{
			Autoscaling: tc.autoscaling, DesiredCount: 2, MaximumPercent: 200, MinimumHealthy: 100}}
		_, got := must((ecs.Service).Desired(r, nil))["desired_count"]
		if got != tc.want {
			t.Errorf("autoscaling %t: desired_count desired = %t, want %t", tc.autoscaling, got, tc.want)
		}
	}
}

// TestServicePlacementOnReplacedResources: placement that refers to a
// resource being replaced (unknown id) replaces the service; known new ids
// are an in-place update.
func TestServicePlacementOnReplacedResources(t *testing.T) {
	t.Parallel()
	r := &resource.Resource{Address: stack.AddrService, Kind: "ecs_service", Spec: &ecs.ServiceSpec{
		MaximumPercent: 200, MinimumHealthy: 100,
		Subnets:         []resource.Ref{{Address: "subnet.public_a", Key: "id"}, {Literal: "subnet-lit"}},
		SecurityGroups:  []resource.Ref{{Address: "security_group.worker", Key: "id"}},
		ServiceRegistry: resource.Ref{Address: stack.AddrDiscoveryService, Key: "arn"},
		TaskDefinition:  resource.Ref{Address: stack.AddrTaskDefinition, Key: "arn"},
	}}
	known := resource.Refs{
		"subnet.public_a":          {"id": "subnet-1"},
		"security_group.worker":    {"id": "sg-1"},
		stack.AddrDiscoveryService: {"arn": "arn:sd"},
		stack.AddrTaskDefinition:   {"arn": "arn:td"},
	}
	for _, tc := range []struct {
		name string
		refs resource.Refs
		want bool
	}{{"known", known, false}, {"being replaced", resource.Refs{}, true}} {
		a := must((ecs.Service).Desired(r, tc.refs))
		for _, p := range []string{"network.subnets", "network.security_groups", "service_registry"} {
			if a[p].ForceNew != tc.want {
				t.Errorf("%s: %s ForceNew = %t, want %t", tc.name, p, a[p].ForceNew, tc.want)
			}
		}
		if a["task_definition"].ForceNew {
			t.Errorf("%s: a new task definition is an update, not a replacement", tc.name)
		}
	}
}
