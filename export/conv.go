package export

import (
	"fmt"

	"github.com/jarzyn/jarzyn/models"
)

// convGraph adds U and ∇ₓU of the conv family (docs/METHOD.md §3, "Neural
// energies")
//
//	U(x) = |x − μ0|²/(2σ0²) + f(x),
//	f = lin_L ∘ act ∘ … ∘ lin_0 ∘ flatten ∘ act_n ∘ conv_n ∘ … ∘ act_0 ∘ conv_0,
//
// reading x [batch, C, H, W] and returning energy [batch] and grad [batch,
// C, H, W] (nodes "energy" and "grad"). Each conv_i is an ONNX Conv with the
// spec's kernel, stride and symmetric padding and the weights "cw<i>" [Out,
// In, K, K] as they are; flatten keeps (channel, row, column) order; lin_j
// is h·W_j + b_j as in the MLP.
//
// The gradient is explicit reverse-mode differentiation. Through the linear
// part it is mlpBackward's: δ ← (δ ⊙ act′(z_j))·W_jᵀ, W_L folded into the
// last hidden layer's weights. Reshaped to the last convolution's output
// and times its act′, δ then goes back through each convolution as a
// ConvTranspose with the same weights, kernel, stride and padding: the
// adjoint of a strided, zero-padded correlation. A forward convolution
// leaves the last r = (H + 2P − K) mod S rows (and columns) of its input
// unread when the stride does not divide evenly; output_padding = r restores
// the input's size, those rows getting a zero gradient from f. The base
// term (x − μ0)/σ0² is added last.
func convGraph(b *builder, p *models.Params, x string) (energy, grad string) {
	s := p.Spec
	sh := s.ConvShapes()
	nc := len(s.Conv)

	h := x
	cder := make([]string, nc) // act′ of each convolution; "" for identity
	cw := make([]string, nc)
	for i, l := range s.Conv {
		cw[i] = b.floats(fmt.Sprintf("param/cw%d", i), p.Tensors[2*i].Data, l.Out, sh[i][0], l.Kernel, l.Kernel)
		bias := b.floats(fmt.Sprintf("param/cb%d", i), p.Tensors[2*i+1].Data, l.Out)
		z := b.node(fmt.Sprintf("conv%d/conv", i), "Conv", []string{h, cw[i], bias}, convAttrs(l)...)
		h, cder[i] = convActivation(b, fmt.Sprintf("conv%d/%s", i, l.Activation), l.Activation, models.LeakySlopeOf(l.Activation, l.Slope), z)
	}
	h = b.node("flatten", "Flatten", []string{h}, intAttr("axis", 1))
	b.doc("(channel, row, column) order")

	lin := s.LinearLayers()
	last := len(lin) - 2 // index of the output layer
	slope := models.LeakySlopeOf(s.Activation, s.LeakySlope)
	lder := make([]string, last)
	for j := 0; j < last; j++ {
		w := b.floats(fmt.Sprintf("param/w%d", j), p.Tensors[2*nc+2*j].Data, lin[j], lin[j+1])
		bias := b.floats(fmt.Sprintf("param/b%d", j), p.Tensors[2*nc+2*j+1].Data, lin[j+1])
		z := b.Gemm(fmt.Sprintf("linear%d/gemm", j), h, w, bias, false)
		h, lder[j] = convActivation(b, fmt.Sprintf("linear%d/%s", j, s.Activation), s.Activation, slope, z)
	}

	inv := 1 / (s.BaseStd * s.BaseStd)
	diff := x // x − μ0, with no node when μ0 = 0
	if !allZero(s.Mu0()) {
		diff = b.Sub("base/diff", x, b.floats("base/mean", s.Mu0(), s.InputShape...))
	}
	flatDiff := b.node("base/diff_flat", "Flatten", []string{diff}, intAttr("axis", 1))
	sq := b.ReduceSum("base/sqnorm", b.Mul("base/diff_sq", flatDiff, flatDiff), 1, true)
	b.doc("|x − μ0|²")
	var low *lowRankTerm
	if s.BaseRank() > 0 {
		low = baseLowRank(b, s, flatDiff)
	}
	wL := p.Tensors[2*nc+2*last].Data
	fq := b.GemmScaled(fmt.Sprintf("linear%d/gemm", last), h, b.floats(fmt.Sprintf("param/w%d", last), wL, lin[last], 1), sq, 0.5*inv, false)
	b.doc("f(x) − b_L + |x − μ0|²/(2σ0²)")
	if low != nil {
		fq = b.Add("base/energy", fq, low.energy)
		b.doc("f(x) − b_L + ½(x − μ0)ᵀΣ⁻¹(x − μ0)")
	}
	bL := b.floats(fmt.Sprintf("param/b%d", last), p.Tensors[2*nc+2*last+1].Data, 1)
	energy = b.Squeeze("energy", b.Add("conv/energy", fq, bL), 1)
	b.doc("U = |x − μ0|²/(2σ0²) + f(x)")

	// backward through the linear part, down to δ = ∂f/∂(flattened
	// activations); with no hidden layer it is W_Lᵀ for every row, a
	// constant [1, C, H, W] that broadcasts against the batch
	out := sh[nc]
	var delta string
	if last == 0 {
		delta = b.floats("backward/flat/w_out", wL, 1, out[0], out[1], out[2])
	} else {
		for j := last - 1; j >= 0; j-- {
			wt := fmt.Sprintf("param/w%d", j)
			dz := lder[j]
			if j == last-1 {
				wt = b.floats(fmt.Sprintf("backward/linear%d/w_scaled", j), scaleColumns(p.Tensors[2*nc+2*j].Data, wL, lin[j], lin[j+1]), lin[j], lin[j+1])
			} else {
				dz = b.Mul(fmt.Sprintf("backward/linear%d/act", j), delta, dz)
			}
			delta = b.Gemm(fmt.Sprintf("backward/linear%d/gemm", j), dz, wt, "", true)
		}
		shape := b.initializer(int64Tensor("backward/unflatten_shape", []int64{4}, []int64{-1, int64(out[0]), int64(out[1]), int64(out[2])}))
		delta = b.node("backward/unflatten", "Reshape", []string{delta, shape})
	}
	// backward through the convolutions
	for i := nc - 1; i >= 0; i-- {
		if cder[i] != "" {
			delta = b.Mul(fmt.Sprintf("backward/conv%d/act", i), delta, cder[i])
		}
		l := s.Conv[i]
		in := sh[i]
		attrs := convAttrs(l)
		if ph, pw := (in[1]+2*l.Pad-l.Kernel)%l.Stride, (in[2]+2*l.Pad-l.Kernel)%l.Stride; ph != 0 || pw != 0 {
			attrs = append(attrs, intsAttr("output_padding", int64(ph), int64(pw)))
		}
		delta = b.node(fmt.Sprintf("backward/conv%d/transpose", i), "ConvTranspose", []string{delta, cw[i]}, attrs...)
		b.doc(fmt.Sprintf("∂f/∂(input of conv%d), [batch, %d, %d, %d]", i, in[0], in[1], in[2]))
	}
	base := diff
	if inv != 1 {
		base = b.Mul("base/diff_scaled", diff, b.scalar(inv))
	}
	if low != nil {
		shape := b.initializer(int64Tensor("base/lowrank_grad_shape", []int64{4}, []int64{-1, int64(s.InputShape[0]), int64(s.InputShape[1]), int64(s.InputShape[2])}))
		base = b.Add("base/grad", base, b.node("base/lowrank_grad_image", "Reshape", []string{low.grad, shape}))
		b.doc("Σ⁻¹(x − μ0)")
	}
	grad = b.Add("grad", delta, base)
	b.doc("∇ₓU = ∇ₓf + (x − μ0)/σ0²")
	return energy, grad
}

// convAttrs are the Conv (and ConvTranspose) attributes of a layer.
func convAttrs(l models.ConvLayer) []attribute {
	k, st, pd := int64(l.Kernel), int64(l.Stride), int64(l.Pad)
	return []attribute{intsAttr("kernel_shape", k, k), intsAttr("strides", st, st), intsAttr("pads", pd, pd, pd, pd)}
}

// convActivation applies act (LeakyReLU with the given slope) to z and
// returns the activation and its derivative; the derivative is "" for
// Identity, whose derivative is 1. LeakyReLU's derivative is slope where
// z < 0 and 1 elsewhere, as models.ActivateSlope.
func convActivation(b *builder, prefix string, act models.Activation, slope float64, z string) (y, dy string) {
	switch act {
	case models.Identity:
		return z, ""
	case models.LeakyReLU:
		y = b.node(prefix+"/out", "LeakyRelu", []string{z}, attribute{name: "alpha", typ: attrFloat, f: float32(slope)})
		neg := b.node(prefix+"/negative", "Less", []string{z, b.scalar(0)})
		dy = b.node(prefix+"/deriv", "Where", []string{neg, b.scalar(slope), b.scalar(1)})
		return y, dy
	}
	return activation(b, prefix, act, z)
}
