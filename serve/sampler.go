package serve

import (
	"context"
	"errors"
	"fmt"
	"github.com/jarzyn/jarzyn/models"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/smc"
)

// Init selects the walkers' starting distribution.
type Init string

const (
	// InitBase starts from exact samples of the base Gaussian N(μ0, σ0²I).
	InitBase Init = "base"
	// InitUniform starts uniformly in the data range [min, max]^d.
	InitUniform Init = "uniform"
)

// FieldError is a bad setting; Field names it as the JSON API spells it
// (the CLI flag has the same name with "--" and dashes).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "serve: " + e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// SampleConfig configures one sampling run. The zero value of every field
// except N and Steps is a usable default.
type SampleConfig struct {
	// N is the number of walkers (samples).
	N int
	// Steps is the number of ULA steps; with Weighted, the number of annealing
	// steps of the schedule β_k = k/Steps.
	Steps int
	// StepSize is h. The default value (0) is the model's training step size.
	StepSize float64
	// Seed makes the run reproducible. The default value is 0.
	Seed uint64
	// Init is the starting distribution. The default value is "base".
	// Weighted sampling needs "base".
	Init Init
	// Weighted anneals from the base Gaussian to the model with Jarzynski
	// weights. The default value is false (plain ULA).
	Weighted bool
	// ExtraSteps adds ULA steps at β = 1 after the schedule (weighted only).
	// The default value is 0.
	ExtraSteps int
	// ResampleThreshold resamples when ESS/N falls below it (weighted only);
	// 0 never resamples. DefaultSampleConfig sets 0.5.
	ResampleThreshold float64
	// ResampleScheme is systematic (the default) or multinomial.
	ResampleScheme smc.Scheme
	// Workers is the number of goroutines (on the CPU: of concurrent Runs,
	// each on its own batch parts). The default value (0) is GOMAXPROCS.
	// Results do not depend on it.
	Workers int
	// RunBatch is the number of walkers per ONNX Runtime Run, rounded up to a
	// multiple of 64: each step evaluates the batch in parts of this size.
	// The default value (0) is min(DefaultRunBatch, ⌈N/cores⌉) on the CPU and
	// N on CUDA; a value ≥ N gives one Run per step on the whole batch.
	// Results do not depend on it.
	RunBatch int
	// Progress, when set, is called after every step with the steps done and
	// the total.
	Progress func(done, total int)
	// FullDim samples in the model's d dimensions even when its latent model
	// is loaded (see Sample). The default value is false.
	FullDim bool

	start []float32 // starting points instead of Init (the latent sampler's)
}

// DefaultSampleConfig returns the defaults: 1000 walkers, 100 steps, the
// model's h, seed 0, base init, unweighted, resampling at ESS/N < 0.5
// (systematic) when weighted.
func DefaultSampleConfig() SampleConfig {
	return SampleConfig{N: 1000, Steps: 100, Init: InitBase, ResampleThreshold: 0.5, ResampleScheme: smc.Systematic}
}

// TotalSteps is Steps plus ExtraSteps: the number of model evaluations.
func (c SampleConfig) TotalSteps() int { return c.Steps + c.ExtraSteps }

// Validate checks the configuration against a model. Errors are *FieldError.
func (c *SampleConfig) Validate(info *ModelInfo) error {
	if c.N <= 0 {
		return fieldErr("n", "must be > 0, got %d", c.N)
	}
	if c.Steps < 0 {
		return fieldErr("steps", "must be ≥ 0, got %d", c.Steps)
	}
	if c.Weighted && c.Steps < 1 {
		return fieldErr("steps", "must be ≥ 1 for weighted sampling, got %d", c.Steps)
	}
	if c.ExtraSteps < 0 {
		return fieldErr("extra_steps", "must be ≥ 0, got %d", c.ExtraSteps)
	}
	if c.ExtraSteps > 0 && !c.Weighted {
		return fieldErr("extra_steps", "only applies to weighted sampling")
	}
	if math.IsNaN(c.StepSize) || math.IsInf(c.StepSize, 0) || c.StepSize < 0 {
		return fieldErr("h", "must be a finite number > 0 (or 0 for the model's %g), got %v", info.StepSize, c.StepSize)
	}
	if c.StepSize == 0 && !(info.StepSize > 0) {
		return fieldErr("h", "the model does not record its training step size; give h > 0")
	}
	switch c.Init {
	case "", InitBase:
	case InitUniform:
		if c.Weighted {
			return fieldErr("init", "weighted sampling must start from exact base samples (init base), got %q", c.Init)
		}
		if !(info.DataMax > info.DataMin) || math.IsInf(info.DataMax-info.DataMin, 0) {
			return fieldErr("init", "uniform needs a data range, the model has [%g, %g]", info.DataMin, info.DataMax)
		}
	default:
		return fieldErr("init", "must be base or uniform, got %q", c.Init)
	}
	if math.IsNaN(c.ResampleThreshold) || c.ResampleThreshold < 0 || c.ResampleThreshold > 1 {
		return fieldErr("resample_threshold", "must be in [0, 1], got %v", c.ResampleThreshold)
	}
	switch c.ResampleScheme {
	case "", smc.Systematic, smc.Multinomial:
	default:
		return fieldErr("resample_scheme", "must be systematic or multinomial, got %q", c.ResampleScheme)
	}
	if c.Workers < 0 {
		return fieldErr("workers", "must be ≥ 0, got %d", c.Workers)
	}
	if c.RunBatch < 0 {
		return fieldErr("run_batch", "must be ≥ 0, got %d", c.RunBatch)
	}
	return nil
}

// Result holds a run's samples and, when weighted, its weights and estimates.
type Result struct {
	// N walkers of DataShape (Dim numbers each), row-major in Samples.
	N         int
	DataShape []int
	Dim       int
	Samples   []float32
	// DataMin and DataMax are the model's data range (both 0 if unknown);
	// image grids map it to black..white.
	DataMin, DataMax float64
	// Weighted is true for annealed runs; then LogWeights (length N) are the
	// final Jarzynski log-weights A, ESS = N·ESSFraction, and LogZ is the
	// log Ẑ estimate. Unweighted: LogWeights nil, ESS = N, LogZ NaN.
	Weighted    bool
	LogWeights  []float64
	ESS         float64
	ESSFraction float64
	LogZ        float64
	Resamplings int
	// The settings used.
	StepSize   float64
	Steps      int
	ExtraSteps int
	Seed       uint64
	// WalkerSteps is N·(Steps+ExtraSteps); Elapsed the wall time of the steps.
	WalkerSteps int64
	Elapsed     time.Duration
	// LatentDim is r when the walk ran in the model's latent space, 0 when
	// it ran in d dimensions.
	LatentDim int
	// Fused reports that the walk ran on jarzyn's fused operators
	// (Model.Fused).
	Fused bool
}

// WalkerStepsPerSecond is the sampler's throughput.
func (r *Result) WalkerStepsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.WalkerSteps) / r.Elapsed.Seconds()
}

// Sample runs the sampler on m. It stops at the next step (or inside the
// current model evaluation) when ctx is cancelled and returns an error
// wrapping ctx.Err().
//
// Runs on an MLP whose latent model is loaded (LoadModel) walk in its r
// dimensions instead of d, unless cfg.FullDim: the result has the same
// distribution, and weighted runs the same log Z (the reduction is exact,
// see sampleLatent), at a cost per step that does not depend on d.
func Sample(ctx context.Context, m *Model, cfg SampleConfig) (*Result, error) {
	if err := cfg.Validate(&m.Info); err != nil {
		return nil, err
	}
	if m.latent != nil && !cfg.FullDim {
		return sampleLatent(ctx, m, m.latent, cfg)
	}
	if cfg.RunBatch == 0 {
		switch {
		case m.Lanes > 1 && cfg.Workers != 1:
			// one single-threaded Run per core, each on its own parts
			lanes := m.Lanes
			if cfg.Workers > 0 {
				lanes = min(lanes, cfg.Workers)
			}
			cfg.RunBatch = min(DefaultRunBatch, (cfg.N+lanes-1)/lanes)
		case m.Device == DeviceCUDA || heavyModel(&m.Info):
			// a GPU wants the whole batch: every Run copies host↔device; so
			// does a large model run by multi-threaded Runs
			cfg.RunBatch = cfg.N
		}
	}
	b, err := m.getBatch(cfg.N, cfg.RunBatch)
	if err != nil {
		return nil, err
	}
	defer m.putBatch(b)
	s := newSampler(m, b, cfg)
	defer s.pool.close()
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("serve: creating run options: %w", err)
	}
	// Cancellation terminates a Run in flight. The callback may still be
	// running when Sample returns, so it and Destroy exclude each other.
	var roMu sync.Mutex
	live := true
	stop := context.AfterFunc(ctx, func() {
		roMu.Lock()
		defer roMu.Unlock()
		if live {
			ro.Terminate()
		}
	})
	defer func() {
		stop()
		roMu.Lock()
		live = false
		ro.Destroy()
		roMu.Unlock()
	}()
	start := time.Now()
	if cfg.Weighted {
		err = s.runWeighted(ctx, ro)
	} else {
		err = s.runULA(ctx, ro)
	}
	if err != nil {
		return nil, err
	}
	res := s.result()
	res.Elapsed = time.Since(start)
	if err := checkFinite(res, s.h); err != nil {
		return nil, err
	}
	return res, nil
}

// checkFinite fails with ErrDiverged when a sample is NaN or infinite.
func checkFinite(res *Result, h float64) error {
	for i, v := range res.Samples {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("serve: walker %d %w (coordinate %d is %v); try a smaller h than %g", i/res.Dim, ErrDiverged, i%res.Dim, v, h)
		}
	}
	return nil
}

// sampler is the state of one run. Positions live in the batch's input
// tensors; per-walker caches (u, gBeta, A) are permuted together on resampling.
type sampler struct {
	m     *Model
	b     *Batch
	cfg   SampleConfig
	n, d  int
	h     float64
	ch    chunking
	rngs  []*rand.Rand
	pool  *workers
	total int
	// chunk range [cLo, cHi) the pool works on in the current call
	cLo, cHi int

	// weighted state
	mu          []float64
	invVar      float64
	xPrev       []float32 // positions before the move (never aliased to X)
	gBeta, gNew []float32 // ∇U_β at the current positions, and scratch
	u           []float64 // U_β at the current positions
	logW        []float64 // A
	beta1       float64
	logZRef     float64
	resamplings int
	p           []float64
	idx         []int
	tmp32       []float32
	tmp64       []float64
	resampleRNG *rand.Rand

	initBaseFn, initUniformFn func(w int)
	ulaFn, moveFn, weightFn   func(lo, hi int)
	lanes                     bool    // parts run concurrently, one Run per lane (see step)
	errs                      []error // per lane, for step
}

func newSampler(m *Model, b *Batch, cfg SampleConfig) *sampler {
	s := &sampler{m: m, b: b, cfg: cfg, n: cfg.N, d: m.Info.Dim, h: cfg.StepSize, total: cfg.TotalSteps()}
	if s.h == 0 {
		s.h = m.Info.StepSize
	}
	s.ch = newChunking(b)
	s.rngs = make([]*rand.Rand, len(s.ch.ranges))
	for c := range s.rngs {
		s.rngs[c] = newStream(cfg.Seed, uint64(c))
	}
	w := cfg.Workers
	if w == 0 {
		w = defaultWorkers()
	}
	if lanes := min(w, m.Lanes, len(s.ch.parts)); lanes > 1 {
		s.lanes = true
		s.pool = newWorkers(lanes)
		s.errs = make([]error, lanes)
	} else {
		s.pool = newWorkers(min(w, len(s.ch.ranges)))
	}
	s.mu = m.Info.BaseMean
	s.invVar = 1 / (m.Info.BaseStd * m.Info.BaseStd)
	s.initBaseFn, s.initUniformFn, s.ulaFn, s.moveFn, s.weightFn = s.initBase, s.initUniform, s.ulaChunks, s.move, s.weigh
	return s
}

// forChunks runs fn on the pool over chunks [first, end).
func (s *sampler) forChunks(first, end int, fn func(w int)) {
	s.cLo, s.cHi = first, end
	s.pool.run(fn)
}

// initBase draws X ~ N(μ0, σ0²I) exactly.
func (s *sampler) initBase(w int) {
	lo, hi := s.pool.span(w, s.cLo, s.cHi)
	sd := s.m.Info.BaseStd
	for c := lo; c < hi; c++ {
		a, z := s.ch.walkers(c)
		kernels.Normal32(s.b.X[a*s.d:z*s.d], s.rngs[c].Uint64())
		for i := a; i < z; i++ {
			x := s.b.X[i*s.d : (i+1)*s.d]
			for k, v := range x {
				x[k] = float32(s.mu[k] + sd*float64(v))
			}
		}
	}
}

// initUniform draws X uniformly in the data range.
func (s *sampler) initUniform(w int) {
	lo, hi := s.pool.span(w, s.cLo, s.cHi)
	a0, span := s.m.Info.DataMin, s.m.Info.DataMax-s.m.Info.DataMin
	for c := lo; c < hi; c++ {
		a, z := s.ch.walkers(c)
		r := s.rngs[c]
		x := s.b.X[a*s.d : z*s.d]
		for k := range x {
			x[k] = float32(a0 + span*r.Float64())
		}
	}
}

// ulaChunks moves the walkers of chunks [lo, hi) by one ULA step with the
// model's gradient.
func (s *sampler) ulaChunks(lo, hi int) {
	for c := lo; c < hi; c++ {
		a, z := s.ch.walkers(c)
		smc.ULA(s.b.X[a*s.d:z*s.d], s.b.Grad[a*s.d:z*s.d], s.h, s.rngs[c])
	}
}

// evalPart runs the model on part j; after a cancellation the error is
// ctx's.
func (s *sampler) evalPart(ctx context.Context, j int, ro *ort.RunOptions) error {
	return s.eval(ctx, j, ro, s.m.evalPart)
}

// evalGradPart is evalPart for plain Langevin steps, which read the
// gradient only (Model.evalGradPart).
func (s *sampler) evalGradPart(ctx context.Context, j int, ro *ort.RunOptions) error {
	return s.eval(ctx, j, ro, s.m.evalGradPart)
}

func (s *sampler) eval(ctx context.Context, j int, ro *ort.RunOptions, f func(*Batch, int, *ort.RunOptions) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f(s.b, j, ro); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// step runs one step on the whole batch: before on every chunk, the model,
// then after on every chunk (either may be nil). With lanes, each of the
// pool's goroutines takes a fixed share of the batch parts and runs them one
// after another, before → Run → after, with no other synchronisation: the
// cores never wait for each other within a step, and a part's data stays in
// that core's cache. Without lanes (CUDA, or multi-threaded Runs) the pool
// works on all chunks around one evaluation of the batch.
func (s *sampler) step(ctx context.Context, ro *ort.RunOptions, before, after func(lo, hi int)) error {
	if !s.lanes {
		all := len(s.ch.ranges)
		if before != nil {
			s.forChunks(0, all, func(w int) { before(s.pool.span(w, 0, all)) })
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.m.Eval(s.b, ro); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if after != nil {
			s.forChunks(0, all, func(w int) { after(s.pool.span(w, 0, all)) })
		}
		return nil
	}
	for w := range s.errs {
		s.errs[w] = nil
	}
	// the lanes take the parts in turn, so a lane slowed by the machine takes
	// fewer of them
	var next atomic.Int64
	np := len(s.ch.parts)
	s.pool.run(func(w int) {
		for j := int(next.Add(1)) - 1; j < np; j = int(next.Add(1)) - 1 {
			c := s.ch.parts[j]
			if before != nil {
				before(c[0], c[1])
			}
			if err := s.evalPart(ctx, j, ro); err != nil {
				s.errs[w] = err
				return
			}
			if after != nil {
				after(c[0], c[1])
			}
		}
	})
	for _, err := range s.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// stopped wraps an evaluation error with the step it happened at.
func (s *sampler) stopped(k int, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve: sampling stopped at step %d of %d: %w", k, s.total, err)
	}
	return err
}

// initialize sets the starting points: cfg.start when given, else draws
// from cfg.Init.
func (s *sampler) initialize() {
	switch {
	case s.cfg.start != nil:
		copy(s.b.X, s.cfg.start)
	case s.cfg.Init == InitUniform:
		s.forChunks(0, len(s.ch.ranges), s.initUniformFn)
	default:
		s.forChunks(0, len(s.ch.ranges), s.initBaseFn)
	}
}

// runULA: each step evaluates the model and moves the walkers by its
// gradient, part by part.
func (s *sampler) runULA(ctx context.Context, ro *ort.RunOptions) error {
	s.initialize()
	if s.lanes {
		return s.runULALanes(ctx, ro)
	}
	for k := 0; k < s.total; k++ {
		if err := s.step(ctx, ro, nil, s.ulaFn); err != nil {
			return s.stopped(k, err)
		}
		if s.cfg.Progress != nil {
			s.cfg.Progress(k+1, s.total)
		}
	}
	return nil
}

// runULALanes runs every step of plain ULA with lanes: walkers do not
// interact, so each lane takes its share of the parts through all the steps
// with no barrier between steps, and a lane slowed by the machine does not
// hold the others up. Lane 0 reports progress; a failed lane stops the
// others at their next part.
func (s *sampler) runULALanes(ctx context.Context, ro *ort.RunOptions) error {
	var failed atomic.Bool
	for w := range s.errs {
		s.errs[w] = nil
	}
	s.pool.run(func(w int) {
		np := len(s.ch.parts)
		for k := 0; k < s.total; k++ {
			for j := w * np / s.pool.n; j < (w+1)*np/s.pool.n; j++ {
				if failed.Load() {
					return
				}
				if err := s.evalGradPart(ctx, j, ro); err != nil {
					s.errs[w] = s.stopped(k, err)
					failed.Store(true)
					return
				}
				c := s.ch.parts[j]
				s.ulaChunks(c[0], c[1])
			}
			if w == 0 && s.cfg.Progress != nil {
				s.cfg.Progress(k+1, s.total)
			}
		}
	})
	for _, err := range s.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// move saves the positions of chunks [lo, hi) and moves them by ULA at
// the current β, whose gradient is cached in gBeta.
func (s *sampler) move(lo, hi int) {
	for c := lo; c < hi; c++ {
		a, z := s.ch.walkers(c)
		x := s.b.X[a*s.d : z*s.d]
		copy(s.xPrev[a*s.d:z*s.d], x)
		smc.ULA(x, s.gBeta[a*s.d:z*s.d], s.h, s.rngs[c])
	}
}

// weigh computes U_β1, ∇U_β1 at the new positions of chunks [lo, hi) from
// the model's outputs and adds the Jarzynski increment of SPEC §2 to every
// walker's log-weight.
func (s *sampler) weigh(lo, hi int) {
	beta := s.beta1
	for c := lo; c < hi; c++ {
		a, z := s.ch.walkers(c)
		for i := a; i < z; i++ {
			r := i * s.d
			x, g1 := s.b.X[r:r+s.d], s.gNew[r:r+s.d]
			gm := s.b.Grad[r : r+s.d]
			ub := 0.0
			for k, xk := range x {
				t := float64(xk) - s.mu[k]
				ub += t * t
				g1[k] = float32((1-beta)*t*s.invVar + beta*float64(gm[k]))
			}
			ub *= 0.5 * s.invVar
			u1 := (1-beta)*ub + beta*float64(s.b.Energy[i])
			s.logW[i] += smc.LogWeightIncrement(s.h, s.u[i], u1, s.xPrev[r:r+s.d], x, s.gBeta[r:r+s.d], g1)
			s.u[i] = u1
		}
	}
}

// betaAt is the schedule: linear in k over Steps, then 1 for extra steps.
func (s *sampler) betaAt(k int) float64 {
	if k >= s.cfg.Steps {
		return 1
	}
	return float64(k) / float64(s.cfg.Steps)
}

// runWeighted: each step moves, evaluates and weighs every part; the
// resampling decision needs all weights, so it waits for the whole step.
func (s *sampler) runWeighted(ctx context.Context, ro *ort.RunOptions) error {
	n, d := s.n, s.d
	s.xPrev = make([]float32, n*d)
	s.gBeta = make([]float32, n*d)
	s.gNew = make([]float32, n*d)
	s.u = make([]float64, n)
	s.logW = make([]float64, n)
	s.logZRef = s.m.Info.LogZBase()
	if s.cfg.ResampleThreshold > 0 {
		s.p = make([]float64, n)
		s.idx = make([]int, n)
		s.tmp32 = make([]float32, n*d)
		s.tmp64 = make([]float64, n)
		s.resampleRNG = newStream(s.cfg.Seed, streamResample)
	}
	// β = 0: exact base samples, U_0 = |x−μ0|²/(2σ0²), A = 0.
	s.forChunks(0, len(s.ch.ranges), s.initBaseFn)
	for i := 0; i < n; i++ {
		r := i * d
		ub := 0.0
		for k := 0; k < d; k++ {
			t := float64(s.b.X[r+k]) - s.mu[k]
			ub += t * t
			s.gBeta[r+k] = float32(t * s.invVar)
		}
		s.u[i] = 0.5 * s.invVar * ub
	}
	for k := 0; k < s.total; k++ {
		s.beta1 = s.betaAt(k + 1)
		if err := s.step(ctx, ro, s.moveFn, s.weightFn); err != nil {
			return s.stopped(k, err)
		}
		s.gBeta, s.gNew = s.gNew, s.gBeta
		for i, a := range s.logW {
			if math.IsNaN(a) || math.IsInf(a, 0) {
				return fmt.Errorf("serve: walker %d %w: its log-weight is %v at step %d (energy %v); try a smaller h than %g", i, ErrDiverged, a, k+1, s.b.Energy[i], s.h)
			}
		}
		if s.cfg.ResampleThreshold > 0 && smc.ESSFraction(s.logW) < s.cfg.ResampleThreshold {
			s.resample()
		}
		if s.cfg.Progress != nil {
			s.cfg.Progress(k+1, s.total)
		}
	}
	return nil
}

// resample draws ancestors ∝ e^A, permutes positions and every cache with
// them, moves log Ẑ into logZRef and resets A (SPEC §2 step 6).
func (s *sampler) resample() {
	s.logZRef += smc.LogMeanExp(s.logW)
	smc.Normalize(s.logW, s.p)
	scheme := s.cfg.ResampleScheme
	if scheme == "" {
		scheme = smc.Systematic
	}
	smc.Resample(scheme, s.p, s.idx, s.resampleRNG)
	smc.Gather(s.b.X, s.d, s.idx, s.tmp32)
	smc.Gather(s.gBeta, s.d, s.idx, s.tmp32)
	smc.Gather(s.u, 1, s.idx, s.tmp64)
	clear(s.logW)
	s.resamplings++
}

func (s *sampler) result() *Result {
	r := &Result{
		N: s.n, DataShape: append([]int(nil), s.m.Info.DataShape...), Dim: s.d,
		Samples: append([]float32(nil), s.b.X...), DataMin: s.m.Info.DataMin, DataMax: s.m.Info.DataMax,
		Weighted: s.cfg.Weighted, StepSize: s.h, Steps: s.cfg.Steps, ExtraSteps: s.cfg.ExtraSteps, Seed: s.cfg.Seed,
		WalkerSteps: int64(s.n) * int64(s.total), ESS: float64(s.n), ESSFraction: 1, LogZ: math.NaN(),
		Fused: s.m.Fused,
	}
	if s.cfg.Weighted {
		r.LogWeights = append([]float64(nil), s.logW...)
		r.ESSFraction = smc.ESSFraction(s.logW)
		r.ESS = r.ESSFraction * float64(s.n)
		r.LogZ = s.logZRef + smc.LogMeanExp(s.logW)
		r.Resamplings = s.resamplings
	}
	return r
}

// heavyModelMACs is the per-walker work (multiply-adds of one evaluation)
// above which a CPU session with multi-threaded Runs (Model.Lanes = 1)
// evaluates the whole batch in one Run.
const heavyModelMACs = 1 << 16

// heavyModel reports whether one evaluation of a walker costs at least
// heavyModelMACs multiply-adds (MLP: Σ w_l·w_{l+1}; mixture: d·modes).
func heavyModel(info *ModelInfo) bool {
	if info.Spec == nil {
		return false
	}
	macs := 0
	switch info.Spec.Family {
	case models.MLP:
		l := info.Spec.Layers()
		for i := 0; i+1 < len(l); i++ {
			macs += l[i] * l[i+1]
		}
	case models.GMM:
		macs = info.Spec.Dim * info.Spec.Modes
	}
	return macs >= heavyModelMACs
}
