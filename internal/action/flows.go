package action

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	gh "github.com/google/go-github/v62/github"

	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/github"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/render"
	"github.com/deploybot/deploybot/internal/stack"
)

// event parses the event payload at GITHUB_EVENT_PATH with go-github's types.
func (r *run) event() (any, error) {
	p := r.ghctx.EventPath
	if p == "" {
		return nil, exit.Inputf("GITHUB_EVENT_PATH is not set")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, exit.Inputf("read the event payload: %v", err)
	}
	name := r.ghctx.EventName
	if name == "pull_request_target" {
		name = "pull_request" // the same payload (docs/research/github-actions.md §5.1)
	}
	ev, err := gh.ParseWebHook(name, b)
	if err != nil {
		return nil, exit.Inputf("parse the %s event payload: %v", r.ghctx.EventName, err)
	}
	return ev, nil
}

func fingerprint(p *plan.Plan) string {
	if p.Fingerprint != "" {
		return p.Fingerprint
	}
	return p.ComputeFingerprint()
}

// prInfo is the pull request a flow comments on.
type prInfo struct {
	Number           int
	HeadSHA, BaseSHA string
	HeadRef          string // the branch (untrusted: render escapes it)
}

// --- pull_request: plan ---------------------------------------------------

// pushInfo is the commit range of a push event.
type pushInfo struct{ Before, After string }

// scope reads what the event is about: the pull request (nil for a fork,
// which ends the run cleanly, or for another event) or the push range.
// done is true when there is nothing to do.
func (r *run) scope() (pr *prInfo, push *pushInfo, done bool, err error) {
	switch {
	case r.ghctx.EventName == "pull_request" || r.ghctx.EventName == "pull_request_target":
		raw, err := r.event()
		if err != nil {
			return nil, nil, false, err
		}
		ev, ok := raw.(*gh.PullRequestEvent)
		if !ok || ev.PullRequest == nil {
			return nil, nil, false, exit.Inputf("the pull_request event payload has no pull_request")
		}
		if a := ev.GetAction(); r.in.operation == OpAuto && a != "opened" && a != "synchronize" && a != "reopened" {
			r.note("Nothing to do for a pull request that was %s.", render.Escape(a))
			r.outcome = "skipped"
			return nil, nil, true, nil
		}
		head, base := ev.PullRequest.GetHead(), ev.PullRequest.GetBase()
		if hr, br := head.GetRepo().GetFullName(), base.GetRepo().GetFullName(); hr != "" && !strings.EqualFold(hr, br) {
			return nil, nil, true, r.skipFork(ev.GetNumber(), hr)
		}
		return &prInfo{Number: ev.GetNumber(), HeadSHA: head.GetSHA(), BaseSHA: base.GetSHA(), HeadRef: head.GetRef()}, nil, false, nil
	case r.ghctx.EventName == "push":
		raw, err := r.event()
		if err != nil {
			return nil, nil, false, err
		}
		ev, ok := raw.(*gh.PushEvent)
		if !ok {
			return nil, nil, false, exit.Inputf("the push event payload is not a push")
		}
		def := ev.GetRepo().GetDefaultBranch()
		if ev.GetDeleted() || (def != "" && ev.GetRef() != "refs/heads/"+def) {
			r.note("Nothing to do: the push to %s is not a new commit on the default branch (%s).", render.Code(ev.GetRef()), render.Code(def))
			r.outcome = "skipped"
			return nil, nil, true, nil
		}
		return nil, &pushInfo{Before: ev.GetBefore(), After: ev.GetAfter()}, false, nil
	}
	return nil, nil, false, nil
}

// selectEnvs picks the environments to act on: the explicit inputs, else
// what the pull request or push changed (see affected), else all of them.
func (r *run) selectEnvs(ctx context.Context, all []*envFile, pr *prInfo, push *pushInfo) (selection, error) {
	names := append(append([]string{}, r.in.environments...), nonEmpty(r.in.environment)...)
	if len(names) > 0 {
		envs, err := r.explicit(all, names)
		return selection{Envs: envs}, err
	}
	if pr == nil && push == nil {
		return selection{Envs: all, All: "no pull request or push to take the changed files from"}, nil
	}
	c, err := r.client()
	if err != nil {
		return selection{}, err
	}
	var ch github.Changes
	if pr != nil {
		ch, err = c.PullRequestFiles(ctx, r.owner, r.repo, pr.Number)
	} else {
		ch, err = c.PushFiles(ctx, r.owner, r.repo, push.Before, push.After)
	}
	if err != nil {
		return selection{}, err
	}
	return r.affected(all, ch), nil
}

// selectAffected reads the event, the environment files and which of them the
// event affects, and reports the selection; done means there is nothing to
// do (e.g. a fork's pull request).
func (r *run) selectAffected(ctx context.Context) (sel selection, pr *prInfo, push *pushInfo, done bool, err error) {
	pr, push, done, err = r.scope()
	if err != nil || done {
		return selection{}, nil, nil, done, err
	}
	all, err := r.discover()
	if err != nil {
		return selection{}, nil, nil, false, err
	}
	if r.nothingYet(all) {
		return selection{}, pr, push, true, nil
	}
	if sel, err = r.selectEnvs(ctx, all, pr, push); err != nil {
		return selection{}, nil, nil, false, err
	}
	r.reportSelection(sel)
	return sel, pr, push, false, nil
}

func (r *run) planFlow(ctx context.Context) error {
	sel, pr, _, done, err := r.selectAffected(ctx)
	if err != nil || done {
		return err
	}

	head := r.ghctx.SHA
	if pr != nil {
		head = pr.HeadSHA
	}
	r.forEach(oneByName(sel.Envs), func(ef *envFile) *envResult {
		res := &envResult{File: ef}
		res.Plan, res.Err = r.planOne(ctx, ef)
		if pr == nil {
			return res
		}
		var body string
		if res.Err != nil {
			body = errorComment(ef.Name, "plan", res.Err, r.runURL, head, render.Marker(ef.Name, "", pr.HeadSHA, pr.BaseSHA))
		} else {
			body = render.Comment(res.Plan, nil, render.CommentOptions{
				Marker: render.Marker(ef.Name, fingerprint(res.Plan), pr.HeadSHA, pr.BaseSHA), HeadSHA: head, RunURL: r.runURL,
				// The example workflow's apply job runs in the GitHub
				// environment of the same name (README, quickstart step 3).
				Next: &render.NextSteps{GitHubEnvironment: ef.Name, Branch: pr.HeadRef}})
		}
		r.comment(ctx, pr.Number, ef.Name, body, res)
		return res
	})
	if pr != nil && r.in.labels {
		r.labelPR(ctx, pr.Number)
	}
	if pr != nil {
		for _, d := range sel.Deleted {
			name := strings.TrimSuffix(filepath.Base(d), filepath.Ext(d))
			body := render.Marker(name, "", pr.HeadSHA, pr.BaseSHA) + "\n" + deletedText(d, name, r.runURL)
			r.comment(ctx, pr.Number, name, body, &envResult{File: &envFile{Name: name, Path: d}})
		}
	}
	return r.failure()
}

// affectedFlow only lists the affected environments (the `environments`
// output), with no AWS call: a workflow uses it to fan out one job per
// environment, each with its own `environment:` protection and concurrency.
func (r *run) affectedFlow(ctx context.Context) error {
	if _, _, _, done, err := r.selectAffected(ctx); err != nil || done {
		return err
	}
	r.outcome = "no_changes"
	return nil
}

func (r *run) reportSelection(sel selection) {
	switch {
	case sel.All != "":
		r.note("Every environment is affected: %s.", render.Escape(sel.All))
	case len(sel.Envs) == 0:
		r.note("No environment file is affected by this change.")
		r.outcome = "no_changes"
	}
	for _, d := range sel.Deleted {
		r.note("%s is deleted. deploybot does **not** destroy an environment because its file is gone; run the workflow with `operation: destroy` to tear it down.", render.Code(d))
	}
	for _, ef := range sel.Envs {
		r.say(event.Info, ef.Name, "selected (%s)", ef.Path)
		r.selected = append(r.selected, ef.Name)
	}
}

// nothingYet ends a run on a repository without environment files (the
// quickstart's pull request that adds the workflow before the first file):
// there is nothing to plan, apply or check, which is no error.
func (r *run) nothingYet(all []*envFile) bool {
	if len(all) > 0 || len(r.in.environments) > 0 || r.in.environment != "" {
		return false
	}
	what := map[string]string{OpApply: "apply", OpDrift: "check for drift", OpAffected: "select"}[r.op]
	if what == "" {
		what = "plan"
	}
	r.note("There are no environment files in %s yet, so there is nothing to %s. Add one (see the README's Quickstart) and deploybot plans it on its pull request.",
		render.Code(r.in.envDir), what)
	r.say(event.Info, "", "no environment files in %s: nothing to %s", r.in.envDir, what)
	r.outcome = "no_changes"
	return true
}

// planOne plans one environment with the plan role.
func (r *run) planOne(ctx context.Context, ef *envFile) (*plan.Plan, error) {
	if ef.Err != nil {
		return nil, ef.Err
	}
	cfg, err := r.awsConfig(ctx, ef.Env, ef.Env.AWS.PlanRoleARN, "plan")
	if err != nil {
		return nil, err
	}
	res, err := r.o.Engine.Plan(ctx, r.request(ef, cfg))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p := res.Plan
	s := p.Summary()
	r.say(event.Info, ef.Name, "plan: %d to add, %d to change, %d to replace, %d to destroy (fingerprint %s)", s.Add, s.Change, s.Replace, s.Destroy, fingerprint(p))
	return p, nil
}

func (r *run) request(ef *envFile, cfg aws.Config) Request {
	credential := r.in.prefectAPIKey
	if ef.Env.BasicAuth() {
		credential = r.in.prefectAuthString
	}
	return Request{Env: ef.Env, AWS: cfg, PrefectCredential: credential, Secrets: r.secrets, Clock: r.o.Clock, Getenv: r.o.Getenv,
		Events: event.ForEnvironment(r.events, ef.Name)}
}

// comment upserts env's comment, recording the URL, or the error in
// res.CommentErr and a warning. The runner's masks do not cover what
// deploybot writes to GitHub (docs/research/pr-comment-bots.md §0): the
// client redacts every body with the run's redactor.
func (r *run) comment(ctx context.Context, pr int, env, body string, res *envResult) {
	c, err := r.client()
	if err == nil {
		var created bool
		if res.CommentURL, created, err = c.UpsertComment(ctx, r.owner, r.repo, pr, env, body); err == nil {
			verb := "updated"
			if created {
				verb = "created"
			}
			r.say(event.Info, env, "comment %s: %s", verb, res.CommentURL)
			return
		}
	}
	res.CommentErr = err
	r.say(event.Warning, env, "could not write the pull request comment: %v", err)
}

// errorComment is the comment of an environment that could not be planned
// or applied. The environment's name (a file's base name when the file did
// not load, so anything the pull request chose) and the error (which quotes
// file names and AWS's or Prefect's messages) are escaped for markdown:
// neither can add markup, a mention, a heading or an end of the code block
// (issue 11 item 4).
func errorComment(env, what string, err error, runURL, head, marker string) string {
	return fmt.Sprintf("%s\n### ❌ deploybot could not %s %s\n\n%s\nNothing was changed. Commit %s · %s\n",
		marker, what, render.Code(env), render.CodeBlock(err.Error(), ""), render.Code(short(head)), render.Link("run", runURL))
}

// deletedText is the comment of an environment file the pull request
// removes; the file's name is the pull request's, and escaped.
func deletedText(file, name, runURL string) string {
	return fmt.Sprintf("### ⚠️ %s is deleted in this pull request\n\n"+
		"deploybot does **not** destroy an environment because its file is gone: after the merge, the AWS resources of %s keep running and are no longer managed.\n\n"+
		"To tear it down, run the deploybot workflow with `operation: destroy`, %s and %s **before** merging, while the file is still on the default branch.\n\n%s\n",
		render.Code(file), render.Code(name), render.Code("environment: "+name), render.Code("confirm: "+name), render.Link("run", runURL))
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// skipFork ends a fork pull request's run cleanly: GitHub gives it no OIDC
// token and a read-only GITHUB_TOKEN (docs/research/github-actions.md §2.1, gotcha 12).
func (r *run) skipFork(number int, headRepo string) error {
	msg := fmt.Sprintf("Pull request #%d comes from the fork %s. GitHub gives fork pull requests no OIDC token, so deploybot cannot assume an AWS role and did not plan. Nothing was read or changed in AWS. To get a plan, push the branch to %s/%s.", number, render.OneLine(headRepo), r.owner, r.repo)
	// A notice annotation shows on the run's page and the pull request's
	// checks, where a reviewer looks when no plan comment appears
	// (docs/research/github-actions.md §1.4).
	r.events.Emit(event.Event{Time: r.o.Clock.Now(), Level: event.Notice, Title: "deploybot did not plan this fork's pull request", Message: msg})
	r.note("%s", fmt.Sprintf("**Not planned:** pull request #%d comes from the fork %s. GitHub gives fork pull requests no OIDC token, so deploybot cannot assume an AWS role: nothing was read or changed in AWS. To get a plan, push the branch to %s.",
		number, render.Code(headRepo), render.Code(r.owner+"/"+r.repo)))
	r.outcome = "skipped"
	return nil
}

// --- push: apply --------------------------------------------------------

func (r *run) applyFlow(ctx context.Context) error {
	_, push, done, err := r.scope()
	if err != nil || done {
		return err
	}
	after := r.ghctx.SHA
	switch {
	case push != nil:
		after = push.After
	case len(r.in.environments) == 0 && r.in.environment == "":
		return exit.Inputf("operation apply outside a push needs the environment (or environments) input")
	}
	all, err := r.discover()
	if err != nil {
		return err
	}
	if r.nothingYet(all) {
		return nil
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	sel, err := r.selectEnvs(ctx, all, nil, push)
	if err != nil {
		return err
	}
	sel.Envs = oneByName(sel.Envs)
	var pr *github.PullRequest
	r.reportSelection(sel)
	if r.ghctx.EventName == "push" && len(sel.Envs) > 0 {
		if pr, err = c.MergedPullRequest(ctx, r.owner, r.repo, after); err != nil {
			return err
		}
		if pr == nil {
			r.note("Commit %s is not the merge of a pull request: nothing was reviewed, so no destroy or replacement will be applied.", render.Code(short(after)))
		} else {
			r.say(event.Info, "", "merged pull request #%d (head %s)", pr.Number, short(pr.HeadSHA))
		}
	}
	// Applies run one environment at a time, in file order: an apply
	// holds locks and waits on ECS and Prefect; serial logs read better and
	// a failure in one environment is known before the next starts.
	for _, ef := range sel.Envs {
		r.add(r.applyOne(ctx, c, ef, after, pr))
	}
	return r.failure()
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func (r *run) applyOne(ctx context.Context, c *github.Client, ef *envFile, after string, pr *github.PullRequest) *envResult {
	res := &envResult{File: ef}
	if ef.Err != nil {
		res.Err = ef.Err
		return res
	}
	var reviewed github.Reviewed
	var found bool
	if pr != nil {
		var err error
		if reviewed, found, err = c.ReviewedFingerprint(ctx, r.owner, r.repo, pr.Number, ef.Name); err != nil {
			res.Err = err
			return res
		}
		if found && reviewed.HeadSHA != "" && pr.HeadSHA != "" && !strings.HasPrefix(pr.HeadSHA, reviewed.HeadSHA) && !strings.HasPrefix(reviewed.HeadSHA, pr.HeadSHA) {
			r.say(event.Warning, ef.Name, "the reviewed plan was made for %s, but pull request #%d was merged at %s", short(reviewed.HeadSHA), pr.Number, short(pr.HeadSHA))
		}
	}

	payload := map[string]any{"reviewed_fingerprint": reviewed.Fingerprint}
	if pr != nil {
		payload["pull_request"] = pr.Number
	}
	depID, err := c.CreateDeployment(ctx, r.owner, r.repo, github.NewDeployment{Ref: after, Environment: ef.Name,
		Description: "deploybot apply of " + ef.Name, Payload: payload})
	if err != nil {
		r.say(event.Warning, ef.Name, "could not record a GitHub Deployment: %v", err)
	} else {
		r.deploymentStatus(ctx, c, depID, ef.Name, github.Status{State: github.StateInProgress, Description: "applying", LogURL: r.runURL})
	}

	cfg, err := r.awsConfig(ctx, ef.Env, ef.Env.AWS.ApplyRoleARN, "apply")
	if err == nil {
		req := r.request(ef, cfg)
		if found && reviewed.Fingerprint != "" {
			req.ReviewedFingerprint = reviewed.Fingerprint
		} else {
			// Nothing was reviewed (a direct push, no comment, or a comment
			// of a plan that failed): an empty reviewed plan makes deploy
			// refuse every delete and replacement and apply the rest.
			req.ReviewedPlan = &plan.Plan{Environment: ef.Name}
		}
		var out *deploy.Result
		out, err = r.o.Engine.Apply(ctx, req)
		res.take(out, r, ef.Name)
	}
	res.Err = err
	if res.Report != nil && res.Report.Status != "" {
		res.Err, res.Cause = nil, err // the report says what happened
		if err != nil && res.Report.Error == "" {
			res.Report.Error = err.Error()
		}
	}

	state, desc := deploymentOutcome(res)
	if depID != 0 {
		r.deploymentStatus(ctx, c, depID, ef.Name, github.Status{State: state, Description: desc, LogURL: r.runURL, EnvironmentURL: res.EnvURL})
	}
	r.say(event.Info, ef.Name, "apply: %s", desc)

	if pr != nil {
		marker := render.Marker(ef.Name, reviewed.Fingerprint, reviewed.HeadSHA, reviewed.BaseSHA)
		var body string
		if res.Report != nil {
			body = render.Comment(nil, res.Report, render.CommentOptions{Marker: marker, HeadSHA: after, RunURL: r.runURL})
		} else {
			body = errorComment(ef.Name, "apply", res.Err, r.runURL, after, marker)
		}
		r.comment(ctx, pr.Number, ef.Name, body, res)
	}
	return res
}

func deploymentOutcome(res *envResult) (state, desc string) {
	if res.Report == nil {
		return github.StateError, "error: " + fmt.Sprint(res.Err)
	}
	switch res.Report.Status {
	case plan.StatusSucceeded:
		return github.StateSuccess, "applied"
	case plan.StatusNoChanges:
		return github.StateSuccess, "no changes"
	case plan.StatusRolledBack:
		return github.StateFailure, "health gate failed; rolled back"
	case plan.StatusRefused:
		return github.StateFailure, "refused: " + res.Report.Error
	default:
		return github.StateFailure, "failed: " + res.Report.Error
	}
}

func (r *run) deploymentStatus(ctx context.Context, c *github.Client, id int64, env string, s github.Status) {
	if err := c.SetDeploymentStatus(ctx, r.owner, r.repo, id, s); err != nil {
		r.say(event.Warning, env, "could not set the deployment status %s: %v", s.State, err)
	}
}

// take records a deploy result: its plan, report and warnings.
func (res *envResult) take(out *deploy.Result, r *run, env string) {
	if out == nil {
		return
	}
	res.Plan, res.Report = out.Plan, out.Report
	if res.Plan == nil && res.Report != nil {
		res.Plan = res.Report.Plan
	}
	switch {
	case res.Report != nil && res.Report.Gate != nil && res.Report.Gate.WorkPoolURL != "":
		res.EnvURL = res.Report.Gate.WorkPoolURL
	case out.Preflight != nil:
		res.EnvURL = out.Preflight.WorkPoolURL
	}
	for _, w := range out.Warnings {
		r.say(event.Warning, env, "%s", w)
		res.Warnings = append(res.Warnings, w)
	}
	for _, n := range out.Notes {
		r.say(event.Info, env, "note: %s", n)
		res.Notes = append(res.Notes, n)
	}
}

// --- workflow_dispatch: destroy ------------------------------------------

// destroyFlow tears one environment down. Every check that can refuse runs
// before the first AWS call: the event, the environment, the confirmation,
// the file, protect.
func (r *run) destroyFlow(ctx context.Context) error {
	if r.ghctx.EventName != "workflow_dispatch" {
		return exit.Inputf("operation destroy only runs from workflow_dispatch (a person's decision), not from %s", r.ghctx.EventName)
	}
	if r.in.environment == "" {
		return exit.Inputf("operation destroy needs the environment input")
	}
	all, err := r.discover()
	if err != nil {
		return err
	}
	sel, err := r.explicit(all, []string{r.in.environment})
	if err != nil {
		return err
	}
	ef := sel[0]
	if ef.Err != nil {
		return exit.Input(fmt.Errorf("refused to destroy %s: its file does not load: %w", r.in.environment, ef.Err))
	}
	// The confirmation is the name of the environment that would be
	// destroyed, as its file says, not a repeat of the environment input
	// (which may be a path): typing the input twice confirms nothing.
	env := ef.Name
	if r.in.confirm != env {
		return exit.Inputf("refused to destroy %s (%s): the confirm input must be exactly the environment's name %q, got %q", env, ef.Path, env, r.in.confirm)
	}
	// The stack's guard (protect: true) refuses before any call, the
	// same rule the CLI and the engine ask.
	if st, err := stack.Build(ef.Env, ""); err != nil {
		return err
	} else if err := st.Refusal(plan.OpDestroy); err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	res := &envResult{File: ef}
	cfg, err := r.awsConfig(ctx, ef.Env, ef.Env.AWS.ApplyRoleARN, "apply")
	if err == nil {
		var out *deploy.Result
		out, err = r.o.Engine.Destroy(ctx, r.request(ef, cfg))
		res.take(out, r, ef.Name)
	}
	res.Err = err
	if res.Report != nil && res.Report.Status != "" {
		res.Err, res.Cause = nil, err
		if err != nil && res.Report.Error == "" {
			res.Report.Error = err.Error()
		}
	}
	r.add(res)
	if res.Report != nil && (res.Report.Status == plan.StatusSucceeded || res.Report.Status == plan.StatusNoChanges) {
		n, err := c.DeactivateDeployments(ctx, r.owner, r.repo, env, github.Status{Description: "destroyed by deploybot", LogURL: r.runURL})
		if err != nil {
			r.say(event.Warning, env, "could not mark the deployments inactive: %v", err)
		} else {
			r.say(event.Info, env, "destroyed; %d GitHub deployment(s) marked inactive", n)
		}
	}
	return r.failure()
}

// --- schedule: drift -----------------------------------------------------

// driftFlow plans every environment and keeps one issue per drifted
// environment: opened or updated while it drifts, closed when it no longer does.
func (r *run) driftFlow(ctx context.Context) error {
	all, err := r.discover()
	if err != nil {
		return err
	}
	if r.nothingYet(all) {
		return nil
	}
	envs := oneByName(all)
	if len(r.in.environments) > 0 {
		if envs, err = r.explicit(all, r.in.environments); err != nil {
			return err
		}
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	r.forEach(envs, func(ef *envFile) *envResult {
		res := &envResult{File: ef}
		res.Plan, res.Err = r.planOne(ctx, ef)
		if res.Err != nil {
			return res // an environment that cannot be planned keeps its issue as it is
		}
		if res.Plan.HasChanges() {
			s := res.Plan.Summary()
			title := fmt.Sprintf("deploybot: drift in %s (%d to add, %d to change, %d to replace, %d to destroy)", ef.Name, s.Add, s.Change, s.Replace, s.Destroy)
			body := fmt.Sprintf("AWS or the Prefect work pool no longer matches %s on the default branch. Merging a pull request that touches it applies the plan below; or fix the drift and this issue closes itself at the next check.\n\n", render.Code(ef.Path)) +
				render.Summary(res.Plan, nil, render.SummaryOptions{HeadSHA: r.ghctx.SHA, RunURL: r.runURL, MaxLen: github.MaxCommentChars - 4096})
			url, created, err := c.UpsertDriftIssue(ctx, r.owner, r.repo, ef.Name, title, body)
			if err != nil {
				res.Err = err
				return res
			}
			res.CommentURL = url
			r.say(event.Info, ef.Name, "drift: issue %s (%s)", map[bool]string{true: "opened", false: "updated"}[created], url)
			return res
		}
		if len(res.Plan.Unread) > 0 {
			// A plan that could not read part of the stack (the work pool
			// without a Prefect key) cannot say the drift is gone: the
			// issue stays as it is, and the log says what was not read.
			var addrs []string
			for _, u := range res.Plan.Unread {
				addrs = append(addrs, u.Address)
			}
			r.say(event.Warning, ef.Name, "drift check could not read %s, so the drift issue (if any) is left as it is", strings.Join(addrs, ", "))
			return res
		}
		closed, err := c.CloseDriftIssue(ctx, r.owner, r.repo, ef.Name, fmt.Sprintf("No drift in %s any more (%s): closing.", render.Code(ef.Name), render.Link("run", r.runURL)))
		if err != nil {
			res.Err = err
		} else if closed {
			r.say(event.Info, ef.Name, "drift is gone: issue closed")
		}
		return res
	})
	return r.failure()
}

// planDoc is one environment in the plan-json file.
type planDoc struct {
	Environment string            `json:"environment"`
	File        string            `json:"file"`
	Plan        *render.PlanDoc   `json:"plan,omitempty"`
	Report      *render.ReportDoc `json:"report,omitempty"`
	Error       string            `json:"error,omitempty"`
	CommentURL  string            `json:"comment_url,omitempty"`
}

func (r *run) planJSON() ([]byte, error) {
	doc := struct {
		FormatVersion string    `json:"format_version"`
		Event         string    `json:"event"`
		RunURL        string    `json:"run_url"`
		Environments  []planDoc `json:"environments"`
	}{FormatVersion: "1", Event: r.ghctx.EventName, RunURL: r.runURL, Environments: []planDoc{}}
	for _, res := range r.results {
		d := planDoc{Environment: res.File.Name, File: res.File.Path, CommentURL: res.CommentURL}
		if res.Plan != nil {
			pd := render.NewPlanDoc(res.Plan)
			d.Plan = &pd
		}
		if res.Report != nil {
			rd := render.NewReportDoc(res.Report)
			d.Report = &rd
		}
		if res.Err != nil {
			d.Error = res.Err.Error()
		}
		doc.Environments = append(doc.Environments, d)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}
