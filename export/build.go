package export

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jarzyn/jarzyn/models"
)

// ONNX versions of the exported models: ai.onnx opset 17 with IR version 8
// (the pair released together in ONNX 1.12), which ONNX Runtime ≥ 1.12 loads.
const (
	IRVersion = 8
	Opset     = 17
)

// BatchDim is the dim_param naming the dynamic batch dimension.
const BatchDim = "batch"

// Build exports p as a serialized ONNX ModelProto with input "x" float32
// [batch, data shape…] and outputs "energy" [batch] and "grad" [batch, data
// shape…] (the data shape is Spec.DataShape: [d], or [C, H, W] for the conv
// family), ∇ₓU computed by explicit graph operations, float32 weights as
// initializers and the jarzyn.* metadata_props of info and p.Spec
// (models.ONNXMeta, read back with models.ParseONNXMeta).
func Build(p *models.Params, info models.TrainingInfo) ([]byte, error) {
	info, err := prepare(p, info)
	if err != nil {
		return nil, err
	}
	s := p.Spec
	b := newBuilder("jarzyn_"+string(s.Family)+"_energy",
		fmt.Sprintf("Energy U(x) and its gradient ∇ₓU(x) of a jarzyn %s model (d=%d).", s.Family, s.Dim))
	shape := []dim{{param: BatchDim}}
	for _, v := range s.DataShape() {
		shape = append(shape, dim{value: int64(v)})
	}
	b.input(models.InputX, "points, one per row", shape...)
	energyGraph(b, p, models.InputX)
	b.output(models.OutputEnergy, "U(x), one per row", shape[0])
	b.output(models.OutputGrad, "∇ₓU(x), one row per point", shape...)
	return assemble(b, s, info, models.GraphEnergy)
}

// prepare validates the parameters and info and fills Info's defaults.
func prepare(p *models.Params, info models.TrainingInfo) (models.TrainingInfo, error) {
	if p == nil {
		return info, fmt.Errorf("export: no parameters")
	}
	if err := p.Check(); err != nil {
		return info, fmt.Errorf("export: %w", err)
	}
	s := p.Spec
	if s.Family == models.GMM {
		if len(s.BaseMean) != 0 && len(s.BaseMean) != s.Dim {
			return info, fmt.Errorf("export: base_mean must have dim=%d entries or none, got %d", s.Dim, len(s.BaseMean))
		}
		if s.BaseStd < 0 || math.IsNaN(s.BaseStd) || math.IsInf(s.BaseStd, 0) {
			return info, fmt.Errorf("export: base_std must be a finite number ≥ 0 (0 = 1), got %v", s.BaseStd)
		}
	}
	for i, v := range s.BaseMean {
		if !finite(v) {
			return info, fmt.Errorf("export: base_mean[%d] is %v", i, v)
		}
	}
	if err := info.Validate(); err != nil {
		return info, fmt.Errorf("export: %w", err)
	}
	if info.ModelVersion == 0 {
		info.ModelVersion = 1
	}
	return info, nil
}

// assemble wraps a finished graph into a serialized model with the metadata.
func assemble(b *builder, s models.Spec, info models.TrainingInfo, kind string) ([]byte, error) {
	g, err := b.graph()
	if err != nil {
		return nil, err
	}
	return marshalModel(g, s, info, onnxMeta(s, info, kind))
}

// marshalModel serializes graph g with metadata md.
func marshalModel(g *graphProto, s models.Spec, info models.TrainingInfo, md models.ONNXMeta) ([]byte, error) {
	kind := md.Graph
	props, err := md.Props()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	meta := make([]keyValue, len(props))
	for i, p := range props {
		meta[i] = keyValue{p.Key, p.Value}
	}
	m := modelProto{
		irVersion:       IRVersion,
		opsets:          []opsetID{{domain: "", version: Opset}},
		producerName:    "jarzyn",
		producerVersion: strconv.Itoa(models.ONNXFormatVersion),
		domain:          "io.github.jarzyn",
		modelVersion:    info.ModelVersion,
		doc:             docString(s, info, kind),
		graph:           g,
		meta:            meta,
	}
	return m.marshal(), nil
}

func docString(s models.Spec, info models.TrainingInfo, kind string) string {
	arch := fmt.Sprintf("Gaussian mixture with %d unit-covariance modes, U(x) = −log Σ_m exp(−½|x − a_m|² − z_m)", s.Modes)
	switch s.Family {
	case models.MLP:
		arch = fmt.Sprintf("quadratic base plus %s perceptron with hidden widths %v, U(x) = |x − μ0|²/(2σ0²) + f(x)", s.Activation, s.Hidden)
	case models.Conv:
		var convs []string
		for _, l := range s.Conv {
			convs = append(convs, fmt.Sprintf("%d k%d s%d p%d %s", l.Out, l.Kernel, l.Stride, l.Pad, l.Activation))
		}
		arch = fmt.Sprintf("quadratic base plus convolutional net on %v images (convolutions [%s], flatten, linear widths %v with %s), U(x) = |x − μ0|²/(2σ0²) + f(x)",
			s.InputShape, strings.Join(convs, ", "), s.LinearLayers(), s.Activation)
	}
	method := info.Method
	if method == "" {
		method = "unknown method"
	}
	io := "Input x [batch, d]; outputs energy [batch] and grad = ∇ₓU [batch, d]."
	if s.Family == models.Conv {
		io = "Input x [batch, C, H, W]; outputs energy [batch] and grad = ∇ₓU [batch, C, H, W]."
	}
	if kind == models.GraphLatent {
		io = "Exact latent reduction of the model (input x = latent points s [batch, r]; outputs energy V(s), grad ∇V(s) [batch, r] and basis Q [d, r]); the energy model is the file whose SHA-256 is jarzyn.latent_of."
	}
	return fmt.Sprintf("jarzyn energy-based model (%s) in d=%d, trained with %s. %s Metadata under jarzyn.*.",
		arch, s.Dim, method, io)
}

// energyGraph adds the family's U and ∇ₓU of the value x and returns the
// names of the energy and gradient values.
func energyGraph(b *builder, p *models.Params, x string) (energy, grad string) {
	switch p.Spec.Family {
	case models.GMM:
		return gmmGraph(b, p, x)
	case models.Conv:
		return convGraph(b, p, x)
	}
	return mlpGraph(b, p, x)
}
