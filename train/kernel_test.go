package train

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// pcaTestConfig is a 3-D MLP run on two modes at ±2u, u = (1, 1, 0)/√2, std
// 0.5: the data covariance is 0.25·I + 4·u·uᵀ, so a rank-1 PCA base finds
// λ ≈ 4.25 along u.
func pcaTestConfig() Config {
	c := DefaultConfig()
	r := 2 / math.Sqrt2
	c.Model.Spec = models.Spec{Family: models.MLP, Dim: 3, Hidden: []int{8, 8}, Activation: models.SiLU, BaseStd: 1}
	c.Model.BaseFit, c.Model.BaseRank, c.Model.BaseEps = "pca", 1, 0.01
	c.Data.Teacher.Means = [][]float64{{-r, -r, 0}, {r, r, 0}}
	c.Data.Teacher.Masses = []float64{0.5, 0.5}
	c.Data.Teacher.Stds = []float64{0.5, 0.5}
	c.Data.N, c.Walkers.N = 4000, 4000
	c.Log.Plots = false
	return c
}

// model.base_fit pca: the fitted base is the data's mean and top principal
// component plus ε; the walkers start as exact samples of N(μ, Σ) with
// log Z_ref = (d/2)·log 2π + ½·log det Σ; and at θ0 (no iteration) the CE
// estimate equals log Z0 + mean over the data of ½(x − μ)ᵀΣ⁻¹(x − μ), from
// a dense Σ⁻¹ written out independently.
func TestPCABaseFitAndCEAtInit(t *testing.T) {
	c := pcaTestConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer[float64](c)
	if err != nil {
		t.Fatal(err)
	}
	s := tr.cfg.Model.Spec
	u := []float64{1 / math.Sqrt2, 1 / math.Sqrt2, 0}
	if s.BaseRank() != 1 || math.Abs(s.BaseVariances[0]-4.25) > 0.15 || math.Abs(s.BaseStd-0.1) > 1e-15 {
		t.Fatalf("fitted rank %d, λ %v, σ0 %v; want 1, about 4.25, 0.1", s.BaseRank(), s.BaseVariances, s.BaseStd)
	}
	dot := 0.0
	for i, v := range s.BaseVectors {
		dot += v * u[i]
	}
	if math.Abs(math.Abs(dot)-1) > 1e-3 {
		t.Fatalf("fitted direction %v, want ±%v", s.BaseVectors, u)
	}
	if err := tr.initFresh(); err != nil {
		t.Fatal(err)
	}
	// Σ and Σ⁻¹ of the fit, densely
	d, eps, lam, v := 3, s.BaseStd*s.BaseStd, s.BaseVariances[0], s.BaseVectors
	sig, inv := make([]float64, 9), make([]float64, 9)
	logDet := float64(d-1)*math.Log(eps) + math.Log(lam+eps)
	for a := 0; a < d; a++ {
		for b := 0; b < d; b++ {
			id := 0.0
			if a == b {
				id = 1
			}
			sig[a*d+b] = eps*id + lam*v[a]*v[b]
			inv[a*d+b] = (id-v[a]*v[b])/eps + v[a]*v[b]/(lam+eps)
		}
	}
	logZ0 := 0.5*float64(d)*math.Log(2*math.Pi) + 0.5*logDet
	if math.Abs(tr.pop.LogZRef-logZ0) > 1e-12 {
		t.Errorf("log Z_ref %v, closed form %v", tr.pop.LogZRef, logZ0)
	}
	n := float64(tr.pop.N())
	for a := 0; a < d; a++ {
		for b := 0; b < d; b++ {
			cov := 0.0
			for i := 0; i < tr.pop.N(); i++ {
				cov += (tr.pop.X[i*d+a] - s.BaseMean[a]) * (tr.pop.X[i*d+b] - s.BaseMean[b]) / n
			}
			se := math.Sqrt((sig[a*d+a]*sig[b*d+b] + sig[a*d+b]*sig[a*d+b]) / n)
			if math.Abs(cov-sig[a*d+b]) > 5*se {
				t.Errorf("walkers' covariance [%d,%d] = %v, want Σ = %v ± %v", a, b, cov, sig[a*d+b], se)
			}
		}
	}
	meanU := 0.0
	for i := 0; i < c.Data.N; i++ {
		x := tr.data[i*d : (i+1)*d]
		q := 0.0
		for a := 0; a < d; a++ {
			for b := 0; b < d; b++ {
				q += (x[a] - s.BaseMean[a]) * inv[a*d+b] * (x[b] - s.BaseMean[b])
			}
		}
		meanU += 0.5 * q / float64(c.Data.N)
	}
	// a data batch: the final row then averages U over the data with the
	// float64 reference (models), independently of the training graphs
	c.Iterations, c.Data.Batch = 0, 1000
	sum, err := Run(context.Background(), Options{Config: c, OutDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if sum.LogZEstimate == nil || math.Abs(*sum.LogZEstimate-logZ0) > 1e-12 {
		t.Errorf("log Ẑ at θ0 = %v, want %v", sum.LogZEstimate, logZ0)
	}
	if want := logZ0 + meanU; sum.CEEstimate == nil || math.Abs(*sum.CEEstimate-want) > 1e-9*math.Abs(want) {
		t.Errorf("CE estimate at θ0 = %v, analytic %v", fval(sum.CEEstimate), want)
	}
	bad := pcaTestConfig()
	bad.Model.BaseRank = 4
	if err := bad.Validate(); err == nil {
		t.Errorf("model.base_rank 4 > dim 3 accepted")
	}
}

// After MALA iterations with many rejections, the per-layer caches that the
// next parameter gradient reads are those of the walkers' current
// positions: the weighted parameter gradient from the caches equals the one
// from a fresh evaluation, for the MLP and the mixture.
func TestMALAKeepsCachesOfRejectedWalkers(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"mlp_pca", func() Config {
			c := pcaTestConfig()
			c.Data.N, c.Walkers.N = 500, 300
			return c
		}()},
		{"gmm", func() Config { c := gmmTestConfig(); c.Walkers.N = 300; return c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Walkers.Kernel, c.Walkers.StepSize, c.Walkers.ULASteps, c.Iterations = "mala", 2, 2, 3
			c.Optimizer.LR = 0.05
			tr, _ := runTrainer(t, c, nil)
			if tr.mala.Last <= 0.02 || tr.mala.Last >= 0.98 {
				t.Fatalf("acceptance %v: the test needs both accepted and rejected walkers", tr.mala.Last)
			}
			coef := make([]float64, tr.pop.N())
			for i := range coef {
				coef[i] = float64(i%7) - 3
			}
			grads := func() [][]float64 {
				g := make([][]float64, len(tr.ps.data))
				for k, d := range tr.ps.data {
					g[k] = make([]float64, len(d))
				}
				tr.pop.eval.weightedParamGrad(coef, g)
				return g
			}
			cached := grads()
			u := slices.Clone(tr.pop.U)
			if err := tr.pop.evaluate(); err != nil {
				t.Fatal(err)
			}
			fresh := grads()
			for i := range u {
				if math.Abs(u[i]-tr.pop.U[i]) > 1e-12*math.Max(1, math.Abs(u[i])) {
					t.Fatalf("walker %d: cached energy %v, fresh %v", i, u[i], tr.pop.U[i])
				}
			}
			for k := range cached {
				for i := range cached[k] {
					if math.Abs(cached[k][i]-fresh[k][i]) > 1e-10*math.Max(1, math.Abs(fresh[k][i])) {
						t.Fatalf("tensor %d[%d]: gradient from the caches %v, from a fresh evaluation %v", k, i, cached[k][i], fresh[k][i])
					}
				}
			}
		})
	}
}

// With walkers.kernel mala, metrics.csv has an accept column and
// summary.json the run's acceptance rate, and a run (PCA base, M = Σ,
// monitor walkers, resampling) stopped and resumed equals an uninterrupted
// one bit for bit, the fitted base included.
func TestMALARunResumesBitForBit(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cfg := pcaTestConfig()
			cfg.Dtype = dtype
			cfg.Walkers.Kernel, cfg.Walkers.StepSize, cfg.Walkers.ULASteps = "mala", 0.5, 2
			cfg.Data.N, cfg.Data.Batch, cfg.Walkers.N, cfg.Walkers.Monitor = 400, 100, 200, 64
			cfg.Resample.Threshold = 0.999
			cfg.Optimizer.LR = 0.03
			cfg.Iterations = 20
			cfg.Log.Every, cfg.Log.CheckpointEvery = 5, 1000
			dirA, dirB := t.TempDir(), t.TempDir()
			sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dirA, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Accept == nil || !(*sum.Accept > 0 && *sum.Accept < 1) || sum.Resamplings == 0 {
				t.Fatalf("summary accept %v, resamplings %d: want a rate in (0, 1) and resamplings", sum.Accept, sum.Resamplings)
			}
			rows := readMetricsRows(t, dirA)
			col := slices.Index(rows[0], "accept")
			if col < 0 || rows[1][col] != "" || rows[2][col] == "" {
				t.Fatalf("metrics.csv header %v: want an accept column, empty before the first iteration, then set", rows[0])
			}
			half := cfg
			half.Iterations = 7
			if _, err := Run(context.Background(), Options{Config: half, OutDir: dirB, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			sumB, err := Run(context.Background(), Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if *sumB.Accept != *sum.Accept {
				t.Errorf("acceptance %v resumed, %v uninterrupted", *sumB.Accept, *sum.Accept)
			}
			names := []string{"walkers", "energies", "grads", "log_weights", "param/w0", "param/w2", "monitor/walkers", "monitor/log_weights", "opt/m/0"}
			sameCheckpointFloats(t, dirA, dirB, names)
			pa, _, err := models.ReadParams(filepath.Join(dirA, models.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if pa.Spec.BaseRank() != 1 {
				t.Fatalf("weights file base rank %d, want 1", pa.Spec.BaseRank())
			}
		})
	}
}

func fval(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// The training graphs with a low-rank base (the fused base term of
// addQuadratic) against the float64 reference of models, for an MLP and a
// conv energy with random parameters.
func TestPCABaseGraphMatchesReference(t *testing.T) {
	conv := models.Spec{Family: models.Conv, Dim: 16, InputShape: []int{1, 4, 4}, Hidden: []int{5}, Activation: models.SiLU,
		Conv: []models.ConvLayer{{Out: 2, Kernel: 3, Stride: 2, Pad: 1, Activation: models.Tanh}}}
	for _, tc := range []struct {
		name string
		spec models.Spec
		k    int
	}{
		{"mlp", models.Spec{Family: models.MLP, Dim: 6, Hidden: []int{7, 5}, Activation: models.Softplus}, 3},
		{"conv", conv, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 3))
			d := tc.spec.Dim
			data := make([]float64, 300*d)
			for i := range data {
				data[i] = rng.NormFloat64() * (1 + float64(i%d)/float64(d))
			}
			spec := tc.spec
			if err := applyPCABase(&spec, data, tc.k, 0.05); err != nil {
				t.Fatal(err)
			}
			p, err := models.NewParams(spec)
			if err != nil {
				t.Fatal(err)
			}
			for k := range p.Tensors {
				for i := range p.Tensors[k].Data {
					p.Tensors[k].Data[i] = 0.5 * rng.NormFloat64()
				}
			}
			const n = 70
			x := data[:n*d]
			for _, dtype := range []string{"float64", "float32"} {
				u, g, err := EvalEnergy(p, x, n, dtype)
				if err != nil {
					t.Fatal(err)
				}
				tol := 1e-10
				if dtype == "float32" {
					tol = 2e-4
				}
				gr := make([]float64, d)
				for i := 0; i < n; i++ {
					want := p.Energy(x[i*d:(i+1)*d], gr)
					if math.Abs(u[i]-want) > tol*math.Max(1, math.Abs(want)) {
						t.Fatalf("%s: U[%d] = %v, reference %v", dtype, i, u[i], want)
					}
					for k := range gr {
						if math.Abs(g[i*d+k]-gr[k]) > tol*math.Max(1, math.Abs(gr[k])) {
							t.Fatalf("%s: ∇U[%d][%d] = %v, reference %v", dtype, i, k, g[i*d+k], gr[k])
						}
					}
				}
			}
		})
	}
}

// walkers.target_accept moves MALA's step size towards the target
// acceptance, the step is part of the checkpoint (a resumed run is bit for
// bit the uninterrupted one), and the key is refused without mala.
func TestMALAAdaptiveStep(t *testing.T) {
	cfg := pcaTestConfig()
	cfg.Walkers.Kernel, cfg.Walkers.StepSize, cfg.Walkers.ULASteps, cfg.Walkers.TargetAccept = "mala", 20, 2, 0.6
	cfg.Data.N, cfg.Data.Batch, cfg.Walkers.N = 400, 100, 200
	cfg.Optimizer.LR = 0.01
	cfg.Iterations = 40
	cfg.Log.Every, cfg.Log.CheckpointEvery = 5, 1000
	dirA, dirB := t.TempDir(), t.TempDir()
	sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dirA, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rows := readMetricsRows(t, dirA)
	col := slices.Index(rows[0], "accept")
	first, _ := strconv.ParseFloat(rows[2][col], 64)
	last, _ := strconv.ParseFloat(rows[len(rows)-1][col], 64)
	if sum.MALAStepSize == nil || !(*sum.MALAStepSize < cfg.Walkers.StepSize) || math.Abs(last-0.6) > 0.2 || math.Abs(last-0.6) >= math.Abs(first-0.6) {
		t.Fatalf("step size %v (from %v), acceptance %v after 5 iterations and %v at the end: want a smaller step and an acceptance near 0.6",
			fval(sum.MALAStepSize), cfg.Walkers.StepSize, first, last)
	}
	t.Logf("h %v → %.4g, acceptance %.3f → %.3f", cfg.Walkers.StepSize, *sum.MALAStepSize, first, last)
	half := cfg
	half.Iterations = 13
	if _, err := Run(context.Background(), Options{Config: half, OutDir: dirB, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	sumB, err := Run(context.Background(), Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if *sumB.MALAStepSize != *sum.MALAStepSize {
		t.Errorf("step size %v resumed, %v uninterrupted", *sumB.MALAStepSize, *sum.MALAStepSize)
	}
	names := []string{"walkers", "log_weights", "param/w0"}
	sameCheckpointFloats(t, dirA, dirB, names)
	for _, bad := range []struct {
		kernel string
		target float64
	}{{"ula", 0.6}, {"mala", 1}, {"mala", -0.1}} {
		c := pcaTestConfig()
		c.Walkers.Kernel, c.Walkers.TargetAccept = bad.kernel, bad.target
		var ke *config.KeyError
		if err := c.Validate(); !errors.As(err, &ke) || ke.Key != "walkers.target_accept" {
			t.Errorf("kernel %s, target %v: %v, want a KeyError for walkers.target_accept", bad.kernel, bad.target, err)
		}
	}
}

// readMetricsRows reads dir's metrics.csv, header first.
func readMetricsRows(t *testing.T, dir string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// sameCheckpointFloats fails unless the named sections of the latest
// checkpoints of an uninterrupted run (dirA) and a resumed one (dirB) are
// equal bit for bit.
func sameCheckpointFloats(t *testing.T, dirA, dirB string, names []string) {
	t.Helper()
	a := readFloats(t, filepath.Join(dirA, CheckpointDir, LatestCkpt), names...)
	b := readFloats(t, filepath.Join(dirB, CheckpointDir, LatestCkpt), names...)
	for _, n := range names {
		for i := range a[n] {
			if math.Float64bits(a[n][i]) != math.Float64bits(b[n][i]) {
				t.Fatalf("%s[%d]: uninterrupted %v, resumed %v", n, i, a[n][i], b[n][i])
			}
		}
	}
}
