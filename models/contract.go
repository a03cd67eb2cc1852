package models

import (
	"fmt"
	"math"
	"strconv"
)

// The train → export → serve contract: what jarzyn-train writes, what
// jarzyn-export reads and turns into an ONNX model, and what jarzyn-serve
// reads back. Every name and key lives here once.

// Tensor names of an exported model: input x float32 [batch, data shape…],
// outputs energy float32 [batch] = U(x) and grad float32 [batch, data
// shape…] = ∇ₓU(x); a latent model (GraphLatent) also has basis [d, r].
const (
	InputX       = "x"
	OutputEnergy = "energy"
	OutputGrad   = "grad"
	OutputBasis  = "basis"
)

// File names inside a training run directory that other steps read.
const (
	// WeightsFile holds the final parameters and the TrainingInfo
	// (WriteParams); jarzyn-export reads it.
	WeightsFile = "model.weights"
	// ModelFile is the default name of the exported ONNX model; its latent
	// reduction goes to LatentPath(ModelFile).
	ModelFile = "model.onnx"
)

// Keys of a weights or checkpoint file's metadata (Container.Meta).
// TrainingInfo.Meta writes the first seven, TrainingInfoFromMeta reads them.
const (
	MetaMethod       = "method"
	MetaStepSize     = "step_size"
	MetaLogZEstimate = "log_z_estimate"
	MetaConfigDigest = "config_digest"
	MetaDataMin      = "data_min"
	MetaDataMax      = "data_max"
	MetaModelVersion = "model_version"
	// MetaDtype is the training precision ("float32" or "float64").
	MetaDtype = "dtype"
	// MetaIteration is the iteration the parameters are from.
	MetaIteration = "iteration"
)

// TrainingInfo is what training knows about a model beyond its
// architecture. Training writes it into the weights file (Meta), export
// copies it into the ONNX model's metadata (ONNXMeta embeds it), and serve
// reads it from there.
type TrainingInfo struct {
	// Method is the training method ("jarzynski", "pcd", "cd"); "" if unknown.
	Method string `json:"method,omitempty"`
	// StepSize is the training ULA step size h, the sampler's default; 0 if
	// unknown.
	StepSize float64 `json:"step_size"`
	// LogZEstimate is the final log Ẑ estimate of training; NaN if unknown.
	LogZEstimate float64 `json:"-"`
	// ConfigDigest identifies the resolved training config; "" if unknown.
	ConfigDigest string `json:"config_digest,omitempty"`
	// DataMin and DataMax bound the training data's values; both 0 if unknown.
	DataMin float64 `json:"data_min"`
	DataMax float64 `json:"data_max"`
	// ModelVersion is written as the ONNX model_version (not a jarzyn.*
	// key). The default value is 1.
	ModelVersion int64 `json:"model_version"`
}

// Meta returns in's weights-file metadata (the Meta* keys), numbers in
// strconv's shortest round-trip form.
func (in TrainingInfo) Meta() map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return map[string]string{
		MetaMethod: in.Method, MetaStepSize: f(in.StepSize), MetaLogZEstimate: f(in.LogZEstimate),
		MetaConfigDigest: in.ConfigDigest, MetaDataMin: f(in.DataMin), MetaDataMax: f(in.DataMax),
		MetaModelVersion: strconv.FormatInt(in.ModelVersion, 10),
	}
}

// TrainingInfoFromMeta reads a TrainingInfo from a weights or checkpoint
// file's metadata. Every key is optional; a missing key gives the field's
// "unknown" value, a malformed one is an error naming the key. Numbers are
// parsed with strconv.ParseFloat ("NaN" only for log_z_estimate),
// model_version with strconv.ParseInt.
func TrainingInfoFromMeta(meta map[string]string) (TrainingInfo, error) {
	in := TrainingInfo{Method: meta[MetaMethod], ConfigDigest: meta[MetaConfigDigest], LogZEstimate: math.NaN(), ModelVersion: 1}
	for _, f := range []struct {
		key      string
		dst      *float64
		allowNaN bool
	}{
		{MetaStepSize, &in.StepSize, false},
		{MetaLogZEstimate, &in.LogZEstimate, true},
		{MetaDataMin, &in.DataMin, false},
		{MetaDataMax, &in.DataMax, false},
	} {
		s, ok := meta[f.key]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || (math.IsNaN(v) && !f.allowNaN) {
			return TrainingInfo{}, fmt.Errorf("metadata %s=%q is not a finite number", f.key, s)
		}
		*f.dst = v
	}
	if s, ok := meta[MetaModelVersion]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return TrainingInfo{}, fmt.Errorf("metadata %s=%q is not a non-negative integer", MetaModelVersion, s)
		}
		in.ModelVersion = v
	}
	if err := in.Validate(); err != nil {
		return TrainingInfo{}, err
	}
	return in, nil
}

// Validate reports the first field of in that no model may carry, naming
// its metadata key.
func (in TrainingInfo) Validate() error {
	if key, why := in.check(); key != "" {
		return fmt.Errorf("metadata %s: %s", key, why)
	}
	return nil
}

// check is Validate as the ONNX metadata key concerned and what is wrong.
func (in TrainingInfo) check() (key, why string) {
	if !finiteFloat(in.DataMin) || !finiteFloat(in.DataMax) || in.DataMin > in.DataMax {
		return KeyDataRange, "want a data range [min, max] of finite numbers with min ≤ max"
	}
	if in.StepSize < 0 || !finiteFloat(in.StepSize) {
		return KeyStepSize, "want a step size that is a finite number ≥ 0 (0 = unknown)"
	}
	if math.IsInf(in.LogZEstimate, 0) {
		return KeyLogZEstimate, "want a log Z estimate that is a finite number or NaN (unknown)"
	}
	if in.ModelVersion < 0 {
		return "model_version", fmt.Sprintf("want ≥ 0, got %d", in.ModelVersion)
	}
	return "", ""
}

// The image classifier that labels samples by class (train.TrainClassifier,
// docs/METHOD.md §5.2's metric): its file, written by train.SaveClassifier
// and read by train.LoadClassifier and export.ReadClassifier, and its ONNX
// export (export.BuildClassifier), which jarzyn-serve runs.
const (
	// ClassifierKind is the container kind of a classifier file.
	ClassifierKind = "classifier"
	// ClassifierFile is the default name of a classifier file in a run dir.
	ClassifierFile = "classifier.bin"
	// ClassifierModelFile is the default name of its ONNX export.
	ClassifierModelFile = "classifier.onnx"
	// ClassifierHeaderSection is the container section holding the
	// ClassifierHeader as JSON; the parameter tensors are the sections
	// ClassifierParamSection(k), k = 0..7.
	ClassifierHeaderSection = "classifier"
	// OutputProbs is the exported classifier's output: the class
	// probabilities (softmax of the logits) float32 [batch, K], column k
	// for class KeyClasses[k]; its input is InputX float32 [batch, C, H, W].
	OutputProbs = "probs"
	// GraphClassifier is the jarzyn.graph value of an exported classifier.
	GraphClassifier = "classifier"
	// KeyClasses is the exported classifier's class labels, comma-separated
	// in output order (e.g. "2,3,6").
	KeyClasses = KeyPrefix + "classes"
	// KeyClassifierAccuracy is its held-out accuracy, absent when unknown.
	KeyClassifierAccuracy = KeyPrefix + "classifier_accuracy"
)

// ClassifierParamSection is the container section of the classifier's
// parameter tensor k (train.Classifier.Params[k]).
func ClassifierParamSection(k int) string { return fmt.Sprintf("param/%d", k) }

// ClassifierHeader is the JSON header of a classifier file: the class
// labels (output k is Classes[k]), the input image shape C×H×W, the width
// of the hidden linear layer and, when known, the held-out accuracy.
type ClassifierHeader struct {
	Classes []int `json:"classes"`
	C       int   `json:"c"`
	H       int   `json:"h"`
	W       int   `json:"w"`
	Hidden  int   `json:"hidden"`
	// Accuracy is the share of held-out images of Classes labelled right;
	// 0 when unknown.
	Accuracy float64 `json:"accuracy,omitempty"`
}

// ClassifierConvs are the classifier's two convolutions, each followed by
// SiLU: C→16 k5 s2 p2, then 16→32 k3 s2 p1; then flatten, linear → Hidden,
// SiLU, linear → len(Classes) logits.
func ClassifierConvs() [2]ConvLayer {
	return [2]ConvLayer{{Out: 16, Kernel: 5, Stride: 2, Pad: 2, Activation: SiLU}, {Out: 32, Kernel: 3, Stride: 2, Pad: 1, Activation: SiLU}}
}
