package models

import (
	"fmt"
	"math"
)

// Conv is the convolutional family: U(x) = |x − μ0|²/(2σ0²) + f_θ(x) for
// images x of shape [C, H, W] (Spec.InputShape), where f is a stack of
// convolutions (Spec.Conv, each followed by its activation), a flatten in
// (channel, row, column) order, and linear layers of widths Spec.Hidden
// (activation Spec.Activation) down to one output. The last linear layer
// starts at zero, so ρθ0 = N(μ0, σ0²I) exactly, as for the MLP.
const Conv Family = "conv"

// Activations used by the conv family only.
const (
	// LeakyReLU is v for v ≥ 0 and slope·v below (ONNX LeakyRelu; the same
	// as max(v, slope·v) for slope ≤ 1); its slope is ConvLayer.Slope or
	// Spec.LeakySlope (0 means 0.2).
	LeakyReLU Activation = "leaky_relu"
	// Identity leaves a convolution's output as it is.
	Identity Activation = "identity"
)

// DefaultLeakySlope is the slope of LeakyReLU when none is given.
const DefaultLeakySlope = 0.2

// ConvLayer is one convolution: Out output channels, a Kernel×Kernel filter
// moved by Stride, Pad zeros on every side of the input, then Activation.
// Its parameters are "cw<i>" [Out, In, Kernel, Kernel] and "cb<i>" [Out].
// The output of an input [In, H, W] is [Out, (H + 2·Pad − Kernel)/Stride + 1,
// (W + 2·Pad − Kernel)/Stride + 1] (integer division).
type ConvLayer struct {
	Out        int        `json:"out" mapstructure:"out"`
	Kernel     int        `json:"kernel" mapstructure:"kernel"`
	Stride     int        `json:"stride" mapstructure:"stride"`
	Pad        int        `json:"pad" mapstructure:"pad"`
	Activation Activation `json:"activation" mapstructure:"activation"`
	// Slope is LeakyReLU's slope (0 means DefaultLeakySlope).
	Slope float64 `json:"slope,omitempty" mapstructure:"slope"`
}

// ConvMaxDim bounds every size of a conv spec (channels, kernel, image side,
// stride, padding), a guard against specs that could not be allocated.
const ConvMaxDim = 1 << 14

// slope is the LeakyReLU slope of the layer.
func (l ConvLayer) slope() float64 {
	if l.Slope == 0 {
		return DefaultLeakySlope
	}
	return l.Slope
}

// LeakySlopeOf returns the slope of act for a layer whose configured slope is
// slope (0 means DefaultLeakySlope); other activations have none (0).
func LeakySlopeOf(act Activation, slope float64) float64 {
	if act != LeakyReLU {
		return 0
	}
	if slope == 0 {
		return DefaultLeakySlope
	}
	return slope
}

// ConvShapes returns the [C, H, W] shape of the input and of every
// convolution's output, len(Conv)+1 entries.
func (s Spec) ConvShapes() [][3]int {
	out := make([][3]int, 0, len(s.Conv)+1)
	c, h, w := s.InputShape[0], s.InputShape[1], s.InputShape[2]
	out = append(out, [3]int{c, h, w})
	for _, l := range s.Conv {
		h = (h+2*l.Pad-l.Kernel)/l.Stride + 1
		w = (w+2*l.Pad-l.Kernel)/l.Stride + 1
		c = l.Out
		out = append(out, [3]int{c, h, w})
	}
	return out
}

// FlatDim is the number of values the last convolution puts out, the input
// width of the first linear layer.
func (s Spec) FlatDim() int {
	sh := s.ConvShapes()
	l := sh[len(sh)-1]
	return l[0] * l[1] * l[2]
}

// DataShape is the shape of one sample: InputShape for the conv family, [Dim]
// otherwise.
func (s Spec) DataShape() []int {
	if s.Family == Conv {
		return append([]int(nil), s.InputShape...)
	}
	return []int{s.Dim}
}

// validateConv checks the conv-specific fields; Dim must equal C·H·W.
func (s Spec) validateConv() error {
	if len(s.InputShape) != 3 {
		return fmt.Errorf("models: input_shape must be [C, H, W] for family conv, got %v", s.InputShape)
	}
	for i, v := range s.InputShape {
		if v <= 0 || v > ConvMaxDim {
			return fmt.Errorf("models: input_shape[%d] must be in 1..%d, got %d", i, ConvMaxDim, v)
		}
	}
	if d := s.InputShape[0] * s.InputShape[1] * s.InputShape[2]; s.Dim != d {
		return fmt.Errorf("models: dim must be C·H·W = %d for input_shape %v, got %d", d, s.InputShape, s.Dim)
	}
	if len(s.Conv) == 0 {
		return fmt.Errorf("models: conv must list at least one convolution for family conv")
	}
	c, h, w := s.InputShape[0], s.InputShape[1], s.InputShape[2]
	for i, l := range s.Conv {
		for _, f := range []struct {
			name string
			v    int
			min  int
		}{{"out", l.Out, 1}, {"kernel", l.Kernel, 1}, {"stride", l.Stride, 1}, {"pad", l.Pad, 0}} {
			if f.v < f.min || f.v > ConvMaxDim {
				return fmt.Errorf("models: conv[%d].%s must be in %d..%d, got %d", i, f.name, f.min, ConvMaxDim, f.v)
			}
		}
		switch l.Activation {
		case SiLU, Softplus, Tanh, LeakyReLU, Identity:
		default:
			return fmt.Errorf("models: conv[%d].activation must be silu, softplus, tanh, leaky_relu or identity, got %q", i, l.Activation)
		}
		if math.IsNaN(l.Slope) || math.IsInf(l.Slope, 0) {
			return fmt.Errorf("models: conv[%d].slope must be finite, got %v", i, l.Slope)
		}
		if h+2*l.Pad < l.Kernel || w+2*l.Pad < l.Kernel {
			return fmt.Errorf("models: conv[%d]: kernel %d is larger than its padded input %dx%d", i, l.Kernel, h+2*l.Pad, w+2*l.Pad)
		}
		h = (h+2*l.Pad-l.Kernel)/l.Stride + 1
		w = (w+2*l.Pad-l.Kernel)/l.Stride + 1
		if c*l.Kernel*l.Kernel > ConvMaxDim*64 || l.Out*h*w > ConvMaxDim*ConvMaxDim {
			return fmt.Errorf("models: conv[%d] is too large (%d inputs per output, %d outputs)", i, c*l.Kernel*l.Kernel, l.Out*h*w)
		}
		c = l.Out
	}
	for i, v := range s.Hidden {
		if v <= 0 || v > ConvMaxDim*ConvMaxDim {
			return fmt.Errorf("models: hidden[%d] must be in 1..%d, got %d", i, ConvMaxDim*ConvMaxDim, v)
		}
	}
	switch s.Activation {
	case SiLU, Softplus, Tanh, LeakyReLU:
	default:
		return fmt.Errorf("models: activation must be silu, softplus, tanh or leaky_relu, got %q", s.Activation)
	}
	if math.IsNaN(s.LeakySlope) || math.IsInf(s.LeakySlope, 0) {
		return fmt.Errorf("models: leaky_slope must be finite, got %v", s.LeakySlope)
	}
	return nil
}

// convParamShapes: "cw<i>" [Out, In, K, K] and "cb<i>" [Out] per
// convolution, then the linear layers "w<j>" [in, out], "b<j>" [out] of
// LinearLayers.
func (s Spec) convParamShapes() []TensorShape {
	var out []TensorShape
	sh := s.ConvShapes()
	for i, l := range s.Conv {
		out = append(out,
			TensorShape{fmt.Sprintf("cw%d", i), []int{l.Out, sh[i][0], l.Kernel, l.Kernel}},
			TensorShape{fmt.Sprintf("cb%d", i), []int{l.Out}})
	}
	lin := s.LinearLayers()
	for j := 0; j+1 < len(lin); j++ {
		out = append(out,
			TensorShape{fmt.Sprintf("w%d", j), []int{lin[j], lin[j+1]}},
			TensorShape{fmt.Sprintf("b%d", j), []int{lin[j+1]}})
	}
	return out
}

// LinearLayers returns the widths of the conv family's linear part:
// [FlatDim, Hidden..., 1].
func (s Spec) LinearLayers() []int {
	w := append([]int{s.FlatDim()}, s.Hidden...)
	return append(w, 1)
}

// MNISTConvSpec is the energy net of docs/METHOD.md §5.2 for 1×28×28 images:
// conv 1→16 k5 s2 p4, conv 16→32 k3 s2 p1, conv 32→64 k3 s2 p1, conv 64→64
// k3 s2 p1 (each followed by SiLU), flatten 256, linear 256→64, SiLU,
// linear 64→1; base N(0, I).
func MNISTConvSpec() Spec {
	return Spec{
		Family: Conv, Dim: 784, InputShape: []int{1, 28, 28},
		Conv: []ConvLayer{
			{Out: 16, Kernel: 5, Stride: 2, Pad: 4, Activation: SiLU},
			{Out: 32, Kernel: 3, Stride: 2, Pad: 1, Activation: SiLU},
			{Out: 64, Kernel: 3, Stride: 2, Pad: 1, Activation: SiLU},
			{Out: 64, Kernel: 3, Stride: 2, Pad: 1, Activation: SiLU},
		},
		Hidden: []int{64}, Activation: SiLU, BaseStd: 1,
	}
}

// CIFARConvSpec is the energy net of docs/METHOD.md §5.3 for 3×32×32 images:
// conv 3→64 k3 s1 p1, conv 64→128 k4 s2 p1, conv 128→256 k4 s2 p1, conv
// 256→512 k4 s2 p1 (each followed by LeakyReLU 0.2), conv 512→1 k4 s1 p0;
// base N(0, I). The family's zero-initialised last layer is a linear 1→1
// after the last convolution.
func CIFARConvSpec() Spec {
	return Spec{
		Family: Conv, Dim: 3072, InputShape: []int{3, 32, 32},
		Conv: []ConvLayer{
			{Out: 64, Kernel: 3, Stride: 1, Pad: 1, Activation: LeakyReLU, Slope: 0.2},
			{Out: 128, Kernel: 4, Stride: 2, Pad: 1, Activation: LeakyReLU, Slope: 0.2},
			{Out: 256, Kernel: 4, Stride: 2, Pad: 1, Activation: LeakyReLU, Slope: 0.2},
			{Out: 512, Kernel: 4, Stride: 2, Pad: 1, Activation: LeakyReLU, Slope: 0.2},
			{Out: 1, Kernel: 4, Stride: 1, Pad: 0, Activation: Identity},
		},
		Activation: LeakyReLU, LeakySlope: 0.2, BaseStd: 1,
	}
}

// MACs is the number of multiply-adds of one forward evaluation of f for
// one point: Σ_l w_l·w_{l+1} over Layers for an MLP, Dim·Modes for a
// mixture, and for conv Σ_i Out_i·H_i·W_i·In_i·Kernel_i² over the
// convolutions (output size times filter size) plus Σ_j w_j·w_{j+1} over
// LinearLayers. Serving uses it to tell light models from heavy ones.
func (s Spec) MACs() int {
	macs := 0
	switch s.Family {
	case GMM:
		macs = s.Dim * s.Modes
	case MLP:
		l := s.Layers()
		for i := 0; i+1 < len(l); i++ {
			macs += l[i] * l[i+1]
		}
	case Conv:
		sh := s.ConvShapes()
		for i, l := range s.Conv {
			macs += sh[i+1][0] * sh[i+1][1] * sh[i+1][2] * sh[i][0] * l.Kernel * l.Kernel
		}
		l := s.LinearLayers()
		for i := 0; i+1 < len(l); i++ {
			macs += l[i] * l[i+1]
		}
	}
	return macs
}
