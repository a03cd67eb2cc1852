package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/jarzyn/jarzyn/models"
)

// FusedDomain is the operator domain of the fused activation operators that
// jarzyn-serve registers with ONNX Runtime (internal/ortops).
const FusedDomain = "io.github.jarzyn"

// FusedSiLU is the fused operator SiLUDeriv(z) -> (silu(z), silu′(z)).
const FusedSiLU = "SiLUDeriv"

// FusedSiLUDot is the fused operator SiLUDerivDot(z, w) -> (silu′(z), f)
// with f = Σ_j silu(z_j)·w_j along the last axis (kept as [.., 1]).
const FusedSiLUDot = "SiLUDerivDot"

// FusedLinearSiLU is LinearSiLUDeriv(x, W, b) -> (silu(z), silu′(z)) with
// z = x·W + b not stored; BuildFused uses it for the first layer when
// d ≤ FusedSmallDim.
const FusedLinearSiLU = "LinearSiLUDeriv"

// FusedMulMatMulT is MulMatMulT(a, g, W, c, beta) -> (a ⊙ g)·Wᵀ + beta·c;
// BuildFused uses it for the gradient's last step when d ≤ FusedSmallDim.
const FusedMulMatMulT = "MulMatMulT"

// FusedSmallDim is the largest d for which BuildFused fuses the first
// layer's GEMM and the gradient's last GEMM with their elementwise
// neighbours (their cost is then one pass over [batch, H], like the
// elementwise step alone).
const FusedSmallDim = 8

// ErrNotFusable is returned by BuildFused for models it has no fused form of.
var ErrNotFusable = errors.New("export: no fused graph for this model")

// BuildFused returns the energy graph of Build (input "x", outputs "energy"
// and "grad", no metadata) for an MLP with SiLU activations, with each
// layer's activation and its derivative computed by one FusedSiLU node
// instead of five standard operators; the last hidden layer's FusedSiLUDot
// also replaces the output layer's GEMM. Only a process that registered the
// operator can run it (serve, on the CPU); exported files always hold the
// standard graph. Other models give ErrNotFusable.
func BuildFused(p *models.Params) ([]byte, error) { return buildFused(p, false) }

// BuildFusedGrad is BuildFused with the gradient alone (output "grad"): the
// energy, which plain Langevin steps never read, costs nothing.
func BuildFusedGrad(p *models.Params) ([]byte, error) { return buildFused(p, true) }

func buildFused(p *models.Params, gradOnly bool) ([]byte, error) {
	if p == nil || p.Spec.Family != models.MLP || p.Spec.Activation != models.SiLU {
		return nil, ErrNotFusable
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	s := p.Spec
	b := newBuilder("jarzyn_mlp_energy_fused", "Energy and gradient with fused SiLU operators.")
	b.fused, b.gradOnly = true, gradOnly
	batch := dim{param: BatchDim}
	b.input(models.InputX, "points, one per row", batch, dim{value: int64(s.Dim)})
	energyGraph(b, p, models.InputX)
	if !gradOnly {
		b.output(models.OutputEnergy, "U(x), one per row", batch)
	}
	b.output(models.OutputGrad, "∇ₓU(x), one row per point", batch, dim{value: int64(s.Dim)})
	g, err := b.graph()
	if err != nil {
		return nil, err
	}
	return fusedModel(g), nil
}

// fusedModel serializes g as a model importing ai.onnx and FusedDomain.
func fusedModel(g *graphProto) []byte {
	m := modelProto{
		irVersion:    IRVersion,
		opsets:       []opsetID{{domain: "", version: Opset}, {domain: FusedDomain, version: 1}},
		producerName: "jarzyn",
		graph:        g,
	}
	return m.marshal()
}

// ParamsFromModel reads the parameters of an MLP spec back from the
// initializers of an ONNX model written by Build or BuildLatent (float32, so
// each value is the float32 rounding of the trained one).
func ParamsFromModel(model []byte, spec models.Spec) (*models.Params, error) {
	if spec.Family != models.MLP {
		return nil, fmt.Errorf("export: reading parameters back needs an MLP, got %q", spec.Family)
	}
	p, err := models.NewParams(spec)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	inits, err := readInitializers(model)
	if err != nil {
		return nil, err
	}
	for i := range p.Tensors {
		t := &p.Tensors[i]
		name := "param/" + t.Name
		v, ok := inits[name]
		if !ok {
			return nil, fmt.Errorf("export: model has no initializer %s", name)
		}
		if len(v) != len(t.Data) {
			return nil, fmt.Errorf("export: initializer %s has %d values, want %d", name, len(v), len(t.Data))
		}
		for j, x := range v {
			t.Data[j] = float64(x)
		}
	}
	return p, nil
}

// readInitializers returns the float32 initializers (raw_data) of a model's
// main graph by name.
func readInitializers(model []byte) (map[string][]float32, error) {
	var graph []byte
	err := eachField(model, func(num protowire.Number, _ uint64, b []byte) error {
		if num == fModelGraph {
			graph = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if graph == nil {
		return nil, errors.New("export: model has no graph")
	}
	out := map[string][]float32{}
	err = eachField(graph, func(num protowire.Number, _ uint64, v []byte) error {
		if num != fGraphInitializer {
			return nil
		}
		var name string
		var dataType uint64
		var raw []byte
		err := eachField(v, func(num protowire.Number, x uint64, b []byte) error {
			switch num {
			case fTensorName:
				name = string(b)
			case fTensorDataType:
				dataType = x
			case fTensorRawData:
				raw = b
			}
			return nil
		})
		if err != nil {
			return err
		}
		if dataType == dtFloat && len(raw)%4 == 0 {
			f := make([]float32, len(raw)/4)
			for i := range f {
				f[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			out[name] = f
		}
		return nil
	})
	return out, err
}

// eachField calls f on every field of message m in order: x holds a varint
// field's value or a fixed32 field's bits, b a length-delimited field's
// bytes; other wire types are skipped.
func eachField(m []byte, f func(num protowire.Number, x uint64, b []byte) error) error {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return fmt.Errorf("export: malformed ONNX protobuf: %v", protowire.ParseError(n))
		}
		m = m[n:]
		var x uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(m)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(m)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(m)
			x = uint64(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, m)
		}
		if n < 0 {
			return fmt.Errorf("export: malformed ONNX protobuf: %v", protowire.ParseError(n))
		}
		m = m[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType || typ == protowire.Fixed32Type {
			if err := f(num, x, b); err != nil {
				return err
			}
		}
	}
	return nil
}
