package gate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
	"github.com/deploybot/deploybot/internal/prefectsim"
	"github.com/deploybot/deploybot/internal/simtest"
)

// TestGateTimeoutIsTheWholeGate: health_gate.timeout bounds the stages and
// the rollback together (issue 11 item 21: with timeout 30s and a previous
// worker that did not come back, the gate reported "failed after 11m1s"
// from a hidden 10-minute rollback budget). The stages get the timeout
// minus half of it (at most minus RollbackReserve); the rollback the rest.
func TestGateTimeoutIsTheWholeGate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		timeout, stages time.Duration
	}{
		{30 * time.Second, 15 * time.Second},
		{5 * time.Minute, 150 * time.Second},
		{30 * time.Minute, 25 * time.Minute},
	} {
		t.Run(tc.timeout.String(), func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}})
			// the previous revision's worker does not come back either
			s.ecs.onUpdate = func(td string) {
				r := s.ecs.tds[td]
				r.behavior.NoHeartbeat = true
				s.ecs.tds[td] = r
			}
			s.in.Timeout = tc.timeout
			rep := s.gate(t)
			if rep.Passed || rep.RestoredWorkerOnline || rep.Rollback == nil {
				t.Fatalf("passed=%v restored=%v rollback %+v", rep.Passed, rep.RestoredWorkerOnline, rep.Rollback)
			}
			if rep.Duration > tc.timeout {
				t.Errorf("the gate took %s with a timeout of %s", rep.Duration, tc.timeout)
			}
			if len(rep.Stages) != 1 || rep.Stages[0].Duration != tc.stages {
				t.Errorf("stages %+v: want the workers stage to wait %s", rep.Stages, tc.stages)
			}
			if o := rep.Rollback.Outcome; o != plan.RollbackWorkerNotBack && o != plan.RollbackNotComplete {
				t.Errorf("rollback outcome %s", o)
			}
			if !strings.Contains(rep.Reason, "within the gate's "+tc.timeout.String()) && !strings.Contains(rep.Reason, "when the gate's "+tc.timeout.String()+" ran out") {
				t.Errorf("reason %q does not say the gate's timeout ran out", rep.Reason)
			}
		})
	}
}

// refuseStatusFilter is an independent Prefect server that answers, like
// Prefect 2.13 to 2.18.1, 422 to a worker filter on status (WorkerFilter
// had only last_heartbeat_time then, with extra fields forbidden; the status
// filter came with PrefectHQ/prefect#13158, 2.18.2), while it lists each
// worker's status, computed from its heartbeat (PrefectHQ/prefect#10636,
// 2.13.0), as ONLINE. Other requests go to the simulator.
func refuseStatusFilter(t *testing.T, sim *prefectsim.Server) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var f struct {
			Workers map[string]json.RawMessage `json:"workers"`
		}
		if strings.HasSuffix(r.URL.Path, "/workers/filter") && json.Unmarshal(body, &f) == nil && f.Workers["status"] != nil {
			// server/api/server.py validation_exception_handler, pydantic v1's "extra fields not permitted"
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = rw.Write([]byte(`{"exception_message":"Invalid request received.","exception_detail":[{"loc":["body","workers","status"],"msg":"extra fields not permitted","type":"value_error.extra"}],"request_body":` + string(body) + `}`))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sim.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + strings.TrimPrefix(sim.URL(), hostOf(sim.URL()))
}

// TestRollbackJudgesByWhatPrefectReports (issue 10 item 7): tried against
// an independent Prefect, the rollback report said "the previous worker has
// NOT come back online" while Prefect listed it ONLINE. The confirmation
// judges by the rows Prefect reports (name, status, a heartbeat recorded
// after the rollback began), not by a server-side status filter, and rows
// that predate the rollback (a worker name an earlier task used: Fargate
// reuses private IPs) count once they heartbeat again, and not before.
func TestRollbackJudgesByWhatPrefectReports(t *testing.T) {
	t.Parallel()
	t.Run("a server without the status filter, and the old worker's name back", func(t *testing.T) {
		t.Parallel()
		s := newScenario(t, scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}})
		s.ecs.reuseHost = true
		c, err := prefect.New(refuseStatusFilter(t, s.sim), testKey, prefect.WithClock(s.clk))
		if err != nil {
			t.Fatal(err)
		}
		s.client = c
		before := s.sim.Workers(testPool)
		rep := s.gate(t)
		if !rep.RolledBack || !rep.RestoredWorkerOnline || rep.Rollback.Outcome != plan.RollbackRestored {
			t.Fatalf("rolledBack=%v restored=%v rollback %+v\n%s", rep.RolledBack, rep.RestoredWorkerOnline, rep.Rollback, strings.Join(s.progress, "\n"))
		}
		// the worker named back is the row revision 1's first task made
		// before the deploy, heartbeating again from the rollback's task
		if len(before) != 1 || rep.Rollback.Worker != before[0].Name {
			t.Fatalf("worker back %q, want the row that predates the rollback (%+v)", rep.Rollback.Worker, before)
		}
		for _, w := range s.sim.Workers(testPool) {
			if w.Name == rep.Rollback.Worker && (w.Status != "ONLINE" || !w.Created.Equal(before[0].Created)) {
				t.Errorf("Prefect lists %+v", w)
			}
		}
	})
	t.Run("a row still ONLINE from before the rollback is not a worker back", func(t *testing.T) {
		t.Parallel()
		// The workers stage ends 60s in, when revision 1's drained worker is
		// still ONLINE (90s after its last heartbeat); the rollback's task
		// starts under the same name but never heartbeats.
		s := newScenario(t, scenarioOpts{behavior: prefectsim.ImageBehavior{NoHeartbeat: true}})
		s.ecs.reuseHost = true
		s.ecs.onUpdate = func(td string) {
			r := s.ecs.tds[td]
			r.behavior.NoHeartbeat = true
			s.ecs.tds[td] = r
		}
		s.in.Timeout = 2 * time.Minute
		rep := s.gate(t)
		if rep.RestoredWorkerOnline || rep.Rollback == nil || rep.Rollback.Outcome == plan.RollbackRestored {
			t.Fatalf("restored=%v rollback %+v: the stale row counted\n%s", rep.RestoredWorkerOnline, rep.Rollback, strings.Join(s.progress, "\n"))
		}
		// the stage's last poll saw the old worker ONLINE; the table after
		// the rollback shows it as Prefect lists it at the end: OFFLINE
		lastPoll := ""
		for _, l := range s.progress {
			if strings.HasPrefix(l, "health gate: 0/1") {
				lastPoll = l
			}
		}
		if !strings.Contains(lastPoll, prefixV1+"-ip-10-0-1-3 ONLINE") {
			t.Fatalf("the scenario did not have the old worker ONLINE when the stage ended: %q", lastPoll)
		}
		if len(rep.Workers) != 1 || rep.Workers[0].Status != prefect.WorkerOffline {
			t.Errorf("workers after the rollback %+v, want the old worker OFFLINE", rep.Workers)
		}
	})
}

// TestReusedNameOfTheSamePrefix: when both revisions carry the same prefix
// (a task-level change), a worker of the new revision is told from the old
// ones by its row's created; a task whose hostname (and so worker name) an
// earlier task used has a row created long before the deploy. It passes once
// it heartbeats twice after ECS said only the new revision runs, instead of
// being ignored and the good deploy rolled back.
func TestReusedNameOfTheSamePrefix(t *testing.T) {
	t.Parallel()
	clk := clock.NewVirtual(t0)
	sim := prefectsim.New(nil, prefectsim.WithClock(clk), prefectsim.WithKey(testKey))
	t.Cleanup(sim.Close)
	sim.AddWorkPool(testPool, "ecs", false)
	// a task of revision 1 on 10.0.9.9 ran an hour ago
	old := prefixV1 + "-ip-10-0-9-9"
	simtest.Heartbeat(t, sim, testKey, testPool, old)
	clk.Advance(time.Hour)
	s := newScenarioOn(t, clk, sim, true, func(f *fakeECS) { f.nextHost = map[string]string{tdV2: "ip-10-0-9-9"} })
	rep := s.gate(t)
	if !rep.Passed || !strings.Contains(rep.Reason, old) {
		t.Fatalf("passed=%v reason %q; want the worker on the reused name to pass\n%s", rep.Passed, rep.Reason, strings.Join(s.progress, "\n"))
	}
	for _, w := range s.sim.Workers(testPool) {
		if w.Name == old && !w.Created.Equal(t0) {
			t.Fatalf("the row's created moved: %+v", w)
		}
	}
	if len(s.ecsWrites()) != 0 {
		t.Errorf("a good deploy was rolled back: %v", s.ecsWrites())
	}
}
