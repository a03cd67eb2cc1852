package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// Reference evaluates U and ∇ₓU of p at n points x (n×d, row-major) in the
// given dtype; train.EvalEnergy has this signature.
type Reference func(p *models.Params, x []float64, n int, dtype string) (energy, grad []float64, err error)

// ModelsReference is the float64 reference of package models (dtype is ignored).
func ModelsReference(p *models.Params, x []float64, n int, _ string) (energy, grad []float64, err error) {
	d := p.Spec.Dim
	if n <= 0 || len(x) != n*d {
		return nil, nil, fmt.Errorf("export: reference got %d values for %d points of dim %d", len(x), n, d)
	}
	energy, grad = make([]float64, n), make([]float64, n*d)
	for i := 0; i < n; i++ {
		energy[i] = p.Energy(x[i*d:(i+1)*d], grad[i*d:(i+1)*d])
	}
	return energy, grad, nil
}

// WalkersSection is the float64 container section (n×d) whose rows, when
// present, serve as data-like check inputs.
const WalkersSection = "walkers"

// Options configures Run.
type Options struct {
	// RunDir is a training run directory; the parameters are read from
	// RunDir/model.weights unless Checkpoint is set.
	RunDir string
	// Checkpoint is a weights or checkpoint file to export instead.
	Checkpoint string
	// Out is the ONNX file to write.
	Out string
	// ORTLib is the ONNX Runtime library; "" searches as ortlib.Find does.
	ORTLib string
	// N is the number of check inputs. The default value is 1024.
	N int
	// Seed seeds the check inputs. The default value is 1.
	Seed uint64
	// Reference computes the numbers the model must match. The default
	// value is ModelsReference.
	Reference Reference
	// ReferenceName names Reference in messages. The default value is
	// "models float64 reference".
	ReferenceName string
	// DType is passed to Reference. The default value is "float32".
	DType string
}

// Result reports what Run wrote and how well it matched.
type Result struct {
	Out                string
	Source             string
	Spec               models.Spec
	Bytes              int
	N                  int
	DataLike           string // where the data-like half of the inputs came from
	Reference          string
	EnergyErr, GradErr float64
	// LatentOut is the latent model written beside Out (models.LatentPath), "" when
	// the model has no latent reduction; LatentRank is its r, and the errors
	// are its parity against the same reference.
	LatentOut                      string
	LatentRank                     int
	LatentEnergyErr, LatentGradErr float64
}

func (o *Options) defaults() error {
	if o.Out == "" {
		return errors.New("export: an output file (--out) is required")
	}
	if o.RunDir == "" && o.Checkpoint == "" {
		return errors.New("export: a run directory (--run) or a checkpoint (--checkpoint) is required")
	}
	if o.N == 0 {
		o.N = 1024
	}
	if o.N < 2 {
		return fmt.Errorf("export: the number of check inputs must be ≥ 2, got %d", o.N)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Reference == nil {
		o.Reference = ModelsReference
		if o.ReferenceName == "" {
			o.ReferenceName = "models float64 reference"
		}
	}
	if o.ReferenceName == "" {
		o.ReferenceName = "reference"
	}
	if o.DType == "" {
		o.DType = "float32"
	}
	return nil
}

// Run exports a trained model: it reads the parameters and metadata, builds
// the ONNX model, evaluates it with ONNX Runtime on N inputs (half from the
// base Gaussian, half data-like: rows of the file's "walkers" section if it
// has one, else uniform in [data_min, data_max]) and compares energy and
// gradient with o.Reference. Only when both relative errors are within
// Tolerance is the model written to o.Out (atomically: a temporary file
// renamed into place), sealed by o.Out+".sha256" (its SHA-256, which
// jarzyn-serve checks at load; see models.VerifySeal); otherwise o.Out is
// left as it was and the error reports both numbers. The latent model is
// written and sealed the same way.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if _, err := ortlib.Init(o.ORTLib); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	src := o.Checkpoint
	if src == "" {
		src = filepath.Join(o.RunDir, models.WeightsFile)
	}
	c, err := models.ReadContainer(src)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	p, err := c.Params()
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", src, err)
	}
	info, err := models.TrainingInfoFromMeta(c.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, src)
	}
	model, err := Build(p, info)
	if err != nil {
		return nil, err
	}
	x, dataLike, err := checkInputs(c, p.Spec, info, o.N, o.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, src)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	refU, refG, err := o.Reference(p, x, o.N, o.DType)
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", o.ReferenceName, err)
	}
	res := &Result{Out: o.Out, Source: src, Spec: p.Spec, Bytes: len(model), N: o.N, DataLike: dataLike, Reference: o.ReferenceName}
	// The check runs on the bytes in memory (ONNX Runtime reads the model
	// from memory, so a file in place would add nothing): only a model that
	// passes is written, atomically, and a failed check leaves --out as it was.
	res.EnergyErr, res.GradErr, err = Parity(model, x, o.N, refU, refG)
	if err != nil {
		return nil, err
	}
	if !(res.EnergyErr <= Tolerance && res.GradErr <= Tolerance) {
		return nil, fmt.Errorf("export: parity check failed against the %s (%s) on %d inputs: max relative error energy %.3g, grad %.3g, tolerance %g; %s was not written",
			o.ReferenceName, o.DType, o.N, res.EnergyErr, res.GradErr, Tolerance, o.Out)
	}
	latent, err := buildLatent(p, info, model, x, refU, refG, o, res)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := writeSealed(o.Out, model); err != nil {
		return nil, err
	}
	lp := models.LatentPath(o.Out)
	if latent == nil {
		// a latent model left by an earlier export would not match this one
		for _, p := range []string{models.SealPath(lp), lp} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("export: removing the stale %s: %w", p, err)
			}
		}
		return res, nil
	}
	if err := writeSealed(lp, latent); err != nil {
		return nil, err
	}
	res.LatentOut = lp
	return res, nil
}

// writeSealed writes data to path and its seal (models.Seal: the SHA-256,
// in sha256sum's format) to path.sha256, each atomically. The old seal goes
// first, so that a crash at any point leaves a model with its own seal, or
// a model without one (which loads with a warning), never a model beside
// another model's seal (which would be refused).
func writeSealed(path string, data []byte) error {
	if err := os.Remove(models.SealPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("export: removing the old seal %s: %w", models.SealPath(path), err)
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := models.WriteSeal(path, data); err != nil {
		return fmt.Errorf("export: writing the seal of %s: %w", path, err)
	}
	return nil
}

// buildLatent builds and checks the latent model of an MLP whose first layer
// is narrower than its input (models.Latent), against the same reference
// values as the energy model; nil when there is none.
func buildLatent(p *models.Params, info models.TrainingInfo, model []byte, x, refU, refG []float64, o Options, res *Result) ([]byte, error) {
	l, ok := p.Latent()
	if !ok {
		return nil, nil
	}
	latent, err := BuildLatent(l, p, info, model)
	if err != nil {
		return nil, err
	}
	s, v, gv := latentReference(l, p.Spec, x, refU, refG, o.N)
	res.LatentRank = l.Rank
	res.LatentEnergyErr, res.LatentGradErr, err = Parity(latent, s, o.N, v, gv)
	if err != nil {
		return nil, err
	}
	if !(res.LatentEnergyErr <= Tolerance && res.LatentGradErr <= Tolerance) {
		return nil, fmt.Errorf("export: latent model parity check failed against the %s (%s) on %d inputs: max relative error energy %.3g, grad %.3g, tolerance %g; nothing was written",
			o.ReferenceName, o.DType, o.N, res.LatentEnergyErr, res.LatentGradErr, Tolerance)
	}
	return latent, nil
}

// checkInputs draws n check points: the first half from the base Gaussian,
// the rest data-like (see Run). It returns the points and a description of
// the data-like half.
func checkInputs(c *models.Container, s models.Spec, info models.TrainingInfo, n int, seed uint64) ([]float64, string, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6a61727a796e))
	d := s.Dim
	mean, std := baseOf(s)
	x := make([]float64, n*d)
	half := n / 2
	for i := 0; i < half*d; i++ {
		x[i] = mean[i%d] + std*rng.NormFloat64()
	}
	rest := x[half*d:]
	m := n - half
	if c.Has(WalkersSection) {
		w, err := c.Floats(WalkersSection)
		if err != nil {
			return nil, "", fmt.Errorf("export: %w", err)
		}
		if len(w) == 0 || len(w)%d != 0 {
			return nil, "", fmt.Errorf("export: section %q has %d values, not a positive multiple of dim %d", WalkersSection, len(w), d)
		}
		rows := len(w) / d
		var pick []int
		if rows >= m {
			pick = rng.Perm(rows)[:m]
		} else {
			for i := 0; i < m; i++ {
				pick = append(pick, rng.IntN(rows))
			}
		}
		for i, r := range pick {
			copy(rest[i*d:(i+1)*d], w[r*d:(r+1)*d])
		}
		for _, v := range rest {
			if !finite(v) {
				return nil, "", fmt.Errorf("export: section %q holds a non-finite value %v", WalkersSection, v)
			}
		}
		return x, fmt.Sprintf("%d of %d walkers", m, rows), nil
	}
	if info.DataMin < info.DataMax {
		for i := range rest {
			rest[i] = info.DataMin + (info.DataMax-info.DataMin)*rng.Float64()
		}
		return x, fmt.Sprintf("uniform in [%g, %g]", info.DataMin, info.DataMax), nil
	}
	for i := range rest {
		rest[i] = mean[i%d] + std*(6*rng.Float64()-3)
	}
	return x, "uniform in μ0 ± 3σ0 (no data range in the metadata)", nil
}

var _ Reference = ModelsReference
