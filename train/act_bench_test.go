package train

import (
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

func BenchmarkActivateSiLU(b *testing.B) {
	x := make([]float32, 1<<20)
	out := make([]float32, len(x))
	for i := range x {
		x[i] = float32(i%1000)/100 - 5
	}
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		activateF32(models.SiLU, x, nil, nil, out)
	}
}
