package train

import (
	"fmt"
	"slices"

	"gonum.org/v1/gonum/blas"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// inputMatrix makes an [r, c] input node backed by a fresh slice it returns.
// When buf is nil a new slice is made; otherwise buf (length r·c) is shared.
func inputMatrix[T Float](g *G.ExprGraph, name string, r, c int, buf []T) (*G.Node, []T) {
	if buf == nil {
		buf = make([]T, r*c)
	}
	t := tensor.New(tensor.WithShape(r, c), tensor.WithBacking(buf))
	return G.NewMatrix(g, dtypeOf[T](), G.WithShape(r, c), G.WithName(name), G.WithValue(t)), buf
}

func inputVector[T Float](g *G.ExprGraph, name string, n int) (*G.Node, []T) {
	buf := make([]T, n)
	t := tensor.New(tensor.WithShape(n), tensor.WithBacking(buf))
	return G.NewVector(g, dtypeOf[T](), G.WithShape(n), G.WithName(name), G.WithValue(t)), buf
}

func valueData[T Float](n *G.Node) []T {
	return n.Value().Data().([]T)
}

// walkerEval computes U and ∇ₓU for a fixed batch of n points with one
// gorgonia tape machine built once: write positions into X, call run, read
// the results.
//
// With taps (MLP only) the same backward pass also yields δ_l = ∂U_i/∂z_l for
// every walker and layer; with the layer inputs a_{l−1} they give any
// walker-weighted parameter gradient Σ_i c_i ∂θU(X_i) without a second
// forward pass (see weightedParamGrad).
type walkerEval[T Float] struct {
	n, d   int
	quad   quadratic
	X      []T // input positions, n×d, written by the caller
	u, gx  *G.Node
	taps   *layerTaps
	deltas G.Nodes // ∂(Σ U)/∂z_l per layer, when taps are kept
	widths []int   // layer widths [d, H1, …, 1] (conv: cacheWidths)
	vm     G.VM
	scaled []T // scratch: c ⊙ δ_l
	ps     *paramSet[T]
	convK  []*convKernel[T] // conv family: one per convolution
	coef   []T              // scratch: c in T (conv)
	saved  [][]T            // per-layer caches kept for a MALA step (saveCaches)
}

func newWalkerEval[T Float](ps *paramSet[T], n int, keepTaps bool, vmOpts ...G.VMOpt) (*walkerEval[T], error) {
	g := G.NewGraph()
	params := ps.nodes(g)
	d := ps.spec.Dim
	x, xs := inputMatrix[T](g, "x", n, d, nil)
	var taps *layerTaps
	if keepTaps {
		taps = &layerTaps{}
	}
	u, err := energyNode[T](g, ps.spec, params, x, n, taps)
	if err != nil {
		return nil, err
	}
	cost, err := G.Sum(u)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	wrt := G.Nodes{x}
	if taps != nil {
		wrt = append(wrt, taps.pre...)
	}
	// Backpropagate, unlike Grad, accepts intermediate nodes (the z_l)
	one := g.AddNode(G.NewConstant(T(1)))
	grads, err := G.Backpropagate(G.Nodes{cost}, G.Nodes{one}, wrt)
	if err != nil {
		return nil, fmt.Errorf("train: differentiating U with respect to x: %w", err)
	}
	// only what U, ∇ₓU and the δ_l need: gorgonia's symbolic differentiation
	// also adds the parameter gradients, which nothing reads
	prog := g.SubgraphRoots(append(G.Nodes{u}, grads...)...)
	e := &walkerEval[T]{n: n, d: d, quad: quadraticOf(ps.spec), X: xs, u: u, gx: grads[0], vm: G.NewTapeMachine(prog, vmOpts...)}
	if taps != nil {
		e.taps, e.deltas, e.widths, e.ps = taps, grads[1:], cacheWidths(ps.spec), ps
		if ps.spec.Family == models.GMM {
			e.widths = []int{d, ps.spec.Modes}
		}
		if ps.spec.Family == models.Conv {
			e.convK, e.coef = convKernels[T](ps.spec), make([]T, n)
		}
		e.scaled = make([]T, n*slices.Max(e.widths))
	}
	return e, nil
}

// layerCaches returns, for the last run, each layer's input a_{l−1} (n×w_{l−1})
// and backprop signal δ_l (n×w_l), as the machine's own buffers.
func (e *walkerEval[T]) layerCaches() (inputs, deltas [][]T) {
	for l := range e.taps.pre {
		if l == 0 {
			inputs = append(inputs, e.X)
		} else {
			inputs = append(inputs, valueData[T](e.taps.inputs[l]))
		}
		deltas = append(deltas, valueData[T](e.deltas[l]))
	}
	return inputs, deltas
}

// weightedParamGrad adds Σ_i c_i ∂θU(X_i) to grads (one slice per parameter
// tensor) from the caches of the last run, one GEMM per layer on the BLAS
// gorgonia uses. MLP: ∂W_l = a_{l−1}ᵀ (c ⊙ δ_l), ∂b_l = Σ_i c_i δ_{l,i}.
// GMM (ℓ_m = x·a_m − ½|a_m|² − z_m, δ = ∂U/∂ℓ): with s = c ⊙ δ,
// ∂a_m = Σ_i s_im x_i − (Σ_i s_im) a_m and ∂z_m = −Σ_i s_im.
// Conv: each convolution's ∂W = Σ_chunks (c ⊙ δ_l)·im2col(a_{l−1})ᵀ, one
// GEMM per chunk of walkers (convKernel.paramGrad); the linear layers as
// the MLP's.
func (e *walkerEval[T]) weightedParamGrad(c []float64, grads [][]T) {
	inputs, deltas := e.layerCaches()
	if len(e.convK) > 0 {
		for i, v := range c {
			e.coef[i] = T(v)
		}
		for l, k := range e.convK {
			k.paramGrad(inputs[l], deltas[l], e.coef, e.n, grads[2*l], grads[2*l+1], true)
		}
	}
	if e.ps.spec.Family == models.GMM {
		d, M := e.widths[0], e.widths[1]
		sc := e.scaled[:e.n*M]
		col := make([]T, M)
		for i := 0; i < e.n; i++ {
			ci := T(c[i])
			for m := 0; m < M; m++ {
				v := ci * deltas[0][i*M+m]
				sc[i*M+m] = v
				col[m] += v
			}
		}
		gemmTN(M, d, e.n, sc, inputs[0], grads[0])
		a := e.ps.data[0]
		for m := 0; m < M; m++ {
			for k := 0; k < d; k++ {
				grads[0][m*d+k] -= col[m] * a[m*d+k]
			}
			grads[1][m] -= col[m]
		}
		return
	}
	for l := len(e.convK); l < len(deltas); l++ {
		linearWeightedParamGrad(inputs[l], deltas[l], c, e.scaled, e.n, e.widths[l], e.widths[l+1], grads[2*l], grads[2*l+1])
	}
}

// gemmTN computes C += Aᵀ·B for A (k×m), B (k×n), C (m×n), row-major.
func gemmTN[T Float](m, n, k int, a, b, c []T) {
	switch a := any(a).(type) {
	case []float32:
		G.WhichBLAS().Sgemm(blas.Trans, blas.NoTrans, m, n, k, 1, a, m, any(b).([]float32), n, 1, any(c).([]float32), n)
	case []float64:
		G.WhichBLAS().Dgemm(blas.Trans, blas.NoTrans, m, n, k, 1, a, m, any(b).([]float64), n, 1, any(c).([]float64), n)
	}
}

func gatherRows[T Float](a []T, w int, idx []int, tmp []T) { smc.Gather(a, w, idx, tmp[:len(a)]) }

// gatherCaches permutes the rows of the layer caches with the walkers.
func (e *walkerEval[T]) gatherCaches(idx []int, tmp []T) {
	if e.taps == nil {
		return
	}
	inputs, deltas := e.layerCaches()
	for l := range deltas {
		if l > 0 {
			gatherRows(inputs[l], e.widths[l], idx, tmp)
		}
		gatherRows(deltas[l], e.widths[l+1], idx, tmp)
	}
}

// run evaluates the graph and copies U (as float64) and ∇ₓU into the outputs.
func (e *walkerEval[T]) run(u []float64, grad []T) error {
	e.vm.Reset()
	if err := e.vm.RunAll(); err != nil {
		return fmt.Errorf("train: evaluating walkers: %w", err)
	}
	setQuadratic(e.quad, e.X, e.d, valueData[T](e.u), u, valueData[T](e.gx), grad)
	return nil
}

// paramGrad computes the gradient of the data term of the loss,
// mean_b U(data_b), for a fixed batch size, and the mean energy of the
// batch. The walker term −Σ_i w_i ∂θU(X_i) comes from the walker graph's
// caches (walkerEval.weightedParamGrad), so the walkers are evaluated once
// per iteration.
type paramGrad[T Float] struct {
	Data  []T // b×d
	d     int
	quad  quadratic
	uData *G.Node
	grads G.Nodes
	vm    G.VM
	reg   *energyReg[T] // the inputs of loss.energy_reg (nil without)
}

func newParamGrad[T Float](ps *paramSet[T], b int, vmOpts ...G.VMOpt) (*paramGrad[T], error) {
	return newRegParamGrad(ps, b, 0, vmOpts...)
}

// newRegParamGrad is newParamGrad whose loss has the energy regulariser
// reg·mean U(data)² (loss.energy_reg, variants_loss.go) when reg > 0.
func newRegParamGrad[T Float](ps *paramSet[T], b int, reg float64, vmOpts ...G.VMOpt) (*paramGrad[T], error) {
	g := G.NewGraph()
	params := ps.nodes(g)
	d := ps.spec.Dim
	xd, ds := inputMatrix[T](g, "data", b, d, nil)
	ud, err := energyNode[T](g, ps.spec, params, xd, b, nil)
	if err != nil {
		return nil, err
	}
	loss, err := G.Mean(ud)
	if err != nil {
		return nil, fmt.Errorf("train: building loss: %w", err)
	}
	var er *energyReg[T]
	if reg > 0 {
		if loss, er, err = addEnergyReg[T](g, ud, loss, b, reg); err != nil {
			return nil, err
		}
	}
	grads, err := G.Grad(loss, params...)
	if err != nil {
		return nil, fmt.Errorf("train: differentiating the loss: %w", err)
	}
	// without the input gradient of the first layer, which gorgonia's
	// symbolic differentiation adds but nothing reads
	prog := g.SubgraphRoots(append(G.Nodes{ud}, grads...)...)
	return &paramGrad[T]{Data: ds, d: d, quad: quadraticOf(ps.spec), uData: ud, grads: grads, vm: G.NewTapeMachine(prog, vmOpts...), reg: er}, nil
}

// run evaluates the loss gradient into grads (one slice per parameter tensor)
// and returns the mean data energy.
func (p *paramGrad[T]) run(grads [][]T) (meanUData float64, err error) {
	p.setBaseEnergies()
	p.vm.Reset()
	if err := p.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("train: evaluating the loss gradient: %w", err)
	}
	for k, gn := range p.grads {
		copy(grads[k], valueData[T](gn))
	}
	ud := valueData[T](p.uData)
	u := make([]float64, len(ud))
	for i, v := range ud {
		u[i] = float64(v)
	}
	addQuadratic[T](p.quad, p.Data, p.d, u, nil)
	s := 0.0
	for _, v := range u {
		s += v
	}
	return s / float64(len(u)), nil
}

// EvalEnergy evaluates U and ∇ₓU of p at the n points x (n×d, row-major) with
// the training engine's gorgonia graph in the given dtype ("float32" or
// "float64"). It is what export checks its ONNX graph against.
func EvalEnergy(p *models.Params, x []float64, n int, dtype string) (energy, grad []float64, err error) {
	if err := p.Check(); err != nil {
		return nil, nil, err
	}
	if len(x) != n*p.Spec.Dim {
		return nil, nil, fmt.Errorf("train: EvalEnergy got %d values for %d points of dim %d", len(x), n, p.Spec.Dim)
	}
	switch dtype {
	case "float32":
		return evalEnergy[float32](p, x, n)
	case "float64", "":
		return evalEnergy[float64](p, x, n)
	}
	return nil, nil, fmt.Errorf("train: dtype must be float32 or float64, got %q", dtype)
}

func evalEnergy[T Float](p *models.Params, x []float64, n int) ([]float64, []float64, error) {
	ps := newParamSet[T](p)
	e, err := newWalkerEval[T](ps, n, false)
	if err != nil {
		return nil, nil, err
	}
	for i, v := range x {
		e.X[i] = T(v)
	}
	u := make([]float64, n)
	g := make([]T, len(x))
	if err := e.run(u, g); err != nil {
		return nil, nil, err
	}
	g64 := make([]float64, len(g))
	for i, v := range g {
		g64[i] = float64(v)
	}
	return u, g64, nil
}
