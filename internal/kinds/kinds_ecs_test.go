package kinds_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/simtest"
	"github.com/deploybot/deploybot/internal/stack"
)

func noAutoscaling(e *config.Environment) { e.Worker.Autoscaling = nil }

// redeploy applies a changed stack the way the engine does: the task
// definition first (a new revision), then the service with the new refs.
func (c *computeWorld) redeploy(st *stack.Stack) (resource.Outputs, error) {
	c.t.Helper()
	ctx := context.Background()
	c.st = st
	for _, addr := range []string{stack.AddrSecret, stack.AddrTaskDefinition, stack.AddrService} {
		r := c.res(addr)
		k := c.kind(r)
		live := c.read(r)
		d := computeDiff(must(k.Desired(r, c.refs(r))), live.Attrs)
		if len(d) == 0 {
			continue
		}
		out, err := k.Update(ctx, c.x, r, live, c.refs(r), d)
		if err != nil {
			return out, err
		}
		c.outputs[addr] = out
		if addr == stack.AddrService {
			return out, nil
		}
	}
	return nil, nil
}

func TestServiceDeployments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		edit       func(e *config.Environment)
		key        string
		wantStatus string // "" = succeeds
		wantNewTD  bool
		wantInErr  string
	}{
		{name: "image change", edit: func(e *config.Environment) { e.Worker.Image = "prefecthq/prefect-aws:0.7.11" }, key: computeKey, wantNewTD: true},
		{name: "key rotation forces a new deployment", edit: func(*config.Environment) {}, key: computeKey + "-rotated"},
		{name: "subnets edited in the file move the service in place", edit: func(e *config.Environment) {
			e.Network.SubnetIDs = e.Network.SubnetIDs[:1]
		}, key: computeKey},
		{name: "crashing image is rolled back", edit: func(e *config.Environment) { e.Worker.Image = "prefecthq/prefect:crashloop" }, key: computeKey,
			wantStatus: "ROLLBACK_SUCCESSFUL", wantNewTD: true, wantInErr: "exit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newComputeWorld(t, computeKey, noAutoscaling)
			// This world runs no Prefect, so health checks pass (awssim's
			// plain probe): the crash comes before the first one (10 s), as
			// a worker that fails at start does, or passing checks would
			// keep resetting the circuit breaker's count.
			c.w.SetImageBehavior("prefecthq/prefect:crashloop", awssim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1})
			c.applyAll()
			before := c.outputs[stack.AddrTaskDefinition]["arn"]
			env := *c.env
			env.Worker.Env = map[string]string{"PREFECT_LOGGING_LEVEL": "INFO"}
			tc.edit(&env)
			st, err := stack.Build(&env, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.redeploy(st)
			if tc.wantStatus == "" && err != nil {
				t.Fatalf("redeploy: %v", err)
			}
			if tc.wantStatus != "" {
				var de *ecsdeploy.Failure
				if !errors.As(err, &de) {
					t.Fatalf("redeploy error = %v, want an ecsdeploy.Failure", err)
				}
				if string(de.State) != tc.wantStatus || !strings.Contains(strings.ToLower(de.Error()), tc.wantInErr) || len(de.StoppedTasks) == 0 {
					t.Fatalf("deployment error = %s (status %s, %d stopped tasks); want %s mentioning %q", de, de.State, len(de.StoppedTasks), tc.wantStatus, tc.wantInErr)
				}
			}
			dep := c.deployment()
			if dep == nil || dep.Info.DeploymentID == "" || dep.Info.Status == "" {
				t.Fatalf("outputs %v, outcome %+v: no deployment", out, dep)
			}
			if (dep.Failure != nil) != (tc.wantStatus != "") {
				t.Errorf("deployment failure %v, want status %q", dep.Failure, tc.wantStatus)
			}
			if tc.wantStatus == "" && dep.Info.Status != "SUCCESSFUL" {
				t.Errorf("deployment status = %q", dep.Info.Status)
			}
			if dep.Info.StartedAt.IsZero() {
				t.Errorf("deployment started at %v", dep.Info.StartedAt)
			}
			if dep.Info.PreviousTaskDefinition != before {
				t.Errorf("previous_task_definition = %q, want %q", dep.Info.PreviousTaskDefinition, before)
			}
			newTD := c.outputs[stack.AddrTaskDefinition]["arn"] != before
			if newTD != tc.wantNewTD {
				t.Errorf("new revision registered = %t, want %t", newTD, tc.wantNewTD)
			}
			if tc.wantStatus == "" {
				// The plan after the deploy is empty.
				for _, addr := range []string{stack.AddrSecret, stack.AddrTaskDefinition, stack.AddrService} {
					r := c.res(addr)
					if d := computeDiff(must(c.kind(r).Desired(r, c.refs(r))), c.read(r).Attrs); len(d) > 0 {
						t.Errorf("%s: changes after the deploy:%s", addr, describeChanges(d))
					}
				}
			}
		})
	}
}

// TestTaskDefinitionReadsTheRevisionInUse: a newer revision registered
// outside deploybot does not hide what the service runs (ecspresso PR #218).
func TestTaskDefinitionReadsTheRevisionInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey, noAutoscaling)
	c.applyAll()
	inUse := c.outputs[stack.AddrTaskDefinition]["arn"]
	r := c.res(stack.AddrTaskDefinition)
	other := *r
	s := *r.Spec.(*ecs.TaskDefinitionSpec)
	s.Container.Image = "someone/else:1"
	other.Spec = &s
	if _, err := (ecs.TaskDefinition).Create(ctx, c.x, &other, c.refs(r)); err != nil {
		t.Fatal(err)
	}
	live := c.read(r)
	if live.ID != inUse {
		t.Errorf("read %s, want the revision the service runs, %s", live.ID, inUse)
	}
	if d := computeDiff(must((ecs.TaskDefinition).Desired(r, c.refs(r))), live.Attrs); len(d) > 0 {
		t.Errorf("changes:%s", describeChanges(d))
	}
}

// TestDestroyLeavesNothing deletes the stack in reverse order and checks
// that no revision, task or tagged resource of the environment remains.
func TestDestroyLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey, noAutoscaling)
	c.applyAll()
	// A second revision: destroy removes every revision it registered.
	if _, err := c.redeploy(mustBuild(t, c.env, "prefecthq/prefect-aws:2")); err != nil {
		t.Fatal(err)
	}
	lives := c.readAll()
	for i := len(c.st.Resources) - 1; i >= 0; i-- {
		r := &c.st.Resources[i]
		if err := c.kind(r).Delete(ctx, c.x, r, lives[r.Address]); err != nil {
			t.Fatalf("delete %s: %v", r.Address, err)
		}
	}
	for a, l := range c.readAll() {
		if a == stack.AddrWorkPool {
			// The pool was there before the stack (simtest.WithPool), so
			// it stays, with prefect-aws's defaults instead of deploybot's
			// (of what deploybot sets, only match_latest_revision_in_family
			// has one: false).
			if l == nil || len(l.Attrs) != 2 || l.Attrs["type"].Value != "ecs" || l.Attrs["defaults.match_latest_revision_in_family"].Value != "false" {
				t.Errorf("%s: after destroy %+v, want the pool without deploybot's defaults", a, l)
			}
			continue
		}
		if l != nil {
			t.Errorf("%s still there: %s", a, l.ID)
		}
	}
	revs, err := c.x.APIs.AWS.ECS.ListTaskDefinitions(ctx, &awsecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(c.st.Names.TaskFamily), Status: "ACTIVE"})
	if err != nil || len(revs.TaskDefinitionArns) != 0 {
		t.Errorf("ACTIVE revisions left: %v %v", revs, err)
	}
	left := c.w.TaggedFor("staging")
	for _, it := range left {
		if !strings.Contains(it.Type, "pending deletion") {
			t.Errorf("left behind: %+v", it)
		}
	}
}

func mustBuild(t *testing.T, env *config.Environment, image string) *stack.Stack {
	t.Helper()
	e := *env
	e.Worker.Image = image
	st, err := stack.Build(&e, computeKey)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFirstDeployFailure: a first deployment has nothing to roll back to
// (docs/research/aws-ecs.md §4.1); the create fails with the stopped tasks'
// reasons instead of reporting success.
func TestFirstDeployFailure(t *testing.T) {
	t.Parallel()
	c := newComputeWorld(t, computeKey, noAutoscaling, func(e *config.Environment) {
		e.Worker.Image = "example/does-not-exist:1"
	})
	r := c.withDeps(stack.AddrService)
	_, err := (ecs.Service).Create(context.Background(), c.x, r, c.refs(r))
	var de *ecsdeploy.Failure
	if !errors.As(err, &de) {
		t.Fatalf("create = %v, want an ecsdeploy.Failure", err)
	}
	if de.State == "SUCCESSFUL" || len(de.StoppedTasks) == 0 || !strings.Contains(de.Error(), "CannotPullContainerError") {
		t.Errorf("deployment error = %s (status %s, %d stopped tasks)", de, de.State, len(de.StoppedTasks))
	}
	if dep := c.deployment(); dep == nil || dep.Failure != de || dep.Info.PreviousTaskDefinition != "" || dep.Info.DeploymentID == "" {
		t.Errorf("deployment outcome = %+v", dep)
	}
}

// TestDeploymentWaitCadence: the wait for a deployment ends at most one
// poll interval (3 s) after ECS finished it, and looks at most 30 times a
// simulated minute (a DescribeServiceDeployments each; ECS's throttling
// buckets refill at tens a second, see deploymentPollInterval). Simulated
// time: the clock is virtual.
func TestDeploymentWaitCadence(t *testing.T) {
	t.Parallel()
	c := newComputeWorld(t, computeKey, noAutoscaling)
	r := c.withDeps(stack.AddrService)
	c.w.ResetCalls()
	start := c.clk.Now()
	if _, err := (ecs.Service).Create(context.Background(), c.x, r, c.refs(r)); err != nil {
		t.Fatal(err)
	}
	end := c.clk.Now()
	dep := c.deployment()
	out, err := awsecs.NewFromConfig(c.w.Config()).DescribeServiceDeployments(context.Background(),
		&awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{dep.Info.ARN}})
	if err != nil || len(out.ServiceDeployments) != 1 || out.ServiceDeployments[0].FinishedAt == nil {
		t.Fatalf("service deployment %s: %v", dep.Info.ARN, err)
	}
	if late := end.Sub(*out.ServiceDeployments[0].FinishedAt); late < 0 || late > 3*time.Second {
		t.Errorf("the wait ended %s after ECS finished the deployment, want at most 3s", late)
	}
	n := 0
	for _, call := range c.w.Calls() {
		if call.Operation == "DescribeServiceDeployments" {
			n++
		}
	}
	if minutes := end.Sub(start).Minutes(); float64(n) > 30*minutes+2 {
		t.Errorf("%d DescribeServiceDeployments in %.1f simulated minutes, want at most 30 a minute", n, minutes)
	}
}

// TestFirstDeployWaitsOutIAMPropagation: deploybot does not sleep after
// creating a role; when IAM takes longer to let ECS assume the new roles
// than the circuit breaker tolerates (here 90 s; 3 failed launches take
// about 30 s), ECS fails the first deployment with "ECS was unable to
// assume the role" (docs/research/aws-ecs.md §5.2), and the create deploys
// again until the roles work, within IAM's 2-minute budget.
func TestFirstDeployWaitsOutIAMPropagation(t *testing.T) {
	t.Parallel()
	slowIAM := simtest.WithAWS(awssim.WithTimings(func(tm *awssim.Timings) { tm.IAMPropagation = 90 * time.Second }))
	c := newComputeWorldIn(t, []simtest.Option{slowIAM}, computeKey, noAutoscaling)
	r := c.withDeps(stack.AddrService)
	// The roles are as new as the service: ECS cannot assume them for 90 s.
	for _, role := range []string{stack.AddrExecutionRole, stack.AddrTaskRole} {
		c.ensure(role)
		c.w.Mu.Lock()
		ok := c.w.RoleAssumableByECS(c.outputs[role]["arn"])
		c.w.Mu.Unlock()
		if ok {
			t.Fatalf("%s is assumable at once: the test needs IAM still propagating", role)
		}
	}
	if _, err := (ecs.Service).Create(context.Background(), c.x, r, c.refs(r)); err != nil {
		t.Fatalf("create while IAM propagates the roles: %v", err)
	}
	failed := 0
	for _, task := range c.w.Tasks() {
		if strings.Contains(task.StoppedReason, "ECS was unable to assume the role") {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no task failed to launch: IAM propagation did not reach the service, the test proves nothing")
	}
	if dep := c.deployment(); dep == nil || dep.Failure != nil || dep.Info.Status != "SUCCESSFUL" {
		t.Errorf("deployment outcome %+v", dep)
	}
}

// TestBudgetRunsOut: DeleteCluster retries ClusterContainsServices within
// its budget (docs/research/aws-ecs.md §5), and says so when the budget is gone.
func TestBudgetRunsOut(t *testing.T) {
	t.Parallel()
	c := newComputeWorld(t, computeKey, noAutoscaling)
	c.ensure(stack.AddrService)
	c.x.Budget = 0.01 // 10 minutes → 6 s
	err := (ecs.Cluster).Delete(context.Background(), c.x, c.res(stack.AddrCluster), nil)
	if err == nil || !strings.Contains(err.Error(), "still failing after 6s") || !strings.Contains(err.Error(), "ClusterContainsServicesException") {
		t.Errorf("delete of a cluster with a service = %v, want the budget reported with the blocking error", err)
	}
}

// TestRecreateWhileDraining: an apply right after an interrupted destroy
// finds the service DRAINING, which cannot be updated: the plan replaces it,
// and the delete waits until it is gone before the create.
func TestRecreateWhileDraining(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey, noAutoscaling)
	c.ensure(stack.AddrService)
	r := c.res(stack.AddrService)
	if _, err := c.x.APIs.AWS.ECS.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String(c.st.Names.Cluster), Service: aws.String(r.Name), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	live := c.read(r)
	if live == nil {
		t.Fatal("a DRAINING service reads as absent; a destroy would not wait for it")
	}
	var status *plan.FieldChange
	for _, f := range computeDiff(must((ecs.Service).Desired(r, c.refs(r))), live.Attrs) {
		if f.Path == "status" {
			status = &f
		}
	}
	if status == nil || !status.ForcesReplacement || status.Before != "DRAINING" {
		t.Fatalf("plan of a draining service: status %+v; want DRAINING → ACTIVE forcing replacement", status)
	}
	if err := (ecs.Service).Delete(ctx, c.x, r, live); err != nil {
		t.Fatalf("delete the draining service: %v", err)
	}
	if _, err := (ecs.Service).Create(ctx, c.x, r, c.refs(r)); err != nil {
		t.Fatalf("create after it: %v", err)
	}
	if live := c.read(r); live == nil || live.Attrs["status"].Value != "ACTIVE" {
		t.Fatalf("after the create: %+v", live)
	}
}

// TestServiceDeploymentsWithoutTheServiceDeploymentsAPI: on an endpoint
// that lacks ListServiceDeployments/DescribeServiceDeployments (issue 11
// item 12: apply failed with a 500), the service is created and updated,
// and a crash loop is reported rolled back, from the service's
// deployments[].rolloutState; the progress says why.
func TestServiceDeploymentsWithoutTheServiceDeploymentsAPI(t *testing.T) {
	for _, ep := range []struct {
		name     string
		endpoint awssim.Endpoint
	}{{"LocalStack", awssim.LocalStack}, {"AWS UnknownOperation", awssim.AWSUnknownOperation}, {"moto_server", awssim.Moto}} {
		t.Run(ep.name, func(t *testing.T) {
			c := newComputeWorld(t, computeKey, noAutoscaling)
			// a crash before the first health check (no Prefect here: see
			// TestServiceDeployments)
			c.w.SetImageBehavior("prefecthq/prefect:crashloop", awssim.ImageBehavior{CrashAfter: 5 * time.Second, ExitCode: 1})
			c.w.SetUnsupported(ep.endpoint, "ECS.ListServiceDeployments", "ECS.DescribeServiceDeployments")
			c.applyAll()
			if got := c.deployment(); got == nil || got.Info.Status != "SUCCESSFUL" {
				t.Fatalf("create: deployment %+v", got)
			}
			out, err := c.redeploy(mustBuild(t, c.env, "prefecthq/prefect-aws:0.7.11"))
			if dep := c.deployment(); err != nil || dep.Info.Status != "SUCCESSFUL" || !strings.HasPrefix(dep.Info.DeploymentID, "ecs-svc/") {
				t.Fatalf("update: %v, outputs %v, deployment %+v", err, out, dep)
			}
			before := out["task_definition"]
			_, err = c.redeploy(mustBuild(t, c.env, "prefecthq/prefect:crashloop"))
			var de *ecsdeploy.Failure
			if !errors.As(err, &de) || de.State != "ROLLBACK_SUCCESSFUL" || len(de.StoppedTasks) == 0 || c.deployment().Info.PreviousTaskDefinition != before {
				t.Fatalf("crash loop: %v", err)
			}
			said := strings.Join(c.said(), "\n")
			if !strings.Contains(said, "does not implement the service deployments API") || !strings.Contains(said, "rolloutState") {
				t.Errorf("progress does not say why it reads rolloutState:\n%s", said)
			}
		})
	}
}
