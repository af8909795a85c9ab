package simtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/prefectsim"
)

// Heartbeat sends one worker heartbeat to the simulated Prefect API as a
// real worker does (POST /work_pools/{pool}/workers/heartbeat with its
// interval, docs/research/prefect-api.md §1.5), with the Cloud key.
func Heartbeat(tb testing.TB, sim *prefectsim.Server, key, pool, name string) {
	tb.Helper()
	req, _ := http.NewRequest("POST", sim.URL()+"/work_pools/"+pool+"/workers/heartbeat",
		strings.NewReader(`{"name":"`+name+`","heartbeat_interval_seconds":30}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		tb.Fatalf("heartbeat %s: %d", name, resp.StatusCode)
	}
}
