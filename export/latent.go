package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/jarzyn/jarzyn/models"
)

// BuildLatent exports the exact latent reduction l of p (models.Latent) as
// an ONNX model: input "x" float32 [batch, r] (latent points s), outputs
// "energy" [batch] = V(s), "grad" [batch, r] = ∇V(s) and "basis" [d, r] = Q.
// Its metadata describe V (an MLP in dim r with base mean 0 and the full
// model's σ0) with jarzyn.graph = latent and jarzyn.latent_of = the SHA-256
// of energyModel, the file built by Build that it reduces.
func BuildLatent(l *models.Latent, p *models.Params, info models.TrainingInfo, energyModel []byte) ([]byte, error) {
	info, err := prepare(l.Params, info)
	if err != nil {
		return nil, err
	}
	s := l.Params.Spec
	b := newBuilder("jarzyn_mlp_latent_energy",
		fmt.Sprintf("Latent energy V(s) and ∇V(s) of a jarzyn MLP (d=%d reduced to r=%d), and the basis Q.", l.Dim, l.Rank))
	batch := dim{param: BatchDim}
	b.input(models.InputX, "latent points s = (x − μ0)·Q, one per row", batch, dim{value: int64(l.Rank)})
	mlpGraph(b, l.Params, models.InputX)
	b.Identity(models.OutputBasis, b.floats("latent/basis", l.Basis, l.Dim, l.Rank))
	b.doc("Q: orthonormal columns spanning the range of the first layer's weights")
	b.output(models.OutputEnergy, "V(s), one per row", batch)
	b.output(models.OutputGrad, "∇V(s), one row per point", batch, dim{value: int64(l.Rank)})
	b.output(models.OutputBasis, "Q [d, r]: x = μ0 + s·Qᵀ + p with p·Q = 0", dim{value: int64(l.Dim)}, dim{value: int64(l.Rank)})
	sum := sha256.Sum256(energyModel)
	// the latent space has no data range of its own, and its log Z differs
	// from the full model's by the Gaussian factor of the other d − r axes
	info.DataMin, info.DataMax = 0, 0
	info.LogZEstimate = math.NaN()
	g, err := b.graph()
	if err != nil {
		return nil, err
	}
	meta := onnxMeta(s, info, models.GraphLatent)
	meta.LatentOf = hex.EncodeToString(sum[:])
	return marshalModel(g, s, info, meta)
}

// latentReference turns reference values of the full model at points x (n×d)
// into those of the latent model at s = (x − μ0)·Q: V(s) = U(x) − |p|²/(2σ0²)
// and ∇V(s) = ∇U(x)·Q (since p·Q = 0). It returns s, V and ∇V.
func latentReference(l *models.Latent, full models.Spec, x, refU, refG []float64, n int) (s, v, gv []float64) {
	d, r := l.Dim, l.Rank
	mu := full.Mu0()
	inv := 1 / (l.Params.Spec.BaseStd * l.Params.Spec.BaseStd)
	s, v, gv = make([]float64, n*r), make([]float64, n), make([]float64, n*r)
	for i := 0; i < n; i++ {
		si, p := l.Split(x[i*d:(i+1)*d], mu)
		copy(s[i*r:], si)
		pn := 0.0
		for _, t := range p {
			pn += t * t
		}
		v[i] = refU[i] - 0.5*inv*pn
		for a := 0; a < r; a++ {
			sum := 0.0
			for k := 0; k < d; k++ {
				sum += refG[i*d+k] * l.Basis[k*r+a]
			}
			gv[i*r+a] = sum
		}
	}
	return s, v, gv
}

// Tensor names of the model BuildMatMul writes.
const (
	MatMulInput  = "x"
	MatMulOutput = "y"
)

// BuildMatMul returns the ONNX model of y = x·W for a fixed W [in, out]
// (float32, row-major): input "x" float32 [batch, in], initializer "W",
// output "y" [batch, out]. jarzyn-serve runs the latent sampler's maps
// between ℝᵈ and ℝʳ with it.
func BuildMatMul(w []float32, in, out int) ([]byte, error) {
	if len(w) != in*out {
		return nil, fmt.Errorf("export: matmul weights have %d values, want %d×%d", len(w), in, out)
	}
	b := newBuilder("jarzyn_projection", fmt.Sprintf("y = x·W, W fixed [%d, %d].", in, out))
	batch := dim{param: BatchDim}
	b.input(MatMulInput, "rows", batch, dim{value: int64(in)})
	w64 := make([]float64, len(w))
	for i, v := range w {
		w64[i] = float64(v)
	}
	b.MatMul(MatMulOutput, MatMulInput, b.floats("W", w64, in, out))
	b.output("y", "x·W", batch, dim{value: int64(out)})
	g, err := b.graph()
	if err != nil {
		return nil, err
	}
	m := modelProto{irVersion: IRVersion, opsets: []opsetID{{domain: "", version: Opset}}, producerName: "jarzyn", graph: g}
	return m.marshal(), nil
}
