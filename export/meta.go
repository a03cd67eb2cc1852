package export

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/jarzyn/jarzyn/models"
)

// Info carries the metadata of a trained run that goes into the model next
// to the architecture.
type Info struct {
	// Method is the training method ("jarzynski", "pcd", "cd", …); "" if unknown.
	Method string
	// StepSize is the training ULA step size h; 0 if unknown.
	StepSize float64
	// LogZEstimate is the final log Ẑ estimate of training; NaN if unknown.
	LogZEstimate float64
	// ConfigDigest identifies the resolved training config; "" if unknown.
	ConfigDigest string
	// DataMin and DataMax bound the training data's coordinates; both 0 if unknown.
	DataMin, DataMax float64
	// ModelVersion is written as the ONNX model_version. The default value is 1.
	ModelVersion int64
}

// Keys of a weights or checkpoint file's metadata that InfoFromMeta reads.
const (
	MetaMethod       = "method"
	MetaStepSize     = "step_size"
	MetaLogZEstimate = "log_z_estimate"
	MetaConfigDigest = "config_digest"
	MetaDataMin      = "data_min"
	MetaDataMax      = "data_max"
	MetaModelVersion = "model_version"
)

// InfoFromMeta reads Info from a weights or checkpoint file's metadata
// (models.ReadParams). Every key is optional; a missing key gives the
// field's "unknown" value (see Info), a malformed one is an error. Numbers
// are parsed with strconv.ParseFloat ("NaN" is allowed only for
// log_z_estimate), model_version with strconv.ParseInt.
func InfoFromMeta(meta map[string]string) (Info, error) {
	info := Info{Method: meta[MetaMethod], ConfigDigest: meta[MetaConfigDigest], LogZEstimate: math.NaN(), ModelVersion: 1}
	num := func(key string, dst *float64, allowNaN bool) error {
		s, ok := meta[key]
		if !ok {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || (math.IsNaN(v) && !allowNaN) {
			return fmt.Errorf("export: metadata %s=%q is not a finite number", key, s)
		}
		*dst = v
		return nil
	}
	for _, f := range []struct {
		key      string
		dst      *float64
		allowNaN bool
	}{
		{MetaStepSize, &info.StepSize, false},
		{MetaLogZEstimate, &info.LogZEstimate, true},
		{MetaDataMin, &info.DataMin, false},
		{MetaDataMax, &info.DataMax, false},
	} {
		if err := num(f.key, f.dst, f.allowNaN); err != nil {
			return Info{}, err
		}
	}
	if s, ok := meta[MetaModelVersion]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return Info{}, fmt.Errorf("export: metadata %s=%q is not a non-negative integer", MetaModelVersion, s)
		}
		info.ModelVersion = v
	}
	if err := info.validate(); err != nil {
		return Info{}, err
	}
	return info, nil
}

func (in Info) validate() error {
	if in.StepSize < 0 || math.IsNaN(in.StepSize) || math.IsInf(in.StepSize, 0) {
		return fmt.Errorf("export: step size must be a finite number ≥ 0, got %v", in.StepSize)
	}
	if math.IsInf(in.LogZEstimate, 0) {
		return fmt.Errorf("export: log Z estimate must be finite or NaN (unknown), got %v", in.LogZEstimate)
	}
	if !finite(in.DataMin) || !finite(in.DataMax) || in.DataMin > in.DataMax {
		return fmt.Errorf("export: data range must be finite with min ≤ max, got [%v, %v]", in.DataMin, in.DataMax)
	}
	if in.ModelVersion < 0 {
		return fmt.Errorf("export: model version must be ≥ 0, got %d", in.ModelVersion)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ONNX metadata_props keys written by Build. Numbers are formatted with
// strconv's shortest round-trip form ('g', -1), so ParseFloat gives back the
// float64 exactly; an unknown log Ẑ is "NaN". Vectors are JSON arrays.
const (
	KeyPrefix        = "jarzyn."
	KeyFormatVersion = KeyPrefix + "format_version" // "1"
	KeyFamily        = KeyPrefix + "family"         // "gmm" or "mlp"
	KeyDataShape     = KeyPrefix + "data_shape"     // JSON, e.g. [2]
	KeySpec          = KeyPrefix + "spec"           // JSON of models.Spec
	KeyBaseMean      = KeyPrefix + "base_mean"      // JSON array of length d: μ0
	KeyBaseStd       = KeyPrefix + "base_std"       // σ0
	KeyDataRange     = KeyPrefix + "data_range"     // JSON [min, max]
	KeyStepSize      = KeyPrefix + "step_size"      // training h; 0 = unknown
	KeyMethod        = KeyPrefix + "method"         // training method
	KeyLogZEstimate  = KeyPrefix + "log_z_estimate" // log Ẑ; "NaN" = unknown
	KeyConfigDigest  = KeyPrefix + "config_digest"  // resolved-config digest
	KeyGraph         = KeyPrefix + "graph"          // GraphEnergy or GraphULA
)

// Values of jarzyn.graph: which computation the model holds.
const (
	GraphEnergy = "energy" // Build: U and ∇ₓU
	GraphULA    = "ula"    // BuildULA: K fused Langevin steps
)

// FormatVersion is the value of jarzyn.format_version written by this package.
const FormatVersion = "1"

// ModelMeta is the jarzyn metadata of an exported model, as read back from
// its metadata_props (e.g. with onnxruntime_go's ModelMetadata).
type ModelMeta struct {
	// Graph is GraphEnergy or GraphULA; a model without the key is GraphEnergy.
	Graph     string
	Spec      models.Spec
	DataShape []int
	// BaseMean and BaseStd are the base Gaussian N(μ0, σ0²I) the sampler
	// starts from (for a GMM: Spec.BaseMean, zeros if empty; Spec.BaseStd, 1 if 0).
	BaseMean []float64
	BaseStd  float64
	Info     Info
}

// baseOf returns the base Gaussian of a spec: the MLP's quadratic base, or
// for a GMM Spec.BaseMean (zeros if empty) and Spec.BaseStd (1 if 0).
func baseOf(s models.Spec) (mean []float64, std float64) {
	mean = append([]float64(nil), s.Mu0()...)
	std = s.BaseStd
	if std == 0 {
		std = 1
	}
	return mean, std
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// metaProps lists the metadata_props of a model in a fixed order.
func metaProps(s models.Spec, info Info, kind string) ([]keyValue, error) {
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("export: encoding spec: %w", err)
	}
	mean, std := baseOf(s)
	meanJSON, err := json.Marshal(mean)
	if err != nil {
		return nil, fmt.Errorf("export: encoding base mean: %w", err)
	}
	shape, _ := json.Marshal([]int{s.Dim})
	return []keyValue{
		{KeyFormatVersion, FormatVersion},
		{KeyFamily, string(s.Family)},
		{KeyDataShape, string(shape)},
		{KeySpec, string(spec)},
		{KeyBaseMean, string(meanJSON)},
		{KeyBaseStd, formatFloat(std)},
		{KeyDataRange, "[" + formatFloat(info.DataMin) + "," + formatFloat(info.DataMax) + "]"},
		{KeyStepSize, formatFloat(info.StepSize)},
		{KeyMethod, info.Method},
		{KeyLogZEstimate, formatFloat(info.LogZEstimate)},
		{KeyConfigDigest, info.ConfigDigest},
		{KeyGraph, kind},
	}, nil
}

// ParseModelMeta reads the jarzyn metadata_props of an exported model.
// modelVersion is the ONNX model_version (it is not a metadata key). It
// checks the format version, the spec and the consistency of the keys.
func ParseModelMeta(props map[string]string, modelVersion int64) (ModelMeta, error) {
	var m ModelMeta
	if v, ok := props[KeyFormatVersion]; !ok || v != FormatVersion {
		return m, fmt.Errorf("export: model metadata %s is %q, want %q (not a jarzyn model, or from a newer jarzyn)", KeyFormatVersion, v, FormatVersion)
	}
	need := func(k string) (string, error) {
		v, ok := props[k]
		if !ok {
			return "", fmt.Errorf("export: model metadata lacks %s", k)
		}
		return v, nil
	}
	jsonKey := func(k string, dst any) error {
		v, err := need(k)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(v), dst); err != nil {
			return fmt.Errorf("export: model metadata %s=%q: %v", k, v, err)
		}
		return nil
	}
	floatKey := func(k string, allowNaN bool) (float64, error) {
		v, err := need(k)
		if err != nil {
			return 0, err
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || (math.IsNaN(f) && !allowNaN) {
			return 0, fmt.Errorf("export: model metadata %s=%q is not a finite number", k, v)
		}
		return f, nil
	}
	switch m.Graph = props[KeyGraph]; m.Graph {
	case "":
		m.Graph = GraphEnergy
	case GraphEnergy, GraphULA:
	default:
		return m, fmt.Errorf("export: model metadata %s=%q, want %q or %q", KeyGraph, m.Graph, GraphEnergy, GraphULA)
	}
	var err error
	if err = jsonKey(KeySpec, &m.Spec); err != nil {
		return m, err
	}
	if err := m.Spec.Validate(); err != nil {
		return m, fmt.Errorf("export: model metadata %s: %w", KeySpec, err)
	}
	if fam, _ := need(KeyFamily); fam != string(m.Spec.Family) {
		return m, fmt.Errorf("export: model metadata %s=%q disagrees with the spec's family %q", KeyFamily, fam, m.Spec.Family)
	}
	if err = jsonKey(KeyDataShape, &m.DataShape); err != nil {
		return m, err
	}
	if len(m.DataShape) != 1 || m.DataShape[0] != m.Spec.Dim {
		return m, fmt.Errorf("export: model metadata %s=%v disagrees with the spec's dim %d", KeyDataShape, m.DataShape, m.Spec.Dim)
	}
	if err = jsonKey(KeyBaseMean, &m.BaseMean); err != nil {
		return m, err
	}
	if len(m.BaseMean) != m.Spec.Dim {
		return m, fmt.Errorf("export: model metadata %s has %d entries, want %d", KeyBaseMean, len(m.BaseMean), m.Spec.Dim)
	}
	if m.BaseStd, err = floatKey(KeyBaseStd, false); err != nil {
		return m, err
	}
	if !(m.BaseStd > 0) {
		return m, fmt.Errorf("export: model metadata %s must be > 0, got %v", KeyBaseStd, m.BaseStd)
	}
	var rng []float64
	if err = jsonKey(KeyDataRange, &rng); err != nil {
		return m, err
	}
	if len(rng) != 2 {
		return m, fmt.Errorf("export: model metadata %s must be [min,max], got %v", KeyDataRange, rng)
	}
	m.Info.DataMin, m.Info.DataMax = rng[0], rng[1]
	if m.Info.StepSize, err = floatKey(KeyStepSize, false); err != nil {
		return m, err
	}
	if m.Info.LogZEstimate, err = floatKey(KeyLogZEstimate, true); err != nil {
		return m, err
	}
	m.Info.Method = props[KeyMethod]
	m.Info.ConfigDigest = props[KeyConfigDigest]
	m.Info.ModelVersion = modelVersion
	if err := m.Info.validate(); err != nil {
		return m, err
	}
	return m, nil
}
