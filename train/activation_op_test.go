package train

import (
	"math"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

func TestExpf32Accuracy(t *testing.T) {
	worst := 0.0
	for x := -100.0; x < 88; x += 0.0137 {
		got := float64(expf32(float32(x)))
		want := math.Exp(float64(float32(x)))
		if want < 1e-37 {
			continue
		}
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("expf32 worst relative error %.3g", worst)
	}
}

func TestActivationsF32MatchF64(t *testing.T) {
	for _, act := range []models.Activation{models.SiLU, models.Softplus, models.Tanh} {
		n := 10000
		x32, g32, o32 := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x32 {
			x32[i] = float32(-30 + 60*float64(i)/float64(n))
			g32[i] = 0.5
		}
		for _, grad := range []bool{false, true} {
			var y, gy []float32
			if grad {
				y, gy = make([]float32, n), g32
				activateF32(act, x32, nil, nil, y)
			}
			activateF32(act, x32, y, gy, o32)
			for i, v := range x32 {
				y, dy := models.Activate(act, float64(v))
				want := y
				if grad {
					want = 0.5 * dy
				}
				if math.Abs(float64(o32[i])-want) > 2e-6*math.Max(1, math.Abs(want)) {
					t.Fatalf("%s grad=%v at %v: %v, want %v", act, grad, v, o32[i], want)
				}
			}
		}
	}
}
