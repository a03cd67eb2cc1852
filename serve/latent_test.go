package serve

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// latentFiles exports p and, when it has one, its latent model into dir and
// returns the energy model's path.
func latentFiles(t testing.TB, dir string, p *models.Params, h float64) string {
	t.Helper()
	info := models.TrainingInfo{Method: "test", StepSize: h, LogZEstimate: math.NaN(), DataMin: -3, DataMax: 3}
	b, err := export.Build(p, info)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "model.onnx", b)
	if l, ok := p.Latent(); ok {
		lb, err := export.BuildLatent(l, p, info, b)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(models.LatentPath(path)), lb)
	}
	return path
}

// loadLatentMLP exports p with its latent model and loads it.
func loadLatentMLP(t testing.TB, p *models.Params, h float64, opt LoadOptions) *Model {
	t.Helper()
	needORT(t)
	opt.Logger = quietLog
	m, err := LoadModel(latentFiles(t, t.TempDir(), p, h), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// narrowMLP is an MLP on d=12 whose first layer has 4 units, base
// N(μ0, σ0²I) with μ0 ≠ 0; scale multiplies the perceptron's last layer (0:
// U is the base quadratic alone).
func narrowMLP(t testing.TB, scale float64) *models.Params {
	t.Helper()
	mu := make([]float64, 12)
	for i := range mu {
		mu[i] = 0.2*float64(i) - 1
	}
	p, err := models.InitMLP(models.Spec{Family: models.MLP, Dim: 12, Hidden: []int{4, 8}, Activation: models.SiLU, BaseStd: 1.2, BaseMean: mu}, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, name := range []string{"w0", "b0", "w2"} {
		for i := range p.Get(name).Data {
			p.Get(name).Data[i] = scale * (1 + rng.NormFloat64())
		}
	}
	return p
}

// With the perceptron off, U is the base quadratic and K ULA steps from the
// base give exactly N(μ0, c_K·I), c_K = a^{2K}σ0² + 2h·Σ_{j<K} a^{2j},
// a = 1 − h/σ0²: the latent sampler must reproduce it in every direction,
// inside and outside the latent space.
func TestLatentSamplerClosedForm(t *testing.T) {
	p := narrowMLP(t, 0)
	const n, steps, h = 40000, 20, 0.3
	m := loadLatentMLP(t, p, h, LoadOptions{})
	if m.latent == nil || m.latent.r != 4 {
		t.Fatal("latent model not loaded")
	}
	res, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: steps, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.LatentDim != 4 || res.Dim != 12 || len(res.Samples) != n*12 {
		t.Fatalf("result dims: latent %d, dim %d, %d values", res.LatentDim, res.Dim, len(res.Samples))
	}
	sd := p.Spec.BaseStd
	a := 1 - h/(sd*sd)
	c := math.Pow(a, 2*steps) * sd * sd
	for j := 0; j < steps; j++ {
		c += 2 * h * math.Pow(a, 2*float64(j))
	}
	mean, cov, _ := moments(res.Samples, nil, n, 12)
	mu := p.Spec.Mu0()
	for k := 0; k < 12; k++ {
		if e := math.Abs(mean[k] - mu[k]); e > 5*math.Sqrt(c/n) {
			t.Errorf("mean[%d] = %.4f, want %.4f (±%.4f)", k, mean[k], mu[k], 5*math.Sqrt(c/n))
		}
		for j := 0; j < 12; j++ {
			want := 0.0
			if j == k {
				want = c
			}
			// sd of a sample covariance entry ≈ c·√(2/n) on the diagonal, c/√n off it
			if e := math.Abs(cov[k][j] - want); e > 5*c*math.Sqrt(2.0/n) {
				t.Errorf("cov[%d,%d] = %.4f, want %.4f", k, j, cov[k][j], want)
			}
		}
	}
}

// On a model that is far from Gaussian the latent walk and the walk in ℝᵈ
// (FullDim) give the same distribution: their means and covariances agree
// within Monte-Carlo error, and both differ clearly from the start.
func TestLatentSamplerMatchesFullWalk(t *testing.T) {
	p := narrowMLP(t, 0.8)
	const n, steps, h, d = 30000, 40, 0.05, 12
	m := loadLatentMLP(t, p, h, LoadOptions{})
	for _, init := range []Init{InitBase, InitUniform} {
		t.Run(string(init), func(t *testing.T) { latentMatchesFull(t, m, p, init, n, steps, d) })
	}
}

func latentMatchesFull(t *testing.T, m *Model, p *models.Params, init Init, n, steps, d int) {
	lat, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: steps, Seed: 1, Init: init})
	if err != nil {
		t.Fatal(err)
	}
	full, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: steps, Seed: 2, Init: init, FullDim: true})
	if err != nil {
		t.Fatal(err)
	}
	if lat.LatentDim != 4 || full.LatentDim != 0 {
		t.Fatalf("latent dims %d and %d", lat.LatentDim, full.LatentDim)
	}
	m1, c1, _ := moments(lat.Samples, nil, n, d)
	m2, c2, _ := moments(full.Samples, nil, n, d)
	mu := p.Spec.Mu0()
	moved := 0.0
	for k := 0; k < d; k++ {
		sdk := math.Sqrt((c1[k][k] + c2[k][k]) / 2)
		if e := math.Abs(m1[k] - m2[k]); e > 5*sdk*math.Sqrt(2.0/float64(n)) {
			t.Errorf("mean[%d]: latent %.4f, full %.4f (tolerance %.4f)", k, m1[k], m2[k], 5*sdk*math.Sqrt(2.0/float64(n)))
		}
		moved = math.Max(moved, math.Abs(m2[k]-mu[k])/sdk)
		for j := 0; j < d; j++ {
			sdj := math.Sqrt((c1[j][j] + c2[j][j]) / 2)
			if e := math.Abs(c1[k][j] - c2[k][j]); e > 6*sdk*sdj*math.Sqrt(2.0/float64(n))*math.Sqrt(2) {
				t.Errorf("cov[%d,%d]: latent %.4f, full %.4f", k, j, c1[k][j], c2[k][j])
			}
		}
	}
	if moved < 0.2 {
		t.Errorf("the walk barely left the base (largest mean shift %.3f sd): the test would not see a wrong drift", moved)
	}
}

// A latent file left by another export is skipped (sampling in ℝᵈ, with a
// warning), and so is every latent file with NoLatent; the latent file
// itself cannot be served as an energy model.
func TestLatentFileChecks(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	path := latentFiles(t, dir, narrowMLP(t, 0.5), 0.05)
	other := latentFiles(t, t.TempDir(), narrowMLP(t, 0.7), 0.05)
	ob, err := os.ReadFile(models.LatentPath(other))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cases := []struct {
		name   string
		setup  func()
		opt    LoadOptions
		latent bool
	}{
		{"own latent", func() {}, LoadOptions{}, true},
		{"no latent option", func() {}, LoadOptions{NoLatent: true}, false},
		{"stale latent", func() { writeFile(t, dir, "model.latent.onnx", ob) }, LoadOptions{}, false},
		{"damaged latent", func() { writeFile(t, dir, "model.latent.onnx", ob[:len(ob)/2]) }, LoadOptions{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			logs.Reset()
			c.opt.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			m, err := LoadModel(path, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if (m.latent != nil) != c.latent {
				t.Fatalf("latent loaded: %v, want %v; log: %s", m.latent != nil, c.latent, logs.String())
			}
			if !c.latent && !c.opt.NoLatent && !strings.Contains(logs.String(), "latent model not used") {
				t.Errorf("no warning in the log: %s", logs.String())
			}
			res, err := Sample(context.Background(), m, SampleConfig{N: 8, Steps: 2})
			if err != nil || (res.LatentDim != 0) != c.latent {
				t.Fatalf("sample: %v, latent dim %d", err, res.LatentDim)
			}
		})
	}
	_, err = LoadModel(models.LatentPath(other), LoadOptions{Logger: quietLog})
	if err == nil || !strings.Contains(err.Error(), "latent reduction of another model") {
		t.Errorf("loading a latent file as a model: %v", err)
	}
}

// jarzyn-serve sample walks in the latent space when model.latent.onnx sits
// beside the model, says so in its summary (latent_dim), is deterministic
// for a seed, and walks in ℝᵈ with --no-latent.
func TestMainSampleLatent(t *testing.T) {
	needORT(t)
	model := latentFiles(t, t.TempDir(), narrowMLP(t, 0.5), 0.05)
	dir := t.TempDir()
	run := func(name string, extra ...string) (SampleSummary, string) {
		sum, b := runSample(t, filepath.Join(dir, name), append([]string{"--model", model, "--n", "200", "--steps", "10", "--seed", "4"}, extra...)...)
		return sum, string(b)
	}
	lat, a := run("a.csv")
	_, b := run("b.csv")
	full, c := run("c.csv", "--no-latent")
	if lat.LatentDim != 4 || full.LatentDim != 0 {
		t.Errorf("latent_dim %d with the latent model, %d with --no-latent", lat.LatentDim, full.LatentDim)
	}
	if a != b || a == c {
		t.Errorf("same seed gave different samples (%v) or the latent and full walks gave the same (%v)", a != b, a == c)
	}
	if rows := strings.Count(a, "\n"); rows != 201 {
		t.Errorf("%d CSV lines, want a header and 200 rows", rows)
	}
}

// Weighted annealing in the latent space targets the same distribution and
// log Z as in ℝᵈ: with the perceptron off, log Ẑ = (d/2)·log 2πσ0² and the
// weighted moments are those of N(μ0, σ0²I); on a non-Gaussian model the
// latent and full runs agree on log Ẑ and the weighted means.
func TestLatentWeighted(t *testing.T) {
	const d = 12
	t.Run("closed form", func(t *testing.T) {
		p := narrowMLP(t, 0)
		m := loadLatentMLP(t, p, 0.1, LoadOptions{})
		const n = 20000
		res, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: 20, Seed: 5, Weighted: true, ResampleThreshold: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		sd := p.Spec.BaseStd
		want := 0.5 * d * math.Log(2*math.Pi*sd*sd)
		if res.LatentDim != 4 || math.Abs(res.LogZ-want) > 0.02 {
			t.Errorf("latent dim %d, log Ẑ %.4f, want %.4f", res.LatentDim, res.LogZ, want)
		}
		mean, cov, ess := moments(res.Samples, res.LogWeights, n, d)
		mu := p.Spec.Mu0()
		for k := 0; k < d; k++ {
			if e := math.Abs(mean[k] - mu[k]); e > 5*sd/math.Sqrt(ess) {
				t.Errorf("weighted mean[%d] = %.4f, want %.4f", k, mean[k], mu[k])
			}
			if e := math.Abs(cov[k][k] - sd*sd); e > 5*sd*sd*math.Sqrt(2/ess) {
				t.Errorf("weighted var[%d] = %.4f, want %.4f", k, cov[k][k], sd*sd)
			}
		}
	})
	t.Run("matches the full walk", func(t *testing.T) {
		// a model mild enough for 200 annealing steps: across seeds log Ẑ
		// varies by ~0.01 and the weighted means by ~0.02 (with a stronger one
		// both methods scatter by 0.5 and 0.2 from seed to seed)
		p := narrowMLP(t, 0.4)
		m := loadLatentMLP(t, p, 0.05, LoadOptions{})
		const n = 20000
		cfg := SampleConfig{N: n, Steps: 200, Seed: 6, Weighted: true, ResampleThreshold: 0.5}
		lat, err := Sample(context.Background(), m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.FullDim, cfg.Seed = true, 7
		full, err := Sample(context.Background(), m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if lat.LatentDim != 4 || full.LatentDim != 0 {
			t.Fatalf("latent dims %d and %d", lat.LatentDim, full.LatentDim)
		}
		if math.Abs(lat.LogZ-full.LogZ) > 0.03 {
			t.Errorf("log Ẑ latent %.4f, full %.4f", lat.LogZ, full.LogZ)
		}
		m1, c1, e1 := moments(lat.Samples, lat.LogWeights, n, d)
		m2, c2, e2 := moments(full.Samples, full.LogWeights, n, d)
		for k := 0; k < d; k++ {
			tol := 5 * math.Sqrt(c1[k][k]/e1+c2[k][k]/e2)
			if math.Abs(m1[k]-m2[k]) > tol {
				t.Errorf("weighted mean[%d]: latent %.4f, full %.4f (tolerance %.4f)", k, m1[k], m2[k], tol)
			}
			if v := (c1[k][k] + c2[k][k]) / 2; math.Abs(c1[k][k]-c2[k][k]) > 5*v*math.Sqrt(2/e1+2/e2) {
				t.Errorf("weighted var[%d]: latent %.4f, full %.4f", k, c1[k][k], c2[k][k])
			}
		}
		t.Logf("log Ẑ latent %.4f full %.4f; ESS %.0f / %.0f", lat.LogZ, full.LogZ, e1, e2)

		// Metropolis-adjusted annealing walks in ℝᵈ even beside a latent
		// model and estimates the same log Z, at an h where ULA's weights
		// would carry a large discretisation error
		cfg.FullDim, cfg.Seed, cfg.Kernel, cfg.StepSize = false, 8, KernelMALA, 0.5
		mala, err := Sample(context.Background(), m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if mala.LatentDim != 0 || mala.Kernel != KernelMALA || !(mala.Accept > 0.3 && mala.Accept < 1) {
			t.Errorf("mala: latent dim %d, kernel %s, acceptance %.3f", mala.LatentDim, mala.Kernel, mala.Accept)
		}
		if math.Abs(mala.LogZ-lat.LogZ) > 0.03 {
			t.Errorf("log Ẑ mala %.4f, latent ULA %.4f", mala.LogZ, lat.LogZ)
		}
		t.Logf("log Ẑ mala (h 0.5) %.4f, acceptance %.3f, ESS/N %.3f", mala.LogZ, mala.Accept, mala.ESSFraction)
	})
}

// The HTTP server loads the latent model beside DIR/<name>/<version>/model.onnx
// and /v1/sample reports latent_dim, plain and weighted.
func TestHTTPSampleLatent(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	latentFiles(t, filepath.Join(dir, "mnistish", "1"), narrowMLP(t, 0.5), 0.05)
	reg, err := LoadDir(dir, LoadOptions{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(NewServer(reg, ServerConfig{Logger: quietLog}))
	defer func() {
		ts.Close()
		reg.Close()
	}()
	for _, body := range []string{`{"n": 32, "steps": 5, "seed": 1}`, `{"n": 32, "steps": 5, "seed": 1, "weighted": true}`} {
		var out SampleResponse
		if code, b := call(t, "POST", ts.URL+"/v1/sample", body, &out); code != 200 {
			t.Fatalf("%s: %d %s", body, code, b)
		}
		if out.LatentDim != 4 || len(out.Samples) != 32 || len(out.Samples[0]) != 12 || out.Shape[1] != 12 {
			t.Errorf("%s: latent_dim %d, %d samples of %d, shape %v", body, out.LatentDim, len(out.Samples), len(out.Samples[0]), out.Shape)
		}
		if out.Weighted != strings.Contains(body, "weighted") || (out.Weighted && (out.LogZ == nil || len(out.LogWeights) != 32)) {
			t.Errorf("%s: weighted %v, log_z %v, %d log-weights", body, out.Weighted, out.LogZ, len(out.LogWeights))
		}
	}
}
