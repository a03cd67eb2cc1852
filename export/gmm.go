package export

import "github.com/jarzyn/jarzyn/models"

// gmmGraph adds U and ∇ₓU of the Gaussian mixture
//
//	U(x) = −log Σ_m exp(−½|x − a_m|² − z_m),   ∇ₓU = x − Σ_m r_m(x) a_m
//
// reading x [batch, d] and returning the values energy [batch] and grad
// [batch, d] (nodes "energy" and "grad" under the builder's prefix).
//
// Two float32-friendly forms of the same logits are used. The responsibilities
// r = softmax_m(x·a_m − ½|a_m|² − z_m) drop the term −½|x|² that is common to
// every component, so far from the means they do not suffer the cancellation
// of two large squared distances (which would cost ~|x|²·2⁻²⁴ in the logit
// differences). The energy uses the direct squared distances instead, so that
// U stays accurate near a mode where U ≈ 0 but |x|² is large:
//
//	U = min_m v_m − log Σ_m exp(ℓ_m − max ℓ),   v_m = ½|x − a_m|² + z_m,
//	ℓ_m = x·a_m − ½|a_m|² − z_m = ½|x|² − v_m,
//
// which is the numerically stable log-sum-exp (max subtracted via ReduceMax).
func gmmGraph(b *builder, p *models.Params, x string) (energy, grad string) {
	d, m := p.Spec.Dim, p.Spec.Modes
	aData, zData := p.Get("means").Data, p.Get("log_mass").Data
	offset := make([]float64, m) // ½|a_m|² + z_m, computed in float64
	negOffset := make([]float64, m)
	for k := 0; k < m; k++ {
		s := 0.0
		for j := 0; j < d; j++ {
			v := aData[k*d+j]
			s += v * v
		}
		offset[k] = 0.5*s + zData[k]
		negOffset[k] = -offset[k]
	}
	a := b.floats("param/means", aData, m, d)
	z := b.floats("param/log_mass", zData, m)
	c := b.floats("gmm/neg_offset", negOffset, m)

	// responsibilities and gradient
	logits := b.Gemm("gmm/logits", x, a, c, true)
	b.doc("ℓ_m = x·a_m − ½|a_m|² − z_m  (the log-densities up to the common −½|x|²)")
	mx := b.ReduceMax("gmm/logits_max", logits, 1, true)
	e := b.Exp("gmm/exp", b.Sub("gmm/logits_shifted", logits, mx))
	se := b.ReduceSum("gmm/exp_sum", e, 1, true)
	r := b.Div("gmm/responsibilities", e, se)
	pull := b.MatMul("gmm/mean_pull", r, a)
	b.doc("Σ_m r_m a_m")
	grad = b.Sub("grad", x, pull)
	b.doc("∇ₓU = x − Σ_m r_m a_m")

	// energy from direct squared distances
	diff := b.Sub("gmm/diff", b.Unsqueeze("gmm/x_expand", x, 1), a)
	sq := b.ReduceSum("gmm/sqdist", b.Mul("gmm/diff_sq", diff, diff), 2, false)
	v := b.Add("gmm/v", b.Mul("gmm/half_sqdist", sq, b.scalar(0.5)), z)
	b.doc("v_m = ½|x − a_m|² + z_m")
	vmin := b.ReduceMin("gmm/v_min", v, 1, true)
	u := b.Sub("gmm/energy", vmin, b.Log("gmm/log_exp_sum", se))
	energy = b.Squeeze("energy", u, 1)
	b.doc("U = min_m v_m − log Σ_m exp(ℓ_m − max ℓ)")
	return energy, grad
}
