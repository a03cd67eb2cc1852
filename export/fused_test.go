package export

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/internal/ortops"
	"github.com/jarzyn/jarzyn/models"
)

// runGraph evaluates a model with energy and grad outputs on x (n×d), with
// the fused operators registered when fused.
func runGraph(t *testing.T, model []byte, x []float32, n, d int, fused bool) (energy, grad []float32) {
	out := runOutputs(t, model, x, n, d, fused, models.OutputEnergy, models.OutputGrad)
	return out[0], out[1]
}

// newSession opens a one-thread session of model with the named outputs and
// the fused operators registered when fused; the test closes it.
func newSession(t *testing.T, model []byte, fused bool, names ...string) *ort.DynamicAdvancedSession {
	t.Helper()
	lib, err := ortlib.Init("")
	if err != nil {
		t.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	if fused {
		if err := ortops.Register(so, lib); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{models.InputX}, names, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

// runOutputs evaluates the named outputs of a model on x (n×d).
func runOutputs(t *testing.T, model []byte, x []float32, n, d int, fused bool, names ...string) [][]float32 {
	t.Helper()
	s := newSession(t, model, fused, names...)
	xt, err := ort.NewTensor(ort.NewShape(int64(n), int64(d)), x)
	if err != nil {
		t.Fatal(err)
	}
	defer xt.Destroy()
	out := make([]ort.Value, len(names))
	if err := s.Run([]ort.Value{xt}, out); err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(out))
	for i, v := range out {
		res[i] = append([]float32(nil), v.(*ort.Tensor[float32]).GetData()...)
		v.Destroy()
	}
	return res
}

// TestBuildFusedMatchesBuild evaluates BuildFused's graph (fused operators
// registered) and Build's on the same points, including pre-activations far
// into both tails: they agree to float32 rounding, and both match the
// float64 reference.
func TestBuildFusedMatchesBuild(t *testing.T) {
	cases := []struct {
		name   string
		d      int
		hidden []int
		scale  float64 // spread of the points
	}{
		{"d2 two layers", 2, []int{64, 64}, 3},
		{"d5 three layers, odd widths", 5, []int{37, 9, 21}, 2},
		{"one hidden layer", 3, []int{19}, 2},
		{"d40", 40, []int{24, 16}, 1},
		{"large pre-activations", 2, []int{16, 16}, 300},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testMLP(t, models.SiLU, c.d, c.hidden, 7)
			std, err := Build(p, models.TrainingInfo{Method: "test", LogZEstimate: math.NaN()})
			if err != nil {
				t.Fatal(err)
			}
			fused, err := BuildFused(p)
			if err != nil {
				t.Fatal(err)
			}
			gradOnly, err := BuildFusedGrad(p)
			if err != nil {
				t.Fatal(err)
			}
			const n = 301
			rng := rand.New(rand.NewPCG(3, 4))
			x := make([]float32, n*c.d)
			x64 := make([]float64, n*c.d)
			for i := range x {
				x[i] = float32(c.scale * rng.NormFloat64())
				x64[i] = float64(x[i])
			}
			e0, g0 := runGraph(t, std, x, n, c.d, false)
			e1, g1 := runGraph(t, fused, x, n, c.d, true)
			refU, refG := reference(p, x64, n)
			if err := compareTo(e1, g1, e0, g0, n, c.d, 2e-6); err != nil {
				t.Errorf("fused against standard graph: %v", err)
			}
			if err := compareTo(e1, g1, toF32(refU), toF32(refG), n, c.d, 1e-4); err != nil {
				t.Errorf("fused against float64 reference: %v", err)
			}
			g2 := runOutputs(t, gradOnly, x, n, c.d, true, models.OutputGrad)[0]
			if err := compareTo(e1, g2, e1, g1, n, c.d, 0); err != nil {
				t.Errorf("gradient-only graph against the fused graph: %v", err)
			}
		})
	}
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// compareTo fails when energy or grad differ from the wanted values by more
// than tol relative to max(1, |value|) (energy) or max(1, the row's largest
// |∂U|) (grad).
func compareTo(e, g, we, wg []float32, n, d int, tol float64) error {
	for i := 0; i < n; i++ {
		if diff := math.Abs(float64(e[i] - we[i])); !(diff <= tol*math.Max(1, math.Abs(float64(we[i])))) {
			return fmt.Errorf("energy[%d] = %v, want %v", i, e[i], we[i])
		}
		scale := 1.0
		for _, v := range wg[i*d : (i+1)*d] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for k := i * d; k < (i+1)*d; k++ {
			if diff := math.Abs(float64(g[k] - wg[k])); !(diff <= tol*scale) {
				return fmt.Errorf("grad[%d][%d] = %v, want %v", i, k-i*d, g[k], wg[k])
			}
		}
	}
	return nil
}

func TestBuildFusedNotFusable(t *testing.T) {
	for name, p := range map[string]*models.Params{
		"softplus": testMLP(t, models.Softplus, 2, []int{8}, 1),
		"tanh":     testMLP(t, models.Tanh, 2, []int{8}, 1),
		"mixture":  testGMM(t, 2, 2, 1),
		"nil":      nil,
	} {
		if _, err := BuildFused(p); !errors.Is(err, ErrNotFusable) {
			t.Errorf("%s: BuildFused error %v, want ErrNotFusable", name, err)
		}
		if _, err := BuildFusedGrad(p); !errors.Is(err, ErrNotFusable) {
			t.Errorf("%s: BuildFusedGrad error %v, want ErrNotFusable", name, err)
		}
	}
}

// TestParamsFromModel reads the weights back from Build's and BuildLatent's
// files: each is the float32 rounding of the original.
func TestParamsFromModel(t *testing.T) {
	p := testMLP(t, models.SiLU, 6, []int{4, 5}, 3)
	b, err := Build(p, models.TrainingInfo{Method: "test", LogZEstimate: math.NaN()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParamsFromModel(b, p.Spec)
	if err != nil {
		t.Fatal(err)
	}
	for i, tn := range p.Tensors {
		for j, v := range tn.Data {
			if want := float64(float32(v)); got.Tensors[i].Data[j] != want {
				t.Fatalf("%s[%d] = %v, want %v", tn.Name, j, got.Tensors[i].Data[j], want)
			}
		}
	}
	wrong := p.Spec
	wrong.Hidden = []int{4, 6}
	if _, err := ParamsFromModel(b, wrong); err == nil {
		t.Error("a spec with other widths was accepted")
	}
	if _, err := ParamsFromModel(b[:len(b)/2], p.Spec); err == nil {
		t.Error("a truncated model was accepted")
	}
	if _, err := ParamsFromModel(b, testGMM(t, 2, 2, 1).Spec); err == nil {
		t.Error("a mixture spec was accepted")
	}
}

// TestFusedOperatorBadShapes: an operator given inputs of mismatched shapes
// leaves its outputs unset, and the Run fails instead of returning garbage.
func TestFusedOperatorBadShapes(t *testing.T) {
	b := newBuilder("bad", "mismatched shapes")
	b.fused = true
	batch := dim{param: BatchDim}
	b.input(models.InputX, "x", batch, dim{value: 4})
	w := b.floats("w", []float64{1, 2, 3}, 3) // 3 weights for 4 columns
	d, f := b.fusedPair("act", FusedSiLUDot, []string{models.InputX, w}, "deriv", "dot")
	b.Identity(models.OutputGrad, d)
	b.Identity(models.OutputEnergy, f)
	b.output(models.OutputEnergy, "f", batch, dim{value: 1})
	b.output(models.OutputGrad, "d", batch, dim{value: 4})
	g, err := b.graph()
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, fusedModel(g), true, models.OutputEnergy, models.OutputGrad)
	xt, err := ort.NewTensor(ort.NewShape(2, 4), make([]float32, 8))
	if err != nil {
		t.Fatal(err)
	}
	defer xt.Destroy()
	out := []ort.Value{nil, nil}
	err = s.Run([]ort.Value{xt}, out)
	for _, v := range out {
		if v != nil {
			v.Destroy()
		}
	}
	if err == nil || !strings.Contains(err.Error(), "SiLUDerivDot: the weights' length") {
		t.Fatalf("a Run with mismatched operator inputs: %v", err)
	}
	// with outputs the caller allocated, as serve runs: an error too
	e, err := ort.NewEmptyTensor[float32](ort.NewShape(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Destroy()
	gr, err := ort.NewEmptyTensor[float32](ort.NewShape(2, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Destroy()
	if err := s.Run([]ort.Value{xt}, []ort.Value{e, gr}); err == nil || !strings.Contains(err.Error(), "SiLUDerivDot") {
		t.Fatalf("a Run into allocated outputs with mismatched operator inputs: %v", err)
	}
}
