package prefect

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/prefectsim"
)

func TestPreflight(t *testing.T) {
	t.Parallel()
	type setup struct {
		pool, typ   string // "" pool: none
		paused      bool
		noHybrid    bool
		authString  string
		selfHosted  bool
		key         string
		basic       []string
		create      bool
		askPoolName string
	}
	tests := []struct {
		name        string
		s           setup
		errHas      []string
		warnings    []string
		missing     bool
		poolTypeNow string
	}{
		{name: "cloud: key works, ecs pool exists", s: setup{pool: testPool, typ: "ecs"}},
		{name: "paused pool is a warning", s: setup{pool: testPool, typ: "ecs", paused: true},
			warnings: []string{`work pool "ecs-pool" is paused: the worker will come ONLINE but pick up no flow runs until the pool is resumed`}},
		{name: "bad key says it is wrong or expired", s: setup{pool: testPool, typ: "ecs", key: "pnu_bad"},
			errHas: []string{"environments/staging.yaml", "the Prefect API key was rejected: it is wrong or expired", "GET /api/me/: 401 Unauthorized: Invalid authentication credentials"}},
		{name: "missing pool says how to create it", s: setup{},
			errHas: []string{`work pool "ecs-pool" does not exist in Prefect Cloud workspace ` + prefectsim.DefaultWorkspaceID, "prefect work-pool create \"ecs-pool\" --type ecs", "prefect.create_work_pool: true", "404 Not Found"}},
		// The apply creates it (the stack's work pool resource), under the
		// lock: the preflight writes nothing.
		{name: "missing pool is fine when the file asks to create it", s: setup{create: true}, missing: true},
		{name: "existing pool with create_work_pool is left alone", s: setup{pool: testPool, typ: "ecs", create: true}, poolTypeNow: "ecs"},
		{name: "wrong pool type", s: setup{pool: testPool, typ: "process"}, errHas: []string{`work pool "ecs-pool" is of type "process", not ecs`}},
		{name: "push pool", s: setup{pool: testPool, typ: "ecs:push"}, errHas: []string{`is of type "ecs:push", not ecs`}},
		{name: "self-hosted open server", s: setup{pool: testPool, typ: "ecs", selfHosted: true, key: "-"}},
		{name: "self-hosted with basic auth", s: setup{pool: testPool, typ: "ecs", selfHosted: true, authString: "admin:pw", basic: []string{"admin", "pw"}}},
		{name: "self-hosted with a wrong password", s: setup{pool: testPool, typ: "ecs", selfHosted: true, authString: "admin:pw", basic: []string{"admin", "nope"}},
			errHas: []string{"the Prefect server rejected the credentials", "401 Unauthorized: Unauthorized"}},
		{name: "self-hosted with a key where basic auth is needed", s: setup{pool: testPool, typ: "ecs", selfHosted: true, authString: "admin:pw"},
			errHas: []string{"401 Unauthorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			opts := []prefectsim.Option{prefectsim.WithClock(clk), prefectsim.WithKey(testKey)}
			if tt.s.authString != "" {
				opts = append(opts, prefectsim.WithAuthString(tt.s.authString))
			}
			sim := prefectsim.New(nil, opts...)
			defer sim.Close()
			if tt.s.pool != "" {
				sim.AddWorkPool(tt.s.pool, tt.s.typ, tt.s.paused)
			}
			sim.SetHybridPoolsAllowed(!tt.s.noHybrid)
			url, key := sim.URL(), testKey
			if tt.s.selfHosted {
				url = sim.SelfHostedURL()
			}
			switch tt.s.key {
			case "":
			case "-":
				key = ""
			default:
				key = tt.s.key
			}
			var copts []Option
			if tt.s.basic != nil {
				copts = append(copts, WithBasicAuth(tt.s.basic[0], tt.s.basic[1]))
			}
			c, err := New(url, key, append(copts, WithClock(clk))...)
			if err != nil {
				t.Fatal(err)
			}
			pool := testPool
			if tt.s.askPoolName != "" {
				pool = tt.s.askPoolName
			}
			pf, err := c.Preflight(context.Background(), PreflightInput{WorkPool: pool, CreateWorkPool: tt.s.create, File: "environments/staging.yaml"})
			if len(tt.errHas) > 0 {
				if err == nil {
					t.Fatal("preflight passed, want an error")
				}
				for _, want := range tt.errHas {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(pf.Warnings) != len(tt.warnings) {
				t.Errorf("warnings (-want +got):\n%s", cmp.Diff(tt.warnings, pf.Warnings))
			}
			for i := range min(len(pf.Warnings), len(tt.warnings)) {
				if !strings.HasPrefix(pf.Warnings[i], tt.warnings[i]) {
					t.Errorf("warning %q does not start with %q", pf.Warnings[i], tt.warnings[i])
				}
			}
			if pf.PoolMissing != tt.missing {
				t.Errorf("PoolMissing = %v", pf.PoolMissing)
			}
			if tt.missing {
				if _, err := c.ReadWorkPool(context.Background(), pool); StatusOf(err) != 404 {
					t.Errorf("the preflight created the pool: %v", err)
				}
			}
			if pf.WorkPoolURL != c.WorkPoolURL(pool) {
				t.Errorf("WorkPoolURL = %q", pf.WorkPoolURL)
			}
			if tt.poolTypeNow != "" {
				wp, err := c.ReadWorkPool(context.Background(), pool)
				if err != nil || wp.Type != tt.poolTypeNow || wp.StatusString() != "NOT_READY" {
					t.Errorf("pool after preflight = %+v, %v", wp, err)
				}
			}
			for _, r := range sim.Requests() {
				if r.Status == 307 {
					t.Errorf("a request hit a trailing-slash redirect: %+v", r)
				}
			}
		})
	}
}
