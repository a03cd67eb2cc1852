package train

import (
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	iblas "github.com/jarzyn/jarzyn/internal/blas"
)

// linearOp is one linear layer z = x·W + b of the MLP and of the conv
// family's head (docs/METHOD.md §5) for a batch x [n, in], W [in, out] and b
// [1, out] (or [out]), in one op: gorgonia builds it from a matrix product,
// a repeat of b over the batch and an add, allocating the product and the
// repeated bias on every run. Here the batch is cut into chunks of rows;
// each chunk's rows are set to b and the chunk's GEMM adds x·W to them
// (β = 1) on the serial BLAS, the chunks shared out over the cores. The
// output is kept across runs (outBuf).
//
// Its derivatives are linearInputGradOp (gy·Wᵀ), linearWeightGradOp
// (xᵀ·gy) and linearBiasGradOp (Σ_i gy_i); graphs that need only some of
// them drop the others with SubgraphRoots.
type linearOp[T Float] struct{ out *outBuf }

// linearInputGradOp is dx = gy·Wᵀ from (gy [n, out], W [in, out]), by
// chunks of rows as linearOp.
type linearInputGradOp[T Float] struct{ out *outBuf }

// linearWeightGradOp is dW = xᵀ·gy from (x [n, in], gy [n, out]): one GEMM
// summing over the batch on gorgonia's BLAS (which splits C, not the sum, so
// the result does not depend on the number of cores).
type linearWeightGradOp[T Float] struct{ out *outBuf }

// linearBiasGradOp is db = Σ_i gy_i from gy [n, out], shaped like b.
type linearBiasGradOp[T Float] struct {
	shape tensor.Shape // b's
	out   *outBuf
}

var (
	_ G.SDOp            = linearOp[float32]{}
	_ G.UsePreallocDoer = linearOp[float32]{}
	_ G.UsePreallocDoer = linearInputGradOp[float32]{}
	_ G.UsePreallocDoer = linearWeightGradOp[float32]{}
	_ G.UsePreallocDoer = linearBiasGradOp[float32]{}
)

// applyLinear adds z = x·W + b for x [n, in], w [in, out], b [1, out] or
// [out].
func applyLinear[T Float](x, w, b *G.Node) (*G.Node, error) {
	return G.ApplyOp(linearOp[T]{&outBuf{}}, x, w, b)
}

// linearChunkFlops is about the least work of one chunk of rows
// (multiply-adds), linearMinRows its fewest rows: smaller products run in one
// piece, larger ones in up to linearMaxChunks chunks, which the cores take in
// turn. Each chunk's GEMM packs all of W again, which for a data batch of 256
// with W 784×256 made chunks of 32 rows cost about 1.3× the CPU time of
// chunks of 128 (single core, same session).
var (
	linearChunkFlops = 1 << 20
	linearMinRows    = 128
)

const linearMaxChunks = 8

// linearChunks returns the rows per chunk and the number of chunks for a
// product of n rows with an [in, out] matrix. It depends on the sizes only,
// so every row is computed the same way whatever the number of cores.
func linearChunks(n, in, out int) (rows, chunks int) {
	work := n * (in + 1) * out
	chunks = min(linearMaxChunks, max(1, work/linearChunkFlops), max(1, n/linearMinRows))
	rows = (n + chunks - 1) / chunks
	return rows, (n + rows - 1) / rows
}

// forChunks calls f(c) for c = 0..chunks−1, shared out dynamically over at
// most GOMAXPROCS goroutines (the caller's included).
func forChunks(chunks int, f func(c int)) {
	w := min(runtime.GOMAXPROCS(0), chunks)
	if w <= 1 {
		for c := 0; c < chunks; c++ {
			f(c)
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for c := int(next.Add(1)) - 1; c < chunks; c = int(next.Add(1)) - 1 {
			f(c)
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < w; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); work() }()
	}
	work()
	wg.Wait()
}

// linearForward writes z = x·W + b (x n×in, W in×out, b out, z n×out).
func linearForward[T Float](x, w, b, z []T, n, in, out int) {
	rows, chunks := linearChunks(n, in, out)
	forChunks(chunks, func(c int) {
		r0, r1 := c*rows, min(n, (c+1)*rows)
		zc := z[r0*out : r1*out]
		for i := 0; i < r1-r0; i++ {
			copy(zc[i*out:(i+1)*out], b)
		}
		gemm(blas.NoTrans, blas.NoTrans, r1-r0, out, in, 1, x[r0*in:r1*in], in, w, out, 1, zc, out)
	})
}

// linearInputGrad writes dx = gy·Wᵀ (gy n×out, W in×out, dx n×in).
func linearInputGrad[T Float](gy, w, dx []T, n, in, out int) {
	rows, chunks := linearChunks(n, in, out)
	forChunks(chunks, func(c int) {
		r0, r1 := c*rows, min(n, (c+1)*rows)
		gemm(blas.NoTrans, blas.Trans, r1-r0, in, out, 1, gy[r0*out:r1*out], out, w, out, 0, dx[r0*in:r1*in], in)
	})
}

// linearWeightGrad writes dW = xᵀ·gy (x n×in, gy n×out, dW in×out).
func linearWeightGrad[T Float](x, gy, dw []T, n, in, out int) {
	switch x := any(x).(type) {
	case []float32:
		G.WhichBLAS().Sgemm(blas.Trans, blas.NoTrans, in, out, n, 1, x, in, any(gy).([]float32), out, 0, any(dw).([]float32), out)
	case []float64:
		G.WhichBLAS().Dgemm(blas.Trans, blas.NoTrans, in, out, n, 1, x, in, any(gy).([]float64), out, 0, any(dw).([]float64), out)
	}
}

// linearBiasGrad writes db = Σ_i gy_i (gy n×out), summing rows in order.
func linearBiasGrad[T Float](gy, db []T, n, out int) {
	clear(db)
	for i := 0; i < n; i++ {
		for j, v := range gy[i*out : (i+1)*out] {
			db[j] += v
		}
	}
}

// linearOut returns the op's output tensor of shape s: pre when it fits, or
// the kept one (given shape s again when a reshape in place changed it, as
// the energy's final reshape of the last layer does), or a new one.
func linearOut[T Float](buf *outBuf, pre G.Value, s tensor.Shape) (*tensor.Dense, []T) {
	if t, ok := pre.(*tensor.Dense); ok && t.Dtype() == dtypeOf[T]() && t.Shape().Eq(s) {
		return t, t.Data().([]T)
	}
	if t := buf.t; t != nil && t.Dtype() == dtypeOf[T]() && t.Size() == s.TotalSize() {
		if t.Shape().Eq(s) || t.Reshape(s...) == nil {
			return t, t.Data().([]T)
		}
	}
	buf.t = tensor.New(tensor.Of(dtypeOf[T]()), tensor.WithShape(s...))
	return buf.t, buf.t.Data().([]T)
}

// linearDims checks the operands of a linear layer: x [n, in] (or gy
// [n, out] with byOut), w [in, out], and returns n, in, out.
func linearDims(op fmt.Stringer, a, w tensor.Shape, byOut bool) (n, in, out int, err error) {
	if len(a) != 2 || len(w) != 2 || !byOut && a[1] != w[0] || byOut && a[1] != w[1] {
		return 0, 0, 0, fmt.Errorf("train: %s got shapes %v and %v", op, a, w)
	}
	return a[0], w[0], w[1], nil
}

func (op linearOp[T]) Arity() int { return 3 }
func (op linearOp[T]) Type() hm.Type {
	return hm.NewFnType(matType(), matType(), hm.TypeVariable('b'), matType())
}
func (op linearOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, err := inShape(in, 0)
	if err != nil {
		return nil, err
	}
	w, err := inShape(in, 1)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := linearDims(op, x, w, false); err != nil {
		return nil, err
	}
	return tensor.Shape{x[0], w[1]}, nil
}
func (op linearOp[T]) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op linearOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	n, nin, nout, err := linearDims(op, in[0].Shape(), in[1].Shape(), false)
	if err != nil {
		return nil, err
	}
	if len(d[2]) != nout {
		return nil, fmt.Errorf("train: %s got a bias of %d values for %d outputs", op, len(d[2]), nout)
	}
	t, z := linearOut[T](op.out, pre, tensor.Shape{n, nout})
	linearForward(d[0], d[1], d[2], z, n, nin, nout)
	return t, nil
}
func (op linearOp[T]) ReturnsPtr() bool      { return false }
func (op linearOp[T]) CallsExtern() bool     { return false }
func (op linearOp[T]) OverwritesInput() int  { return -1 }
func (op linearOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op linearOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op linearOp[T]) String() string        { return "linear" }
func (op linearOp[T]) DiffWRT(int) []bool    { return []bool{true, true, true} }
func (op linearOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(linearInputGradOp[T]{&outBuf{}}, grad, inputs[1])
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(linearWeightGradOp[T]{&outBuf{}}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(linearBiasGradOp[T]{shape: inputs[2].Shape().Clone(), out: &outBuf{}}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

func (op linearInputGradOp[T]) Arity() int { return 2 }
func (op linearInputGradOp[T]) Type() hm.Type {
	return hm.NewFnType(matType(), matType(), matType())
}
func (op linearInputGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	gy, err := inShape(in, 0)
	if err != nil {
		return nil, err
	}
	w, err := inShape(in, 1)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := linearDims(op, gy, w, true); err != nil {
		return nil, err
	}
	return tensor.Shape{gy[0], w[0]}, nil
}
func (op linearInputGradOp[T]) Do(in ...G.Value) (G.Value, error) {
	return op.UsePreallocDo(nil, in...)
}
func (op linearInputGradOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	n, nin, nout, err := linearDims(op, in[0].Shape(), in[1].Shape(), true)
	if err != nil {
		return nil, err
	}
	t, dx := linearOut[T](op.out, pre, tensor.Shape{n, nin})
	linearInputGrad(d[0], d[1], dx, n, nin, nout)
	return t, nil
}
func (op linearInputGradOp[T]) ReturnsPtr() bool      { return false }
func (op linearInputGradOp[T]) CallsExtern() bool     { return false }
func (op linearInputGradOp[T]) OverwritesInput() int  { return -1 }
func (op linearInputGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op linearInputGradOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op linearInputGradOp[T]) String() string        { return "linear_dx" }
func (op linearInputGradOp[T]) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op linearInputGradOp[T]) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of linear layers are not implemented")
}

func (op linearWeightGradOp[T]) Arity() int { return 2 }
func (op linearWeightGradOp[T]) Type() hm.Type {
	return hm.NewFnType(matType(), matType(), matType())
}
func (op linearWeightGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, err := inShape(in, 0)
	if err != nil {
		return nil, err
	}
	gy, err := inShape(in, 1)
	if err != nil {
		return nil, err
	}
	if len(x) != 2 || len(gy) != 2 || x[0] != gy[0] {
		return nil, fmt.Errorf("train: %s got shapes %v and %v", op, x, gy)
	}
	return tensor.Shape{x[1], gy[1]}, nil
}
func (op linearWeightGradOp[T]) Do(in ...G.Value) (G.Value, error) {
	return op.UsePreallocDo(nil, in...)
}
func (op linearWeightGradOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	x, gy := in[0].Shape(), in[1].Shape()
	if len(x) != 2 || len(gy) != 2 || x[0] != gy[0] {
		return nil, fmt.Errorf("train: %s got shapes %v and %v", op, x, gy)
	}
	t, dw := linearOut[T](op.out, pre, tensor.Shape{x[1], gy[1]})
	linearWeightGrad(d[0], d[1], dw, x[0], x[1], gy[1])
	return t, nil
}
func (op linearWeightGradOp[T]) ReturnsPtr() bool      { return false }
func (op linearWeightGradOp[T]) CallsExtern() bool     { return false }
func (op linearWeightGradOp[T]) OverwritesInput() int  { return -1 }
func (op linearWeightGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op linearWeightGradOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op linearWeightGradOp[T]) String() string        { return "linear_dw" }
func (op linearWeightGradOp[T]) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op linearWeightGradOp[T]) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of linear layers are not implemented")
}

func (op linearBiasGradOp[T]) Arity() int { return 1 }
func (op linearBiasGradOp[T]) Type() hm.Type {
	if len(op.shape) == 1 {
		return hm.NewFnType(matType(), vecType())
	}
	return hm.NewFnType(matType(), matType())
}
func (op linearBiasGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op linearBiasGradOp[T]) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op linearBiasGradOp[T]) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	d, err := denseData[T](op.String(), in...)
	if err != nil {
		return nil, err
	}
	gy := in[0].Shape()
	if len(gy) != 2 || gy[1] != op.shape.TotalSize() {
		return nil, fmt.Errorf("train: %s got shape %v for a bias of shape %v", op, gy, op.shape)
	}
	t, db := linearOut[T](op.out, pre, op.shape)
	linearBiasGrad(d[0], db, gy[0], gy[1])
	return t, nil
}
func (op linearBiasGradOp[T]) ReturnsPtr() bool      { return false }
func (op linearBiasGradOp[T]) CallsExtern() bool     { return false }
func (op linearBiasGradOp[T]) OverwritesInput() int  { return -1 }
func (op linearBiasGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op linearBiasGradOp[T]) Hashcode() uint32      { return hashOf(op.String()) }
func (op linearBiasGradOp[T]) String() string        { return fmt.Sprintf("linear_db%v", op.shape) }
func (op linearBiasGradOp[T]) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op linearBiasGradOp[T]) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of linear layers are not implemented")
}

// linearWeightedParamGrad adds Σ_i c_i ∂U_i/∂(W, b) of one linear layer to
// dw (in×out) and db (out) from the layer's input a (n×in) and backprop
// signal δ = ∂U/∂z (n×out) of the walkers: s = c ⊙ δ into scratch
// (n×out), db += Σ_i s_i, dw += aᵀ·s. The scaling and the sums run over
// blocks of columns on the cores, each column summed over the rows in order,
// so the result does not depend on the number of cores.
func linearWeightedParamGrad[T Float](a, delta []T, c []float64, scratch []T, n, in, out int, dw, db []T) {
	s := scratch[:n*out]
	blocks := 1
	if n*out >= 1<<15 {
		blocks = min(runtime.GOMAXPROCS(0), (out+15)/16)
	}
	forChunks(blocks, func(k int) {
		j0, j1 := k*out/blocks, (k+1)*out/blocks
		iblas.ScaleRowsSum(c, delta[j0:], n, j1-j0, out, s[j0:], db[j0:j1])
	})
	gemmTN(in, out, n, a, s, dw)
}
