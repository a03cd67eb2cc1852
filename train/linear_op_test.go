package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/jarzyn/jarzyn/models"
)

// The float64 references of this file are written from the definition
// z[i, o] = b[o] + Σ_k x[i, k]·W[k, o], independently of linear_op.go: the
// adjoints of Σ gy ⊙ z by the same loops, and the gradients of a nonlinear
// cost through the ops by central differences.

// refLinear is z = x·W + b for n rows.
func refLinear(x, w, b []float64, n, in, out int) []float64 {
	z := make([]float64, n*out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			s := b[o]
			for k := 0; k < in; k++ {
				s += x[i*in+k] * w[k*out+o]
			}
			z[i*out+o] = s
		}
	}
	return z
}

// refLinearAdjoint returns ∂/∂x, ∂/∂W and ∂/∂b of Σ gy ⊙ (x·W + b).
func refLinearAdjoint(x, w, gy []float64, n, in, out int) (dx, dw, db []float64) {
	dx, dw, db = make([]float64, n*in), make([]float64, in*out), make([]float64, out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			g := gy[i*out+o]
			db[o] += g
			for k := 0; k < in; k++ {
				dx[i*in+k] += w[k*out+o] * g
				dw[k*out+o] += x[i*in+k] * g
			}
		}
	}
	return dx, dw, db
}

var linearOpSizes = []struct{ n, in, out int }{
	{1, 1, 1}, {1, 3, 4}, {5, 1, 7}, {7, 4, 1}, {17, 2, 128}, {33, 128, 128}, {19, 50, 3}, {64, 784, 16},
}

// Each op (forward with bias, input, weight and bias gradients) against the
// direct loops, in one chunk and in as many chunks as allowed (chunk work
// and rows 1), with the bias a [1, out] matrix (the MLP's) and an [out] vector.
func TestLinearOpsMatchDirect(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testLinearOps[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testLinearOps[float32](t, 2e-5) })
}

func testLinearOps[T Float](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, chunk := range []int{linearChunkFlops, 1} {
		for _, sz := range linearOpSizes {
			for _, bshape := range []tensor.Shape{{1, sz.out}, {sz.out}} {
				t.Run(fmt.Sprintf("n%d_in%d_out%d/b%v/chunk%d", sz.n, sz.in, sz.out, bshape, chunk), func(t *testing.T) {
					defer func(v, r int) { linearChunkFlops, linearMinRows = v, r }(linearChunkFlops, linearMinRows)
					linearChunkFlops = chunk
					if chunk == 1 {
						linearMinRows = 1
					}
					n, in, out := sz.n, sz.in, sz.out
					x, w, b := randSlice(rng, n*in, 1), randSlice(rng, in*out, 0.5), randSlice(rng, out, 1)
					gy := randSlice(rng, n*out, 1)
					wantZ := refLinear(x, w, b, n, in, out)
					wantDX, wantDW, wantDB := refLinearAdjoint(x, w, gy, n, in, out)
					xt, wt, gyt := denseOf[T](x, n, in), denseOf[T](w, in, out), denseOf[T](gy, n, out)
					bt := denseOf[T](b, bshape...)
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
					fw := linearOp[T]{&outBuf{}}
					sh, err := fw.InferShape(xt.Shape(), wt.Shape(), bt.Shape())
					if err != nil || !sh.Eq(tensor.Shape{n, out}) {
						t.Fatalf("InferShape %v %v", sh, err)
					}
					z, err := fw.Do(xt, wt, bt)
					check("forward", z, err, wantZ, tensor.Shape{n, out})
					// the kept output again, after a reshape in place (the
					// energy's final Reshape does one)
					if err := z.(*tensor.Dense).Reshape(n * out); err != nil {
						t.Fatal(err)
					}
					z2, err := fw.Do(xt, wt, bt)
					check("forward again", z2, err, wantZ, tensor.Shape{n, out})
					if z2 != z {
						t.Fatal("Do did not reuse its kept output")
					}
					z3, err := fw.UsePreallocDo(denseOf[T](make([]float64, n*out), n, out), xt, wt, bt)
					check("forward into prealloc", z3, err, wantZ, tensor.Shape{n, out})
					dx, err := linearInputGradOp[T]{&outBuf{}}.Do(gyt, wt)
					check("input gradient", dx, err, wantDX, tensor.Shape{n, in})
					dw, err := linearWeightGradOp[T]{&outBuf{}}.Do(xt, gyt)
					check("weight gradient", dw, err, wantDW, tensor.Shape{in, out})
					db, err := linearBiasGradOp[T]{shape: bshape, out: &outBuf{}}.Do(gyt)
					check("bias gradient", db, err, wantDB, bshape)
				})
			}
		}
	}
}

// The walker-weighted parameter gradient of a layer, added to what is in dw
// and db, against Σ_i c_i (a_iᵀ δ_i, δ_i) from the direct loops, for sizes
// that run in one block of columns and in several.
func TestLinearWeightedParamGrad(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testLinearWeightedParamGrad[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testLinearWeightedParamGrad[float32](t, 2e-5) })
}

func testLinearWeightedParamGrad[T Float](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, sz := range []struct{ n, in, out int }{{1, 1, 1}, {9, 3, 5}, {40, 2, 1}, {300, 7, 128}, {260, 33, 200}} {
		t.Run(fmt.Sprintf("n%d_in%d_out%d", sz.n, sz.in, sz.out), func(t *testing.T) {
			n, in, out := sz.n, sz.in, sz.out
			a, delta, c := randSlice(rng, n*in, 1), randSlice(rng, n*out, 1), randSlice(rng, n, 1)
			dw0, db0 := randSlice(rng, in*out, 1), randSlice(rng, out, 1)
			wantW, wantB := append([]float64(nil), dw0...), append([]float64(nil), db0...)
			for i := 0; i < n; i++ {
				for o := 0; o < out; o++ {
					g := c[i] * delta[i*out+o]
					wantB[o] += g
					for k := 0; k < in; k++ {
						wantW[k*out+o] += a[i*in+k] * g
					}
				}
			}
			dw, db := toT[T](dw0), toT[T](db0)
			linearWeightedParamGrad(toT[T](a), toT[T](delta), c, make([]T, n*out), n, in, out, dw, db)
			if e := maxRelErr(dw, wantW); e > tol {
				t.Fatalf("weight gradient: relative error %.3g", e)
			}
			if e := maxRelErr(db, wantB); e > tol {
				t.Fatalf("bias gradient: relative error %.3g", e)
			}
		})
	}
}

// Bad operands are refused with the shapes named.
func TestLinearOpShapeErrors(t *testing.T) {
	x, w := denseOf[float64](make([]float64, 6), 2, 3), denseOf[float64](make([]float64, 8), 4, 2)
	if _, err := (linearOp[float64]{&outBuf{}}).Do(x, w, denseOf[float64](make([]float64, 2), 1, 2)); err == nil {
		t.Fatal("x [2 3] · W [4 2] was accepted")
	}
	w = denseOf[float64](make([]float64, 6), 3, 2)
	if _, err := (linearOp[float64]{&outBuf{}}).Do(x, w, denseOf[float64](make([]float64, 3), 1, 3)); err == nil {
		t.Fatal("a bias of 3 values for 2 outputs was accepted")
	}
	if _, err := (linearOp[float32]{&outBuf{}}).Do(x, w, denseOf[float64](make([]float64, 2), 1, 2)); err == nil {
		t.Fatal("float64 inputs to a float32 op were accepted")
	}
}

// The ops inside a gorgonia graph, under a nonlinear cost
// C = Σ gy ⊙ tanh(z)² with z = x·W + b: the symbolic gradients with respect
// to x, W and b against central differences of C (computed in float64 from
// refLinear), on a tape machine run twice.
func TestLinearOpSymDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	n, in, out := 6, 4, 3
	x, w, b, gy := randSlice(rng, n*in, 1), randSlice(rng, in*out, 0.7), randSlice(rng, out, 1), randSlice(rng, n*out, 1)
	g := G.NewGraph()
	xn := G.NewMatrix(g, tensor.Float64, G.WithShape(n, in), G.WithName("x"), G.WithValue(denseOf[float64](x, n, in)))
	wn := G.NewMatrix(g, tensor.Float64, G.WithShape(in, out), G.WithName("w"), G.WithValue(denseOf[float64](w, in, out)))
	bn := G.NewMatrix(g, tensor.Float64, G.WithShape(1, out), G.WithName("b"), G.WithValue(denseOf[float64](b, 1, out)))
	gn := G.NewMatrix(g, tensor.Float64, G.WithShape(n, out), G.WithName("gy"), G.WithValue(denseOf[float64](gy, n, out)))
	z, err := applyLinear[float64](xn, wn, bn)
	if err != nil {
		t.Fatal(err)
	}
	th, err := applyActivation(models.Tanh, z)
	if err != nil {
		t.Fatal(err)
	}
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(G.Must(G.HadamardProd(th, th)), gn))))
	grads, err := G.Grad(cost, xn, wn, bn)
	if err != nil {
		t.Fatal(err)
	}
	ref := func() float64 {
		zz := refLinear(x, w, b, n, in, out)
		c := 0.0
		for i, v := range zz {
			c += gy[i] * math.Tanh(v) * math.Tanh(v)
		}
		return c
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for run := 0; run < 2; run++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		if c := cost.Value().Data().(float64); math.Abs(c-ref()) > 1e-12 {
			t.Fatalf("run %d: cost %v, reference %v", run, c, ref())
		}
		for k, v := range [][]float64{x, w, b} {
			got := valueData[float64](grads[k])
			for i := range v {
				want := centralDiff(v, i, 1e-5, ref)
				if math.Abs(got[i]-want) > 1e-7*math.Max(1, math.Abs(want)) {
					t.Fatalf("run %d: gradient %d [%d] = %v, central difference %v", run, k, i, got[i], want)
				}
			}
		}
	}
}

// A walker graph of an MLP, once built, evaluates without allocating its
// layers again: the linear and activation ops keep their outputs. Each n×H
// tensor is 64 KiB here; a run may allocate a few small ones ([n] vectors).
// The parameter gradients that gorgonia's symbolic differentiation adds are
// never computed.
func TestWalkerEvalSteadyStateAllocations(t *testing.T) {
	spec := models.Spec{Family: models.MLP, Dim: 3, Hidden: []int{64, 64}, Activation: models.SiLU, BaseStd: 1}
	p := testParams(t, spec, 5)
	ps := newParamSet[float32](p)
	n := 256
	e, err := newWalkerEval[float32](ps, n, true)
	if err != nil {
		t.Fatal(err)
	}
	u, gx := make([]float64, n), make([]float32, n*spec.Dim)
	for i := range e.X {
		e.X[i] = float32(i%7) - 3
	}
	var before, after runtime.MemStats
	for run := 0; run < 12; run++ {
		if run == 2 {
			runtime.ReadMemStats(&before)
		}
		if err := e.run(u, gx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 32<<10 {
		t.Fatalf("a walker evaluation allocates %d bytes; one n×H layer is %d", per, n*64*4)
	}
	ops := 0
	for _, nd := range e.u.Graph().AllNodes() {
		switch nd.Op().(type) {
		case linearWeightGradOp[float32], linearBiasGradOp[float32]:
			if nd.Value() != nil {
				t.Fatalf("the walker graph computed %v, which nothing reads", nd.Op())
			}
		case linearOp[float32], linearInputGradOp[float32]:
			ops++
		}
	}
	if ops != 6 {
		t.Fatalf("the walker graph has %d linear and input-gradient ops, want 6", ops)
	}
}
