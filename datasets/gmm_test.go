package datasets

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestTeacherSplitAndMoments(t *testing.T) {
	tc, err := Teacher{Means: [][]float64{{-10}, {6}}, Masses: []float64{1, 3}}.Normalized(5)
	if err != nil {
		t.Fatal(err)
	}
	x, labels := tc.Sample(10000, true, rand.New(rand.NewPCG(1, 1)))
	count := 0
	for _, l := range labels {
		if l == 0 {
			count++
		}
	}
	if count != 2500 {
		t.Fatalf("split gave %d points to the light mode, want 2500", count)
	}
	mean := 0.0
	for i := range labels {
		mean += x[i*5] / 10000
	}
	if want := 0.25*-10 + 0.75*6; math.Abs(mean-want) > 0.05 {
		t.Fatalf("first-coordinate mean %v, want %v", mean, want)
	}
}

// The density integrates to 1 (2-D midpoint rule).
func TestTeacherLogDensityNormalised(t *testing.T) {
	tc, err := Teacher{Means: [][]float64{{-2, 0}, {2, 1}}, Masses: []float64{0.3, 0.7}, Stds: []float64{0.5, 1.5}}.Normalized(2)
	if err != nil {
		t.Fatal(err)
	}
	const n, lo, hi = 500, -12.0, 12.0
	dx := (hi - lo) / n
	s := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s += math.Exp(tc.LogDensity([]float64{lo + (float64(i)+0.5)*dx, lo + (float64(j)+0.5)*dx})) * dx * dx
		}
	}
	if math.Abs(s-1) > 1e-4 {
		t.Fatalf("density integrates to %v", s)
	}
}

func TestTeacherValidation(t *testing.T) {
	bad := []Teacher{
		{},
		{Means: [][]float64{{0}}, Masses: []float64{1, 2}},
		{Means: [][]float64{{0}}, Masses: []float64{-1}},
		{Means: [][]float64{{0, 0, 0}}, Masses: []float64{1}},
		{Means: [][]float64{{0}}, Masses: []float64{1}, Stds: []float64{0}},
	}
	for i, tc := range bad {
		if _, err := tc.Normalized(2); err == nil {
			t.Errorf("case %d accepted: %+v", i, tc)
		}
	}
}
