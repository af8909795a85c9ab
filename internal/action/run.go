package action

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	githubactions "github.com/sethvargo/go-githubactions"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/github"
	"github.com/deploybot/deploybot/internal/plan"
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
	"environments-dir", "environments", "operation", "environment", "confirm", "prefect-api-key", "labels"}

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
	prefectAPIKey     string
	labels            bool // label pull requests (labels.go)
}

// run is one invocation of the Action.
type run struct {
	o     Options
	gha   *githubactions.Action
	ghctx *githubactions.GitHubContext
	in    inputs
	log   *logger

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
	r := &run{o: o}
	r.gha = githubactions.New(githubactions.WithGetenv(o.Getenv), githubactions.WithWriter(o.Stdout), githubactions.WithHTTPClient(o.HTTPClient))
	r.log = &logger{gha: r.gha}

	// Secrets are masked before anything else is printed
	// (docs/research/github-actions.md §1.4; the runner hides them from the log only).
	r.readSecrets()
	if err := r.readInputs(); err != nil {
		return err
	}
	ghctx, err := r.gha.Context()
	if err != nil {
		return inputErrorf("read the GitHub Actions context: %v", err)
	}
	r.ghctx = ghctx
	r.owner, r.repo = ghctx.Repo()
	if r.owner == "" || r.repo == "" {
		return inputErrorf("GITHUB_REPOSITORY is not set; deploybot runs inside GitHub Actions (use `deploybot plan` elsewhere)")
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
	r.log.info("", "deploybot %s for %s event in %s/%s", op, ghctx.EventName, r.owner, r.repo)
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
	r.in.prefectAPIKey = r.input("prefect-api-key")
	r.in.githubToken = r.input("github-token")
	if r.in.githubToken == "" {
		// The runner does not set GITHUB_TOKEN by itself (docs/research/github-actions.md
		// §1.5), but a workflow may pass it as env instead of the input.
		r.in.githubToken = strings.TrimSpace(r.o.Getenv("GITHUB_TOKEN"))
	}
	r.in.appPrivateKey = r.input("app-private-key")
	for _, s := range []string{r.in.prefectAPIKey, r.in.githubToken, r.in.appPrivateKey, r.o.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")} {
		r.mask(s)
	}
}

// mask registers a secret with the runner and with our own log redaction.
func (r *run) mask(secret string) {
	for _, line := range strings.Split(secret, "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 4 || strings.HasPrefix(line, "-----") {
			continue
		}
		r.log.mask(line)
	}
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
			return 0, inputErrorf("input %s: %q is not a positive number", name, v)
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
	in.envDir = r.input("environments-dir")
	if in.envDir == "" {
		in.envDir = "environments"
	}
	in.envDir = path.Clean(filepath.ToSlash(in.envDir))
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
		return inputErrorf("input operation: %q is not one of auto, plan, apply, destroy, drift, affected", in.operation)
	}
	in.environment = r.input("environment")
	in.confirm = r.input("confirm")
	switch v := strings.ToLower(strings.TrimSpace(r.input("labels"))); v {
	case "", "false":
	case "true":
		in.labels = true
	default:
		return inputErrorf("input labels: %q is not true or false", v)
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
		return "", inputErrorf("operation auto is ambiguous for workflow_dispatch: pass operation plan, apply, destroy or drift")
	default:
		return "", inputErrorf("deploybot does not handle %q events; use pull_request, push, workflow_dispatch or schedule", r.ghctx.EventName)
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
		return nil, inputErrorf("no GitHub credentials: set the github-token input (default ${{ github.token }}) or app-id, app-private-key and app-installation-id")
	}
	c, err := github.New(github.Options{APIURL: r.ghctx.APIURL, Auth: auth, Transport: r.o.HTTPClient.Transport,
		Clock: r.o.Clock, OnEvent: func(m string) { r.log.info("", "%s", m) }})
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

// discover lists and loads the environment files. A file that does not load
// is kept with its error, so one bad file does not hide the others' plans.
func (r *run) discover() ([]*envFile, error) {
	dir := filepath.Join(r.o.Workdir, filepath.FromSlash(r.in.envDir))
	paths, err := config.Discover(dir)
	if err != nil {
		return nil, inputErrorf("%v", err)
	}
	var out []*envFile
	for _, p := range paths {
		rel, _ := filepath.Rel(r.o.Workdir, p)
		ef := &envFile{Path: filepath.ToSlash(rel), Name: strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))}
		ef.Env, ef.Err = config.Load(p)
		if ef.Env != nil {
			ef.Name = ef.Env.Name
			// Plans and comments name the file as the repository does.
			ef.Env.File = ef.Path
		}
		out = append(out, ef)
	}
	return out, nil
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
			return nil, inputErrorf("environment %q: no such environment file in %s (known: %s)", n, r.in.envDir, strings.Join(known, ", "))
		}
		out = append(out, found)
	}
	return out, nil
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
	// Cause is the engine's error when Report already tells the story
	// (Err is then nil); it carries the exit code (a gate failure: 3).
	Cause error
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

// failure summarises the results as Run's error: a failed health gate
// anywhere is exit code 3; otherwise every environment's error, joined, so
// ExitCode still finds a coded one (bad input: 2), else 1.
func (r *run) failure() error {
	var gate []string
	var errs []error
	for _, res := range r.results {
		cause := res.Err
		if cause == nil {
			cause = res.Cause
		}
		var ge *deploy.GateError
		switch {
		case errors.As(cause, &ge) || (res.Report != nil && res.Report.Status == plan.StatusRolledBack):
			gate = append(gate, res.File.Name)
		case cause != nil:
			errs = append(errs, fmt.Errorf("%s: %w", res.File.Name, cause))
		case res.Report != nil && (res.Report.Status == plan.StatusFailed || res.Report.Status == plan.StatusRefused):
			errs = append(errs, fmt.Errorf("%s: %s", res.File.Name, firstNonEmpty(res.Report.Error, string(res.Report.Status))))
		}
	}
	if len(gate) > 0 {
		return &GateError{Envs: gate}
	}
	return errors.Join(errs...)
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

// logger writes the log as workflow output, one line per message, prefixed
// by the environment, with every known secret replaced by *** as a second
// line of defence behind ::add-mask::.
type logger struct {
	mu      sync.Mutex
	gha     *githubactions.Action
	secrets []string
}

// mask registers a secret with the runner (::add-mask::) and with redact.
// Everything that writes to stdout holds l.mu: plans run concurrently.
func (l *logger) mask(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gha.AddMask(s)
	l.secrets = append(l.secrets, s)
}

func (l *logger) redact(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.redactLocked(s)
}

func (l *logger) redactLocked(s string) string {
	for _, sec := range l.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

func (l *logger) info(env, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if env != "" {
		msg = "[" + env + "] " + msg
	}
	l.gha.Infof("%s", strings.ReplaceAll(l.redactLocked(msg), "\n", " "))
}

func (l *logger) notice(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gha.Noticef("%s", l.redactLocked(fmt.Sprintf(format, args...)))
}

// noticeTitled writes a notice annotation with a title.
func (l *logger) noticeTitled(title, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gha.WithFieldsMap(map[string]string{"title": title}).Noticef("%s", l.redactLocked(msg))
}

func (l *logger) warning(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gha.Warningf("%s", l.redactLocked(fmt.Sprintf(format, args...)))
}

// escapeData escapes a workflow command's message (docs/research/github-actions.md §1.4).
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}
