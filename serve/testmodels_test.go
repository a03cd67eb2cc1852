package serve

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// quietLog discards log lines in tests.
var quietLog = slog.New(slog.DiscardHandler)

// needORT initialises ONNX Runtime and fails (never skips) the test when the
// library is missing: CI installs it.
func needORT(t testing.TB) {
	t.Helper()
	if _, err := ortlib.Init(""); err != nil {
		t.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
}

// gaussian describes U(x) = ½|x − a|² + z (a GMM with one mode), so that
// ρ = N(a, I) and log Z = (d/2)·log 2π − z, exported with a base Gaussian
// N(mu0, sd0²I) different from ρ.
type gaussian struct {
	a        []float64
	z        float64
	mu0      []float64
	sd0      float64
	h        float64
	min, max float64
}

func (g gaussian) logZ() float64 {
	return 0.5*float64(len(g.a))*math.Log(2*math.Pi) - g.z
}

// build exports the Gaussian model with package export.
func (g gaussian) build(t testing.TB) []byte {
	t.Helper()
	d := len(g.a)
	p, err := models.NewParams(models.Spec{Family: models.GMM, Dim: d, Modes: 1, BaseMean: g.mu0, BaseStd: g.sd0})
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Get("means").Data, g.a)
	p.Get("log_mass").Data[0] = g.z
	b, err := export.Build(p, models.TrainingInfo{Method: "test", StepSize: g.h, LogZEstimate: g.logZ(), ConfigDigest: "test", DataMin: g.min, DataMax: g.max})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes b under dir and returns the path; a .onnx file is
// sealed as jarzyn-export seals it (models.WriteSeal).
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".onnx") {
		if err := models.WriteSeal(p, b); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// testGaussian is the standard 2-D Gaussian test model: ρ = N((1, −2), I),
// z = 0.7, base N((−1, 0.5), 1.5²I).
var testGaussian = gaussian{a: []float64{1, -2}, z: 0.7, mu0: []float64{-1, 0.5}, sd0: 1.5, h: 0.05, min: -4, max: 4}

// loadGaussian writes and loads the Gaussian model.
func loadGaussian(t testing.TB, g gaussian) *Model {
	t.Helper()
	needORT(t)
	path := writeFile(t, t.TempDir(), "model.onnx", g.build(t))
	m, err := LoadModel(path, LoadOptions{Name: "gauss", Version: "1", Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// mlpParams returns a perceptron energy with random nonzero weights: hidden
// [H, H], SiLU, base N(0, I).
func mlpParams(t testing.TB, d, h int, seed uint64) *models.Params {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	spec := models.Spec{Family: models.MLP, Dim: d, Hidden: []int{h, h}, Activation: models.SiLU, BaseStd: 1}
	p, err := models.InitMLP(spec, rng)
	if err != nil {
		t.Fatal(err)
	}
	last := p.Get("w2")
	for j := range last.Data {
		last.Data[j] = 0.1 * rng.NormFloat64()
	}
	return p
}

// mlpModel exports an MLP (see mlpParams) and loads it.
func mlpModel(t testing.TB, d, h int, threads int) *Model {
	t.Helper()
	needORT(t)
	b, err := export.Build(mlpParams(t, d, h, 1), models.TrainingInfo{Method: "test", StepSize: 0.01, LogZEstimate: math.NaN(), DataMin: -1, DataMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, t.TempDir(), "mlp.onnx", b)
	m, err := LoadModel(path, LoadOptions{Name: "mlp", Version: "1", Threads: threads, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// rawModel is a hand-written ONNX model for signatures and metadata that
// package export never produces: U(x) = Σx², ∇U = 2x over an input of any
// name, element type and shape, with arbitrary metadata.
type rawModel struct {
	input        string
	elemType     int   // 1 = float, 7 = int64
	shape        []int // data shape (after the batch dimension)
	energy, grad string
	meta         map[string]string
}

// jarzynMeta returns complete jarzyn metadata for a data shape.
func jarzynMeta(shape []int) map[string]string {
	d := 1
	js := "["
	for i, s := range shape {
		d *= s
		if i > 0 {
			js += ","
		}
		js += strconv.Itoa(s)
	}
	js += "]"
	mean := "["
	for i := 0; i < d; i++ {
		if i > 0 {
			mean += ","
		}
		mean += "0"
	}
	mean += "]"
	return map[string]string{
		"jarzyn.format_version": "1", "jarzyn.family": "test", "jarzyn.data_shape": js,
		"jarzyn.base_mean": mean, "jarzyn.base_std": "1", "jarzyn.data_range": "[-1,1]", "jarzyn.step_size": "0.01",
	}
}

func (r rawModel) marshal() []byte {
	str := func(b []byte, n protowire.Number, s string) []byte {
		b = protowire.AppendTag(b, n, protowire.BytesType)
		return protowire.AppendString(b, s)
	}
	msg := func(b []byte, n protowire.Number, m []byte) []byte {
		b = protowire.AppendTag(b, n, protowire.BytesType)
		return protowire.AppendBytes(b, m)
	}
	vint := func(b []byte, n protowire.Number, v uint64) []byte {
		b = protowire.AppendTag(b, n, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	valueInfo := func(name string, elem int, dims []int) []byte {
		var shape []byte
		shape = msg(shape, 1, str(nil, 2, "batch"))
		for _, d := range dims {
			shape = msg(shape, 1, vint(nil, 1, uint64(d)))
		}
		tt := vint(nil, 1, uint64(elem))
		tt = msg(tt, 2, shape)
		v := str(nil, 1, name)
		return msg(v, 2, msg(nil, 1, tt))
	}
	node := func(op string, ins []string, out string, attrs ...[]byte) []byte {
		var n []byte
		for _, in := range ins {
			n = str(n, 1, in)
		}
		n = str(n, 2, out)
		n = str(n, 3, out+"_node")
		n = str(n, 4, op)
		for _, a := range attrs {
			n = msg(n, 5, a)
		}
		return n
	}
	axes := make([]byte, 0)
	axes = str(axes, 1, "axes")
	axes = vint(axes, 20, 7) // INTS
	for k := range r.shape {
		axes = vint(axes, 8, uint64(k+1))
	}
	keep := vint(str(nil, 1, "keepdims"), 20, 2) // INT
	keep = vint(keep, 3, 0)
	var g []byte
	g = msg(g, 1, node("ReduceSumSquare", []string{r.input}, r.energy, axes, keep))
	g = msg(g, 1, node("Add", []string{r.input, r.input}, r.grad))
	g = str(g, 2, "raw")
	g = msg(g, 11, valueInfo(r.input, r.elemType, r.shape))
	g = msg(g, 12, valueInfo(r.energy, r.elemType, nil))
	g = msg(g, 12, valueInfo(r.grad, r.elemType, r.shape))
	var m []byte
	m = vint(m, 1, 7) // IR version 7
	m = str(m, 2, "serve-test")
	m = vint(m, 5, 1)
	m = msg(m, 7, g)
	m = msg(m, 8, vint(nil, 2, 13)) // opset 13
	for k, v := range r.meta {
		m = msg(m, 14, str(str(nil, 1, k), 2, v))
	}
	return m
}

// goodRaw is a valid jarzyn model of the given data shape.
func goodRaw(shape ...int) rawModel {
	return rawModel{input: "x", elemType: 1, shape: shape, energy: "energy", grad: "grad", meta: jarzynMeta(shape)}
}
