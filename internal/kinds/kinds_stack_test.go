package kinds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/kinds/autoscaling"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/secretsmanager"
	"github.com/deploybot/deploybot/internal/kinds/servicediscovery"

	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

func TestLifecycleECSCloudMapAutoscaling(t *testing.T) {
	t.Parallel()
	for _, tc := range []lifecycleCase{
		{address: stack.AddrCluster, change: andTags(editSpec(func(s *ecs.ClusterSpec) { s.ContainerInsights = false })), wantChanged: plusTags("container_insights")},
		{address: stack.AddrTaskDefinition, change: editSpec(func(s *ecs.TaskDefinitionSpec) { s.Container.Image = "prefecthq/prefect-aws:0.7.11-python3.12" }), wantChanged: []string{"container.image"}},
		{address: stack.AddrNamespace, change: setTags, wantChanged: tagChangePaths},
		{address: stack.AddrDiscoveryService, change: andTags(editSpec(func(s *servicediscovery.ServiceSpec) { s.TTL = 30 })), wantChanged: plusTags("dns_records")},
		{address: stack.AddrService, change: andTags(editSpec(func(s *ecs.ServiceSpec) { s.MaximumPercent = 150 })), wantChanged: plusTags("deployment.maximum_percent")},
		{address: stack.AddrScalableTarget, change: andTags(editSpec(func(s *autoscaling.TargetSpec) { s.MaxCapacity = 5 })), wantChanged: plusTags("max_capacity")},
		{address: stack.AddrScalingPolicy, change: editSpec(func(s *autoscaling.PolicySpec) { s.TargetCPUPercent = 55 }), wantChanged: []string{"target_value"}},
	} {
		t.Run(tc.address, func(t *testing.T) { runLifecycle(t, tc) })
	}
}

func TestPlanAfterApplyIsEmpty(t *testing.T) {
	t.Parallel()
	c := newComputeWorld(t, computeKey)
	c.applyAll()
	lives := c.readAll()
	refs := liveRefs(lives)
	for _, r := range c.st.Resources {
		live := lives[r.Address]
		if live == nil {
			t.Errorf("%s: absent after apply", r.Address)
			continue
		}
		if !live.Ours {
			t.Errorf("%s: not ours after apply", r.Address)
		}
		depRefs := resource.Refs{}
		for _, d := range r.DependsOn {
			depRefs[d] = refs[d]
		}
		if d := computeDiff(must(c.kind(&r).Desired(&r, depRefs)), live.Attrs); len(d) > 0 {
			t.Errorf("%s: changes right after apply:%s", r.Address, describeChanges(d))
		}
	}
}

// TestNoChangePlanCallCount counts the AWS calls of reading the whole
// existing-mode stack with nothing to change (issue 2 set 25; the flow
// runs' roles, log group, security group, queues and rule of issue 9 add
// 18, read at once, so the wall time stays the same).
func TestNoChangePlanCallCount(t *testing.T) {
	t.Parallel()
	c := newComputeWorld(t, computeKey)
	c.applyAll()
	c.w.ResetCalls()
	c.readAll()
	got := map[string]int{}
	total := 0
	for _, call := range c.w.Calls() {
		got[call.Service+" "+call.Operation]++
		total++
	}
	want := map[string]int{
		"EC2 DescribeSecurityGroups":                       2, // security_group.worker, .flow_runs (the engine reads them with one call)
		"ECS DescribeClusters":                             1, // ecs_cluster.main
		"CloudWatch Logs DescribeLogGroups":                2, // log_group.worker, .flow_runs
		"CloudWatch Logs ListTagsForResource":              2,
		"IAM GetRole":                                      4, // the worker's two roles and the flow runs' two
		"IAM ListAttachedRolePolicies":                     4,
		"IAM GetRolePolicy":                                3, // the flow-run task role has no inline policy in this file
		"IAM ListRolePolicies":                             4, // an inline policy put by hand is drift
		"SQS GetQueueUrl":                                  2, // sqs_queue.observer, .observer_dlq
		"SQS GetQueueAttributes":                           2,
		"SQS ListQueueTags":                                2,
		"EventBridge DescribeRule":                         1, // event_rule.ecs_tasks
		"EventBridge ListTagsForResource":                  1,
		"EventBridge ListTargetsByRule":                    1,
		"Secrets Manager DescribeSecret":                   1,
		"ECS DescribeServices":                             2, // the service, and the task definition's "which revision runs"
		"ECS DescribeTaskDefinition":                       1,
		"ServiceDiscovery ListNamespaces":                  2, // the namespace, and the discovery service finding it
		"ServiceDiscovery ListTagsForResource":             2,
		"ServiceDiscovery ListServices":                    1,
		"Application Auto Scaling DescribeScalableTargets": 1,
		"Application Auto Scaling ListTagsForResource":     1,
		"Application Auto Scaling DescribeScalingPolicies": 1,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("calls of a no-change read (-want +got):\n%s", d)
	}
	if total > 43 {
		t.Errorf("a no-change plan reads with %d AWS calls; the budget is 43", total)
	}
	t.Logf("no-change read of the existing-mode stack: %d AWS calls", total)
}

// TestKeyNeverAppears applies, changes the key, plans, and destroys, and
// looks for the key in every attr, output, progress line, error and in the
// JSON of the stack.
func TestKeyNeverAppears(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey)
	c.applyAll()
	var seen []string
	note := func(what string, v any) {
		b, _ := json.Marshal(v)
		seen = append(seen, what+" "+string(b)+" "+fmt.Sprintf("%+v", v))
	}
	lives := c.readAll()
	for a, l := range lives {
		note(a+" live", l)
	}
	rotated, err := stack.Build(c.env, computeKey+"-rotated")
	if err != nil {
		t.Fatal(err)
	}
	note("stack", rotated)
	refs := liveRefs(lives)
	for _, r := range rotated.Resources {
		note(r.Address+" desired", must(c.kind(&r).Desired(&r, refs)))
	}
	// A failing write: the error must not echo the key.
	secret := rotated.Resource(stack.AddrSecret)
	c.w.SetFaults(awssim.Faults{ThrottleFraction: 1})
	if _, err := (secretsmanager.Secret).Create(ctx, c.x, secret, nil); err != nil {
		note("error", err.Error())
	}
	c.w.SetFaults(awssim.Faults{})
	for i := len(c.st.Resources) - 1; i >= 0; i-- {
		r := &c.st.Resources[i]
		if err := c.kind(r).Delete(ctx, c.x, r, lives[r.Address]); err != nil {
			note("delete error", err.Error())
		}
	}
	note("progress", c.said())
	for _, s := range seen {
		if strings.Contains(s, "COMPUTEKEY") {
			t.Errorf("the key appears in: %.300s", s)
		}
	}
	sort.Strings(seen)
}

// BenchmarkReadStack reads the whole existing-mode stack concurrently, as a
// no-change plan does, with 50 ms of simulated latency per AWS call. The
// longest chain of dependent calls inside one kind is 3 (IAM role, Cloud Map
// service), so a read takes about 3 round trips.
func BenchmarkReadStack(b *testing.B) {
	c := newComputeWorld(b, computeKey)
	c.applyAll()
	c.w.Latency = 50 * time.Millisecond
	c.w.ResetCalls()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.readAll()
	}
	b.StopTimer()
	b.ReportMetric(float64(len(c.w.Calls()))/float64(b.N), "calls/read")
}
