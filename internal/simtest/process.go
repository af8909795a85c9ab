package simtest

import (
	"net/http"
	"strings"
	"time"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/clock"
)

// ProcessTransport carries the Prefect API requests of the process under
// test so that its writes (a pool's create, PATCH and delete) count with its
// AWS writes towards the account's awssim.Faults.StopAfterWrites: a crash
// injected after the k-th write stops every later call, AWS's and
// Prefect's, as a dying process does. Reads (GET, and the POSTs that only
// filter or count) never count.
type ProcessTransport struct {
	AWS  *awssim.World
	Next http.RoundTripper // nil: http.DefaultTransport
	// Latency, when set, is the real time added to every request, as
	// awssim.World.Latency is to every AWS call (benchmarks); asked at each
	// request, so that a benchmark can turn it on after the client exists.
	Latency func() time.Duration
}

func (t ProcessTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if t.Latency != nil {
		if d := t.Latency(); d > 0 {
			if err := (clock.Real{}).Sleep(r.Context(), d); err != nil {
				return nil, err
			}
		}
	}
	if !prefectWrite(r) {
		return next.RoundTrip(r)
	}
	done, err := t.AWS.ProcessWrite()
	if err != nil {
		return nil, err
	}
	resp, err := next.RoundTrip(r)
	done(err == nil && resp.StatusCode < 300)
	return resp, err
}

func prefectWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	case http.MethodPost:
		p := strings.TrimSuffix(r.URL.Path, "/")
		return !strings.HasSuffix(p, "/filter") && !strings.HasSuffix(p, "/count")
	}
	return true
}
