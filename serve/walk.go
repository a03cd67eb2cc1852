package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/smc"
)

// walk is what every sampling strategy shares: N walkers in the input
// tensor of a batch, the model that evaluates them part by part, the
// goroutines that move them, and their noise.
//
// Noise: the walkers form chunks of smc.ChunkWalkers, and draw k of chunk c
// (k = 0 the starting points, k = j+1 the j-th step) comes from the stream
// (smc.DrawKey(seed, k), c). Batch parts are whole chunks, so samples depend
// only on the seed, N and the settings of the walk: never on the number of
// cores, the run batch or which goroutine moves which walkers.
type walk struct {
	m     *Model
	b     *Batch
	cfg   SampleConfig // validated, with the step size resolved
	n, d  int
	total int // steps, cfg.TotalSteps()
	noise *smc.Noise
	pool  *smc.Pool
	// parts is the chunk range [first, end) of each batch part.
	parts [][2]int
	// lanes: on the CPU with several single-threaded sessions' worth of
	// cores, each worker runs its own parts through the model (step);
	// otherwise the model evaluates the whole batch at once.
	lanes bool
	errs  []error // one per worker, for step
	// base is the model's data-fitted base N(μ0, Σ), nil for N(μ0, σ0²I);
	// precond moves the walkers with M = Σ (cfg.Precondition base).
	base    *pcaBase
	precond bool
}

func newWalk(m *Model, b *Batch, cfg SampleConfig) *walk {
	w := &walk{m: m, b: b, cfg: cfg, n: cfg.N, d: m.Info.Dim, total: cfg.TotalSteps(), noise: smc.NewNoise(cfg.N),
		base: mustPCABase(m.Info.Spec)}
	w.precond = w.base != nil && resolvePrecondition(&m.Info, cfg.Precondition) == PreconditionBase
	for _, p := range b.parts {
		w.parts = append(w.parts, [2]int{p.lo / smc.ChunkWalkers, (p.hi + smc.ChunkWalkers - 1) / smc.ChunkWalkers})
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = defaultWorkers()
	}
	if lanes := min(workers, m.Lanes, len(w.parts)); lanes > 1 {
		w.lanes = true
		w.pool = smc.NewPool(lanes)
	} else {
		w.pool = smc.NewPool(min(workers, smc.Chunks(w.n)))
	}
	w.errs = make([]error, w.pool.Workers())
	return w
}

func (w *walk) close() { w.pool.Close() }

// key is the key of the noise of draw k (0: the start, j+1: step j).
func (w *walk) key(k int) uint64 { return smc.DrawKey(w.cfg.Seed, uint64(k)) }

// walkers returns the walker range [lo, hi) of chunk c.
func (w *walk) walkers(c int) (lo, hi int) { return smc.ChunkWalkerRange(c, w.n) }

// start sets the positions: a copy of x when given (N rows), else draws
// from cfg.Init.
func (w *walk) start(x []float32) {
	if x != nil {
		copy(w.b.X, x)
		return
	}
	drawStart(w.b.X, w.n, &w.m.Info, w.cfg.Init, w.key(0), w.noise, w.pool)
}

// drawStart fills x (n walkers of the model's dimension) with exact samples
// of the base Gaussian N(μ0, σ0²I), or N(μ0, Σ) for a data-fitted base
// (μ0 + Σ^{1/2}·ξ from the same standard normal draws ξ), or uniform draws
// in the data range for InitUniform, chunk c from noise stream (key, c).
func drawStart(x []float32, n int, info *ModelInfo, init Init, key uint64, noise *smc.Noise, pool *smc.Pool) {
	d := info.Dim
	mu, sd := info.BaseMean, info.BaseStd
	var base *pcaBase
	if init != InitUniform {
		base = mustPCABase(info.Spec)
	}
	a0, span := info.DataMin, info.DataMax-info.DataMin
	pool.Run(func(wk int) {
		first, end := pool.Share(wk, 0, smc.Chunks(n))
		for c := first; c < end; c++ {
			lo, hi := smc.ChunkWalkerRange(c, n)
			xc := x[lo*d : hi*d]
			rng := noise.Chunk(key, c)
			if init == InitUniform {
				for k := range xc {
					xc[k] = float32(a0 + span*rng.Float64())
				}
				continue
			}
			kernels.Normal32(xc, rng.Uint64())
			if base != nil {
				base.sample(xc)
				continue
			}
			for k, v := range xc {
				xc[k] = float32(mu[k%d] + sd*float64(v))
			}
		}
	})
}

// ulaChunks moves the walkers of chunks [first, end) by one ULA step with
// the model's gradient, the noise of draw key: preconditioned with M = Σ
// when w.precond (pcaBase.move).
func (w *walk) ulaChunks(first, end int, key uint64) {
	d := w.d
	for c := first; c < end; c++ {
		lo, hi := w.walkers(c)
		if w.precond {
			w.base.move(w.b.X[lo*d:hi*d], w.b.Grad[lo*d:hi*d], w.cfg.StepSize, w.noise.Chunk(key, c))
			continue
		}
		smc.ULA(w.b.X[lo*d:hi*d], w.b.Grad[lo*d:hi*d], w.cfg.StepSize, w.noise.Chunk(key, c))
	}
}

// eval runs f (an evaluation of part j) and, after a cancellation, returns
// ctx's error instead of ONNX Runtime's.
func (w *walk) eval(ctx context.Context, j int, ro *ort.RunOptions, f func(*Batch, int, *ort.RunOptions) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f(w.b, j, ro); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// stepper is what one step of a strategy does around the model's
// evaluation, on the walkers of chunks [first, end).
type stepper interface {
	beforeEval(first, end int)
	afterEval(first, end int)
}

// stepJob is a sampling strategy cut at its model evaluations: step k is
// begin(k), beforeEval on every chunk, the evaluation of the model at the
// walkers, afterEval on every chunk, then end(k) (checks, resampling,
// progress). walk.drive runs one alone; a Batcher runs many in one shared
// evaluation per step.
type stepJob interface {
	begin(k int)
	stepper
	end(k int) error
	// needsEnergy reports whether afterEval reads the energies (else only
	// the gradients).
	needsEnergy() bool
}

// drive runs the walk's steps of j on its own batch.
func (w *walk) drive(ctx context.Context, ro *ort.RunOptions, j stepJob) error {
	for k := 0; k < w.total; k++ {
		j.begin(k)
		if err := w.step(ctx, ro, j); err != nil {
			return w.stopped(k, err)
		}
		if err := j.end(k); err != nil {
			return err
		}
	}
	return nil
}

// step runs one step on the whole batch: s.beforeEval on every chunk, the
// model, then s.afterEval on every chunk. With lanes, the workers take the
// batch parts in turn and run each one before → Run → after with no other
// synchronisation: the cores never wait for each other within a step, a
// part's data stays in that core's cache, and a worker slowed by the
// machine takes fewer parts. Without lanes (CUDA, or multi-threaded Runs)
// the workers share the chunks around one evaluation of the batch.
func (w *walk) step(ctx context.Context, ro *ort.RunOptions, s stepper) error {
	if !w.lanes {
		all := smc.Chunks(w.n)
		w.pool.Run(func(wk int) { s.beforeEval(w.pool.Share(wk, 0, all)) })
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.m.Eval(w.b, ro); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		w.pool.Run(func(wk int) { s.afterEval(w.pool.Share(wk, 0, all)) })
		return nil
	}
	clear(w.errs)
	var next atomic.Int64
	np := len(w.parts)
	w.pool.Run(func(wk int) {
		for j := int(next.Add(1)) - 1; j < np; j = int(next.Add(1)) - 1 {
			c := w.parts[j]
			s.beforeEval(c[0], c[1])
			if err := w.eval(ctx, j, ro, w.m.evalPart); err != nil {
				w.errs[wk] = err
				return
			}
			s.afterEval(c[0], c[1])
		}
	})
	for _, err := range w.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// stopped wraps an evaluation error with the step it happened at.
func (w *walk) stopped(k int, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve: sampling stopped at step %d of %d: %w", k, w.total, err)
	}
	return err
}

// progress reports k steps done.
func (w *walk) progress(k int) {
	if w.cfg.Progress != nil {
		w.cfg.Progress(k, w.total)
	}
}

// result is the unweighted result of the walk: the positions and the
// settings.
func (w *walk) result() *Result {
	res := &Result{
		N: w.n, DataShape: append([]int(nil), w.m.Info.DataShape...), Dim: w.d,
		Samples: append([]float32(nil), w.b.X...), DataMin: w.m.Info.DataMin, DataMax: w.m.Info.DataMax,
		StepSize: w.cfg.StepSize, Steps: w.cfg.Steps, ExtraSteps: w.cfg.ExtraSteps, Seed: w.cfg.Seed,
		WalkerSteps: int64(w.n) * int64(w.total), ESS: float64(w.n), ESSFraction: 1, LogZ: math.NaN(),
		Fused: w.m.Fused, Precondition: PreconditionNone,
	}
	if w.precond {
		res.Precondition = PreconditionBase
	}
	return res
}

// defaultWorkers is the number of goroutines a sampler uses.
func defaultWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }
