package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Population is a set of N Langevin walkers in d dimensions carrying
// Jarzynski log-weights (docs/METHOD.md §2): positions X, the energy U and
// gradient G at X under the current energy, the same three before the last
// move (XPrev, UPrev, GPrev: never aliased to X, U, G, see §6.1), the
// log-weights A, and logZref, the log Z that the weights are relative to.
// Training (train) and the weighted sampler (serve) both hold one.
//
// One step is Move (positions and caches saved, then a ULA step with the
// cached gradient), an evaluation of the energy that writes U and G at the
// new X, and Reweight (the increment of §2 step 4 from the saved and the new
// values). Move and Reweight have chunk and walker-range forms so that a
// caller can interleave them with its own evaluation of batch parts.
type Population[T Float] struct {
	// X holds the positions, N rows of d values. It may be a buffer the
	// caller evaluates in place (the walker graph's input, an ONNX Runtime
	// input tensor).
	X, XPrev []T
	// U and G are the energy and its gradient at X, UPrev and GPrev at XPrev
	// (under the energy of the move).
	U, UPrev []float64
	G, GPrev []T
	// A holds the log-weights.
	A []float64
	// LogZRef is log Z of the distribution the walkers started from, moved
	// forward at each resampling: log Ẑ = LogZRef + log mean e^A.
	LogZRef float64
	// Resamplings counts the resampling events.
	Resamplings int
	// PermuteCaches, when set, is called by Resample with the ancestor
	// indices, to permute per-walker caches the population does not hold
	// (train's per-layer activations); scratch holds N·scratchWidth values.
	PermuteCaches func(idx []int, scratch []T)
	// Precond, when non-nil, is the matrix M of the preconditioned kernel
	// (docs/METHOD.md §8): Move, MoveChunks, Reweight and Accept then use
	// x ← x − h·M·g + √(2h)·M^{1/2}·ξ and the increment with |g|² → gᵀMg
	// (PreconditionedIncrement). nil is M = I: the ULA of §2, unchanged.
	Precond *Preconditioner

	pcs   []*pcScratch // per chunk, made by prepareScratch
	pcsK  int
	n, d  int
	noise *Noise
	p     []float64
	idx   []int
	tmpT  []T
	tmpF  []float64
}

// NewPopulation returns a population of len(x)/d walkers at positions x
// (held, not copied) with zero log-weights relative to logZ0, the log Z of
// the distribution x was drawn from. scratchWidth is the widest row of
// PermuteCaches' caches (0 if none).
func NewPopulation[T Float](x []T, d int, logZ0 float64, scratchWidth int) *Population[T] {
	n := len(x) / d
	return &Population[T]{
		X: x, XPrev: make([]T, n*d),
		U: make([]float64, n), UPrev: make([]float64, n),
		G: make([]T, n*d), GPrev: make([]T, n*d),
		A: make([]float64, n), LogZRef: logZ0,
		n: n, d: d, noise: NewNoise(n),
		p: make([]float64, n), idx: make([]int, n),
		tmpT: make([]T, n*max(d, scratchWidth)), tmpF: make([]float64, n),
	}
}

// N is the number of walkers.
func (pop *Population[T]) N() int { return pop.n }

// Dim is the number of values of one walker.
func (pop *Population[T]) Dim() int { return pop.d }

// Chunks is the number of noise chunks (ChunkWalkers walkers each).
func (pop *Population[T]) Chunks() int { return len(pop.noise.rng) }

// Move saves every walker's position, energy and gradient, then moves it by
// one ULA step at step size h with the cached gradient G, the noise of
// chunk c coming from the stream (key, c). Chunks run in parallel; the
// result depends only on the state and key. Energies and gradients are
// saved by swapping buffers, so U and G hold stale values until the next
// evaluation writes them.
func (pop *Population[T]) Move(h float64, key uint64) {
	d := pop.d
	pop.prepareScratch()
	For(pop.Chunks(), func(first, end int) {
		for c := first; c < end; c++ {
			lo, hi := ChunkWalkerRange(c, pop.n)
			copy(pop.XPrev[lo*d:hi*d], pop.X[lo*d:hi*d])
			pop.moveChunk(c, lo, hi, h, key)
		}
	})
	pop.U, pop.UPrev = pop.UPrev, pop.U
	pop.G, pop.GPrev = pop.GPrev, pop.G
}

// MoveChunks is Move on the walkers of chunks [first, end), for callers that
// interleave moves with the evaluation of batch parts: the energies and
// gradients of those walkers are copied (the buffers stay in place) and U
// and G keep their values until the evaluation writes them.
func (pop *Population[T]) MoveChunks(first, end int, h float64, key uint64) {
	d := pop.d
	pop.prepareScratch()
	for c := first; c < end; c++ {
		lo, hi := ChunkWalkerRange(c, pop.n)
		copy(pop.XPrev[lo*d:hi*d], pop.X[lo*d:hi*d])
		copy(pop.GPrev[lo*d:hi*d], pop.G[lo*d:hi*d])
		copy(pop.UPrev[lo:hi], pop.U[lo:hi])
		pop.moveChunk(c, lo, hi, h, key)
	}
}

// moveChunk moves walkers [lo, hi) of chunk c by one ULA step, or one
// preconditioned ULA step with Precond.
func (pop *Population[T]) moveChunk(c, lo, hi int, h float64, key uint64) {
	d := pop.d
	if pop.Precond == nil {
		ULA(pop.X[lo*d:hi*d], pop.G[lo*d:hi*d], h, pop.noise.Chunk(key, c))
		return
	}
	moveRows(pop.Precond, pop.X[lo*d:hi*d], pop.G[lo*d:hi*d], hi-lo, h, pop.noise.Chunk(key, c), pop.scratch(c))
}

// scratch is chunk c's working memory for the preconditioned kernel
// (prepareScratch made it).
func (pop *Population[T]) scratch(c int) *pcScratch { return pop.pcs[c] }

// prepareScratch makes the chunks' working memory for Precond, once, before
// goroutines share the chunks.
func (pop *Population[T]) prepareScratch() {
	if pop.Precond == nil || (pop.pcs != nil && pop.pcsK == pop.Precond.k) {
		return
	}
	pop.pcs, pop.pcsK = make([]*pcScratch, pop.Chunks()), pop.Precond.k
	for i := range pop.pcs {
		pop.pcs[i] = newPCScratch(pop.d, pop.Precond.k)
	}
}

// Undo puts every walker back where it was before the last Move, with its
// energy and gradient.
func (pop *Population[T]) Undo() {
	copy(pop.X, pop.XPrev)
	copy(pop.U, pop.UPrev)
	copy(pop.G, pop.GPrev)
}

// Reweight adds to every walker's log-weight the increment of its last move
// and evaluation (docs/METHOD.md §2 step 4, LogWeightIncrement), for ULA at
// step size h.
func (pop *Population[T]) Reweight(h float64) {
	pop.prepareScratch()
	For(pop.Chunks(), func(lo, hi int) {
		pop.ReweightRange(lo*ChunkWalkers, min(pop.n, hi*ChunkWalkers), h)
	})
}

// ReweightRange is Reweight on walkers [lo, hi). With Precond, calls that
// run at the same time must not share a chunk, and MoveChunks or Reweight
// must have run since Precond was set.
func (pop *Population[T]) ReweightRange(lo, hi int, h float64) {
	d := pop.d
	if pop.Precond != nil {
		pop.logRatios(lo, hi, h, func(i int, r float64) { pop.A[i] += r })
		return
	}
	for i := lo; i < hi; i++ {
		r := i * d
		pop.A[i] += LogWeightIncrement(h, pop.UPrev[i], pop.U[i], pop.XPrev[r:r+d], pop.X[r:r+d], pop.GPrev[r:r+d], pop.G[r:r+d])
	}
}

// logRatios calls f(i, ΔA_i) for every walker i in [lo, hi), ΔA_i the
// preconditioned increment of its last move and evaluation, one chunk's
// part at a time.
func (pop *Population[T]) logRatios(lo, hi int, h float64, f func(i int, r float64)) {
	d := pop.d
	var out [ChunkWalkers]float64
	for a := lo; a < hi; {
		c := a / ChunkWalkers
		b := min(hi, (c+1)*ChunkWalkers)
		n := b - a
		logRatioRows(pop.Precond, h, pop.UPrev[a:b], pop.U[a:b], pop.XPrev[a*d:b*d], pop.X[a*d:b*d], pop.GPrev[a*d:b*d], pop.G[a*d:b*d], n, pop.scratch(c), out[:n])
		for i := 0; i < n; i++ {
			f(a+i, out[i])
		}
		a = b
	}
}

// Accept completes a Metropolis-adjusted Langevin (MALA) step at fixed
// energy (docs/METHOD.md §8, "MALA with work-only weights"): after Move
// (the proposal, preconditioned with Precond) and an evaluation of U and G
// at the proposed positions under the same energy, every walker accepts
// its proposal with probability min(1, e^r), r the log
// Metropolis–Hastings ratio
//
//	r = [−U(y) + log q(y→x)] − [−U(x) + log q(x→y)] = −α(y, x) + α(x, y),
//
// the increment of Reweight (LogWeightIncrement or PreconditionedIncrement)
// in float64. The uniform of walker i comes from the stream (key, chunk of
// i). A rejected walker gets back its position, energy and gradient from
// before the move; a NaN ratio rejects. The log-weights are not touched.
// accepted, when non-nil (length N), receives each walker's outcome; the
// number accepted is returned.
func (pop *Population[T]) Accept(h float64, key uint64, accepted []bool) int {
	pop.prepareScratch()
	counts := make([]int, pop.Chunks())
	For(pop.Chunks(), func(first, end int) {
		for c := first; c < end; c++ {
			counts[c] = pop.acceptChunk(c, h, key, accepted)
		}
	})
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

// AcceptChunks is Accept on the walkers of chunks [first, end), for a
// caller that interleaves its own evaluation of batch parts: each walker's
// uniform comes from the same stream as in Accept. With Precond, calls that
// run at the same time must not share a chunk, and MoveChunks must have run
// since Precond was set. It returns the number accepted.
func (pop *Population[T]) AcceptChunks(first, end int, h float64, key uint64, accepted []bool) int {
	n := 0
	for c := first; c < end; c++ {
		n += pop.acceptChunk(c, h, key, accepted)
	}
	return n
}

// acceptChunk decides the proposals of chunk c (Accept).
func (pop *Population[T]) acceptChunk(c int, h float64, key uint64, accepted []bool) int {
	lo, hi := ChunkWalkerRange(c, pop.n)
	rng := pop.noise.Chunk(key, c)
	count := 0
	decide := func(i int, r float64) {
		ok := math.Log(rng.Float64()) < r
		if accepted != nil {
			accepted[i] = ok
		}
		if ok {
			count++
			return
		}
		d := pop.d
		copy(pop.X[i*d:(i+1)*d], pop.XPrev[i*d:(i+1)*d])
		copy(pop.G[i*d:(i+1)*d], pop.GPrev[i*d:(i+1)*d])
		pop.U[i] = pop.UPrev[i]
	}
	if pop.Precond != nil {
		pop.logRatios(lo, hi, h, decide)
		return count
	}
	d := pop.d
	for i := lo; i < hi; i++ {
		r := i * d
		decide(i, LogWeightIncrement(h, pop.UPrev[i], pop.U[i], pop.XPrev[r:r+d], pop.X[r:r+d], pop.GPrev[r:r+d], pop.G[r:r+d]))
	}
	return count
}

// AddWork adds the work term of a parameter change to every walker's
// log-weight, A_i ← A_i − [U_i − before_i], for U the energies at the
// walkers' (unchanged) positions under the new parameters and before
// those under the old ones (docs/METHOD.md §2, "Variants").
func (pop *Population[T]) AddWork(before []float64) {
	for i, u := range pop.U {
		pop.A[i] -= u - before[i]
	}
}

// Weights writes the normalised weights softmax(A) into a buffer the
// population owns and returns it (valid until the next call).
func (pop *Population[T]) Weights() []float64 {
	Normalize(pop.A, pop.p)
	return pop.p
}

// LogZ is the estimate log Ẑ = LogZRef + log mean e^A (docs/METHOD.md §2 step 5).
func (pop *Population[T]) LogZ() float64 { return pop.LogZRef + LogMeanExp(pop.A) }

// ESS is the effective sample size as a fraction of N (ESSFraction).
func (pop *Population[T]) ESS() float64 { return ESSFraction(pop.A) }

// Resample draws ancestors ∝ e^A with the scheme, permutes positions,
// energies, gradients and PermuteCaches' caches with them, moves log Ẑ into
// LogZRef and zeroes A: log Ẑ is the same before and after (docs/METHOD.md
// §2 step 6). The saved pre-move state is left as it was.
func (pop *Population[T]) Resample(scheme Scheme, rng *rand.Rand) {
	logZ := pop.LogZ()
	Resample(scheme, pop.Weights(), pop.idx, rng)
	Gather(pop.X, pop.d, pop.idx, pop.tmpT[:len(pop.X)])
	Gather(pop.G, pop.d, pop.idx, pop.tmpT[:len(pop.G)])
	Gather(pop.U, 1, pop.idx, pop.tmpF)
	if pop.PermuteCaches != nil {
		pop.PermuteCaches(pop.idx, pop.tmpT)
	}
	pop.LogZRef = logZ
	clear(pop.A)
	pop.Resamplings++
}

// CheckFinite reports the first walker with a non-finite energy or
// log-weight, and with checkGradients the first non-finite gradient entry.
// A reweighted population needs no gradient scan: a NaN or Inf in a
// gradient or position reaches the log-weight through the increment.
func (pop *Population[T]) CheckFinite(checkGradients bool) error {
	for i, u := range pop.U {
		if math.IsNaN(u) || math.IsInf(u, 0) {
			return fmt.Errorf("walker %d has energy %v", i, u)
		}
		if a := pop.A[i]; math.IsNaN(a) || math.IsInf(a, 0) {
			return fmt.Errorf("walker %d has log-weight %v", i, a)
		}
	}
	if !checkGradients {
		return nil
	}
	for i, g := range pop.G {
		if v := float64(g); math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("walker %d has gradient entry %v", i/pop.d, v)
		}
	}
	return nil
}
