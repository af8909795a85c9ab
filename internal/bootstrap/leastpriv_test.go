package bootstrap_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/bootstrap"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/gate"
	"github.com/deploybot/deploybot/internal/iampolicy"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/lock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/simtest"
)

// These tests prove the bootstrap policies are least privilege against the
// simulated account, which evaluates identity policies like IAM (resource
// ARNs, condition keys, dependent actions): the whole life of an
// environment works with exactly these policies, and removing any one
// statement makes some step fail with AccessDenied.

var key = fakekey.Prefect("LeastPrivilege")

var envYAML = configtest.Head{Name: "lp", ApplyRole: configtest.Role("deploybot-apply-lp")}.YAML() + `worker:
  image: prefecthq/prefect-aws:3.1
  cpu: CPU
  memory: 2048
  desired_count: 1
  autoscaling: { min: 1, max: 3, target_cpu_percent: 70 }
flow_runs:
  task_role_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
  task_role_policy:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Action: "s3:PutObject", Resource: "arn:aws:s3:::lp-results/*"}]
NETWORK
tags:
  team: TEAM
`

const managedNet = `network:
  mode: managed
  cidr: 10.60.0.0/16
  availability_zones: 2
  nat: single`

type lpWorld struct {
	t       *testing.T
	w       *awssim.World
	clk     *clock.Virtual
	net     string
	planDoc *iampolicy.Document
	appDoc  *iampolicy.Document
	// pools is the Prefect API holding the environment's work pool.
	pools *prefect.Client
}

func newLPWorld(t *testing.T, managed bool) *lpWorld {
	world := simtest.New(t, simtest.WithStart(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)), simtest.WithPool("lp-pool"))
	pools, err := prefect.New(world.Prefect.URL(), world.PrefectKey, prefect.WithClock(world.Clock))
	if err != nil {
		t.Fatal(err)
	}
	x := &lpWorld{t: t, w: world.AWS, clk: world.Clock, net: managedNet, pools: pools}
	if !managed {
		vpc, subnets := x.w.SeedExistingVPC("10.61.0.0/16", 2, true)
		x.net = fmt.Sprintf("network:\n  mode: existing\n  vpc_id: %s\n  subnet_ids: [%s]\n  assign_public_ip: true", vpc, strings.Join(subnets, ", "))
	}
	res, err := bootstrap.Build(x.env("512"), bootstrap.Options{Repo: "acme/infra"})
	if err != nil {
		t.Fatal(err)
	}
	x.planDoc, x.appDoc = res.PlanRole.Policy, res.ApplyRole.Policy
	// What `bootstrap --apply` does for the account with admin credentials
	// besides the roles under test: the service-linked roles ECS and
	// Application Auto Scaling need, which the apply role may not create.
	admin := iam.NewFromConfig(x.w.Config())
	for _, slr := range bootstrap.ServiceLinkedRoles {
		if _, err := admin.CreateServiceLinkedRole(context.Background(), &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String(slr.Service)}); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func (x *lpWorld) env(cpu string) *config.Environment {
	team := "data"
	if cpu != "512" {
		team = "platform" // the update also changes a tag on everything
	}
	y := strings.NewReplacer("CPU", cpu, "NETWORK", x.net, "TEAM", team).Replace(envYAML)
	env, err := config.Load(configtest.Write(x.t, "lp.yaml", y))
	if err != nil {
		x.t.Fatal(err)
	}
	return env
}

// as returns deploy options whose AWS calls are signed by a principal
// holding exactly doc.
func (x *lpWorld) as(name string, doc *iampolicy.Document, env *config.Environment) deploy.Options {
	akid := "ASIA" + strings.ToUpper(name) + "LP0000000"
	x.w.AddPrincipal(akid, awssim.Principal{ARN: "arn:aws:sts::123456789012:assumed-role/" + name + "/test", Policy: doc})
	clients := awsapi.New(x.w.ConfigFor(credentials.NewStaticCredentialsProvider(akid, "secret", "session")))
	return deploy.Options{
		Env:        env,
		Credential: secret.New(key),
		Force:      true,
		// The work pool is Prefect's: what the AWS policies grant has no
		// part in it, but the plan must read it for an apply to go ahead.
		Prefect: poolOnly{x.pools},
		Engine:  &engine.Engine{AWS: clients, Clock: x.clk, Kinds: kinds.All()},
		Lock: func(ctx context.Context, env *config.Environment) (deploy.Lease, error) {
			return lock.Acquire(ctx, clients.SSM, x.clk, env.Name, lock.Holder{Who: "test", Run: "least-privilege", Operation: "apply"}, time.Hour)
		},
	}
}

// poolOnly gives the engine the Prefect client the work pool kind uses, and
// passes the preflight and the health gate: the simulated tasks' worker is
// not this Prefect's (the file's api_url is Prefect Cloud's), and the
// lifecycle proves what AWS allows, not the gate.
type poolOnly struct{ c *prefect.Client }

func (p poolOnly) Preflight(context.Context, *config.Environment) (*prefect.Preflight, error) {
	return &prefect.Preflight{}, nil
}

func (p poolOnly) Gate(context.Context, awsapi.ECSAPI, gate.Input, gate.Options) (*plan.GateReport, error) {
	return &plan.GateReport{Passed: true, Reason: "not judged: the least-privilege lifecycle proves AWS's side"}, nil
}

func (p poolOnly) API() any { return p.c }

// lifecycle runs plan (plan role) → apply → plan → hand-made policies,
// plan, apply, plan → update → destroy (apply role) and returns the first
// error.
func (x *lpWorld) lifecycle(planDoc, appDoc *iampolicy.Document) error {
	ctx := context.Background()
	if _, err := deploy.Plan(ctx, x.as("plan", planDoc, x.env("512"))); err != nil {
		return fmt.Errorf("plan of an empty account: %w", err)
	}
	if _, err := deploy.Apply(ctx, x.as("apply", appDoc, x.env("512"))); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	r, err := deploy.Plan(ctx, x.as("plan", planDoc, x.env("512")))
	if err != nil {
		return fmt.Errorf("plan after apply: %w", err)
	}
	if r.Plan.HasChanges() {
		return fmt.Errorf("plan after apply has changes: %+v", r.Plan.Summary())
	}
	if err := x.handMadePolicies(ctx, planDoc, appDoc); err != nil {
		return err
	}
	if _, err := deploy.Apply(ctx, x.as("apply", appDoc, x.env("1024"))); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if _, err := deploy.Destroy(ctx, x.as("apply", appDoc, x.env("1024"))); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	x.clk.Advance(time.Minute)
	if left := x.w.TaggedFor("lp"); len(left) > 0 {
		return fmt.Errorf("destroy left %d resources tagged for lp", len(left))
	}
	return nil
}

// handMadePolicies is the drift step of the lifecycle: someone with admin
// credentials puts an inline policy on the worker's task role and attaches
// a managed one; the plan role sees both, and the apply role removes both
// (DetachRolePolicy of a policy other than the ECS execution one, which the
// apply role's policy must allow).
func (x *lpWorld) handMadePolicies(ctx context.Context, planDoc, appDoc *iampolicy.Document) error {
	admin := iam.NewFromConfig(x.w.Config())
	role := aws.String("deploybot-lp-task")
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("hand-made"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)}); err != nil {
		return fmt.Errorf("put the hand-made inline policy: %w", err)
	}
	if _, err := admin.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: role, PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); err != nil {
		return fmt.Errorf("attach the hand-made managed policy: %w", err)
	}
	// And on the ECS observer (issue 9): a shorter visibility timeout and a
	// tag on its queue, a tag on its rule; the apply puts the attribute
	// back and removes the tags (SetQueueAttributes, UntagQueue,
	// UntagResource).
	if err := handMadeObserverChanges(ctx, x.w.Config()); err != nil {
		return err
	}
	r, err := deploy.Plan(ctx, x.as("plan", planDoc, x.env("512")))
	if err != nil {
		return fmt.Errorf("plan after hand-made policies: %w", err)
	}
	var drift []string
	for _, c := range r.Plan.Changes {
		for _, f := range c.Fields {
			drift = append(drift, c.Address+" "+f.Path)
		}
	}
	if want := []string{"iam_role.task inline_policies", "iam_role.task managed_policies",
		"sqs_queue.observer tags.hand", "sqs_queue.observer visibility_timeout_seconds", "event_rule.ecs_tasks tags.hand"}; strings.Join(drift, ",") != strings.Join(want, ",") {
		return fmt.Errorf("plan after hand-made policies shows %v, want %v", drift, want)
	}
	if _, err := deploy.Apply(ctx, x.as("apply", appDoc, x.env("512"))); err != nil {
		return fmt.Errorf("apply removing hand-made policies: %w", err)
	}
	if r, err = deploy.Plan(ctx, x.as("plan", planDoc, x.env("512"))); err != nil {
		return fmt.Errorf("plan after removing hand-made policies: %w", err)
	}
	if r.Plan.HasChanges() {
		return fmt.Errorf("plan after removing hand-made policies has changes: %+v", r.Plan.Summary())
	}
	return nil
}

// handMadeObserverChanges changes the observer's queue and rule by hand.
func handMadeObserverChanges(ctx context.Context, cfg aws.Config) error {
	q := sqs.NewFromConfig(cfg)
	u, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("deploybot-lp-ecs-events")})
	if err != nil {
		return fmt.Errorf("the observer's queue: %w", err)
	}
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: u.QueueUrl, Attributes: map[string]string{"VisibilityTimeout": "30"}}); err != nil {
		return fmt.Errorf("change the queue's visibility timeout: %w", err)
	}
	if _, err := q.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: u.QueueUrl, Tags: map[string]string{"hand": "made"}}); err != nil {
		return fmt.Errorf("tag the queue: %w", err)
	}
	e := eventbridge.NewFromConfig(cfg)
	r, err := e.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("deploybot-lp-ecs-task-events")})
	if err != nil {
		return fmt.Errorf("the observer's rule: %w", err)
	}
	if _, err := e.TagResource(ctx, &eventbridge.TagResourceInput{ResourceARN: r.Arn, Tags: []ebtypes.Tag{{Key: aws.String("hand"), Value: aws.String("made")}}}); err != nil {
		return fmt.Errorf("tag the rule: %w", err)
	}
	return nil
}

func TestLifecycleWithBootstrapPolicies(t *testing.T) {
	t.Parallel()
	for _, managed := range []bool{false, true} {
		t.Run(fmt.Sprintf("managed=%v", managed), func(t *testing.T) {
			x := newLPWorld(t, managed)
			if err := x.lifecycle(x.planDoc, x.appDoc); err != nil {
				t.Fatal(err)
			}
			denied := 0
			for _, c := range x.w.Calls() {
				if awserrCode(c.ErrCode) {
					denied++
					t.Errorf("denied: %s.%s as %s", c.Service, c.Operation, c.Principal)
				}
			}
			if denied == 0 && len(x.w.Calls()) < 50 {
				t.Fatalf("only %d calls: the lifecycle did not run", len(x.w.Calls()))
			}
		})
	}
}

func awserrCode(code string) bool {
	switch code {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
		return true
	}
	return false
}

// without returns doc minus statement i.
func without(doc *iampolicy.Document, i int) *iampolicy.Document {
	out := &iampolicy.Document{Version: doc.Version}
	out.Statement = append(out.Statement, doc.Statement[:i]...)
	out.Statement = append(out.Statement, doc.Statement[i+1:]...)
	return out
}

func TestEveryStatementIsNeeded(t *testing.T) {
	t.Parallel()
	for _, managed := range []bool{false, true} {
		for _, role := range []string{"plan", "apply"} {
			everyStatementIsNeeded(t, managed, role)
		}
	}
}

func everyStatementIsNeeded(t *testing.T, managed bool, role string) {
	{
		base := newLPWorld(t, managed)
		doc := base.planDoc
		if role == "apply" {
			doc = base.appDoc
		}
		for i, st := range doc.Statement {
			t.Run(fmt.Sprintf("managed=%v/%s/%s", managed, role, st.Sid), func(t *testing.T) {
				x := newLPWorld(t, managed)
				planDoc, appDoc := x.planDoc, x.appDoc
				if role == "plan" {
					planDoc = without(planDoc, i)
				} else {
					appDoc = without(appDoc, i)
				}
				err := x.lifecycle(planDoc, appDoc)
				if err == nil {
					t.Fatalf("the lifecycle succeeded without statement %s (%v): it grants nothing deploybot needs", st.Sid, st.Action)
				}
				if !awserr.IsAccessDenied(err) && !strings.Contains(err.Error(), "not authorized") {
					t.Fatalf("failed, but not for lack of permission: %v", err)
				}
			})
		}
	}
}

// TestPlanRoleGrantsExactlyWhatPlansCall: every action of the plan role's
// policy is called by a plan (of an empty account or of a deployed stack),
// and nothing else is (dependent actions AWS checks behind a call aside).
func TestPlanRoleGrantsExactlyWhatPlansCall(t *testing.T) {
	t.Parallel()
	for _, managed := range []bool{false, true} {
		x := newLPWorld(t, managed)
		if err := x.lifecycle(x.planDoc, x.appDoc); err != nil {
			t.Fatal(err)
		}
		called := map[string]bool{}
		for _, c := range x.w.Calls() {
			if strings.Contains(c.Principal, "assumed-role/plan/") && c.ErrCode == "" {
				called[awssim.Action(c.Service, c.Operation)] = true
			}
		}
		delete(called, "sts:GetCallerIdentity") // needs no permission
		// Dependent actions of what the role grants (none for a read-only role).
		implied := map[string]bool{}
		for _, a := range x.planDoc.Actions() {
			for _, d := range bootstrap.DependentActions()[a] {
				implied[d] = true
			}
		}
		granted := map[string]bool{}
		for _, a := range x.planDoc.Actions() {
			if !implied[a] || called[a] {
				granted[a] = true
			}
		}
		for a := range granted {
			if !called[a] {
				t.Errorf("managed=%v: plan role grants %s, which no plan called", managed, a)
			}
		}
		for a := range called {
			if !granted[a] {
				t.Errorf("managed=%v: a plan called %s, which the plan role does not grant", managed, a)
			}
		}
	}
}

// TestApplyIsIdempotent: --apply creates the provider and both roles, and a
// second run changes nothing but rewriting the inline policies.
func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	x := newLPWorld(t, true)
	x.w.RemoveServiceLinkedRoles() // a fresh account
	res, err := bootstrap.Build(x.env("512"), bootstrap.Options{Repo: "acme/infra"})
	if err != nil {
		t.Fatal(err)
	}
	c := awsapi.New(x.w.Config())
	var lines []string
	say := func(s string) { lines = append(lines, s) }
	for i := 0; i < 2; i++ {
		if err := res.Apply(context.Background(), c.IAM, say); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	want := []string{
		"oidc provider token.actions.githubusercontent.com: created",
		"service-linked role AWSServiceRoleForECS: created",
		"service-linked role AWSServiceRoleForApplicationAutoScaling_ECSService: created",
		"role deploybot-plan: created", "role deploybot-plan: policy deploybot-plan-lp written",
		"role deploybot-apply-lp: created", "role deploybot-apply-lp: policy deploybot-apply-lp written",
		"oidc provider token.actions.githubusercontent.com: exists",
		"service-linked role AWSServiceRoleForECS: exists",
		"service-linked role AWSServiceRoleForApplicationAutoScaling_ECSService: exists",
		"role deploybot-plan: exists", "role deploybot-plan: policy deploybot-plan-lp written",
		"role deploybot-apply-lp: exists", "role deploybot-apply-lp: policy deploybot-apply-lp written",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("progress:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	creates := 0
	for _, call := range x.w.Calls() {
		if call.Operation == "CreateRole" || call.Operation == "CreateOpenIDConnectProvider" {
			creates++
		}
	}
	if creates != 3 {
		t.Fatalf("%d creates, want 3 (provider and two roles, once)", creates)
	}
}

// TestFirstApplyInAFreshAccount is issue 11 item 10: in an account where
// nobody has used ECS or Application Auto Scaling yet, the apply role alone
// cannot make the first cluster or scalable target (AWS would create the
// service-linked roles only for a caller allowed iam:CreateServiceLinkedRole,
// and the apply role is not); `bootstrap --apply`, with admin credentials,
// creates them, and the first apply then succeeds with the apply role.
func TestFirstApplyInAFreshAccount(t *testing.T) {
	ctx := context.Background()
	x := newLPWorld(t, false)
	x.w.RemoveServiceLinkedRoles()
	_, err := deploy.Apply(ctx, x.as("apply", x.appDoc, x.env("512")))
	if err == nil || !strings.Contains(err.Error(), "Unable to assume the service linked role") {
		t.Fatalf("first apply without the service-linked roles: err = %v", err)
	}
	res, err := bootstrap.Build(x.env("512"), bootstrap.Options{Repo: "acme/infra"})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Apply(ctx, awsapi.New(x.w.Config()).IAM, func(string) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := deploy.Apply(ctx, x.as("apply", x.appDoc, x.env("512"))); err != nil {
		t.Fatalf("first apply after bootstrap: %v", err)
	}
	for _, a := range x.appDoc.Actions() {
		if a == "iam:CreateServiceLinkedRole" || a == "iam:*" {
			t.Errorf("the apply role may %s; bootstrap creates the service-linked roles instead", a)
		}
	}
}

// TestApplyRoleFlowRunActionsAreAllCalled (issue 9): every SQS and
// EventBridge action of the apply role's policy, and every IAM action it
// grants on the flow-run roles, is called by the lifecycle (existing and
// managed network together): a statement that is needed could still carry
// an action nothing calls, which TestEveryStatementIsNeeded cannot see.
func TestApplyRoleFlowRunActionsAreAllCalled(t *testing.T) {
	t.Parallel()
	called := map[string]bool{}
	var appDoc *iampolicy.Document
	for _, managed := range []bool{false, true} {
		x := newLPWorld(t, managed)
		appDoc = x.appDoc
		if err := x.lifecycle(x.planDoc, x.appDoc); err != nil {
			t.Fatal(err)
		}
		for _, c := range x.w.Calls() {
			if strings.Contains(c.Principal, "assumed-role/apply/") && c.ErrCode == "" {
				called[awssim.Action(c.Service, c.Operation)] = true
			}
		}
	}
	implied := map[string]bool{}
	for _, a := range appDoc.Actions() {
		for _, d := range bootstrap.DependentActions()[a] {
			implied[d] = true
		}
	}
	flowRunRole := func(st iampolicy.Statement) bool {
		for _, r := range st.Resource {
			if strings.Contains(r, "-flow-") {
				return true
			}
		}
		return false
	}
	checked := 0
	for _, st := range appDoc.Statement {
		for _, a := range st.Action {
			svc, _, _ := strings.Cut(a, ":")
			if svc != "sqs" && svc != "events" && !(svc == "iam" && flowRunRole(st)) || implied[a] {
				continue
			}
			checked++
			if !called[a] {
				t.Errorf("the apply role grants %s (statement %s), which no plan, apply or destroy called", a, st.Sid)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d flow-run actions in the apply role's policy: %s", checked, appDoc.JSON())
	}
}
