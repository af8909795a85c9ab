package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/plan"
)

// deletes are the addresses a plan deletes, each with its reason.
func deletes(p *plan.Plan) map[string]string {
	out := map[string]string{}
	for _, c := range p.Changes {
		if c.Action == plan.Delete {
			out[c.Address] = c.Reason
		}
	}
	return out
}

// TestE2EVPCChangeDeletesTheOldSecurityGroup (issue 11 item 11): moving the
// environment to another VPC leaves the worker security group of the old
// one behind unless the plan finds it by its tag. The plan deletes it, the
// apply removes it once the service has moved off it, a plan afterwards
// (while the tagging index still lists the deleted group) is empty, and a
// destroy proves that nothing is left.
func TestE2EVPCChangeDeletesTheOldSecurityGroup(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)
	oldSG := x.plan(env).Plan
	x.wantNone("changes right after apply", summary(oldSG))
	// The worker's group and the flow runs'.
	var oldSGs []string
	for _, it := range x.w.TaggedFor("demo") {
		if it.Service == "ec2" && it.Type == "security-group" {
			oldSGs = append(oldSGs, it.ID)
		}
	}
	if len(oldSGs) != 2 {
		t.Fatalf("security groups after apply: %v, want the worker's and the flow runs'", oldSGs)
	}

	vpc2, subnets2 := x.w.SeedExistingVPC("10.50.0.0/16", 2, true)
	moved := x.env("demo", x.vpc, vpc2, strings.Join(x.subnets, ", "), strings.Join(subnets2, ", "))
	p := x.plan(moved)
	got := deletes(p.Plan)
	for _, sgID := range oldSGs {
		orphan := "security_group.orphan_" + sgID
		reason, ok := got[orphan]
		if !ok {
			t.Fatalf("the plan does not delete the old VPC's security group %s; deletes: %v\nchanges: %v", sgID, got, summary(p.Plan))
		}
		for _, want := range []string{"deploybot:environment=demo", "left behind"} {
			if !strings.Contains(reason, want) {
				t.Errorf("reason %q does not say %q", reason, want)
			}
		}
	}
	for _, want := range []string{"security_group.worker", "security_group.flow_runs"} {
		if !strings.Contains(strings.Join(summary(p.Plan), "\n"), want) {
			t.Errorf("the plan does not make %s in the new VPC: %v", want, summary(p.Plan))
		}
	}

	rep, err := x.engine().Apply(context.Background(), p)
	if err != nil {
		t.Fatalf("apply: %v\nprogress:\n%s", err, x.progressText())
	}
	for _, s := range rep.Steps {
		if strings.HasPrefix(s.Address, "security_group.orphan_") && (s.Action != plan.Delete || s.Status != "done") {
			t.Errorf("step %s: %s %s", s.Address, s.Action, s.Status)
		}
	}
	var sgs []string
	for _, it := range x.w.TaggedFor("demo") {
		if it.Service == "ec2" && it.Type == "security-group" {
			sgs = append(sgs, it.ID)
		}
	}
	if len(sgs) != 2 || slices.Contains(oldSGs, sgs[0]) || slices.Contains(oldSGs, sgs[1]) {
		t.Fatalf("security groups of demo after the apply: %v (the old ones were %v)", sgs, oldSGs)
	}
	// The tagging index still lists the deleted group for a while; the
	// plan checks it with EC2 and has nothing to do.
	x.wantNone("changes after the move", summary(x.plan(moved).Plan))

	x.destroy(moved)
	x.wantNone("left after destroy", inventory(x.w, "demo"))
}

// TestE2ENamespaceRenameDeletesTheOldNamespace: renaming the Cloud Map
// namespace leaves the old namespace and the service in it; both are
// deleted, the service first.
func TestE2ENamespaceRenameDeletesTheOldNamespace(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	x.apply(x.env("demo"))
	renamed := x.env("demo", "tags:\n", "service_discovery: { namespace: workers.demo.internal }\ntags:\n")
	p := x.plan(renamed)
	var orphans []string
	for addr := range deletes(p.Plan) {
		if strings.Contains(addr, ".orphan_") {
			orphans = append(orphans, addr)
		}
	}
	if len(orphans) != 2 || !strings.HasPrefix(strings.Join(sortedCopy(orphans), " "), "service_discovery_namespace.orphan_ns-") {
		t.Fatalf("orphans planned: %v; want the old namespace and its service\nchanges: %v", orphans, summary(p.Plan))
	}
	rep, err := x.engine().Apply(context.Background(), p)
	if err != nil {
		t.Fatalf("apply: %v\nprogress:\n%s", err, x.progressText())
	}
	var order []string
	for _, s := range rep.Steps {
		if strings.Contains(s.Address, ".orphan_") {
			order = append(order, s.Address)
		}
	}
	if len(order) != 2 || !strings.HasPrefix(order[1], "service_discovery_namespace.") {
		t.Errorf("orphan deletes in the report: %v; want the service, then the namespace", order)
	}
	x.wantNone("changes after the rename", summary(x.plan(renamed).Plan))
	for _, it := range x.w.TaggedFor("demo") {
		if it.Service == "servicediscovery" && it.Type == "namespace" && !strings.Contains(it.ID, "ns-") {
			t.Errorf("unexpected namespace id %s", it.ID)
		}
	}
}

// TestE2EDestroyFailsWhenSomethingIsLeft: a resource tagged for the
// environment that no kind of deploybot knows (a queue made by hand) is
// noted by the plan and left alone, and the destroy fails naming it
// rather than reporting success.
func TestE2EDestroyFailsWhenSomethingIsLeft(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)
	_, err := sqs.NewFromConfig(x.w.Config()).CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName: aws.String("demo-by-hand"), Tags: map[string]string{"deploybot:environment": "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	queueARN := "arn:aws:sqs:us-east-1:123456789012:demo-by-hand"

	p := x.plan(env)
	x.wantNone("changes", summary(p.Plan))
	if !strings.Contains(strings.Join(p.Plan.Notes, "\n"), queueARN+" is tagged deploybot:environment=demo but is not part of its stack") {
		t.Errorf("the plan does not note the queue; notes:\n%s", strings.Join(p.Plan.Notes, "\n"))
	}

	rep, err := x.tryDestroy(env)
	var left *engine.LeftBehindError
	if !errors.As(err, &left) {
		t.Fatalf("destroy: %v; want a LeftBehindError", err)
	}
	if len(left.Left) != 1 || left.Left[0] != queueARN {
		t.Errorf("left: %v; want the queue", left.Left)
	}
	if rep.Status != plan.StatusFailed || !strings.Contains(rep.Error, queueARN) {
		t.Errorf("report: %s %q", rep.Status, rep.Error)
	}
	x.advance(time.Minute)
	var rest []string
	for _, it := range inventory(x.w, "demo") {
		if !strings.Contains(it, "demo-by-hand") {
			rest = append(rest, it)
		}
	}
	x.wantNone("left after destroy besides the queue", rest)
}

// laggingIndex is the Tagging API answering, besides what is there, ARNs
// of resources already deleted ("previously tagged",
// https://github.com/aws/aws-sdk/issues/302).
type laggingIndex struct {
	awsapi.TaggingAPI
	ghosts []string
}

func (l laggingIndex) GetResources(ctx context.Context, in *tagging.GetResourcesInput, opts ...func(*tagging.Options)) (*tagging.GetResourcesOutput, error) {
	out, err := l.TaggingAPI.GetResources(ctx, in, opts...)
	if err == nil && aws.ToString(in.PaginationToken) == "" {
		for _, arn := range l.ghosts {
			out.ResourceTagMappingList = append(out.ResourceTagMappingList, taggingtypes.ResourceTagMapping{ResourceARN: aws.String(arn),
				Tags: []taggingtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("demo")}}})
		}
	}
	return out, err
}

// TestE2EDestroyTrustsItsDeletesOverALaggingIndex: the ECS cluster and
// service a destroy deleted are still in the tagging index (ECS keeps them
// INACTIVE, which their kinds read as gone); the destroy succeeds. A cluster it did not
// delete would be left (TestE2EDestroyFailsWhenSomethingIsLeft).
func TestE2EDestroyTrustsItsDeletesOverALaggingIndex(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)
	e := x.engine()
	e.AWS.Tagging = laggingIndex{TaggingAPI: e.AWS.Tagging, ghosts: []string{
		"arn:aws:ecs:us-east-1:123456789012:cluster/deploybot-demo",
		"arn:aws:ecs:us-east-1:123456789012:service/deploybot-demo/worker",
	}}
	p, err := e.PlanDestroy(context.Background(), x.destroyStack(env))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Destroy(context.Background(), p); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if !strings.Contains(x.progressText(), "checked: nothing tagged deploybot:environment=demo is left") {
		t.Errorf("the destroy does not say it checked:\n%s", x.progressText())
	}
}
