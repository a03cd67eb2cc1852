package train

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// checkRestored validates the state restore read from a checkpoint before
// anything in the run dir changes: the iteration is in [0, iterations] (a
// checkpoint past the configured iterations is refused as a
// *config.KeyError for "iterations": lowering it on --resume would
// silently end the run), the optimizer step, elapsed time and resampling
// counts are in range, and log Z references, the mean data energy and
// every walker's energy, log-weight and gradient are finite. The
// checkpoint's lengths are checked by restore.
func (t *trainer[T]) checkRestored() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("train: the checkpoint's state is invalid: "+format, a...)
	}
	if t.iter < 0 {
		return bad("iteration %d is negative", t.iter)
	}
	if t.iter > t.cfg.Iterations {
		return config.Errorf("iterations", "must be >= the checkpoint's iteration %d to resume it, got %d (resume with --set iterations=N, N >= %d)",
			t.iter, t.cfg.Iterations, t.iter)
	}
	if t.opt.t < 0 || t.opt.t > t.iter {
		return bad("optimizer step %d is outside [0, iteration %d]", t.opt.t, t.iter)
	}
	if !(t.elapsed >= 0) || math.IsInf(t.elapsed, 0) {
		return bad("elapsed time %v is not a finite number >= 0", t.elapsed)
	}
	if math.IsNaN(t.lastMeanUData) || math.IsInf(t.lastMeanUData, 0) {
		return bad("mean data energy %v is not finite", t.lastMeanUData)
	}
	for _, pop := range t.pops() {
		name := "walkers"
		if pop == t.mon {
			name = "monitor walkers"
		}
		if math.IsNaN(pop.LogZRef) || math.IsInf(pop.LogZRef, 0) {
			return bad("%s: log Z reference %v is not finite", name, pop.LogZRef)
		}
		if pop.Resamplings < 0 || pop.Resamplings > t.iter {
			return bad("%s: %d resamplings is outside [0, iteration %d]", name, pop.Resamplings, t.iter)
		}
		for i, x := range pop.X {
			if v := float64(x); math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("%s: walker %d has position entry %v", name, i/t.cfg.Model.Dim, v)
			}
		}
		if err := pop.CheckFinite(true); err != nil {
			return bad("%s: %v", name, err)
		}
	}
	return nil
}

// runFiles are the files of a run dir that are written atomically.
var runFiles = []string{ConfigFile, MetricsFile, SummaryFile, models.WeightsFile, filepath.Join(CheckpointDir, LatestCkpt)}

// removeStaleTemps removes the temp files that a killed run left beside the
// run dir's files (atomicfile.RemoveStale: only temps of those files, only
// those no live writer holds) and returns their paths.
func removeStaleTemps(dir string) []string {
	var removed []string
	for _, f := range runFiles {
		r, _ := atomicfile.RemoveStale(filepath.Join(dir, f))
		removed = append(removed, r...)
	}
	return removed
}
