package action

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	githubactions "github.com/sethvargo/go-githubactions"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/event"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/github"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/secret"
)

// Operations.
const (
	OpAuto    = "auto"
	OpPlan    = "plan"
	OpApply   = "apply"
	OpDestroy = "destroy"
	OpDrift   = "drift"
	// OpAffected only lists the affected environments (no AWS call).
	OpAffected = "affected"
)

// InputNames are the Action's inputs; action.yml declares exactly these
// (a test checks both, and every GetInput call).
var InputNames = []string{"github-token", "app-id", "app-private-key", "app-installation-id",
	"environments-dir", "environments", "operation", "environment", "confirm", "prefect-api-key", "prefect-auth-string", "labels"}

// OutputNames are the Action's outputs, written by every run.
var OutputNames = []string{"changes", "plan-json", "result", "deployment-url", "environments"}

// inputs are the action.yml inputs.
type inputs struct {
	githubToken       string
	appID             int64
	appPrivateKey     string
	appInstallationID int64
	envDir            string
	environments      []string
	operation         string
	environment       string
	confirm           string
	prefectAPIKey     secret.Value
	prefectAuthString secret.Value
	labels            bool // label pull requests (labels.go)
}

// run is one invocation of the Action.
type run struct {
	o     Options
	gha   *githubactions.Action
	ghctx *githubactions.GitHubContext
	in    inputs
	// events is the run's progress, in the Actions log (event.Actions
	// through the redacting writer): the engine's, deploy's and the
	// Action's own.
	events event.Sink
	// masks writes ::add-mask::, the one line written around the redactor.
	masks *githubactions.Action
	// secrets is every credential the run holds; everything the run writes
	// (log, summary, outputs, plan JSON, GitHub bodies) is redacted with it.
	secrets *secret.Redactor

	owner, repo string
	runURL      string
	ghMu        sync.Mutex
	gh          *github.Client

	// results, in environment order, for outputs, summary and plan-json.
	mu      sync.Mutex
	results []*envResult
	notes   []string // job-summary lines that are not about one environment
	// selected are the environments the run acts on (the environments output).
	selected []string
	outcome  string // overall result output when no environment ran
	op       string // the resolved operation
}

// Run executes the Action once. Its error maps to an exit code with ExitCode.
func Run(ctx context.Context, o Options) (err error) {
	o.defaults()
	r := &run{o: o, secrets: o.Secrets}
	out, ok := o.Stdout.(*secret.Writer) // the CLI's Main wrapped it already
	if !ok {
		out = o.Secrets.Writer(o.Stdout)
	}
	defer out.Flush()
	r.gha = githubactions.New(githubactions.WithGetenv(o.Getenv), githubactions.WithWriter(out),
		githubactions.WithHTTPClient(&http.Client{Transport: oidcStatusTransport{base: transportOf(o.HTTPClient)}, Timeout: o.HTTPClient.Timeout}))
	// ::add-mask:: must reach the runner with the secret in it: it alone is
	// written around the redactor.
	r.masks = githubactions.New(githubactions.WithWriter(out.Unredacted()))
	r.events = event.Actions(out, event.ActionsOptions{})

	// Secrets are masked before anything else is printed
	// (docs/research/github-actions.md §1.4; the runner hides them from the log only).
	r.readSecrets()
	if err := r.readInputs(); err != nil {
		return err
	}
	ghctx, err := r.gha.Context()
	if err != nil {
		return exit.Inputf("read the GitHub Actions context: %v", err)
	}
	r.ghctx = ghctx
	r.owner, r.repo = ghctx.Repo()
	if r.owner == "" || r.repo == "" {
		return exit.Inputf("GITHUB_REPOSITORY is not set; deploybot runs inside GitHub Actions (use `deploybot plan` elsewhere)")
	}
	r.runURL = fmt.Sprintf("%s/%s/%s/actions/runs/%d", strings.TrimRight(ghctx.ServerURL, "/"), r.owner, r.repo, ghctx.RunID)

	defer func() {
		if werr := r.finish(err); werr != nil && err == nil {
			err = werr
		}
	}()

	op, err := r.operation()
	if err != nil {
		return err
	}
	r.op = op
	r.say(event.Info, "", "deploybot %s for %s event in %s/%s", op, ghctx.EventName, r.owner, r.repo)
	switch op {
	case OpPlan:
		return r.planFlow(ctx)
	case OpApply:
		return r.applyFlow(ctx)
	case OpDestroy:
		return r.destroyFlow(ctx)
	case OpDrift:
		return r.driftFlow(ctx)
	case OpAffected:
		return r.affectedFlow(ctx)
	}
	return nil
}

func (r *run) input(name string) string { return r.gha.GetInput(name) }

// readSecrets reads the secret inputs and masks them, line by line (a mask
// covers one line; a PEM key has many).
func (r *run) readSecrets() {
	r.in.prefectAPIKey = secret.New(r.input("prefect-api-key"))
	r.in.prefectAuthString = secret.New(r.input("prefect-auth-string"))
	r.in.githubToken = r.input("github-token")
	if r.in.githubToken == "" {
		// The runner does not set GITHUB_TOKEN by itself (docs/research/github-actions.md
		// §1.5), but a workflow may pass it as env instead of the input.
		r.in.githubToken = strings.TrimSpace(r.o.Getenv("GITHUB_TOKEN"))
	}
	r.in.appPrivateKey = r.input("app-private-key")
	for _, s := range []string{r.in.prefectAPIKey.Reveal(), r.in.prefectAuthString.Reveal(), authStringToken(r.in.prefectAuthString), r.in.githubToken, r.in.appPrivateKey, r.o.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")} {
		r.mask(s)
	}
}

// authStringToken is the auth string as it goes on the wire (Basic
// base64(user:pass)), which is a credential in itself.
func authStringToken(v secret.Value) string {
	if v.IsZero() {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(v.Reveal()))
}

// mask registers a credential with the run's redactor, so that nothing
// written from now on carries it, and with the runner (::add-mask::, one
// per line: a mask covers one line, a PEM key has many), which also hides
// it where deploybot's redactor does not reach.
func (r *run) mask(s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	r.secrets.AddString(s)
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 4 || strings.HasPrefix(line, "-----") {
			continue
		}
		r.masks.AddMask(line)
	}
}

// say writes one event of the run to its log: progress (event.Info), or a
// notice or warning the runner lists as an annotation. env is the
// environment it is about, "" for the run as a whole.
func (r *run) say(level event.Level, env, format string, args ...any) {
	r.events.Emit(event.Event{Time: r.o.Clock.Now(), Environment: env, Level: level, Message: fmt.Sprintf(format, args...)})
}

func (r *run) readInputs() error {
	in := &r.in
	parseID := func(name string) (int64, error) {
		v := r.input(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, exit.Inputf("input %s: %q is not a positive number", name, v)
		}
		return n, nil
	}
	var err error
	if in.appID, err = parseID("app-id"); err != nil {
		return err
	}
	if in.appInstallationID, err = parseID("app-installation-id"); err != nil {
		return err
	}
	if in.envDir, err = workspaceDir(r.input("environments-dir")); err != nil {
		return err
	}
	for _, f := range strings.FieldsFunc(r.input("environments"), func(c rune) bool { return c == ',' || c == '\n' || c == ' ' }) {
		in.environments = append(in.environments, f)
	}
	in.operation = strings.ToLower(r.input("operation"))
	if in.operation == "" {
		in.operation = OpAuto
	}
	switch in.operation {
	case OpAuto, OpPlan, OpApply, OpDestroy, OpDrift, OpAffected:
	default:
		return exit.Inputf("input operation: %q is not one of auto, plan, apply, destroy, drift, affected", in.operation)
	}
	in.environment = r.input("environment")
	in.confirm = r.input("confirm")
	switch v := strings.ToLower(strings.TrimSpace(r.input("labels"))); v {
	case "", "false":
	case "true":
		in.labels = true
	default:
		return exit.Inputf("input labels: %q is not true or false", v)
	}
	return nil
}

// operation resolves `auto` from the event.
func (r *run) operation() (string, error) {
	if r.in.operation != OpAuto {
		return r.in.operation, nil
	}
	switch r.ghctx.EventName {
	case "pull_request", "pull_request_target":
		return OpPlan, nil
	case "push":
		return OpApply, nil
	case "schedule":
		return OpDrift, nil
	case "workflow_dispatch":
		return "", exit.Inputf("operation auto is ambiguous for workflow_dispatch: pass operation plan, apply, destroy or drift")
	default:
		return "", exit.Inputf("deploybot does not handle %q events; use pull_request, push, workflow_dispatch or schedule", r.ghctx.EventName)
	}
}

// client returns the GitHub API client, made on first use.
func (r *run) client() (*github.Client, error) {
	r.ghMu.Lock()
	defer r.ghMu.Unlock()
	if r.gh != nil {
		return r.gh, nil
	}
	auth := github.Auth{Token: r.in.githubToken}
	if r.in.appID != 0 {
		auth = github.Auth{AppID: r.in.appID, AppPrivateKey: []byte(r.in.appPrivateKey), AppInstallationID: r.in.appInstallationID}
	}
	if auth.Token == "" && auth.AppID == 0 {
		return nil, exit.Inputf("no GitHub credentials: set the github-token input (default ${{ github.token }}) or app-id, app-private-key and app-installation-id")
	}
	c, err := github.New(github.Options{APIURL: r.ghctx.APIURL, GraphQLURL: r.o.Getenv("GITHUB_GRAPHQL_URL"), Auth: auth,
		Transport: r.o.HTTPClient.Transport, Clock: r.o.Clock, Redact: r.secrets.Redact,
		OnEvent: func(m string) { r.say(event.Info, "", "%s", m) }})
	if err != nil {
		return nil, err
	}
	r.gh = c
	return c, nil
}

// envFile is one environment file of the repository.
type envFile struct {
	Path string // repository-relative, slash-separated
	Name string // from the file once loaded, else the file's base name
	Env  *config.Environment
	Err  error // load or validation problems
}

// workspaceDir checks the environments-dir input: a directory inside the
// repository, given relative to its root. An absolute path or one that
// climbs out with ../ is refused before anything is read or called.
func workspaceDir(in string) (string, error) {
	if in == "" {
		return "environments", nil
	}
	slash := filepath.ToSlash(in)
	if filepath.IsAbs(in) || path.IsAbs(slash) || filepath.VolumeName(in) != "" {
		return "", exit.Inputf("input environments-dir: %q is an absolute path; give the directory relative to the repository's root (default environments)", in)
	}
	clean := path.Clean(slash)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", exit.Inputf("input environments-dir: %q leaves the repository; deploybot reads environment files only from inside the workspace", in)
	}
	return clean, nil
}

// discover lists and loads the environment files. A file that does not load
// is kept with its error, so one bad file does not hide the others' plans.
// Only a real directory inside the workspace is read: every part of the
// environments directory below GITHUB_WORKSPACE must be a directory, not a
// symbolic link (one could point anywhere on the runner), and an environment
// file that is a symbolic link is refused as what it is. Names must be
// unique across files, as `deploybot validate` checks. A missing or empty
// directory is no error: there is nothing to do yet.
func (r *run) discover() ([]*envFile, error) {
	ws, err := filepath.EvalSymlinks(r.o.Workdir)
	if err == nil {
		ws, err = filepath.Abs(ws)
	}
	if err != nil {
		return nil, exit.Inputf("the workspace %s: %v", r.o.Workdir, err)
	}
	dir := ws
	for _, part := range strings.Split(r.in.envDir, "/") {
		if part == "." || part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, nil
		case err != nil:
			return nil, exit.Inputf("input environments-dir: %v", err)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(dir)
			return nil, exit.Inputf("input environments-dir: %s is a symbolic link (to %s); deploybot reads environment files only from a directory inside the workspace, never through a link",
				filepath.ToSlash(mustRel(ws, dir)), target)
		case !fi.IsDir():
			return nil, exit.Inputf("input environments-dir: %s is not a directory", filepath.ToSlash(mustRel(ws, dir)))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, exit.Inputf("input environments-dir: %v", err)
	}
	var out []*envFile
	var loaded []*config.Environment
	for _, e := range entries {
		rel := path.Join(r.in.envDir, e.Name())
		if !r.isEnvFile(rel) {
			continue
		}
		ef := &envFile{Path: rel, Name: strings.TrimSuffix(e.Name(), path.Ext(e.Name()))}
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(filepath.Join(dir, e.Name()))
			ef.Err = &config.Errors{Problems: []config.Problem{{File: rel, Message: fmt.Sprintf(
				"is a symbolic link (to %s); deploybot reads only regular files inside the workspace: commit the environment file itself", target)}}}
		case !e.Type().IsRegular():
			continue
		default:
			// Problems name the file as the repository does.
			ef.Env, ef.Err = config.LoadAs(filepath.Join(dir, e.Name()), rel)
			if ef.Env != nil {
				ef.Name = ef.Env.Name
				loaded = append(loaded, ef.Env)
			}
		}
		out = append(out, ef)
	}
	// Every file of a duplicated name gets all of that name's problems,
	// the same refusal `deploybot validate` gives (exit 2, FILE:LINE for
	// each file), whichever of them the change selects.
	byFile := map[string]string{}
	for _, ef := range out {
		if ef.Env != nil {
			byFile[ef.Path] = ef.Env.Name
		}
	}
	dups := map[string][]config.Problem{}
	for _, p := range config.UniqueNames(loaded) {
		dups[byFile[p.File]] = append(dups[byFile[p.File]], p)
	}
	for _, ef := range out {
		if ef.Env == nil {
			continue
		}
		if ps := dups[ef.Env.Name]; len(ps) > 0 {
			ef.Err, ef.Env = &config.Errors{Problems: ps}, nil
		}
	}
	return out, nil
}

func mustRel(base, p string) string {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return rel
}

// explicit selects environments by the `environments` input (names or file paths).
func (r *run) explicit(all []*envFile, names []string) ([]*envFile, error) {
	var out []*envFile
	for _, n := range names {
		var found *envFile
		for _, ef := range all {
			if ef.Name == n || ef.Path == path.Clean(n) || ef.Path == path.Join(r.in.envDir, n) {
				found = ef
			}
		}
		if found == nil {
			var known []string
			for _, ef := range all {
				known = append(known, ef.Name)
			}
			return nil, exit.Inputf("environment %q: no such environment file in %s (known: %s)", n, r.in.envDir, strings.Join(known, ", "))
		}
		out = append(out, found)
	}
	return out, nil
}

// oneByName keeps the first of environment files sharing a name: files with
// a duplicate name carry the same refusal, and an environment gets one
// comment.
func oneByName(envs []*envFile) []*envFile {
	seen := map[string]bool{}
	var out []*envFile
	for _, ef := range envs {
		if !seen[ef.Name] {
			seen[ef.Name] = true
			out = append(out, ef)
		}
	}
	return out
}

// envResult is one environment's outcome.
type envResult struct {
	File       *envFile
	Plan       *plan.Plan
	Report     *plan.Report
	Err        error
	CommentURL string
	EnvURL     string // Prefect work pool page (the Deployment's environment URL)
	Warnings   []string
	Notes      []string
	// Cause is the engine's error when Report already tells the story
	// (Err is then nil); it carries the exit code (a gate failure: 3).
	Cause error
	// CommentErr: the pull request comment could not be saved. A plan whose
	// comment is not on the pull request fails: the merge would find no
	// reviewed plan.
	CommentErr error
}

func (r *run) add(res *envResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// failure summarises the results as Run's error: every environment's
// error, each prefixed once with the environment's name, joined, so that
// exit.CodeOf gives the most important code (a failed gate 3; bad input 2
// only when every environment's problem is bad input; else 1).
func (r *run) failure() error {
	var errs []error
	for _, res := range r.results {
		cause := res.Err
		if cause == nil {
			cause = res.Cause
		}
		switch {
		case cause != nil:
			errs = append(errs, fmt.Errorf("%s: %w", res.File.Name, cause))
		case res.Report != nil && res.Report.Status == plan.StatusRolledBack:
			errs = append(errs, fmt.Errorf("%s: %w", res.File.Name, &deploy.GateError{Gate: gateOf(res.Report)}))
		case res.Report != nil && (res.Report.Status == plan.StatusFailed || res.Report.Status == plan.StatusRefused):
			errs = append(errs, fmt.Errorf("%s: %s", res.File.Name, firstNonEmpty(res.Report.Error, string(res.Report.Status))))
		}
		if res.CommentErr != nil {
			errs = append(errs, fmt.Errorf("%s: the plan is not on the pull request, so a merge would find no reviewed plan: %w", res.File.Name, res.CommentErr))
		}
	}
	return errors.Join(errs...)
}

func gateOf(rep *plan.Report) *plan.GateReport {
	if rep.Gate != nil {
		return rep.Gate
	}
	return &plan.GateReport{Reason: firstNonEmpty(rep.Error, "the deployment was rolled back")}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// forEach runs f for every environment, concurrently, and collects results
// in the order of envs.
func (r *run) forEach(envs []*envFile, f func(ef *envFile) *envResult) {
	out := make([]*envResult, len(envs))
	var wg sync.WaitGroup
	for i, ef := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f(ef)
		}()
	}
	wg.Wait()
	for _, res := range out {
		r.add(res)
	}
}

// transportOf is the HTTP client's transport, or the default one.
func transportOf(c *http.Client) http.RoundTripper {
	if c != nil && c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}
