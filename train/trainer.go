package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
)

// ErrInterrupted is returned when the context is cancelled; a checkpoint has
// been written and the run can be resumed.
var ErrInterrupted = errors.New("train: interrupted")

// trainer holds the whole state of a run for one element type.
type trainer[T Float] struct {
	cfg           Config
	teacher       datasets.Teacher
	data          []float64 // n×d
	labels        []int     // class (teacher mode) of each data point
	dataT         []T
	ps            *paramSet[T]
	opt           *optimizer[T]
	pop, mon      *population[T]
	pg            *paramGrad[T]
	grads         [][]T
	pcg           *rand.PCG
	rng           *rand.Rand
	iter          int
	elapsed       float64 // seconds spent before this process
	batch         int
	logRhoStar    float64 // mean log ρ*(x) over the data set
	lastMeanUData float64
	lastGradNorm  float64
	snap          snapshot[T]
	negP          []float64 // −p: the walker coefficients of the fused gradient
	mala          *malaState
	vs            variantState[T] // the variants' state (variants_*.go)
}

// snapshot is the small part of the state at the start of an iteration, kept
// so that a failure mid-iteration can write the last good checkpoint.
type snapshot[T Float] struct {
	params              [][]T
	m, v                [][]float64
	t                   int
	A, monA             []float64
	rng                 []byte
	logZref, monLogZref float64
	// positions, energies and gradients per population, kept only with
	// several ULA steps per update (with one, the old buffers hold them)
	X [][]T
	U [][]float64
	G [][]T
}

func (c *Config) walkerInit() string {
	if c.Walkers.Init == "auto" {
		if c.Method == Jarzynski {
			return "model"
		}
		return "data"
	}
	return c.Walkers.Init
}

func (c *Config) lrScale() float64 {
	if c.Method == CD {
		return c.CD.LRMultiplier
	}
	return 1
}

func newTrainer[T Float](cfg Config) (*trainer[T], error) {
	t := &trainer[T]{cfg: cfg, mala: &malaState{Last: math.NaN()}}
	if cfg.Data.fromFiles() {
		t.cfg.Data.normalizeFileData()
		cfg = t.cfg
	}
	var err error
	if t.teacher, t.data, t.labels, t.logRhoStar, err = loadData(cfg); err != nil {
		return nil, err
	}
	d := cfg.Model.Dim
	t.dataT = make([]T, len(t.data))
	for i, v := range t.data {
		t.dataT[i] = T(v)
	}
	if cfg.Model.BaseFit == "data" {
		t.cfg.Model.BaseMean, t.cfg.Model.BaseStd = fitBase(t.data, d)
	}
	if cfg.Model.BaseFit == "pca" {
		if err := applyPCABase(&t.cfg.Model.Spec, t.data, cfg.Model.BaseRank, cfg.Model.BaseEps); err != nil {
			return nil, err
		}
	}
	t.pcg = rand.NewPCG(cfg.Seed, 0x6a61727a796e)
	t.rng = rand.New(t.pcg)
	t.batch = cfg.Data.Batch
	if t.batch == 0 {
		t.batch = cfg.Data.N
	}
	return t, nil
}

// initFresh draws θ0, the walkers as exact samples of ρ_θ0 (or data), and
// log Z_θ0.
func (t *trainer[T]) initFresh() error {
	cfg := t.cfg
	var p *models.Params
	var err error
	switch cfg.Model.Family {
	case models.GMM:
		ov := map[[2]int]float64{}
		for _, o := range cfg.Model.MeanOverrides {
			ov[[2]int{int(o[0]), int(o[1])}] = o[2]
		}
		p, err = models.InitGMM(cfg.Model.Spec, cfg.Model.MeanScale, ov, t.rng)
	default: // mlp, conv
		p, err = models.Init(cfg.Model.Spec, t.rng)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := t.build(p); err != nil {
		return err
	}
	logZ0, ok := p.ExactLogZ()
	if !ok {
		return fmt.Errorf("train: log Z at initialisation is not known in closed form")
	}
	for _, pop := range t.pops() {
		if cfg.walkerInit() == "data" && pop == t.pop {
			t.walkersFromData(pop)
		} else {
			sampleModel(p, pop.X, t.rng)
		}
		pop.LogZRef = logZ0
		if err := pop.evaluate(); err != nil {
			return err
		}
	}
	return nil
}

// build creates the graphs, buffers and optimizer for parameters p.
func (t *trainer[T]) build(p *models.Params) error {
	cfg := t.cfg
	t.ps = newParamSet[T](p)
	var err error
	if t.opt, err = newOptimizer[T](cfg.Optimizer, cfg.Model.Spec, cfg.lrScale()); err != nil {
		return err
	}
	if t.pop, err = newPopulation[T](t.ps, cfg.Walkers.N, true, deviceVMOpts(cfg.Device)...); err != nil {
		return err
	}
	if cfg.Walkers.Monitor > 0 {
		if t.mon, err = newPopulation[T](t.ps, cfg.Walkers.Monitor, false, deviceVMOpts(cfg.Device)...); err != nil {
			return err
		}
	}
	// data term only: the walker term comes from the walker machine's caches
	if t.pg, err = newRegParamGrad[T](t.ps, t.batch, cfg.Loss.EnergyReg, deviceVMOpts(cfg.Device)...); err != nil {
		return err
	}
	if t.batch == cfg.Data.N {
		copy(t.pg.Data, t.dataT)
	}
	if err := t.setPreconditioner(); err != nil {
		return err
	}
	t.negP = make([]float64, cfg.Walkers.N)
	if err := t.buildVariants(); err != nil {
		return err
	}
	t.grads = make([][]T, len(t.ps.data))
	t.snap.params = make([][]T, len(t.ps.data))
	for k, d := range t.ps.data {
		t.grads[k] = make([]T, len(d))
		t.snap.params[k] = make([]T, len(d))
	}
	return nil
}

func (t *trainer[T]) pops() []*population[T] {
	if t.mon != nil {
		return []*population[T]{t.pop, t.mon}
	}
	return []*population[T]{t.pop}
}

// sampleModel writes exact samples of ρ_θ into x; θ must have a closed-form
// sampler (any GMM; an MLP whose last layer is zero).
func sampleModel[T Float](p *models.Params, x []T, rng *rand.Rand) {
	d := p.Spec.Dim
	n := len(x) / d
	switch p.Spec.Family {
	case models.GMM:
		masses := p.ModeMasses()
		a := p.Get("means").Data
		for i := 0; i < n; i++ {
			u, m := rng.Float64(), len(masses)-1
			acc := 0.0
			for j, w := range masses {
				acc += w
				if u < acc {
					m = j
					break
				}
			}
			for k := 0; k < d; k++ {
				x[i*d+k] = T(a[m*d+k] + rng.NormFloat64())
			}
		}
	default:
		if p.Spec.BaseRank() > 0 {
			sampleBase(p.Spec, x, rng)
			return
		}
		mu, s := p.Spec.Mu0(), p.Spec.BaseStd
		for i := 0; i < n; i++ {
			for k := 0; k < d; k++ {
				x[i*d+k] = T(mu[k] + s*rng.NormFloat64())
			}
		}
	}
}

func (t *trainer[T]) walkersFromData(pop *population[T]) {
	d := t.cfg.Model.Dim
	for i := 0; i < pop.N(); i++ {
		j := t.rng.IntN(t.cfg.Data.N)
		copy(pop.X[i*d:(i+1)*d], t.dataT[j*d:(j+1)*d])
	}
}

// row is one line of metrics.csv.
type row struct {
	Iter        int
	Seconds     float64
	CE, LogZ    float64
	ESS         float64
	Resamplings int
	MeanUData   float64
	MeanUWalk   float64
	GradNorm    float64
	MonLogZ     float64
	MonCE       float64
	MonESS      float64
	Accept      float64         // MALA acceptance rate of the last iteration; NaN with ULA
	Eval        *Evaluation     // nil when not evaluated at this row
	Classes     *ClassFractions // walkers' class fractions (log.classifier); nil when not labelled at this row
}

// Hooks receive progress from a running trainer.
type Hooks struct {
	// Row is called for every metrics row.
	Row func(r row, total int)
	// Checkpoint is called to persist the state at the start of iteration iter.
	Checkpoint func(iter int) error
}

// run trains until cfg.Iterations or ctx is done.
func (t *trainer[T]) run(ctx context.Context, h Hooks, start time.Time) error {
	cfg := t.cfg
	d := cfg.Model.Dim
	hStep := cfg.Walkers.StepSize
	weighted := cfg.Method == Jarzynski
	if err := t.warmUp(ctx, h); err != nil {
		return err
	}
	for t.iter < cfg.Iterations {
		if ctx.Err() != nil {
			if err := h.Checkpoint(t.iter); err != nil {
				return err
			}
			return ErrInterrupted
		}
		k := t.iter
		// the state at the start of the iteration, before the CD reset, so
		// that an iteration cancelled midway resumes exactly
		t.takeSnapshot()
		prevMeanU, prevNorm := t.lastMeanUData, t.lastGradNorm
		if cfg.Method == CD && k > 0 && k%cfg.CD.ResetEvery == 0 {
			t.walkersFromData(t.pop)
			if err := t.pop.evaluate(); err != nil {
				return err
			}
		}
		// 1–2: weighted parameter gradient at (θ_k, X_k); the walker
		// coefficients (loss subset, regulariser) in variants_loss.go
		t.walkerCoefficients(weighted)
		if t.batch < cfg.Data.N {
			for b := 0; b < t.batch; b++ {
				j := t.rng.IntN(cfg.Data.N)
				copy(t.pg.Data[b*d:(b+1)*d], t.dataT[j*d:(j+1)*d])
			}
		}
		meanUData, err := t.pg.run(t.grads)
		if err != nil {
			return err
		}
		// the walker term −Σ p_i ∂θU(X_i), from the caches of the last evaluation
		t.pop.eval.weightedParamGrad(t.negP, t.grads)
		t.lastMeanUData = meanUData
		norm := t.opt.gradNorm(t.grads)
		t.lastGradNorm = norm
		if math.IsNaN(norm) || math.IsInf(norm, 0) || math.IsNaN(meanUData) || math.IsInf(meanUData, 0) {
			return t.fail(h, fmt.Errorf("the loss gradient is %v (mean data energy %v)", norm, meanUData))
		}
		if k%cfg.Log.Every == 0 && h.Row != nil {
			// evaluation rows need exact quantities: analytic (GMM) or 2-D
			// quadrature; other models get them only in the final row, which
			// averages U over the whole data set once
			evalRow := k%(cfg.Log.Every*cfg.Log.EvalEvery) == 0 && (cfg.Model.Family == models.GMM || cfg.Model.Dim == 2)
			h.Row(t.metrics(start, evalRow), cfg.Iterations)
		}
		// 3–4: ULA at the old parameters, update θ, evaluate at θ_{k+1},
		// reweight; or MALA with work-only weights (kernel.go)
		if cfg.Walkers.Kernel == "mala" {
			if err := t.malaMove(ctx, h, k, weighted, prevMeanU, prevNorm); err != nil {
				return err
			}
		}
		// a random subset of the walkers (walkers.move, variants_moves.go)
		subset := cfg.subsetMoves()
		if subset {
			if err := t.subsetMove(ctx, h, k, weighted, prevMeanU, prevNorm); err != nil {
				return err
			}
		}
		for j := 0; j < cfg.Walkers.ULASteps && cfg.Walkers.Kernel != "mala" && !subset; j++ {
			if j > 0 && ctx.Err() != nil {
				// cancelled between ULA steps (walkers.ula_steps can be
				// large): checkpoint the start of this iteration, which
				// the snapshot holds in full with several steps
				t.restoreSnapshot()
				t.lastMeanUData, t.lastGradNorm = prevMeanU, prevNorm
				if err := h.Checkpoint(t.iter); err != nil {
					return err
				}
				return ErrInterrupted
			}
			for _, pop := range t.pops() {
				t.move(pop, hStep, t.rng.Uint64())
			}
			if j == cfg.Walkers.ULASteps-1 {
				t.opt.step(t.ps.data, t.grads, t.lrFactor(k))
			}
			for _, pop := range t.pops() {
				if err := pop.evaluate(); err != nil {
					return err
				}
				if weighted || pop == t.mon {
					pop.Reweight(hStep)
				}
			}
		}
		for _, pop := range t.pops() {
			if err := pop.CheckFinite(weighted || pop == t.mon); err != nil {
				t.restoreSnapshot()
				return t.fail(h, err)
			}
		}
		// 6: resampling (resample.criterion, variants_resample.go)
		t.resample(k, weighted)
		t.iter++
		if t.iter%cfg.Log.CheckpointEvery == 0 || t.iter == cfg.Iterations {
			if err := h.Checkpoint(t.iter); err != nil {
				return err
			}
		}
	}
	return nil
}

// lrFactor is the learning-rate schedule at iteration k: 1 (constant), or a
// linear ramp from 1 at k = 0 to optimizer.final_lr_fraction at the last
// iteration.
func (t *trainer[T]) lrFactor(k int) float64 {
	o := t.cfg.Optimizer
	if o.Schedule != "linear" || t.cfg.Iterations <= 1 {
		return 1
	}
	f := float64(k) / float64(t.cfg.Iterations-1)
	return 1 - (1-o.FinalLRFraction)*f
}

func (t *trainer[T]) fail(h Hooks, cause error) error {
	if err := h.Checkpoint(t.iter); err != nil {
		return fmt.Errorf("train: non-finite values at iteration %d (%v); writing the last good checkpoint also failed: %w", t.iter, cause, err)
	}
	return fmt.Errorf("train: non-finite values at iteration %d: %v; the last good state (start of iteration %d) is checkpointed", t.iter, cause, t.iter)
}

func (t *trainer[T]) takeSnapshot() {
	s := &t.snap
	for k, d := range t.ps.data {
		copy(s.params[k], d)
	}
	s.m = cloneFloats2(t.opt.m, s.m)
	s.v = cloneFloats2(t.opt.v, s.v)
	s.t = t.opt.t
	s.A = append(s.A[:0], t.pop.A...)
	s.logZref = t.pop.LogZRef
	if t.mon != nil {
		s.monA = append(s.monA[:0], t.mon.A...)
		s.monLogZref = t.mon.LogZRef
	}
	s.rng, _ = t.pcg.MarshalBinary()
	if t.cfg.Walkers.ULASteps > 1 || t.cfg.Walkers.Kernel == "mala" || t.cfg.subsetMoves() {
		pops := t.pops()
		if len(s.X) != len(pops) {
			s.X, s.U, s.G = make([][]T, len(pops)), make([][]float64, len(pops)), make([][]T, len(pops))
		}
		for i, pop := range pops {
			s.X[i] = append(s.X[i][:0], pop.X...)
			s.U[i] = append(s.U[i][:0], pop.U...)
			s.G[i] = append(s.G[i][:0], pop.G...)
		}
	}
}

// restoreSnapshot undoes a failed iteration: parameters, optimizer, weights
// and RNG from the snapshot; positions, energies and gradients from the old
// buffers (one ULA step) or the snapshot (several).
func (t *trainer[T]) restoreSnapshot() {
	s := &t.snap
	for k, d := range t.ps.data {
		copy(d, s.params[k])
	}
	t.opt.m = cloneFloats2(s.m, t.opt.m)
	t.opt.v = cloneFloats2(s.v, t.opt.v)
	t.opt.t = s.t
	for i, pop := range t.pops() {
		if s.X != nil {
			copy(pop.X, s.X[i])
			copy(pop.U, s.U[i])
			copy(pop.G, s.G[i])
			continue
		}
		pop.Undo()
	}
	copy(t.pop.A, s.A)
	t.pop.LogZRef = s.logZref
	if t.mon != nil {
		copy(t.mon.A, s.monA)
		t.mon.LogZRef = s.monLogZref
	}
	t.pcg.UnmarshalBinary(s.rng)
}

func cloneFloats2(src, dst [][]float64) [][]float64 {
	if len(dst) != len(src) {
		dst = make([][]float64, len(src))
	}
	for k := range src {
		dst[k] = append(dst[k][:0], src[k]...)
	}
	return dst
}

// metrics assembles the row for the current state (start of iteration t.iter).
func (t *trainer[T]) metrics(start time.Time, eval bool) row {
	r := row{Iter: t.iter, Seconds: t.elapsed + time.Since(start).Seconds(), Resamplings: t.pop.Resamplings,
		MeanUData: t.lastMeanUData, GradNorm: t.lastGradNorm, ESS: t.pop.ESS(),
		LogZ: math.NaN(), CE: math.NaN(), MonLogZ: math.NaN(), MonCE: math.NaN(), MonESS: math.NaN(), Accept: t.mala.Last}
	if t.cfg.Method == Jarzynski {
		r.LogZ = t.pop.LogZ()
		r.CE = r.LogZ + r.MeanUData
	} else {
		r.ESS = 1
	}
	s := 0.0
	for _, u := range t.pop.U {
		s += u
	}
	r.MeanUWalk = s / float64(t.pop.N())
	if t.mon != nil {
		r.MonLogZ = t.mon.LogZ()
		r.MonCE = r.MonLogZ + r.MeanUData
		r.MonESS = t.mon.ESS()
	}
	if eval || t.cfg.Model.Family == models.GMM {
		ev := evaluate(t.ps.params(), t.teacher, t.data, t.cfg.Log.Grid, r.MeanUData, t.logRhoStar, t.batch == t.cfg.Data.N)
		// rows with an evaluation use the whole data set's mean energy, so
		// their CE estimates carry no data-batch noise
		r.MeanUData = ev.MeanUData
		r.CE = r.LogZ + r.MeanUData
		r.MonCE = r.MonLogZ + r.MeanUData
		ev.EstimatedKL = r.CE + t.logRhoStar
		if ev.ModeMasses == nil {
			pop := t.pop
			if t.mon != nil {
				pop = t.mon
			}
			ev.ModeMasses = walkerModeMasses(t.teacher, pop.Population)
		}
		r.Eval = &ev
	} else if t.cfg.Model.Family != models.GMM && t.cfg.Model.Dim != 2 {
		// no exact evaluation exists: every row still gets the walkers'
		// weighted mass per teacher mode (cheap), so metrics.csv shows it
		// over training
		pop := t.pop
		if t.mon != nil {
			pop = t.mon
		}
		r.Eval = &Evaluation{ModeMasses: walkerModeMasses(t.teacher, pop.Population), LogZ: math.NaN(),
			MeanUData: r.MeanUData, CE: math.NaN(), ExactKL: math.NaN(), EstimatedKL: math.NaN()}
	}
	return r
}

// fitBase is the isotropic Gaussian fitted to data (n×d): the
// per-coordinate mean and the square root of the mean per-coordinate
// variance (model.base_fit: data).
func fitBase(data []float64, d int) (mu []float64, sd float64) {
	n := len(data) / d
	mu = make([]float64, d)
	for i := 0; i < n; i++ {
		for k, v := range data[i*d : (i+1)*d] {
			mu[k] += v
		}
	}
	for k := range mu {
		mu[k] /= float64(n)
	}
	ss := 0.0
	for i := 0; i < n; i++ {
		for k, v := range data[i*d : (i+1)*d] {
			ss += (v - mu[k]) * (v - mu[k])
		}
	}
	return mu, math.Sqrt(ss / float64(n*d))
}
