package serve

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// moments returns the (weighted, if logW is non-nil) mean and covariance of
// n samples of dimension d, and the effective sample size of the weights.
func moments(x []float32, logW []float64, n, d int) (mean []float64, cov [][]float64, ess float64) {
	w := make([]float64, n)
	if logW == nil {
		for i := range w {
			w[i] = 1 / float64(n)
		}
	} else {
		smc.Normalize(logW, w)
	}
	mean = make([]float64, d)
	for i := 0; i < n; i++ {
		for k := 0; k < d; k++ {
			mean[k] += w[i] * float64(x[i*d+k])
		}
	}
	cov = make([][]float64, d)
	for k := range cov {
		cov[k] = make([]float64, d)
	}
	s2 := 0.0
	for i := 0; i < n; i++ {
		s2 += w[i] * w[i]
		for k := 0; k < d; k++ {
			for l := 0; l < d; l++ {
				cov[k][l] += w[i] * (float64(x[i*d+k]) - mean[k]) * (float64(x[i*d+l]) - mean[l])
			}
		}
	}
	return mean, cov, 1 / s2
}

// checkGaussian compares sample moments with N(a, v·I) within k standard
// errors (mean: sqrt(v/ess); variance: v·sqrt(2/ess); covariance: v/sqrt(ess)).
func checkGaussian(t *testing.T, x []float32, logW []float64, n int, a []float64, v, k float64) {
	t.Helper()
	d := len(a)
	mean, cov, ess := moments(x, logW, n, d)
	for i := 0; i < d; i++ {
		if se := math.Sqrt(v / ess); math.Abs(mean[i]-a[i]) > k*se {
			t.Errorf("mean[%d] = %.4f, want %.4f ± %.4f (%g SE, ESS %.0f)", i, mean[i], a[i], k*se, k, ess)
		}
		for j := 0; j < d; j++ {
			want, se := 0.0, v/math.Sqrt(ess)
			if i == j {
				want, se = v, v*math.Sqrt(2/ess)
			}
			if math.Abs(cov[i][j]-want) > k*se {
				t.Errorf("cov[%d][%d] = %.4f, want %.4f ± %.4f (ESS %.0f)", i, j, cov[i][j], want, k*se, ess)
			}
		}
	}
}

func TestSampleULAMatchesGaussian(t *testing.T) {
	g := testGaussian
	m := loadGaussian(t, g)
	// parts of the default size, one part (the whole batch) and parts that
	// do not divide N
	for _, rb := range []int{0, 8192, 3000} {
		cfg := SampleConfig{N: 8192, Steps: 1000, StepSize: 0.01, Seed: 7, RunBatch: rb}
		res, err := Sample(context.Background(), m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.N != cfg.N || res.Dim != 2 || len(res.Samples) != cfg.N*2 || res.Weighted || res.LogWeights != nil {
			t.Fatalf("result shape: N=%d Dim=%d len=%d weighted=%v", res.N, res.Dim, len(res.Samples), res.Weighted)
		}
		// ULA's stationary law for this energy is N(a, I/(1−h/2)).
		checkGaussian(t, res.Samples, nil, cfg.N, g.a, 1/(1-cfg.StepSize/2), 4)
		if res.WalkerSteps != int64(cfg.N*cfg.Steps) || res.WalkerStepsPerSecond() <= 0 {
			t.Errorf("walker steps %d, rate %g", res.WalkerSteps, res.WalkerStepsPerSecond())
		}
	}
}

// logZTolerance is k standard errors of log Ẑ for weights with effective
// sample size ess out of n: Var(log Ẑ) ≈ 1/ESS − 1/N.
func logZTolerance(ess float64, n int, k float64) float64 {
	return k * math.Sqrt(math.Max(1/ess-1/float64(n), 1/float64(n)))
}

func TestSampleWeightedMatchesClosedForm(t *testing.T) {
	g := testGaussian
	m := loadGaussian(t, g)
	for _, tc := range []struct {
		name      string
		h         float64
		steps     int
		extra     int
		threshold float64
		kernel    Kernel
	}{
		{"small_h", 0.02, 200, 0, 0, ""},
		{"large_h_biased_ula", 0.5, 100, 20, 0, ""},
		{"resampling", 0.1, 200, 0, 0.5, ""},
		{"mala_large_h", 0.8, 100, 20, 0, KernelMALA},
		{"mala_resampling", 0.5, 100, 0, 0.95, KernelMALA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SampleConfig{N: 8192, Steps: tc.steps, ExtraSteps: tc.extra, StepSize: tc.h, Seed: 11, Weighted: true, ResampleThreshold: tc.threshold, Kernel: tc.kernel}
			res, err := Sample(context.Background(), m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Weighted || len(res.LogWeights) != cfg.N {
				t.Fatalf("weighted result without log-weights")
			}
			if res.ESSFraction <= 0 || res.ESSFraction > 1 || math.Abs(res.ESS-res.ESSFraction*float64(cfg.N)) > 1e-9 {
				t.Fatalf("ESS %g, fraction %g", res.ESS, res.ESSFraction)
			}
			tol := logZTolerance(res.ESS, cfg.N, 4)
			if tc.threshold > 0 {
				tol *= 2 // resampling adds variance the formula ignores
			}
			t.Logf("log Ẑ = %.4f, exact %.4f, tol %.4f, ESS/N %.3f, resamplings %d, acceptance %.3f", res.LogZ, g.logZ(), tol, res.ESSFraction, res.Resamplings, res.Accept)
			if math.Abs(res.LogZ-g.logZ()) > tol {
				t.Errorf("log Ẑ = %.4f, want %.4f ± %.4f", res.LogZ, g.logZ(), tol)
			}
			if tc.threshold > 0 && res.Resamplings == 0 {
				t.Errorf("no resampling happened at threshold %g", tc.threshold)
			}
			checkGaussian(t, res.Samples, res.LogWeights, cfg.N, g.a, 1, 4)
			if tc.h >= 0.5 && tc.kernel != KernelMALA {
				// the same walkers without their weights carry ULA's bias:
				// variance 1/(1−h/2) instead of 1
				_, cov, _ := moments(res.Samples, nil, cfg.N, 2)
				if se := math.Sqrt(2 / float64(cfg.N)); cov[0][0]-1 < 10*se {
					t.Errorf("unweighted variance %.3f is not visibly biased at h=%g; the test does not show what the weights remove", cov[0][0], tc.h)
				}
			}
		})
	}
}

func TestSampleDeterministic(t *testing.T) {
	m := loadGaussian(t, testGaussian)
	for _, weighted := range []bool{false, true} {
		base := SampleConfig{N: 5000, Steps: 20, Seed: 3, Weighted: weighted, ResampleThreshold: 0.9}
		run := func(seed uint64, workers int) *Result {
			c := base
			c.Seed, c.Workers = seed, workers
			r, err := Sample(context.Background(), m, c)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		a, b, c, other := run(3, 1), run(3, 4), run(3, 0), run(4, 0)
		base.RunBatch = 777
		d, e := run(3, 1), run(3, 3)
		if !slices.Equal(d.Samples, e.Samples) || !slices.Equal(d.LogWeights, e.LogWeights) {
			t.Errorf("weighted=%v, run batch 777: different workers gave different results", weighted)
		}
		if !slices.Equal(a.Samples, d.Samples) || !slices.Equal(a.LogWeights, d.LogWeights) {
			t.Errorf("weighted=%v: run batch 777 and the default gave different results (the noise follows fixed 64-walker chunks)", weighted)
		}
		if !slices.Equal(a.Samples, b.Samples) || !slices.Equal(a.Samples, c.Samples) {
			t.Errorf("weighted=%v: same seed, different workers gave different samples", weighted)
		}
		if !slices.Equal(a.LogWeights, b.LogWeights) || a.LogZ != b.LogZ && !(math.IsNaN(a.LogZ) && math.IsNaN(b.LogZ)) {
			t.Errorf("weighted=%v: same seed gave different weights or log Ẑ", weighted)
		}
		if slices.Equal(a.Samples, other.Samples) {
			t.Errorf("weighted=%v: seeds 3 and 4 gave the same samples", weighted)
		}
	}
}

func TestSampleInitUniform(t *testing.T) {
	g := testGaussian
	m := loadGaussian(t, g)
	res, err := Sample(context.Background(), m, SampleConfig{N: 1000, Steps: 0, Init: InitUniform, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range res.Samples {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < float32(g.min) || hi > float32(g.max) || hi-lo < float32(0.9*(g.max-g.min)) {
		t.Errorf("uniform init spans [%g, %g], want inside and filling [%g, %g]", lo, hi, g.min, g.max)
	}
}

func TestSampleCancel(t *testing.T) {
	m := loadGaussian(t, testGaussian)
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	cfg := SampleConfig{N: 100, Steps: 1_000_000, Progress: func(done, total int) {
		if steps = done; done == 10 {
			cancel()
		}
	}}
	_, err := Sample(ctx, m, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if steps != 10 {
		t.Errorf("sampler ran %d steps after cancellation at 10", steps-10)
	}
}

func TestSampleConfigValidate(t *testing.T) {
	info := models.TrainingInfo{StepSize: 0.1, DataMin: -1, DataMax: 1}
	noRange := models.TrainingInfo{StepSize: 0.1}
	noH := models.TrainingInfo{DataMin: -1, DataMax: 1}
	for _, tc := range []struct {
		cfg   SampleConfig
		info  models.TrainingInfo
		field string
	}{
		{SampleConfig{N: 0, Steps: 1}, info, "n"},
		{SampleConfig{N: 1, Steps: -1}, info, "steps"},
		{SampleConfig{N: 1, Steps: 0, Weighted: true}, info, "steps"},
		{SampleConfig{N: 1, Steps: 1, ExtraSteps: -1, Weighted: true}, info, "extra_steps"},
		{SampleConfig{N: 1, Steps: 1, ExtraSteps: 2}, info, "extra_steps"},
		{SampleConfig{N: 1, Steps: 1, StepSize: -1}, info, "h"},
		{SampleConfig{N: 1, Steps: 1, StepSize: math.NaN()}, info, "h"},
		{SampleConfig{N: 1, Steps: 1, StepSize: math.Inf(1)}, info, "h"},
		{SampleConfig{N: 1, Steps: 1}, noH, "h"},
		{SampleConfig{N: 1, Steps: 1, Init: "data"}, info, "init"},
		{SampleConfig{N: 1, Steps: 1, Init: InitUniform, Weighted: true}, info, "init"},
		{SampleConfig{N: 1, Steps: 1, Init: InitUniform}, noRange, "init"},
		{SampleConfig{N: 1, Steps: 1, ResampleThreshold: 1.5}, info, "resample_threshold"},
		{SampleConfig{N: 1, Steps: 1, ResampleScheme: "stratified"}, info, "resample_scheme"},
		{SampleConfig{N: 1, Steps: 1, Workers: -2}, info, "workers"},
		{SampleConfig{N: 1, Steps: 1, Kernel: KernelMALA}, info, "kernel"},
		{SampleConfig{N: 1, Steps: 1, Weighted: true, Kernel: "hmc"}, info, "kernel"},
	} {
		err := tc.cfg.Validate(tc.info)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want a FieldError for %q", tc.cfg, err, tc.field)
		}
	}
	ok := DefaultSampleConfig()
	if err := ok.Validate(info); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
