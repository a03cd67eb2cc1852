package export

import (
	"math"
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// ulaSession runs a BuildULA model.
type ulaSession struct {
	s *ort.DynamicAdvancedSession
}

func newULASession(t testing.TB, model []byte, threads int) *ulaSession {
	t.Helper()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		t.Fatal(err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{InputX, InputNoise, InputStepSize},
		[]string{OutputX, OutputEnergy, OutputGrad, OutputLogW}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &ulaSession{s}
}

// run performs K = len(noise)/(n·d) steps and returns x, U, ∇U and ΔA [K, n].
func (u *ulaSession) run(t testing.TB, x, noise []float32, n, d int, h float32) (xo, uo, go_, dA []float32) {
	t.Helper()
	k := len(noise) / (n * d)
	xin, err := ort.NewTensor(ort.NewShape(int64(n), int64(d)), x)
	if err != nil {
		t.Fatal(err)
	}
	nin, err := ort.NewTensor(ort.NewShape(int64(k), int64(n), int64(d)), noise)
	if err != nil {
		t.Fatal(err)
	}
	hin, err := ort.NewScalar(h)
	if err != nil {
		t.Fatal(err)
	}
	outs := []ort.Value{nil, nil, nil, nil}
	if err := u.s.Run([]ort.Value{xin, nin, hin}, outs); err != nil {
		t.Fatal(err)
	}
	get := func(v ort.Value) []float32 {
		defer v.Destroy()
		return append([]float32(nil), v.(*ort.Tensor[float32]).GetData()...)
	}
	xin.Destroy()
	nin.Destroy()
	hin.Destroy()
	return get(outs[0]), get(outs[1]), get(outs[2]), get(outs[3])
}

// TestULAMatchesReference runs the fused sampler and the same K steps in
// float64 with models' energy and smc's ULA arithmetic, with the same noise.
func TestULAMatchesReference(t *testing.T) {
	needORT(t)
	cases := []struct {
		name string
		p    *models.Params
		h    float64
	}{
		{"gmm/d2-m3", testGMM(t, 2, 3, 1), 0.1},
		{"gmm/d50-m2", testGMM(t, 50, 2, 2), 0.05},
		{"mlp/silu", testMLP(t, models.SiLU, 2, []int{16, 16}, 3), 0.05},
		{"mlp/tanh", testMLP(t, models.Tanh, 3, []int{8}, 5), 0.2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, err := BuildULA(c.p, Info{})
			if err != nil {
				t.Fatal(err)
			}
			sess := newULASession(t, model, 1)
			defer sess.s.Destroy()
			d := c.p.Spec.Dim
			for _, sz := range []struct{ n, k int }{{1, 1}, {7, 5}, {256, 20}} {
				rng := rand.New(rand.NewPCG(uint64(sz.n), 9))
				x0 := testPoints(c.p, sz.n, 4)
				x32 := make([]float32, len(x0))
				for i, v := range x0 {
					x32[i] = float32(v)
				}
				noise := make([]float32, sz.k*sz.n*d)
				for i := range noise {
					noise[i] = float32(rng.NormFloat64())
				}
				h32 := float32(c.h)
				xo, uo, gout, dA := sess.run(t, x32, noise, sz.n, d, h32)

				// float64 reference from the same float32 inputs
				h := float64(h32)
				worstX, worstA := 0.0, 0.0
				for i := 0; i < sz.n; i++ {
					x := make([]float64, d)
					for k := range x {
						x[k] = float64(x32[i*d+k])
					}
					g := make([]float64, d)
					u := c.p.Energy(x, g)
					for j := 0; j < sz.k; j++ {
						x1 := make([]float64, d)
						for k := range x1 {
							x1[k] = x[k] - h*g[k] + math.Sqrt(2*h)*float64(noise[(j*sz.n+i)*d+k])
						}
						g1 := make([]float64, d)
						u1 := c.p.Energy(x1, g1)
						want := smc.LogWeightIncrement(h, u, u1, x, x1, g, g1)
						// ΔA is a difference of energies: compare on their scale
						scale := math.Max(1, math.Max(math.Abs(u), math.Abs(u1)))
						worstA = math.Max(worstA, math.Abs(float64(dA[j*sz.n+i])-want)/scale)
						x, g, u = x1, g1, u1
					}
					xs := 1.0
					for k := range x {
						xs = math.Max(xs, math.Abs(x[k]))
					}
					for k := range x {
						worstX = math.Max(worstX, math.Abs(float64(xo[i*d+k])-x[k])/xs)
					}
					if e := math.Abs(float64(uo[i])-u) / math.Max(1, math.Abs(u)); e > 1e-4 {
						t.Errorf("n=%d K=%d walker %d: final energy %v, want %v", sz.n, sz.k, i, uo[i], u)
					}
					_ = gout
				}
				t.Logf("n=%d K=%d: max rel error x %.2e, ΔA %.2e", sz.n, sz.k, worstX, worstA)
				if worstX > 1e-4 || worstA > 1e-4 {
					t.Errorf("n=%d K=%d: relative error x %.3g, ΔA %.3g > 1e-4", sz.n, sz.k, worstX, worstA)
				}
			}
		})
	}
}

func TestULAMetadata(t *testing.T) {
	needORT(t)
	p := testMLP(t, models.Softplus, 2, []int{4}, 1)
	model, err := BuildULA(p, Info{Method: "jarzynski", StepSize: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	props, _, _, _, version := readBack(t, model)
	m, err := models.ParseONNXMeta(props, version)
	if err != nil {
		t.Fatal(err)
	}
	if m.Graph != models.GraphULA || m.StepSize != 0.01 {
		t.Errorf("meta %+v", m)
	}
	if _, err := BuildULA(nil, Info{}); err == nil {
		t.Error("BuildULA(nil) succeeded")
	}
}
