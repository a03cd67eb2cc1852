// Package serve runs exported jarzyn energy models with ONNX Runtime: it loads
// a model.onnx written by package export (one session per model, created once
// and reused), samples from it with the unadjusted Langevin algorithm (ULA) or
// with annealed, Jarzynski-weighted sequential Monte Carlo, writes the samples
// as CSV, NPY or PNG, and serves both the sampler and the energy model over
// HTTP (a JSON sampling endpoint, the Open Inference Protocol v2 and
// Prometheus metrics).
//
// All weight arithmetic (the ULA move, the log-weight increment of SPEC §2,
// ESS, log-mean-exp, resampling) is package smc's, the same code the trainer
// uses; this package only arranges the batches around it.
//
// # Sampling
//
// Plain sampling ([Sample] with Weighted false) starts N walkers from the
// model's base distribution N(μ0, σ0²I) (or uniformly in the data range) and
// applies K ULA steps x ← x − h∇U(x) + √(2h)ξ to the whole batch, one ONNX
// Runtime Run per step.
//
// Weighted sampling anneals from the base Gaussian to the model along
//
//	U_β(x) = (1−β)·|x−μ0|²/(2σ0²) + β·U(x),   β_k = k/K, k = 0..K (linear schedule),
//
// walkers starting as exact base samples with A = 0 and
// logZref = log Z_base = (d/2)·log(2πσ0²). Step k moves the walkers by ULA at
// β_k and adds smc.LogWeightIncrement with (u0, g0) = (U_βk, ∇U_βk) at the old
// positions and (u1, g1) = (U_βk+1, ∇U_βk+1) at the new ones: exactly SPEC §2
// with θ_k replaced by β_k. Optional extra steps at β = 1 follow (the pure
// ULA-bias correction). When ESS/N falls below a threshold the walkers are
// resampled (positions, cached energies and gradients together), logZref is set
// to the current log Ẑ and A to 0. The estimate is
// log Ẑ = logZref + LogMeanExp(A), an unbiased estimate of Z (not log Z) for
// any step size h.
//
// # Performance
//
// Positions live in the ONNX Runtime input tensor itself; energy and gradient
// tensors are created once per batch size and reused across steps (and across
// requests, through a small per-model pool). Noise is drawn in parallel over
// fixed chunks of walkers, each with its own PCG stream derived from the seed
// and the chunk index, so results depend on the seed and N but not on
// GOMAXPROCS.
package serve
