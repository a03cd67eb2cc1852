package serve

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// benchSample runs one Sample call of b.N steps on 4096 walkers of an MLP
// energy (hidden [H, H], SiLU, random nonzero weights, float32) and reports
// walker-steps per second. One op is one step of the whole batch: one ONNX
// Runtime Run plus the ULA move (and the weights, when weighted).
func benchSample(b *testing.B, d, h int, weighted bool, runBatch int) {
	benchSampleOn(b, mlpModel(b, d, h, 0), weighted, runBatch)
}

func benchSampleOn(b *testing.B, m *Model, weighted bool, runBatch int) {
	const n = 4096
	cfg := SampleConfig{N: n, Steps: b.N, StepSize: 1e-3, Seed: 1, Weighted: weighted, RunBatch: runBatch}
	// warm the batch pool and ONNX Runtime's allocator outside the timing
	warm := cfg
	warm.Steps = 2
	if _, err := Sample(context.Background(), m, warm); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	res, err := Sample(context.Background(), m, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "walker-steps/s")
	_ = res
}

// BenchmarkSampleULA is the sampler's throughput with the default settings
// (parts of DefaultRunBatch walkers, pipelined).
func BenchmarkSampleULA(b *testing.B) {
	for _, c := range []struct{ d, h int }{{2, 128}, {784, 256}} {
		b.Run(fmt.Sprintf("d%d_H%d_N4096", c.d, c.h), func(b *testing.B) { benchSample(b, c.d, c.h, false, 0) })
	}
}

// BenchmarkSampleULAWholeBatch evaluates all 4096 walkers in one Run per
// step on a session with GOMAXPROCS intra-op threads, for comparison with the
// default (one single-threaded Run per core on its own parts).
func BenchmarkSampleULAWholeBatch(b *testing.B) {
	for _, c := range []struct{ d, h int }{{2, 128}, {784, 256}} {
		b.Run(fmt.Sprintf("d%d_H%d_N4096", c.d, c.h), func(b *testing.B) {
			benchSampleOn(b, mlpModel(b, c.d, c.h, runtime.GOMAXPROCS(0)), false, 4096)
		})
	}
}

func BenchmarkSampleWeighted(b *testing.B) {
	for _, c := range []struct{ d, h int }{{2, 128}, {784, 256}} {
		b.Run(fmt.Sprintf("d%d_H%d_N4096", c.d, c.h), func(b *testing.B) { benchSample(b, c.d, c.h, true, 0) })
	}
}

// BenchmarkSampleULALatent is BenchmarkSampleULA's d=784 case with the
// model's latent reduction loaded (r = 256): the walk runs in ℝ²⁵⁶, plus the
// map back to ℝ⁷⁸⁴ once per Sample call.
func BenchmarkSampleULALatent(b *testing.B) {
	b.Run("d784_H256_N4096", func(b *testing.B) {
		benchSampleOn(b, loadLatentMLP(b, mlpParams(b, 784, 256, 0), 1e-3, LoadOptions{Name: "mlp", Version: "1"}), false, 0)
	})
}

// BenchmarkSampleWeightedLatent is BenchmarkSampleWeighted's d=784 case with
// the latent model loaded.
func BenchmarkSampleWeightedLatent(b *testing.B) {
	b.Run("d784_H256_N4096", func(b *testing.B) {
		benchSampleOn(b, loadLatentMLP(b, mlpParams(b, 784, 256, 0), 1e-3, LoadOptions{Name: "mlp", Version: "1"}), true, 0)
	})
}

// BenchmarkSampleULAConv is plain ULA on the MNIST conv net of
// docs/METHOD.md §5.2 (models.MNISTConvSpec, random nonzero weights) with
// 1024 walkers; walker-steps/s as BenchmarkSampleULA, for comparison with
// bench/torch_conv.py's mnist/ula case.
func BenchmarkSampleULAConv(b *testing.B) {
	b.Run("mnist_N1024", func(b *testing.B) {
		needORT(b)
		rng := rand.New(rand.NewPCG(5, 5))
		p, err := models.InitConv(models.MNISTConvSpec(), rng)
		if err != nil {
			b.Fatal(err)
		}
		for j := range p.Get("w1").Data {
			p.Get("w1").Data[j] = 0.1 * rng.NormFloat64()
		}
		onnx, err := export.Build(p, models.TrainingInfo{Method: "test", StepSize: 1e-3, LogZEstimate: math.NaN(), DataMin: -1, DataMax: 1})
		if err != nil {
			b.Fatal(err)
		}
		m, err := LoadModel(writeFile(b, b.TempDir(), "mnist.onnx", onnx), LoadOptions{Name: "mnist", Version: "1", Logger: quietLog})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		const n = 1024
		cfg := SampleConfig{N: n, Steps: 2, StepSize: 1e-3, Seed: 1}
		if _, err := Sample(context.Background(), m, cfg); err != nil {
			b.Fatal(err)
		}
		cfg.Steps = b.N
		b.ReportAllocs()
		b.ResetTimer()
		if _, err := Sample(context.Background(), m, cfg); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "walker-steps/s")
	})
}
