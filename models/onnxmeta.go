package models

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The jarzyn.* metadata_props of an exported ONNX model: package export
// writes them (ONNXMeta.Props), package serve reads them (ParseONNXMeta).
// Numbers are written in strconv's shortest round-trip form ('g', -1), so
// parsing gives back the float64 exactly; an unknown log Ẑ is "NaN". Vectors
// and the spec are JSON.
const (
	KeyPrefix        = "jarzyn."
	KeyFormatVersion = KeyPrefix + "format_version" // integer, ONNXFormatVersion
	KeyFamily        = KeyPrefix + "family"         // energy family, e.g. "gmm"
	KeyDataShape     = KeyPrefix + "data_shape"     // JSON shape of one sample, e.g. [2] or [1,28,28]
	KeySpec          = KeyPrefix + "spec"           // JSON of Spec (optional)
	KeyBaseMean      = KeyPrefix + "base_mean"      // JSON array: μ0 of the base N(μ0, σ0²I)
	KeyBaseStd       = KeyPrefix + "base_std"       // σ0
	KeyDataRange     = KeyPrefix + "data_range"     // JSON [min, max] of the training data
	KeyStepSize      = KeyPrefix + "step_size"      // training ULA step size h; 0 = unknown
	KeyMethod        = KeyPrefix + "method"         // training method (optional)
	KeyLogZEstimate  = KeyPrefix + "log_z_estimate" // log Ẑ; "NaN" = unknown (optional)
	KeyConfigDigest  = KeyPrefix + "config_digest"  // resolved-config digest (optional)
	KeyGraph         = KeyPrefix + "graph"          // GraphEnergy or GraphLatent (optional, default GraphEnergy)
	KeyLatentOf      = KeyPrefix + "latent_of"      // GraphLatent only: SHA-256 (hex) of the energy model file it reduces
)

// Values of jarzyn.graph: which computation the model holds.
const (
	GraphEnergy = "energy" // U and ∇ₓU (export.Build)
	GraphLatent = "latent" // V and ∇V of an MLP's exact latent reduction, plus its basis (export.BuildLatent)
)

// ONNXFormatVersion is the jarzyn.format_version that Props writes and the
// newest one ParseONNXMeta reads.
const ONNXFormatVersion = 1

// ONNXMaxDim bounds the number of values in one sample (the product of
// jarzyn.data_shape), a guard against hostile files.
const ONNXMaxDim = 1 << 24

// requiredKeys are the keys every jarzyn model carries, in report order.
var requiredKeys = []string{KeyFormatVersion, KeyFamily, KeyDataShape, KeyBaseMean, KeyBaseStd, KeyDataRange, KeyStepSize}

// ONNXMeta is the jarzyn metadata of an exported ONNX model.
type ONNXMeta struct {
	// FormatVersion is jarzyn.format_version as read; Props always writes
	// ONNXFormatVersion.
	FormatVersion int `json:"format_version"`
	// Graph is GraphEnergy or GraphLatent; "" means GraphEnergy.
	Graph string `json:"-"`
	// LatentOf is, for GraphLatent only, the SHA-256 (hex) of the energy
	// model file that the latent model reduces (models.Latent).
	LatentOf string `json:"-"`
	// Family is the energy family; it equals Spec.Family when Spec is set.
	Family Family `json:"family"`
	// Spec is the architecture; nil when the model carries none (a model not
	// built from a Spec).
	Spec *Spec `json:"spec,omitempty"`
	// DataShape is the shape of one sample, e.g. [2] or [1, 28, 28]; its
	// product (Dim) equals Spec.Dim when Spec is set.
	DataShape []int `json:"data_shape"`
	// BaseMean (Dim entries) and BaseStd are μ0 and σ0 of the base Gaussian
	// N(μ0, σ0²I) the sampler starts from.
	BaseMean []float64 `json:"base_mean"`
	BaseStd  float64   `json:"base_std"`
	// TrainingInfo is the training method, step size, log Ẑ, config digest,
	// data range and the ONNX model_version.
	TrainingInfo
}

// NewONNXMeta returns the metadata that a spec determines: family, spec,
// data shape (Spec.DataShape) and the base Gaussian (Spec.Mu0(), and Spec.BaseStd or 1
// if 0), for GraphEnergy, with an unknown log Ẑ and model version 1. The
// caller fills in the training information.
func NewONNXMeta(s Spec) ONNXMeta {
	std := s.BaseStd
	if std == 0 {
		std = 1
	}
	spec := s
	return ONNXMeta{
		FormatVersion: ONNXFormatVersion,
		Graph:         GraphEnergy,
		Family:        s.Family,
		Spec:          &spec,
		DataShape:     s.DataShape(),
		BaseMean:      append([]float64(nil), s.Mu0()...),
		BaseStd:       std,
		TrainingInfo:  TrainingInfo{LogZEstimate: math.NaN(), ModelVersion: 1},
	}
}

// Dim is the number of values in one sample, the product of DataShape.
func (m ONNXMeta) Dim() int {
	d := 1
	for _, s := range m.DataShape {
		d *= s
	}
	return d
}

func finiteFloat(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// check reports the first inconsistency of m as the key it concerns and
// what is wrong; key is "" if m is valid. It does not look at FormatVersion.
func (m ONNXMeta) check() (key, why string) {
	switch m.Graph {
	case "", GraphEnergy, GraphLatent:
	default:
		return KeyGraph, fmt.Sprintf("want %q or %q", GraphEnergy, GraphLatent)
	}
	if (m.Graph == GraphLatent) != (m.LatentOf != "") {
		return KeyLatentOf, fmt.Sprintf("set exactly when %s=%s", KeyGraph, GraphLatent)
	}
	if m.LatentOf != "" && !isSHA256Hex(m.LatentOf) {
		return KeyLatentOf, "want 64 lower-case hex digits (a SHA-256)"
	}
	if m.Family == "" {
		return KeyFamily, "empty"
	}
	if m.Spec != nil {
		if err := m.Spec.Validate(); err != nil {
			return KeySpec, err.Error()
		}
		if m.Family != m.Spec.Family {
			return KeyFamily, fmt.Sprintf("disagrees with the spec's family %q", m.Spec.Family)
		}
	}
	if len(m.DataShape) == 0 {
		return KeyDataShape, "want a JSON array of positive integers"
	}
	d := 1
	for _, s := range m.DataShape {
		if s <= 0 || d > ONNXMaxDim/s {
			return KeyDataShape, fmt.Sprintf("want positive integers with a product ≤ %d", ONNXMaxDim)
		}
		d *= s
	}
	if m.Spec != nil && d != m.Spec.Dim {
		return KeyDataShape, fmt.Sprintf("has %d values per sample, disagrees with the spec's dim %d", d, m.Spec.Dim)
	}
	if len(m.BaseMean) != d {
		return KeyBaseMean, fmt.Sprintf("has %d entries, data_shape needs %d", len(m.BaseMean), d)
	}
	for _, v := range m.BaseMean {
		if !finiteFloat(v) {
			return KeyBaseMean, "not finite"
		}
	}
	if !(m.BaseStd > 0) || math.IsInf(m.BaseStd, 0) {
		return KeyBaseStd, "want a finite number > 0"
	}
	if key, why := m.TrainingInfo.check(); key != "" && key != "model_version" {
		return key, why
	}
	return "", ""
}

// Validate reports the first inconsistency of m, naming the metadata key:
// what Props refuses to write and ParseONNXMeta refuses to read.
// FormatVersion is not checked (Props writes ONNXFormatVersion). The error
// has no package prefix: callers prefix it with their own context.
func (m ONNXMeta) Validate() error {
	if key, why := m.check(); key != "" {
		return fmt.Errorf("metadata %s: %s", key, why)
	}
	if m.ModelVersion < 0 {
		return fmt.Errorf("ONNX model_version %d: want ≥ 0", m.ModelVersion)
	}
	return nil
}

// MetaProp is one metadata_props entry.
type MetaProp struct{ Key, Value string }

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Props returns the jarzyn metadata_props of m in a fixed order, with
// jarzyn.format_version = ONNXFormatVersion; jarzyn.spec is left out when
// Spec is nil. It fails if m does not Validate, so that what it writes
// ParseONNXMeta reads back unchanged. ModelVersion is not a metadata key:
// the caller writes it as the ONNX model_version.
func (m ONNXMeta) Props() ([]MetaProp, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	graph := m.Graph
	if graph == "" {
		graph = GraphEnergy
	}
	shape, err := json.Marshal(m.DataShape)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %v", KeyDataShape, err)
	}
	mean, err := json.Marshal(m.BaseMean)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %v", KeyBaseMean, err)
	}
	props := []MetaProp{
		{KeyFormatVersion, strconv.Itoa(ONNXFormatVersion)},
		{KeyFamily, string(m.Family)},
		{KeyDataShape, string(shape)},
	}
	if m.Spec != nil {
		spec, err := json.Marshal(m.Spec)
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %v", KeySpec, err)
		}
		props = append(props, MetaProp{KeySpec, string(spec)})
	}
	props = append(props,
		MetaProp{KeyBaseMean, string(mean)},
		MetaProp{KeyBaseStd, formatFloat(m.BaseStd)},
		MetaProp{KeyDataRange, "[" + formatFloat(m.DataMin) + "," + formatFloat(m.DataMax) + "]"},
		MetaProp{KeyStepSize, formatFloat(m.StepSize)},
		MetaProp{KeyMethod, m.Method},
		MetaProp{KeyLogZEstimate, formatFloat(m.LogZEstimate)},
		MetaProp{KeyConfigDigest, m.ConfigDigest},
		MetaProp{KeyGraph, graph},
	)
	if m.LatentOf != "" {
		props = append(props, MetaProp{KeyLatentOf, m.LatentOf})
	}
	return props, nil
}

// ParseONNXMeta reads the jarzyn metadata_props of an ONNX model (e.g. from
// onnxruntime_go's ModelMetadata); modelVersion is the ONNX model_version.
//
// Required keys: format_version, family, data_shape, base_mean, base_std,
// data_range and step_size; a model lacking any is reported with all missing
// keys. format_version must be an integer from 1 to ONNXFormatVersion.
// Optional keys (missing or "" = absent): spec (when present it must be
// valid and agree with family and data_shape), graph (default GraphEnergy),
// log_z_estimate (absent = NaN), method and config_digest. Values other than method and
// config_digest may carry surrounding white space. A base_mean of 0 or 1
// entries is broadcast to Dim entries. The result satisfies Validate.
//
// Errors name the key and its value and have no package prefix: callers
// prefix them with their own context (serve: "serve: model FILE: …").
func ParseONNXMeta(props map[string]string, modelVersion int64) (ONNXMeta, error) {
	get := func(k string) string { return strings.TrimSpace(props[k]) }
	bad := func(k, why string) error {
		return fmt.Errorf("bad metadata %s=%q: %s", k, props[k], why)
	}
	num := func(k string) (float64, error) {
		v, err := strconv.ParseFloat(get(k), 64)
		if err != nil {
			return 0, bad(k, "not a number")
		}
		return v, nil
	}
	var m ONNXMeta
	// The format version first: a newer format may have other keys.
	if _, ok := props[KeyFormatVersion]; ok {
		fv, err := num(KeyFormatVersion)
		if err != nil {
			return ONNXMeta{}, err
		}
		if fv < 1 || fv != math.Trunc(fv) {
			return ONNXMeta{}, bad(KeyFormatVersion, "want a positive integer")
		}
		if fv > ONNXFormatVersion {
			return ONNXMeta{}, bad(KeyFormatVersion, fmt.Sprintf("newer than this jarzyn reads (%d); update jarzyn", ONNXFormatVersion))
		}
		m.FormatVersion = int(fv)
	}
	var missing []string
	for _, k := range requiredKeys {
		if _, ok := props[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return ONNXMeta{}, fmt.Errorf("missing jarzyn metadata %s (not written by jarzyn-export?)", strings.Join(missing, ", "))
	}
	m.Family = Family(get(KeyFamily))
	m.Graph = get(KeyGraph)
	if m.Graph == "" {
		m.Graph = GraphEnergy
	}
	m.LatentOf = get(KeyLatentOf)
	if get(KeySpec) != "" {
		var s Spec
		if err := json.Unmarshal([]byte(get(KeySpec)), &s); err != nil {
			return ONNXMeta{}, bad(KeySpec, err.Error())
		}
		m.Spec = &s
	}
	if err := json.Unmarshal([]byte(get(KeyDataShape)), &m.DataShape); err != nil || len(m.DataShape) == 0 {
		return ONNXMeta{}, bad(KeyDataShape, "want a JSON array of positive integers")
	}
	if err := json.Unmarshal([]byte(get(KeyBaseMean)), &m.BaseMean); err != nil {
		return ONNXMeta{}, bad(KeyBaseMean, "want a JSON array of numbers")
	}
	var err error
	if m.BaseStd, err = num(KeyBaseStd); err != nil {
		return ONNXMeta{}, err
	}
	var rng []float64
	if err := json.Unmarshal([]byte(get(KeyDataRange)), &rng); err != nil || len(rng) != 2 {
		return ONNXMeta{}, bad(KeyDataRange, "want a JSON array [min,max]")
	}
	m.DataMin, m.DataMax = rng[0], rng[1]
	if m.StepSize, err = num(KeyStepSize); err != nil {
		return ONNXMeta{}, err
	}
	m.LogZEstimate = math.NaN()
	if get(KeyLogZEstimate) != "" {
		if m.LogZEstimate, err = num(KeyLogZEstimate); err != nil {
			return ONNXMeta{}, err
		}
	}
	m.Method = props[KeyMethod]
	m.ConfigDigest = props[KeyConfigDigest]
	m.ModelVersion = modelVersion
	// A scalar mean (or none) broadcasts, once the shape is known valid.
	if key, why := m.check(); key != "" && key != KeyBaseMean {
		return ONNXMeta{}, bad(key, why)
	}
	if n := len(m.BaseMean); n <= 1 {
		v := 0.0
		if n == 1 {
			v = m.BaseMean[0]
		}
		m.BaseMean = make([]float64, m.Dim())
		for i := range m.BaseMean {
			m.BaseMean[i] = v
		}
	}
	if key, why := m.check(); key != "" {
		return ONNXMeta{}, bad(key, why)
	}
	if modelVersion < 0 {
		return ONNXMeta{}, fmt.Errorf("bad ONNX model_version %d: want ≥ 0", modelVersion)
	}
	return m, nil
}
