package deploy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/simtest"
)

// TestBasicAuthEndToEnd: a self-hosted Prefect server started with
// PREFECT_SERVER_API_AUTH_STRING, and prefect.auth: basic. deploybot's
// preflight, gate and smoke flow run authenticate with Basic only; the
// worker gets the auth string from its own secret as
// PREFECT_API_AUTH_STRING (its health check registers with it), and so do
// its flow runs, through the pool's prefect_api_auth_string_secret_arn, with
// prefect_api_key_secret_arn unset (docs/research/prefect-flow-runs.md §A.5,
// §F). Neither the string nor its Basic token shows anywhere.
func TestBasicAuthEndToEnd(t *testing.T) {
	t.Parallel()
	const auth = "admin:s3cr3t-Pa55"
	token := base64.StdEncoding.EncodeToString([]byte(auth))
	world := simtest.New(t, simtest.WithPrefect(prefectsim.WithAuthString(auth)))
	vpc, subnets := world.AWS.SeedExistingVPC("10.50.0.0/16", 2, true)
	x := &e2e{t: t, w: world.AWS, clk: world.Clock, sim: world.Prefect, vpc: vpc, subnets: subnets}
	ctx := context.Background()

	o := x.options("prefecthq/prefect-aws:3.1")
	o.Env.Prefect.APIURL, o.Env.Prefect.Auth = x.sim.SelfHostedURL(), config.AuthBasic
	client, err := deploy.NewPrefectFor(o.Env, auth, prefect.WithClock(x.clk))
	if err != nil {
		t.Fatal(err)
	}
	o.Prefect, o.Credential = client, secret.New(auth)
	x.sim.ResetRequests()
	res, err := deploy.Apply(ctx, o)
	if err != nil || res.Report.Status != plan.StatusSucceeded {
		t.Fatalf("apply: %v\n%s", err, strings.Join(x.events.Lines(), "\n"))
	}
	if fr := res.Report.Gate.FlowRun; fr == nil || fr.State != prefect.StateCompleted || !fr.NewRevision {
		t.Fatalf("smoke flow run %+v", fr)
	}
	for _, r := range x.sim.Requests() {
		if r.Auth != "Basic" {
			t.Errorf("%s %s authenticated with %q, want Basic only", r.Method, r.Path, r.Auth)
		}
	}
	// The worker's secret and the pool's defaults.
	x.w.Mu.Lock()
	v, ok := x.w.SecretValue("deploybot/demo/prefect-auth-string")
	_, keySecret := x.w.SecretValue("deploybot/demo/prefect-api-key")
	x.w.Mu.Unlock()
	if !ok || v != auth || keySecret {
		t.Fatalf("secrets: auth string stored %v (right value %v), API key secret exists %v", ok, v == auth, keySecret)
	}
	wp, err := client.(deploy.PrefectClient).ReadWorkPool(ctx, "demo-pool")
	if err != nil {
		t.Fatal(err)
	}
	props := wp.BaseJobTemplate["variables"].(map[string]any)["properties"].(map[string]any)
	if d := props["prefect_api_auth_string_secret_arn"].(map[string]any)["default"]; d == nil || !strings.Contains(d.(string), "prefect-auth-string") {
		t.Errorf("prefect_api_auth_string_secret_arn default = %v", d)
	}
	if d := props["prefect_api_key_secret_arn"].(map[string]any)["default"]; d != nil {
		t.Errorf("prefect_api_key_secret_arn default = %v, want none (the worker has no PREFECT_API_KEY)", d)
	}
	b, _ := json.Marshal(res)
	for _, out := range append(x.events.Lines(), string(b)) {
		if strings.Contains(out, auth) || strings.Contains(out, token) || strings.Contains(out, "s3cr3t") {
			t.Fatalf("the auth string shows: %s", out)
		}
	}
}
