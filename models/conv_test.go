package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// convSpec is a small conv spec with the base N(μ0, σ0²I), μ0 non-zero.
func convSpec(shape []int, layers []ConvLayer, hidden []int, act Activation, slope float64) Spec {
	d := shape[0] * shape[1] * shape[2]
	mu := make([]float64, d)
	for k := range mu {
		mu[k] = 0.1 * float64(k%5-2)
	}
	return Spec{Family: Conv, Dim: d, InputShape: shape, Conv: layers, Hidden: hidden,
		Activation: act, LeakySlope: slope, BaseStd: 1.3, BaseMean: mu}
}

// convCases are small specs covering every activation, strides 1 and 2,
// paddings 0, 1 and 4, odd image sizes and several channels.
var convCases = []struct {
	name string
	spec Spec
}{
	{"1x7x9/silu-s2p1/tanh", convSpec([]int{1, 7, 9}, []ConvLayer{
		{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: SiLU},
	}, []int{4}, Tanh, 0)},
	{"2x5x5/softplus-s1p0/leaky-s2p4/silu", convSpec([]int{2, 5, 5}, []ConvLayer{
		{Out: 3, Kernel: 2, Stride: 1, Pad: 0, Activation: Softplus},
		{Out: 2, Kernel: 5, Stride: 2, Pad: 4, Activation: LeakyReLU, Slope: 0.3},
	}, []int{5, 3}, SiLU, 0)},
	{"3x6x7/tanh-s2p0/identity-s1p1/softplus", convSpec([]int{3, 6, 7}, []ConvLayer{
		{Out: 2, Kernel: 3, Stride: 2, Pad: 0, Activation: Tanh},
		{Out: 3, Kernel: 2, Stride: 1, Pad: 1, Activation: Identity},
	}, []int{3}, Softplus, 0)},
	{"2x9x5/leaky-default-s2p1/leaky-linear", convSpec([]int{2, 9, 5}, []ConvLayer{
		{Out: 4, Kernel: 3, Stride: 2, Pad: 1, Activation: LeakyReLU},
		{Out: 1, Kernel: 3, Stride: 1, Pad: 0, Activation: SiLU},
	}, []int{2}, LeakyReLU, 0.05)},
	{"1x5x7/identity-s1p4/no-hidden", convSpec([]int{1, 5, 7}, []ConvLayer{
		{Out: 2, Kernel: 4, Stride: 1, Pad: 4, Activation: Identity},
		{Out: 1, Kernel: 3, Stride: 2, Pad: 1, Activation: Tanh},
	}, nil, SiLU, 0)},
}

// randomConvParams returns parameters with every tensor, the last layer
// included, drawn as scale·N(0, 1).
func randomConvParams(t *testing.T, spec Spec, scale float64, seed uint64) *Params {
	t.Helper()
	p, err := NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for k := range p.Tensors {
		for i := range p.Tensors[k].Data {
			p.Tensors[k].Data[i] = scale * rng.NormFloat64()
		}
	}
	return p
}

// bruteConvEnergy is U(x) written independently of convEval: each layer's
// input is first copied into an explicitly zero-padded image, then every
// output is a plain strided window sum over it; the linear part multiplies
// column by column.
func bruteConvEnergy(p *Params, x []float64) float64 {
	s := p.Spec
	c, h, w := s.InputShape[0], s.InputShape[1], s.InputShape[2]
	img := append([]float64(nil), x...)
	for li, l := range s.Conv {
		ph, pw := h+2*l.Pad, w+2*l.Pad
		padded := make([]float64, c*ph*pw)
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for xx := 0; xx < w; xx++ {
					padded[ch*ph*pw+(y+l.Pad)*pw+xx+l.Pad] = img[ch*h*w+y*w+xx]
				}
			}
		}
		oh, ow := (ph-l.Kernel)/l.Stride+1, (pw-l.Kernel)/l.Stride+1
		filt, bias := p.Get(fmt.Sprintf("cw%d", li)), p.Get(fmt.Sprintf("cb%d", li))
		out := make([]float64, l.Out*oh*ow)
		for o := 0; o < l.Out; o++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					sum := bias.Data[o]
					for ch := 0; ch < c; ch++ {
						for u := 0; u < l.Kernel; u++ {
							for v := 0; v < l.Kernel; v++ {
								wt := filt.Data[o*c*l.Kernel*l.Kernel+ch*l.Kernel*l.Kernel+u*l.Kernel+v]
								sum += wt * padded[ch*ph*pw+(i*l.Stride+u)*pw+j*l.Stride+v]
							}
						}
					}
					out[o*oh*ow+i*ow+j], _ = ActivateSlope(l.Activation, LeakySlopeOf(l.Activation, l.Slope), sum)
				}
			}
		}
		img, c, h, w = out, l.Out, oh, ow
	}
	lin := s.LinearLayers()
	for j := 0; j+1 < len(lin); j++ {
		wt, b := p.Get(fmt.Sprintf("w%d", j)), p.Get(fmt.Sprintf("b%d", j))
		next := make([]float64, lin[j+1])
		for o := range next {
			sum := b.Data[o]
			for a := 0; a < lin[j]; a++ {
				sum += img[a] * wt.Data[a*lin[j+1]+o]
			}
			if j+2 < len(lin) {
				sum, _ = ActivateSlope(s.Activation, LeakySlopeOf(s.Activation, s.LeakySlope), sum)
			}
			next[o] = sum
		}
		img = next
	}
	mu := s.Mu0()
	q := 0.0
	for k, v := range x {
		q += (v - mu[k]) * (v - mu[k])
	}
	return q/(2*s.BaseStd*s.BaseStd) + img[0]
}

// centralDiff is (U(v + ε) − U(v − ε))/(2ε) for the value *v.
func centralDiff(v *float64, eps float64, u func() float64) float64 {
	old := *v
	*v = old + eps
	up := u()
	*v = old - eps
	dn := u()
	*v = old
	return (up - dn) / (2 * eps)
}

// docs/METHOD.md §7.3 for the conv family: U against an independent direct
// evaluation, ∇ₓU and ∂θU (every coordinate, every parameter) against
// central differences in float64.
func TestConvEnergyFiniteDifference(t *testing.T) {
	for ci, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.spec.Validate(); err != nil {
				t.Fatal(err)
			}
			p := randomConvParams(t, c.spec, 0.6, uint64(ci)+1)
			rng := rand.New(rand.NewPCG(uint64(ci), 9))
			d := c.spec.Dim
			x := make([]float64, d)
			gx := make([]float64, d)
			gt := make([][]float64, len(p.Tensors))
			for k := range gt {
				gt[k] = make([]float64, len(p.Tensors[k].Data))
			}
			const eps, tol = 1e-5, 1e-7
			check := func(what string, got, fd float64) {
				t.Helper()
				if math.Abs(got-fd) > tol*math.Max(1, math.Abs(fd)) {
					t.Errorf("%s = %.10g, central difference %.10g", what, got, fd)
				}
			}
			for trial := 0; trial < 3; trial++ {
				for k := range x {
					x[k] = 1.5 * rng.NormFloat64()
				}
				u := p.Energy(x, gx)
				if want := bruteConvEnergy(p, x); math.Abs(u-want) > 1e-12*math.Max(1, math.Abs(want)) {
					t.Fatalf("U = %.15g, direct evaluation %.15g", u, want)
				}
				if u2 := p.Energy(x, nil); u2 != u {
					t.Fatalf("U without the gradient %v, with it %v", u2, u)
				}
				if u3 := p.ParamGrad(x, gt); math.Abs(u3-u) > 1e-12*math.Max(1, math.Abs(u)) {
					t.Fatalf("ParamGrad returned U = %v, Energy %v", u3, u)
				}
				energy := func() float64 { return p.Energy(x, nil) }
				for k := range x {
					check(fmt.Sprintf("∂U/∂x[%d]", k), gx[k], centralDiff(&x[k], eps, energy))
				}
				for ti := range p.Tensors {
					tn := &p.Tensors[ti]
					for j := range tn.Data {
						check(fmt.Sprintf("∂U/∂%s[%d]", tn.Name, j), gt[ti][j], centralDiff(&tn.Data[j], eps, energy))
					}
				}
			}
		})
	}
}

// narrowCIFAR is the CIFAR preset's geometry (kernels, strides, paddings on
// 3×32×32) with an eighth of its channels and SiLU instead of LeakyReLU:
// finite differences across the ~10⁵ kinks of the full LeakyReLU net are
// not reliable, and the full net costs 10⁸ multiply-adds per evaluation.
func narrowCIFAR() Spec {
	s := CIFARConvSpec()
	s.Conv = slices.Clone(s.Conv)
	for i := range s.Conv {
		if s.Conv[i].Out > 1 {
			s.Conv[i].Out /= 8
		}
		s.Conv[i].Activation = SiLU
	}
	s.Activation = SiLU
	return s
}

// The presets' geometry at full size: U against the direct evaluation,
// ∇ₓU and ∂θU on a sample of coordinates and parameters of every tensor
// against central differences.
func TestConvPresetFiniteDifference(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  Spec
		scale float64
		fd    bool
	}{
		{"mnist", MNISTConvSpec(), 0.15, true},
		{"cifar", CIFARConvSpec(), 0.03, false},
		{"cifar-narrow-silu", narrowCIFAR(), 0.08, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := randomConvParams(t, c.spec, c.scale, 3)
			rng := rand.New(rand.NewPCG(5, 5))
			x := make([]float64, c.spec.Dim)
			for k := range x {
				x[k] = rng.NormFloat64()
			}
			gx := make([]float64, len(x))
			gt := make([][]float64, len(p.Tensors))
			for k := range gt {
				gt[k] = make([]float64, len(p.Tensors[k].Data))
			}
			u := p.Energy(x, gx)
			if want := bruteConvEnergy(p, x); math.Abs(u-want) > 1e-10*math.Max(1, math.Abs(want)) {
				t.Fatalf("U = %.15g, direct evaluation %.15g", u, want)
			}
			if !c.fd {
				return
			}
			p.ParamGrad(x, gt)
			energy := func() float64 { return p.Energy(x, nil) }
			const eps, tol = 1e-5, 1e-6
			for i := 0; i < 6; i++ {
				k := rng.IntN(len(x))
				if fd := centralDiff(&x[k], eps, energy); math.Abs(fd-gx[k]) > tol*math.Max(1, math.Abs(fd)) {
					t.Errorf("∂U/∂x[%d] = %.10g, central difference %.10g", k, gx[k], fd)
				}
			}
			for ti := range p.Tensors {
				tn := &p.Tensors[ti]
				for i := 0; i < 2; i++ {
					j := rng.IntN(len(tn.Data))
					if fd := centralDiff(&tn.Data[j], eps, energy); math.Abs(fd-gt[ti][j]) > tol*math.Max(1, math.Abs(fd)) {
						t.Errorf("∂U/∂%s[%d] = %.10g, central difference %.10g", tn.Name, j, gt[ti][j], fd)
					}
				}
			}
		})
	}
}

// One convolution worked by hand fixes the padding and stride convention:
// the image 1..9 (3×3), padded by 1 and read by a 2×2 filter [[1,2],[3,4]]
// with stride 2, gives the windows [[0,0],[0,1]], [[0,0],[2,3]],
// [[0,4],[0,7]], [[5,6],[8,9]]: 4, 18, 36, 77, plus the bias 0.5.
func TestConvHandWorked(t *testing.T) {
	spec := Spec{Family: Conv, Dim: 9, InputShape: []int{1, 3, 3}, BaseStd: 1, Activation: SiLU,
		Conv: []ConvLayer{{Out: 1, Kernel: 2, Stride: 2, Pad: 1, Activation: Identity}}}
	p, err := NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Get("cw0").Data, []float64{1, 2, 3, 4})
	p.Get("cb0").Data[0] = 0.5
	copy(p.Get("w0").Data, []float64{1, -1, 0.5, 2})
	p.Get("b0").Data[0] = 0.25
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	// f = 4.5 − 18.5 + 0.5·36.5 + 2·77.5 + 0.25 = 159.5; |x|²/2 = 142.5
	g := make([]float64, 9)
	if u := p.Energy(x, g); u != 302 {
		t.Errorf("U = %v, want 302", u)
	}
	// ∂f/∂x: each pixel is in exactly one window (stride 2 = kernel 2), at
	// filter position (row, col) = pixel position + 1 − 2·window, times that
	// window's output weight; plus x from the base
	want := []float64{
		1 + 1*4, 2 - 1*3, 3 - 1*4,
		4 + 0.5*2, 5 + 2*1, 6 + 2*2,
		7 + 0.5*4, 8 + 2*3, 9 + 2*4,
	}
	for k := range want {
		if g[k] != want[k] {
			t.Errorf("∂U/∂x = %v, want %v", g, want)
			break
		}
	}
}

func TestActivateSlope(t *testing.T) {
	for _, c := range []struct {
		act       Activation
		slope     float64
		v, y, dy  float64
		viaPlain  bool // Activate gives the same (default slope)
		plainOnly bool
	}{
		{LeakyReLU, 0.1, -2, -0.2, 0.1, false, false},
		{LeakyReLU, 0.1, 3, 3, 1, false, false},
		{LeakyReLU, 0.1, 0, 0, 1, false, false},
		{LeakyReLU, DefaultLeakySlope, -1.5, -0.3, 0.2, true, false},
		{Identity, 0, -1.25, -1.25, 1, true, false},
		{Tanh, 0.7, 0.5, math.Tanh(0.5), 1 - math.Tanh(0.5)*math.Tanh(0.5), true, false},
	} {
		y, dy := ActivateSlope(c.act, c.slope, c.v)
		if math.Abs(y-c.y) > 1e-15 || math.Abs(dy-c.dy) > 1e-15 {
			t.Errorf("ActivateSlope(%s, %v, %v) = %v, %v; want %v, %v", c.act, c.slope, c.v, y, dy, c.y, c.dy)
		}
		if c.viaPlain {
			if y2, dy2 := Activate(c.act, c.v); y2 != y || dy2 != dy {
				t.Errorf("Activate(%s, %v) = %v, %v; ActivateSlope gives %v, %v", c.act, c.v, y2, dy2, y, dy)
			}
		}
	}
	// derivatives against central differences, away from LeakyReLU's kink
	for _, act := range []Activation{SiLU, Softplus, Tanh, LeakyReLU, Identity} {
		for _, v := range []float64{-3.1, -0.4, 0.3, 2.2, 40} {
			_, dy := ActivateSlope(act, 0.15, v)
			f := func(v float64) float64 { y, _ := ActivateSlope(act, 0.15, v); return y }
			if fd := (f(v+1e-6) - f(v-1e-6)) / 2e-6; math.Abs(fd-dy) > 1e-8 {
				t.Errorf("%s′(%v) = %v, central difference %v", act, v, dy, fd)
			}
		}
	}
}

// docs/METHOD.md §3: with the last layer zero, ρθ0 = N(μ0, σ0²I) exactly.
func TestConvInitIsBaseGaussian(t *testing.T) {
	for _, c := range append([]struct {
		name string
		spec Spec
	}{{"mnist", MNISTConvSpec()}, {"cifar", CIFARConvSpec()}}, convCases...) {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			p, err := Init(s, rand.New(rand.NewPCG(2, 2)))
			if err != nil {
				t.Fatal(err)
			}
			lin := s.LinearLayers()
			last := len(lin) - 2
			sh := s.ConvShapes()
			for _, tn := range p.Tensors {
				lim := 0.0 // 0: must be all zero (biases, the last layer)
				var idx int
				if _, err := fmt.Sscanf(tn.Name, "cw%d", &idx); err == nil {
					l := s.Conv[idx]
					lim = math.Sqrt(6 / float64(sh[idx][0]*l.Kernel*l.Kernel)) // He uniform
				} else if _, err := fmt.Sscanf(tn.Name, "w%d", &idx); err == nil && idx != last {
					lim = math.Sqrt(6 / float64(lin[idx]+lin[idx+1])) // Glorot uniform
				}
				nonzero := slices.ContainsFunc(tn.Data, func(v float64) bool { return v != 0 })
				if lim == 0 && nonzero || lim > 0 && !nonzero {
					t.Errorf("%s: non-zero values %v, want %v", tn.Name, nonzero, lim > 0)
				}
				for _, v := range tn.Data {
					if math.Abs(v) > lim {
						t.Fatalf("%s holds %v outside ±%v", tn.Name, v, lim)
					}
				}
			}
			d := float64(s.Dim)
			want := 0.5 * d * math.Log(2*math.Pi*s.BaseStd*s.BaseStd)
			if logZ, ok := p.ExactLogZ(); !ok || math.Abs(logZ-want) > 1e-12*math.Abs(want) {
				t.Errorf("log Z at init = %v (%v), want %v", logZ, ok, want)
			}
			rng := rand.New(rand.NewPCG(3, 3))
			x := make([]float64, s.Dim)
			g := make([]float64, s.Dim)
			mu := s.Mu0()
			for k := range x {
				x[k] = mu[k] + s.BaseStd*rng.NormFloat64()
			}
			base := 0.0
			for k := range x {
				base += (x[k] - mu[k]) * (x[k] - mu[k]) / (2 * s.BaseStd * s.BaseStd)
			}
			if u := p.Energy(x, g); math.Abs(u-base) > 1e-12*base {
				t.Errorf("U at init = %v, base %v", u, base)
			}
			for k := range x {
				if w := (x[k] - mu[k]) / (s.BaseStd * s.BaseStd); math.Abs(g[k]-w) > 1e-12*math.Max(1, math.Abs(w)) {
					t.Fatalf("∂U/∂x[%d] at init = %v, base %v", k, g[k], w)
				}
			}
			// the last bias shifts U and log Z; a non-zero last weight ends the closed form
			p.Get(fmt.Sprintf("b%d", last)).Data[0] = 0.75
			if logZ, ok := p.ExactLogZ(); !ok || math.Abs(logZ-(want-0.75)) > 1e-12*math.Abs(want) {
				t.Errorf("log Z with last bias 0.75 = %v (%v), want %v", logZ, ok, want-0.75)
			}
			p.Get(fmt.Sprintf("w%d", last)).Data[0] = 1e-3
			if _, ok := p.ExactLogZ(); ok {
				t.Errorf("log Z claimed known with a non-zero last layer")
			}
			if _, ok := p.Latent(); ok {
				t.Errorf("a conv model has no latent reduction")
			}
		})
	}
	if _, err := InitConv(Spec{Family: MLP, Dim: 2, Hidden: []int{2}, Activation: SiLU, BaseStd: 1}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("InitConv accepted an MLP spec")
	}
	if _, err := Init(Spec{Family: GMM, Dim: 2, Modes: 2}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("Init accepted a GMM spec")
	}
}

// The presets of docs/METHOD.md §5.2 and §5.3 have the documented shapes.
func TestConvPresets(t *testing.T) {
	for _, c := range []struct {
		name    string
		spec    Spec
		shapes  [][3]int
		linear  []int
		flat    int
		nParams int
		macs    int
	}{
		{"mnist", MNISTConvSpec(), [][3]int{{1, 28, 28}, {16, 16, 16}, {32, 8, 8}, {64, 4, 4}, {64, 2, 2}}, []int{256, 64, 1}, 256,
			16*1*25 + 16 + 32*16*9 + 32 + 64*32*9 + 64 + 64*64*9 + 64 + 256*64 + 64 + 64 + 1,
			16*16*16*1*25 + 32*8*8*16*9 + 64*4*4*32*9 + 64*2*2*64*9 + 256*64 + 64},
		{"cifar", CIFARConvSpec(), [][3]int{{3, 32, 32}, {64, 32, 32}, {128, 16, 16}, {256, 8, 8}, {512, 4, 4}, {1, 1, 1}}, []int{1, 1}, 1,
			64*3*9 + 64 + 128*64*16 + 128 + 256*128*16 + 256 + 512*256*16 + 512 + 512*16 + 1 + 1 + 1,
			64*32*32*3*9 + 128*16*16*64*16 + 256*8*8*128*16 + 512*4*4*256*16 + 1*1*1*512*16 + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := s.ConvShapes(); !slices.Equal(got, c.shapes) {
				t.Errorf("ConvShapes = %v, want %v", got, c.shapes)
			}
			if s.FlatDim() != c.flat || !slices.Equal(s.LinearLayers(), c.linear) {
				t.Errorf("FlatDim %d, LinearLayers %v; want %d, %v", s.FlatDim(), s.LinearLayers(), c.flat, c.linear)
			}
			if !slices.Equal(s.DataShape(), c.shapes[0][:]) || s.Dim != c.shapes[0][0]*c.shapes[0][1]*c.shapes[0][2] {
				t.Errorf("DataShape %v, Dim %d", s.DataShape(), s.Dim)
			}
			if s.NumParams() != c.nParams {
				t.Errorf("NumParams = %d, want %d", s.NumParams(), c.nParams)
			}
			if s.MACs() != c.macs {
				t.Errorf("MACs = %d, want %d", s.MACs(), c.macs)
			}
		})
	}
}

// MACs of the other families: the formulas serving used before conv.
func TestSpecMACs(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want int
	}{
		{Spec{Family: MLP, Dim: 3, Hidden: []int{4, 5}}, 3*4 + 4*5 + 5*1},
		{Spec{Family: GMM, Dim: 3, Modes: 4}, 12},
		{Spec{Family: Conv, Dim: 9, InputShape: []int{1, 3, 3}, Conv: []ConvLayer{{Out: 2, Kernel: 2, Stride: 2, Pad: 1}}, Hidden: []int{3}}, 2*2*2*1*4 + 8*3 + 3},
	} {
		if got := c.spec.MACs(); got != c.want {
			t.Errorf("%s MACs = %d, want %d", c.spec.Family, got, c.want)
		}
	}
}
