package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// The float64 references of this file are written from the definitions,
// independently of conv_op.go and of package models:
//
//	y[o, i, j] = b[o] + Σ_{c,u,v} w[o, c, u, v]·x[c, i·S − P + u, j·S − P + v]
//
// (terms outside the image are 0), its adjoints by the same loops, and the
// derivatives of the whole energy by central differences.

type refGeom struct{ C, H, W, Out, K, S, P int }

func (r refGeom) out() (int, int) {
	return (r.H+2*r.P-r.K)/r.S + 1, (r.W+2*r.P-r.K)/r.S + 1
}

func (r refGeom) layer() models.ConvLayer {
	return models.ConvLayer{Out: r.Out, Kernel: r.K, Stride: r.S, Pad: r.P}
}

// refConv is the direct convolution of one sample.
func refConv(r refGeom, x, w, b []float64) []float64 {
	ho, wo := r.out()
	y := make([]float64, r.Out*ho*wo)
	for o := 0; o < r.Out; o++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				s := b[o]
				for c := 0; c < r.C; c++ {
					for u := 0; u < r.K; u++ {
						for v := 0; v < r.K; v++ {
							ih, iw := i*r.S-r.P+u, j*r.S-r.P+v
							if ih < 0 || ih >= r.H || iw < 0 || iw >= r.W {
								continue
							}
							s += w[((o*r.C+c)*r.K+u)*r.K+v] * x[(c*r.H+ih)*r.W+iw]
						}
					}
				}
				y[(o*ho+i)*wo+j] = s
			}
		}
	}
	return y
}

// refConvAdjoint returns ∂/∂x, ∂/∂w and ∂/∂b of Σ gy ⊙ conv(x) for one sample.
func refConvAdjoint(r refGeom, x, w, gy []float64) (dx, dw, db []float64) {
	ho, wo := r.out()
	dx, dw, db = make([]float64, r.C*r.H*r.W), make([]float64, len(w)), make([]float64, r.Out)
	for o := 0; o < r.Out; o++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				g := gy[(o*ho+i)*wo+j]
				db[o] += g
				for c := 0; c < r.C; c++ {
					for u := 0; u < r.K; u++ {
						for v := 0; v < r.K; v++ {
							ih, iw := i*r.S-r.P+u, j*r.S-r.P+v
							if ih < 0 || ih >= r.H || iw < 0 || iw >= r.W {
								continue
							}
							wi, xi := ((o*r.C+c)*r.K+u)*r.K+v, (c*r.H+ih)*r.W+iw
							dx[xi] += w[wi] * g
							dw[wi] += x[xi] * g
						}
					}
				}
			}
		}
	}
	return dx, dw, db
}

func randSlice(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

func toT[T Float](v []float64) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

func denseOf[T Float](v []float64, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(toT[T](v)))
}

// maxRelErr is max|a − b| over max|b| (the vectors' scale).
func maxRelErr[T, U Float](a []T, b []U) float64 {
	num, den := 0.0, 1e-300
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / den
}

var convOpGeoms = []refGeom{
	{C: 1, H: 5, W: 5, Out: 2, K: 3, S: 1, P: 0},
	{C: 3, H: 7, W: 6, Out: 4, K: 3, S: 2, P: 1},
	{C: 2, H: 9, W: 9, Out: 3, K: 5, S: 2, P: 4},
	{C: 4, H: 4, W: 5, Out: 5, K: 2, S: 2, P: 0},
	{C: 2, H: 3, W: 3, Out: 2, K: 5, S: 1, P: 4},
	{C: 3, H: 8, W: 7, Out: 3, K: 4, S: 3, P: 1},
	{C: 1, H: 28, W: 28, Out: 16, K: 5, S: 2, P: 4},
	{C: 16, H: 16, W: 16, Out: 8, K: 3, S: 2, P: 1},
	{C: 2, H: 5, W: 3, Out: 2, K: 1, S: 1, P: 0},
	{C: 3, H: 6, W: 9, Out: 2, K: 3, S: 3, P: 2},
	{C: 1, H: 7, W: 4, Out: 2, K: 4, S: 2, P: 3},
}

// Each op (forward with bias, input gradient, filter and bias gradients, and
// the walker-weighted parameter gradient) against the direct loops, for
// batches of one and several samples, with the default chunks and with one
// sample per chunk (several chunks per worker and per slot), and with the
// patches laid out sample-major and sample-minor (convMinorSamples).
func TestConvOpsMatchDirect(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testConvOps[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testConvOps[float32](t, 2e-5) })
}

func testConvOps[T Float](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, layout := range []struct {
		name  string
		minor int
	}{{"major", math.MaxInt}, {"minor", 1}} {
		for _, chunk := range []int{convChunkFloats, 1} {
			for _, r := range convOpGeoms {
				for _, n := range []int{1, 5, 19} {
					t.Run(fmt.Sprintf("%s/%+v/n%d/chunk%d", layout.name, r, n, chunk), func(t *testing.T) {
						defer func(v, m int) { convChunkFloats, convMinorSamples = v, m }(convChunkFloats, convMinorSamples)
						convChunkFloats, convMinorSamples = chunk, layout.minor
						g := newConvGeom([3]int{r.C, r.H, r.W}, r.layer())
						ho, wo := r.out()
						if g.Ho != ho || g.Wo != wo {
							t.Fatalf("geometry %dx%d, want %dx%d", g.Ho, g.Wo, ho, wo)
						}
						in, out, ckk := r.C*r.H*r.W, r.Out*ho*wo, r.C*r.K*r.K
						x, w, b := randSlice(rng, n*in, 1), randSlice(rng, r.Out*ckk, 0.5), randSlice(rng, r.Out, 1)
						gy, coef := randSlice(rng, n*out, 1), randSlice(rng, n, 1)
						wantY := make([]float64, 0, n*out)
						wantDX := make([]float64, 0, n*in)
						wantDW, wantDB := make([]float64, len(w)), make([]float64, r.Out)
						wantCW, wantCB := make([]float64, len(w)), make([]float64, r.Out)
						for s := 0; s < n; s++ {
							wantY = append(wantY, refConv(r, x[s*in:(s+1)*in], w, b)...)
							dx, dw, db := refConvAdjoint(r, x[s*in:(s+1)*in], w, gy[s*out:(s+1)*out])
							wantDX = append(wantDX, dx...)
							for i := range dw {
								wantDW[i] += dw[i]
								wantCW[i] += coef[s] * dw[i]
							}
							for i := range db {
								wantDB[i] += db[i]
								wantCB[i] += coef[s] * db[i]
							}
						}
						xt, wt, bt, gyt := denseOf[T](x, n, in), denseOf[T](w, r.Out, ckk), denseOf[T](b, r.Out), denseOf[T](gy, n, out)
						check := func(name string, v G.Value, err error, want []float64, shape tensor.Shape) {
							t.Helper()
							if err != nil {
								t.Fatalf("%s: %v", name, err)
							}
							if !v.Shape().Eq(shape) {
								t.Fatalf("%s: shape %v, want %v", name, v.Shape(), shape)
							}
							if e := maxRelErr(v.Data().([]T), want); e > tol {
								t.Fatalf("%s: relative error %.3g", name, e)
							}
						}
						k := newConvKernel[T](g)
						fw := convOp[T]{k}
						y, err := fw.Do(xt, wt, bt)
						check("forward", y, err, wantY, tensor.Shape{n, out})
						// a second run into the first's output (UsePreallocDo)
						y2, err := fw.UsePreallocDo(y, xt, wt, bt)
						check("forward again", y2, err, wantY, tensor.Shape{n, out})
						if y2 != y {
							t.Fatal("UsePreallocDo did not reuse its output")
						}
						sh, err := fw.InferShape(xt.Shape(), wt.Shape(), bt.Shape())
						if err != nil || !sh.Eq(tensor.Shape{n, out}) {
							t.Fatalf("InferShape %v %v", sh, err)
						}
						dx, err := convInputGradOp[T]{newConvKernel[T](g)}.Do(wt, gyt)
						check("input gradient", dx, err, wantDX, tensor.Shape{n, in})
						dw, err := convParamGradOp[T]{k: newConvKernel[T](g)}.Do(xt, gyt)
						check("filter gradient", dw, err, wantDW, tensor.Shape{r.Out, ckk})
						db, err := convParamGradOp[T]{k: newConvKernel[T](g), bias: true}.Do(xt, gyt)
						check("bias gradient", db, err, wantDB, tensor.Shape{r.Out})
						// weighted, added to what is there (weightedParamGrad's use)
						cw, cb := make([]T, len(w)), make([]T, r.Out)
						for i := range cw {
							cw[i] = 1
						}
						k.paramGrad(xt.Data().([]T), gyt.Data().([]T), toT[T](coef), n, cw, cb, true)
						for i := range cw {
							cw[i]--
						}
						if e := maxRelErr(cw, wantCW); e > tol {
							t.Fatalf("weighted filter gradient: relative error %.3g", e)
						}
						if e := maxRelErr(cb, wantCB); e > tol {
							t.Fatalf("weighted bias gradient: relative error %.3g", e)
						}
					})
				}
			}
		}
	}
}

// The ops inside a gorgonia graph: y = conv(x) and the symbolic gradient of
// Σ gy ⊙ y with respect to x, W and b, run on a tape machine twice.
func TestConvOpSymDiff(t *testing.T) {
	r := refGeom{C: 2, H: 6, W: 5, Out: 3, K: 3, S: 2, P: 1}
	rng := rand.New(rand.NewPCG(5, 6))
	n := 4
	ho, wo := r.out()
	in, out, ckk := r.C*r.H*r.W, r.Out*ho*wo, r.C*r.K*r.K
	x, w, b, gy := randSlice(rng, n*in, 1), randSlice(rng, r.Out*ckk, 1), randSlice(rng, r.Out, 1), randSlice(rng, n*out, 1)
	g := G.NewGraph()
	xn := G.NewMatrix(g, tensor.Float64, G.WithShape(n, in), G.WithName("x"), G.WithValue(denseOf[float64](x, n, in)))
	wn := G.NewMatrix(g, tensor.Float64, G.WithShape(r.Out, ckk), G.WithName("w"), G.WithValue(denseOf[float64](w, r.Out, ckk)))
	bn := G.NewVector(g, tensor.Float64, G.WithShape(r.Out), G.WithName("b"), G.WithValue(denseOf[float64](b, r.Out)))
	gn := G.NewMatrix(g, tensor.Float64, G.WithShape(n, out), G.WithName("gy"), G.WithValue(denseOf[float64](gy, n, out)))
	y, err := applyConv[float64](newConvGeom([3]int{r.C, r.H, r.W}, r.layer()), xn, wn, bn)
	if err != nil {
		t.Fatal(err)
	}
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(y, gn))))
	grads, err := G.Grad(cost, xn, wn, bn)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for run := 0; run < 2; run++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		var wantDX []float64
		wantDW, wantDB := make([]float64, len(w)), make([]float64, r.Out)
		for s := 0; s < n; s++ {
			if e := maxRelErr(valueData[float64](y)[s*out:(s+1)*out], refConv(r, x[s*in:(s+1)*in], w, b)); e > 1e-12 {
				t.Fatalf("forward: relative error %.3g", e)
			}
			dx, dw, db := refConvAdjoint(r, x[s*in:(s+1)*in], w, gy[s*out:(s+1)*out])
			wantDX = append(wantDX, dx...)
			for i := range dw {
				wantDW[i] += dw[i]
			}
			for i := range db {
				wantDB[i] += db[i]
			}
		}
		for i, want := range [][]float64{wantDX, wantDW, wantDB} {
			if e := maxRelErr(valueData[float64](grads[i]), want); e > 1e-12 {
				t.Fatalf("gradient %d: relative error %.3g", i, e)
			}
		}
	}
}

// refAct is the activation and its slope for the references.
func refAct(act models.Activation, slope, v float64) float64 {
	switch act {
	case models.SiLU:
		return v / (1 + math.Exp(-v))
	case models.Softplus:
		return math.Log1p(math.Exp(v))
	case models.Tanh:
		return math.Tanh(v)
	case models.LeakyReLU:
		if v < 0 {
			return slope * v
		}
		return v
	}
	return v
}

// refEnergy is the conv family's U(x) for one point, tensors in
// ParamShapes order, the quadratic base included.
func refEnergy(spec models.Spec, tensors [][]float64, x []float64) float64 {
	mu := spec.Mu0()
	u := 0.0
	for k, v := range x {
		u += (v - mu[k]) * (v - mu[k]) / (2 * spec.BaseStd * spec.BaseStd)
	}
	h := x
	c, hh, ww := spec.InputShape[0], spec.InputShape[1], spec.InputShape[2]
	for i, l := range spec.Conv {
		r := refGeom{C: c, H: hh, W: ww, Out: l.Out, K: l.Kernel, S: l.Stride, P: l.Pad}
		h = refConv(r, h, tensors[2*i], tensors[2*i+1])
		slope := l.Slope
		if slope == 0 {
			slope = 0.2
		}
		for j := range h {
			h[j] = refAct(l.Activation, slope, h[j])
		}
		c = l.Out
		hh, ww = r.out()
	}
	lin := append([]int{len(h)}, spec.Hidden...)
	lin = append(lin, 1)
	slope := spec.LeakySlope
	if slope == 0 {
		slope = 0.2
	}
	off := 2 * len(spec.Conv)
	for j := 0; j+1 < len(lin); j++ {
		w, b := tensors[off+2*j], tensors[off+2*j+1]
		z := append([]float64(nil), b...)
		for a := 0; a < lin[j]; a++ {
			for o := 0; o < lin[j+1]; o++ {
				z[o] += h[a] * w[a*lin[j+1]+o]
			}
		}
		if j+2 < len(lin) {
			for o := range z {
				z[o] = refAct(spec.Activation, slope, z[o])
			}
		}
		h = z
	}
	return u + h[0]
}

// convTestSpec is a small conv net with the given activations: two
// convolutions (stride 2 with padding, then stride 1 without) and a hidden
// linear layer.
func convTestSpec(convAct, linAct models.Activation) models.Spec {
	return models.Spec{Family: models.Conv, Dim: 2 * 7 * 6, InputShape: []int{2, 7, 6},
		Conv: []models.ConvLayer{
			{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: convAct, Slope: 0.1},
			{Out: 4, Kernel: 2, Stride: 1, Pad: 0, Activation: convAct},
		},
		Hidden: []int{5}, Activation: linAct, LeakySlope: 0.3, BaseStd: 1.5,
		BaseMean: func() []float64 {
			m := make([]float64, 84)
			for i := range m {
				m[i] = 0.01 * float64(i%7)
			}
			return m
		}()}
}

var convTestActs = []struct{ conv, lin models.Activation }{
	{models.SiLU, models.SiLU},
	{models.Softplus, models.Tanh},
	{models.Tanh, models.Softplus},
	{models.LeakyReLU, models.LeakyReLU},
	{models.Identity, models.SiLU},
}

// randomConvParams draws every tensor, the last layer included, at scale
// 1/sqrt(fan-in).
func randomConvParams(t *testing.T, spec models.Spec, seed uint64) *models.Params {
	t.Helper()
	p, err := models.NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for k := range p.Tensors {
		sh := p.Tensors[k].Shape
		fan := 1
		switch len(sh) {
		case 4:
			fan = sh[1] * sh[2] * sh[3]
		case 2:
			fan = sh[0]
		}
		for i := range p.Tensors[k].Data {
			p.Tensors[k].Data[i] = rng.NormFloat64() / math.Sqrt(float64(fan))
		}
	}
	return p
}

func tensorsOf(p *models.Params) [][]float64 {
	var out [][]float64
	for _, t := range p.Tensors {
		out = append(out, t.Data)
	}
	return out
}

// centralDiff is the central difference of f at v[i].
func centralDiff(v []float64, i int, h float64, f func() float64) float64 {
	old := v[i]
	v[i] = old + h
	up := f()
	v[i] = old - h
	down := f()
	v[i] = old
	return (up - down) / (2 * h)
}

// U, ∇ₓU (walkerEval) and ∂θ mean U over a batch (paramGrad) of the conv
// graph in float64 against the reference energy and its central
// differences, for every activation.
func TestConvEnergyFiniteDifferences(t *testing.T) {
	for _, a := range convTestActs {
		t.Run(string(a.conv)+"_"+string(a.lin), func(t *testing.T) {
			spec := convTestSpec(a.conv, a.lin)
			p := randomConvParams(t, spec, 11)
			tensors := tensorsOf(p)
			const n = 3
			d := spec.Dim
			rng := rand.New(rand.NewPCG(12, 13))
			x := randSlice(rng, n*d, 1)
			ps := newParamSet[float64](p)
			e, err := newWalkerEval[float64](ps, n, false)
			if err != nil {
				t.Fatal(err)
			}
			copy(e.X, x)
			u, gx := make([]float64, n), make([]float64, n*d)
			if err := e.run(u, gx); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				xi := x[i*d : (i+1)*d]
				if want := refEnergy(spec, tensors, xi); math.Abs(u[i]-want) > 1e-10*math.Max(1, math.Abs(want)) {
					t.Fatalf("U[%d] = %v, reference %v", i, u[i], want)
				}
				for k := 0; k < d; k++ {
					fd := centralDiff(xi, k, 1e-5, func() float64 { return refEnergy(spec, tensors, xi) })
					if math.Abs(gx[i*d+k]-fd) > 1e-6*math.Max(1, math.Abs(fd)) {
						t.Fatalf("∇ₓU[%d][%d] = %v, central difference %v", i, k, gx[i*d+k], fd)
					}
				}
			}
			pg, err := newParamGrad[float64](ps, n)
			if err != nil {
				t.Fatal(err)
			}
			copy(pg.Data, x)
			grads := make([][]float64, len(tensors))
			for k := range grads {
				grads[k] = make([]float64, len(tensors[k]))
			}
			meanU, err := pg.run(grads)
			if err != nil {
				t.Fatal(err)
			}
			mean := func() float64 {
				s := 0.0
				for i := 0; i < n; i++ {
					s += refEnergy(spec, tensors, x[i*d:(i+1)*d])
				}
				return s / n
			}
			if want := mean(); math.Abs(meanU-want) > 1e-10*math.Max(1, math.Abs(want)) {
				t.Fatalf("mean U %v, reference %v", meanU, want)
			}
			for k := range tensors {
				for i := range tensors[k] {
					fd := centralDiff(tensors[k], i, 1e-5, mean)
					if math.Abs(grads[k][i]-fd) > 1e-6*math.Max(1, math.Abs(fd)) {
						t.Fatalf("∂U/∂%s[%d] = %v, central difference %v", p.Tensors[k].Name, i, grads[k][i], fd)
					}
				}
			}
		})
	}
}

// The walker term Σ_i c_i ∂θU(X_i) from the walker graph's caches
// (weightedParamGrad) against central differences of Σ_i c_i U(X_i), before
// and after the caches are permuted with the walkers (resampling).
func TestConvWeightedParamGrad(t *testing.T) {
	for _, a := range convTestActs {
		t.Run(string(a.conv)+"_"+string(a.lin), func(t *testing.T) {
			spec := convTestSpec(a.conv, a.lin)
			p := randomConvParams(t, spec, 21)
			tensors := tensorsOf(p)
			const n = 7
			d := spec.Dim
			rng := rand.New(rand.NewPCG(22, 23))
			x := randSlice(rng, n*d, 1)
			c := randSlice(rng, n, 1)
			ps := newParamSet[float64](p)
			e, err := newWalkerEval[float64](ps, n, true)
			if err != nil {
				t.Fatal(err)
			}
			copy(e.X, x)
			if err := e.run(make([]float64, n), make([]float64, n*d)); err != nil {
				t.Fatal(err)
			}
			check := func(x []float64) {
				t.Helper()
				grads := make([][]float64, len(tensors))
				for k := range grads {
					grads[k] = make([]float64, len(tensors[k]))
				}
				e.weightedParamGrad(c, grads)
				f := func() float64 {
					s := 0.0
					for i := 0; i < n; i++ {
						s += c[i] * refEnergy(spec, tensors, x[i*d:(i+1)*d])
					}
					return s
				}
				for k := range tensors {
					for i := range tensors[k] {
						fd := centralDiff(tensors[k], i, 1e-5, f)
						if math.Abs(grads[k][i]-fd) > 1e-6*math.Max(1, math.Abs(fd)) {
							t.Fatalf("walker term ∂/∂%s[%d] = %v, central difference %v", p.Tensors[k].Name, i, grads[k][i], fd)
						}
					}
				}
			}
			check(x)
			idx := []int{3, 3, 0, 6, 1, 1, 2}
			tmp := make([]float64, n*slices64Max(cacheWidths(spec)))
			smc.Gather(e.X, d, idx, tmp[:n*d])
			e.gatherCaches(idx, tmp)
			perm := make([]float64, n*d)
			for i, j := range idx {
				copy(perm[i*d:(i+1)*d], x[j*d:(j+1)*d])
			}
			check(perm)
		})
	}
}

func slices64Max(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// walkerEval on the MNIST net in float32 agrees with float64: U, ∇ₓU and
// the weighted parameter gradient within 1e-4 of their scale.
func TestConvFloat32MatchesFloat64(t *testing.T) {
	spec := models.MNISTConvSpec()
	p := randomConvParams(t, spec, 31)
	const n = 24
	rng := rand.New(rand.NewPCG(32, 33))
	x := randSlice(rng, n*spec.Dim, 1)
	c := randSlice(rng, n, 1.0/n)
	type result struct {
		u, gx []float64
		grads [][]float64
	}
	eval := func(dtype string) result {
		var r result
		switch dtype {
		case "float32":
			r.u, r.gx, r.grads = walkerEvalOnce[float32](t, p, x, c, n)
		default:
			r.u, r.gx, r.grads = walkerEvalOnce[float64](t, p, x, c, n)
		}
		return r
	}
	a, b := eval("float32"), eval("float64")
	if e := maxRelErr(a.u, b.u); e > 1e-4 {
		t.Fatalf("U: relative error %.3g", e)
	}
	if e := maxRelErr(a.gx, b.gx); e > 1e-4 {
		t.Fatalf("∇ₓU: relative error %.3g", e)
	}
	for k := range a.grads {
		if e := maxRelErr(a.grads[k], b.grads[k]); e > 1e-4 {
			t.Fatalf("walker term %s: relative error %.3g", p.Tensors[k].Name, e)
		}
	}
}

func walkerEvalOnce[T Float](t *testing.T, p *models.Params, x, c []float64, n int) (u, gx []float64, grads [][]float64) {
	t.Helper()
	ps := newParamSet[T](p)
	e, err := newWalkerEval[T](ps, n, true)
	if err != nil {
		t.Fatal(err)
	}
	copy(e.X, toT[T](x))
	u = make([]float64, n)
	g := make([]T, len(x))
	if err := e.run(u, g); err != nil {
		t.Fatal(err)
	}
	gt := make([][]T, len(ps.data))
	for k := range gt {
		gt[k] = make([]T, len(ps.data[k]))
	}
	e.weightedParamGrad(c, gt)
	for k := range gt {
		grads = append(grads, toF64(gt[k]))
	}
	return u, toF64(g), grads
}

// convRunConfig is a tiny conv run: 1×6×6 images from a two-prototype
// Gaussian mixture teacher.
func convRunConfig(dtype string) Config {
	cfg := DefaultConfig()
	cfg.Dtype = dtype
	cfg.Model.Spec = models.Spec{Family: models.Conv, InputShape: []int{1, 6, 6},
		Conv: []models.ConvLayer{
			{Out: 3, Kernel: 3, Stride: 1, Pad: 1, Activation: models.SiLU},
			{Out: 4, Kernel: 3, Stride: 2, Pad: 0, Activation: models.LeakyReLU},
		},
		Hidden: []int{8}, Activation: models.SiLU}
	a, b := make([]float64, 36), make([]float64, 36)
	for i := range a {
		if i%6 < 3 {
			a[i] = 2
		} else {
			b[i] = 2
		}
	}
	cfg.Data.Teacher.Means = [][]float64{a, b}
	cfg.Data.Teacher.Masses = []float64{0.3, 0.7}
	cfg.Data.N, cfg.Data.Batch = 96, 32
	cfg.Walkers.N, cfg.Walkers.StepSize, cfg.Walkers.Monitor = 48, 0.05, 16
	cfg.Resample.Threshold = 0.95
	cfg.Optimizer.LR = 0.01
	cfg.Iterations = 14
	cfg.Log.Every, cfg.Log.CheckpointEvery, cfg.Log.Plots = 2, 5, false
	return cfg
}

// A short conv run through Run completes, checkpoints, and a run stopped and
// resumed equals an uninterrupted one bit for bit.
func TestConvRunResumesBitForBit(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cfg := convRunConfig(dtype)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Model.Dim != 36 {
				t.Fatalf("dim %d, want C·H·W = 36", cfg.Model.Dim)
			}
			dirA, dirB := t.TempDir(), t.TempDir()
			sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dirA, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Iterations != cfg.Iterations || sum.CEEstimate == nil || math.IsNaN(*sum.CEEstimate) || math.IsInf(*sum.CEEstimate, 0) {
				t.Fatalf("summary: %d iterations, CE estimate %v", sum.Iterations, sum.CEEstimate)
			}
			half := cfg
			half.Iterations = 6
			if _, err := Run(context.Background(), Options{Config: half, OutDir: dirB, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			if _, err := Run(context.Background(), Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			names := []string{"walkers", "energies", "grads", "log_weights", "param/cw0", "param/cb1", "param/w0", "param/w1", "monitor/walkers", "opt/m/0"}
			ra := readFloats(t, filepath.Join(dirA, CheckpointDir, LatestCkpt), names...)
			rb := readFloats(t, filepath.Join(dirB, CheckpointDir, LatestCkpt), names...)
			moved := false
			for _, name := range names {
				for i := range ra[name] {
					if math.Float64bits(ra[name][i]) != math.Float64bits(rb[name][i]) {
						t.Fatalf("%s[%d]: uninterrupted %v, resumed %v", name, i, ra[name][i], rb[name][i])
					}
				}
				if name == "param/w1" {
					for _, v := range ra[name] {
						moved = moved || v != 0
					}
				}
			}
			if !moved {
				t.Fatal("the last layer never moved from zero")
			}
			if _, err := os.Stat(filepath.Join(dirA, models.WeightsFile)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// model.preset fills the architecture; model.conv and model.input_shape
// come from a YAML file as lists of maps.
func TestConvConfigKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want models.Spec
	}{
		{"mnist", []string{"model.preset=mnist"}, models.MNISTConvSpec()},
		{"cifar", []string{"model.preset=cifar", "model.base_std=2"}, func() models.Spec {
			s := models.CIFARConvSpec()
			s.BaseStd = 2
			return s
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig("", append(tc.sets, "data.teacher.means=[[1],[-1]]", "data.teacher.masses=[0.5,0.5]"))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", cfg.Model.Spec) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("spec %+v, want %+v", cfg.Model.Spec, tc.want)
			}
		})
	}
	yaml := `model:
  family: conv
  input_shape: [1, 6, 6]
  leaky_slope: 0.1
  activation: leaky_relu
  hidden: [8]
  conv:
    - {out: 3, kernel: 3, stride: 1, pad: 1, activation: silu}
    - {out: 4, kernel: 3, stride: 2, pad: 0, activation: leaky_relu, slope: 0.05}
data:
  teacher:
    means: [[1], [-1]]
    masses: [0.5, 0.5]
`
	f := filepath.Join(t.TempDir(), "conv.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := models.Spec{Family: models.Conv, Dim: 36, InputShape: []int{1, 6, 6}, Hidden: []int{8},
		Activation: models.LeakyReLU, LeakySlope: 0.1, BaseStd: 1,
		Conv: []models.ConvLayer{
			{Out: 3, Kernel: 3, Stride: 1, Pad: 1, Activation: models.SiLU},
			{Out: 4, Kernel: 3, Stride: 2, Pad: 0, Activation: models.LeakyReLU, Slope: 0.05},
		}}
	if fmt.Sprintf("%+v", cfg.Model.Spec) != fmt.Sprintf("%+v", want) {
		t.Fatalf("spec %+v, want %+v", cfg.Model.Spec, want)
	}
	if _, err := LoadConfig("", []string{"model.preset=imagenet"}); err == nil {
		t.Fatal("an unknown preset was accepted")
	}
}

// fusedTestSpec is a conv net whose three convolutions all have
// activations (SiLU, LeakyReLU, tanh), so that graphs without taps fuse
// each with its activation and, for batches cut into sample-minor chunks,
// pass the first two outputs on blocked (blockConvs).
func fusedTestSpec() models.Spec {
	return models.Spec{Family: models.Conv, Dim: 64, InputShape: []int{1, 8, 8},
		Conv: []models.ConvLayer{
			{Out: 4, Kernel: 3, Stride: 1, Pad: 1, Activation: models.SiLU},
			{Out: 6, Kernel: 3, Stride: 2, Pad: 1, Activation: models.LeakyReLU, Slope: 0.2},
			{Out: 5, Kernel: 3, Stride: 1, Pad: 1, Activation: models.Tanh},
		},
		Hidden: []int{8}, Activation: models.SiLU, BaseStd: 1.5}
}

// The fused and blocked convolutions (graphs without taps: walker
// evaluation, data term) against the convolution and activation ops one by
// one (the walker graph with taps, checked against the references above):
// U and ∇ₓU agree bit for bit, the data term's parameter gradients to
// rounding (its mean is summed in another order), for batches whose
// chunks are sample-minor (blocked, with a ragged last chunk) or not.
//
// The second net ends on the LeakyReLU, whose sample-minor output is not
// blocked: it is applied as the output is transposed (TransposeLeaky).
func TestConvFusedMatchesUnfused(t *testing.T) {
	leakyLast := fusedTestSpec()
	leakyLast.Conv[1].Activation, leakyLast.Conv[2].Activation = models.Tanh, models.LeakyReLU
	leakyLast.Conv[2].Slope = 0.3
	for _, c := range []struct {
		spec    models.Spec
		n       int
		blocked bool
	}{{fusedTestSpec(), 64, true}, {fusedTestSpec(), 70, true}, {fusedTestSpec(), 20, false}, {leakyLast, 64, true}, {leakyLast, 70, true}} {
		spec := c.spec
		p := randomConvParams(t, spec, 41)
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(fmt.Sprintf("%s_n%d_%s", spec.Conv[2].Activation, c.n, dtype), func(t *testing.T) {
				if got := blockConvs[float64](spec, c.n); got[0] != c.blocked || got[1] != c.blocked || got[2] {
					t.Fatalf("blockConvs = %v, want the first two %v", got, c.blocked)
				}
				if dtype == "float32" {
					checkFused[float32](t, p, c.n)
				} else {
					checkFused[float64](t, p, c.n)
				}
			})
		}
	}
}

func checkFused[T Float](t *testing.T, p *models.Params, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, uint64(n)))
	d := p.Spec.Dim
	x := toT[T](randSlice(rng, n*d, 1.5))
	ps := newParamSet[T](p)
	eval := func(taps bool) ([]float64, []T, *walkerEval[T]) {
		e, err := newWalkerEval[T](ps, n, taps)
		if err != nil {
			t.Fatal(err)
		}
		copy(e.X, x)
		u, g := make([]float64, n), make([]T, n*d)
		for range 2 { // the second run reuses every kept buffer
			if err := e.run(u, g); err != nil {
				t.Fatal(err)
			}
		}
		return u, g, e
	}
	uf, gf, _ := eval(false)
	uu, gu, e := eval(true)
	for i := range uf {
		if uf[i] != uu[i] {
			t.Fatalf("U[%d] fused %v, unfused %v", i, uf[i], uu[i])
		}
	}
	for i := range gf {
		if gf[i] != gu[i] {
			t.Fatalf("∇ₓU[%d] fused %v, unfused %v", i, gf[i], gu[i])
		}
	}
	// the data term's gradient of mean U against the walker term with c = 1/n
	pg, err := newParamGrad[T](ps, n)
	if err != nil {
		t.Fatal(err)
	}
	copy(pg.Data, x)
	fused := make([][]T, len(ps.data))
	want := make([][]T, len(ps.data))
	for k := range fused {
		fused[k], want[k] = make([]T, len(ps.data[k])), make([]T, len(ps.data[k]))
	}
	if _, err := pg.run(fused); err != nil {
		t.Fatal(err)
	}
	c := make([]float64, n)
	for i := range c {
		c[i] = 1 / float64(n)
	}
	e.weightedParamGrad(c, want)
	tol := 1e-12
	if dtypeOf[T]() == tensor.Float32 {
		tol = 1e-4
	}
	for k := range fused {
		if err := maxRelErr(fused[k], want[k]); err > tol {
			t.Fatalf("∂ mean U/∂%s: fused against unfused relative error %.3g", p.Tensors[k].Name, err)
		}
	}
}
