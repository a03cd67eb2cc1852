package train

import (
	"math/rand/v2"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// convBenchSpecs are the nets of docs/METHOD.md §5.2–5.3.
var convBenchSpecs = []struct {
	name string
	spec models.Spec
}{{"mnist", models.MNISTConvSpec()}, {"cifar", models.CIFARConvSpec()}}

// convFlops is the multiply-adds ×2 of one sample's forward pass through the
// convolutions (fwd) and the linear layers (lin).
func convFlops(spec models.Spec) (conv []float64, lin float64) {
	sh := spec.ConvShapes()
	for i, l := range spec.Conv {
		conv = append(conv, 2*float64(l.Out*sh[i][0]*l.Kernel*l.Kernel*sh[i+1][1]*sh[i+1][2]))
	}
	w := spec.LinearLayers()
	for j := 0; j+1 < len(w); j++ {
		lin += 2 * float64(w[j]*w[j+1])
	}
	return conv, lin
}

// BenchmarkConvEnergyGrad times U and ∇ₓU of 256 images in float32 (one
// walker evaluation, no caches kept); GFLOP/s counts the forward pass and
// the backward pass to the input (2× the forward's multiply-adds).
func BenchmarkConvEnergyGrad(b *testing.B) {
	for _, c := range convBenchSpecs {
		b.Run(c.name, func(b *testing.B) {
			const n = 256
			p, err := models.InitConv(c.spec, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				b.Fatal(err)
			}
			last := p.Tensors[len(p.Tensors)-2].Data
			for i := range last {
				last[i] = 0.1
			}
			ps := newParamSet[float32](p)
			e, err := newWalkerEval[float32](ps, n, false)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range e.X {
				e.X[i] = float32(rng.NormFloat64())
			}
			u, g := make([]float64, n), make([]float32, len(e.X))
			if err := e.run(u, g); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := e.run(u, g); err != nil {
					b.Fatal(err)
				}
			}
			// the process's CPU time per evaluation (all cores): on a
			// shared machine it moves less than the wall time
			b.ReportMetric((cpuTime()-cpu0).Seconds()*1e3/float64(b.N), "cpu-ms/op")
			sec := b.Elapsed().Seconds() / float64(b.N)
			conv, lin := convFlops(c.spec)
			f := 2 * lin
			for _, v := range conv {
				f += 2 * v
			}
			b.ReportMetric(sec*1e3, "ms/op")
			b.ReportMetric(f*n/sec/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkConvTrainIteration times one training iteration of the MNIST net
// in float32: 256 walkers, one ULA step, a data batch of 128 (data term,
// walker term from the caches, Adam, move, evaluation, reweighting).
// GFLOP/s counts the data term (forward, filter gradients, input gradients
// but the first), the walker evaluation (forward, input gradients) and the
// walker term's filter gradients.
func BenchmarkConvTrainIteration(b *testing.B) {
	b.Run("mnist", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.Dtype = "float32"
		cfg.Model.Spec = models.MNISTConvSpec()
		cfg.Data.Teacher.Means = [][]float64{{1}, {-1}}
		cfg.Data.Teacher.Masses = []float64{0.5, 0.5}
		cfg.Data.N, cfg.Data.Batch = 1024, 128
		cfg.Walkers.N, cfg.Walkers.StepSize = 256, 0.01
		benchIter[float32](b, cfg)
		conv, lin := convFlops(cfg.Model.Spec)
		data, walk := 3*lin, 3*lin
		for i, v := range conv {
			data += 2 * v // forward, filter gradient
			walk += 3 * v // forward, input gradient, weighted filter gradient
			if i > 0 {
				data += v
			}
		}
		f := 128*data + 256*walk
		b.ReportMetric(f*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
