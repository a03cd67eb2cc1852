package train

import (
	"fmt"
	"hash"
	"runtime"
	"sync/atomic"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	iblas "github.com/jarzyn/jarzyn/internal/blas"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// convGeom is one convolution of the conv family: input [C, H, W], filters
// [Out, C, K, K], stride S, zero padding P, output [Out, Ho, Wo]. Activations
// are NCHW, one sample per row of an [n, C·H·W] matrix, as models and export
// lay them out.
type convGeom struct {
	C, H, W, Out, K, S, P, Ho, Wo int
}

func newConvGeom(in [3]int, l models.ConvLayer) convGeom {
	return convGeom{C: in[0], H: in[1], W: in[2], Out: l.Out, K: l.Kernel, S: l.Stride, P: l.Pad,
		Ho: (in[1]+2*l.Pad-l.Kernel)/l.Stride + 1, Wo: (in[2]+2*l.Pad-l.Kernel)/l.Stride + 1}
}

func (g convGeom) inSize() int  { return g.C * g.H * g.W }
func (g convGeom) outSize() int { return g.Out * g.Ho * g.Wo }
func (g convGeom) ckk() int     { return g.C * g.K * g.K }
func (g convGeom) pix() int     { return g.Ho * g.Wo }
func (g convGeom) String() string {
	return fmt.Sprintf("%dx%dx%d>%d:k%ds%dp%d", g.C, g.H, g.W, g.Out, g.K, g.S, g.P)
}

func (g convGeom) blas() iblas.ConvGeom {
	return iblas.ConvGeom{C: g.C, H: g.H, W: g.W, K: g.K, S: g.S, P: g.P, Ho: g.Ho, Wo: g.Wo}
}

// gemm is C = αAB + βC (row-major, op(A) m×k, op(B) k×n) on the serial
// BLAS: the kernels below already run one GEMM per core.
func gemm[T Float](tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		serialBLAS.Sgemm(tA, tB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		serialBLAS.Dgemm(tA, tB, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

var serialBLAS = iblas.Serial()

// convChunkFloats bounds one worker's scratch (patches plus one output
// block) in values. 1<<20 (4 MiB in float32) measured best: the CIFAR net's
// GEMMs at 1<<18 had too few columns (1.8 s against 1.06 s per energy and
// gradient of 256 images); the MNIST net did not tell the two apart.
var convChunkFloats = 1 << 20

// convMinChunks is the fewest chunks a batch is cut into (when it has that
// many samples), so that the cores share the work.
const convMinChunks = 8

// convMinorSamples is the fewest samples per chunk for which a kernel lays
// its patches out sample-minor (iblas.Im2colT): each move is then a run of
// that many values. Below it (large images, few samples per chunk) the
// patches are laid out sample-major straight from the NCHW rows
// (iblas.Im2col), whose runs are image rows. Measured on the MNIST net
// (chunks of 32): sample-minor with its transposes took 0.2–0.5 ns per
// patch value against 0.5–2 ns sample-major.
var convMinorSamples = 8

// convSlots is the number of partial sums of a parameter gradient: slot s
// sums a fixed range of chunks in order and the slots are added in order,
// so the result depends on the batch alone, not on the number of cores or
// on which core took which chunk (runs resume bit for bit).
const convSlots = 8

// convKernel runs one convolution over a batch: the batch is cut into chunks
// of samples (how many depends on the geometry and the batch size only),
// and each worker takes chunks in turn, lays a chunk's patches out as one
// [C·K·K, ns·Ho·Wo] matrix (im2col) and multiplies it with the filters in
// one GEMM on its own core. Scratch is kept per worker and reused across
// calls.
//
// With ns ≥ convMinorSamples the chunk's columns are sample-minor: the
// chunk's inputs are transposed to [C·H·W, ns] first, the GEMM's output
// [Out, Ho·Wo·ns] is transposed back into the NCHW rows (with the bias), and
// the output gradients are transposed in (with the walker weights) before
// their GEMMs; the input gradient is summed in [C·H·W, ns] and transposed
// out. Otherwise the columns are sample-major and read the NCHW rows as
// they are.
type convKernel[T Float] struct {
	g       convGeom
	workers int
	cols    [][]T // per worker: C·K·K × chunk·pix
	mat     [][]T // per worker: Out × chunk·pix
	xt      [][]T // per worker: C·H·W × chunk (sample-minor only)
	acc     [][]T // per slot: filter and bias gradient, Out·C·K·K + Out
	out     outBuf

	// The fused activation (convOp with act set, see applyConvAct). The
	// forward kernel keeps its pre-activations z (n×Out·Ho·Wo) for the
	// derivatives; a derivative's kernel reads them through src and forms
	// δ = gy ⊙ f'(z) one chunk at a time in dl (per worker).
	act   models.Activation
	slope float64
	z     []T
	src   *convKernel[T]
	dl    [][]T

	// Blocked layouts, between two sample-minor convolutions that cut the
	// batch alike (see blockConvs): the input (inBlk) or the output (outBlk)
	// is not NCHW rows but, per chunk of ns samples at the rows' offset, the
	// [C·H·W, ns] (input) or [Out·Ho·Wo, ns] (output) matrix the kernels
	// work on, so that neither side transposes. Only for a batch of nBlk.
	inBlk, outBlk bool
	nBlk          int
}

func newConvKernel[T Float](g convGeom) *convKernel[T] {
	w := max(1, runtime.GOMAXPROCS(0))
	return &convKernel[T]{g: g, workers: w, cols: make([][]T, w), mat: make([][]T, w), xt: make([][]T, w), dl: make([][]T, w)}
}

// fused reports whether the kernel's forward applies an activation.
func (k *convKernel[T]) fused() bool { return k.act != "" && k.act != models.Identity }

// keepsZ reports whether a fused kernel keeps its pre-activations: all but
// LeakyReLU with a positive slope, whose derivative reads the sign of z off
// a = f(z) (the same but where z·slope underflows to −0).
func (k *convKernel[T]) keepsZ() bool {
	return k.fused() && !(k.act == models.LeakyReLU && k.slope > 0)
}

// pre is what the derivative f' of a fused kernel reads for outputs a: z,
// or a itself (keepsZ false).
func (k *convKernel[T]) pre(a []T) []T {
	if k.keepsZ() {
		return k.z[:len(a)]
	}
	return a
}

// checkBatch refuses a batch of n for a blocked layout set up for another.
func (k *convKernel[T]) checkBatch(n int) error {
	if (k.inBlk || k.outBlk) && n != k.nBlk {
		return fmt.Errorf("train: convolution %v laid out for batches of %d got %d", k.g, k.nBlk, n)
	}
	return nil
}

// blockedLike gives k the blocked layout of the forward kernel f.
func (k *convKernel[T]) blockedLike(f *convKernel[T]) *convKernel[T] {
	k.inBlk, k.outBlk, k.nBlk = f.inBlk, f.outBlk, f.nBlk
	return k
}

// chunking returns the samples per chunk and the number of chunks for a
// batch of n: as many samples as fit convChunkFloats, and at least
// convMinChunks chunks when n allows.
func (k *convKernel[T]) chunking(n int) (ns, chunks int) {
	per := (k.g.ckk() + k.g.Out) * k.g.pix()
	ns = max(1, convChunkFloats/per)
	ns = min(ns, max(1, (n+convMinChunks-1)/convMinChunks))
	chunks = (n + ns - 1) / ns
	return ns, chunks
}

// minor reports whether a batch of n is laid out sample-minor.
func (k *convKernel[T]) minor(n int) bool {
	ns, _ := k.chunking(n)
	return ns >= convMinorSamples
}

// parallel calls f(worker, job) for jobs 0..jobs−1, shared out dynamically
// over at most k.workers goroutines.
func (k *convKernel[T]) parallel(jobs int, f func(w, job int)) {
	var next atomic.Int64
	smc.For(min(k.workers, runtime.GOMAXPROCS(0), jobs), func(lo, hi int) {
		for w := lo; w < hi; w++ {
			for {
				j := int(next.Add(1)) - 1
				if j >= jobs {
					break
				}
				f(w, j)
			}
		}
	})
}

// run calls f(worker, s0, s1) for every chunk [s0, s1) of n samples, the
// chunks shared out dynamically over the workers; the worker's scratch has
// room for ns samples.
func (k *convKernel[T]) run(n int, f func(w, s0, s1 int)) {
	ns, chunks := k.chunking(n)
	k.parallel(chunks, func(w, c int) { f(w, c*ns, min(n, (c+1)*ns)) })
}

// scratch returns worker w's patch, output and (sample-minor) input blocks
// for a batch of n.
func (k *convKernel[T]) scratch(w, n int) (cols, mat, xt []T) {
	ns, _ := k.chunking(n)
	nc, nm, nx := k.g.ckk()*ns*k.g.pix(), k.g.Out*ns*k.g.pix(), 0
	if k.minor(n) {
		nx = k.g.inSize() * ns
	}
	if len(k.cols[w]) < nc {
		k.cols[w] = make([]T, nc)
	}
	if len(k.mat[w]) < nm {
		k.mat[w] = make([]T, nm)
	}
	if len(k.xt[w]) < nx {
		k.xt[w] = make([]T, nx)
	}
	return k.cols[w][:nc], k.mat[w][:nm], k.xt[w][:nx]
}

// patches lays out the patches of samples [s0, s1) of x (n×C·H·W) in cols;
// minor: sample-minor, through xt unless the input is blocked (inBlk), in
// which case the chunk is already [C·H·W, ns].
func (k *convKernel[T]) patches(x, cols, xt []T, s0, s1 int, minor bool) {
	g, in := k.g, k.g.inSize()
	ns := s1 - s0
	if minor {
		if k.inBlk {
			iblas.Im2colT(g.blas(), x[s0*in:s1*in], ns, cols, ns*g.pix())
			return
		}
		iblas.Transpose(x[s0*in:s1*in], ns, in, in, xt, ns, nil, nil, 0)
		iblas.Im2colT(g.blas(), xt, ns, cols, ns*g.pix())
		return
	}
	iblas.Im2col(g.blas(), x[s0*in:s1*in], ns, cols, ns*g.pix())
}

// forward computes y[s] = W ⋆ x[s] + b for the n samples of x (n×C·H·W)
// into y (n×Out·Ho·Wo); w is [Out, C·K·K], b [Out]. A fused kernel keeps
// that in k.z (or nowhere, see keepsZ) and writes y = f(z), chunk by chunk
// while the chunk is in cache (LeakyReLU as the values are written). A
// blocked output (outBlk) is the GEMM's own [Out·Ho·Wo, ns] per chunk, with
// no transpose.
func (k *convKernel[T]) forward(x, w, b, y []T, n int) {
	g := k.g
	pix, out, ckk := g.pix(), g.outSize(), g.ckk()
	minor := k.minor(n)
	a := y
	if k.keepsZ() {
		if len(k.z) < n*out {
			k.z = make([]T, n*out)
		}
		y = k.z[:n*out]
	}
	// LeakyReLU (no z kept, y is a) is applied as the values are written
	leaky := k.fused() && !k.keepsZ() && !k.outBlk
	k.run(n, func(wk, s0, s1 int) {
		if k.fused() && !leaky {
			defer activateRows(k.act, k.slope, y[s0*out:s1*out], nil, nil, a[s0*out:s1*out])
		}
		cols, mat, xt := k.scratch(wk, n)
		ld := (s1 - s0) * pix
		k.patches(x, cols, xt, s0, s1, minor)
		if k.outBlk {
			z := y[s0*out : s1*out]
			gemm(blas.NoTrans, blas.NoTrans, g.Out, ld, ckk, 1, w, ckk, cols, ld, 0, z, ld)
			iblas.AddRows(z, g.Out, ld, b)
			return
		}
		gemm(blas.NoTrans, blas.NoTrans, g.Out, ld, ckk, 1, w, ckk, cols, ld, 0, mat, ld)
		if minor {
			// mat is [Out·pix, ns]: row o·pix + p holds pixel p of channel o
			if leaky {
				iblas.TransposeLeaky(mat[:g.Out*ld], g.Out*pix, s1-s0, s1-s0, y[s0*out:s1*out], out, nil, b, pix, T(k.slope))
				return
			}
			iblas.Transpose(mat[:g.Out*ld], g.Out*pix, s1-s0, s1-s0, y[s0*out:s1*out], out, nil, b, pix)
			return
		}
		slope := T(k.slope)
		for s := s0; s < s1; s++ {
			ys := y[s*out : (s+1)*out]
			for o := 0; o < g.Out; o++ {
				src := mat[o*ld+(s-s0)*pix : o*ld+(s-s0+1)*pix]
				dst := ys[o*pix : (o+1)*pix]
				bo := b[o]
				if !leaky {
					for p, v := range src {
						dst[p] = v + bo
					}
					continue
				}
				for p, v := range src {
					z, f := v+bo, T(1)
					if z < 0 {
						f = slope
					}
					dst[p] = z * f
				}
			}
		}
	})
}

// gatherDelta returns the output gradients of samples [s0, s1) as an
// [Out, ns·pix] matrix in the kernel's column order, each sample's scaled
// by coef[s] when coef is non-nil, laid out in mat or, for a blocked
// output with nothing to do, the chunk of gy itself. For a derivative of a
// fused convolution gy is the gradient of its output a = f(z) and the
// matrix holds gy ⊙ f'(z), formed for the chunk in worker wk's scratch.
func (k *convKernel[T]) gatherDelta(wk int, gy, a, coef, mat []T, s0, s1 int, minor bool) []T {
	g := k.g
	pix, out, ns := g.pix(), g.outSize(), s1-s0
	ld := ns * pix
	mat = mat[:g.Out*ld]
	gy = gy[s0*out : s1*out] // the chunk's rows, from here on indexed from 0
	if coef != nil {
		coef = coef[s0:s1]
	}
	if src := k.src; src != nil {
		d := mat // a blocked chunk is the matrix itself
		if !k.outBlk {
			if len(k.dl[wk]) < ns*out {
				k.dl[wk] = make([]T, ns*out)
			}
			d = k.dl[wk][:ns*out]
		}
		ac := a[s0*out : s1*out]
		activateRows(src.act, src.slope, src.pre(a)[s0*out:s1*out], ac, gy, d)
		if k.outBlk {
			return mat
		}
		gy = d
	}
	if k.outBlk {
		if coef != nil {
			panic("train: per-sample coefficients on a blocked convolution output")
		}
		return gy
	}
	if minor {
		iblas.Transpose(gy, ns, out, out, mat, ns, coef, nil, 0)
		return mat
	}
	for s := 0; s < ns; s++ {
		gs := gy[s*out : (s+1)*out]
		for o := 0; o < g.Out; o++ {
			src := gs[o*pix : (o+1)*pix]
			dst := mat[o*ld+s*pix : o*ld+(s+1)*pix]
			if coef == nil {
				copy(dst, src)
				continue
			}
			c := coef[s]
			for p, v := range src {
				dst[p] = c * v
			}
		}
	}
	return mat
}

// inputGrad computes dx = ∂/∂x of Σ gy ⊙ (W ⋆ x): per chunk one GEMM
// Wᵀ·δ [C·K·K, ns·pix] and col2im. For a fused convolution (k.src set) gy
// is the gradient of its output a = f(z) and dx = ∂/∂x of Σ gy ⊙ a. A
// blocked input (inBlk) gets dx as [C·H·W, ns] per chunk, with no
// transpose.
func (k *convKernel[T]) inputGrad(w, gy, a, dx []T, n int) {
	g := k.g
	pix, in, ckk := g.pix(), g.inSize(), g.ckk()
	minor := k.minor(n)
	k.run(n, func(wk, s0, s1 int) {
		cols, mat, xt := k.scratch(wk, n)
		ns := s1 - s0
		ld := ns * pix
		mat = k.gatherDelta(wk, gy, a, nil, mat, s0, s1, minor)
		gemm(blas.Trans, blas.NoTrans, ckk, ld, g.Out, 1, w, ckk, mat, ld, 0, cols, ld)
		if minor {
			if k.inBlk {
				iblas.Col2imT(g.blas(), cols, ld, ns, dx[s0*in:s1*in])
				return
			}
			iblas.Col2imT(g.blas(), cols, ld, ns, xt)
			iblas.Transpose(xt, in, ns, ns, dx[s0*in:s1*in], in, nil, nil, 0)
			return
		}
		iblas.Col2im(g.blas(), cols, ld, ns, dx[s0*in:s1*in])
	})
}

// paramGrad computes the filter and bias gradients of Σ_s coef_s gy_s ⊙
// (W ⋆ x_s + b) (coef nil: all 1): dW = Σ_chunks δ·colsᵀ, db = Σ δ. It adds
// them to dw (Out×C·K·K) and db (Out) when add is true, and overwrites them
// otherwise; either may be nil.
func (k *convKernel[T]) paramGrad(x, gy, coef []T, n int, dw, db []T, add bool) {
	g := k.g
	pix, ckk := g.pix(), g.ckk()
	nw, nb := g.Out*ckk, g.Out
	ns, chunks := k.chunking(n)
	minor := k.minor(n)
	slots := min(convSlots, chunks)
	for len(k.acc) < slots {
		k.acc = append(k.acc, nil)
	}
	k.parallel(slots, func(wk, slot int) {
		if len(k.acc[slot]) < nw+nb {
			k.acc[slot] = make([]T, nw+nb)
		}
		acc := k.acc[slot][:nw+nb]
		clear(acc)
		cols, mat, xt := k.scratch(wk, n)
		for c := slot * chunks / slots; c < (slot+1)*chunks/slots; c++ {
			s0, s1 := c*ns, min(n, (c+1)*ns)
			ld := (s1 - s0) * pix
			mat := k.gatherDelta(wk, gy, nil, coef, mat, s0, s1, minor)
			if dw != nil {
				k.patches(x, cols, xt, s0, s1, minor)
				gemm(blas.NoTrans, blas.Trans, g.Out, ckk, ld, 1, mat, ld, cols, ld, 1, acc, ckk)
			}
			if db != nil {
				for o := 0; o < g.Out; o++ {
					var s T
					for _, v := range mat[o*ld : (o+1)*ld] {
						s += v
					}
					acc[nw+o] += s
				}
			}
		}
	})
	if !add {
		if dw != nil {
			clear(dw)
		}
		if db != nil {
			clear(db)
		}
	}
	for _, acc := range k.acc[:slots] {
		if dw != nil {
			for i, v := range acc[:nw] {
				dw[i] += v
			}
		}
		if db != nil {
			for i, v := range acc[nw : nw+nb] {
				db[i] += v
			}
		}
	}
}

// The gorgonia ops. Each keeps its output tensor and returns it again on
// every run (gorgonia's tape machine drops the values of its registers on
// Reset, so a preallocated output would be allocated anew each time).
// Inputs and outputs are matrices: x [n, C·H·W], the
// filters [Out, C·K·K] (the [Out, C, K, K] tensor of the spec, same
// memory), the bias a vector [Out], y [n, Out·Ho·Wo].

// convOp is y = W ⋆ x + b, or a = f(W ⋆ x + b) when its kernel is fused
// (applyConvAct); its derivatives are convInputGradOp, convParamGradOp
// (filters) and convParamGradOp with bias set (fused: see fusedSymDiff).
type convOp[T Float] struct{ k *convKernel[T] }

// convInputGradOp is dx from (W, gy), or from (W, gy, a) for a fused
// convolution (its kernel's src set).
type convInputGradOp[T Float] struct{ k *convKernel[T] }

// convParamGradOp is dW (bias false) or db (bias true) from (x, gy).
type convParamGradOp[T Float] struct {
	k    *convKernel[T]
	bias bool
}

var (
	_ G.SDOp            = convOp[float32]{}
	_ G.UsePreallocDoer = convOp[float32]{}
	_ G.UsePreallocDoer = convInputGradOp[float32]{}
	_ G.UsePreallocDoer = convParamGradOp[float32]{}
)

// applyConv adds y = W ⋆ x + b for x [n, C·H·W], w [Out, C·K·K], b [Out].
func applyConv[T Float](g convGeom, x, w, b *G.Node) (*G.Node, error) {
	return G.ApplyOp(convOp[T]{newConvKernel[T](g)}, x, w, b)
}

// applyConvAct adds a = f(W ⋆ x + b), the convolution and its activation
// (slope: LeakyReLU's) in one op: each chunk of samples is activated as soon
// as its convolution is written, and the input gradient forms gy ⊙ f'(z)
// chunk by chunk before its GEMM, so neither pass runs over the whole batch
// on its own. The values are those of applyConv followed by
// applyActivationSlope. The pre-activations z are not a node of the graph:
// graphs that tap them (layerTaps) use the two ops.
//
// inBlk and outBlk lay the input and output out blocked for batches of n
// (see convKernel): only between two fused convolutions that blockConvs
// pairs, so that nothing else reads a blocked matrix.
func applyConvAct[T Float](g convGeom, act models.Activation, slope float64, x, w, b *G.Node, inBlk, outBlk bool, n int) (*G.Node, error) {
	k := newConvKernel[T](g)
	k.act, k.slope = act, slope
	if !k.fused() {
		if inBlk || outBlk {
			return nil, fmt.Errorf("train: convolution %v without activation cannot be blocked", g)
		}
		return applyConv[T](g, x, w, b)
	}
	k.inBlk, k.outBlk, k.nBlk = inBlk, outBlk, n
	return G.ApplyOp(convOp[T]{k}, x, w, b)
}

func matType() G.TensorType { return G.TensorType{Dims: 2, Of: hm.TypeVariable('a')} }
func vecType() G.TensorType { return G.TensorType{Dims: 1, Of: hm.TypeVariable('a')} }

// inShape is input i's shape as the project's ops (convolution, linear)
// receive it from gorgonia's shape inference.
func inShape(in []G.DimSizer, i int) (tensor.Shape, error) {
	s, ok := in[i].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("train: op input %d has shape %T", i, in[i])
	}
	return s, nil
}

func (op convOp[T]) Arity() int { return 3 }
func (op convOp[T]) Type() hm.Type {
	return hm.NewFnType(matType(), matType(), vecType(), matType())
}
func (op convOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := inShape(in, 0)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], op.k.g.outSize()}, nil
}
func (op convOp[T]) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op convOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	x, w, b := d[0], d[1], d[2]
	g := op.k.g
	n := len(x) / g.inSize()
	if len(x) != n*g.inSize() || len(w) != g.Out*g.ckk() || len(b) != g.Out {
		return nil, fmt.Errorf("train: %s got inputs of %d, %d, %d values", op, len(x), len(w), len(b))
	}
	if err := op.k.checkBatch(n); err != nil {
		return nil, err
	}
	out, y := outDense[T](&op.k.out, pre, n, g.outSize())
	op.k.forward(x, w, b, y, n)
	return out, nil
}
func (op convOp[T]) ReturnsPtr() bool      { return false }
func (op convOp[T]) CallsExtern() bool     { return false }
func (op convOp[T]) OverwritesInput() int  { return -1 }
func (op convOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op convOp[T]) String() string {
	if op.k.fused() {
		return actName("conv2d:"+op.k.g.String()+"+", op.k.act, op.k.slope)
	}
	return "conv2d:" + op.k.g.String()
}
func (op convOp[T]) DiffWRT(int) []bool { return []bool{true, true, true} }
func (op convOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	// each derivative op has its own kernel (scratch), so the three may run
	// in any order
	g := op.k.g
	if op.k.fused() {
		return op.fusedSymDiff(inputs, output, grad)
	}
	dx, err := G.ApplyOp(convInputGradOp[T]{newConvKernel[T](g)}, inputs[1], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(convParamGradOp[T]{k: newConvKernel[T](g)}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(convParamGradOp[T]{k: newConvKernel[T](g), bias: true}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

func (op convInputGradOp[T]) Arity() int {
	if op.k.src != nil {
		return 3
	}
	return 2
}
func (op convInputGradOp[T]) Type() hm.Type {
	if op.k.src != nil {
		return hm.NewFnType(matType(), matType(), matType(), matType())
	}
	return hm.NewFnType(matType(), matType(), matType())
}
func (op convInputGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := inShape(in, 1)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], op.k.g.inSize()}, nil
}
func (op convInputGradOp[T]) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op convInputGradOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	w, gy := d[0], d[1]
	g := op.k.g
	n := len(gy) / g.outSize()
	if len(gy) != n*g.outSize() || len(w) != g.Out*g.ckk() {
		return nil, fmt.Errorf("train: %s got inputs of %d, %d values", op, len(w), len(gy))
	}
	var a []T
	if op.k.src != nil {
		if a = d[2]; len(a) != len(gy) || (op.k.src.keepsZ() && len(op.k.src.z) < len(gy)) {
			return nil, fmt.Errorf("train: %s got %d outputs and %d pre-activations for %d gradients", op, len(a), len(op.k.src.z), len(gy))
		}
	}
	if err := op.k.checkBatch(n); err != nil {
		return nil, err
	}
	out, dx := outDense[T](&op.k.out, pre, n, g.inSize())
	op.k.inputGrad(w, gy, a, dx, n)
	return out, nil
}
func (op convInputGradOp[T]) ReturnsPtr() bool      { return false }
func (op convInputGradOp[T]) CallsExtern() bool     { return false }
func (op convInputGradOp[T]) OverwritesInput() int  { return -1 }
func (op convInputGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convInputGradOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op convInputGradOp[T]) String() string {
	if src := op.k.src; src != nil {
		return actName("conv2d_dx:"+op.k.g.String()+"+", src.act, src.slope)
	}
	return "conv2d_dx:" + op.k.g.String()
}
func (op convInputGradOp[T]) DiffWRT(n int) []bool { return make([]bool, n) }
func (op convInputGradOp[T]) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of convolutions are not implemented")
}

func (op convParamGradOp[T]) Arity() int { return 2 }
func (op convParamGradOp[T]) Type() hm.Type {
	if op.bias {
		return hm.NewFnType(matType(), matType(), vecType())
	}
	return hm.NewFnType(matType(), matType(), matType())
}
func (op convParamGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if op.bias {
		return tensor.Shape{op.k.g.Out}, nil
	}
	return tensor.Shape{op.k.g.Out, op.k.g.ckk()}, nil
}
func (op convParamGradOp[T]) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op convParamGradOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	x, gy := d[0], d[1]
	g := op.k.g
	n := len(x) / g.inSize()
	if len(x) != n*g.inSize() || len(gy) != n*g.outSize() {
		return nil, fmt.Errorf("train: %s got inputs of %d, %d values", op, len(x), len(gy))
	}
	if err := op.k.checkBatch(n); err != nil {
		return nil, err
	}
	if op.bias {
		out, db := outDenseShape[T](&op.k.out, pre, tensor.Shape{g.Out})
		op.k.paramGrad(x, gy, nil, n, nil, db, false)
		return out, nil
	}
	out, dw := outDenseShape[T](&op.k.out, pre, tensor.Shape{g.Out, g.ckk()})
	op.k.paramGrad(x, gy, nil, n, dw, nil, false)
	return out, nil
}
func (op convParamGradOp[T]) ReturnsPtr() bool      { return false }
func (op convParamGradOp[T]) CallsExtern() bool     { return false }
func (op convParamGradOp[T]) OverwritesInput() int  { return -1 }
func (op convParamGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convParamGradOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op convParamGradOp[T]) String() string {
	if op.bias {
		return "conv2d_db:" + op.k.g.String()
	}
	return "conv2d_dw:" + op.k.g.String()
}
func (op convParamGradOp[T]) DiffWRT(n int) []bool { return make([]bool, n) }
func (op convParamGradOp[T]) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of convolutions are not implemented")
}

// denseData returns the backing slices of the op's inputs, which must be
// dense tensors of element type T.
func denseData[T Float](op string, in ...G.Value) ([][]T, error) {
	out := make([][]T, len(in))
	for i, v := range in {
		t, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("train: %s expects tensors, got %T for input %d", op, v, i)
		}
		d, ok := t.Data().([]T)
		if !ok {
			return nil, fmt.Errorf("train: %s expects %v inputs, got %v for input %d", op, dtypeOf[T](), t.Dtype(), i)
		}
		out[i] = d
	}
	return out, nil
}

// outBuf is an op's output tensor, kept across runs.
type outBuf struct{ t *tensor.Dense }

// outDense returns pre when it is an [r, c] tensor of T, else the one kept
// in buf (made when missing or of another shape).
func outDense[T Float](buf *outBuf, pre G.Value, r, c int) (*tensor.Dense, []T) {
	return outDenseShape[T](buf, pre, tensor.Shape{r, c})
}

// get is the kept tensor, or nil (also for a nil buf).
func (b *outBuf) get() G.Value {
	if b == nil || b.t == nil {
		return nil
	}
	return b.t
}

// keep keeps v when b is non-nil.
func (b *outBuf) keep(v G.Value) {
	if t, ok := v.(*tensor.Dense); ok && b != nil {
		b.t = t
	}
}

func outDenseShape[T Float](buf *outBuf, pre G.Value, s tensor.Shape) (*tensor.Dense, []T) {
	if t, ok := pre.(*tensor.Dense); ok && t.Dtype() == dtypeOf[T]() && t.Shape().Eq(s) {
		return t, t.Data().([]T)
	}
	if t := buf.t; t != nil && t.Dtype() == dtypeOf[T]() && t.Shape().Eq(s) {
		return t, t.Data().([]T)
	}
	buf.t = tensor.New(tensor.Of(dtypeOf[T]()), tensor.WithShape(s...))
	return buf.t, buf.t.Data().([]T)
}

// fusedSymDiff is SymDiff of a fused convolution a = f(W ⋆ x + b): dx from
// (W, a, gy) with f' applied chunk by chunk, and the filter and bias
// gradients from δ = gy ⊙ f'(z) (convActDeltaOp), formed once for both.
func (op convOp[T]) fusedSymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	g := op.k.g
	kx := newConvKernel[T](g).blockedLike(op.k)
	kx.src = op.k
	dx, err := G.ApplyOp(convInputGradOp[T]{kx}, inputs[1], grad, output)
	if err != nil {
		return nil, err
	}
	delta, err := G.ApplyOp(convActDeltaOp[T]{src: op.k, out: &outBuf{}}, output, grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(convParamGradOp[T]{k: newConvKernel[T](g).blockedLike(op.k)}, inputs[0], delta)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(convParamGradOp[T]{k: newConvKernel[T](g).blockedLike(op.k), bias: true}, inputs[0], delta)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// convActDeltaOp is δ = gy ⊙ f'(z) from (a = f(z), gy) of a fused
// convolution, z read from its forward kernel src: the signal its filter
// and bias gradients take (actGradOp's values).
type convActDeltaOp[T Float] struct {
	src *convKernel[T]
	out *outBuf
}

var _ G.Op = convActDeltaOp[float32]{}

func (op convActDeltaOp[T]) Arity() int { return 2 }
func (op convActDeltaOp[T]) Type() hm.Type {
	return hm.NewFnType(matType(), matType(), matType())
}
func (op convActDeltaOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := inShape(in, 0)
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}
func (op convActDeltaOp[T]) Do(in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	a, gy := d[0], d[1]
	if len(gy) != len(a) || (op.src.keepsZ() && len(op.src.z) < len(a)) {
		return nil, fmt.Errorf("train: %s got %d outputs, %d gradients and %d pre-activations", op, len(a), len(gy), len(op.src.z))
	}
	z := op.src.pre(a)
	n := len(a) / op.src.g.outSize()
	t, dl := outDense[T](op.out, nil, n, op.src.g.outSize())
	// the shares of actGradOp, so that the values agree bit for bit
	const chunk = 16384
	smc.For((len(a)+chunk-1)/chunk, func(lo, hi int) {
		i, j := lo*chunk, min(hi*chunk, len(a))
		activateRows(op.src.act, op.src.slope, z[i:j], a[i:j], gy[i:j], dl[i:j])
	})
	return t, nil
}
func (op convActDeltaOp[T]) ReturnsPtr() bool      { return false }
func (op convActDeltaOp[T]) CallsExtern() bool     { return false }
func (op convActDeltaOp[T]) OverwritesInput() int  { return -1 }
func (op convActDeltaOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convActDeltaOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op convActDeltaOp[T]) String() string {
	return actName("conv2d_delta:"+op.src.g.String()+"+", op.src.act, op.src.slope)
}
func (op convActDeltaOp[T]) DiffWRT(n int) []bool { return make([]bool, n) }
func (op convActDeltaOp[T]) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of convolutions are not implemented")
}
