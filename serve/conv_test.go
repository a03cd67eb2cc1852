package serve

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// convTestSpec is a small conv energy on 2×5×7 images: conv 2→3 k3 s2 p1
// (SiLU), conv 3→2 k2 s1 p0 (LeakyReLU), flatten 12, linear 12→6 (SiLU),
// 6→1; base N(μ0, 0.8²I) with μ0 ≠ 0.
func convTestSpec() models.Spec {
	mu := make([]float64, 70)
	for k := range mu {
		mu[k] = 0.1 * float64(k%5-2)
	}
	return models.Spec{Family: models.Conv, Dim: 70, InputShape: []int{2, 5, 7},
		Conv: []models.ConvLayer{
			{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: models.SiLU},
			{Out: 2, Kernel: 2, Stride: 1, Pad: 0, Activation: models.LeakyReLU},
		},
		Hidden: []int{6}, Activation: models.SiLU, BaseMean: mu, BaseStd: 0.8}
}

// convParams draws θ0 (models.InitConv: the last layer zero), then sets the
// last layer's weights to lastScale·N(0, 1) and its bias to lastBias.
func convParams(t testing.TB, lastScale, lastBias float64) *models.Params {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	p, err := models.InitConv(convTestSpec(), rng)
	if err != nil {
		t.Fatal(err)
	}
	w := p.Get("w1")
	for j := range w.Data {
		w.Data[j] = lastScale * rng.NormFloat64()
	}
	p.Get("b1").Data[0] = lastBias
	return p
}

// loadConvDir exports p with package export as DIR/conv/1/model.onnx, loads
// the directory and returns the registry and the model.
func loadConvDir(t *testing.T, p *models.Params) (*Registry, *Model) {
	t.Helper()
	needORT(t)
	b, err := export.Build(p, models.TrainingInfo{Method: "test", StepSize: 0.01, LogZEstimate: math.NaN(), DataMin: -1, DataMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "conv/1/model.onnx", b)
	reg, err := LoadDir(dir, LoadOptions{Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	m, err := reg.Get("conv", "1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release) // runs before reg.Close: the registry's reference closes it
	return reg, m
}

// allFinite reports whether every value is a finite number.
func allFinite[T float32 | float64](v []T) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// A conv model loads with its image shape, samples (plain and weighted)
// in [n, C, H, W], evaluates like models' reference directly and through
// /v2 infer, and writes NPY files of shape [n, C, H, W].
func TestConvModelServes(t *testing.T) {
	p := convParams(t, 0.5, 0.2)
	reg, m := loadConvDir(t, p)
	shape := []int{2, 5, 7}
	if !slices.Equal(m.Info.DataShape, shape) || m.Info.Dim != 70 || m.Info.Family != models.Conv || m.Info.Spec == nil || m.latent != nil || m.Fused {
		t.Fatalf("loaded %+v (latent %v, fused %v)", m.Info.ONNXMeta, m.latent != nil, m.Fused)
	}

	// direct evaluation against the float64 reference
	const n = 5
	rng := rand.New(rand.NewPCG(1, 9))
	x := make([]float64, n*70)
	for i := range x {
		x[i] = 1.5 * rng.NormFloat64()
	}
	b, err := m.NewBatch(n, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	for i, v := range x {
		b.X[i] = float32(v)
	}
	if err := m.Eval(b, nil); err != nil {
		t.Fatal(err)
	}
	g := make([]float64, 70)
	for i := 0; i < n; i++ {
		u := p.Energy(x[i*70:(i+1)*70], g)
		if math.Abs(float64(b.Energy[i])-u) > 1e-4*math.Max(1, math.Abs(u)) {
			t.Errorf("energy[%d] = %v, reference %v", i, b.Energy[i], u)
		}
		for k := range g {
			if math.Abs(float64(b.Grad[i*70+k])-g[k]) > 1e-4*math.Max(1, math.Abs(g[k])) {
				t.Fatalf("grad[%d][%d] = %v, reference %v", i, k, b.Grad[i*70+k], g[k])
			}
		}
	}

	// /v2 infer on [3, 2, 5, 7], flat data
	ts := httptest.NewServer(NewServer(reg, ServerConfig{Logger: quietLog}))
	defer ts.Close()
	var data []string
	for _, v := range x[:3*70] {
		data = append(data, fmt.Sprint(float32(v)))
	}
	body := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[3,2,5,7],"datatype":"FP32","data":[%s]}]}`, strings.Join(data, ","))
	var resp InferResponse
	if code, raw := call(t, "POST", ts.URL+"/v2/models/conv/infer", body, &resp); code != 200 {
		t.Fatalf("infer: %d %s", code, raw)
	}
	if len(resp.Outputs) != 2 {
		t.Fatalf("infer outputs %+v", resp.Outputs)
	}
	for _, o := range resp.Outputs {
		switch o.Name {
		case models.OutputEnergy:
			if !slices.Equal(o.Shape, []int64{3}) || !slices.Equal(o.Data, b.Energy[:3]) {
				t.Errorf("infer energy %v %v, Eval %v", o.Shape, o.Data, b.Energy[:3])
			}
		case models.OutputGrad:
			if !slices.Equal(o.Shape, []int64{3, 2, 5, 7}) || !slices.Equal(o.Data, b.Grad[:3*70]) {
				t.Errorf("infer grad shape %v (want [3 2 5 7]) or values differ from Eval", o.Shape)
			}
		}
	}
	if code, raw := call(t, "POST", ts.URL+"/v2/models/conv/infer", `{"inputs":[{"name":"x","shape":[1,70],"datatype":"FP32","data":[`+strings.Join(data[:70], ",")+`]}]}`, nil); code != 400 {
		t.Errorf("infer on [1, 70] for a [2, 5, 7] model: %d %s", code, raw)
	}

	// sampling, plain and weighted, and the NPY output
	for _, weighted := range []bool{false, true} {
		t.Run(fmt.Sprintf("weighted=%v", weighted), func(t *testing.T) {
			cfg := SampleConfig{N: 96, Steps: 20, StepSize: 0.01, Seed: 4, Weighted: weighted}
			res, err := Sample(context.Background(), m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.N != 96 || !slices.Equal(res.DataShape, shape) || res.Dim != 70 || len(res.Samples) != 96*70 || !allFinite(res.Samples) {
				t.Fatalf("result N %d, shape %v, dim %d, %d values (finite %v)", res.N, res.DataShape, res.Dim, len(res.Samples), allFinite(res.Samples))
			}
			if weighted != res.Weighted || weighted && (len(res.LogWeights) != 96 || !allFinite(res.LogWeights) || !(res.ESS > 0 && res.ESS <= 96) || math.IsNaN(res.LogZ)) ||
				!weighted && (res.LogWeights != nil || !math.IsNaN(res.LogZ)) {
				t.Errorf("weighted %v: %d log-weights, ESS %v, log Ẑ %v", res.Weighted, len(res.LogWeights), res.ESS, res.LogZ)
			}
			out := filepath.Join(t.TempDir(), "samples.npy")
			paths, err := WriteResult(out, FormatNPY, res)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw[:128]), "'shape': (96, 2, 5, 7)") || len(raw) != 128+4*96*70 {
				t.Errorf("npy header %q, %d bytes", raw[:128], len(raw))
			}
			if weighted != (len(paths) == 2) {
				t.Errorf("wrote %v", paths)
			}
		})
	}
}

// docs/METHOD.md §3: at θ0 (last layer zero) the conv model is the base
// Gaussian shifted by its last bias b, so the weighted run's log Ẑ must be
// (d/2)·log(2πσ0²) − b within Monte Carlo error.
func TestConvLogZAtInit(t *testing.T) {
	for _, bias := range []float64{0, 0.4} {
		t.Run(fmt.Sprintf("b=%g", bias), func(t *testing.T) {
			p := convParams(t, 0, bias)
			_, m := loadConvDir(t, p)
			s := p.Spec
			want := 0.5*float64(s.Dim)*math.Log(2*math.Pi*s.BaseStd*s.BaseStd) - bias
			if exact, ok := p.ExactLogZ(); !ok || math.Abs(exact-want) > 1e-12 || math.Abs(m.Info.LogZBase()-bias-want) > 1e-9 {
				t.Fatalf("models log Z %v (%v), serve's base log Z %v, want %v", exact, ok, m.Info.LogZBase(), want+bias)
			}
			cfg := SampleConfig{N: 2048, Steps: 30, StepSize: 0.02, Seed: 6, Weighted: true}
			res, err := Sample(context.Background(), m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tol := logZTolerance(res.ESS, cfg.N, 4)
			t.Logf("log Ẑ %.5f, exact %.5f, tol %.4f, ESS/N %.3f", res.LogZ, want, tol, res.ESSFraction)
			if math.Abs(res.LogZ-want) > tol {
				t.Errorf("log Ẑ = %.5f, want %.5f ± %.4f", res.LogZ, want, tol)
			}
		})
	}
}
