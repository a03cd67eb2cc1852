package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// latentModel is the exact latent reduction of an MLP energy model
// (models.Latent): the model of V on ℝʳ and the basis Q [d, r] (row-major)
// with x = μ0 + s·Qᵀ + p, p·Q = 0.
type latentModel struct {
	m       *Model
	basis   []float32
	r       int
	project *linearMap // y ↦ y·Q
	lift    *linearMap // s ↦ s·Qᵀ
}

func (l *latentModel) close() error {
	l.project.close()
	l.lift.close()
	return l.m.Close()
}

// loadLatent loads the latent model beside the energy model at path (whose
// file holds data). It returns nil, with a log line saying why, when there is
// none or it cannot be used.
func loadLatent(path string, data []byte, full *ModelInfo, opt LoadOptions) *latentModel {
	lp := models.LatentPath(path)
	log := opt.logger()
	if _, err := os.Stat(lp); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lat, err := openLatent(lp, data, full, opt)
	if err != nil {
		log.Warn("latent model not used: sampling runs in the full dimension", "path", lp, "reason", err.Error())
		return nil
	}
	log.Info("latent model loaded: unweighted sampling runs in the latent space", "path", lp, "r", lat.r)
	return lat
}

func openLatent(lp string, energy []byte, full *ModelInfo, opt LoadOptions) (*latentModel, error) {
	m, data, err := loadModelFile(lp, opt, models.GraphLatent)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(energy)
	if want := hex.EncodeToString(sum[:]); m.Info.LatentOf != want {
		m.Close()
		return nil, fmt.Errorf("it belongs to another model file (%s=%s, this model's SHA-256 is %s); export again", models.KeyLatentOf, m.Info.LatentOf, want)
	}
	basis, d, err := readBasis(data, m.Info.Dim)
	if err == nil && (d != full.Dim || m.Info.BaseStd != full.BaseStd) {
		err = fmt.Errorf("it reduces a model with d=%d and σ0=%g, this one has d=%d and σ0=%g", d, m.Info.BaseStd, full.Dim, full.BaseStd)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	r := m.Info.Dim
	lat := &latentModel{m: m, basis: basis, r: r}
	qt := make([]float32, r*d)
	for k := 0; k < d; k++ {
		for a := 0; a < r; a++ {
			qt[a*d+k] = basis[k*r+a]
		}
	}
	lat.project, err = newLinearMap(basis, d, r, m.Lanes)
	if err == nil {
		lat.lift, err = newLinearMap(qt, r, d, m.Lanes)
	}
	if err != nil {
		lat.close()
		return nil, err
	}
	return lat, nil
}

// readBasis evaluates the basis output of the latent model held in data
// once and checks it: finite, with unit columns.
func readBasis(data []byte, r int) ([]float32, int, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, 0, err
	}
	defer so.Destroy()
	_ = so.SetIntraOpNumThreads(1)
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{models.InputX}, []string{models.OutputBasis}, so)
	if err != nil {
		return nil, 0, fmt.Errorf("no %s output: %v", models.OutputBasis, err)
	}
	defer sess.Destroy()
	x, err := ort.NewTensor(ort.NewShape(1, int64(r)), make([]float32, r))
	if err != nil {
		return nil, 0, err
	}
	defer x.Destroy()
	out := []ort.Value{nil}
	if err := sess.Run([]ort.Value{x}, out); err != nil {
		return nil, 0, fmt.Errorf("evaluating %s: %v", models.OutputBasis, err)
	}
	defer out[0].Destroy()
	t, ok := out[0].(*ort.Tensor[float32])
	shape := out[0].GetShape()
	if !ok || len(shape) != 2 || shape[1] != int64(r) || shape[0] < int64(r) {
		return nil, 0, fmt.Errorf("output %s has shape %v, want float32 [d, %d] with d ≥ %d", models.OutputBasis, shape, r, r)
	}
	d := int(shape[0])
	q := append([]float32(nil), t.GetData()...)
	norms := make([]float64, r)
	for i, v := range q {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, 0, fmt.Errorf("output %s holds %v", models.OutputBasis, v)
		}
		norms[i%r] += float64(v) * float64(v)
	}
	for a, n := range norms {
		if math.Abs(n-1) > 1e-4 {
			return nil, 0, fmt.Errorf("output %s: column %d has norm² %v, want 1", models.OutputBasis, a, n)
		}
	}
	return q, d, nil
}

// Derived seeds of the latent sampler's streams, apart from the chunk
// streams that draw the starting points from the seed itself.
const (
	latentSeedWalk   = 0x6c6174656e742d77 // the ULA noise in ℝʳ
	latentSeedNormal = 0x6c6174656e742d6e // the closed-form orthogonal part
)

// sampleLatent is Sample on an MLP with a latent model. With
// y = x − μ0 = s·Qᵀ + p, U(x) = V(s) + |p|²/(2σ0²) and likewise
// U_β(x) = V_β(s) + |p|²/(2σ0²) along the annealing path, so s and p are
// independent under every distribution involved:
//
//   - plain ULA on x is ULA on s with V plus, on p, the linear recursion
//     p ← a·p + √(2h)·ξ⊥ (a = 1 − h/σ0²), whose K-step law is Gaussian in
//     closed form: p_K = a^K·p_0 + b·ξ⊥ with b² = 2h·Σ_{j<K} a^{2j};
//   - weighted annealing runs on s with V_β and the same Jarzynski weights;
//     the p-factor of π_β is N(0, σ0²(I − QQᵀ)) for every β, so p is drawn
//     from it exactly, needs no weight, and log Z gains (d − r)/2·log 2πσ0².
//
// Either way p = b·ξ⊥ + a^K·p_0 (weighted: b = σ0, a^K = 0) with ξ⊥ the
// projection of a standard normal ζ off the range of Q, and
//
//	x = μ0 + y + (s − y·Q)·Qᵀ,  y = a^K·y_0 + b·ζ.
//
// Plain ULA has the law of K ULA steps in ℝᵈ from the same start; weighted
// runs target the same weighted distribution and log Z as in ℝᵈ. The walk
// runs in ℝʳ. Samples differ from a run in ℝᵈ with the same seed (the noise
// is drawn differently), not in distribution.
func sampleLatent(ctx context.Context, m *Model, lat *latentModel, cfg SampleConfig) (*Result, error) {
	start := time.Now()
	d, r, n := m.Info.Dim, lat.r, cfg.N
	h := cfg.StepSize
	sd := m.Info.BaseStd
	mu := m.Info.BaseMean
	noise := smc.NewNoise(n)
	pool := smc.NewPool(min(defaultWorkers(), smc.Chunks(n)))
	defer pool.Close()
	lc := cfg
	lc.Init, lc.Seed = InitBase, kernels.SplitMix64(cfg.Seed^latentSeedWalk)
	y := make([]float32, n*d) // y_0, then y
	var s0 []float32          // s_0 = y_0·Q (plain ULA)
	if !cfg.Weighted {
		// starting points in ℝᵈ, exactly as the walk in ℝᵈ draws them
		drawStart(y, n, &m.Info, cfg.Init, smc.DrawKey(cfg.Seed, 0), noise, pool)
		for i := range y {
			y[i] -= float32(mu[i%d])
		}
		s0 = make([]float32, n*r)
		if err := lat.project.apply(y, n, s0); err != nil {
			return nil, err
		}
	}
	res, err := sampleFull(ctx, lat.m, lc, s0)
	if err != nil {
		return nil, err
	}
	aK, b := 0.0, sd
	if !cfg.Weighted {
		a := 1 - h/(sd*sd)
		aK, b = 1, 0
		for j := 0; j < lc.TotalSteps(); j++ {
			b += 2 * h * aK * aK
			aK *= a
		}
		b = math.Sqrt(b)
	}
	zeta := make([]float32, n*d)
	zetaKey := kernels.SplitMix64(cfg.Seed ^ latentSeedNormal)
	pool.Run(func(w int) {
		first, end := pool.Share(w, 0, smc.Chunks(n))
		for c := first; c < end; c++ {
			lo, hi := smc.ChunkWalkerRange(c, n)
			kernels.Normal32(zeta[lo*d:hi*d], noise.Chunk(zetaKey, c).Uint64())
		}
	})
	fa, fb := float32(aK), float32(b)
	for i := range y {
		y[i] = fa*y[i] + fb*zeta[i]
	}
	zq := make([]float32, n*r)
	if err := lat.project.apply(zeta, n, zq); err != nil {
		return nil, err
	}
	t := res.Samples // s, overwritten by s − y·Q = s − a^K·s_0 − b·ζ·Q
	for i := range t {
		t[i] -= fb * zq[i]
		if s0 != nil {
			t[i] -= fa * s0[i]
		}
	}
	if err := lat.lift.apply(t, n, zeta); err != nil { // ζ's memory now holds t·Qᵀ
		return nil, err
	}
	for i := range y {
		y[i] += zeta[i] + float32(mu[i%d])
	}
	res.N, res.DataShape, res.Dim, res.Samples = n, append([]int(nil), m.Info.DataShape...), d, y
	res.DataMin, res.DataMax = m.Info.DataMin, m.Info.DataMax
	res.Seed, res.LatentDim = cfg.Seed, r
	if cfg.Weighted {
		res.LogZ += 0.5 * float64(d-r) * math.Log(2*math.Pi*sd*sd)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
