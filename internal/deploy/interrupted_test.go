package deploy_test

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"errors"
	"github.com/deploybot/deploybot/internal/awsapi"
	"strings"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/plan"
)

// An apply stopped (a cancelled job: SIGTERM, or the runner killed) while
// the health gate waits, or right after the ECS deployment, leaves the new
// revision running without a verdict. The verdict is part of what an apply
// converges to (issue 11 item 2b): the next plan says the running revision
// has not passed the gate, and the next apply gates it, passing or rolling
// back as the gate would have.

// killPoints are the moments an apply is stopped at: each a progress line
// the apply says (goodOnly: one only a revision that passes the gate says).
var killPoints = []struct {
	name, subject, says string
	goodOnly            bool
}{
	{"after the task definition", "task_definition.worker", "updated", false},
	{"after the smoke deployment", "prefect_deployment.smoke", "updated", false},
	{"while ECS deploys", "ecs_service.worker", "deployment IN_PROGRESS", false},
	{"right after the ECS deployment", "ecs_service.worker", "updated", false},
	{"while the workers come online", "prefect", "waiting for a worker of", false},
	{"while the smoke flow run runs", "prefect", "started the smoke flow run", false},
	// the pool's defaults are written after the gate passed (deploy's
	// deferPoolDefaults): the next apply gates again, then writes them
	{"after the gate, before the work pool's defaults", "prefect", "writing them to the work pool", true},
}

// stopAt cancels the apply when the first matching event is said.
type stopAt struct {
	subject, says string
	cancel        context.CancelFunc
	rec           *event.Recorder
}

func (s *stopAt) Emit(e event.Event) {
	s.rec.Emit(e)
	// a step's last line is its verb alone; other lines name what they see
	if e.Subject == s.subject && (e.Message == s.says || s.says != "updated" && strings.Contains(e.Message, s.says)) {
		s.cancel()
	}
}

func TestAnInterruptedGateIsNotForgotten(t *testing.T) {
	t.Parallel()
	for _, good := range []bool{true, false} {
		for _, kp := range killPoints {
			if kp.goodOnly && !good {
				continue
			}
			name := kp.name + "/good revision"
			if !good {
				name = kp.name + "/revision whose flow runs cannot start"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				x := newE2E(t)
				bg := context.Background()
				if _, err := deploy.Apply(bg, x.options("prefecthq/prefect-aws:3.1")); err != nil {
					t.Fatal(err)
				}
				x.clk.Advance(time.Minute)
				next := func() deploy.Options {
					o := x.options("prefecthq/prefect-aws:3.2")
					if !good {
						o.Env.FlowRuns.Image = "prefecthq/prefect:3-flows-does-not-exist"
					}
					return o
				}
				// The apply is stopped at the kill point.
				ctx, cancel := context.WithCancel(bg)
				o := next()
				o.Events = &stopAt{subject: kp.subject, says: kp.says, cancel: cancel, rec: &x.events}
				res, err := deploy.Apply(ctx, o)
				cancel()
				if err == nil {
					t.Fatalf("the stopped apply succeeded: %+v", res.Report)
				}
				x.noLeak(res, err)
				// The next plan says the running revision has no verdict
				// (or still has the task definition to change).
				p, err := deploy.Plan(bg, next())
				if err != nil {
					t.Fatal(err)
				}
				if !p.Plan.HasChanges() {
					t.Fatalf("the plan after the stopped apply has no changes: an unverified revision would stand")
				}
				gateChange := false
				for _, c := range p.Plan.Changes {
					for _, f := range c.Fields {
						gateChange = gateChange || c.Address == "ecs_service.worker" && f.Path == "health_gate.passed_revision"
					}
				}
				if !gateChange {
					t.Fatalf("the plan after the stopped apply does not show the gate's verdict to come: %v", summaryOf(p.Plan))
				}
				// The next apply gates it.
				res, err = deploy.Apply(bg, next())
				x.noLeak(res, err)
				g := res.Report.Gate
				if g == nil {
					t.Fatalf("the re-run did not gate the revision: %v %+v", err, res.Report)
				}
				if good {
					if err != nil || res.Report.Status != plan.StatusSucceeded || !g.Passed || g.FlowRun == nil || g.FlowRun.State != "COMPLETED" {
						t.Fatalf("re-run: %v, status %s, gate %+v", err, res.Report.Status, g)
					}
					// Now the verdict is recorded: nothing is left to do.
					p, err := deploy.Plan(bg, next())
					if err != nil || p.Plan.HasChanges() {
						t.Fatalf("plan after the gated re-run: %v %v", err, summaryOf(p.Plan))
					}
					return
				}
				var gerr *deploy.GateError
				if !errors.As(err, &gerr) || exit.CodeOf(err) != exit.GateFailed || res.Report.Status != plan.StatusRolledBack {
					t.Fatalf("re-run of the bad revision: %v, status %s, gate %+v", err, res.Report.Status, g)
				}
			})
		}
	}
}

// TestTheVerdictIsOnTheService: a passed gate records its revision on the
// service (ecs.TagGatePassed), and a failed one leaves the last verdict.
func TestTheVerdictIsOnTheService(t *testing.T) {
	t.Parallel()
	x := newE2E(t)
	ctx := context.Background()
	res, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:3.1"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := res.Report.Deployment.TaskDefinition
	if got := x.serviceTag(ecs.TagGatePassed); got != v1 {
		t.Fatalf("after a passed gate the service says %q passed, want %s", got, v1)
	}
	x.w.SetImageBehavior("prefecthq/prefect-aws:silent", awssim.ImageBehavior{NoHeartbeat: true})
	if _, err := deploy.Apply(ctx, x.options("prefecthq/prefect-aws:silent")); exit.CodeOf(err) != exit.GateFailed {
		t.Fatalf("silent revision: %v", err)
	}
	if got := x.serviceTag(ecs.TagGatePassed); got != v1 {
		t.Fatalf("after a rollback the service says %q passed, want %s", got, v1)
	}
}

func (x *e2e) serviceTag(key string) string {
	x.t.Helper()
	out, err := awsapi.New(x.w.Config()).ECS.DescribeServices(context.Background(), &awsecs.DescribeServicesInput{
		Cluster: aws.String("deploybot-demo"), Services: []string{"worker"}, Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})
	if err != nil || len(out.Services) != 1 {
		x.t.Fatalf("describe the service: %v", err)
	}
	for _, t := range out.Services[0].Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func summaryOf(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Action != plan.NoOp {
			var fs []string
			for _, f := range c.Fields {
				fs = append(fs, f.Path)
			}
			out = append(out, string(c.Action)+" "+c.Address+" "+strings.Join(fs, ","))
		}
	}
	return out
}
