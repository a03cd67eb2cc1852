package smc

import (
	"runtime"
	"sync"
)

// Pool runs a function on a fixed set of worker goroutines: the sampler's
// steps and the trainer's walker passes use it, so the whole project has one
// way of spreading work over cores. Run does not allocate when fn is a
// preallocated func value, which keeps steady-state sampling steps free of
// allocations. A Pool is not safe for concurrent calls of Run.
type Pool struct {
	n     int
	fn    func(w int)
	start []chan struct{}
	wg    sync.WaitGroup
}

// NewPool starts a pool of n workers (at least 1): n−1 helper goroutines,
// the caller of Run being worker 0. Close stops them.
func NewPool(n int) *Pool {
	if n < 1 {
		n = 1
	}
	p := &Pool{n: n, start: make([]chan struct{}, n)}
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

// Workers is the number of workers.
func (p *Pool) Workers() int { return p.n }

// Run calls fn(w) for every worker w in [0, Workers()) concurrently and
// waits for all of them.
func (p *Pool) Run(fn func(w int)) {
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

// Share returns worker w's contiguous share [lo, hi) of [first, end).
func (p *Pool) Share(w, first, end int) (lo, hi int) {
	return share(w, p.n, first, end)
}

// Close stops the helper goroutines; the pool must not be used afterwards.
func (p *Pool) Close() {
	for i := 1; i < p.n; i++ {
		close(p.start[i])
	}
}

func share(w, workers, first, end int) (lo, hi int) {
	n := end - first
	return first + w*n/workers, first + (w+1)*n/workers
}

// For splits [0, n) into contiguous shares on min(GOMAXPROCS, n) goroutines
// and runs f on each. It is the one-shot form of a Pool, for work done once
// per iteration.
func For(n int, f func(lo, hi int)) {
	_ = ForErr(0, n, func(lo, hi int) error { f(lo, hi); return nil })
}

// ForErr is For on at most workers goroutines (0: GOMAXPROCS) with an f that
// can fail; it returns the error of the first failing share in order.
func ForErr(workers, n int, f func(lo, hi int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	if workers == 1 {
		return f(0, n)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = f(share(w, workers, 0, n))
		}()
	}
	errs[0] = f(share(0, workers, 0, n))
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
