package action_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/simtest"
)

const (
	owner     = "Codertocat"
	name      = "Hello-World"
	repoFull  = owner + "/" + name
	jobToken  = "ghs_job_token_simulated_0001"
	oidcToken = "oidc-request-token-simulated"
	headSHA   = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	baseSHA   = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
	mergeSHA  = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	planRole  = "arn:aws:iam::123456789012:role/deploybot-plan"
	applyRole = "arn:aws:iam::123456789012:role/deploybot-apply"
)

var start = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)

// harness is one simulated GitHub Actions job: a workspace with
// environment files, the runner's files, githubsim (REST + OIDC), an awssim
// account behind a fake STS, and the action's environment variables.
type harness struct {
	t      *testing.T
	clock  *clock.Virtual
	world  *awssim.World
	gh     *githubsim.Server
	repo   *githubsim.Repo
	pf     *prefectsim.Server
	sts    *fakeSTS
	dir    string
	tmp    string
	env    map[string]string
	stdout bytes.Buffer
	engine action.Engine
	writes *atomic.Int64 // resource writes by paramKind
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	world := simtest.New(t, simtest.WithStart(start))
	h := &harness{t: t, clock: world.Clock, world: world.AWS}
	h.gh = githubsim.New(h.clock, jobToken)
	t.Cleanup(h.gh.Close)
	h.repo = h.gh.AddRepo(owner, name, "master")
	h.sts = &fakeSTS{world: h.world, trust: map[string]*regexp.Regexp{
		planRole:  regexp.MustCompile(`^repo:Codertocat/Hello-World:(pull_request|ref:refs/heads/master)$`),
		applyRole: regexp.MustCompile(`^repo:Codertocat/Hello-World:(ref:refs/heads/master|environment:.*)$`),
	}}
	h.dir = t.TempDir()
	h.tmp = t.TempDir()
	h.pf = prefectsim.New(h.world, prefectsim.WithKey(prefectKey))
	t.Cleanup(h.pf.Close)
	h.writes = &atomic.Int64{}
	h.engine = action.DeployEngine{Kinds: func() map[resource.KindName]resource.Kind { return paramKinds(h.writes) },
		Prefect: func(env *config.Environment, key string, clk clock.Clock) (deploy.Prefect, error) {
			return deploy.NewPrefect(env.Prefect.APIURL, key, prefect.WithClock(clk))
		}}
	for _, n := range []string{"staging", "qa"} {
		h.writeEnv(n, "512", "10.20.0.0/16")
	}
	h.env = map[string]string{
		"GITHUB_ACTIONS":                 "true",
		"GITHUB_REPOSITORY":              repoFull,
		"GITHUB_SERVER_URL":              "https://github.com",
		"GITHUB_API_URL":                 h.gh.URL,
		"GITHUB_RUN_ID":                  "4242",
		"GITHUB_WORKSPACE":               h.dir,
		"GITHUB_WORKFLOW_REF":            repoFull + "/.github/workflows/deploybot.yml@refs/heads/master",
		"GITHUB_OUTPUT":                  filepath.Join(h.tmp, "output"),
		"GITHUB_STEP_SUMMARY":            filepath.Join(h.tmp, "summary"),
		"ACTIONS_ID_TOKEN_REQUEST_URL":   h.gh.OIDCRequestURL(),
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": oidcToken,
		"INPUT_GITHUB-TOKEN":             jobToken,
		"INPUT_PREFECT-API-KEY":          prefectKey,
		"INPUT_ENVIRONMENTS-DIR":         "environments",
		"INPUT_OPERATION":                "auto",
	}
	return h
}

// writeEnv writes environments/NAME.yaml.
func (h *harness) writeEnv(env, cpu, cidr string) {
	h.t.Helper()
	body := configtest.Head{Name: env, PlanRole: planRole, ApplyRole: applyRole, APIURL: h.pf.SelfHostedURL(), CreatePool: true}.YAML() + `worker:
  image: prefecthq/prefect-aws:latest
  cpu: ` + cpu + `
  memory: 2048
network:
  mode: managed
  cidr: ` + cidr + `
  nat: none
`
	p := filepath.Join(h.dir, "environments", env+".yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// event sets the event name and a copy of a testdata payload, edited by mod.
func (h *harness) event(name, file string, mod func(map[string]any)) {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		h.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatal(err)
	}
	if mod != nil {
		mod(m)
	}
	b, _ = json.Marshal(m)
	p := filepath.Join(h.tmp, "event.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.env["GITHUB_EVENT_NAME"] = name
	h.env["GITHUB_EVENT_PATH"] = p
}

// oidc configures the token endpoint for the job.
func (h *harness) oidc(event, ref, environment string) {
	h.gh.SetOIDC(githubsim.OIDC{RequestToken: oidcToken, Repository: repoFull, Ref: ref, SHA: headSHA,
		EventName: event, Environment: environment, RunID: "4242"})
}

// run runs the Action once and returns its exit code.
// runOK runs the Action and fails the test unless it exits 0.
func (h *harness) runOK() {
	h.t.Helper()
	if code := h.run(); code != 0 {
		h.t.Fatalf("exit %d\n%s", code, h.stdout.String())
	}
}

func (h *harness) run() int {
	h.t.Helper()
	h.stdout.Reset()
	getenv := func(k string) string { return h.env[k] }
	return action.Main(context.Background(), action.Options{
		Getenv: getenv, Stdout: &h.stdout, Clock: h.clock,
		LoadAWSConfig: func(_ context.Context, region string, creds aws.CredentialsProvider) (aws.Config, error) {
			cfg := h.world.ConfigFor(creds)
			cfg.Region = region
			return cfg, nil
		},
		STSHTTPClient: h.sts,
		Engine:        h.engine,
	})
}

// outputs parses GITHUB_OUTPUT the way the runner does
// (githubsim.ReadOutputs).
func (h *harness) outputs() map[string]string {
	h.t.Helper()
	f, err := os.Open(h.env["GITHUB_OUTPUT"])
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	out, err := githubsim.ReadOutputs(f)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) summary() string {
	b, _ := os.ReadFile(h.env["GITHUB_STEP_SUMMARY"])
	return string(b)
}

// resetFiles empties the runner's files between two runs (each step gets its own).
func (h *harness) resetFiles() {
	os.Remove(h.env["GITHUB_OUTPUT"])
	os.Remove(h.env["GITHUB_STEP_SUMMARY"])
}

// awsCalls counts AWS calls: AssumeRoleWithWebIdentity and the account's.
func (h *harness) awsCalls() int { return h.sts.count() + len(h.world.Calls()) }

// awsWrites counts successful writes to the simulated account.
func (h *harness) awsWrites() int {
	n := 0
	for _, c := range h.world.Calls() {
		if c.Write && c.ErrCode == "" {
			n++
		}
	}
	return n
}

// stackWrites counts the resource writes (not the environment lock's).
func (h *harness) stackWrites() int { return int(h.writes.Load()) }

// noSecretLeaks checks that the Prefect key and the session credentials
// appear nowhere but in the ::add-mask:: commands.
func (h *harness) noSecretLeaks() {
	h.t.Helper()
	secrets := append([]string{prefectKey}, h.sts.secrets()...)
	var places = map[string]string{"summary": h.summary()}
	if b, err := os.ReadFile(h.env["GITHUB_OUTPUT"]); err == nil {
		places["GITHUB_OUTPUT"] = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(h.dir, action.PlanJSONPath)); err == nil {
		places["plan-json"] = string(b)
	}
	var log []string
	for _, l := range strings.Split(h.stdout.String(), "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			log = append(log, l)
		}
	}
	places["log"] = strings.Join(log, "\n")
	for _, pr := range []int{2} {
		for _, c := range h.gh.Comments(repoFull, pr) {
			places[fmt.Sprintf("comment %d", c.ID)] = c.Body
		}
	}
	for _, is := range h.gh.Issues(repoFull) {
		places[fmt.Sprintf("issue %d", is.Number)] = is.Body
	}
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				h.t.Errorf("a secret (%.6s…) appears in the %s", s, where)
			}
		}
	}
	if !strings.Contains(h.stdout.String(), "::add-mask::"+prefectKey) {
		h.t.Error("the Prefect API key was not masked")
	}
}

// --- fake STS: AssumeRoleWithWebIdentity against the simulated account ---

// fakeSTS answers AssumeRoleWithWebIdentity like STS (query protocol, XML),
// checking the GitHub token's audience and subject against each role's trust
// policy, and registers the session's key with the simulated account.
type fakeSTS struct {
	world *awssim.World
	trust map[string]*regexp.Regexp

	mu       sync.Mutex
	calls    []stsCall
	failNext int // answer IDPCommunicationError this many times
	issued   []string
}

type stsCall struct {
	Role, Subject, Session string
}

func (f *fakeSTS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeSTS) secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

func (f *fakeSTS) Do(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(b))
	f.mu.Lock()
	defer f.mu.Unlock()
	if form.Get("Action") != "AssumeRoleWithWebIdentity" {
		return stsError(400, "InvalidAction", "not simulated: "+form.Get("Action")), nil
	}
	role := form.Get("RoleArn")
	claims, err := githubsim.ParseToken(form.Get("WebIdentityToken"))
	f.calls = append(f.calls, stsCall{Role: role, Subject: claims.Sub, Session: form.Get("RoleSessionName")})
	if f.failNext > 0 {
		f.failNext--
		return stsError(400, "IDPCommunicationError", "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements"), nil
	}
	if err != nil || claims.Aud != "sts.amazonaws.com" || claims.Iss != "https://token.actions.githubusercontent.com" {
		return stsError(400, "InvalidIdentityToken", "Incorrect token audience"), nil
	}
	if re := f.trust[role]; re == nil || !re.MatchString(claims.Sub) {
		return stsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"), nil
	}
	n := len(f.calls)
	key := fmt.Sprintf("ASIAWEBIDENTITY%05d", n)
	secret := fmt.Sprintf("webIdentitySecret%023d", n)
	session := fmt.Sprintf("webIdentitySessionToken%031d", n)
	f.issued = append(f.issued, secret, session)
	roleName := role[strings.LastIndex(role, "/")+1:]
	arn := fmt.Sprintf("arn:aws:sts::123456789012:assumed-role/%s/%s", roleName, form.Get("RoleSessionName"))
	f.world.AddPrincipal(key, awssim.Principal{ARN: arn})
	xml := fmt.Sprintf(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser><Arn>%s</Arn><AssumedRoleId>AROASIMULATED:%s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <Provider>token.actions.githubusercontent.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>sim-%d</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, claims.Sub, arn, form.Get("RoleSessionName"), key, secret, session,
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339), n)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/xml"}}, Body: io.NopCloser(strings.NewReader(xml)), Request: req}, nil
}

func stsError(status int, code, msg string) *http.Response {
	xml := fmt.Sprintf(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>sim</RequestId></ErrorResponse>`, code, msg)
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"text/xml"}}, Body: io.NopCloser(strings.NewReader(xml))}
}

// --- parameter kinds: every resource kind stored as an SSM parameter ------

// paramKinds maps every real kind name to paramKind, so that the real
// deploy orchestration and engine (ordering, diff, fingerprint, stale-plan
// check, reports) run against the simulated account while each resource is
// a single SSM parameter holding its attributes. Keys with "cidr" in them
// force replacement, as a VPC's CIDR does.
func paramKinds(writes *atomic.Int64) map[resource.KindName]resource.Kind {
	out := map[resource.KindName]resource.Kind{}
	for k := range kinds.All() {
		out[k] = paramKind{writes: writes}
	}
	return out
}

type paramKind struct{ writes *atomic.Int64 }

func paramName(_ *resource.Ctx, r *resource.Resource) string {
	return "/deploybot-test/" + r.Tags[resource.TagEnvironment] + "/" + r.Address
}

func (k paramKind) Desired(r *resource.Resource, refs resource.Refs) (resource.Attrs, error) {
	return k.attrs(r), nil
}

func (k paramKind) attrs(r *resource.Resource) resource.Attrs {
	b, _ := json.Marshal(r.Spec)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	a := resource.Attrs{}
	for k, v := range m {
		vb, _ := json.Marshal(v)
		a[k] = resource.Attr{Value: string(vb), ForceNew: strings.Contains(strings.ToLower(k), "cidr")}
	}
	return a
}

func (k paramKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	out, err := x.APIs.AWS.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(paramName(x, r))})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a resource.Attrs
	if err := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &a); err != nil {
		return nil, err
	}
	return &resource.Live{ID: paramName(x, r), Ours: true, Attrs: a, Outputs: resource.Outputs{"id": r.Name, "arn": "arn:sim:" + r.Address}}, nil
}

func (k paramKind) put(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	k.writes.Add(1)
	b, _ := json.Marshal(k.attrs(r))
	_, err := x.APIs.AWS.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(paramName(x, r)), Value: aws.String(string(b)),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
	return resource.Outputs{"id": r.Name, "arn": "arn:sim:" + r.Address}, err
}

func (k paramKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	return k.put(ctx, x, r, refs)
}

func (k paramKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live, refs resource.Refs, _ []plan.FieldChange) (resource.Outputs, error) {
	return k.put(ctx, x, r, refs)
}

func (k paramKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	k.writes.Add(1)
	_, err := x.APIs.AWS.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(paramName(x, r))})
	if awserr.IsNotFound(err) {
		return nil
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var prefectKey = fakekey.Prefect("Action")
