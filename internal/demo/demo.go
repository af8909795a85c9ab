// Package demo is `deploybot demo`: the whole deploybot cycle in one process,
// in a few seconds, with no network and no credentials. The real code paths
// (for every workflow job, what the container runs: `deploybot action`
// through cli.Main, with the runner's variables and files; the real resource kinds,
// deploy engine, Prefect client and health gate, and `deploybot bootstrap`)
// run against the simulated AWS account (internal/awssim on a virtual
// clock), a simulated Prefect Cloud workspace (internal/prefectsim) and a
// simulated GitHub repository (internal/githubsim, REST and the Actions OIDC
// token endpoint). What it prints comes from those runs: the PR comments are
// the bodies the simulated GitHub holds, the progress lines are the Action's
// log, the outcomes are the Action's outputs and plan-json file.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/bootstrap"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/render"
)

// Options configure a demo run.
type Options struct {
	// Out receives everything the demo shows.
	Out io.Writer
	// Keep keeps the workspace (environment file, event payloads, runner
	// files, full logs) after a successful run; a failed run always keeps it.
	Keep bool
	// Verbose shows the Action's whole log instead of its important lines.
	Verbose bool
	// Dir is the parent of the workspace; default the system's temp dir.
	Dir string

	// brokenBehavior replaces how step 4's image behaves (tests).
	brokenBehavior *awssim.ImageBehavior
	// entrypoint replaces entrypointArgs (tests).
	entrypoint []string
}

// Step is one step of the demo and how it went.
type Step struct {
	ID    string // "0", "1", "2", "3a", ...
	Name  string // a few words, for the table
	Title string
	// Want is the expected outcome (the Action's result output, or
	// "created" for the bootstrap); Result is what happened.
	Want, Result string
	Exit         int // the Action's exit code
	OK           bool
	// Problem says why the step did not go as expected ("" when OK).
	Problem  string
	AWSCalls int // calls the simulated account answered during the step
	// Principals counts the calls by who signed them (the admin for the
	// bootstrap, "anonymous" for AssumeRoleWithWebIdentity, then the
	// assumed roles' sessions); Denied lists the calls IAM refused.
	Principals map[string]int
	Denied     []string
	Sim        time.Duration // virtual clock time the step took
	Real       time.Duration
	LogFile    string // the Action's full log ("" for the bootstrap)

	// What the step left behind, for the demo's checks and its test.
	Outputs     map[string]string
	Plan        *render.PlanDoc
	Report      *render.ReportDoc
	Comments    []githubsim.Comment // deploybot's comments on the step's pull request
	Deployments []githubsim.Deployment
}

// Result is the whole run.
type Result struct {
	Workspace string // removed after a successful run unless Options.Keep
	Kept      bool
	Steps     []*Step
	// After the broken-image merge: the service's task definition and the
	// work pool's workers.
	ServingAfterRollback string
	WorkersAfterRollback []prefectsim.Worker
	// WithoutWorkerDuringBrokenDeploy is how long, from the broken merge's
	// apply to its verdict, the pool had no ONLINE worker of the revision
	// serving before it (by what the simulated Prefect lists, each second).
	WithoutWorkerDuringBrokenDeploy time.Duration
	// After the teardown: what is still tagged for the environment, before
	// and after the secret's recovery window.
	TaggedAfterTeardown []awssim.Item
	TaggedAfterWindow   []awssim.Item
	// Secrets are the generated fake credentials (the Prefect API key, the
	// job's GitHub token), so that a test can check they never show.
	Secrets []string
}

// Failed returns the first step that did not go as expected, or nil.
func (r *Result) Failed() *Step {
	for _, s := range r.Steps {
		if !s.OK {
			return s
		}
	}
	return nil
}

// Run runs the demo. Its error says which step failed (or that the demo
// could not run at all); the Result is returned either way.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	dir, err := os.MkdirTemp(o.Dir, "deploybot-demo-")
	if err != nil {
		return nil, fmt.Errorf("create the demo workspace: %w", err)
	}
	res := &Result{Workspace: dir}
	w, err := newWorld(dir)
	if err != nil {
		return res, err
	}
	defer w.close()
	res.Secrets = []string{w.prefectKey, w.githubToken}
	d := &demo{w: w, o: o, res: res, p: &printer{out: o.Out}}
	err = d.run(ctx)
	if err == nil {
		if f := res.Failed(); f != nil {
			err = fmt.Errorf("step %s (%s): %s", f.ID, f.Title, f.Problem)
		}
	}
	res.Kept = o.Keep || err != nil
	if res.Kept {
		d.p.line("")
		d.p.line("The workspace is kept: %s (the environment file in checkout/, each job's event and runner files in runner/, the full logs in logs/).", dir)
	} else if rerr := os.RemoveAll(dir); rerr != nil {
		d.p.line("could not remove the workspace %s: %v", dir, rerr)
	} else {
		d.p.line("")
		d.p.line("The workspace %s is removed; --keep keeps it with the full logs and comments.", dir)
	}
	return res, err
}

type demo struct {
	w   *world
	o   Options
	res *Result
	p   *printer
}

func (d *demo) run(ctx context.Context) error {
	w := d.w
	d.p.line("deploybot demo: a pull request adds an environment, merges apply it behind the Prefect health gate, a")
	d.p.line("bad image rolls back, and a manual run tears it all down. Everything below is deploybot's real code")
	d.p.line("(the GitHub Action, engine, resource kinds, Prefect gate) running against simulations:")
	d.p.line("  GitHub   %s (REST API and Actions OIDC tokens at %s)", repoFull, w.gh.URL)
	d.p.line("  AWS      account %s, %s, on a virtual clock: waits take no real time", w.aws.Account, w.aws.Region)
	d.p.line("  Prefect  a Cloud workspace at %s, work pool %q (type ecs), with a generated fake API key", w.pf.URL(), workPool)
	keep := "removed at the end; --keep keeps it"
	if d.o.Keep {
		keep = "kept"
	}
	d.p.line("  network  none: the simulators answer in process, and any other address is refused")
	d.p.line("  files    %s (the checkout, event payloads, runner files, full logs and comments; %s)", w.dir, keep)

	steps := []func(context.Context) error{d.bootstrap, d.firstPR, d.firstMerge, d.cpuPR, d.cpuMerge, d.brokenPR, d.brokenMerge, d.teardown}
	for _, f := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(ctx); err != nil {
			return err
		}
		if d.res.Failed() != nil {
			break // what follows would build on a step that went wrong
		}
	}
	d.table()
	return nil
}

// step runs f as one step: it measures the calls and times, and records the
// outcome check.
func (d *demo) step(id, title, want string, f func(s *Step) error) error {
	s := &Step{ID: id, Name: stepNames[id], Title: title, Want: want}
	d.res.Steps = append(d.res.Steps, s)
	d.p.header(id, title)
	calls := len(d.w.aws.Calls())
	sim := d.w.clock.Now()
	start := time.Now()
	err := f(s)
	s.Real = time.Since(start)
	if s.Sim == 0 {
		s.Sim = d.w.clock.Now().Sub(sim)
	}
	all := d.w.aws.Calls()
	s.AWSCalls = len(all) - calls
	s.Principals = map[string]int{}
	for _, c := range all[calls:] {
		if c.Principal == checkerARN {
			s.AWSCalls-- // the demo's own look, not deploybot's
			continue
		}
		s.Principals[c.Principal]++
		if c.ErrCode == "AccessDenied" || c.ErrCode == "AccessDeniedException" || c.ErrCode == "UnauthorizedOperation" {
			s.Denied = append(s.Denied, c.Service+":"+c.Operation)
		}
	}
	if len(s.Principals) > 0 {
		var who []string
		for _, p := range slices.Sorted(maps.Keys(s.Principals)) {
			who = append(who, fmt.Sprintf("%s (%d)", p, s.Principals[p]))
		}
		d.p.line("  AWS calls signed by: %s", strings.Join(who, ", "))
	}
	if len(s.Denied) > 0 {
		d.p.line("  AWS denied: %s", strings.Join(s.Denied, ", "))
	}
	if err != nil && s.Problem == "" {
		s.Problem = err.Error()
	}
	s.OK = s.Problem == ""
	mark := "✓ as expected"
	if !s.OK {
		mark = "✗ " + s.Problem
	}
	exit := ""
	if s.LogFile != "" {
		exit = fmt.Sprintf(", exit %d", s.Exit)
	}
	d.p.line("→ %s%s  %s", s.Result, exit, mark)
	if s.LogFile != "" {
		rel, _ := filepath.Rel(d.w.dir, s.LogFile)
		d.p.line("  full log: %s", rel)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

var stepNames = map[string]string{"0": "bootstrap", "1": "PR #1 plan", "2": "merge #1: apply", "3a": "PR #2 plan (cpu)",
	"3b": "merge #2: apply", "4a": "PR #3 plan (image)", "4b": "merge #3: gate fails", "5": "teardown"}

func (d *demo) table() {
	d.p.line("")
	d.p.line("━━ Summary")
	d.p.table(d.res.Steps)
}

// --- 0. bootstrap --------------------------------------------------------

func (d *demo) bootstrap(ctx context.Context) error {
	w := d.w
	if _, err := w.writeEnvFile(w.envFile(512, "prefecthq/prefect-aws:latest")); err != nil {
		return err
	}
	return d.step("0", "Bootstrap: the GitHub OIDC provider and deploybot's roles (deploybot bootstrap --apply, with admin credentials)", "created", func(s *Step) error {
		env, err := config.Load(filepath.Join(w.dir, "checkout", filepath.FromSlash(envPath)))
		if err != nil {
			return err
		}
		b, err := bootstrap.Build(env, bootstrap.Options{Repo: repoFull, DefaultBranch: defaultBranch})
		if err != nil {
			return err
		}
		iam := awsapi.New(w.aws.Config()).IAM
		if err := b.Apply(ctx, iam, func(m string) { d.p.log(m) }); err != nil {
			return err
		}
		for _, r := range []bootstrap.Role{b.PlanRole, b.ApplyRole} {
			d.p.log("%s: %s", r.Name, r.Description)
			for _, st := range r.Trust.Statement {
				d.p.log("  trusted for sub %s", strings.Join(st.Condition["StringLike"][bootstrap.OIDCHost+":sub"], " | "))
			}
			d.p.log("  policy %s: %d statements, %d actions", r.InlinePolicyName, len(r.Policy.Statement), len(r.Policy.Actions()))
		}
		// What the Action will find: the provider and both roles.
		s.Result = "created"
		for _, name := range []string{b.PlanRole.Name, b.ApplyRole.Name} {
			if _, err := iam.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String(name)}); err != nil {
				s.Result = "failed"
				s.Problem = fmt.Sprintf("role %s does not exist after the bootstrap: %v", name, err)
			}
		}
		return nil
	})
}

// --- 1. the first pull request ---------------------------------------------

func (d *demo) firstPR(ctx context.Context) error {
	w := d.w
	pr := w.openPR(1, "Add the demo environment", "add-demo-environment", githubsim.File{Filename: envPath, Status: "added"})
	return d.step("1", "PR #1 adds "+envPath+" (pull_request opened)", "planned", func(s *Step) error {
		d.p.line("The file the pull request adds:")
		d.p.quote(w.currentEnvFile(), 0)
		d.p.line("")
		if err := d.pullRequest(ctx, s, pr, "1-pr-1-plan"); err != nil {
			return err
		}
		if s.Problem == "" && len(s.Comments) != 1 {
			s.Problem = fmt.Sprintf("want one deploybot comment on PR #1, found %d", len(s.Comments))
		}
		if s.Problem == "" && (s.Plan == nil || s.Plan.Summary.Add == 0) {
			s.Problem = "the plan creates nothing"
		}
		return nil
	})
}

// pullRequest runs the workflow's plan job for pr and shows its comment.
func (d *demo) pullRequest(ctx context.Context, s *Step, pr *pr, logName string) error {
	run, err := d.action(ctx, s, logName, job{Name: "plan", Event: "pull_request", Payload: pr.event(),
		Ref: fmt.Sprintf("refs/pull/%d/merge", pr.Number), SHA: pr.HeadSHA})
	if err != nil {
		return err
	}
	s.Comments = d.botComments(pr.Number)
	if len(s.Comments) > 0 {
		c := s.Comments[len(s.Comments)-1]
		file, err := d.saveComment(logName, c)
		if err != nil {
			return err
		}
		d.p.line("")
		d.p.line("The comment on PR #%d, as GitHub holds it (markdown):", pr.Number)
		rel, _ := filepath.Rel(d.w.dir, file)
		d.p.comment(c.Body, rel, d.o.Verbose)
		if block := planBlock(c.Body, "prefect_work_pool.main"); len(block) > 0 && !d.o.Verbose {
			d.p.line("")
			d.p.line("Unfolded from that plan: the work pool's job template defaults, which send every flow run to this stack")
			d.p.line("(its cluster, subnets and security group, its flow-run roles, secret and log group):")
			for _, l := range block {
				d.p.line("  │ %s", l)
			}
		}
	}
	d.p.line("")
	d.p.line("The job summary (first lines of %d):", strings.Count(run.Summary, "\n"))
	d.p.quote(run.Summary, 6)
	d.expect(s, run, "planned", 0)
	return nil
}

// --- 2. the merge ------------------------------------------------------------

func (d *demo) firstMerge(ctx context.Context) error {
	return d.step("2", "PR #1 is merged (push to "+defaultBranch+"): apply, ECS deployment, Prefect health gate", "applied", func(s *Step) error {
		if err := d.mergeAndApply(ctx, s, 1, "2-merge-1-apply"); err != nil {
			return err
		}
		d.gatePassed(s)
		d.deploymentState(s, "success")
		if s.Problem == "" && (len(s.Comments) != 1 || s.Comments[0].Edits != 1) {
			s.Problem = fmt.Sprintf("want PR #1's one comment edited once with the outcome, found %d comment(s)", len(s.Comments))
			if len(s.Comments) == 1 {
				s.Problem += fmt.Sprintf(" edited %d times", s.Comments[0].Edits)
			}
		}
		return nil
	})
}

// mergeAndApply merges PR number and runs the workflow's apply job (the
// example workflow's `affected` job names the environments, then one apply
// job per environment runs in its GitHub environment).
func (d *demo) mergeAndApply(ctx context.Context, s *Step, number int, logName string) error {
	w := d.w
	p := &pr{Number: number}
	w.gh.Do(func() {
		pull := w.repo.Pulls[number]
		p.Title, p.Branch, p.HeadSHA, p.BaseSHA = "", pull.HeadRef, pull.HeadSHA, pull.BaseSHA
		p.Files = append(p.Files, pull.Files...)
	})
	push := w.merge(p)
	affected, err := d.action(ctx, s, logName+"-affected", job{Name: "affected", Event: "push", Payload: push,
		Ref: "refs/heads/" + defaultBranch, SHA: w.mainSHA, Inputs: map[string]string{"operation": "affected"}})
	if err != nil {
		return err
	}
	envs := affected.Outputs["environments"]
	d.p.log("affected job: environments=%s", envs)
	if envs != `["`+envName+`"]` {
		s.Problem = fmt.Sprintf("the affected job selected %s, want [%q]", envs, envName)
		return nil
	}
	run, err := d.action(ctx, s, logName, job{Name: "apply", Event: "push", Payload: push, Environment: envName,
		Ref: "refs/heads/" + defaultBranch, SHA: w.mainSHA, Inputs: map[string]string{"operation": "apply", "environments": envName}})
	if err != nil {
		return err
	}
	s.Comments = d.botComments(number)
	s.Deployments = w.gh.Deployments(repoFull)
	if dep := lastDeployment(s); dep != nil {
		last := dep.Statuses[len(dep.Statuses)-1]
		d.p.line("")
		d.p.line("GitHub Deployment #%d to %q: %s — %q", dep.ID, dep.Environment, strings.Join(dep.States(), " → "), last.Description)
		if last.EnvironmentURL != "" {
			d.p.line("  environment URL (the Prefect work pool): %s", last.EnvironmentURL)
		}
	}
	if len(s.Comments) > 0 {
		c := s.Comments[len(s.Comments)-1]
		file, err := d.saveComment(logName, c)
		if err != nil {
			return err
		}
		d.p.line("")
		d.p.line("PR #%d's comment, edited in place with the outcome:", number)
		rel, _ := filepath.Rel(d.w.dir, file)
		d.p.comment(c.Body, rel, d.o.Verbose)
	}
	want, exit := "applied", 0
	if s.Want == "rolled_back" {
		want, exit = "rolled_back", 3
	}
	d.expect(s, run, want, exit)
	return nil
}

// --- 3. raise the CPU ------------------------------------------------------

// envPR writes the environment file with the given worker cpu and image
// and opens PR number with it; showChange prints the lines the PR changes.
func (d *demo) envPR(number int, title, branch string, cpu int, image string) (p *pr, showChange func(), err error) {
	w := d.w
	before, err := w.writeEnvFile(w.envFile(cpu, image))
	if err != nil {
		return nil, nil, err
	}
	p = w.openPR(number, title, branch, githubsim.File{Filename: envPath, Status: "modified"})
	return p, func() {
		d.p.line("The change to %s:", envPath)
		d.p.quote(strings.Join(lineChanges(before, w.currentEnvFile()), "\n"), 0)
		d.p.line("")
	}, nil
}

func (d *demo) cpuPR(ctx context.Context) error {
	pr, showChange, err := d.envPR(2, "Give the worker more CPU", "worker-cpu-1024", 1024, "prefecthq/prefect-aws:latest")
	if err != nil {
		return err
	}
	return d.step("3a", "PR #2 raises worker.cpu from 512 to 1024", "planned", func(s *Step) error {
		showChange()
		if err := d.pullRequest(ctx, s, pr, "3a-pr-2-plan"); err != nil {
			return err
		}
		if s.Problem == "" {
			s.Problem = cpuPlanProblem(s.Plan)
		}
		return nil
	})
}

// cpuPlanProblem checks that the CPU change is one update of the task
// definition (a new revision: cpu, and the worker-name prefix that is derived
// from the definition so that the gate can tell revisions apart) and the
// service's reference to it, nothing else.
func cpuPlanProblem(p *render.PlanDoc) string {
	if p == nil {
		return "no plan"
	}
	var changed []string
	for _, c := range p.Changes {
		if c.Action != "no-op" {
			changed = append(changed, c.Action+" "+c.Address)
		}
	}
	want := "update task_definition.worker, update ecs_service.worker"
	if got := strings.Join(changed, ", "); got != want {
		return fmt.Sprintf("the plan changes %q, want %q", got, want)
	}
	for _, c := range p.Changes {
		var fields []string
		for _, f := range c.Fields {
			fields = append(fields, f.Path)
		}
		sort.Strings(fields)
		switch c.Address {
		case "task_definition.worker":
			if strings.Join(fields, ",") != "container.env.DEPLOYBOT_WORKER_PREFIX,cpu" {
				return fmt.Sprintf("the task definition changes %v, want cpu (and the derived worker prefix) only", fields)
			}
			for _, f := range c.Fields {
				if f.Path == "cpu" && (f.Before != "512" || f.After != "1024") {
					return fmt.Sprintf("cpu changes %s -> %s, want 512 -> 1024", f.Before, f.After)
				}
			}
		case "ecs_service.worker":
			// the revision that passed the health gate follows the task
			// definition (a derived change)
			if strings.Join(fields, ",") != "health_gate.passed_revision,task_definition" {
				return fmt.Sprintf("the service changes %v, want its task_definition (and the derived health_gate.passed_revision) only", fields)
			}
		}
	}
	return ""
}

func (d *demo) cpuMerge(ctx context.Context) error {
	return d.step("3b", "PR #2 is merged: a new task-definition revision behind the gate", "applied", func(s *Step) error {
		if err := d.mergeAndApply(ctx, s, 2, "3b-merge-2-apply"); err != nil {
			return err
		}
		d.gatePassed(s)
		d.deploymentState(s, "success")
		if s.Problem == "" {
			dep := s.Report.Deployment
			switch {
			case dep == nil:
				s.Problem = "the apply started no ECS deployment"
			case dep.PreviousTaskDefinition == "" || dep.TaskDefinition == dep.PreviousTaskDefinition:
				s.Problem = fmt.Sprintf("no new revision: %s (previous %q)", dep.TaskDefinition, dep.PreviousTaskDefinition)
			default:
				d.p.log("ECS now runs %s (was %s)", shortARN(dep.TaskDefinition), shortARN(dep.PreviousTaskDefinition))
			}
		}
		return nil
	})
}

// --- 4. a broken image -------------------------------------------------------

// brokenImage runs and passes ECS's checks, but its Prefect worker never
// heartbeats: only the health gate can catch it.
const brokenImage = "prefecthq/prefect-aws:3-broken-no-heartbeat"

func (d *demo) brokenPR(ctx context.Context) error {
	w := d.w
	w.aws.Mu.Lock()
	w.aws.Images[brokenImage] = awssim.ImageBehavior{NoHeartbeat: true}
	if d.o.brokenBehavior != nil {
		w.aws.Images[brokenImage] = *d.o.brokenBehavior
	}
	w.aws.Mu.Unlock()
	pr, showChange, err := d.envPR(3, "Upgrade the worker image", "worker-image", 1024, brokenImage)
	if err != nil {
		return err
	}
	return d.step("4a", "PR #3 ships an image whose worker starts but never reaches Prefect", "planned", func(s *Step) error {
		showChange()
		return d.pullRequest(ctx, s, pr, "4a-pr-3-plan")
	})
}

func (d *demo) brokenMerge(ctx context.Context) error {
	w := d.w
	var before, beforePrefix string // the revision serving before the merge, its workers' prefix
	if rep := d.res.Steps[len(d.res.Steps)-2].Report; rep != nil && rep.Deployment != nil {
		before, beforePrefix = rep.Deployment.TaskDefinition, rep.Deployment.WorkerPrefix
	}
	return d.step("4b", "PR #3 is merged: ECS deploys it, the health gate fails, the service rolls back", "rolled_back", func(s *Step) error {
		if err := d.mergeAndApply(ctx, s, 3, "4b-merge-3-apply"); err != nil {
			return err
		}
		d.deploymentState(s, "failure")
		out, err := awsapi.New(w.checker()).ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{
			Cluster: aws.String("deploybot-" + envName), Services: []string{"worker"}})
		if err != nil {
			return fmt.Errorf("describe the service after the rollback: %w", err)
		}
		if len(out.Services) == 1 {
			d.res.ServingAfterRollback = aws.ToString(out.Services[0].TaskDefinition)
		}
		d.res.WorkersAfterRollback = w.pf.Workers(workPool)
		var online []string
		for _, wk := range d.res.WorkersAfterRollback {
			if wk.Status == "ONLINE" {
				online = append(online, wk.Name)
			}
		}
		d.p.log("the service runs %s again; ONLINE in %s: %s", shortARN(d.res.ServingAfterRollback), workPool, strings.Join(online, ", "))
		var started, finished time.Time
		var err1, err2 error = errors.New("no report"), nil
		if s.Report != nil {
			started, err1 = time.Parse(time.RFC3339, s.Report.StartedAt)
			finished, err2 = time.Parse(time.RFC3339, s.Report.FinishedAt)
		}
		if err1 == nil && err2 == nil {
			for at := started; !at.After(finished); at = at.Add(time.Second) {
				served := false
				for _, name := range w.pf.WorkersOnlineAt(workPool, at) {
					served = served || strings.HasPrefix(name, beforePrefix+"-")
				}
				if !served {
					d.res.WithoutWorkerDuringBrokenDeploy += time.Second
				}
			}
			served := ""
			if d.res.WithoutWorkerDuringBrokenDeploy == 0 {
				served = ": the old worker served throughout"
			}
			d.p.log("from the merge to the verdict (%s), the pool had no ONLINE worker of %s for %s%s",
				finished.Sub(started).Round(time.Second), shortARN(before), d.res.WithoutWorkerDuringBrokenDeploy, served)
		}
		if s.Problem != "" {
			return nil
		}
		g := s.Report.Gate
		switch {
		case g == nil || g.Passed:
			s.Problem = "the health gate did not fail"
		case !g.RolledBack || g.RolledBackTo != before:
			s.Problem = fmt.Sprintf("the gate rolled back to %q, want %q", g.RolledBackTo, before)
		case !g.RestoredWorkerOnline:
			s.Problem = "the restored revision's worker is not ONLINE"
		case d.res.ServingAfterRollback != before:
			s.Problem = fmt.Sprintf("the service runs %s, want the previous revision %s", d.res.ServingAfterRollback, before)
		case len(online) == 0:
			s.Problem = "no worker is ONLINE in the pool"
		case d.res.WithoutWorkerDuringBrokenDeploy > 0:
			s.Problem = fmt.Sprintf("the pool had no ONLINE worker of %s for %s during the broken deploy", shortARN(before), d.res.WithoutWorkerDuringBrokenDeploy)
		}
		return nil
	})
}

// --- 5. teardown -------------------------------------------------------------

func (d *demo) teardown(ctx context.Context) error {
	w := d.w
	started := w.clock.Now()
	return d.step("5", "Teardown: workflow_dispatch operation=destroy environment=demo confirm=demo", "destroyed", func(s *Step) error {
		inputs := map[string]string{"operation": "destroy", "environment": envName, "confirm": envName}
		run, err := d.action(ctx, s, "5-destroy", job{Name: "destroy", Event: "workflow_dispatch", Payload: dispatchEvent(inputs),
			Environment: envName, Ref: "refs/heads/" + defaultBranch, SHA: w.mainSHA, Inputs: inputs})
		if err != nil {
			return err
		}
		d.expect(s, run, "destroyed", 0)
		s.Deployments = w.gh.Deployments(repoFull)
		var states []string
		for _, dep := range s.Deployments {
			states = append(states, fmt.Sprintf("#%d %s", dep.ID, dep.State()))
		}
		d.p.log("GitHub Deployments: %s", strings.Join(states, ", "))
		if s.Problem == "" {
			for _, dep := range s.Deployments {
				if dep.Environment == envName && dep.State() != "inactive" {
					s.Problem = fmt.Sprintf("deployment #%d is %s, want inactive", dep.ID, dep.State())
				}
			}
		}
		d.res.TaggedAfterTeardown = w.aws.TaggedFor(envName)
		// The step's simulated time ends here: the recovery window below
		// is AWS's, not deploybot's.
		s.Sim = w.clock.Now().Sub(started)
		d.afterTeardown(s)
		return nil
	})
}

// afterTeardown shows what AWS still holds for the environment: a secret
// scheduled for deletion stays (recoverable) for its recovery window.
func (d *demo) afterTeardown(s *Step) {
	w := d.w
	left := d.res.TaggedAfterTeardown
	if len(left) == 0 {
		d.p.log("inventory of the account: nothing is tagged deploybot:environment=%s", envName)
		return
	}
	pendingOnly := true
	for _, it := range left {
		d.p.log("still tagged for %s: %s %s %s", envName, it.Service, it.Type, it.ID)
		pendingOnly = pendingOnly && strings.Contains(it.Type, "pending deletion")
	}
	if !pendingOnly {
		if s.Problem == "" {
			s.Problem = fmt.Sprintf("the teardown left %d resources tagged for %s", len(left), envName)
		}
		return
	}
	const window = 7*24*time.Hour + time.Minute
	w.clock.Advance(window)
	d.res.TaggedAfterWindow = w.aws.TaggedFor(envName)
	d.p.log("after the secret's recovery window (the virtual clock advanced 7 days): %d resources tagged for %s", len(d.res.TaggedAfterWindow), envName)
	if len(d.res.TaggedAfterWindow) != 0 && s.Problem == "" {
		s.Problem = fmt.Sprintf("%d resources are still tagged for %s after the recovery window", len(d.res.TaggedAfterWindow), envName)
	}
}

// --- checks and helpers -------------------------------------------------------

// expect records the run's outcome in s and checks it.
func (d *demo) expect(s *Step, run *actionRun, want string, exit int) {
	s.Exit = run.Exit
	s.Outputs = run.Outputs
	s.Result = run.Outputs["result"]
	s.Plan, s.Report, _ = run.Plan.env(envName)
	if s.Report != nil && s.Report.Plan != nil && s.Plan == nil {
		s.Plan = s.Report.Plan
	}
	if s.Problem == "" && (s.Result != want || s.Exit != exit) {
		s.Problem = fmt.Sprintf("want result %s and exit %d, got %s and exit %d", want, exit, s.Result, s.Exit)
	}
}

func (d *demo) gatePassed(s *Step) {
	if s.Problem != "" {
		return
	}
	switch {
	case s.Report == nil:
		s.Problem = "no report"
	case s.Report.Gate == nil:
		s.Problem = "the health gate did not run"
	case !s.Report.Gate.Passed:
		s.Problem = "the health gate failed: " + s.Report.Gate.Reason
	}
}

func (d *demo) deploymentState(s *Step, want string) {
	if s.Problem != "" {
		return
	}
	dep := lastDeployment(s)
	if dep == nil || dep.State() != want {
		got := "none"
		if dep != nil {
			got = dep.State()
		}
		s.Problem = fmt.Sprintf("the GitHub Deployment is %s, want %s", got, want)
	}
}

func lastDeployment(s *Step) *githubsim.Deployment {
	var last *githubsim.Deployment
	for i := range s.Deployments {
		if last == nil || s.Deployments[i].ID > last.ID {
			last = &s.Deployments[i]
		}
	}
	return last
}

// saveComment writes a comment's body to the workspace's comments/.
func (d *demo) saveComment(name string, c githubsim.Comment) (string, error) {
	path := filepath.Join(d.w.dir, "comments", name+".md")
	if err := os.WriteFile(path, []byte(c.Body), 0o644); err != nil {
		return "", fmt.Errorf("save the comment: %w", err)
	}
	return path, nil
}

// botComments returns deploybot's comments (those with its marker) on a
// pull request.
func (d *demo) botComments(number int) []githubsim.Comment {
	var out []githubsim.Comment
	for _, c := range d.w.gh.Comments(repoFull, number) {
		if m, ok := render.ParseMarker(c.Body); ok && m.Env == envName {
			out = append(out, c)
		}
	}
	return out
}

// action runs one job and shows its log's important lines.
func (d *demo) action(ctx context.Context, s *Step, logName string, j job) (*actionRun, error) {
	args := entrypointArgs
	if d.o.entrypoint != nil {
		args = d.o.entrypoint
	}
	run, err := d.w.runAction(ctx, args, j)
	if run != nil {
		path := filepath.Join(d.w.dir, "logs", logName+".log")
		if werr := os.WriteFile(path, []byte(runnerLog(run.Log)), 0o644); werr != nil && err == nil {
			err = werr
		}
		s.LogFile = path
		if j.Name == "affected" {
			s.LogFile = "" // the apply job's log is the step's
		}
		d.p.actionLog(j.Name, run.Log, d.o.Verbose)
	}
	if err != nil {
		return run, fmt.Errorf("the %s job: %w", j.Name, err)
	}
	return run, nil
}

func shortARN(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}
