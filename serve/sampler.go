package serve

import (
	"context"
	"fmt"
	"math"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/models"
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
	// Precondition is the matrix M of the Langevin moves
	// x ← x − h·M·∇U + √(2h)·M^{1/2}·ξ, in plain ULA and in weighted
	// annealing: none (M = I), base (M = Σ, the covariance of a data-fitted
	// base, pcabase.go) or auto. The default value ("" or auto) is base for
	// a model with a data-fitted base (model.base_fit pca) and none
	// otherwise.
	Precondition Precondition
	// Kernel is the move of weighted annealing: ula (the default: every
	// move's discretisation error is carried by the weights) or mala
	// (Metropolis-adjusted moves at each β, the weights carrying only the
	// work of the β steps: exact for any h; docs/METHOD.md §8). mala needs
	// Weighted.
	Kernel Kernel
}

// Kernel names the Langevin move of weighted sampling.
type Kernel string

const (
	// KernelULA is the unadjusted Langevin move with the weights of
	// docs/METHOD.md §2.
	KernelULA Kernel = "ula"
	// KernelMALA is the Metropolis-adjusted move with work-only weights.
	KernelMALA Kernel = "mala"
)

// DefaultSampleConfig returns the defaults: 1000 walkers, 100 steps, the
// model's h, seed 0, base init, unweighted, resampling at ESS/N < 0.5
// (systematic) when weighted.
func DefaultSampleConfig() SampleConfig {
	return SampleConfig{N: 1000, Steps: 100, Init: InitBase, ResampleThreshold: 0.5, ResampleScheme: smc.Systematic}
}

// TotalSteps is Steps plus ExtraSteps: the number of model evaluations.
func (c SampleConfig) TotalSteps() int { return c.Steps + c.ExtraSteps }

// Validate checks the configuration against a model's training
// information (its step size and data range). Errors are *FieldError.
func (c *SampleConfig) Validate(info models.TrainingInfo) error {
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
		if info.StepSize > 0 {
			return fieldErr("h", "must be a finite number > 0, or 0 for the model's training step size %g; got %v", info.StepSize, c.StepSize)
		}
		return fieldErr("h", "must be a finite number > 0; got %v", c.StepSize)
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
	switch c.Precondition {
	case "", PreconditionAuto, PreconditionNone, PreconditionBase:
	default:
		return fieldErr("precondition", "must be auto, none or base, got %q", c.Precondition)
	}
	switch c.Kernel {
	case "", KernelULA:
	case KernelMALA:
		if !c.Weighted {
			return fieldErr("kernel", "mala applies to weighted sampling only (plain sampling uses ULA)")
		}
	default:
		return fieldErr("kernel", "must be ula or mala, got %q", c.Kernel)
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
	// Batched reports that the walkers were evaluated in a Batcher's shared
	// batch with other requests' walkers; Elapsed then includes the steps'
	// share of the whole batch.
	Batched bool
	// Precondition is the preconditioner the moves used: none or base.
	Precondition Precondition
	// Kernel is the move of weighted annealing (ula or mala); with mala,
	// Accept is the fraction of proposals accepted over the run.
	Kernel Kernel
	Accept float64
}

// WalkerStepsPerSecond is the sampler's throughput.
func (r *Result) WalkerStepsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.WalkerSteps) / r.Elapsed.Seconds()
}

// Sample runs the sampler on m with one of three strategies: plain ULA
// (ula.go), weighted annealing from the base Gaussian (annealed.go), or, on
// an MLP whose latent model is loaded (LoadModel), either of the two in its
// r latent dimensions instead of d (latent.go) unless cfg.FullDim: the
// result has the same distribution, and weighted runs the same log Z (the
// reduction is exact), at a cost per step that does not depend on d.
//
// It stops at the next step (or inside the current model evaluation) when
// ctx is cancelled and returns an error wrapping ctx.Err().
func Sample(ctx context.Context, m *Model, cfg SampleConfig) (*Result, error) {
	cfg, err := prepare(m, cfg)
	if err != nil {
		return nil, err
	}
	var res *Result
	if walksLatent(m, cfg) {
		res, err = sampleLatent(ctx, m, m.latent, cfg)
	} else {
		res, err = sampleFull(ctx, m, cfg, nil)
	}
	if err != nil {
		return nil, err
	}
	if err := checkFinite(res); err != nil {
		return nil, err
	}
	return res, nil
}

// walksLatent reports whether a request walks in the model's latent space:
// the model has a latent model and the request does not ask for the full
// dimension. A data-fitted base does not separate along the latent space
// (export writes no latent model for one), and Metropolis-adjusted moves
// walk in ℝᵈ (the latent walk is ULA's).
func walksLatent(m *Model, cfg SampleConfig) bool {
	return m.latent != nil && !cfg.FullDim && !hasPCABase(&m.Info) && cfg.Kernel != KernelMALA
}

// prepare validates cfg against the model and the hard limits and resolves
// its defaults (the model's step size, the systematic scheme).
func prepare(m *Model, cfg SampleConfig) (SampleConfig, error) {
	if err := cfg.Validate(m.Info.TrainingInfo); err != nil {
		return cfg, err
	}
	if err := checkBase(m.Info, cfg); err != nil {
		return cfg, err
	}
	if err := HardLimits().Check(cfg, m.Info.Dim); err != nil {
		return cfg, err
	}
	if cfg.StepSize == 0 {
		cfg.StepSize = m.Info.StepSize
	}
	if cfg.ResampleScheme == "" {
		cfg.ResampleScheme = smc.Systematic
	}
	cfg.Precondition = resolvePrecondition(&m.Info, cfg.Precondition)
	if cfg.Kernel == "" {
		cfg.Kernel = KernelULA
	}
	return cfg, nil
}

// sampleFull walks in the model's own space from start (N rows) or, when
// start is nil, from cfg.Init; cfg is validated and its step size resolved.
func sampleFull(ctx context.Context, m *Model, cfg SampleConfig, start []float32) (*Result, error) {
	b, err := m.getBatch(cfg.N, runBatch(m, cfg))
	if err != nil {
		return nil, err
	}
	defer m.putBatch(b)
	w := newWalk(m, b, cfg)
	defer w.close()
	t0 := time.Now()
	var a *annealing
	err = runUnder(ctx, func(ro *ort.RunOptions) error {
		if cfg.Weighted {
			a = newAnnealing(w)
			return a.run(ctx, ro)
		}
		w.start(start)
		return w.runULA(ctx, ro)
	})
	if err != nil {
		return nil, err
	}
	res := w.result()
	if a != nil {
		a.fill(res)
	}
	res.Elapsed = time.Since(t0)
	return res, nil
}

// runBatch is the number of walkers per ONNX Runtime Run: cfg.RunBatch when
// set; on the CPU with several lanes, one share per lane of at most
// DefaultRunBatch walkers; the whole batch on CUDA (every Run copies
// host↔device) and for models heavy enough that one multi-threaded Run on
// the whole batch is best; else DefaultRunBatch.
func runBatch(m *Model, cfg SampleConfig) int {
	switch {
	case cfg.RunBatch > 0:
		return cfg.RunBatch
	case m.Lanes > 1 && cfg.Workers != 1:
		lanes := m.Lanes
		if cfg.Workers > 0 {
			lanes = min(lanes, cfg.Workers)
		}
		return min(DefaultRunBatch, (cfg.N+lanes-1)/lanes)
	case m.Device == DeviceCUDA || heavyModel(&m.Info):
		return cfg.N
	}
	return 0
}

// checkFinite fails with ErrDiverged when a sample is NaN or infinite.
func checkFinite(res *Result) error {
	for i, v := range res.Samples {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("serve: walker %d %w (coordinate %d is %v); try a smaller h than %g", i/res.Dim, ErrDiverged, i%res.Dim, v, res.StepSize)
		}
	}
	return nil
}

// heavyModelMACs is the per-walker work (multiply-adds of one evaluation)
// above which a CPU session with multi-threaded Runs (Model.Lanes = 1)
// evaluates the whole batch in one Run.
const heavyModelMACs = 1 << 16

// heavyModel reports whether one evaluation of a walker costs at least
// heavyModelMACs multiply-adds (models.Spec.MACs: MLP Σ w_l·w_{l+1},
// mixture d·modes, conv Σ out·in·K² per output pixel plus the linear layers).
func heavyModel(info *ModelInfo) bool {
	return info.Spec != nil && info.Spec.MACs() >= heavyModelMACs
}
