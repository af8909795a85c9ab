package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/cli"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/prefectsim"

	// `deploybot action`, the container's entry point, which the demo runs
	// for every job (the binary links it too, from cmd/deploybot).
	_ "github.com/deploybot/deploybot/internal/action/cmd"
)

// The simulated repository and what the environment file names in it.
const (
	owner         = "acme"
	repoName      = "prefect-infra"
	repoFull      = owner + "/" + repoName
	defaultBranch = "main"
	envName       = "demo"
	envPath       = "environments/" + envName + ".yaml"
	workPool      = "demo-ecs-pool"
	planRoleARN   = "arn:aws:iam::" + awssim.DefaultAccount + ":role/deploybot-plan"
	applyRoleARN  = "arn:aws:iam::" + awssim.DefaultAccount + ":role/deploybot-apply-" + envName
	// oidcRequestToken is ACTIONS_ID_TOKEN_REQUEST_TOKEN of every simulated job.
	oidcRequestToken = "simulated-actions-id-token-request-token"
)

// world is one simulated GitHub repository, AWS account and Prefect Cloud
// workspace, plus the checkout the Action runs in.
type world struct {
	clock *clock.Virtual
	aws   *awssim.World
	gh    *githubsim.Server
	repo  *githubsim.Repo
	pf    *prefectsim.Server
	dir   string // the workspace: checkout/, runner/, logs/

	prefectKey  string
	githubToken string
	mainSHA     string // the default branch's head
	// http carries every GitHub and Prefect request to the simulators in
	// process (see inProcess).
	http  *http.Client
	runID int64
}

func newWorld(dir string) (*world, error) {
	w := &world{dir: dir}
	// The virtual clock starts at the real time: the AWS SDK's credential
	// cache judges the simulated STS expirations against the wall clock.
	w.clock = clock.NewVirtual(time.Now().UTC().Truncate(time.Second))
	w.aws = awssim.New(w.clock)
	w.aws.AddPrincipal(checkerKey, awssim.Principal{ARN: checkerARN})
	var err error
	if w.prefectKey, err = fakeSecret("pnu_", "DEMOfake", 36); err != nil {
		return nil, err
	}
	if w.githubToken, err = fakeSecret("ghs_", "DEMOfake", 36); err != nil {
		return nil, err
	}
	w.gh = githubsim.New(w.clock, w.githubToken)
	w.repo = w.gh.AddRepo(owner, repoName, defaultBranch)
	w.pf = prefectsim.New(w.aws, prefectsim.WithKey(w.prefectKey))
	// The work pool a Prefect Cloud user creates first (an ECS push or
	// hybrid pool; deploybot's workers poll it).
	w.pf.AddWorkPool(workPool, "ecs", false)
	w.http = &http.Client{Transport: inProcess{
		hostOf(w.gh.URL):   w.gh.Config.Handler,
		hostOf(w.pf.URL()): w.pf.Handler(),
	}}
	w.mainSHA = commitSHA("initial commit")
	w.runID = 7100000000
	for _, d := range []string{"checkout", "runner", "logs", "comments"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// checkerARN signs the demo's own looks at the account (not counted as
// deploybot's calls).
const (
	checkerARN = "arn:aws:iam::" + awssim.DefaultAccount + ":user/deploybot-demo-checks"
	checkerKey = "SIMULATEDDEMOCHECKER"
)

// checker is an aws.Config for the demo's own read-only looks.
func (w *world) checker() aws.Config {
	return w.aws.ConfigFor(credentials.NewStaticCredentialsProvider(checkerKey, "simulated", ""))
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

func (w *world) close() {
	w.gh.Close()
	w.pf.Close()
}

// fakeSecret makes a credential of Prefect's or GitHub's shape (prefix and
// length) that says it is fake, random so that nothing can rely on it.
func fakeSecret(prefix, marker string, n int) (string, error) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n-len(marker))
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the demo's fake credentials: %w", err)
	}
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return prefix + marker + string(b), nil
}

// commitSHA is a commit id for a simulated commit.
func commitSHA(what string) string {
	h := sha1.Sum([]byte(repoFull + "\x00" + what))
	return hex.EncodeToString(h[:])
}

// envFile is environments/demo.yaml as the person writing it would.
func (w *world) envFile(cpu int, image string) string {
	return fmt.Sprintf(`# The demo environment: a Prefect worker on ECS Fargate in a VPC that
# deploybot creates (public subnets, no NAT gateway: the cheapest start).
name: %s
aws:
  account_id: %q
  region: us-east-1
  plan_role_arn: %s
  apply_role_arn: %s
prefect:
  api_url: %s
  work_pool: %s
worker:
  image: %s
  cpu: %d
  memory: 2048
  desired_count: 1
network:
  mode: managed
  cidr: 10.42.0.0/16
  availability_zones: 2
  nat: none
health_gate:
  timeout: 5m
tags:
  team: data-platform
`, envName, awssim.DefaultAccount, planRoleARN, applyRoleARN, w.pf.URL(), workPool, image, cpu)
}

// writeEnvFile puts a new version of the environment file in the checkout
// and returns the previous one ("" when there was none).
func (w *world) writeEnvFile(body string) (string, error) {
	p := filepath.Join(w.dir, "checkout", filepath.FromSlash(envPath))
	old, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return string(old), os.WriteFile(p, []byte(body), 0o644)
}

// currentEnvFile is the environment file as the checkout has it.
func (w *world) currentEnvFile() string {
	b, _ := os.ReadFile(filepath.Join(w.dir, "checkout", filepath.FromSlash(envPath)))
	return string(b)
}

// lineChanges lists the lines of a file edit as a unified diff shows them
// ("-old", "+new"); the demo's edits replace lines in place.
func lineChanges(before, after string) []string {
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if i < len(a) {
				out = append(out, "-"+x)
			}
			if i < len(b) {
				out = append(out, "+"+y)
			}
		}
	}
	return out
}

// --- GitHub events -------------------------------------------------------

func repoJSON() map[string]any {
	return map[string]any{"name": repoName, "full_name": repoFull, "owner": map[string]any{"login": owner},
		"default_branch": defaultBranch, "html_url": "https://github.com/" + repoFull}
}

// pr is one simulated pull request.
type pr struct {
	Number  int
	Title   string
	Branch  string
	HeadSHA string
	BaseSHA string
	Files   []githubsim.File
}

// openPR registers a pull request against the default branch's head.
func (w *world) openPR(number int, title, branch string, files ...githubsim.File) *pr {
	p := &pr{Number: number, Title: title, Branch: branch, HeadSHA: commitSHA(branch), BaseSHA: w.mainSHA, Files: files}
	w.gh.AddPull(repoFull, &githubsim.Pull{Number: number, State: "open", HeadSHA: p.HeadSHA, HeadRef: branch,
		BaseSHA: p.BaseSHA, BaseRef: defaultBranch, Files: files})
	return p
}

func (p *pr) event() map[string]any {
	branch := func(ref, sha string) map[string]any {
		return map[string]any{"ref": ref, "sha": sha, "repo": repoJSON()}
	}
	return map[string]any{
		"action": "opened", "number": p.Number,
		"pull_request": map[string]any{
			"number": p.Number, "state": "open", "title": p.Title,
			"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", repoFull, p.Number),
			"head":     branch(p.Branch, p.HeadSHA), "base": branch(defaultBranch, p.BaseSHA),
		},
		"repository": repoJSON(), "sender": map[string]any{"login": "octocat"},
	}
}

// merge merges p into the default branch and returns the push event.
func (w *world) merge(p *pr) map[string]any {
	before := w.mainSHA
	after := commitSHA(fmt.Sprintf("merge of #%d", p.Number))
	w.gh.Do(func() {
		pull := w.repo.Pulls[p.Number]
		pull.State, pull.Merged, pull.MergeCommitSHA = "closed", true, after
	})
	w.gh.SetCompare(repoFull, before, after, p.Files)
	w.mainSHA = after
	return map[string]any{
		"ref": "refs/heads/" + defaultBranch, "before": before, "after": after, "created": false, "deleted": false,
		"head_commit": map[string]any{"id": after, "message": fmt.Sprintf("Merge pull request #%d from %s/%s\n\n%s", p.Number, owner, p.Branch, p.Title)},
		"repository":  repoJSON(), "sender": map[string]any{"login": "octocat"},
	}
}

func dispatchEvent(inputs map[string]string) map[string]any {
	return map[string]any{"inputs": inputs, "ref": "refs/heads/" + defaultBranch, "repository": repoJSON(),
		"workflow": ".github/workflows/deploybot.yml", "sender": map[string]any{"login": "octocat"}}
}

// --- one Action run --------------------------------------------------------

// job is one run of the deploybot Action in a workflow job.
type job struct {
	Event   string         // GITHUB_EVENT_NAME
	Payload map[string]any // the event payload
	Ref     string         // GITHUB_REF
	SHA     string         // GITHUB_SHA
	// Environment is the job's `environment:` (it decides the OIDC sub).
	Environment string
	Inputs      map[string]string // with:, besides the tokens
	Name        string            // the job's name in the example workflow
}

// actionRun is what one Action run left behind.
type actionRun struct {
	Exit    int
	Log     string // stdout as the runner received it (masks included)
	Outputs map[string]string
	Summary string
	Plan    *planFile // .deploybot/plan.json, nil when none was written
}

// entrypointArgs are the arguments the image's ENTRYPOINT gives the binary
// (Dockerfile: ENTRYPOINT ["/deploybot", "action"]; the demo's test checks
// they agree).
var entrypointArgs = []string{"action"}

// runAction runs the container's entry path once, as the runner would:
// a fresh GITHUB_OUTPUT and step summary, the event payload on disk, the OIDC
// token endpoint configured for this job.
func (w *world) runAction(ctx context.Context, args []string, j job) (*actionRun, error) {
	w.runID++
	runner := filepath.Join(w.dir, "runner", fmt.Sprint(w.runID))
	if err := os.MkdirAll(runner, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(j.Payload, "", "  ")
	if err != nil {
		return nil, err
	}
	eventPath := filepath.Join(runner, "event.json")
	if err := os.WriteFile(eventPath, b, 0o644); err != nil {
		return nil, err
	}
	checkout := filepath.Join(w.dir, "checkout")
	_ = os.Remove(filepath.Join(checkout, filepath.FromSlash(action.PlanJSONPath)))
	env := map[string]string{
		"CI":                             "true",
		"GITHUB_ACTIONS":                 "true",
		"GITHUB_REPOSITORY":              repoFull,
		"GITHUB_REPOSITORY_OWNER":        owner,
		"GITHUB_SERVER_URL":              "https://github.com",
		"GITHUB_API_URL":                 w.gh.URL,
		"GITHUB_GRAPHQL_URL":             w.gh.URL + "/graphql",
		"GITHUB_RUN_ID":                  fmt.Sprint(w.runID),
		"GITHUB_RUN_NUMBER":              fmt.Sprint(w.runID - 7100000000),
		"GITHUB_RUN_ATTEMPT":             "1",
		"GITHUB_JOB":                     j.Name,
		"GITHUB_WORKFLOW":                "deploybot",
		"GITHUB_WORKFLOW_REF":            repoFull + "/.github/workflows/deploybot.yml@refs/heads/" + defaultBranch,
		"GITHUB_ACTOR":                   "octocat",
		"GITHUB_EVENT_NAME":              j.Event,
		"GITHUB_EVENT_PATH":              eventPath,
		"GITHUB_REF":                     j.Ref,
		"GITHUB_SHA":                     j.SHA,
		"GITHUB_WORKSPACE":               checkout,
		"GITHUB_OUTPUT":                  filepath.Join(runner, "output"),
		"GITHUB_STEP_SUMMARY":            filepath.Join(runner, "step_summary"),
		"RUNNER_TEMP":                    runner,
		"ACTIONS_ID_TOKEN_REQUEST_URL":   w.gh.OIDCRequestURL(),
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": oidcRequestToken,
		"INPUT_GITHUB-TOKEN":             w.githubToken,
		"INPUT_PREFECT-API-KEY":          w.prefectKey,
	}
	for k, v := range j.Inputs {
		env["INPUT_"+strings.ToUpper(k)] = v
	}
	w.gh.SetOIDC(githubsim.OIDC{RequestToken: oidcRequestToken, Repository: repoFull, Ref: j.Ref, SHA: j.SHA,
		EventName: j.Event, Environment: j.Environment, RunID: fmt.Sprint(w.runID), Actor: "octocat", Workflow: "deploybot"})

	// What the container runs (ENTRYPOINT ["/deploybot", "action"]): the
	// CLI's action command through cli.Main, so that its flag parsing,
	// error printing and exit-code mapping are the ones under test. The
	// factory changes only what lies outside the process: the virtual
	// clock, the simulated account behind the real SDK clients (signed
	// with whatever the Action was given: anonymous for STS, then the
	// assumed role's session), and the in-process transport to the
	// simulated GitHub and Prefect. The runner sends the container's
	// stdout and stderr to one log.
	var stdout strings.Builder
	log := &lockedWriter{w: &stdout}
	f := &cli.Factory{
		IO:     &cli.IOStreams{In: strings.NewReader(""), Out: log, ErrOut: log},
		Getenv: func(k string) string { return env[k] },
		Clock:  w.clock,
		AWSConfigFor: func(_ context.Context, region string, creds aws.CredentialsProvider) (aws.Config, error) {
			cfg := w.aws.ConfigFor(creds)
			cfg.Region = region
			return cfg, nil
		},
		HTTPClient: w.http,
	}
	code := cli.Main(ctx, f, args)
	run := &actionRun{Exit: code, Log: stdout.String()}
	run.Outputs, err = readOutputs(env["GITHUB_OUTPUT"])
	if err != nil {
		return run, err
	}
	if b, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"]); err == nil {
		run.Summary = string(b)
	}
	if p := run.Outputs["plan-json"]; p != "" {
		b, err := os.ReadFile(filepath.Join(checkout, filepath.FromSlash(p)))
		if err != nil {
			return run, fmt.Errorf("read the plan-json output %s: %w", p, err)
		}
		run.Plan = &planFile{}
		if err := json.Unmarshal(b, run.Plan); err != nil {
			return run, fmt.Errorf("parse %s: %w", p, err)
		}
	}
	return run, nil
}
