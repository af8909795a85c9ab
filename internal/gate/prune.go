package gate

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/prefect"
)

// envPrefixRe matches worker names of any revision of an environment:
// <NAME>-<8 hex>-<hostname> (worker identity contract, docs/ARCHITECTURE.md).
func envPrefixRe(env string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(env) + "-[0-9a-f]{8}-")
}

// prune deletes OFFLINE workers that older revisions of this environment
// left behind; workers never delete themselves (docs/research/prefect-api.md
// §1.4, PrefectHQ/prefect#12176).
func (g *run) prune(ctx context.Context, rep *plan.GateReport) {
	ws, err := g.prefect.ReadWorkers(ctx, g.in.WorkPool, &prefect.WorkerFilter{Status: &prefect.WorkerFilterStatusField{Any: []string{prefect.WorkerOffline}}})
	if err != nil {
		addWarning(rep, "pruning offline workers: "+err.Error())
		return
	}
	re := envPrefixRe(g.in.PruneEnvironment)
	for _, w := range ws {
		// the status Prefect reports, not only the filter's stored column
		if w.Status != prefect.WorkerOffline || !re.MatchString(w.Name) || strings.HasPrefix(w.Name, g.prefix+"-") {
			continue
		}
		if rep.PrunedWorkers >= MaxPrune {
			addWarning(rep, fmt.Sprintf("pruned %d offline workers; the rest wait for the next deploy", MaxPrune))
			return
		}
		deleted, err := g.prefect.DeleteWorker(ctx, g.in.WorkPool, w.Name)
		if err != nil {
			addWarning(rep, "pruning offline workers: "+err.Error())
			return
		}
		if deleted {
			rep.PrunedWorkers++
		}
	}
}
