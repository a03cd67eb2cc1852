package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jarzyn/jarzyn/smc"
)

// Continuous batching: every Langevin step of every sampling request is the
// same evaluation of U and ∇ₓU at its walkers (annealing only changes how a
// request combines the outputs with its base, per walker), so the requests on
// one model can share one batch. A Batcher holds the walkers of the requests
// admitted to a model; at each step it evaluates all of them at once, then
// each request moves and weighs its own walkers exactly as a solo run does
// (its own h, seed, noise streams, schedule, weights and resampling). A
// request joins at the next step after it is admitted and leaves when its
// own steps are done; the next waiting request takes its room. A request's
// result equals a solo run with the same settings up to the float32
// round-off of the model's evaluation in a different batch.

// BatcherConfig bounds a model's shared walker pool.
type BatcherConfig struct {
	// MaxWalkers is the pool's capacity: the most walkers of the requests
	// stepped together. A request waits in the queue until its walkers fit.
	MaxWalkers int
	// MaxQueue is the most requests waiting for room; beyond it a request
	// is refused at once with ErrQueueFull.
	MaxQueue int
}

// ErrQueueFull is returned by Batcher.Sample when MaxQueue requests are
// already waiting for room in the pool.
var ErrQueueFull = errors.New("serve: sampling queue full")

// ErrNotAdmitted wraps the context's error when a request's context ended
// while it waited in the queue (it never ran a step).
var ErrNotAdmitted = errors.New("serve: request not admitted to the walker pool")

// errBatcherClosed is returned to requests that arrive after Close.
var errBatcherClosed = errors.New("serve: model is being unloaded")

// Batcher steps the sampling requests of one model in one shared batch.
// Its methods are safe for concurrent use.
//
// One goroutine (loop) runs the steps. At each step it takes in the
// requests that have joined, then, over the model's lanes: begins every
// request's step and moves its walkers before the evaluation (each walker
// chunk on whichever core has the share it falls in), gathers all walkers
// into the shared batch, evaluates it in parts, scatters the energies and
// gradients back and finishes the moves, then ends every request's step
// (weights checked, resampling, progress). Requests that are done, failed or
// cancelled leave at the end of the step, and their room goes to the queue.
type Batcher struct {
	m   *Model
	cfg BatcherConfig

	mu      sync.Mutex
	wake    *sync.Cond // the loop waits on it for requests to run
	active  int        // requests admitted (joining or running)
	walkers int        // their walkers
	queue   []*ticket  // requests waiting for room, first come first served
	joining []*entry   // admitted requests with their start drawn
	closed  bool
	done    chan struct{} // closed when the loop has ended

	// used by the loop only
	running []*entry
	pool    *smc.Pool
	shares  [][]segment // per worker: the chunk ranges it moves
	x       []float32   // the shared batch: positions, energies, gradients
	energy  []float32
	grad    []float32
	tensors map[[2]int]*batchPart // part tensors over the shared batch
	errs    []error               // per worker

	evals, walkerSteps atomic.Int64
	evalNanos          atomic.Int64
}

// entry is one request in the batcher: its walk and strategy, the step it
// is at, its walkers' offset in the shared batch at this step, and where
// the loop reports its end.
type entry struct {
	ctx  context.Context
	w    *walk
	j    stepJob
	k    int
	off  int
	err  error
	done chan struct{}
}

// segment is chunks [first, end) of one running entry.
type segment struct {
	e          *entry
	first, end int
}

// ticket is a request waiting for room in the pool.
type ticket struct {
	n        int
	admitted bool
	ok       chan struct{}
}

// maxCachedParts bounds the Batcher's cache of part tensors; beyond it the
// cache is emptied.
const maxCachedParts = 256

// NewBatcher starts the batcher of m. Close stops it; m must outlive it.
func NewBatcher(m *Model, cfg BatcherConfig) *Batcher {
	cfg.MaxWalkers = max(cfg.MaxWalkers, smc.ChunkWalkers)
	cfg.MaxQueue = max(cfg.MaxQueue, 0)
	lanes := max(1, m.Lanes)
	bt := &Batcher{m: m, cfg: cfg, done: make(chan struct{}), tensors: map[[2]int]*batchPart{},
		pool: smc.NewPool(lanes), shares: make([][]segment, lanes), errs: make([]error, lanes)}
	bt.wake = sync.NewCond(&bt.mu)
	go bt.loop()
	return bt
}

// Fits reports whether a request of n walkers can ever be admitted.
func (bt *Batcher) Fits(n int) bool { return n <= bt.cfg.MaxWalkers }

// BatcherStats is a snapshot of a batcher's state and counters.
type BatcherStats struct {
	// Active requests and their Walkers; Capacity is MaxWalkers.
	Active, Walkers, Capacity int
	// Queued requests waiting for room.
	Queued int
	// Evals is the number of shared evaluations (steps) so far, WalkerSteps
	// the walker steps they served and EvalSeconds the wall time of the
	// steps.
	Evals, WalkerSteps int64
	EvalSeconds        float64
}

// Stats returns the batcher's state and counters.
func (bt *Batcher) Stats() BatcherStats {
	bt.mu.Lock()
	s := BatcherStats{Active: bt.active, Walkers: bt.walkers, Capacity: bt.cfg.MaxWalkers, Queued: len(bt.queue)}
	bt.mu.Unlock()
	s.Evals, s.WalkerSteps = bt.evals.Load(), bt.walkerSteps.Load()
	s.EvalSeconds = float64(bt.evalNanos.Load()) / 1e9
	return s
}

// Close stops the batcher after the admitted requests have left; requests
// that arrive or wait after it are refused. It frees the shared tensors.
func (bt *Batcher) Close() {
	bt.mu.Lock()
	if !bt.closed {
		bt.closed = true
		for _, t := range bt.queue {
			close(t.ok) // not admitted: admit sees closed
		}
		bt.queue = nil
		bt.wake.Signal()
	}
	bt.mu.Unlock()
	<-bt.done
}

// Sample runs one sampling request in the shared batch: cfg as for Sample,
// on the model's full dimension (a latent walk runs solo). It waits for room
// in the pool (at most until ctx ends: then the error wraps
// ErrNotAdmitted), or fails at once with ErrQueueFull. Once admitted, it
// stops at the next step when ctx ends.
func (bt *Batcher) Sample(ctx context.Context, cfg SampleConfig) (*Result, error) {
	cfg, err := prepare(bt.m, cfg)
	if err != nil {
		return nil, err
	}
	if !bt.Fits(cfg.N) {
		return nil, fieldErr("n", "%d walkers exceed the walker pool of %d", cfg.N, bt.cfg.MaxWalkers)
	}
	if cfg.TotalSteps() == 0 {
		return Sample(ctx, bt.m, cfg) // the start alone: nothing to evaluate
	}
	if err := bt.admit(ctx, cfg.N); err != nil {
		return nil, err
	}
	d := bt.m.Info.Dim
	b := &Batch{N: cfg.N, RunBatch: cfg.N, X: make([]float32, cfg.N*d), Energy: make([]float32, cfg.N), Grad: make([]float32, cfg.N*d)}
	// the batcher spreads the work over the cores; the result does not
	// depend on the number of workers
	cfg.Workers = 1
	w := newWalk(bt.m, b, cfg)
	defer w.close()
	t0 := time.Now()
	e := &entry{ctx: ctx, w: w, done: make(chan struct{})}
	var a *annealing
	if cfg.Weighted {
		a = newAnnealing(w)
		a.init()
		e.j = a
	} else {
		w.start(nil)
		e.j = &ulaSteps{w: w}
	}
	bt.join(e)
	<-e.done
	if e.err != nil {
		return nil, e.err
	}
	res := w.result()
	if a != nil {
		a.fill(res)
	}
	res.Elapsed = time.Since(t0)
	res.Batched = true
	if err := checkFinite(res); err != nil {
		return nil, err
	}
	return res, nil
}

// admit takes room for n walkers, waiting in the queue when there is none.
func (bt *Batcher) admit(ctx context.Context, n int) error {
	bt.mu.Lock()
	if bt.closed {
		bt.mu.Unlock()
		return errBatcherClosed
	}
	if len(bt.queue) == 0 && bt.walkers+n <= bt.cfg.MaxWalkers {
		bt.active++
		bt.walkers += n
		bt.mu.Unlock()
		return nil
	}
	if len(bt.queue) >= bt.cfg.MaxQueue {
		bt.mu.Unlock()
		return fmt.Errorf("%w: %d requests wait for room in the walker pool of %d", ErrQueueFull, len(bt.queue), bt.cfg.MaxWalkers)
	}
	t := &ticket{n: n, ok: make(chan struct{})}
	bt.queue = append(bt.queue, t)
	bt.mu.Unlock()
	select {
	case <-t.ok:
	case <-ctx.Done():
	}
	bt.mu.Lock()
	defer bt.mu.Unlock()
	switch {
	case t.admitted && ctx.Err() == nil:
		return nil
	case t.admitted: // admitted just as ctx ended: give the room back
		bt.release(n)
	case bt.closed:
		return errBatcherClosed
	default:
		for i, q := range bt.queue {
			if q == t {
				bt.queue = append(bt.queue[:i], bt.queue[i+1:]...)
				break
			}
		}
		bt.admitQueued() // a large request at the head may have held others back
	}
	return fmt.Errorf("%w: %w", ErrNotAdmitted, ctx.Err())
}

// admitQueued admits waiting requests in order while they fit (bt.mu held).
func (bt *Batcher) admitQueued() {
	for len(bt.queue) > 0 && bt.walkers+bt.queue[0].n <= bt.cfg.MaxWalkers {
		t := bt.queue[0]
		bt.queue[0] = nil
		bt.queue = bt.queue[1:]
		bt.active++
		bt.walkers += t.n
		t.admitted = true
		close(t.ok)
	}
}

// release gives back an admitted request's room (bt.mu held).
func (bt *Batcher) release(n int) {
	bt.active--
	bt.walkers -= n
	bt.admitQueued()
	bt.wake.Signal()
}

// join hands an admitted request, its start drawn, to the loop: it takes
// its first step with the next step of the batch.
func (bt *Batcher) join(e *entry) {
	bt.mu.Lock()
	bt.joining = append(bt.joining, e)
	bt.wake.Signal()
	bt.mu.Unlock()
}

// loop runs the steps until Close, while any request is running or joining.
func (bt *Batcher) loop() {
	defer close(bt.done)
	defer bt.pool.Close()
	defer bt.freeTensors()
	for {
		bt.mu.Lock()
		for len(bt.joining) == 0 && len(bt.running) == 0 && !(bt.closed && bt.active == 0) {
			bt.wake.Wait()
		}
		if len(bt.joining) == 0 && len(bt.running) == 0 {
			bt.mu.Unlock()
			return
		}
		bt.running = append(bt.running, bt.joining...)
		clear(bt.joining)
		bt.joining = bt.joining[:0]
		bt.mu.Unlock()

		t0 := time.Now()
		bt.step()
		bt.evalNanos.Add(int64(time.Since(t0)))
		bt.evals.Add(1)

		// the requests that are done leave; their room goes to the queue
		kept := bt.running[:0]
		var left int
		for _, e := range bt.running {
			if e.err == nil && e.k < e.w.total {
				kept = append(kept, e)
				continue
			}
			left++
			bt.mu.Lock()
			bt.release(e.w.n)
			bt.mu.Unlock()
			close(e.done)
		}
		clear(bt.running[len(kept):])
		bt.running = kept
	}
}

// step runs one step of every running request: begin, the moves before the
// evaluation and the gather, the shared evaluation, the scatter and the
// moves after it, end.
func (bt *Batcher) step() {
	// a request whose context has ended stops before the step, as a solo
	// run does
	total, energy := 0, false
	for _, e := range bt.running {
		if err := e.ctx.Err(); err != nil {
			e.err = e.w.stopped(e.k, err)
			continue
		}
		e.off = total
		total += e.w.n
		energy = energy || e.j.needsEnergy()
		e.j.begin(e.k)
	}
	if total == 0 {
		return
	}
	bt.share(total)
	d := bt.m.Info.Dim
	padded := (total + smc.ChunkWalkers - 1) / smc.ChunkWalkers * smc.ChunkWalkers
	bt.grow(padded)
	bt.pool.Run(func(wk int) {
		for _, s := range bt.shares[wk] {
			s.e.j.beforeEval(s.first, s.end)
			lo, _ := s.e.w.walkers(s.first)
			_, hi := s.e.w.walkers(s.end - 1)
			copy(bt.x[(s.e.off+lo)*d:], s.e.w.b.X[lo*d:hi*d])
		}
	})
	if err := bt.eval(total, padded, energy); err != nil {
		for _, e := range bt.running {
			if e.err == nil {
				e.err = e.w.stopped(e.k, err)
			}
		}
		return
	}
	bt.pool.Run(func(wk int) {
		for _, s := range bt.shares[wk] {
			e := s.e
			lo, _ := e.w.walkers(s.first)
			_, hi := e.w.walkers(s.end - 1)
			copy(e.w.b.Grad[lo*d:hi*d], bt.grad[(e.off+lo)*d:(e.off+hi)*d])
			if energy {
				copy(e.w.b.Energy[lo:hi], bt.energy[e.off+lo:e.off+hi])
			}
			e.j.afterEval(s.first, s.end)
		}
	})
	// end every request's step, the requests shared out by walkers
	bt.pool.Run(func(wk int) {
		for _, s := range bt.shares[wk] {
			if e := s.e; s.end == smc.Chunks(e.w.n) { // the worker with a request's last chunk ends it
				if e.err = e.j.end(e.k); e.err == nil {
					e.k++
				}
			}
		}
	})
	bt.walkerSteps.Add(int64(total))
}

// share cuts the running requests' walker chunks into one contiguous share
// of about total/workers walkers per worker.
func (bt *Batcher) share(total int) {
	nw := bt.pool.Workers()
	for wk := range bt.shares {
		bt.shares[wk] = bt.shares[wk][:0]
	}
	wk, done := 0, 0
	for _, e := range bt.running {
		if e.err != nil {
			continue
		}
		chunks := smc.Chunks(e.w.n)
		first := 0
		for c := 0; c < chunks; c++ {
			lo, hi := e.w.walkers(c)
			done += hi - lo
			// move to the next worker once its share is full
			if wk < nw-1 && done >= (wk+1)*total/nw {
				bt.shares[wk] = append(bt.shares[wk], segment{e, first, c + 1})
				first = c + 1
				wk++
			}
		}
		if first < chunks {
			bt.shares[wk] = append(bt.shares[wk], segment{e, first, chunks})
		}
	}
}

// eval evaluates the shared batch's first padded walkers (total of them
// real) in parts, up to one part per worker at a time: the gradient-only
// session when no request needs energies.
func (bt *Batcher) eval(total, padded int, energy bool) error {
	nw := bt.pool.Workers()
	size := min(DefaultRunBatch, (padded/nw+smc.ChunkWalkers-1)/smc.ChunkWalkers*smc.ChunkWalkers)
	size = max(size, smc.ChunkWalkers)
	nparts := (padded + size - 1) / size
	parts := make([]*batchPart, nparts)
	for k := range parts {
		lo := k * size
		p, err := bt.part(lo, min(size, padded-lo))
		if err != nil {
			return err
		}
		parts[k] = p
	}
	clear(bt.errs)
	bt.pool.Run(func(wk int) {
		lo, hi := bt.pool.Share(wk, 0, nparts)
		for _, p := range parts[lo:hi] {
			var err error
			if energy || bt.m.gradSess == nil {
				err = bt.m.sess.RunWithOptions(p.inputs, p.outputs, nil)
			} else {
				err = bt.m.gradSess.RunWithOptions(p.inputs, p.outputs[1:], nil)
			}
			if err != nil {
				bt.errs[wk] = fmt.Errorf("serve: evaluating the shared batch (walkers %d..%d of %d): %w", p.lo, min(p.hi, total)-1, total, err)
				return
			}
		}
	})
	return errors.Join(bt.errs...)
}

// grow makes the shared batch hold at least n walkers, doubling its size
// up to the pool's capacity (rounded up to whole chunks).
func (bt *Batcher) grow(n int) {
	have := len(bt.energy)
	if n <= have {
		return
	}
	limit := (bt.cfg.MaxWalkers + smc.ChunkWalkers - 1) / smc.ChunkWalkers * smc.ChunkWalkers
	size := max(n, min(2*have, limit))
	d := bt.m.Info.Dim
	bt.freeTensors()
	bt.x, bt.energy, bt.grad = make([]float32, size*d), make([]float32, size), make([]float32, size*d)
}

// part returns the tensors over walkers [lo, lo+n) of the shared batch.
func (bt *Batcher) part(lo, n int) (*batchPart, error) {
	key := [2]int{lo, n}
	if p := bt.tensors[key]; p != nil {
		return p, nil
	}
	if len(bt.tensors) >= maxCachedParts {
		bt.freeTensors()
	}
	d := bt.m.Info.Dim
	b := &Batch{N: n, X: bt.x[lo*d : (lo+n)*d], Energy: bt.energy[lo : lo+n], Grad: bt.grad[lo*d : (lo+n)*d]}
	p, err := bt.m.partTensors(b, 0, n)
	if err != nil {
		return nil, err
	}
	p.lo, p.hi = lo, lo+n
	bt.tensors[key] = p
	return p, nil
}

// freeTensors destroys the cached part tensors.
func (bt *Batcher) freeTensors() {
	for k, p := range bt.tensors {
		for _, v := range append(p.inputs, p.outputs...) {
			v.Destroy()
		}
		delete(bt.tensors, k)
	}
}
