package models

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Tensor is one named parameter tensor, row-major float64.
type Tensor struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// Params is a full parameter set for a Spec, tensors in ParamShapes order.
type Params struct {
	Spec    Spec     `json:"spec"`
	Tensors []Tensor `json:"tensors"`
}

// NewParams allocates zero parameters for spec.
func NewParams(spec Spec) (*Params, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	p := &Params{Spec: spec}
	for _, ts := range spec.ParamShapes() {
		p.Tensors = append(p.Tensors, Tensor{Name: ts.Name, Shape: append([]int(nil), ts.Shape...), Data: make([]float64, prod(ts.Shape))})
	}
	return p, nil
}

// Get returns the tensor with the given name, or nil.
func (p *Params) Get(name string) *Tensor {
	for i := range p.Tensors {
		if p.Tensors[i].Name == name {
			return &p.Tensors[i]
		}
	}
	return nil
}

// Clone returns a deep copy.
func (p *Params) Clone() *Params {
	q := &Params{Spec: p.Spec}
	for _, t := range p.Tensors {
		q.Tensors = append(q.Tensors, Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: append([]float64(nil), t.Data...)})
	}
	return q
}

// Check verifies that the tensors match the spec's shapes and are finite.
func (p *Params) Check() error {
	if err := p.Spec.Validate(); err != nil {
		return err
	}
	want := p.Spec.ParamShapes()
	if len(want) != len(p.Tensors) {
		return fmt.Errorf("models: %s spec needs %d parameter tensors, got %d", p.Spec.Family, len(want), len(p.Tensors))
	}
	for i, ts := range want {
		t := p.Tensors[i]
		if t.Name != ts.Name || fmt.Sprint(t.Shape) != fmt.Sprint(ts.Shape) || len(t.Data) != prod(ts.Shape) {
			return fmt.Errorf("models: parameter %d: want %s%v, got %s%v with %d values", i, ts.Name, ts.Shape, t.Name, t.Shape, len(t.Data))
		}
		for j, v := range t.Data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("models: parameter %s[%d] is %v", t.Name, j, v)
			}
		}
	}
	return nil
}

// InitMLP draws MLP parameters: hidden layers uniform in ±sqrt(6/(fan_in+fan_out))
// (Glorot), biases zero, and the last layer exactly zero so that the model at
// initialisation is the base Gaussian N(μ0, σ0²I).
func InitMLP(spec Spec, rng *rand.Rand) (*Params, error) {
	if spec.Family != MLP {
		return nil, fmt.Errorf("models: InitMLP needs family mlp, got %q", spec.Family)
	}
	p, err := NewParams(spec)
	if err != nil {
		return nil, err
	}
	l := spec.Layers()
	for i := 0; i+2 < len(l); i++ {
		w := p.Get(fmt.Sprintf("w%d", i))
		lim := math.Sqrt(6 / float64(l[i]+l[i+1]))
		for j := range w.Data {
			w.Data[j] = lim * (2*rng.Float64() - 1)
		}
	}
	return p, nil
}

// InitGMM sets mixture means to scale·N(0, I) with the listed overrides
// (overrides[m][k] replaces mean m coordinate k) and all log-mass offsets to 0.
func InitGMM(spec Spec, scale float64, overrides map[[2]int]float64, rng *rand.Rand) (*Params, error) {
	if spec.Family != GMM {
		return nil, fmt.Errorf("models: InitGMM needs family gmm, got %q", spec.Family)
	}
	p, err := NewParams(spec)
	if err != nil {
		return nil, err
	}
	a := p.Get("means")
	for j := range a.Data {
		a.Data[j] = scale * rng.NormFloat64()
	}
	for mk, v := range overrides {
		m, k := mk[0], mk[1]
		if m < 0 || m >= spec.Modes || k < 0 || k >= spec.Dim {
			return nil, fmt.Errorf("models: mean override [%d][%d] outside modes=%d dim=%d", m, k, spec.Modes, spec.Dim)
		}
		a.Data[m*spec.Dim+k] = v
	}
	return p, nil
}

// ExactLogZ returns log Z_θ when it is known in closed form: always for GMM,
// and for MLP and conv when the last (linear) layer's weights are exactly
// zero (then ρ_θ is the base N(μ0, Σ) and Z_θ = (2π)^{d/2}·(det Σ)^{1/2}·e^{−bL},
// Spec.BaseLogZ; Σ = σ0²I without base vectors). ok is false otherwise.
func (p *Params) ExactLogZ() (logZ float64, ok bool) {
	d := float64(p.Spec.Dim)
	switch p.Spec.Family {
	case GMM:
		z := p.Get("log_mass").Data
		neg := make([]float64, len(z))
		for i, v := range z {
			neg[i] = -v
		}
		return 0.5*d*math.Log(2*math.Pi) + LogSumExp(neg), true
	case MLP, Conv:
		n := len(p.Spec.Layers()) - 2
		if p.Spec.Family == Conv {
			n = len(p.Spec.LinearLayers()) - 2
		}
		w := p.Get(fmt.Sprintf("w%d", n))
		for _, v := range w.Data {
			if v != 0 {
				return 0, false
			}
		}
		b := p.Get(fmt.Sprintf("b%d", n)).Data[0]
		return p.Spec.BaseLogZ() - b, true
	}
	return 0, false
}

// ModeMasses returns softmax(−z) for a GMM.
func (p *Params) ModeMasses() []float64 {
	z := p.Get("log_mass").Data
	neg := make([]float64, len(z))
	for i, v := range z {
		neg[i] = -v
	}
	lse := LogSumExp(neg)
	for i := range neg {
		neg[i] = math.Exp(neg[i] - lse)
	}
	return neg
}

// LogSumExp computes log Σ exp(v) stably; −Inf for an empty slice.
func LogSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}
