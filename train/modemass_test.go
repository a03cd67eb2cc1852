package train

import (
	"math"
	"testing"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/smc"
)

// walkerModeMasses is the weighted share of the walkers nearest each teacher
// mean: walkers placed next to known means with known log-weights give the
// softmax of those weights summed per mode.
func TestWalkerModeMasses(t *testing.T) {
	teacher := datasets.Teacher{Means: [][]float64{{-4, 0}, {4, 0}, {0, 5}}}
	x := []float64{-3.5, 0.2, 4.1, -0.3, 0.1, 4.8, 3.9, 0.4}
	pop := smc.NewPopulation(x, 2, 0, 0)
	copy(pop.A, []float64{0, math.Log(2), math.Log(3), math.Log(4)})
	got := walkerModeMasses(teacher, pop)
	want := []float64{1.0 / 10, 6.0 / 10, 3.0 / 10}
	for j := range want {
		if math.Abs(got[j]-want[j]) > 1e-12 {
			t.Fatalf("masses %v, want %v", got, want)
		}
	}
}
