// Package serve runs exported jarzyn energy models with ONNX Runtime: it loads
// a model.onnx written by package export (one session per model, created once
// and reused), samples from it with the unadjusted Langevin algorithm (ULA) or
// with annealed, Jarzynski-weighted sequential Monte Carlo, writes the samples
// as CSV, NPY or PNG, and serves both the sampler and the energy model over
// HTTP (a JSON sampling endpoint, the Open Inference Protocol v2 and
// Prometheus metrics).
//
// All weight arithmetic (the ULA move, the log-weight increment of docs/METHOD.md §2,
// ESS, log-mean-exp, resampling) is package smc's, the same code the trainer
// uses; this package only arranges the batches around it.
//
// # Sampling
//
// [Sample] picks one of three strategies, each in its own file: plain ULA
// (ula.go), weighted annealing (annealed.go) and, for an MLP with a latent
// model, either of them in the latent space (latent.go); walk.go holds what
// they share (the batch, the workers, the noise, one step around the
// model's evaluation). Each strategy is a stepJob cut at its evaluations, so
// the same code runs a request alone or, through a [Batcher] (batcher.go),
// in one walker batch shared with the other requests on the model
// (continuous batching: requests join and leave between steps).
//
// Plain sampling ([Sample] with Weighted false) starts N walkers from the
// model's base distribution N(μ0, σ0²I) (or uniformly in the data range) and
// applies K ULA steps x ← x − h∇U(x) + √(2h)ξ to the whole batch, one model
// evaluation per step (see Performance for how the batch is cut into Runs).
//
// Weighted sampling anneals from the base Gaussian to the model along
//
//	U_β(x) = (1−β)·|x−μ0|²/(2σ0²) + β·U(x),   β_k = k/K, k = 0..K (linear schedule),
//
// walkers starting as exact base samples with A = 0 and
// logZref = log Z_base = (d/2)·log(2πσ0²). Step k moves the walkers by ULA at
// β_k and adds smc.LogWeightIncrement with (u0, g0) = (U_βk, ∇U_βk) at the old
// positions and (u1, g1) = (U_βk+1, ∇U_βk+1) at the new ones: exactly docs/METHOD.md §2
// with θ_k replaced by β_k. Optional extra steps at β = 1 follow (the pure
// ULA-bias correction). When ESS/N falls below a threshold the walkers are
// resampled (positions, cached energies and gradients together), logZref is set
// to the current log Ẑ and A to 0. The estimate is
// log Ẑ = logZref + LogMeanExp(A); Ẑ itself is unbiased for Z at any step
// size h (log Ẑ is low by about half its variance when the ESS is small).
// With SampleConfig.Kernel mala the moves are Metropolis-adjusted at each β
// and the weights carry only the work of the β steps (annealed.go).
//
// A model with a data-fitted base N(μ0, Σ) (model.base_fit pca) is drawn,
// annealed from and, by default (SampleConfig.Precondition), walked with
// preconditioned moves x ← x − h·Σ∇U + √(2h)·Σ^{1/2}ξ: see pcabase.go.
//
// # Command line
//
// cmd/jarzyn-serve is a thin wrapper around [Main]:
//
//	jarzyn-serve sample --model FILE --n N --steps K [--h H] [--seed S] [--init base|uniform]
//	                    [--weighted [--extra-steps M] [--resample-threshold 0.5] [--resample systematic|multinomial]]
//	                    [--precondition auto|none|base] [--format csv|npy|png] --out FILE
//	jarzyn-serve http (--model FILE [--name NAME] | --models DIR) [--addr :8080]
//
// Both take --device cpu|cuda|auto, --ort-lib PATH (then $JARZYN_ORT_LIB, then
// the project's .deps/onnxruntime), --cuda-ep-lib PATH and --threads N.
// `sample` draws a progress bar only when stderr is a terminal, writes its
// output atomically and prints a JSON summary (files, h, ESS, log Ẑ,
// walker-steps/s) on stdout; Ctrl-C stops it at the next step with exit code
// 130 and nothing written. CSV has a "# x0,x1,…[,log_weight]" header and one
// sample per row; NPY is float32 [N, shape…] with the log-weights of a
// weighted run in FILE.logw.npy; PNG is a scatter (N ≤ 5000) or density plot
// for 2-D data, a histogram for 1-D data and an image grid for image shapes.
//
// # HTTP API
//
//	POST /v1/sample                        {"model","version","n","steps","h","seed","weighted","init",
//	                                        "extra_steps","resample_threshold","resample_scheme","precondition"}
//	                                       → {"shape","samples","log_weights","ess","ess_fraction","log_z","latent_dim","batched",…}
//	GET  /v2, /v2/health/live, /v2/health/ready
//	GET  /v2/models/{name}[/versions/{v}][/ready]
//	POST /v2/models/{name}[/versions/{v}]/infer   x FP32 [batch, shape…] → energy [batch], grad [batch, shape…]
//	GET  /metrics                          Prometheus text: requests, latency histogram, walker-steps/s
//	POST /v2/repository/index              {"ready"} → [{"name","version","state","reason"}] (--models only)
//	POST /v2/repository/models/{name}/load, …/unload
//
// The v2 routes follow the Open Inference Protocol (KServe v2) REST API with
// JSON tensors. Every request body is bounded in size and validated field by
// field; a bad request gets a 4xx with {"error": "<field>: <what is wrong>"}.
// Requests run under a timeout (ServerConfig.Timeout, --timeout) that covers
// waiting for an evaluation slot and the work itself, for /v1/sample and
// /v2 infer alike: it stops the sampler (and a model evaluation in flight),
// and the request gets a 503. At most ServerConfig.MaxConcurrent evaluations
// run at once (--max-concurrent, 2 by default on the command line; a zero
// value in ServerConfig means max(2, GOMAXPROCS/2)), and Serve drains
// in-flight requests on shutdown (SIGTERM).
// With --models DIR the layout is DIR/<name>/<version>/model.onnx; the
// highest version answers routes without one. The server follows the folder
// while it serves (repository.go: rescans every --poll-interval and on
// SIGHUP, --version-policy, the repository endpoints); a model leaves
// service at once and is closed when the last request using it ends
// (Registry.Get, Model.Release).
//
// # Devices
//
// --device cuda uses the CUDA plugin execution provider of an ONNX Runtime ≥
// 1.29 GPU build: RegisterExecutionProviderLibrary on
// libonnxruntime_providers_cuda.so, the CUDA device from GetEpDevices, and
// AppendExecutionProviderV2, with Go's signal handlers saved and restored
// around every native call that may initialise CUDA (the provider replaces
// them, onnxruntime_go issue 140). --device auto falls back to the CPU with
// a log line when any of that fails; --device cuda fails with the reason.
//
// # Performance
//
// Positions live in one contiguous slice that the ONNX Runtime input tensors
// alias; energy and gradient tensors are created once per batch and reused
// across steps (and across requests, through a small per-model pool), so a
// step allocates nothing but ONNX Runtime's own bookkeeping. On the CPU the
// session runs one thread per Run, and the batch is cut into parts of
// SampleConfig.RunBatch walkers (default min(DefaultRunBatch = 1024,
// ⌈N/cores⌉), rounded to 64), one Run per core at a time. In plain ULA each
// core takes a fixed share of the parts through all the steps, evaluating and
// moving them one after another with no barrier between steps (walkers do
// not interact), and a part's activations stay in that core's cache; weighted
// steps wait for each other (the resampling decision needs every weight) and
// the cores take the parts of a step in turn. On the 2-core development
// machine one Run per core beat one multi-threaded Run per step by 1.2–1.6×
// (BenchmarkSampleULA against BenchmarkSampleULAWholeBatch), and dropping the
// per-step barrier gave plain ULA another 1.1–1.5×. The Langevin move is one fused C pass
// (internal/kernels.ULA32: 8-lane xoshiro128** and Box-Muller in AVX2).
//
// CPU sessions of SiLU MLPs do not run the file's graph but the same model
// rebuilt from its weights (export.ParamsFromModel) with jarzyn's operators
// (export.BuildFused, registered with ONNX Runtime by internal/ortops): each
// layer's activation and its derivative in one pass instead of ONNX's
// Sigmoid, Mul, Sub, Mul, Add; the last hidden layer keeps its activations
// only as their dot product with W_L; for d ≤ 8 the first layer's GEMM and
// the gradient's last GEMM are fused with their elementwise neighbours.
// Plain ULA runs a second graph with the gradient alone
// (export.BuildFusedGrad). Both are checked against the file's graph on 256
// probe points at load (1e-4, Model.Fused) and replaced by it otherwise or
// with LoadOptions.NoFused (--no-fused). At d=2, H=128 this made the sampler
// 1.2–1.3× faster (A/B in one process).
// Noise comes from fixed chunks of 64 walkers (smc.Noise): draw k of chunk
// c (k = 0 the start, then one per step) comes from a stream named by the
// seed, k and c, so results depend on the seed and the settings of the walk
// but not on GOMAXPROCS, the run batch or the threads.
//
// # Latent sampling
//
// An MLP energy sees x only through its first layer x·W0. When that layer is
// narrower than the input (H0 < d, e.g. MNIST's 784 pixels into 256 units),
// jarzyn-export also writes model.latent.onnx: the exact reduction of
// models.Latent, an energy V on ℝʳ (r = H0) and an orthonormal basis Q [d, r].
// ULA on x splits into ULA on s = (x − μ0)·Q with V and a linear recursion on
// the rest, whose K-step law is Gaussian in closed form; weighted annealing
// moves s with the same weights and draws the rest exactly from the Gaussian
// factor that every U_β shares. Sampling then walks in ℝʳ and maps back once
// (see sampleLatent): the samples have the distribution of the walk in ℝᵈ,
// and weighted runs the same log Z (tested against the walk in ℝᵈ and against
// closed forms), at a per-step cost independent of d. Runs with
// SampleConfig.FullDim or LoadOptions.NoLatent (--no-latent) walk in ℝᵈ.
package serve
