// Package export turns a trained energy model (models.Params) into an ONNX
// model that ONNX Runtime serves: input "x" float32 [batch, d] ([batch, C, H,
// W] for the conv family) with a dynamic batch, outputs "energy" [batch] =
// U(x) and "grad" [batch, d] (or [batch, C, H, W]) = ∇ₓU(x), the
// gradient written out as explicit graph operations (analytic backprop), the
// weights as float32 initializers, ai.onnx opset 17, and the run's metadata
// under jarzyn.* metadata_props (the contract is models.ONNXMeta, which serve
// reads with models.ParseONNXMeta).
//
// The ONNX protobuf is written directly by field number with protowire
// (proto.go); a small builder (builder.go) gives the graphs of each family
// (gmm.go, mlp.go, conv.go) a straight-line form, and ula.go adds an optional fused
// K-step Langevin sampler (BuildULA). Parity evaluates a model with ONNX
// Runtime and compares it with reference numbers; Run is the whole export of
// cmd/jarzyn-export, which refuses to write a model that disagrees with the
// training engine by more than Tolerance.
//
// The package links ONNX Runtime (through internal/ortlib) but not the
// training engine: the reference it checks against is passed in
// (Options.Reference). Package serve imports it to build graphs in memory at
// load time (the fused CPU graphs: ParamsFromModel, BuildFused,
// BuildFusedGrad; the latent sampler's linear maps: BuildMatMul), so
// jarzyn-serve links this package but still no gorgonia; the metadata
// contract the two share lives in package models.
package export
