package export

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/models"
)

// testConv returns conv parameters of spec with values of order 1 at the
// test points: filters and linear weights uniform with variance 1/fan_in,
// biases 0.1·N(0, 1), and a non-zero last layer so that f matters.
func testConv(t testing.TB, spec models.Spec, seed uint64) *models.Params {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 4))
	p, err := models.NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Tensors {
		tn := &p.Tensors[i]
		if len(tn.Shape) == 1 {
			for j := range tn.Data {
				tn.Data[j] = 0.1 * rng.NormFloat64()
			}
			continue
		}
		fanIn := len(tn.Data) / tn.Shape[0] // In·K·K of a filter
		if tn.Name[0] == 'w' {
			fanIn = tn.Shape[0] // rows of a linear layer
		}
		lim := math.Sqrt(3 / float64(fanIn))
		for j := range tn.Data {
			tn.Data[j] = lim * (2*rng.Float64() - 1)
		}
	}
	return p
}

// smallConv is a conv spec with base N(μ0, 1.4²I), μ0 ≠ 0.
func smallConv(shape []int, layers []models.ConvLayer, hidden []int, act models.Activation, slope float64) models.Spec {
	d := shape[0] * shape[1] * shape[2]
	mu := make([]float64, d)
	for k := range mu {
		mu[k] = 0.2 * float64(k%7-3)
	}
	return models.Spec{Family: models.Conv, Dim: d, InputShape: shape, Conv: layers, Hidden: hidden,
		Activation: act, LeakySlope: slope, BaseMean: mu, BaseStd: 1.4}
}

// smallConvCases cover every activation in the convolutions and in the
// linear part, strides 1 and 2, paddings 0, 1 and 4, odd image sizes, and
// output_padding 0 and 1 in either axis.
var smallConvCases = []struct {
	name string
	spec models.Spec
}{
	{"1x7x9/silu-k3s2p1/tanh", smallConv([]int{1, 7, 9}, []models.ConvLayer{
		{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: models.SiLU},
	}, []int{4}, models.Tanh, 0)},
	{"2x5x5/softplus-k2s1p0/leaky-k5s2p4/silu", smallConv([]int{2, 5, 5}, []models.ConvLayer{
		{Out: 3, Kernel: 2, Stride: 1, Pad: 0, Activation: models.Softplus},
		{Out: 2, Kernel: 5, Stride: 2, Pad: 4, Activation: models.LeakyReLU, Slope: 0.3},
	}, []int{5, 3}, models.SiLU, 0)},
	{"3x6x7/tanh-k3s2p0/identity-k2s1p1/softplus", smallConv([]int{3, 6, 7}, []models.ConvLayer{
		{Out: 4, Kernel: 3, Stride: 2, Pad: 0, Activation: models.Tanh},
		{Out: 3, Kernel: 2, Stride: 1, Pad: 1, Activation: models.Identity},
	}, []int{6}, models.Softplus, 0)},
	{"2x9x5/leaky-k3s2p1/silu-k3s1p0/leaky", smallConv([]int{2, 9, 5}, []models.ConvLayer{
		{Out: 4, Kernel: 3, Stride: 2, Pad: 1, Activation: models.LeakyReLU},
		{Out: 2, Kernel: 3, Stride: 1, Pad: 0, Activation: models.SiLU},
	}, []int{3}, models.LeakyReLU, 0.05)},
	{"1x8x7/identity-k4s2p4/tanh-k3s2p1/no-hidden", smallConv([]int{1, 8, 7}, []models.ConvLayer{
		{Out: 2, Kernel: 4, Stride: 2, Pad: 4, Activation: models.Identity},
		{Out: 1, Kernel: 3, Stride: 2, Pad: 1, Activation: models.Tanh},
	}, nil, models.SiLU, 0)},
	{"3x5x5/leaky-k3s1p1/identity-k5s1p0/no-hidden", smallConv([]int{3, 5, 5}, []models.ConvLayer{
		{Out: 4, Kernel: 3, Stride: 1, Pad: 1, Activation: models.LeakyReLU, Slope: 0.2},
		{Out: 1, Kernel: 5, Stride: 1, Pad: 0, Activation: models.Identity},
	}, nil, models.LeakyReLU, 0)},
}

// convParity builds p, evaluates it with ONNX Runtime on a batch of n
// points and compares the rows listed in rows (all when nil) with the
// float64 reference; it returns the largest relative errors (as Parity).
func convParity(t *testing.T, model []byte, p *models.Params, n int, rows []int, seed uint64) (eErr, gErr float64) {
	t.Helper()
	d := p.Spec.Dim
	x := testPoints(p, n, seed)
	if rows == nil {
		u, g := reference(p, x, n)
		eErr, gErr, err := Parity(model, x, n, u, g)
		if err != nil {
			t.Fatal(err)
		}
		return eErr, gErr
	}
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
	}
	u, g, err := evaluate(model, x32, n, d)
	if err != nil {
		t.Fatal(err)
	}
	var xs []float64
	var us []float32
	var gs []float32
	for _, r := range rows {
		xs = append(xs, x[r*d:(r+1)*d]...)
		us = append(us, u[r])
		gs = append(gs, g[r*d:(r+1)*d]...)
	}
	ru, rg := reference(p, xs, len(rows))
	return maxRelErr(us, ru, len(rows), 1), maxRelErr(gs, rg, len(rows), d)
}

// The exported conv graph against models' float64 reference: the presets of
// docs/METHOD.md §5.2–5.3 and small specs with every activation, at batches
// 1, 7 and 256. The CIFAR net costs the reference ~0.3 s a point, so of its
// batch of 256 (all evaluated by ONNX Runtime) 12 rows spread over the batch,
// first and last included, are compared.
func TestConvBuildParity(t *testing.T) {
	needORT(t)
	type tc struct {
		name string
		p    *models.Params
		full bool // compare every row of the batch of 256
	}
	cases := []tc{
		{"mnist", testConv(t, models.MNISTConvSpec(), 1), true},
		{"cifar", testConv(t, models.CIFARConvSpec(), 2), false},
	}
	for i, c := range smallConvCases {
		cases = append(cases, tc{c.name, testConv(t, c.spec, uint64(10+i)), true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, err := Build(c.p, models.TrainingInfo{Method: "jarzynski", StepSize: 0.1, LogZEstimate: math.NaN()})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 7, 256} {
				var rows []int
				if n == 256 && !c.full {
					for i := 0; i < 12; i++ {
						rows = append(rows, i*(n-1)/11)
					}
				}
				eErr, gErr := convParity(t, model, c.p, n, rows, uint64(n))
				t.Logf("batch %3d: energy %.2e, grad %.2e", n, eErr, gErr)
				if eErr > Tolerance || gErr > Tolerance {
					t.Errorf("batch %d: relative error energy %.3g, grad %.3g > %g", n, eErr, gErr, Tolerance)
				}
			}
		})
	}
}

// The conv graph's grad output is the derivative of its energy output
// (float32 central differences, as TestGradIsGradientOfEnergy), here with
// image-shaped input.
func TestConvGradIsGradientOfEnergy(t *testing.T) {
	needORT(t)
	for i, c := range smallConvCases {
		t.Run(c.name, func(t *testing.T) {
			p := testConv(t, c.spec, uint64(20+i))
			model, err := Build(p, models.TrainingInfo{})
			if err != nil {
				t.Fatal(err)
			}
			d := p.Spec.Dim
			x := testPoints(p, 3, 5)
			var probes [][2]int
			for r := 0; r < 3; r++ {
				for j := 0; j < 8; j++ {
					probes = append(probes, [2]int{r, (r*11 + 5*j) % d})
				}
			}
			checkGradIsGradient(t, model, x, d, probes, 1e-2, 2e-3)
		})
	}
}

// jarzyn-export on a conv run: the check feeds [n, C, H, W], passes, writes
// the model with data_shape [C, H, W] and no latent model.
func TestRunConv(t *testing.T) {
	needORT(t)
	p := testConv(t, smallConvCases[1].spec, 3)
	run := t.TempDir()
	writeWeights(t, run, p, testPoints(p, 30, 2))
	out := filepath.Join(t.TempDir(), "model.onnx")
	res, err := Run(context.Background(), Options{RunDir: run, Out: out, N: 256})
	if err != nil {
		t.Fatal(err)
	}
	if res.EnergyErr > Tolerance || res.GradErr > Tolerance || res.EnergyErr == 0 || res.LatentOut != "" {
		t.Errorf("result %+v", res)
	}
	model, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	props, _, _, doc, version := readBack(t, model)
	m, err := models.ParseONNXMeta(props, version)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.DataShape, []int{2, 5, 5}) || m.Family != models.Conv || m.Dim() != 50 {
		t.Errorf("metadata data shape %v, family %s", m.DataShape, m.Family)
	}
	t.Log(doc)
	// a model whose input shape disagrees with the points is refused
	if _, _, err := Parity(model, make([]float64, 2*49), 2, make([]float64, 2), make([]float64, 2*49)); err == nil {
		t.Error("Parity accepted 49 values per point for a [2, 5, 5] input")
	}
	if _, err := os.Stat(models.LatentPath(out)); err == nil {
		t.Error("a latent model was written for a conv model")
	}
}

// testConvGolden is the conv model of the golden listing (TestGraphGolden):
// stride 2 with output_padding [1, 0], LeakyReLU, a hidden layer.
func testConvGolden(t testing.TB) *models.Params {
	t.Helper()
	return testConv(t, smallConv([]int{2, 6, 7}, []models.ConvLayer{
		{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: models.SiLU},
		{Out: 2, Kernel: 2, Stride: 1, Pad: 0, Activation: models.LeakyReLU, Slope: 0.1},
	}, []int{4}, models.Tanh, 0), 1)
}

// BenchmarkConvMNIST times one ONNX Runtime Run of the exported MNIST net
// (docs/METHOD.md §5.2), energy and gradient, on a batch of 256 on the CPU
// with 1 and 2 intra-op threads.
func BenchmarkConvMNIST(b *testing.B) {
	needORT(b)
	p := testConv(b, models.MNISTConvSpec(), 1)
	model, err := Build(p, models.TrainingInfo{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 256
	x := testPoints(p, n, 1)
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("batch=%d/threads=%d", n, threads), func(b *testing.B) {
			opts, err := ort.NewSessionOptions()
			if err != nil {
				b.Fatal(err)
			}
			defer opts.Destroy()
			if err := opts.SetIntraOpNumThreads(threads); err != nil {
				b.Fatal(err)
			}
			if err := opts.SetInterOpNumThreads(1); err != nil {
				b.Fatal(err)
			}
			sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{models.InputX}, []string{models.OutputEnergy, models.OutputGrad}, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Destroy()
			shape := ort.NewShape(n, 1, 28, 28)
			in, err := ort.NewTensor(shape, x32)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Destroy()
			e, err := ort.NewEmptyTensor[float32](ort.NewShape(n))
			if err != nil {
				b.Fatal(err)
			}
			defer e.Destroy()
			g, err := ort.NewEmptyTensor[float32](shape.Clone())
			if err != nil {
				b.Fatal(err)
			}
			defer g.Destroy()
			for i := 0; i < b.N; i++ {
				if err := sess.Run([]ort.Value{in}, []ort.Value{e, g}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/call")
		})
	}
}
