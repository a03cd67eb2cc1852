package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	_ "github.com/jarzyn/jarzyn/internal/blas"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// Float is the element type the graphs run in.
type Float interface{ float32 | float64 }

func dtypeOf[T Float]() tensor.Dtype {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// paramSet holds the engine's master copy of the parameters in T, one slice
// per tensor in models.Spec.ParamShapes order. Graph nodes are backed by these
// slices, so an optimizer step in place is seen by every graph.
type paramSet[T Float] struct {
	spec   models.Spec
	shapes []models.TensorShape
	data   [][]T
}

func newParamSet[T Float](p *models.Params) *paramSet[T] {
	ps := &paramSet[T]{spec: p.Spec, shapes: p.Spec.ParamShapes()}
	for _, t := range p.Tensors {
		d := make([]T, len(t.Data))
		for i, v := range t.Data {
			d[i] = T(v)
		}
		ps.data = append(ps.data, d)
	}
	return ps
}

// set copies p into the master slices (shapes must match).
func (ps *paramSet[T]) set(p *models.Params) {
	for k, t := range p.Tensors {
		for i, v := range t.Data {
			ps.data[k][i] = T(v)
		}
	}
}

// params converts the master copy to float64 models.Params.
func (ps *paramSet[T]) params() *models.Params {
	p, _ := models.NewParams(ps.spec)
	for k := range p.Tensors {
		for i, v := range ps.data[k] {
			p.Tensors[k].Data[i] = float64(v)
		}
	}
	return p
}

// nodes creates graph nodes for the parameters in g, backed by the master slices.
// Biases are [1, H] matrices so they broadcast over the batch; conv filters
// [Out, In, K, K] are [Out, In·K·K] matrices (same memory) and conv biases
// vectors (see convOp).
func (ps *paramSet[T]) nodes(g *G.ExprGraph) G.Nodes {
	dt := dtypeOf[T]()
	var out G.Nodes
	for k, s := range ps.shapes {
		shape := s.Shape
		if len(shape) == 1 && (ps.spec.Family == models.MLP || ps.spec.Family == models.Conv && s.Name[0] == 'b') {
			shape = []int{1, shape[0]}
		}
		if len(shape) == 4 {
			shape = []int{shape[0], shape[1] * shape[2] * shape[3]}
		}
		t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ps.data[k]))
		var n *G.Node
		if len(shape) == 2 {
			n = G.NewMatrix(g, dt, G.WithShape(shape...), G.WithName(s.Name), G.WithValue(t))
		} else {
			n = G.NewVector(g, dt, G.WithShape(shape...), G.WithName(s.Name), G.WithValue(t))
		}
		out = append(out, n)
	}
	return out
}

// energyNode builds the parametric part of U for a batch x [n, d] and returns
// a node of shape [n]; see quadratic for the rest.
//
// With taps non-nil, the layer inputs a_{l−1} and pre-activations z_l (MLP;
// conv: the convolutions' outputs, then the linear layers'), or x and the
// mixture logits ℓ (GMM), are recorded so that per-walker
// backprop signals can be read back.
func energyNode[T Float](g *G.ExprGraph, spec models.Spec, params G.Nodes, x *G.Node, n int, taps *layerTaps) (*G.Node, error) {
	switch spec.Family {
	case models.GMM:
		return gmmEnergy[T](g, spec, params, x, n, taps)
	case models.MLP:
		return mlpEnergy[T](g, spec, params, x, n, taps)
	case models.Conv:
		return convEnergy[T](g, spec, params, x, n, taps)
	}
	return nil, fmt.Errorf("train: unknown family %q", spec.Family)
}

func scalar[T Float](g *G.ExprGraph, v float64) *G.Node {
	return G.NewConstant(T(v))
}

// gmmEnergy builds the parametric part of the mixture energy:
// ℓ_m = x·a_m − ½|a_m|² − z_m and −LSE_m(ℓ), with the row maximum subtracted
// for stability. The full energy is ½|x|² − LSE_m(ℓ); the parameter-free
// ½|x|² is added by addQuadratic.
func gmmEnergy[T Float](g *G.ExprGraph, spec models.Spec, params G.Nodes, x *G.Node, n int, taps *layerTaps) (*G.Node, error) {
	a, z := params[0], params[1]
	var err error
	must := func(nd *G.Node, e error) *G.Node {
		if e != nil && err == nil {
			err = e
		}
		return nd
	}
	half := scalar[T](g, 0.5)
	xa := must(G.Mul(x, must(G.Transpose(a))))                          // [n, M]
	aa := must(G.HadamardProd(must(G.Sum(must(G.Square(a)), 1)), half)) // [M]
	if err != nil {
		return nil, fmt.Errorf("train: building gmm energy: %w", err)
	}
	c := must(G.Add(aa, z))                               // [M]
	c2 := must(G.Reshape(c, tensor.Shape{1, spec.Modes})) // [1, M]
	l := must(G.BroadcastSub(xa, c2, nil, []byte{0}))     // [n, M]
	if taps != nil {
		taps.inputs, taps.pre = G.Nodes{x}, G.Nodes{l}
	}
	mx := must(G.Max(l, 1))                                                                // [n]
	sh := must(G.BroadcastSub(l, must(G.Reshape(mx, tensor.Shape{n, 1})), nil, []byte{1})) // [n, M]
	lse := must(G.Add(must(G.Log(must(G.Sum(must(G.Exp(sh)), 1)))), mx))                   // [n]
	u := must(G.Neg(lse))
	if err != nil {
		return nil, fmt.Errorf("train: building gmm energy: %w", err)
	}
	return u, nil
}

// layerTaps records, per MLP layer l, its input a_{l−1} and its
// pre-activation z_l = a_{l−1}·W_l + b_l.
type layerTaps struct {
	inputs, pre G.Nodes
}

func mlpEnergy[T Float](g *G.ExprGraph, spec models.Spec, params G.Nodes, x *G.Node, n int, taps *layerTaps) (*G.Node, error) {
	act := func(h *G.Node) (*G.Node, error) { return applyActivation(spec.Activation, h) }
	return linearStack[T](x, params, len(spec.Layers())-1, act, n, taps)
}

// linearStack builds layers linear layers h ← h·W_j + b_j (params W_0, b_0,
// W_1, …; see linearLayer), each but the last followed by act, and returns
// the [n] output. With taps non-nil it records each layer's input and
// pre-activation.
func linearStack[T Float](h *G.Node, params G.Nodes, layers int, act func(*G.Node) (*G.Node, error), n int, taps *layerTaps) (*G.Node, error) {
	var err error
	must := func(nd *G.Node, e error) *G.Node {
		if e != nil && err == nil {
			err = e
		}
		return nd
	}
	for j := 0; j < layers; j++ {
		w, b := params[2*j], params[2*j+1]
		in := h
		h = must(linearLayer[T](h, w, b))
		if taps != nil {
			taps.inputs = append(taps.inputs, in)
			taps.pre = append(taps.pre, h)
		}
		if err != nil {
			return nil, fmt.Errorf("train: building linear layer %d: %w", j, err)
		}
		if j < layers-1 {
			h = must(act(h))
		}
	}
	f := must(G.Reshape(h, tensor.Shape{n}))
	if err != nil {
		return nil, fmt.Errorf("train: building the energy's output: %w", err)
	}
	return f, nil
}

// linearLayer is h·W + b for a batch h [n, in]: one linearOp on the CPU. A
// CUDA build keeps gorgonia's matrix product and broadcast add, which run on
// the GPU (docs/GPU.md); linearOp has no CUDA kernel.
func linearLayer[T Float](h, w, b *G.Node) (*G.Node, error) {
	if !CUDAEnabled {
		return applyLinear[T](h, w, b)
	}
	hw, err := G.Mul(h, w)
	if err != nil {
		return nil, err
	}
	return G.BroadcastAdd(hw, b, nil, []byte{0})
}

// quadratic describes the parameter-free part of an energy family,
// c·|x − μ|² (GMM: c = ½, μ = 0; MLP and conv: c = 1/(2σ0²), μ = μ0). It is added to U
// and its gradient 2c(x − μ) to ∇ₓU in one fused pass outside the graphs,
// which saves the graphs two n×d temporaries and a broadcast per evaluation
// and leaves parameter gradients unchanged.
type quadratic struct {
	c   float64
	mu  []float64    // nil means 0
	low *lowRankBase // the base's own directions (Spec.BaseVectors); nil when none
}

func quadraticOf(spec models.Spec) quadratic {
	if spec.Family == models.GMM {
		return quadratic{c: 0.5}
	}
	q := quadratic{c: 0.5 / (spec.BaseStd * spec.BaseStd)}
	for _, v := range spec.BaseMean {
		if v != 0 {
			q.mu = spec.Mu0()
			break
		}
	}
	q.low = newLowRankBase(spec)
	return q
}

// addQuadratic adds the quadratic to u (length n) and, when grad is
// non-nil, its gradient to grad (n×d), for points x (n×d).
func addQuadratic[T Float](q quadratic, x []T, d int, u []float64, grad []T) {
	setQuadratic(q, x, d, nil, u, nil, grad)
}

// setQuadratic is addQuadratic onto the graph's parametric part: u = uf + the
// quadratic and grad = gf + its gradient, in the same pass over the walkers
// (the sums are those of a copy followed by addQuadratic). A nil uf or gf
// leaves u or grad as they are before the addition.
func setQuadratic[T Float](q quadratic, x []T, d int, uf []T, u []float64, gf, grad []T) {
	smc.For(len(u), func(lo, hi int) {
		c2 := 2 * q.c
		for i := lo; i < hi; i++ {
			row := x[i*d : (i+1)*d]
			s := 0.0
			if grad == nil {
				for k, v := range row {
					t := float64(v)
					if q.mu != nil {
						t -= q.mu[k]
					}
					s += t * t
				}
			} else {
				g, src := grad[i*d:(i+1)*d], grad[i*d:(i+1)*d]
				if gf != nil {
					src = gf[i*d : (i+1)*d]
				}
				src = src[:len(row)]
				g = g[:len(row)]
				for k, v := range row {
					t := float64(v)
					if q.mu != nil {
						t -= q.mu[k]
					}
					s += t * t
					g[k] = src[k] + T(c2*t)
				}
			}
			if uf != nil {
				u[i] = float64(uf[i])
			}
			u[i] += q.c * s
		}
		if q.low != nil {
			addLowRank(q.low, x[lo*d:hi*d], q.mu, u[lo:hi], rowsOrNil(grad, lo*d, hi*d))
		}
	})
}
