package render

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/config/configtest"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/engine"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/secret"
)

// The golden comments are rendered from plans and reports that the real
// engine, deploy flow and health gate produced against the simulated AWS
// account and Prefect API: the addresses, values and messages are the ones
// users see. Other engineers' changes to the engine or the kinds regenerate
// them with `go test ./internal/render -update`; review the diff as rendered.

// demoEnv is the environment the demo and the README start from: a managed
// network without a NAT gateway, two zones, one tag of the team's.
var demoEnv = configtest.Head{Name: "demo", ApplyRole: configtest.Role("deploybot-apply-demo"), APIURL: configtest.DemoWorkspace, Pool: "demo-ecs-pool", CreatePool: true}.YAML() + `worker:
  image: IMAGE
  cpu: CPU
  memory: 2048
  desired_count: 1
network:
  mode: managed
  cidr: 10.42.0.0/16
  availability_zones: 2
  nat: NAT
service_discovery:
  namespace: NAMESPACE
health_gate:
  timeout: 5m
tags:
  team: TEAM
`

// settings are the parts of demoEnv a scenario changes.
type settings struct {
	image, cpu, nat, namespace, team string
}

var baseSettings = settings{image: "prefecthq/prefect-aws:3.1.4", cpu: "512", nat: "none", namespace: "demo.prefect.internal", team: "data-platform"}

// sim is one simulated account and Prefect workspace.
type sim struct {
	t   *testing.T
	w   *awssim.World
	clk *clock.Virtual
	pf  *prefectsim.Server
	key string
}

func newSim(t *testing.T) *sim {
	t.Helper()
	clk := clock.NewVirtual(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	w := awssim.New(clk)
	key := fakekey.Prefect("Render")
	// The workers come from the world's tasks and its clock
	// (prefectsim.New's defaults for a world).
	pf := prefectsim.New(w, prefectsim.WithKey(key), prefectsim.WithBaseURL("http://"+prefectHost))
	t.Cleanup(pf.Close)
	return &sim{t: t, w: w, clk: clk, pf: pf, key: key}
}

// prefectHost is where the simulated Prefect API is reached, in process: a
// fixed address, so that the plans (the worker-name hash covers
// PREFECT_API_URL) are the same on every run.
const prefectHost = "prefect.sim:4200"

// inProcess sends the Prefect client's requests to the simulator's handler.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != prefectHost {
		return nil, fmt.Errorf("request to %s leaves the simulation", req.URL.Host)
	}
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func (s *sim) options(st settings) deploy.Options {
	s.t.Helper()
	y := strings.NewReplacer("IMAGE", st.image, "CPU", st.cpu, "NAT", st.nat, "NAMESPACE", st.namespace, "TEAM", st.team).Replace(demoEnv)
	env, err := config.Load(configtest.Write(s.t, "demo.yaml", y))
	if err != nil {
		s.t.Fatal(err)
	}
	env.File = "environments/demo.yaml"
	// The simulated worker reaches the simulated Prefect API only at its
	// own (loopback) address, which a file may not name.
	env.Prefect.APIURL = s.pf.URL()
	client, err := deploy.NewPrefect(s.pf.URL(), s.key, prefect.WithClock(s.clk),
		prefect.WithHTTPClient(&http.Client{Transport: inProcess{s.pf.Handler()}}))
	if err != nil {
		s.t.Fatal(err)
	}
	return deploy.Options{Env: env, Credential: secret.New(s.key), Prefect: client, Force: true,
		// One step at a time: ids are handed out in creation order, and
		// the golden files must not depend on which step won a race.
		Engine: &engine.Engine{AWS: awsapi.New(s.w.Config()), Clock: s.clk, Kinds: kinds.All(), Concurrency: 1}}
}

func (s *sim) plan(st settings) *plan.Plan {
	s.t.Helper()
	res, err := deploy.Plan(context.Background(), s.options(st))
	if err != nil {
		s.t.Fatalf("plan: %v", err)
	}
	return res.Plan
}

func (s *sim) apply(st settings, o ...func(*deploy.Options)) *plan.Report {
	s.t.Helper()
	opts := s.options(st)
	for _, f := range o {
		f(&opts)
	}
	res, _ := deploy.Apply(context.Background(), opts)
	if res == nil || res.Report == nil {
		s.t.Fatal("apply made no report")
	}
	return res.Report
}

func (s *sim) deployed() *sim {
	if r := s.apply(baseSettings); r.Status != plan.StatusSucceeded {
		s.t.Fatalf("first deploy: %s %s", r.Status, r.Error)
	}
	return s
}

// A golden scenario: a plan comment, or a report comment.
type scenario struct {
	name string
	run  func(t *testing.T) (*plan.Plan, *plan.Report, *sim)
}

// deployedWith is the plan of the deployed demo environment with the settings
// that edit changes.
func deployedWith(edit func(*settings)) func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
	return func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t).deployed()
		st := baseSettings
		edit(&st)
		return s.plan(st), nil, s
	}
}

var scenarios = []scenario{
	{"new_environment", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t)
		return s.plan(baseSettings), nil, s
	}},
	{"image_update", deployedWith(func(st *settings) {
		st.image = "ghcr.io/acme-data/prefect-worker-with-a-long-name:2026.12.01-3f9c2ab-python3.12"
	})},
	{"cpu_change", deployedWith(func(st *settings) { st.cpu = "1024" })},
	{"nat_gateway", deployedWith(func(st *settings) { st.nat = "single" })},
	{"tag_change", deployedWith(func(st *settings) { st.team = "data-engineering" })},
	{"replacement", deployedWith(func(st *settings) { st.namespace = "workers.demo.internal" })},
	{"conflict", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t)
		// Someone made a cluster by hand under the name deploybot would use.
		if _, err := ecs.NewFromConfig(s.w.Config()).CreateCluster(context.Background(),
			&ecs.CreateClusterInput{ClusterName: aws.String("deploybot-demo")}); err != nil {
			t.Fatal(err)
		}
		return s.plan(baseSettings), nil, s
	}},
	{"no_changes", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t).deployed()
		return s.plan(baseSettings), nil, s
	}},
	{"destroy", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t).deployed()
		res, err := deploy.Destroy(context.Background(), s.options(baseSettings))
		if err != nil || res.Report == nil {
			t.Fatalf("destroy: %v", err)
		}
		return nil, res.Report, s
	}},
	{"report_applied", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t)
		return nil, s.apply(baseSettings), s
	}},
	{"report_refused", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t).deployed()
		st := baseSettings
		st.namespace = "workers.demo.internal"
		// The reviewed plan (the PR comment's) replaced nothing.
		reviewed := s.plan(baseSettings)
		return nil, s.apply(st, func(o *deploy.Options) { o.ReviewedPlan = reviewed }), s
	}},
	{"report_first_deploy_failed", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t)
		st := baseSettings
		st.image = "prefecthq/prefect-aws:3-crashloop"
		return nil, s.apply(st), s
	}},
	{"report_flow_run_failed", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		// The worker comes ONLINE, but the smoke flow run's image is in no
		// registry: the run CRASHES and the gate rolls back.
		s := newSim(t).deployed()
		st := baseSettings
		st.image = "prefecthq/prefect-aws:3.1.5"
		return nil, s.apply(st, func(o *deploy.Options) { o.Env.FlowRuns.Image = "prefecthq/prefect:3-flows-does-not-exist" }), s
	}},
	{"report_rolled_back", func(t *testing.T) (*plan.Plan, *plan.Report, *sim) {
		s := newSim(t).deployed()
		st := baseSettings
		st.image = "prefecthq/prefect-aws:3-silent"
		s.w.Mu.Lock()
		s.w.Images[st.image] = awssim.ImageBehavior{NoHeartbeat: true}
		s.w.Mu.Unlock()
		return nil, s.apply(st), s
	}},
}

// The simulators run on a virtual clock that every sleeper pushes
// forward (internal/clock), so how long a wait took, and what time it was
// then, depends on which goroutine slept first: on a loaded machine a poll
// can land one interval later. The golden files keep the times rendered;
// the comparison leaves out times of day, durations and the task addresses
// that follow from them.
var (
	timeOfDay  = regexp.MustCompile(`T\d\d:\d\d:\d\dZ`)
	duration   = regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?(ms|s)\b`)
	durationMS = regexp.MustCompile(`"(duration_ms)": \d+`)
	taskHost   = regexp.MustCompile(`ip-10-0-0-\d+`)
)

func timingFree(s string) string {
	s = timeOfDay.ReplaceAllString(s, "Thh:mm:ssZ")
	s = duration.ReplaceAllString(s, "‹duration›")
	s = durationMS.ReplaceAllString(s, `"$1": ‹ms›`)
	return taskHost.ReplaceAllString(s, "ip-10-0-0-‹n›")
}

const (
	goldenHead   = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
	goldenBase   = "0123456789abcdef0123456789abcdef01234567"
	goldenRunURL = "https://github.com/acme/prefect-infra/actions/runs/7100000042"
)

// renderScenario renders a scenario in every view.
func renderScenario(t *testing.T, p *plan.Plan, r *plan.Report) map[string]string {
	t.Helper()
	pl := reportPlan(p, r)
	env := "demo"
	fp := ""
	if pl != nil {
		fp = pl.Fingerprint
	}
	co := CommentOptions{Marker: Marker(env, fp, goldenHead, goldenBase), HeadSHA: goldenHead, RunURL: goldenRunURL,
		Next: &NextSteps{GitHubEnvironment: env, Branch: "change-demo"}}
	so := SummaryOptions{HeadSHA: goldenHead, RunURL: goldenRunURL, ArtifactName: "deploybot-plan.json"}
	out := map[string]string{
		"comment.md": Comment(p, r, co),
		"summary.md": Summary(p, r, so),
	}
	var text bytes.Buffer
	var err error
	if r != nil {
		err = ReportText(&text, r, TextOptions{})
		var js []byte
		if js, err = ReportJSON(r); err == nil {
			out["json"] = string(js)
		}
	} else {
		err = Text(&text, p, TextOptions{})
		var js []byte
		if js, err = JSON(p); err == nil {
			out["json"] = string(js)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	out["txt"] = text.String()
	var color bytes.Buffer
	if r != nil {
		err = ReportText(&color, r, TextOptions{Color: true})
	} else {
		err = Text(&color, p, TextOptions{Color: true})
	}
	if err != nil {
		t.Fatal(err)
	}
	out["color.txt"] = color.String()
	return out
}

// colourGoldens are the scenarios whose terminal colours get a golden file
// too (one plan, one report: the colours do not depend on much else).
var colourGoldens = map[string]bool{"image_update": true, "report_rolled_back": true}

func TestGoldenFromTheEngine(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			p, r, s := sc.run(t)
			out := renderScenario(t, p, r)
			views := []string{"comment.md", "summary.md", "txt", "json"}
			if colourGoldens[sc.name] {
				views = append(views, "color.txt")
			}
			for _, view := range views {
				got := out[view]
				if strings.Contains(got, s.key) {
					t.Fatalf("%s shows the Prefect API key", view)
				}
				checkStructure(t, view, got)
				goldenModulo(t, "engine/"+sc.name+"."+view, []byte(got), timingFree)
			}
		})
	}
}

// issue 13: the new environment's comment folded 320 lines; its folded part
// is at most half of that now, and nothing of the plan is lost: every
// field of every resource is in it, except the tags every resource shares
// (listed once above the diff) and Name tags equal to the resource's name
// (in its header).
func TestNewEnvironmentFoldsHalfAndLosesNothing(t *testing.T) {
	s := newSim(t)
	p := s.plan(baseSettings)
	md := Comment(p, nil, CommentOptions{})
	start := strings.Index(md, "<details><summary>The plan")
	end := strings.Index(md[start:], "</details>")
	if start < 0 || end < 0 {
		t.Fatalf("no folded plan:\n%s", md)
	}
	folded := md[start : start+end]
	// Issue 9 added what flow runs need (two roles, a log group, a
	// security group, two queues, a rule and the work pool's defaults),
	// each in its own block, and made the rest a dozen lines longer: the
	// worker's task role scopes each of its permissions in a statement of
	// its own (8 instead of 4) and the worker names the observer's queue
	// (3 variables). The rest keeps issue 13's budget otherwise. The
	// worker's health-check script grew with issue 10 (it asks Prefect for
	// the worker's own registration, ~1 kB that a reviewer reads whole):
	// its lines are counted apart.
	flowRuns := map[string]bool{"iam_role.flow_execution": true, "iam_role.flow_task": true, "log_group.flow_runs": true,
		"security_group.flow_runs": true, "sqs_queue.observer": true, "sqs_queue.observer_dlq": true,
		"event_rule.ecs_tasks": true, "prefect_work_pool.main": true,
		// issue 10: the health gate's smoke deployment
		"prefect_deployment.smoke": true}
	script := 0
	if i := strings.Index(folded, "container.health_check"); i >= 0 {
		if j := strings.Index(folded[i:], "\n+       }"); j >= 0 {
			script = strings.Count(folded[i:i+j], "\n")
		}
	}
	rest, theirs := -script, 0
	in := false
	for _, l := range strings.Split(folded, "\n") {
		if strings.HasPrefix(l, "+   ") && !strings.HasPrefix(l, "+    ") {
			addr, _, _ := strings.Cut(strings.TrimPrefix(l, "+   "), " ")
			in = flowRuns[addr]
		} else if strings.TrimSpace(l) == "" || !strings.HasPrefix(l, "+") {
			in = false
		}
		if in {
			theirs++
		} else {
			rest++
		}
	}
	if rest > 172 {
		t.Errorf("the folded plan without the flow runs' resources and the %d lines of the health-check script is %d lines, want at most 172 (half of the 320 before issue 13, and issue 9's dozen)", script, rest)
	}
	// 81: the smoke deployment's pool_defaults line (the pool's defaults
	// by digest; they are shown once, in the pool's block).
	if theirs > 81 {
		t.Errorf("the flow runs' resources take %d lines of the folded plan, want at most 81", theirs)
	}
	common := map[string]bool{}
	for _, f := range commonTags(p) {
		common[f.Path] = true
		if !strings.Contains(md, Code(commonTagText(f))) {
			t.Errorf("the shared tag %s is not listed", f.Path)
		}
	}
	for _, c := range p.Changes {
		if !strings.Contains(folded, c.Address) {
			t.Errorf("%s is not in the folded plan", c.Address)
		}
		for _, f := range c.Fields {
			if common[f.Path] || isNameTag(c, f) {
				continue
			}
			if !strings.Contains(folded, f.Path) {
				t.Errorf("%s %s is not in the folded plan", c.Address, f.Path)
			}
			for _, l := range formatValue(f.Path, f.After) {
				// A wrapped value is checked by its start, which is on
				// its first line.
				first := strings.Fields(l)[0]
				if r := []rune(first); len(r) > 40 {
					first = string(r[:40])
				}
				if !f.Sensitive && !strings.Contains(folded, first) {
					t.Errorf("%s %s: %q is not in the folded plan", c.Address, f.Path, first)
				}
			}
		}
	}
}
