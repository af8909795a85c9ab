package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/stack"
)

var e2eKey = fakekey.Prefect("E2E")

// envYAML is an existing-network environment; VPC and SUBNETS are filled
// with the seeded VPC.
var envYAML = envYAMLHead + `  AUTOSCALING
  env: { PREFECT_LOGGING_LEVEL: INFO }
network:
  mode: existing
  vpc_id: VPC
  subnet_ids: [SUBNETS]
  assign_public_ip: true
tags:
  team: data-platform
`

// autoscalingYAML goes into envYAML; TestE2EAutoscalingTurnedOff removes it.
var autoscalingYAML = "  autoscaling: { min: 1, max: 3, target_cpu_percent: 70 }\n"

// world is an account with an existing VPC of two public subnets, for
// existing-network environments (envYAML).
type world struct {
	*account
	vpc     string
	subnets []string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	x := newAccount(t, newTestClock(), e2eKey)
	vpc, subnets := x.w.SeedExistingVPC("10.40.0.0/16", 2, true)
	x.resetCalls()
	return &world{account: x, vpc: vpc, subnets: subnets}
}

// env loads an environment file named name, with edits applied as
// "old" → "new" replacements of the YAML.
func (x *world) env(name string, edits ...string) *config.Environment {
	x.tb.Helper()
	y := strings.ReplaceAll(envYAML, "NAME", name)
	y = strings.ReplaceAll(y, "  AUTOSCALING\n", autoscalingYAML)
	y = strings.ReplaceAll(y, "VPC", x.vpc)
	y = strings.ReplaceAll(y, "SUBNETS", strings.Join(x.subnets, ", "))
	return x.load(name, y, edits...)
}

func summary(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Action == plan.NoOp {
			continue
		}
		line := c.Action.Symbol() + " " + c.Address
		for _, f := range c.Fields {
			if c.Action != plan.Create {
				line += " " + f.Path
			}
		}
		out = append(out, line)
	}
	return out
}

func inventory(w *awssim.World, env string) []string {
	var out []string
	for _, it := range w.TaggedFor(env) {
		out = append(out, it.Service+" "+it.Type+" "+it.ID)
	}
	sort.Strings(out)
	return out
}

func TestE2EEmptyAccountPlanWritesNothing(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	p := x.plan(x.env("demo"))
	want := []string{
		"+ ecs_cluster.main", "+ iam_role.task", "+ log_group.worker", "+ secret.prefect_api_key", "+ security_group.worker",
		"+ iam_role.execution", "+ service_discovery_namespace.main", "+ service_discovery_service.worker",
		"+ task_definition.worker", "+ ecs_service.worker",
		"+ iam_role.flow_execution", "+ iam_role.flow_task", "+ log_group.flow_runs", "+ security_group.flow_runs",
		"+ sqs_queue.observer_dlq", "+ sqs_queue.observer", "+ event_rule.ecs_tasks", "+ prefect_work_pool.main",
		"+ prefect_deployment.smoke",
	}
	if autoscalingYAML != "" {
		want = append(want, "+ autoscaling_target.worker", "+ autoscaling_policy.cpu")
	}
	if d := cmp.Diff(sortedCopy(want), sortedCopy(summary(p.Plan))); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if w := x.writes(); len(w) != 0 {
		t.Fatalf("plan wrote: %v", w)
	}
	again := x.plan(x.env("demo"))
	if p.Plan.Fingerprint == "" || p.Plan.Fingerprint != again.Plan.Fingerprint {
		t.Fatal("fingerprint unstable across runs")
	}
	// The same plan printed twice is byte-identical (the file path aside).
	again.Plan.File = p.Plan.File
	b1, _ := json.Marshal(p.Plan)
	b2, _ := json.Marshal(again.Plan)
	if string(b1) != string(b2) {
		t.Fatalf("two plans of one state differ:\n%s\n%s", b1, b2)
	}
}

func TestE2EApplyUpdateDestroy(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	rep := x.apply(env)
	if rep.Status != plan.StatusSucceeded {
		t.Fatalf("status %s", rep.Status)
	}
	// The service kind hands back the deployment it started; the engine
	// passes it on without knowing what it is.
	if d := ecs.DeploymentOf(rep.Outcomes); d == nil || d.Info.TaskDefinition == "" || !strings.HasPrefix(d.Info.WorkerPrefix, "demo-") {
		t.Fatalf("deployment: %+v", d)
	}
	again := x.plan(env)
	x.wantNone("plan right after apply has changes", summary(again.Plan))

	// An update of image and cpu: exactly the task definition (a new
	// revision), the service that runs it, and the flow runs' image, which
	// is the worker's when flow_runs.image is not set.
	// (The worker-name prefix is a digest of the container definition: it
	// changes with every revision, by design.)
	env2 := x.env("demo", "image: prefecthq/prefect-aws:3.1", "image: prefecthq/prefect-aws:3.2", "cpu: 512", "cpu: 256")
	up := x.plan(env2)
	got := summary(up.Plan)
	want := []string{
		"~ prefect_work_pool.main defaults.image",
		"~ prefect_deployment.smoke pool_defaults", // it carries the pool's new defaults
		"~ task_definition.worker container.env.DEPLOYBOT_WORKER_PREFIX container.image cpu",
		"~ ecs_service.worker task_definition",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("update plan (-want +got):\n%s", d)
	}
	for _, f := range up.Plan.Changes[indexOf(up.Plan, "task_definition.worker")].Fields {
		if f.Path == "cpu" && (f.Before != "512" || f.After != "256") || f.Path == "container.image" && f.After != "prefecthq/prefect-aws:3.2" {
			t.Fatalf("field %+v", f)
		}
	}
	if f := up.Plan.Changes[indexOf(up.Plan, "ecs_service.worker")].Fields[0]; f.After != plan.Unknown || !strings.HasSuffix(f.Before, ":1") {
		t.Fatalf("service field %+v", f)
	}
	rep = x.apply(env2)
	if d := ecs.DeploymentOf(rep.Outcomes); d == nil || !strings.HasSuffix(d.Info.TaskDefinition, ":2") || !strings.HasSuffix(d.Info.PreviousTaskDefinition, ":1") {
		t.Fatalf("deployment after update: %+v", d)
	}
	x.wantNone("plan after update has changes", summary(x.plan(env2).Plan))

	// Another environment in the same account stays untouched by a destroy.
	other := x.env("other")
	x.apply(other)
	otherBefore := inventory(x.w, "other")
	rep = x.destroy(env2)
	if rep.Status != plan.StatusSucceeded {
		t.Fatalf("destroy status %s", rep.Status)
	}
	x.wantNone("destroy left", inventory(x.w, "demo"))
	if d := cmp.Diff(otherBefore, inventory(x.w, "other")); d != "" {
		t.Fatalf("destroy touched another environment (-before +after):\n%s", d)
	}
	x.wantNone("other environment drifted", summary(x.plan(other).Plan))
}

// TestE2ECrashAfterEveryWrite kills the run after its k-th write for every k,
// then runs again from scratch: every run converges, with no duplicates.
func TestE2ECrashAfterEveryWrite(t *testing.T) {
	t.Parallel()
	clean := newWorld(t)
	clean.apply(clean.env("demo"))
	n := len(clean.writes())
	want := len(inventory(clean.w, "demo"))
	if n < 10 {
		t.Fatalf("a clean apply made only %d writes", n)
	}
	for k := 1; k < n; k++ {
		t.Run(fmt.Sprint("after write ", k), func(t *testing.T) {
			x := newWorld(t)
			env := x.env("demo")
			x.crashAfterWrite(k, "apply", x.tryApply, env)
			// The re-run starts at once, while AWS may still be finishing
			// what the dead run started (a Cloud Map namespace is created
			// asynchronously and is not listed until its operation succeeds).
			x.apply(env)
			x.wantConverged("not converged", env)
			if got := len(inventory(x.w, "demo")); got != want {
				t.Fatalf("%d resources after crash and re-run, a clean apply has %d:\n%s", got, want, strings.Join(inventory(x.w, "demo"), "\n"))
			}
		})
	}
}

// TestE2EAutoscalingTurnedOff: a file that drops autoscaling deletes the
// scaling policy and target (they would keep resizing the service), and a
// destroy from such a file still removes ones left behind.
func TestE2EAutoscalingTurnedOff(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	x.apply(x.env("demo"))
	off := x.env("demo", "  autoscaling: { min: 1, max: 3, target_cpu_percent: 70 }\n", "")
	p := x.plan(off)
	want := []string{"- autoscaling_policy.cpu", "- autoscaling_target.worker"}
	if d := cmp.Diff(want, summary(p.Plan)); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if p.Plan.Changes[0].Reason != "the environment file no longer asks for it" {
		t.Fatalf("reason %q", p.Plan.Changes[0].Reason)
	}
	if _, err := x.engine().Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	x.wantNone("not converged", summary(x.plan(off).Plan))
	// Turned on again, then destroyed from the file that has it off.
	x.apply(x.env("demo"))
	x.destroy(off)
	x.wantNone("destroy left", inventory(x.w, "demo"))
}

// TestE2EDestroyCrashAfterEveryWrite kills a destroy after its k-th write
// for every k; a fresh destroy finishes the job.
func TestE2EDestroyCrashAfterEveryWrite(t *testing.T) {
	t.Parallel()
	clean := newWorld(t)
	clean.apply(clean.env("demo"))
	clean.resetCalls()
	clean.destroy(clean.env("demo"))
	n := len(clean.writes())
	if n < 5 {
		t.Fatalf("a clean destroy made only %d writes", n)
	}
	for k := 1; k < n; k++ {
		t.Run(fmt.Sprint("after write ", k), func(t *testing.T) {
			x := newWorld(t)
			env := x.env("demo")
			x.apply(env)
			x.crashAfterWrite(k, "destroy", x.tryDestroy, env)
			x.destroy(env)
			x.wantNone("left after crash and re-run", inventory(x.w, "demo"))
			x.wantNoPool(env)
		})
	}
}

// TestE2EOwnSecurityGroupsGiven: a file that switches to its own security
// groups moves the service onto them, then deletes the worker group.
func TestE2EOwnSecurityGroupsGiven(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	x.apply(x.env("demo"))
	out, err := awsapi.New(x.w.Config()).EC2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("platform-workers"), Description: aws.String("the platform team's"), VpcId: aws.String(x.vpc)})
	if err != nil {
		t.Fatal(err)
	}
	own := aws.ToString(out.GroupId)
	env := x.env("demo", "  assign_public_ip: true\n", "  assign_public_ip: true\n  security_group_ids: ["+own+"]\n")
	p := x.plan(env)
	// The flow runs move into the file's groups too.
	want := []string{"- security_group.worker", "- security_group.flow_runs", "~ prefect_work_pool.main defaults.network_configuration",
		"~ prefect_deployment.smoke pool_defaults", "~ ecs_service.worker network.security_groups"}
	if d := cmp.Diff(want, summary(p.Plan)); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if _, err := x.engine().Apply(context.Background(), p); err != nil {
		t.Fatalf("apply: %v\n%s", err, x.progressText())
	}
	x.wantNone("not converged", summary(x.plan(env).Plan))
	for _, it := range inventory(x.w, "demo") {
		if strings.Contains(it, "security-group") {
			t.Fatalf("the worker group is left: %s", it)
		}
	}
}

func TestE2EThrottledCallsStillSucceed(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	x.w.SetFaults(awssim.Faults{ThrottleFraction: 0.3, Seed: 42})
	x.apply(env)
	x.wantNone("not converged", summary(x.plan(env).Plan))
	x.destroy(env)
	x.wantNone("destroy left", inventory(x.w, "demo"))
	throttled := 0
	for _, c := range x.w.Calls() {
		if strings.Contains(c.ErrCode, "Throttl") || c.ErrCode == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("nothing was throttled")
	}
}

func TestE2EOtherAccountIsRefused(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo", `account_id: "123456789012"`, `account_id: "210987654321"`,
		"arn:aws:iam::123456789012:", "arn:aws:iam::210987654321:")
	_, err := x.engine().Plan(context.Background(), x.stack(env))
	var ae *engine.AccountMismatchError
	if !errors.As(err, &ae) || ae.Got != "123456789012" {
		t.Fatalf("err = %v", err)
	}
	if w := x.writes(); len(w) != 0 {
		t.Fatalf("wrote %v", w)
	}
}

func TestE2EKeyAppearsInNoOutput(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	var outputs []string
	p := x.plan(env)
	b, _ := json.Marshal(p.Plan)
	outputs = append(outputs, string(b))
	rep := x.apply(env)
	b, _ = json.Marshal(rep)
	outputs = append(outputs, string(b))
	// A failing run's errors too.
	x.w.SetFaults(awssim.Faults{StopAfterWrites: 1})
	env2 := x.env("demo", "cpu: 512", "cpu: 1024", "memory: 1024", "memory: 2048")
	st, _ := stack.Build(env2, e2eKey+"-rotated")
	e := x.engine()
	p2, err := e.Plan(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := e.Apply(context.Background(), p2)
	if err == nil {
		t.Fatal("want an error")
	}
	b, _ = json.Marshal(p2.Plan)
	outputs = append(outputs, string(b), err.Error())
	b, _ = json.Marshal(rep2)
	outputs = append(outputs, string(b))
	outputs = append(outputs, x.progress()...)
	for _, o := range outputs {
		if strings.Contains(o, e2eKey) {
			t.Fatalf("the Prefect API key leaked into: %s", o)
		}
	}
	// The rotated key shows as a sensitive change, without a value.
	for _, c := range p2.Plan.Changes {
		if c.Address == "secret.prefect_api_key" {
			if c.Action != plan.Update || len(c.Fields) != 1 || !c.Fields[0].Sensitive || c.Fields[0].After != "" {
				t.Fatalf("secret change: %+v", c)
			}
			return
		}
	}
	t.Fatal("the rotated key does not show in the plan")
}

func indexOf(p *plan.Plan, address string) int {
	for i, c := range p.Changes {
		if c.Address == address {
			return i
		}
	}
	return -1
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// BenchmarkPlanNoChanges plans the full existing-mode stack right after an
// apply, with 50 ms of latency per AWS call, and reports the AWS calls and
// the wall time of one plan. Target (issue 2): <= 25 calls, < 300 ms.
func BenchmarkPlanNoChanges(b *testing.B) {
	x := newWorld(b)
	wall := benchPlansWithoutChanges(b, x.account, x.env("demo"))
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/op")
}

// BenchmarkPlanEmptyAccount plans the same stack in an empty account.
func BenchmarkPlanEmptyAccount(b *testing.B) {
	x := newWorld(b)
	wall := benchPlans(b, x.account, x.stack(x.env("demo")), func(*engine.Planned) {})
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/op")
}

// TestE2ENoCredentialsSaysWhatToDo: with no credentials in the SDK's chain,
// the plan says how to provide them instead of only the chain's errors.
func TestE2ENoCredentialsSaysWhatToDo(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	none := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("failed to refresh cached credentials, no EC2 IMDS role found")
	})
	e := x.engine()
	e.AWS = awsapi.New(x.w.ConfigFor(none))
	_, err := e.Plan(context.Background(), x.stack(x.env("demo")))
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials found") || !strings.Contains(err.Error(), "AWS_PROFILE") {
		t.Fatalf("err = %v", err)
	}
	if n := len(x.w.Calls()); n != 0 {
		t.Fatalf("%d calls reached AWS without credentials", n)
	}
}
