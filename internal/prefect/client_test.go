package prefect

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/fakekey"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
)

const (
	acct     = "6a1f3c2e-8d4b-4e7a-9c10-2b5d7e9f0a11"
	ws       = "0c9e8d7b-6a5f-4e3d-8c2b-1a0f9e8d7c62"
	testPool = "ecs-pool"
)

var (
	t0      = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	testKey = fakekey.Prefect("Client")
)

func TestNew(t *testing.T) {
	t.Parallel()
	cloudURL := "https://api.prefect.cloud/api/accounts/" + acct + "/workspaces/" + ws
	tests := []struct {
		name    string
		url     string
		key     string
		opts    []Option
		errHas  string
		cloud   bool
		poolURL string // WorkPoolURL("ecs pool")
	}{
		{name: "cloud", url: cloudURL, key: "pnu_x", cloud: true,
			poolURL: "https://app.prefect.cloud/account/" + acct + "/workspace/" + ws + "/work-pools/work-pool/ecs%20pool"},
		{name: "cloud with trailing slash", url: cloudURL + "/", key: "pnu_x", cloud: true,
			poolURL: "https://app.prefect.cloud/account/" + acct + "/workspace/" + ws + "/work-pools/work-pool/ecs%20pool"},
		{name: "cloud-shaped URL on another host (the simulator)", url: "http://127.0.0.1:9/api/accounts/" + acct + "/workspaces/" + ws, key: "k", cloud: true,
			poolURL: "http://127.0.0.1:9/account/" + acct + "/workspace/" + ws + "/work-pools/work-pool/ecs%20pool"},
		{name: "self-hosted", url: "http://localhost:4200/api", poolURL: "http://localhost:4200/work-pools/work-pool/ecs%20pool"},
		{name: "self-hosted under a path with basic auth", url: "https://example.com/prefect/api/", opts: []Option{WithBasicAuth("admin", "pw")},
			poolURL: "https://example.com/prefect/work-pools/work-pool/ecs%20pool"},
		{name: "cloud without workspace", url: "https://api.prefect.cloud/api", key: "k", errHas: "must name the workspace"},
		{name: "cloud without key", url: cloudURL, errHas: "an API key is required"},
		{name: "cloud with basic auth", url: cloudURL, key: "k", opts: []Option{WithBasicAuth("a", "b")}, errHas: "not basic auth"},
		{name: "not http", url: "ftp://example.com/api", errHas: "want an http(s) URL"},
		{name: "no host", url: "/api", errHas: "want an http(s) URL"},
		{name: "credentials in the URL", url: "https://admin:pw@example.com/api", errHas: "must not carry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url, tt.key, tt.opts...)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "pw") && strings.Contains(tt.url, "pw") {
					t.Fatalf("error repeats the credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.IsCloud() != tt.cloud {
				t.Errorf("IsCloud = %v", c.IsCloud())
			}
			if got := c.WorkPoolURL("ecs pool"); got != tt.poolURL {
				t.Errorf("WorkPoolURL = %q, want %q", got, tt.poolURL)
			}
		})
	}
}

// TestExactlyOneAuthScheme captures what goes on the wire.
func TestExactlyOneAuthScheme(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := r.Header.Clone()
		h.Set("X-Content-Length", fmt.Sprint(r.ContentLength))
		got = append(got, h)
		mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprint(rw, `[]`)
	}))
	// Not srv.Close: it closes http.DefaultTransport's idle connections,
	// which parallel tests' clients are using.
	defer srv.Config.Close()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	tests := []struct {
		name string
		url  string
		key  string
		opts []Option
		want []string
	}{
		{"cloud: bearer", srv.URL + "/api/accounts/" + acct + "/workspaces/" + ws, "pnb_key", nil, []string{"Bearer pnb_key"}},
		{"self-hosted with auth string: basic only, even with a key", srv.URL + "/api", "pnb_key", []Option{WithBasicAuth("admin", "s3cret")}, []string{basic}},
		{"self-hosted with a key only: bearer", srv.URL + "/api", "pnb_key", nil, []string{"Bearer pnb_key"}},
		{"self-hosted open: none", srv.URL + "/api", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			c, err := New(tt.url, tt.key, append(tt.opts, WithUserAgent("deploybot/test"))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.ReadWorkers(context.Background(), "p", nil); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d requests", len(got))
			}
			h := got[0]
			if diff := cmp.Diff(tt.want, h.Values("Authorization")); diff != "" {
				t.Errorf("Authorization (-want +got):\n%s", diff)
			}
			if h.Get("User-Agent") != "deploybot/test" || h.Get("Content-Type") != "application/json" || h.Get("X-Content-Length") == "-1" {
				t.Errorf("headers = %v", h)
			}
		})
	}
}

// TestRetries: 429 and 503 are retried after Retry-After (seconds or HTTP
// date) on the clock, a bounded number of times.
func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		n          int
		wantWait   time.Duration
		wantReqs   int
		errHas     string
	}{
		{name: "429 Retry-After seconds", status: 429, retryAfter: secs("7"), n: 2, wantWait: 14 * time.Second, wantReqs: 3},
		{name: "503 Retry-After seconds", status: 503, retryAfter: secs("3"), n: 1, wantWait: 3 * time.Second, wantReqs: 2},
		{name: "429 Retry-After HTTP date", status: 429, n: 1, wantWait: 20 * time.Second, wantReqs: 2,
			retryAfter: func(now time.Time) string { return now.Add(20 * time.Second).UTC().Format(http.TimeFormat) }},
		{name: "503 without Retry-After backs off 1s, 2s", status: 503, retryAfter: secs(""), n: 2, wantWait: 3 * time.Second, wantReqs: 3},
		{name: "bounded: 6 attempts, then the 429 is the error", status: 429, retryAfter: secs("1"), n: 10, wantWait: 5 * time.Second, wantReqs: 6,
			errHas: `prefect: read work pool "ecs-pool": GET /work_pools/ecs-pool: 429 Too Many Requests: Too Many Requests`},
		{name: "a Retry-After longer than deploybot waits fails at once", status: 429, retryAfter: secs("600"), n: 1, wantReqs: 1,
			errHas: "Prefect asked to retry after 10m0s, longer than deploybot waits (2m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey))
			defer sim.Close()
			sim.AddWorkPool(testPool, "ecs", false)
			sim.InjectFault(tt.status, tt.retryAfter(clk.Now()), tt.n)
			c, err := New(sim.URL(), testKey, WithClock(clk))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ReadWorkPool(context.Background(), testPool)
			if tt.errHas == "" && err != nil {
				t.Fatal(err)
			}
			if tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
				t.Fatalf("err = %v, want %q", err, tt.errHas)
			}
			if waited := clk.Now().Sub(t0); waited != tt.wantWait {
				t.Errorf("waited %s on the clock, want %s", waited, tt.wantWait)
			}
			if n := len(sim.Requests()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
		})
	}
}

func secs(v string) func(time.Time) string { return func(time.Time) string { return v } }

// TestErrorsSayWhatFailed: which call, and what Prefect answered.
func TestErrorsSayWhatFailed(t *testing.T) {
	t.Parallel()
	clk := clock.NewVirtual(t0)
	sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey))
	defer sim.Close()
	sim.AddWorkPool(testPool, "ecs", false)
	c, err := New(sim.URL(), testKey, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"404 with detail", func() error { _, err := c.ReadWorkPool(ctx, "nope"); return err },
			`prefect: read work pool "nope": GET /work_pools/nope: 404 Not Found: Work pool "nope" not found.`},
		{"422 validation detail", func() error {
			return c.do(ctx, call{op: "read workers", method: "POST", path: "/work_pools/ecs-pool/workers/filter",
				in: map[string]any{"workers": map[string]any{"name": map[string]any{"any_": []string{"x"}}}}})
		}, `prefect: read workers: POST /work_pools/ecs-pool/workers/filter: 422 Unprocessable Entity: body.workers.name: Extra inputs are not permitted`},
		{"422 limit", func() error {
			return c.do(ctx, call{op: "read workers", method: "POST", path: "/work_pools/ecs-pool/workers/filter", in: map[string]any{"limit": 201}})
		}, `prefect: read workers: POST /work_pools/ecs-pool/workers/filter: 422 Unprocessable Entity: Invalid limit: must be less than or equal to 200.`},
		{"a 307 is not followed: it means a wrong path", func() error {
			return c.do(ctx, call{op: "create work pool", method: "POST", path: "/work_pools", in: map[string]any{"name": "x", "type": "ecs"}})
		}, `prefect: create work pool: POST /work_pools: 307 Temporary Redirect to ` + sim.URL() + `/work_pools/ (deploybot used a path Prefect does not serve; a trailing-slash mismatch answers 307)`},
		{"409", func() error { _, err := c.CreateWorkPool(ctx, WorkPoolCreate{Name: testPool, Type: "ecs"}); return err },
			`prefect: create work pool "ecs-pool": POST /work_pools/: 409 Conflict: A work pool with this name already exists.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.ResetRequests()
			err := tt.run()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err =\n%v\nwant\n%s", err, tt.want)
			}
			if n := len(sim.Requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retries, no redirect followed)", n)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	// Not srv.Close: it closes http.DefaultTransport's idle connections,
	// which parallel tests' clients are using.
	defer srv.Config.Close()
	c, err := New(srv.URL+"/api", "", WithRequestTimeout(time.Millisecond), WithMaxRetries(0), WithClock(clock.NewVirtual(t0)))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckKey(context.Background())
	if err == nil || !strings.Contains(err.Error(), "prefect: check the server health: GET /health") || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadWorkersPages(t *testing.T) {
	t.Parallel()
	clk := clock.NewVirtual(t0)
	sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey))
	defer sim.Close()
	sim.AddWorkPool(testPool, "ecs", false)
	for i := 0; i < 450; i++ {
		simtest.Heartbeat(t, sim, testKey, testPool, fmt.Sprintf("w-%03d", i))
	}
	c, _ := New(sim.URL(), testKey, WithClock(clk))
	sim.ResetRequests()
	ws, err := c.ReadWorkers(context.Background(), testPool, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, w := range ws {
		seen[w.Name] = true
	}
	if len(ws) != 450 || len(seen) != 450 {
		t.Fatalf("%d workers (%d distinct), want 450", len(ws), len(seen))
	}
	if n := len(sim.Requests()); n != 3 {
		t.Errorf("%d requests, want 3 pages of <= 200", n)
	}
}

func TestWorkerSteady(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	tests := []struct {
		name string
		w    Worker
		want bool
	}{
		{"one heartbeat", Worker{Created: at(0), LastHeartbeatTime: at(0)}, false},
		{"one heartbeat, timestamps a few ms apart", Worker{Created: at(0), LastHeartbeatTime: at(3 * time.Millisecond)}, false},
		{"two heartbeats", Worker{Created: at(0), LastHeartbeatTime: at(30 * time.Second)}, true},
		{"no created", Worker{LastHeartbeatTime: at(30 * time.Second)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Steady(); got != tt.want {
				t.Errorf("Steady = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWorkerFreshness(t *testing.T) {
	t.Parallel()
	iv := func(n int) *int { return &n }
	at := func(d time.Duration) *time.Time { x := t0.Add(-d); return &x }
	tests := []struct {
		name string
		w    Worker
		want bool
	}{
		{"fresh at default interval", Worker{LastHeartbeatTime: at(89 * time.Second)}, true},
		{"stale at default interval (3 x 30s)", Worker{LastHeartbeatTime: at(90 * time.Second)}, false},
		{"declared interval 60s", Worker{LastHeartbeatTime: at(150 * time.Second), HeartbeatIntervalSeconds: iv(60)}, true},
		{"declared interval 10s", Worker{LastHeartbeatTime: at(31 * time.Second), HeartbeatIntervalSeconds: iv(10)}, false},
		{"never heartbeated", Worker{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.FreshAt(t0); got != tt.want {
				t.Errorf("FreshAt = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRedact covers text that comes from elsewhere (a server echoing a body).
func TestRedact(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rw.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(rw, `{"detail": "bad header %s; body %s"}`, r.Header.Get("Authorization"), b)
	}))
	// Not srv.Close: it closes http.DefaultTransport's idle connections,
	// which parallel tests' clients are using.
	defer srv.Config.Close()
	c, _ := New(srv.URL+"/api", "pnu_echoedKEY12345", WithClock(clock.NewVirtual(t0)))
	err := c.CheckKey(context.Background())
	if err == nil || strings.Contains(err.Error(), "pnu_echoedKEY12345") || !strings.Contains(err.Error(), "Bearer [redacted]") {
		t.Fatalf("err = %v", err)
	}
}

// TestRedactBeforeCut is issue 11 item 8: a body that is not Prefect's JSON
// (a proxy's page) is cut for the message, and a key straddling the cut
// must not leave its first half in it.
func TestRedactBeforeCut(t *testing.T) {
	key := "pnu_straddlingKEY" + strings.Repeat("x", 20)
	for _, at := range []int{270, 280, 290, 295, 299} {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			rw.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(rw, "%s%s and more", strings.Repeat("p", at), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		}))
		c, _ := New(srv.URL+"/api", key, WithClock(clock.NewVirtual(t0)))
		err := c.CheckKey(context.Background())
		srv.Close()
		if err == nil || strings.Contains(err.Error(), key[:5]) {
			t.Errorf("cut at %d: err = %v", at, err)
		}
	}
}
