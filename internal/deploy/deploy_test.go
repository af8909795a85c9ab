package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/ecsdeploy"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/secret"
)

func mkPlan(changes ...plan.Change) *plan.Plan {
	p := &plan.Plan{Environment: "demo", Operation: plan.OpApply, Changes: changes}
	p.Fingerprint = p.ComputeFingerprint()
	return p
}

func TestCheckReviewed(t *testing.T) {
	t.Parallel()
	update := plan.Change{Address: "task_definition.worker", Action: plan.Update, Fields: []plan.FieldChange{{Path: "cpu", Before: "256", After: "512"}}}
	update2 := plan.Change{Address: "task_definition.worker", Action: plan.Update, Fields: []plan.FieldChange{{Path: "cpu", Before: "256", After: "1024"}}}
	replaceSG := plan.Change{Address: "security_group.worker", Action: plan.Replace, Reason: "field vpc_id cannot be changed in place"}
	replaceSvc := plan.Change{Address: "ecs_service.worker", Action: plan.Replace, Reason: "field subnets cannot be changed in place"}
	tests := []struct {
		name        string
		now         *plan.Plan
		reviewed    *plan.Plan
		fingerprint string
		wantErr     string
		wantWarn    bool
	}{
		{name: "nothing reviewed", now: mkPlan(replaceSG)},
		{name: "same plan", now: mkPlan(update, replaceSG), reviewed: mkPlan(update, replaceSG)},
		{name: "same fingerprint only", now: mkPlan(replaceSG), fingerprint: mkPlan(replaceSG).Fingerprint},
		{name: "drift without destruction is applied", now: mkPlan(update2), reviewed: mkPlan(update), wantWarn: true},
		{name: "reviewed replacement stays allowed", now: mkPlan(update2, replaceSG), reviewed: mkPlan(update, replaceSG), wantWarn: true},
		{
			name: "new replacement refused", now: mkPlan(update, replaceSG, replaceSvc), reviewed: mkPlan(update, replaceSG),
			wantErr: "refusing to apply: the plan now deletes or replaces ecs_service.worker (field subnets cannot be changed in place), and the reviewed plan did not; re-run the plan and have it reviewed",
		},
		{
			name: "fingerprint only, destructive drift refused", now: mkPlan(replaceSG), fingerprint: "0123456789abcdef",
			wantErr: "refusing to apply: the plan now deletes or replaces security_group.worker (field vpc_id cannot be changed in place), and the reviewed plan (known only by its fingerprint) differs from this one; re-run the plan and have it reviewed",
		},
		{name: "fingerprint only, harmless drift applied", now: mkPlan(update2), fingerprint: "0123456789abcdef", wantWarn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warn, err := checkReviewed(tt.now, tt.reviewed, tt.fingerprint)
			if tt.wantErr != "" {
				var se *StaleError
				if !errors.As(err, &se) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (len(warn) > 0) != tt.wantWarn {
				t.Fatalf("warnings %q, want some: %v", warn, tt.wantWarn)
			}
		})
	}
}

// TestErrorsMapToExitCodes: deploy's errors reach the one mapping
// (exit.CodeOf) with their codes, also once redacted and wrapped.
func TestErrorsMapToExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want exit.Code
	}{
		{"ok", nil, exit.OK},
		{"error", errors.New("boom"), exit.Failure},
		{"config errors", &config.Errors{Problems: []config.Problem{{File: "a.yaml", Line: 1, Field: "name", Message: "bad"}}}, exit.BadInput},
		{"wrapped config errors", fmt.Errorf("load: %w", &config.Errors{}), exit.BadInput},
		{"gate failed", &GateError{Gate: &plan.GateReport{Reason: "no worker"}}, exit.GateFailed},
		{"stale plan", &StaleError{Unreviewed: map[string]string{"a.b": "replace"}}, exit.Failure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exit.CodeOf(tt.err); got != tt.want {
				t.Fatalf("CodeOf = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRedactRemovesTheKey(t *testing.T) {
	t.Parallel()
	o := &Options{Credential: secret.New("pnu_secret123")}
	inner := &GateError{Gate: &plan.GateReport{Reason: "x"}}
	res := &Result{Warnings: []string{"w pnu_secret123"}, Notes: []string{"n pnu_secret123"}}
	err := o.redact(res, fmt.Errorf("prefect said pnu_secret123 is bad: %w", inner))
	if strings.Contains(err.Error(), "pnu_secret123") {
		t.Fatalf("key in %q", err)
	}
	if d := cmp.Diff("prefect said [redacted] is bad: health gate failed: x", err.Error()); d != "" {
		t.Fatal(d)
	}
	if exit.CodeOf(err) != exit.GateFailed {
		t.Fatal("redacting lost the exit code")
	}
	if d := cmp.Diff(&Result{Warnings: []string{"w [redacted]"}, Notes: []string{"n [redacted]"}}, res); d != "" {
		t.Fatal(d)
	}
	// The process's redactor takes out the other credentials too.
	var all secret.Redactor
	all.AddString("wJalrXUtnFEMIK7MDENGbPxRfiCYsecret")
	o.Secrets = &all
	if err := o.redact(nil, errors.New("aws wJalrXUtnFEMIK7MDENGbPxRfiCYsecret pnu_secret123")); err.Error() != "aws [redacted] [redacted]" {
		t.Fatalf("err = %q", err)
	}
}

func TestScrubReport(t *testing.T) {
	t.Parallel()
	key := "pnu_secret123"
	r := &plan.Report{
		Error: "create secret: value pnu_secret123 rejected",
		Steps: []plan.StepResult{{Address: "secret.prefect_api_key", Error: "pnu_secret123"}},
		Gate:  &plan.GateReport{Reason: "worker said pnu_secret123", ServiceEvents: []string{"x pnu_secret123"}, StoppedTasks: []plan.StoppedTask{{StoppedReason: "pnu_secret123"}}},
	}
	_ = (&Options{Credential: secret.New(key)}).redact(&Result{Report: r}, nil)
	if b, _ := json.Marshal(r); strings.Contains(string(b), key) {
		t.Fatalf("key left in %s", b)
	}
	// No key: nothing changes (an empty key must not be "replaced" everywhere).
	r2 := &plan.Report{Error: "boom"}
	_ = (&Options{}).redact(&Result{Report: r2}, nil)
	if r2.Error != "boom" {
		t.Fatalf("error became %q", r2.Error)
	}
}

func TestGateErrorSaysTheRollbackOnce(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		gate *plan.GateReport
		want string
	}{
		{&plan.GateReport{Reason: "no worker came ONLINE within 5m0s; rolled back to x:2 and its worker w is ONLINE again", RolledBack: true, RolledBackTo: "arn:x:2"},
			"health gate failed: no worker came ONLINE within 5m0s; rolled back to x:2 and its worker w is ONLINE again"},
		{&plan.GateReport{Reason: "no worker came ONLINE within 5m0s", RolledBack: true, RolledBackTo: "arn:x:2"},
			"health gate failed: no worker came ONLINE within 5m0s; rolled back to arn:x:2"},
		{&plan.GateReport{Reason: "tasks crashed", NothingToRollBack: true},
			"health gate failed: tasks crashed; this was the first deploy, there is nothing to roll back to"},
	} {
		if got := (&GateError{Gate: c.gate}).Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

// TestECSFailure: a deployment ECS failed is reported from its typed
// outcome: rolled back by the circuit breaker, failed on a first deploy, or
// not done within deploybot's wait (which is not ECS failing it).
func TestECSFailure(t *testing.T) {
	t.Parallel()
	d := &plan.DeploymentInfo{TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/w:2",
		PreviousTaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/w:1"}
	first := &plan.DeploymentInfo{TaskDefinition: d.TaskDefinition}
	for _, c := range []struct {
		name       string
		d          *plan.DeploymentInfo
		f          *ecsdeploy.Failure
		rolledBack bool
		nothing    bool
		want       string
	}{
		{"rolled back by ECS", d, &ecsdeploy.Failure{State: ecsdeploy.RolledBack, Reason: "circuit breaker"}, true, false,
			"ECS failed the deployment of w:2 (ROLLBACK_SUCCESSFUL): circuit breaker; ECS rolled the service back to w:1"},
		{"first deploy stopped", first, &ecsdeploy.Failure{State: ecsdeploy.Stopped, Reason: "circuit breaker"}, false, true,
			"ECS failed the deployment of w:2 (STOPPED): circuit breaker; this was the first deploy, there is nothing to roll back to"},
		{"not done in time", d, &ecsdeploy.Failure{State: ecsdeploy.TimedOut, Reason: "not done after 20m0s (last deployment IN_PROGRESS)"}, false, false,
			"the ECS deployment of w:2 was not done in time (TIMED_OUT): not done after 20m0s (last deployment IN_PROGRESS)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := ecsFailure(c.d, c.f)
			if g.Reason != c.want || g.RolledBack != c.rolledBack || g.NothingToRollBack != c.nothing {
				t.Errorf("got %q rolledBack=%v nothing=%v\nwant %q rolledBack=%v nothing=%v", g.Reason, g.RolledBack, g.NothingToRollBack, c.want, c.rolledBack, c.nothing)
			}
		})
	}
}
