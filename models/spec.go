// Package models describes the energy families as data: a Spec names the
// architecture, Params holds its parameters, and float64 reference
// implementations of U and ∇ₓU serve tests, quadrature and export parity.
// It links neither gorgonia nor ONNX Runtime.
package models

import (
	"fmt"
	"math"
)

// Family names an energy family.
type Family string

const (
	// GMM is the Gaussian-mixture family of docs/METHOD.md §3:
	// U(x) = −log Σ_m exp(−½|x − a_m|² − z_m).
	GMM Family = "gmm"
	// MLP is a quadratic base plus a multi-layer perceptron:
	// U(x) = |x − μ0|²/(2σ0²) + f_θ(x).
	MLP Family = "mlp"
)

// Activation names the MLP nonlinearity.
type Activation string

const (
	SiLU     Activation = "silu"
	Softplus Activation = "softplus"
	Tanh     Activation = "tanh"
)

// Spec is the single source of truth for an energy architecture; train and
// export both build from it.
type Spec struct {
	// Family is the energy family. The default value is "mlp".
	Family Family `json:"family" mapstructure:"family"`
	// Dim is the data dimension d.
	Dim int `json:"dim" mapstructure:"dim"`
	// Modes is the number of mixture components (GMM only).
	Modes int `json:"modes,omitempty" mapstructure:"modes"`
	// Hidden lists the MLP hidden widths (MLP only). The default value is [32, 32].
	Hidden []int `json:"hidden,omitempty" mapstructure:"hidden"`
	// Activation is the MLP nonlinearity. The default value is "silu".
	Activation Activation `json:"activation,omitempty" mapstructure:"activation"`
	// BaseMean is μ0 of the quadratic base (MLP only); empty means 0.
	BaseMean []float64 `json:"base_mean,omitempty" mapstructure:"base_mean"`
	// BaseStd is σ0 of the quadratic base (MLP only). The default value is 1.
	BaseStd float64 `json:"base_std,omitempty" mapstructure:"base_std"`
	// BaseVectors and BaseVariances, when set, make the base of the mlp and
	// conv families the Gaussian N(μ0, Σ) with Σ = σ0²·I + Σ_j λ_j·v_j·v_jᵀ
	// (docs/METHOD.md §8, "A data-fitted Gaussian base"): BaseVectors holds k
	// orthonormal rows v_j of Dim values (k×Dim, row-major), BaseVariances
	// the k values λ_j ≥ 0. They are fitted to the data (model.base_fit:
	// pca), never configured, and travel with the parameters in weights,
	// checkpoint and ONNX files. Empty: Σ = σ0²·I.
	BaseVectors   []float64 `json:"base_vectors,omitempty" mapstructure:"-"`
	BaseVariances []float64 `json:"base_variances,omitempty" mapstructure:"-"`
	// InputShape is the image shape [C, H, W] (conv only); Dim = C·H·W.
	InputShape []int `json:"input_shape,omitempty" mapstructure:"input_shape"`
	// Conv lists the convolutions (conv only); Hidden and Activation then
	// describe the linear layers after the flatten.
	Conv []ConvLayer `json:"conv,omitempty" mapstructure:"conv"`
	// LeakySlope is the slope of Activation when it is leaky_relu (0 means
	// DefaultLeakySlope).
	LeakySlope float64 `json:"leaky_slope,omitempty" mapstructure:"leaky_slope"`
}

// Validate reports the first problem with the spec.
func (s Spec) Validate() error {
	if s.Dim <= 0 {
		return fmt.Errorf("models: dim must be > 0, got %d", s.Dim)
	}
	switch s.Family {
	case GMM:
		if s.Modes <= 0 {
			return fmt.Errorf("models: modes must be > 0 for family gmm, got %d", s.Modes)
		}
	case MLP:
		if len(s.Hidden) == 0 {
			return fmt.Errorf("models: hidden must list at least one width for family mlp")
		}
		for i, h := range s.Hidden {
			if h <= 0 {
				return fmt.Errorf("models: hidden[%d] must be > 0, got %d", i, h)
			}
		}
		switch s.Activation {
		case SiLU, Softplus, Tanh:
		default:
			return fmt.Errorf("models: activation must be silu, softplus or tanh, got %q", s.Activation)
		}
		if !(s.BaseStd > 0) || math.IsInf(s.BaseStd, 0) {
			return fmt.Errorf("models: base_std must be a finite number > 0, got %v", s.BaseStd)
		}
		if len(s.BaseMean) != 0 && len(s.BaseMean) != s.Dim {
			return fmt.Errorf("models: base_mean must have dim=%d entries, got %d", s.Dim, len(s.BaseMean))
		}
		if err := s.validateBase(); err != nil {
			return err
		}
	case Conv:
		if err := s.validateConv(); err != nil {
			return err
		}
		if !(s.BaseStd > 0) || math.IsInf(s.BaseStd, 0) {
			return fmt.Errorf("models: base_std must be a finite number > 0, got %v", s.BaseStd)
		}
		if len(s.BaseMean) != 0 && len(s.BaseMean) != s.Dim {
			return fmt.Errorf("models: base_mean must have dim=%d entries, got %d", s.Dim, len(s.BaseMean))
		}
		if err := s.validateBase(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("models: family must be gmm, mlp or conv, got %q", s.Family)
	}
	if s.Family == GMM && (len(s.BaseVectors) != 0 || len(s.BaseVariances) != 0) {
		return fmt.Errorf("models: base_vectors and base_variances apply to the mlp and conv families, not gmm")
	}
	return nil
}

// Mu0 returns the base mean as a vector of length Dim.
func (s Spec) Mu0() []float64 {
	if len(s.BaseMean) == s.Dim {
		return s.BaseMean
	}
	return make([]float64, s.Dim)
}

// Layers returns the MLP layer widths from input to the scalar output:
// [Dim, Hidden..., 1].
func (s Spec) Layers() []int {
	w := append([]int{s.Dim}, s.Hidden...)
	return append(w, 1)
}

// ParamShapes lists the parameter tensors of the family in canonical order.
// GMM: "means" [Modes, Dim], "log_mass" [Modes] (z_m, masses = softmax(−z)).
// MLP: "w0" [Dim, H1], "b0" [H1], …, "wL" [HL, 1], "bL" [1]; a layer maps a
// row vector x to x·W + b.
func (s Spec) ParamShapes() []TensorShape {
	switch s.Family {
	case GMM:
		return []TensorShape{{"means", []int{s.Modes, s.Dim}}, {"log_mass", []int{s.Modes}}}
	case MLP:
		l := s.Layers()
		var out []TensorShape
		for i := 0; i+1 < len(l); i++ {
			out = append(out,
				TensorShape{fmt.Sprintf("w%d", i), []int{l[i], l[i+1]}},
				TensorShape{fmt.Sprintf("b%d", i), []int{l[i+1]}})
		}
		return out
	case Conv:
		return s.convParamShapes()
	}
	return nil
}

// NumParams is the total number of scalar parameters.
func (s Spec) NumParams() int {
	n := 0
	for _, t := range s.ParamShapes() {
		n += prod(t.Shape)
	}
	return n
}

// TensorShape names a parameter tensor and its shape.
type TensorShape struct {
	Name  string
	Shape []int
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}
