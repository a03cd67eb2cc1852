package models

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ActivateSlope applies act to v and returns its derivative too, with slope
// the LeakyReLU slope (ignored by the other activations; resolve a
// configured 0 with LeakySlopeOf). LeakyReLU is v for v ≥ 0 and slope·v
// below, as ONNX's LeakyRelu defines it, with derivative 1 at v = 0;
// Identity is v with derivative 1.
func ActivateSlope(act Activation, slope, v float64) (y, dy float64) {
	switch act {
	case LeakyReLU:
		if v >= 0 {
			return v, 1
		}
		return slope * v, slope
	case Identity:
		return v, 1
	}
	return Activate(act, v)
}

// convShape is one activation volume [C, H, W].
type convShape struct{ c, h, w int }

func (s convShape) size() int { return s.c * s.h * s.w }

// convForward writes into out (l.Out×oh×ow) the correlation of in (sh) with
// the filters w [Out, In, K, K] plus bias b, with zero padding l.Pad on every
// side and stride l.Stride, as ONNX Conv and PyTorch's Conv2d define it:
//
//	out[o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · in[c, i·S − P + u, j·S − P + v],
//
// terms whose input index falls outside the image being zero.
func convForward(l ConvLayer, in []float64, sh convShape, w, b []float64, out []float64, osh convShape) {
	k, st, pd := l.Kernel, l.Stride, l.Pad
	for o := 0; o < osh.c; o++ {
		for i := 0; i < osh.h; i++ {
			for j := 0; j < osh.w; j++ {
				acc := b[o]
				for c := 0; c < sh.c; c++ {
					for u := 0; u < k; u++ {
						y := i*st - pd + u
						if y < 0 || y >= sh.h {
							continue
						}
						wrow := w[((o*sh.c+c)*k+u)*k : ((o*sh.c+c)*k+u+1)*k]
						irow := in[(c*sh.h+y)*sh.w : (c*sh.h+y+1)*sh.w]
						for v := 0; v < k; v++ {
							if x := j*st - pd + v; x >= 0 && x < sh.w {
								acc += wrow[v] * irow[x]
							}
						}
					}
				}
				out[(o*osh.h+i)*osh.w+j] = acc
			}
		}
	}
}

// convBackward is convForward's adjoint: given δ = ∂U/∂out (osh), it adds
// Σ δ[o, i, j]·w[o, c, u, v] into din[c, i·S − P + u, j·S − P + v] (when din
// is non-nil) and, when gw and gb are non-nil, ∂U/∂w = Σ δ·in and ∂U/∂b = Σ δ
// into them.
func convBackward(l ConvLayer, in []float64, sh convShape, w []float64, delta []float64, osh convShape, din, gw, gb []float64) {
	k, st, pd := l.Kernel, l.Stride, l.Pad
	for o := 0; o < osh.c; o++ {
		for i := 0; i < osh.h; i++ {
			for j := 0; j < osh.w; j++ {
				d := delta[(o*osh.h+i)*osh.w+j]
				if d == 0 {
					continue
				}
				if gb != nil {
					gb[o] += d
				}
				for c := 0; c < sh.c; c++ {
					for u := 0; u < k; u++ {
						y := i*st - pd + u
						if y < 0 || y >= sh.h {
							continue
						}
						base := ((o*sh.c+c)*k + u) * k
						row := (c*sh.h + y) * sh.w
						for v := 0; v < k; v++ {
							x := j*st - pd + v
							if x < 0 || x >= sh.w {
								continue
							}
							if din != nil {
								din[row+x] += d * w[base+v]
							}
							if gw != nil {
								gw[base+v] += d * in[row+x]
							}
						}
					}
				}
			}
		}
	}
}

// convEnergy is Energy for the conv family; see convEval.
func (p *Params) convEnergy(x, grad []float64) float64 {
	return p.convEval(x, grad, nil)
}

// convEval computes U(x) of the conv family (docs/METHOD.md §3, "Neural
// energies") for one image x (length Dim, [C, H, W] row-major) by direct
// loops, and by the backward pass ∇ₓU into gx and ∂θU into gt (one slice
// per tensor, overwritten), each when non-nil.
func (p *Params) convEval(x, gx []float64, gt [][]float64) float64 {
	s := p.Spec
	var base []float64
	if gx != nil {
		base = make([]float64, s.Dim)
	}
	u := s.baseEnergy(x, base)
	nc := len(s.Conv)
	shapes := s.ConvShapes()
	sh := make([]convShape, len(shapes))
	for i, v := range shapes {
		sh[i] = convShape{v[0], v[1], v[2]}
	}
	// acts[i] is the input of convolution i (acts[0] = x, acts[nc] the
	// flattened input of the linear part); cder[i] is act′ of conv i.
	acts := make([][]float64, nc+1)
	cder := make([][]float64, nc)
	acts[0] = x
	for i, l := range s.Conv {
		z := make([]float64, sh[i+1].size())
		convForward(l, acts[i], sh[i], p.Tensors[2*i].Data, p.Tensors[2*i+1].Data, z, sh[i+1])
		dz := make([]float64, len(z))
		slope := LeakySlopeOf(l.Activation, l.Slope)
		for j := range z {
			z[j], dz[j] = ActivateSlope(l.Activation, slope, z[j])
		}
		acts[i+1], cder[i] = z, dz
	}
	// linear part, row vectors: h ← act(h·W_j + b_j), the last without act
	lin := s.LinearLayers()
	nl := len(lin) - 1
	hs := make([][]float64, nl) // input of linear layer j
	lder := make([][]float64, nl-1)
	slope := LeakySlopeOf(s.Activation, s.LeakySlope)
	h := acts[nc]
	for j := 0; j < nl; j++ {
		hs[j] = h
		z := affine(h, p.Tensors[2*nc+2*j].Data, p.Tensors[2*nc+2*j+1].Data)
		if j == nl-1 {
			u += z[0]
			break
		}
		dz := make([]float64, len(z))
		for o := range z {
			z[o], dz[o] = ActivateSlope(s.Activation, slope, z[o])
		}
		lder[j] = dz
		h = z
	}
	if gx == nil && gt == nil {
		return u
	}
	for k := range gt {
		clear(gt[k])
	}
	// backward: δ = ∂U/∂z at the output is 1
	delta := []float64{1}
	for j := nl - 1; j >= 0; j-- {
		w := p.Tensors[2*nc+2*j].Data
		in, out := lin[j], lin[j+1]
		if gt != nil {
			gw, gb := gt[2*nc+2*j], gt[2*nc+2*j+1]
			for a := 0; a < in; a++ {
				for o := 0; o < out; o++ {
					gw[a*out+o] = hs[j][a] * delta[o]
				}
			}
			copy(gb, delta)
		}
		prev := affineBack(w, delta, in)
		der := cder[nc-1]
		if j > 0 {
			der = lder[j-1]
		}
		for a := range prev {
			prev[a] *= der[a]
		}
		delta = prev
	}
	for i := nc - 1; i >= 0; i-- {
		var din, gw, gb []float64
		if i > 0 || gx != nil {
			din = make([]float64, sh[i].size())
		}
		if gt != nil {
			gw, gb = gt[2*i], gt[2*i+1]
		}
		convBackward(s.Conv[i], acts[i], sh[i], p.Tensors[2*i].Data, delta, sh[i+1], din, gw, gb)
		if i > 0 {
			for a := range din {
				din[a] *= cder[i-1][a]
			}
		}
		delta = din
	}
	if gx != nil {
		for k := 0; k < s.Dim; k++ {
			gx[k] = delta[k] + base[k]
		}
	}
	return u
}

// ParamGrad writes ∂θU(x) for one point x into out (one slice per parameter
// tensor, in ParamShapes order, each as long as its tensor; overwritten) and
// returns U(x). It is the float64 reference of the parameter gradient that
// training's graphs are checked against (docs/METHOD.md §7.3). Only the conv
// family has it: ∂θU of the mixture is written out in docs/METHOD.md §3, and
// the MLP's is checked inside package train; ParamGrad panics for them.
func (p *Params) ParamGrad(x []float64, out [][]float64) float64 {
	if p.Spec.Family != Conv {
		panic(fmt.Sprintf("models: ParamGrad is implemented for family conv only, got %q", p.Spec.Family))
	}
	if len(out) != len(p.Tensors) {
		panic(fmt.Sprintf("models: ParamGrad needs %d output slices, got %d", len(p.Tensors), len(out)))
	}
	for k := range out {
		if len(out[k]) != len(p.Tensors[k].Data) {
			panic(fmt.Sprintf("models: ParamGrad output %d (%s) needs %d values, got %d", k, p.Tensors[k].Name, len(p.Tensors[k].Data), len(out[k])))
		}
	}
	return p.convEval(x, nil, out)
}

// InitConv draws conv parameters: every filter "cw<i>" uniform in
// ±sqrt(6/fan_in) with fan_in = In·Kernel² (He uniform), the hidden linear
// layers uniform in ±sqrt(6/(fan_in+fan_out)) (Glorot, as InitMLP), all
// biases zero, and the last linear layer exactly zero, so that the model at
// initialisation is the base Gaussian N(μ0, σ0²I) (docs/METHOD.md §3).
func InitConv(spec Spec, rng *rand.Rand) (*Params, error) {
	if spec.Family != Conv {
		return nil, fmt.Errorf("models: InitConv needs family conv, got %q", spec.Family)
	}
	p, err := NewParams(spec)
	if err != nil {
		return nil, err
	}
	uniform := func(t *Tensor, lim float64) {
		for j := range t.Data {
			t.Data[j] = lim * (2*rng.Float64() - 1)
		}
	}
	sh := spec.ConvShapes()
	for i, l := range spec.Conv {
		uniform(p.Get(fmt.Sprintf("cw%d", i)), math.Sqrt(6/float64(sh[i][0]*l.Kernel*l.Kernel)))
	}
	lin := spec.LinearLayers()
	for j := 0; j+2 < len(lin); j++ {
		uniform(p.Get(fmt.Sprintf("w%d", j)), math.Sqrt(6/float64(lin[j]+lin[j+1])))
	}
	return p, nil
}

// Init draws θ0 of spec's family where no other choice is needed: InitMLP
// for an MLP, InitConv for conv. Mixtures need InitGMM's scale and mean
// overrides and are refused.
func Init(spec Spec, rng *rand.Rand) (*Params, error) {
	switch spec.Family {
	case MLP:
		return InitMLP(spec, rng)
	case Conv:
		return InitConv(spec, rng)
	}
	return nil, fmt.Errorf("models: Init draws mlp and conv parameters, got family %q (use InitGMM)", spec.Family)
}
