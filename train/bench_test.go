package train

import (
	"context"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/models"
)

// benchConfigs are the sizes of the acceptance benchmark: one training
// iteration (weighted parameter gradient, update, ULA move, walker
// evaluation, reweighting) at N walkers.
func benchConfigs() map[string]Config {
	gmm := DefaultConfig()
	gmm.Model.Spec = models.Spec{Family: models.GMM, Dim: 50, Modes: 2, BaseStd: 1}
	gmm.Data.Teacher.Means = [][]float64{{-10}, {6}}
	gmm.Data.Teacher.Masses = []float64{0.25, 0.75}
	gmm.Walkers.N, gmm.Data.N = 10000, 10000
	gmm.Optimizer.Kind, gmm.Optimizer.LR = "sgd", 0.0025

	mlp := func(d, h int) Config {
		c := DefaultConfig()
		c.Dtype = "float32"
		c.Model.Spec = models.Spec{Family: models.MLP, Dim: d, Hidden: []int{h, h}, Activation: models.SiLU, BaseStd: 1}
		c.Data.Teacher.Means = [][]float64{{1}, {-1}}
		c.Data.Teacher.Masses = []float64{0.5, 0.5}
		c.Data.N, c.Data.Batch = 4096, 256
		c.Walkers.N, c.Walkers.StepSize = 4096, 0.01
		return c
	}
	return map[string]Config{"gmm50d": gmm, "mlp_d2_H128": mlp(2, 128), "mlp_d784_H256": mlp(784, 256)}
}

func BenchmarkTrainIteration(b *testing.B) {
	cfgs := benchConfigs()
	for _, name := range []string{"gmm50d", "mlp_d2_H128", "mlp_d784_H256"} {
		b.Run(name, func(b *testing.B) {
			cfg := cfgs[name]
			if cfg.Dtype == "float32" {
				benchIter[float32](b, cfg)
			} else {
				benchIter[float64](b, cfg)
			}
		})
	}
}

func benchIter[T Float](b *testing.B, cfg Config) {
	cfg.Iterations = MaxIterations
	cfg.Log.Every, cfg.Log.CheckpointEvery, cfg.Log.EvalEvery = MaxIterations, MaxIterations, 1
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	t, err := newTrainer[T](cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := t.initFresh(); err != nil {
		b.Fatal(err)
	}
	t.cfg.Iterations = 2 // warm up
	h := Hooks{Checkpoint: func(int) error { return nil }}
	if err := t.run(context.Background(), h, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	t.cfg.Iterations = t.iter + b.N
	if err := t.run(context.Background(), h, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/iter")
	// the process's CPU time per iteration (all cores): on a shared machine
	// it moves less with the load than the wall time does
	b.ReportMetric((cpuTime()-cpu0).Seconds()*1e3/float64(b.N), "cpu-ms/iter")
}

// cpuTime is the user and system time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkDemoIteration(b *testing.B) {
	cfg, err := LoadConfig("../configs/gmm2d.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchIter[float32](b, cfg)
}

// BenchmarkULA times the sampler loop on gorgonia (one ULA step: U and ∇ₓU of
// every walker, the move): the comparison point for jarzyn-serve's ONNX
// Runtime sampler (serve.BenchmarkSampleULA) and bench/torch_ula.py.
func BenchmarkULA(b *testing.B) {
	for _, c := range []struct {
		name    string
		d, h, n int
	}{{"d2_H128_N4096", 2, 128, 4096}, {"d784_H256_N4096", 784, 256, 4096}} {
		b.Run(c.name, func(b *testing.B) {
			spec := models.Spec{Family: models.MLP, Dim: c.d, Hidden: []int{c.h, c.h}, Activation: models.SiLU, BaseStd: 1}
			p, err := models.NewParams(spec)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			l := spec.Layers()
			for k := range p.Tensors {
				fan := float64(l[k/2])
				for i := range p.Tensors[k].Data {
					p.Tensors[k].Data[i] = rng.NormFloat64() / math.Sqrt(fan)
				}
			}
			ps := newParamSet[float32](p)
			pop, err := newPopulation[float32](ps, c.n, false)
			if err != nil {
				b.Fatal(err)
			}
			for i := range pop.X {
				pop.X[i] = float32(rng.NormFloat64())
			}
			if err := pop.evaluate(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pop.Move(0.01, rng.Uint64())
				if err := pop.evaluate(); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(c.n*b.N)/sec, "walker-steps/s")
			flops := 4 * float64(c.d*c.h+c.h*c.h+c.h) * float64(c.n*b.N)
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
		})
	}
}
