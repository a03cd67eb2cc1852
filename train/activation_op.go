package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	iblas "github.com/jarzyn/jarzyn/internal/blas"
	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// actOp is a fused elementwise activation for gorgonia graphs: y = f(x) with
// f one of the MLP activations. gorgonia builds SiLU from three ops and
// evaluates sigmoid one float64 math.Exp at a time; this op does one pass,
// uses a float32 exp for float32 graphs and splits large tensors across cores.
// Its gradient is actGradOp. slope is LeakyReLU's (conv family only).
type actOp struct {
	act   models.Activation
	slope float64
	// out, when non-nil, keeps the output across runs (see convOp)
	out *outBuf
}

// actGradOp computes gradY ⊙ f'(x) from (x, y = f(x), gradY) in one pass,
// reusing y so that SiLU and tanh need no exponential in the backward pass.
type actGradOp struct {
	act   models.Activation
	slope float64
	out   *outBuf
}

var (
	_ G.SDOp            = actOp{}
	_ G.UsePreallocDoer = actOp{}
	_ G.SDOp            = actGradOp{}
	_ G.UsePreallocDoer = actGradOp{}
)

// applyActivation adds f(x) with its output kept across runs; a CUDA build,
// which copies the activations' inputs and outputs between host and device
// around this op, keeps gorgonia's own output handling.
func applyActivation(act models.Activation, x *G.Node) (*G.Node, error) {
	op := actOp{act: act}
	if !CUDAEnabled {
		op.out = &outBuf{}
	}
	return G.ApplyOp(op, x)
}

// applyActivationSlope is applyActivation with LeakyReLU's slope (resolved:
// models.LeakySlopeOf); Identity adds no node.
func applyActivationSlope(act models.Activation, slope float64, x *G.Node) (*G.Node, error) {
	if act == models.Identity {
		return x, nil
	}
	return G.ApplyOp(actOp{act: act, slope: slope, out: &outBuf{}}, x)
}

func (op actOp) Arity() int { return 1 }
func (op actOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}
func (op actOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return sameShape(in) }
func (op actOp) Do(in ...G.Value) (G.Value, error) {
	v, err := applyElementwise(op.act, op.slope, false, op.out.get(), in...)
	op.out.keep(v)
	return v, err
}
func (op actOp) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	return applyElementwise(op.act, op.slope, false, pre, in...)
}
func (op actOp) ReturnsPtr() bool      { return false }
func (op actOp) CallsExtern() bool     { return false }
func (op actOp) OverwritesInput() int  { return -1 }
func (op actOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op actOp) Hashcode() uint32      { return hashOf(op.String()) }
func (op actOp) String() string        { return actName("act:", op.act, op.slope) }
func (op actOp) DiffWRT(int) []bool    { return []bool{true} }
func (op actOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	gop := actGradOp{act: op.act, slope: op.slope}
	if op.out != nil {
		gop.out = &outBuf{}
	}
	g, err := G.ApplyOp(gop, inputs[0], output, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

func (op actGradOp) Arity() int { return 3 }
func (op actGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a, a)
}
func (op actGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return sameShape(in) }
func (op actGradOp) Do(in ...G.Value) (G.Value, error) {
	v, err := applyElementwise(op.act, op.slope, true, op.out.get(), in...)
	op.out.keep(v)
	return v, err
}
func (op actGradOp) UsePreallocDo(pre G.Value, in ...G.Value) (G.Value, error) {
	return applyElementwise(op.act, op.slope, true, pre, in...)
}
func (op actGradOp) ReturnsPtr() bool      { return false }
func (op actGradOp) CallsExtern() bool     { return false }
func (op actGradOp) OverwritesInput() int  { return -1 }
func (op actGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op actGradOp) Hashcode() uint32      { return hashOf(op.String()) }
func (op actGradOp) String() string        { return actName("actgrad:", op.act, op.slope) }
func (op actGradOp) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op actGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("train: second derivatives of activations are not implemented")
}

func actName(prefix string, act models.Activation, slope float64) string {
	if act == models.LeakyReLU {
		return fmt.Sprintf("%s%s(%v)", prefix, act, slope)
	}
	return prefix + string(act)
}

func hashOf(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func sameShape(in []G.DimSizer) (tensor.Shape, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("train: activation needs an input")
	}
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("train: activation input shape is %T", in[0])
	}
	return s.Clone(), nil
}

// applyElementwise computes f(x) (grad false) or gradY·f'(x) (grad true) into
// pre, or a new tensor when pre is nil.
func applyElementwise(act models.Activation, slope float64, grad bool, pre G.Value, in ...G.Value) (G.Value, error) {
	x, ok := in[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("train: activation expects a tensor, got %T", in[0])
	}
	var y, gy *tensor.Dense
	if grad {
		var ok2 bool
		y, ok = in[1].(*tensor.Dense)
		gy, ok2 = in[2].(*tensor.Dense)
		if !ok || !ok2 {
			return nil, fmt.Errorf("train: activation gradient expects tensors, got %T, %T", in[1], in[2])
		}
	}
	out, _ := pre.(*tensor.Dense)
	if out == nil || out.Dtype() != x.Dtype() || out.Size() != x.Size() {
		out = tensor.New(tensor.Of(x.Dtype()), tensor.WithShape(x.Shape().Clone()...))
	}
	if act == models.LeakyReLU {
		switch xs := x.Data().(type) {
		case []float32:
			leaky(xs, gradData[float32](gy), float32(slope), out.Data().([]float32))
		case []float64:
			leaky(xs, gradData[float64](gy), slope, out.Data().([]float64))
		default:
			return nil, fmt.Errorf("train: activation supports float32 and float64, got %v", x.Dtype())
		}
		return out, nil
	}
	switch xs := x.Data().(type) {
	case []float32:
		var ys, gs []float32
		if grad {
			ys, gs = y.Data().([]float32), gy.Data().([]float32)
		}
		activateF32(act, xs, ys, gs, out.Data().([]float32))
	case []float64:
		var ys, gs []float64
		if grad {
			ys, gs = y.Data().([]float64), gy.Data().([]float64)
		}
		activate(act, xs, ys, gs, out.Data().([]float64), math.Exp)
	default:
		return nil, fmt.Errorf("train: activation supports float32 and float64, got %v", x.Dtype())
	}
	return out, nil
}

// activate writes f(x) into out, or gy·f'(x) when gy is non-nil (y = f(x)).
func activate[T Float](act models.Activation, x, y, gy, out []T, exp func(T) T) {
	smc.For((len(x)+4095)/4096, func(lo, hi int) {
		a, b := lo*4096, min(hi*4096, len(x))
		for i := a; i < b; i++ {
			v := x[i]
			var s T // sigmoid(v), stable for both signs
			if v >= 0 {
				s = 1 / (1 + exp(-v))
			} else {
				e := exp(v)
				s = e / (1 + e)
			}
			switch act {
			case models.SiLU:
				if gy == nil {
					out[i] = v * s
				} else {
					out[i] = gy[i] * s * (1 + v*(1-s))
				}
			case models.Softplus:
				if gy == nil {
					// log(1 + e^v) = max(v, 0) + log(1 + e^{-|v|})
					out[i] = T(math.Max(float64(v), 0) + math.Log1p(float64(exp(-T(math.Abs(float64(v)))))))
				} else {
					out[i] = gy[i] * s
				}
			case models.Tanh:
				if gy == nil {
					out[i] = 2*s2(v, exp) - 1
				} else {
					out[i] = gy[i] * (1 - y[i]*y[i])
				}
			}
		}
	})
}

// s2 is sigmoid(2v), so that tanh(v) = 2·sigmoid(2v) − 1.
func s2[T Float](v T, exp func(T) T) T {
	w := 2 * v
	if w >= 0 {
		return 1 / (1 + exp(-w))
	}
	e := exp(w)
	return e / (1 + e)
}

// expf32 is e^x in float32 to about 1 ulp (Cody–Waite range reduction and a
// degree-6 polynomial), several times faster than float64 math.Exp.
func expf32(x float32) float32 {
	switch {
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -103.97208:
		return 0
	}
	k := float32(math.Floor(float64(x*1.442695041 + 0.5)))
	r := x - k*0.693359375 + k*2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	e := p*r*r + r + 1
	ki := int32(k)
	if ki < -126 { // subnormal result: scale in two steps
		return e * math.Float32frombits(uint32(ki+127+64)<<23) * math.Float32frombits(uint32(127-64)<<23)
	}
	return e * math.Float32frombits(uint32(ki+127)<<23)
}

// activateF32 is activate for float32: SiLU runs the vectorised kernels of
// internal/kernels (its derivative reuses y: σ(x) = y/x away from 0).
func activateF32(act models.Activation, x, y, gy, out []float32) {
	const chunk = 16384
	smc.For((len(x)+chunk-1)/chunk, func(lo, hi int) {
		a, b := lo*chunk, min(hi*chunk, len(x))
		switch {
		case act == models.SiLU && gy == nil:
			kernels.SiLU(x[a:b], out[a:b])
		case act == models.SiLU:
			kernels.SiLUGrad(x[a:b], y[a:b], gy[a:b], out[a:b])
		default:
			activate(act, x[a:b], subOrNil(y, a, b), subOrNil(gy, a, b), out[a:b], expf32)
		}
	})
}

func gradData[T Float](gy *tensor.Dense) []T {
	if gy == nil {
		return nil
	}
	return gy.Data().([]T)
}

// leaky writes LeakyReLU(x) (v for v ≥ 0, slope·v below) into out, or
// gy·LeakyReLU'(x) (1 for v ≥ 0, slope below) when gy is non-nil.
func leaky[T Float](x, gy []T, slope T, out []T) {
	const chunk = 16384
	smc.For((len(x)+chunk-1)/chunk, func(lo, hi int) {
		a, b := lo*chunk, min(hi*chunk, len(x))
		leakyRows(x[a:b], sliceOrNil(gy, a, b), slope, out[a:b])
	})
}

// leakyRows is leaky on the calling goroutine, in the vectorised loop of
// internal/blas.
func leakyRows[T Float](xs, gy []T, slope T, os []T) {
	switch x := any(xs).(type) {
	case []float32:
		iblas.Leaky(x, sliceAs[float32](gy), float32(slope), any(os).([]float32))
	case []float64:
		iblas.Leaky(x, sliceAs[float64](gy), float64(slope), any(os).([]float64))
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func subOrNil(v []float32, a, b int) []float32 {
	if v == nil {
		return nil
	}
	return v[a:b]
}

// activateRows is the activation ops' arithmetic on slices, run on the
// calling goroutine: f(x) into out, or gy·f'(x) when gy is non-nil (y =
// f(x)). The fused convolution (applyConvAct) calls it on one chunk of
// samples per core. The values are those of actOp and actGradOp bit for
// bit when the chunks start and end at multiples of 8 values (the vector
// kernels' width, whose scalar tails round otherwise): so for convolutions
// whose Out·Ho·Wo is a multiple of 8.
func activateRows[T Float](act models.Activation, slope float64, x, y, gy, out []T) {
	if xv, ok := any(x).([]float32); ok && act == models.SiLU {
		// the kernels themselves, with no parallel loop to set up
		if gy == nil {
			kernels.SiLU(xv, any(out).([]float32))
		} else {
			kernels.SiLUGrad(xv, any(y).([]float32), any(gy).([]float32), any(out).([]float32))
		}
		return
	}
	if act == models.LeakyReLU {
		leakyRows(x, gy, T(slope), out)
		return
	}
	const piece = 4096
	for a := 0; a < len(x); a += piece {
		b := min(a+piece, len(x))
		xs, ys, gs, os := x[a:b], sliceOrNil(y, a, b), sliceOrNil(gy, a, b), out[a:b]
		switch {
		case act == models.Identity && gs == nil:
			copy(os, xs)
		case act == models.Identity:
			copy(os, gs)
		default:
			switch xv := any(xs).(type) {
			case []float32:
				activateF32(act, xv, sliceAs[float32](ys), sliceAs[float32](gs), any(os).([]float32))
			case []float64:
				activate(act, xv, sliceAs[float64](ys), sliceAs[float64](gs), any(os).([]float64), math.Exp)
			}
		}
	}
}

func sliceOrNil[T Float](v []T, a, b int) []T {
	if v == nil {
		return nil
	}
	return v[a:b]
}

// sliceAs is v as []E (nil stays nil); E is T's own type.
func sliceAs[E Float, T Float](v []T) []E {
	if v == nil {
		return nil
	}
	return any(v).([]E)
}
