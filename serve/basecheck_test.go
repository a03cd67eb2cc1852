package serve

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// A model with a low-rank base (model.base_fit pca) carries the base in its
// jarzyn.spec; the sampler refuses init base and weighted sampling for it
// with a *FieldError naming the setting, and walks it from uniform starts.
func TestSampleRefusesLowRankBase(t *testing.T) {
	needORT(t)
	const d, k = 6, 2
	spec := models.Spec{Family: models.MLP, Dim: d, Hidden: []int{4}, Activation: models.SiLU, BaseStd: 0.5,
		BaseVectors: []float64{0.6, 0.8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, BaseVariances: []float64{2, 0.5}}
	p, err := models.NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range p.Tensors {
		for j := range p.Tensors[i].Data {
			p.Tensors[i].Data[j] = 0.3 * rng.NormFloat64()
		}
	}
	b, err := export.Build(p, models.TrainingInfo{Method: "test", StepSize: 0.01, LogZEstimate: math.NaN(), DataMin: -1, DataMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(writeFile(t, t.TempDir(), "pca.onnx", b), LoadOptions{Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info.Spec == nil || m.Info.Spec.BaseRank() != k {
		t.Fatalf("the model's spec does not carry the base (rank %v)", m.Info.Spec)
	}
	for _, tc := range []struct {
		cfg   SampleConfig
		field string
	}{
		{SampleConfig{N: 8, Steps: 3, Init: InitBase}, "init"},
		{SampleConfig{N: 8, Steps: 3}, "init"},
		{SampleConfig{N: 8, Steps: 3, Init: InitBase, Weighted: true}, "weighted"},
	} {
		_, err := Sample(context.Background(), m, tc.cfg)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: error %v, want a FieldError for %s", tc.cfg, err, tc.field)
		}
	}
	res, err := Sample(context.Background(), m, SampleConfig{N: 8, Steps: 3, Init: InitUniform})
	if err != nil || len(res.Samples) != 8*d {
		t.Fatalf("uniform start: %v (%d values)", err, len(res.Samples))
	}
}
