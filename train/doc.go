// Package train trains energy-based models with Jarzynski-weighted sequential
// Monte Carlo (docs/METHOD.md §2), or with the PCD and CD baselines (§4), on
// gorgonia graphs built from a models.Spec. It is the library behind
// cmd/jarzyn-train.
//
// # Configuration
//
// [Config] is a whole run: method, dtype (float64 or float32 graphs), device,
// iterations, the energy family ([ModelConfig], a models.Spec plus its
// initialisation), the data ([DataConfig], a Gaussian-mixture teacher from
// package datasets), the walkers ([WalkerConfig]: N, step size h, ULA steps
// per update, initialisation, monitor population), resampling
// ([ResampleConfig]), the CD baseline ([CDConfig]), the optimizer
// ([OptimizerConfig]) and logging ([LogConfig]). Every field documents its
// default. [LoadConfig] reads a YAML file through internal/config with
// JARZYN_* environment variables and key=value overrides on top, and
// [Config.Validate] names the first bad key.
//
// # The training loop
//
// [Run] trains as configured and writes the run dir. A fresh run draws θ0,
// starts the walkers as exact samples of ρθ0 (or on the data, for PCD and CD)
// with log Z_ref = log Z_θ0 in closed form, and then repeats: the weighted
// parameter gradient (mean ∂θU over a data batch minus Σ p_i ∂θU(X_i)), one
// or more ULA moves at the old parameters, the optimizer step, one
// evaluation of U and ∇ₓU at the new walkers and parameters, the Jarzynski
// log-weight increment, and resampling when ESS/N falls below the threshold.
// The walker arithmetic (moves, increments, ESS, log-mean-exp, resampling
// that permutes every per-walker cache) is package smc's; this package holds
// the walker population's graph and its per-layer caches, so that the
// walker term of the gradient comes from the same backward pass as ∇ₓU. An
// optional monitor population follows the same parameter path with its own
// weights but never enters the gradient, for an unbiased log Ẑ and
// cross-entropy estimate.
//
// The graphs are gorgonia tape machines built once per run (the walker
// energy and its gradients, and the data term of the loss), with fused
// activation operators for the MLP family. The optimizers are plain
// gradient descent and Adam, with per-tensor learning rates, frozen tensors
// or entries, global gradient-norm clipping and a constant or linear
// learning-rate schedule. [EvalEnergy] evaluates U and ∇ₓU of any
// parameters with the same graphs (jarzyn-export checks its ONNX models
// against it).
//
// # Run dir, checkpoints and resuming
//
// A run dir (runs/<name>, or Options.OutDir) holds config.yaml (the resolved
// configuration), metrics.csv (one row every log.every iterations: estimates
// of log Z and the cross-entropy, ESS, resamplings, energies, gradient norm,
// and for mixture teachers the model's mass per mode and the exact and
// estimated KL), checkpoints/latest.ckpt, model.weights (the final
// parameters), plots/*.png and summary.json ([Summary]). Checkpoints hold
// everything needed to continue bit for bit (parameters, optimizer state,
// walkers and their caches, log-weights, log Z_ref, iteration, RNG state)
// and are written atomically with a checksum; Options.Resume continues from
// the latest one. When the context is cancelled, Run writes a checkpoint and
// returns [ErrInterrupted]; a non-finite gradient, energy or log-weight
// stops the run after checkpointing the last good state.
//
// Exact quantities for the metrics come from the closed-form log Z of the
// mixture family, or from quadrature on a grid for 2-D MLPs.
//
// # Devices
//
// The default build runs on the CPU (BLAS through internal/blas). A build
// with -tags cuda runs the graphs on gorgonia's CUDA engine with
// device: cuda; it has not yet been verified on a GPU (docs/GPU.md).
package train
