package serve

import (
	"context"
	"sync"
	"testing"
)

// BenchmarkBatcherMix: one round of the mixed load of
// scripts/batching-bench.sh without HTTP: 64 requests of 16 walkers and 8
// of 1000, 100 steps each, all at once, on the Gaussian test model;
// "batched" through a Batcher, "solo" each on its own batch behind two
// evaluation slots (as `--batching off`), and "one-batch" the same walkers as
// one request (the ceiling). Reports walker-steps/s.
func BenchmarkBatcherMix(b *testing.B) {
	m := loadGaussian(b, testGaussian)
	type req struct{ n, count int }
	mix := []req{{16, 64}, {1000, 8}}
	walkerSteps := 0
	for _, r := range mix {
		walkerSteps += r.n * r.count * 100
	}
	runAll := func(b *testing.B, sample func(cfg SampleConfig) error) {
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			for _, r := range mix {
				for c := 0; c < r.count; c++ {
					wg.Add(1)
					go func(seed uint64) {
						defer wg.Done()
						if err := sample(SampleConfig{N: r.n, Steps: 100, Seed: seed}); err != nil {
							b.Error(err)
						}
					}(uint64(c))
				}
			}
			wg.Wait()
		}
		b.ReportMetric(float64(walkerSteps)*float64(b.N)/b.Elapsed().Seconds(), "walker-steps/s")
	}
	b.Run("batched", func(b *testing.B) {
		bt := NewBatcher(m, BatcherConfig{MaxWalkers: 100_000, MaxQueue: 1024})
		defer bt.Close()
		runAll(b, func(cfg SampleConfig) error { _, err := bt.Sample(context.Background(), cfg); return err })
	})
	b.Run("solo", func(b *testing.B) {
		slots := make(chan struct{}, 2)
		runAll(b, func(cfg SampleConfig) error {
			slots <- struct{}{}
			defer func() { <-slots }()
			_, err := Sample(context.Background(), m, cfg)
			return err
		})
	})
	b.Run("one-batch", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Sample(context.Background(), m, SampleConfig{N: walkerSteps / 100, Steps: 100}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(walkerSteps)*float64(b.N)/b.Elapsed().Seconds(), "walker-steps/s")
	})
}
