package export

import (
	"fmt"
	"math"

	"github.com/jarzyn/jarzyn/models"
)

// ONNX versions of the exported models: ai.onnx opset 17 with IR version 8
// (the pair released together in ONNX 1.12), which ONNX Runtime ≥ 1.12 loads.
const (
	IRVersion = 8
	Opset     = 17
)

// Names of the model's input and outputs.
const (
	InputX       = "x"      // float32 [batch, d]
	OutputEnergy = "energy" // float32 [batch]: U(x)
	OutputGrad   = "grad"   // float32 [batch, d]: ∇ₓU(x)
)

// BatchDim is the dim_param naming the dynamic batch dimension.
const BatchDim = "batch"

// Build exports p as a serialized ONNX ModelProto with input "x" float32
// [batch, d] and outputs "energy" [batch] and "grad" [batch, d], ∇ₓU computed
// by explicit graph operations, float32 weights as initializers and the
// jarzyn.* metadata_props of info and p.Spec (see the Key… constants).
func Build(p *models.Params, info Info) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("export: no parameters")
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	s := p.Spec
	if s.Family == models.GMM {
		if len(s.BaseMean) != 0 && len(s.BaseMean) != s.Dim {
			return nil, fmt.Errorf("export: base_mean must have dim=%d entries or none, got %d", s.Dim, len(s.BaseMean))
		}
		if s.BaseStd < 0 || math.IsNaN(s.BaseStd) || math.IsInf(s.BaseStd, 0) {
			return nil, fmt.Errorf("export: base_std must be a finite number ≥ 0 (0 = 1), got %v", s.BaseStd)
		}
	}
	for i, v := range s.BaseMean {
		if !finite(v) {
			return nil, fmt.Errorf("export: base_mean[%d] is %v", i, v)
		}
	}
	if err := info.validate(); err != nil {
		return nil, err
	}
	if info.ModelVersion == 0 {
		info.ModelVersion = 1
	}

	b := newBuilder("jarzyn_"+string(s.Family)+"_energy",
		fmt.Sprintf("Energy U(x) and its gradient ∇ₓU(x) of a jarzyn %s model (d=%d).", s.Family, s.Dim))
	batch := dim{param: BatchDim}
	b.input(InputX, "points, one per row", batch, dim{value: int64(s.Dim)})
	switch s.Family {
	case models.GMM:
		gmmGraph(b, p)
	case models.MLP:
		mlpGraph(b, p)
	}
	b.output(OutputEnergy, "U(x), one per row", batch)
	b.output(OutputGrad, "∇ₓU(x), one row per point", batch, dim{value: int64(s.Dim)})
	g, err := b.graph()
	if err != nil {
		return nil, err
	}
	meta, err := metaProps(s, info)
	if err != nil {
		return nil, err
	}
	m := modelProto{
		irVersion:       IRVersion,
		opsets:          []opsetID{{domain: "", version: Opset}},
		producerName:    "jarzyn",
		producerVersion: FormatVersion,
		domain:          "io.github.jarzyn",
		modelVersion:    info.ModelVersion,
		doc:             docString(s, info),
		graph:           g,
		meta:            meta,
	}
	return m.marshal(), nil
}

func docString(s models.Spec, info Info) string {
	arch := fmt.Sprintf("Gaussian mixture with %d unit-covariance modes, U(x) = −log Σ_m exp(−½|x − a_m|² − z_m)", s.Modes)
	if s.Family == models.MLP {
		arch = fmt.Sprintf("quadratic base plus %s perceptron with hidden widths %v, U(x) = |x − μ0|²/(2σ0²) + f(x)", s.Activation, s.Hidden)
	}
	method := info.Method
	if method == "" {
		method = "unknown method"
	}
	return fmt.Sprintf("jarzyn energy-based model (%s) in d=%d, trained with %s. Input x [batch, d]; outputs energy [batch] and grad = ∇ₓU [batch, d]. Metadata under jarzyn.*.",
		arch, s.Dim, method)
}
