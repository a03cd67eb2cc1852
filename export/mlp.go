package export

import (
	"fmt"

	"github.com/jarzyn/jarzyn/models"
)

// mlpGraph adds U and ∇ₓU of the quadratic base plus perceptron
//
//	U(x) = |x − μ0|²/(2σ0²) + f(x),  f = layer_L ∘ act ∘ … ∘ act ∘ layer_0,
//
// where layer_i(h) = h·W_i + b_i, reading x [batch, d] and returning energy
// [batch] and grad [batch, d] (nodes "energy" and "grad" under the builder's
// prefix). The gradient is explicit
// reverse-mode differentiation: δ = W_Lᵀ at the last hidden layer, then
// δ ← (δ ⊙ act′(z_i))·W_iᵀ down to the input, plus (x − μ0)/σ0²; the
// constant first δ is folded into the last hidden layer's weights.
// The activation derivatives are σ(z)(1 + z(1 − σ(z))) for SiLU (computed as
// σ + silu·(1 − σ)), σ(z) for softplus and 1 − tanh² for tanh.
func mlpGraph(b *builder, p *models.Params, x string) (energy, grad string) {
	s := p.Spec
	l := s.Layers()
	last := len(l) - 2 // index of the output layer

	// With the fused operators, the last hidden layer's activations are only
	// needed as their dot product with W_L: FusedSiLUDot computes it and the
	// derivative in one pass, without writing the activations.
	dotLast := b.top().fused && s.Activation == models.SiLU
	// For small d, the first layer's GEMM and the gradient's last GEMM are
	// fused with the elementwise step next to them too (FusedLinearSiLU,
	// FusedMulMatMulT), when there is a second hidden layer.
	small := dotLast && s.Dim <= FusedSmallDim && last > 1
	h := x
	derivs := make([]string, last)
	var dot string // Σ_j act(z_j)·W_L[j], with dotLast
	wL := p.Tensors[2*last].Data
	for i := 0; i < last; i++ {
		w := b.floats(fmt.Sprintf("param/w%d", i), p.Tensors[2*i].Data, l[i], l[i+1])
		bias := b.floats(fmt.Sprintf("param/b%d", i), p.Tensors[2*i+1].Data, l[i+1])
		prefix := fmt.Sprintf("layer%d/%s", i, s.Activation)
		if small && i == 0 {
			h, derivs[i] = b.fusedPair(prefix, FusedLinearSiLU, []string{x, w, bias}, "out", "deriv")
			continue
		}
		z := b.Gemm(fmt.Sprintf("layer%d/gemm", i), h, w, bias, false)
		if dotLast && i == last-1 {
			wOut := b.floats(fmt.Sprintf("param/w%d", last), wL, l[last], 1)
			derivs[i], dot = b.fusedPair(prefix, FusedSiLUDot, []string{z, wOut}, "deriv", "dot")
			break
		}
		h, derivs[i] = activation(b, prefix, s.Activation, z)
	}
	inv := 1 / (s.BaseStd * s.BaseStd)
	diff := x // x − μ0, with no node when μ0 = 0
	if !allZero(s.Mu0()) {
		diff = b.Sub("base/diff", x, b.floats("base/mean", s.Mu0(), s.Dim))
	}
	var low *lowRankTerm
	if s.BaseRank() > 0 {
		low = baseLowRank(b, s, diff)
	}
	if dot != "" && b.top().gradOnly {
		return "", mlpBackward(b, p, diff, derivs, small, low)
	}
	// Mul + ReduceSum: ONNX Runtime 1.30's ReduceSumSquare took 2.5× as long
	// (0.75 against 0.29 ms on 1024×784 floats, one thread)
	sq := b.ReduceSum("base/sqnorm", b.Mul("base/diff_sq", diff, diff), 1, true)
	b.doc("|x − μ0|²")
	var fq string
	if dot != "" {
		// |x − μ0|²·(1/(2σ0²)) + f as one Gemm with a 1×1 B
		fq = b.Gemm(fmt.Sprintf("layer%d/gemm", last), sq, b.floats("base/half_precision", []float64{0.5 * inv}, 1, 1), dot, false)
	} else {
		// the output layer's GEMM adds |x − μ0|²/(2σ0²) as its beta·C
		w := b.floats(fmt.Sprintf("param/w%d", last), wL, l[last], 1)
		fq = b.GemmScaled(fmt.Sprintf("layer%d/gemm", last), h, w, sq, 0.5*inv, false)
	}
	b.doc("f(x) − b_L + |x − μ0|²/(2σ0²)")
	if low != nil {
		fq = b.Add("base/energy", fq, low.energy)
		b.doc("f(x) − b_L + ½(x − μ0)ᵀΣ⁻¹(x − μ0)")
	}
	bias := b.floats(fmt.Sprintf("param/b%d", last), p.Tensors[2*last+1].Data, 1)
	energy = b.Squeeze("energy", b.Add("mlp/energy", fq, bias), 1)
	b.doc("U = |x − μ0|²/(2σ0²) + f(x)")
	return energy, mlpBackward(b, p, diff, derivs, small, low)
}

// mlpBackward adds ∇ₓU to mlpGraph's forward pass (derivs: each hidden
// layer's act′; diff: x − μ0; low: the base's low-rank part, nil without)
// and returns its name.
func mlpBackward(b *builder, p *models.Params, diff string, derivs []string, small bool, low *lowRankTerm) (grad string) {
	name := "grad"
	if low != nil {
		name = "base/grad_isotropic"
	}
	s := p.Spec
	l := s.Layers()
	last := len(l) - 2
	wL := p.Tensors[2*last].Data
	inv := 1 / (s.BaseStd * s.BaseStd)

	// backward pass; ∂f/∂h at the last hidden layer is W_Lᵀ for every row,
	// so its δ ⊙ act′ needs no node: the scale by W_L is folded into that
	// layer's weights, (act′ ⊙ W_Lᵀ)·W_iᵀ = act′·(W_i·diag(W_L))ᵀ. The first
	// layer's GEMM also adds the base term (x − μ0)/σ0² (Gemm's beta·C), so
	// the gradient costs no elementwise pass over [batch, d].
	var delta string
	for i := last - 1; i >= 0; i-- {
		wt := fmt.Sprintf("param/w%d", i)
		dz := derivs[i]
		if small && i == 0 {
			grad = b.fusedOne(name, FusedMulMatMulT, []string{delta, dz, wt, diff, b.floats("base/precision", []float64{inv}, 1)})
			break
		}
		if i == last-1 {
			wt = b.floats(fmt.Sprintf("backward/layer%d/w_scaled", i), scaleColumns(p.Tensors[2*i].Data, wL, l[i], l[i+1]), l[i], l[i+1])
		} else {
			dz = b.Mul(fmt.Sprintf("backward/layer%d/act", i), delta, dz)
		}
		if i == 0 {
			grad = b.GemmScaled(name, dz, wt, diff, inv, true)
			break
		}
		delta = b.Gemm(fmt.Sprintf("backward/layer%d/gemm", i), dz, wt, "", true)
	}
	b.doc("∇ₓU = ∇ₓf + (x − μ0)/σ0², the first layer's backward GEMM with beta = 1/σ0²")
	if low != nil {
		grad = b.Add("grad", grad, low.grad)
		b.doc("∇ₓU = ∇ₓf + Σ⁻¹(x − μ0)")
	}
	return grad
}

// lowRankTerm names the nodes of a base's low-rank part (baseLowRank).
type lowRankTerm struct {
	energy string // ½·Σ_j w_j·c_j², [batch, 1]
	grad   string // Σ_j w_j·c_j·v_j, [batch, d]
}

// baseLowRank adds the part of the base term that Spec.BaseVectors add to
// |x − μ0|²/(2σ0²) (docs/METHOD.md §8, "A data-fitted Gaussian base"): with
// c = (x − μ0)·Vᵀ [batch, k] and w_j = 1/(λ_j + σ0²) − 1/σ0²
// (models.Spec.BasePrecisionWeights), the energy ½·Σ_j w_j·c_j² and the
// gradient (c ⊙ w)·V. diff is x − μ0 as [batch, d] (flatten it first for
// images).
func baseLowRank(b *builder, s models.Spec, diff string) *lowRankTerm {
	k, d := s.BaseRank(), s.Dim
	vt := make([]float64, d*k)
	for j := 0; j < k; j++ {
		for i := 0; i < d; i++ {
			vt[i*k+j] = s.BaseVectors[j*d+i]
		}
	}
	w := s.BasePrecisionWeights()
	half := make([]float64, k)
	for j, v := range w {
		half[j] = 0.5 * v
	}
	c := b.MatMul("base/coords", diff, b.floats("base/vectors_t", vt, d, k))
	b.doc("c = (x − μ0)·Vᵀ, the coordinates along the base's own directions")
	wc := b.Mul("base/weighted_coords", c, b.floats("base/precision_weights", w, k))
	e := b.ReduceSum("base/lowrank_energy", b.Mul("base/half_weighted_sq", b.Mul("base/coords_sq", c, c), b.floats("base/half_precision_weights", half, k)), 1, true)
	b.doc("½·Σ_j w_j·c_j²")
	g := b.MatMul("base/lowrank_grad", wc, b.floats("base/vectors", s.BaseVectors, k, d))
	b.doc("Σ_j w_j·c_j·v_j")
	return &lowRankTerm{energy: e, grad: g}
}

// activation applies act to z and returns the activation and its derivative.
func activation(b *builder, prefix string, act models.Activation, z string) (y, dy string) {
	switch {
	case act == models.SiLU && b.top().fused:
		return b.fusedPair(prefix, FusedSiLU, []string{z}, "out", "deriv")
	case act == models.SiLU:
		sig := b.Sigmoid(prefix+"/sigmoid", z)
		y = b.Mul(prefix+"/out", z, sig)
		one := b.Sub(prefix+"/one_minus_sigmoid", b.scalar(1), sig)
		dy = b.Add(prefix+"/deriv", sig, b.Mul(prefix+"/deriv_term", y, one))
		b.doc("silu′(z) = σ(z) + silu(z)(1 − σ(z))")
	case act == models.Softplus:
		y = b.Softplus(prefix+"/out", z)
		dy = b.Sigmoid(prefix+"/deriv", z)
	case act == models.Tanh:
		y = b.Tanh(prefix+"/out", z)
		dy = b.Sub(prefix+"/deriv", b.scalar(1), b.Mul(prefix+"/out_sq", y, y))
	default:
		panic(fmt.Sprintf("export: unknown activation %q", act)) // Spec.Validate rules this out
	}
	return y, dy
}

// scaleColumns returns w [rows, cols] (row-major) with column j times c[j].
func scaleColumns(w, c []float64, rows, cols int) []float64 {
	out := make([]float64, len(w))
	for r := 0; r < rows; r++ {
		for j := 0; j < cols; j++ {
			out[r*cols+j] = w[r*cols+j] * c[j]
		}
	}
	return out
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
