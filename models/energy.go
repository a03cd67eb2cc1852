package models

import (
	"fmt"
	"math"
)

// Energy evaluates U(x) in float64 for one point x (length Dim) and, when
// grad is non-nil (length Dim), writes ∇ₓU(x) into it. It is the reference
// implementation that the gorgonia and ONNX graphs are checked against.
func (p *Params) Energy(x, grad []float64) float64 {
	switch p.Spec.Family {
	case GMM:
		return p.gmmEnergy(x, grad)
	case MLP:
		return p.mlpEnergy(x, grad)
	case Conv:
		return p.convEnergy(x, grad)
	}
	panic(fmt.Sprintf("models: unknown family %q", p.Spec.Family))
}

// Responsibilities writes r_m(x) = softmax_m(−½|x − a_m|² − z_m) into r and
// returns U(x) (GMM only).
func (p *Params) Responsibilities(x, r []float64) float64 {
	d, M := p.Spec.Dim, p.Spec.Modes
	a, z := p.Get("means").Data, p.Get("log_mass").Data
	for m := 0; m < M; m++ {
		s := 0.0
		for k := 0; k < d; k++ {
			t := x[k] - a[m*d+k]
			s += t * t
		}
		r[m] = -0.5*s - z[m]
	}
	lse := LogSumExp(r[:M])
	for m := 0; m < M; m++ {
		r[m] = math.Exp(r[m] - lse)
	}
	return -lse
}

func (p *Params) gmmEnergy(x, grad []float64) float64 {
	d, M := p.Spec.Dim, p.Spec.Modes
	r := make([]float64, M)
	u := p.Responsibilities(x, r)
	if grad != nil {
		a := p.Get("means").Data
		for k := 0; k < d; k++ {
			g := x[k]
			for m := 0; m < M; m++ {
				g -= r[m] * a[m*d+k]
			}
			grad[k] = g
		}
	}
	return u
}

// Activate applies the named activation and returns its derivative too;
// LeakyReLU has slope DefaultLeakySlope here (ActivateSlope takes one).
func Activate(act Activation, v float64) (y, dy float64) {
	switch act {
	case LeakyReLU, Identity:
		return ActivateSlope(act, DefaultLeakySlope, v)
	case SiLU:
		s := sigmoid(v)
		return v * s, s * (1 + v*(1-s))
	case Softplus:
		if v > 0 {
			return v + math.Log1p(math.Exp(-v)), sigmoid(v)
		}
		return math.Log1p(math.Exp(v)), sigmoid(v)
	case Tanh:
		t := math.Tanh(v)
		return t, 1 - t*t
	}
	panic(fmt.Sprintf("models: unknown activation %q", act))
}

func sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

func (p *Params) mlpEnergy(x, grad []float64) float64 {
	s := p.Spec
	l := s.Layers()
	var base []float64
	if grad != nil {
		base = make([]float64, s.Dim)
	}
	u := s.baseEnergy(x, base)
	// forward, keeping activation derivatives for the backward pass
	var derivs [][]float64
	h := x
	nl := len(l) - 1
	for i := 0; i < nl; i++ {
		z := affine(h, p.Tensors[2*i].Data, p.Tensors[2*i+1].Data)
		if i == nl-1 {
			u += z[0]
			break
		}
		dz := make([]float64, len(z))
		for j := range z {
			z[j], dz[j] = Activate(s.Activation, z[j])
		}
		derivs = append(derivs, dz)
		h = z
	}
	if grad == nil {
		return u
	}
	// backward: δ at the output is 1
	delta := []float64{1}
	for i := nl - 1; i >= 0; i-- {
		prev := affineBack(p.Tensors[2*i].Data, delta, l[i])
		if i > 0 {
			for a := range prev {
				prev[a] *= derivs[i-1][a]
			}
		}
		delta = prev
	}
	for k := 0; k < s.Dim; k++ {
		grad[k] = delta[k] + base[k]
	}
	return u
}

// affine is z = h·W + b for a row vector h (len in) and W [in, out]
// row-major, out = len(b): one linear layer of the float64 references.
func affine(h, w, b []float64) []float64 {
	out := len(b)
	z := append([]float64(nil), b...)
	for a, v := range h {
		if v == 0 {
			continue
		}
		row := w[a*out : (a+1)*out]
		for j := range z {
			z[j] += v * row[j]
		}
	}
	return z
}

// affineBack is δ·Wᵀ (len in) for δ = ∂U/∂z of the layer z = h·W + b.
func affineBack(w, delta []float64, in int) []float64 {
	out := len(delta)
	prev := make([]float64, in)
	for a := range prev {
		row := w[a*out : (a+1)*out]
		acc := 0.0
		for j, d := range delta {
			acc += row[j] * d
		}
		prev[a] = acc
	}
	return prev
}
