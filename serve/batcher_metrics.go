package serve

import (
	"fmt"
	"strings"
)

// batcherStats returns the stats of the model's batcher, if one runs.
func (m *Model) batcherStats() (BatcherStats, bool) {
	m.batcherMu.Lock()
	bt := m.batcher
	m.batcherMu.Unlock()
	if bt == nil {
		return BatcherStats{}, false
	}
	return bt.Stats(), true
}

// writeBatcherMetrics renders the continuous batchers' metrics for the
// models that have one: pool occupancy, queue length and the shared
// evaluations' counters (rate(jarzyn_batcher_walker_steps_total) is the
// pool's walker-steps/s).
func writeBatcherMetrics(b *strings.Builder, models []*Model) {
	type row struct {
		m *Model
		s BatcherStats
	}
	var rows []row
	for _, m := range models {
		if s, ok := m.batcherStats(); ok {
			rows = append(rows, row{m, s})
		}
	}
	for _, g := range []struct {
		name, typ, help string
		value           func(BatcherStats) string
	}{
		{"jarzyn_batcher_requests", "gauge", "Sampling requests stepping in the model's shared walker batch.", func(s BatcherStats) string { return fmt.Sprint(s.Active) }},
		{"jarzyn_batcher_walkers", "gauge", "Walkers in the model's shared batch (pool occupancy).", func(s BatcherStats) string { return fmt.Sprint(s.Walkers) }},
		{"jarzyn_batcher_capacity_walkers", "gauge", "Capacity of the model's walker pool (--pool-walkers).", func(s BatcherStats) string { return fmt.Sprint(s.Capacity) }},
		{"jarzyn_batcher_queue", "gauge", "Sampling requests waiting for room in the model's walker pool.", func(s BatcherStats) string { return fmt.Sprint(s.Queued) }},
		{"jarzyn_batcher_evals_total", "counter", "Shared evaluations (steps) of the model's walker batch.", func(s BatcherStats) string { return fmt.Sprint(s.Evals) }},
		{"jarzyn_batcher_walker_steps_total", "counter", "Walker steps served by the model's shared evaluations.", func(s BatcherStats) string { return fmt.Sprint(s.WalkerSteps) }},
		{"jarzyn_batcher_eval_seconds_total", "counter", "Wall time of the model's shared evaluations.", func(s BatcherStats) string { return fmtFloat(s.EvalSeconds) }},
	} {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", g.name, g.help, g.name, g.typ)
		for _, r := range rows {
			fmt.Fprintf(b, "%s{model=\"%s\",version=\"%s\"} %s\n", g.name, escapeLabel(r.m.Name), escapeLabel(r.m.Version), g.value(r.s))
		}
	}
}
