package serve

import (
	"context"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// Plain ULA: each step evaluates ∇ₓU at the walkers and moves them,
// x ← x − h∇U(x) + √(2h)ξ (docs/METHOD.md §2 step 3). The samples carry no
// weights: their law is K ULA steps from the start, biased by O(h).

// ulaSteps is the stepJob of plain ULA without lanes: the model, then the
// move of every chunk.
type ulaSteps struct {
	w   *walk
	key uint64 // the noise of the current step
}

func (u *ulaSteps) begin(k int) { u.key = u.w.key(k + 1) }

func (u *ulaSteps) beforeEval(first, end int) {}

func (u *ulaSteps) afterEval(first, end int) { u.w.ulaChunks(first, end, u.key) }

func (u *ulaSteps) end(k int) error {
	u.w.progress(k + 1)
	return nil
}

// needsEnergy is false: plain steps read the gradient only.
func (u *ulaSteps) needsEnergy() bool { return false }

// runULA runs w.total steps of plain ULA from the current positions.
func (w *walk) runULA(ctx context.Context, ro *ort.RunOptions) error {
	if w.lanes {
		return w.runULALanes(ctx, ro)
	}
	return w.drive(ctx, ro, &ulaSteps{w: w})
}

// runULALanes runs every step of plain ULA with lanes: walkers do not
// interact, so each worker takes its fixed share of the parts through all
// the steps with no barrier between steps, and a worker slowed by the
// machine does not hold the others up. Worker 0 reports progress; a failed
// worker stops the others at their next part. Plain steps read the gradient
// only (Model.evalGradPart).
func (w *walk) runULALanes(ctx context.Context, ro *ort.RunOptions) error {
	var failed atomic.Bool
	clear(w.errs)
	np := len(w.parts)
	w.pool.Run(func(wk int) {
		first, end := w.pool.Share(wk, 0, np)
		for k := 0; k < w.total; k++ {
			key := w.key(k + 1)
			for j := first; j < end; j++ {
				if failed.Load() {
					return
				}
				if err := w.eval(ctx, j, ro, w.m.evalGradPart); err != nil {
					w.errs[wk] = w.stopped(k, err)
					failed.Store(true)
					return
				}
				w.ulaChunks(w.parts[j][0], w.parts[j][1], key)
			}
			if wk == 0 {
				w.progress(k + 1)
			}
		}
	})
	for _, err := range w.errs {
		if err != nil {
			return err
		}
	}
	return nil
}
