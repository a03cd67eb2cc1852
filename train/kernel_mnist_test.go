package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
)

// mnistDriftData is 3000 MNIST training digits 2, 3, 6 at 4:2:1, pixels in
// [−1, 1], or a skip when the files are not installed.
func mnistDriftData(t *testing.T) []float64 {
	t.Helper()
	dir := filepath.Join("..", ".deps", "mnist")
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("MNIST is not in %s (make setup installs it): %v", dir, err)
	}
	im, err := datasets.LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if im, err = im.Subset([]int{2, 3, 6}, []int{1714, 857, 429}); err != nil {
		t.Fatal(err)
	}
	return im.Pixels
}

// driftRun is one run at fixed parameters (every learning rate 0) on the
// MNIST data with a fitted PCA base (rank 100, ε = 0.01) and an MLP whose
// last layer stays zero, so that ρ_θ is the base at every iteration: it
// returns log Ẑ − log Z0 and ESS/N after the iterations, the MALA
// acceptance, and the wall time, or err when the walkers diverged.
func driftRun(t *testing.T, base models.Spec, data []float64, kernel, precond string, h float64, walkers, iters int) (drift, ess, accept float64, sec float64, err error) {
	cfg := DefaultConfig()
	cfg.Model.Spec = base
	cfg.Model.BaseFit, cfg.Model.BaseRank, cfg.Model.BaseEps = "pca", base.BaseRank(), base.BaseStd*base.BaseStd
	cfg.Data.N, cfg.Data.Batch = len(data)/base.Dim, 64
	cfg.Walkers.N, cfg.Walkers.StepSize, cfg.Walkers.Kernel, cfg.Walkers.Preconditioner = walkers, h, kernel, precond
	cfg.Resample.Threshold = 0
	cfg.Iterations = iters
	cfg.Optimizer.GroupLR = map[string]float64{}
	for _, s := range base.ParamShapes() {
		cfg.Optimizer.GroupLR[s.Name] = 0
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := &trainer[float64]{cfg: cfg, mala: &malaState{Last: math.NaN()}, data: data, dataT: data, batch: cfg.Data.Batch}
	tr.cfg.Model.Spec = base // the fit, once for every run
	tr.pcg = rand.NewPCG(cfg.Seed, 0x6a61727a796e)
	tr.rng = rand.New(tr.pcg)
	if err := tr.initFresh(); err != nil {
		t.Fatal(err)
	}
	logZ0 := base.BaseLogZ()
	start := time.Now()
	err = tr.run(context.Background(), Hooks{Checkpoint: func(int) error { return nil }}, start)
	return tr.pop.LogZ() - logZ0, tr.pop.ESS(), tr.mala.Last, time.Since(start).Seconds(), err
}

// With every learning rate 0 on an MNIST-sized problem (d = 784, base_fit
// pca, 256 walkers, 200 iterations), log Ẑ stays within 0.1 nats of
// log Z0: exactly for MALA with work-only weights (no work, no weight
// change), and for the base-preconditioned ULA at h = 0.01, whose exact
// weights only carry its small discretisation error. JARZYN_MNIST_DRIFT=1
// also logs the drift of ULA (M = I) and preconditioned ULA at h = 0.01,
// 0.02, 0.05 (about a minute on two cores).
func TestMNISTDriftAtFixedParameters(t *testing.T) {
	if testing.Short() {
		t.Skip("about 10 s on two cores; not with -short")
	}
	data := mnistDriftData(t)
	base := models.Spec{Family: models.MLP, Dim: 784, Hidden: []int{32}, Activation: models.SiLU}
	t0 := time.Now()
	if err := applyPCABase(&base, data, 100, 0.01); err != nil {
		t.Fatal(err)
	}
	t.Logf("PCA fit (3000 images, rank 100): %.1f s", time.Since(t0).Seconds())
	const walkers, iters = 256, 200
	type run struct {
		kernel, precond string
		h               float64
		assert          bool
	}
	runs := []run{{"mala", "base", 0.1, true}, {"ula", "base", 0.01, true}}
	if os.Getenv("JARZYN_MNIST_DRIFT") == "1" {
		runs = append(runs, run{"mala", "base", 0.05, false}, run{"mala", "base", 0.2, false}, run{"mala", "none", 0.0015, false})
		for _, h := range []float64{0.01, 0.02, 0.05} {
			runs = append(runs, run{"ula", "none", h, false})
			if h != 0.01 {
				runs = append(runs, run{"ula", "base", h, false})
			}
		}
	}
	for _, r := range runs {
		drift, ess, acc, sec, err := driftRun(t, base, data, r.kernel, r.precond, r.h, walkers, iters)
		if err != nil {
			t.Logf("%s, preconditioner %s, h=%g: diverged (%v) after %.1f s", r.kernel, r.precond, r.h, err, sec)
			if r.assert {
				t.Errorf("%s h=%g: %v", r.kernel, r.h, err)
			}
			continue
		}
		t.Logf("%s, preconditioner %s, h=%g: log Ẑ − log Z0 = %.4f, ESS/N %.3f, acceptance %.3f, %.1f s for %d iterations", r.kernel, r.precond, r.h, drift, ess, acc, sec, iters)
		if r.assert && !(math.Abs(drift) <= 0.1) {
			t.Errorf("%s, preconditioner %s, h=%g: log Ẑ drifted %.4f from log Z0 at fixed parameters, want within 0.1", r.kernel, r.precond, r.h, drift)
		}
		if r.kernel == "mala" && drift != 0 {
			t.Errorf("MALA at fixed parameters: log Ẑ moved by %v, want exactly 0 (the work term is 0)", drift)
		}
	}
}

// At θ0 on MNIST-sized data (3000 digits 2/3/6, d = 784, a rank-100 PCA
// base with ε = 0.01, an MLP whose last layer is zero), log Ẑ is log Z0 and
// the CE estimate is the analytic cross-entropy of N(μ, Σ) on the data:
// log Z0 = (d/2)·log 2π + ½[(d − k)·log ε + Σ_j log(λ_j + ε)] plus the mean
// of ½(x − μ)ᵀΣ⁻¹(x − μ), both written out here in float64 from the fitted
// μ, v_j and λ_j, with Σ⁻¹ = (I − VVᵀ)/ε + V·diag(1/(λ_j + ε))·Vᵀ.
func TestMNISTCEAtInit(t *testing.T) {
	c := DefaultConfig()
	c.Name, c.Dtype, c.Iterations = "mnist-ce0", "float32", 0
	c.Model.Spec = models.Spec{Family: models.MLP, Dim: 784, Hidden: []int{32}, Activation: models.SiLU, BaseStd: 1}
	c.Model.BaseFit, c.Model.BaseRank, c.Model.BaseEps = "pca", 100, 0.01
	c.Data = DataConfig{Kind: DataMNIST, Path: mnistDir(t), Classes: []int{2, 3, 6}, Counts: []int{1714, 857, 429}, Batch: 128}
	c.Walkers.N, c.Walkers.Kernel, c.Walkers.Preconditioner, c.Walkers.StepSize = 64, "mala", "base", 0.05
	c.Log.Plots = false
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer[float32](c)
	if err != nil {
		t.Fatal(err)
	}
	s := tr.cfg.Model.Spec
	d, k, eps := 784, s.BaseRank(), s.BaseStd*s.BaseStd
	if k != 100 || math.Abs(eps-0.01) > 1e-15 {
		t.Fatalf("fitted rank %d, ε %v; want 100, 0.01", k, eps)
	}
	logZ0 := 0.5 * float64(d-k) * math.Log(eps)
	for _, l := range s.BaseVariances {
		logZ0 += 0.5 * math.Log(l+eps)
	}
	logZ0 += 0.5 * float64(d) * math.Log(2*math.Pi)
	n := len(tr.data) / d
	meanQ := 0.0
	r := make([]float64, d)
	for i := 0; i < n; i++ {
		q := 0.0
		for a := 0; a < d; a++ {
			r[a] = tr.data[i*d+a] - s.BaseMean[a]
			q += r[a] * r[a] / eps
		}
		for j, l := range s.BaseVariances {
			cj := 0.0
			for a := 0; a < d; a++ {
				cj += s.BaseVectors[j*d+a] * r[a]
			}
			q += cj * cj * (1/(l+eps) - 1/eps)
		}
		meanQ += 0.5 * q / float64(n)
	}
	sum, err := Run(context.Background(), Options{Config: c, OutDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if sum.LogZEstimate == nil || math.Abs(*sum.LogZEstimate-logZ0) > 1e-9*math.Abs(logZ0) {
		t.Errorf("log Ẑ at θ0 = %v, closed form %v", fval(sum.LogZEstimate), logZ0)
	}
	want := logZ0 + meanQ
	if sum.CEEstimate == nil || math.Abs(*sum.CEEstimate-want) > 1e-6*math.Abs(want) {
		t.Errorf("CE estimate at θ0 = %v, analytic %v", fval(sum.CEEstimate), want)
	}
	t.Logf("MNIST 2/3/6 (%d images), PCA rank %d, ε %g: log Z0 = %.6f, CE at θ0 = %.6f (analytic %.6f)", n, k, eps, logZ0, fval(sum.CEEstimate), want)
}
