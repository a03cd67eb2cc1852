package export

import (
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

// onnxMeta is the jarzyn metadata_props content of a model of spec s built
// from info (validated by prepare), holding the given graph kind.
func onnxMeta(s models.Spec, info Info, kind string) models.ONNXMeta {
	m := models.NewONNXMeta(s)
	m.Graph = kind
	m.DataMin, m.DataMax = info.DataMin, info.DataMax
	m.StepSize = info.StepSize
	m.Method = info.Method
	m.LogZEstimate = info.LogZEstimate
	m.ConfigDigest = info.ConfigDigest
	m.ModelVersion = info.ModelVersion
	return m
}

// baseOf returns the base Gaussian of a spec as the metadata records it:
// the MLP's quadratic base, or for a GMM Spec.BaseMean (zeros if empty) and
// Spec.BaseStd (1 if 0).
func baseOf(s models.Spec) (mean []float64, std float64) {
	m := models.NewONNXMeta(s)
	return m.BaseMean, m.BaseStd
}
