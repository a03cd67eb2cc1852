package serve

import (
	"math/rand/v2"
	"runtime"
	"sync"
)

// chunkWalkers is the number of walkers per noise chunk. Chunks are fixed
// runs of walkers [64c, 64c+64), and each has its own random stream, so
// samples depend only on the seed, N and the settings of the walk — never on
// GOMAXPROCS, the run batch or which goroutine moves which walkers. Batch
// parts are multiples of it, so a chunk never straddles two parts.
const chunkWalkers = 64

// chunking lists the chunks of a batch and the chunks of each batch part.
type chunking struct {
	ranges [][2]int // walker range [lo, hi) of each chunk
	parts  [][2]int // chunk range [first, end) of each batch part
}

func newChunking(b *Batch) chunking {
	var c chunking
	for lo := 0; lo < b.N; lo += chunkWalkers {
		c.ranges = append(c.ranges, [2]int{lo, min(b.N, lo+chunkWalkers)})
	}
	for _, p := range b.parts {
		c.parts = append(c.parts, [2]int{p.lo / chunkWalkers, (p.hi + chunkWalkers - 1) / chunkWalkers})
	}
	return c
}

// walkers returns the walker range [lo, hi) of chunk i.
func (c chunking) walkers(i int) (lo, hi int) { return c.ranges[i][0], c.ranges[i][1] }

// splitmix64 is one SplitMix64 step, used to derive independent PCG seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Stream IDs of the non-chunk random streams.
const (
	streamResample = 1<<63 + iota
)

// newStream returns the PCG stream number id of a seed.
func newStream(seed, id uint64) *rand.Rand {
	a := splitmix64(seed ^ splitmix64(id))
	b := splitmix64(a ^ 0x5851f42d4c957f2d ^ id)
	return rand.New(rand.NewPCG(a, b))
}

// workers runs a function on fixed worker goroutines; run does not allocate
// when fn is a preallocated func value.
type workers struct {
	n     int
	fn    func(w int)
	start []chan struct{}
	wg    sync.WaitGroup
}

// newWorkers starts n−1 helper goroutines (the caller is worker 0).
func newWorkers(n int) *workers {
	if n < 1 {
		n = 1
	}
	p := &workers{n: n, start: make([]chan struct{}, n)}
	for i := 1; i < n; i++ {
		p.start[i] = make(chan struct{})
		go func(i int) {
			for range p.start[i] {
				p.fn(i)
				p.wg.Done()
			}
		}(i)
	}
	return p
}

// defaultWorkers is the number of goroutines a sampler uses.
func defaultWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }

// run calls fn(w) for every worker w and waits for all of them.
func (p *workers) run(fn func(w int)) {
	if p.n == 1 {
		fn(0)
		return
	}
	p.fn = fn
	p.wg.Add(p.n - 1)
	for i := 1; i < p.n; i++ {
		p.start[i] <- struct{}{}
	}
	fn(0)
	p.wg.Wait()
	p.fn = nil
}

// close stops the helper goroutines.
func (p *workers) close() {
	for i := 1; i < p.n; i++ {
		close(p.start[i])
	}
}

// span returns worker w's share [lo, hi) of the chunk range [first, end).
func (p *workers) span(w int, first, end int) (lo, hi int) {
	nc := end - first
	return first + w*nc/p.n, first + (w+1)*nc/p.n
}

// inLanes splits [0, n) into lanes contiguous shares, runs fn on each in its
// own goroutine and returns the first error.
func inLanes(lanes, n int, fn func(lo, hi int) error) error {
	lanes = max(1, min(lanes, n))
	errs := make([]error, lanes)
	var wg sync.WaitGroup
	for w := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fn(w*n/lanes, (w+1)*n/lanes)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
