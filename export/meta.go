package export

import (
	"math"

	"github.com/jarzyn/jarzyn/models"
)

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// onnxMeta is the jarzyn metadata_props content of a model of spec s built
// from info (validated by prepare), holding the given graph kind.
func onnxMeta(s models.Spec, info models.TrainingInfo, kind string) models.ONNXMeta {
	m := models.NewONNXMeta(s)
	m.Graph = kind
	m.TrainingInfo = info
	return m
}

// baseOf returns the base Gaussian of a spec as the metadata records it:
// the MLP's quadratic base, or for a GMM Spec.BaseMean (zeros if empty) and
// Spec.BaseStd (1 if 0).
func baseOf(s models.Spec) (mean []float64, std float64) {
	m := models.NewONNXMeta(s)
	return m.BaseMean, m.BaseStd
}
