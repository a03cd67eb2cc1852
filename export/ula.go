package export

import (
	"fmt"

	"github.com/jarzyn/jarzyn/models"
)

// Names of the fused sampling model's inputs and outputs (BuildULA); it also
// has the input "x" and the outputs "energy" and "grad".
const (
	InputNoise    = "noise"                 // float32 [K, batch, d]: ξ_j ~ N(0, I), one slice per step
	InputStepSize = "step_size"             // float32 scalar: h
	OutputX       = "x_out"                 // float32 [batch, d]: the walkers after K steps
	OutputLogW    = "log_weight_increments" // float32 [K, batch]: ΔA of each step
)

// StepsDim is the dim_param naming the number of fused steps K.
const StepsDim = "steps"

// BuildULA exports a fused K-step unadjusted-Langevin sampler of p as a
// serialized ONNX model: an ONNX Loop whose trip count K is the leading
// dimension of the noise (K and batch are both dynamic). Inputs: "x"
// [batch, d], "noise" [K, batch, d] and "step_size" h (float32 scalar).
// Step j is
//
//	x_{j+1} = x_j − h∇U(x_j) + √(2h)·noise[j]
//
// with no clipping, so the Jarzynski log-weight increment of SPEC §2 at
// fixed parameters,
//
//	ΔA_j = −[U(x_{j+1}) − U(x_j)] + ½⟨x_{j+1} − x_j, g_j + g_{j+1}⟩ − (h/4)(|g_{j+1}|² − |g_j|²),
//
// removes the discretisation bias exactly. It is returned per step in
// "log_weight_increments" [K, batch], in float32 (sum them in float64).
// Outputs "x_out", "energy" and "grad" are the walkers after the K steps
// and U, ∇ₓU there; U and ∇ₓU at the input x are computed once more inside
// the model. The metadata are Build's with jarzyn.graph = "ula".
//
// On CPU the fused loop is no clear win over K runs of the Build model with
// the move done in Go (BenchmarkULA, K = 16, one ORT thread, best of 3 on a
// loaded 2-core machine, ns per walker-step, stepwise vs fused: GMM d=2
// n=8192 164 vs 244, GMM d=50 n=8192 794 vs 995, MLP 64×64 n=8192 1069 vs
// 683; n=1024 similar): the per-call overhead it saves is small next to the
// arithmetic, and ONNX Runtime plans a Loop body less well than a flat graph.
// It is meant for accelerators, where it also saves a host round trip per step.
func BuildULA(p *models.Params, info Info) ([]byte, error) {
	info, err := prepare(p, info)
	if err != nil {
		return nil, err
	}
	s := p.Spec
	b := newBuilder("jarzyn_"+string(s.Family)+"_ula",
		fmt.Sprintf("K fused unadjusted-Langevin steps of a jarzyn %s model (d=%d) with per-step Jarzynski log-weight increments.", s.Family, s.Dim))
	batch, d := dim{param: BatchDim}, dim{value: int64(s.Dim)}
	x := b.input(InputX, "walkers, one per row", batch, d)
	noise := b.input(InputNoise, "standard normal noise, one [batch, d] slice per step", dim{param: StepsDim}, batch, d)
	h := b.input(InputStepSize, "step size h (scalar)")
	scale := b.Sqrt("ula/noise_scale", b.Mul("ula/two_h", h, b.scalar(2)))
	b.doc("√(2h)")
	quarterH := b.Mul("ula/quarter_h", h, b.scalar(0.25))
	var u0, g0 string
	b.within("ula/start/", func() { u0, g0 = energyGraph(b, p, x) })
	trips := b.Dim("ula/steps", noise, 0)

	body := b.child("ula/step/", "ula_step", "one ULA step and its log-weight increment")
	iter := body.typedInput("iteration", dtInt64, "step index j")
	cond := body.typedInput("cond", dtBool, "loop condition (always true)")
	xj := body.input("x", "walkers x_j", batch, d)
	uj := body.input("energy", "U(x_j)", batch)
	gj := body.input("grad", "∇U(x_j)", batch, d)
	condOut := body.Identity("cond_out", cond)
	xi := body.Gather("noise_j", noise, iter)
	drift := body.Sub("drift", xj, body.Mul("h_grad", gj, h))
	x1 := body.Add("x_next", drift, body.Mul("scaled_noise", xi, scale))
	body.doc("x_{j+1} = x_j − h∇U(x_j) + √(2h)ξ_j")
	var u1, g1 string
	body.within("next/", func() { u1, g1 = energyGraph(body, p, x1) })
	dot := body.ReduceSum("dot", body.Mul("dx_gsum", body.Sub("dx", x1, xj), body.Add("gsum", gj, g1)), 1, false)
	n0 := body.ReduceSum("grad_sq", body.Mul("grad_sq_terms", gj, gj), 1, false)
	n1 := body.ReduceSum("next_grad_sq", body.Mul("next_grad_sq_terms", g1, g1), 1, false)
	work := body.Sub("work", body.Mul("half_dot", dot, body.scalar(0.5)), body.Sub("energy_change", u1, uj))
	dA := body.Sub("log_weight_increment", work, body.Mul("grad_sq_change", body.Sub("grad_sq_diff", n1, n0), quarterH))
	body.doc("ΔA = −[U(x_{j+1}) − U(x_j)] + ½⟨x_{j+1} − x_j, g_j + g_{j+1}⟩ − (h/4)(|g_{j+1}|² − |g_j|²)")
	body.typedOutput(condOut, dtBool, "")
	body.output(x1, "", batch, d)
	body.output(u1, "", batch)
	body.output(g1, "", batch, d)
	body.output(dA, "", batch)
	bg, err := body.graph()
	if err != nil {
		return nil, err
	}

	b.Loop("ula/loop", trips, []string{x, u0, g0}, bg, OutputX, OutputEnergy, OutputGrad, OutputLogW)
	b.output(OutputX, "walkers after K steps", batch, d)
	b.output(OutputEnergy, "U at x_out", batch)
	b.output(OutputGrad, "∇ₓU at x_out", batch, d)
	b.output(OutputLogW, "Jarzynski log-weight increment of each step", dim{param: StepsDim}, batch)
	return assemble(b, s, info, models.GraphULA)
}
