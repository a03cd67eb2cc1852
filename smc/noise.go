package smc

import (
	"math/rand/v2"

	"github.com/jarzyn/jarzyn/internal/kernels"
)

// ChunkWalkers is the number of walkers whose noise comes from one random
// stream. Walkers are split into fixed chunks [64c, 64c+64), and every draw
// of noise for chunk c comes from a stream named by (key, c), so the noise a
// walker gets depends only on the key and its index: never on how many cores
// move the walkers, in which order, or how a batch is split into parts.
const ChunkWalkers = 64

// Chunks is the number of noise chunks of n walkers.
func Chunks(n int) int { return (n + ChunkWalkers - 1) / ChunkWalkers }

// ChunkWalkerRange returns the walker range [lo, hi) of chunk c of n walkers.
func ChunkWalkerRange(c, n int) (lo, hi int) {
	return c * ChunkWalkers, min(n, (c+1)*ChunkWalkers)
}

// DrawKey is the key of draw k of a seed: the counter-based key of a
// sampler's k-th noise draw (its start, then one per step).
func DrawKey(seed, k uint64) uint64 { return kernels.SplitMix64(seed ^ kernels.SplitMix64(k)) }

// NewStream returns an independent generator for purpose id of a seed (for
// example the resampling draws of a run).
func NewStream(seed, id uint64) *rand.Rand {
	var p rand.PCG
	seedPCG(&p, seed, id)
	return rand.New(&p)
}

func seedPCG(p *rand.PCG, key, id uint64) {
	a := kernels.SplitMix64(key ^ kernels.SplitMix64(id))
	p.Seed(a, kernels.SplitMix64(a^0x5851f42d4c957f2d^id))
}

// Noise holds one reseedable generator per chunk of a population's walkers.
// Chunk generators are independent of each other, so different goroutines
// may use different chunks at once.
type Noise struct {
	pcg []rand.PCG
	rng []*rand.Rand
}

// NewNoise returns the chunk generators of n walkers.
func NewNoise(n int) *Noise {
	z := &Noise{pcg: make([]rand.PCG, Chunks(n)), rng: make([]*rand.Rand, Chunks(n))}
	for c := range z.rng {
		z.rng[c] = rand.New(&z.pcg[c])
	}
	return z
}

// Chunk returns chunk c's generator at the start of the stream (key, c):
// its draws depend only on key and c. It does not allocate.
func (z *Noise) Chunk(key uint64, c int) *rand.Rand {
	seedPCG(&z.pcg[c], key, uint64(c))
	return z.rng[c]
}
