package train

import (
	"math"
	"testing"
)

// model.base_fit: data sets μ0 and σ0 of the MLP's base from the data: the
// trainer's spec carries the data's per-coordinate mean and RMS std, and
// the walkers start as exact samples of that Gaussian.
func TestBaseFitData(t *testing.T) {
	c := DefaultConfig()
	c.Data.N, c.Walkers.N, c.Iterations = 4000, 4000, 1
	c.Data.Teacher.Means = [][]float64{{3, -1}, {5, -1}}
	c.Data.Teacher.Masses = []float64{1, 1}
	c.Data.Teacher.Stds = []float64{0.5, 0.5}
	c.Model.BaseFit = "data"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer[float64](c)
	if err != nil {
		t.Fatal(err)
	}
	s := tr.cfg.Model.Spec
	// coordinate 0: ½N(3, ¼) + ½N(5, ¼): mean 4, variance ¼ + 1; coordinate
	// 1: mean −1, variance ¼; σ0² = (1.25 + 0.25)/2 = 0.75
	if len(s.BaseMean) != 2 || math.Abs(s.BaseMean[0]-4) > 0.05 || math.Abs(s.BaseMean[1]+1) > 0.05 || math.Abs(s.BaseStd-math.Sqrt(0.75)) > 0.03 {
		t.Fatalf("fitted base mean %v std %v, want about [4 −1] and %.3f", s.BaseMean, s.BaseStd, math.Sqrt(0.75))
	}
	if err := tr.initFresh(); err != nil {
		t.Fatal(err)
	}
	m := 0.0
	for i := 0; i < c.Walkers.N; i++ {
		m += tr.pop.X[2*i] / float64(c.Walkers.N)
	}
	if math.Abs(m-4) > 0.1 {
		t.Errorf("walkers' mean coordinate 0 is %v, want about 4 (exact samples of the fitted base)", m)
	}
	c.Model.Family = "gmm"
	c.Model.Modes = 2
	if err := c.Validate(); err == nil {
		t.Errorf("base_fit data accepted for the gmm family")
	}
}
