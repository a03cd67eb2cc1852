package serve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// A data-fitted base (model.base_fit pca, docs/METHOD.md §8, "A data-fitted
// Gaussian base"): the model's energy holds ½(x − μ0)ᵀΣ⁻¹(x − μ0) with
//
//	Σ = ε·I + V·diag(λ)·Vᵀ,  ε = σ0²,
//
// V's k orthonormal columns the rows v_j of Spec.BaseVectors. The sampler
// draws the base exactly, x = μ0 + Σ^{1/2}·ξ; anneals from it along
// U_β = (1 − β)·U_base + β·U with U_base's gradient Σ⁻¹(x − μ0) and
// log Z0 = (d/2)·log 2π + ½·log det Σ; and by default moves the walkers by
// preconditioned ULA with M = Σ (§8, "Preconditioned ULA"),
//
//	x ← x − h·M·∇U + √(2h)·M^{1/2}·ξ,
//
// whose drift of the base term is −h(x − μ0): h is no longer limited by ε.
// Annealing weighs the moves with smc's preconditioned increment (|g|² →
// gᵀMg), exact for any h. Every product with V runs on a chunk of walkers
// at a time (one GEMM each way), O(d·k) per walker.

// Precondition selects the matrix M of the sampler's Langevin moves.
type Precondition string

const (
	// PreconditionAuto is PreconditionBase for a model with a data-fitted
	// base and PreconditionNone otherwise.
	PreconditionAuto Precondition = "auto"
	// PreconditionNone is M = I: x ← x − h∇U + √(2h)ξ.
	PreconditionNone Precondition = "none"
	// PreconditionBase is M = Σ, the covariance of the model's data-fitted
	// base.
	PreconditionBase Precondition = "base"
)

// pcaBase is a model's data-fitted base N(μ0, Σ) in the forms the sampler
// uses. It is safe for concurrent use.
type pcaBase struct {
	d, k   int
	mu     []float64 // μ0
	eps    float64   // ε = σ0²
	v      []float64 // k×d: the rows v_j
	lambda []float64 // λ_j
	prec   []float64 // w_j = 1/(λ_j + ε) − 1/ε: Σ⁻¹ = I/ε + Σ_j w_j·v_j·v_jᵀ
	root   []float64 // √(λ_j + ε) − √ε: Σ^{1/2} = √ε·I + Σ_j root_j·v_j·v_jᵀ
	sqrtE  float64   // √ε
	sqrtL  []float64 // √λ_j
	v32    []float32 // the rows v_j in float32, for plain ULA's move
	logZ   float64   // log Z0
	// m is Σ as smc's preconditioner, for the annealing's population.
	m       *smc.Preconditioner
	scratch sync.Pool // *pcaScratch
}

// pcaScratch is the working memory of one chunk of walkers.
type pcaScratch struct {
	r, y     []float64 // ChunkWalkers×d
	c        []float64 // ChunkWalkers×k
	c32, y32 []float32 // the same in float32, for move
}

// hasPCABase reports whether the model's base is a data-fitted N(μ0, Σ).
func hasPCABase(info *ModelInfo) bool { return info.Spec != nil && info.Spec.BaseRank() > 0 }

// newPCABase returns the base of spec, or nil when spec is nil or its base
// is isotropic. It fails (naming the field) for a base whose ε = σ0² is not
// a finite positive number or that smc.NewPreconditioner refuses.
func newPCABase(spec *models.Spec) (*pcaBase, error) {
	if spec == nil || spec.BaseRank() == 0 {
		return nil, nil
	}
	eps := spec.BaseStd * spec.BaseStd
	if !(eps > 0) || math.IsInf(eps, 0) {
		return nil, fmt.Errorf("serve: the model's base_std %v gives no finite ε = σ0² > 0", spec.BaseStd)
	}
	m, err := smc.NewPreconditioner(spec.Dim, eps, spec.BaseVectors, spec.BaseVariances)
	if err != nil {
		return nil, fmt.Errorf("serve: the model's base (base_vectors, base_variances): %w", err)
	}
	b := &pcaBase{d: spec.Dim, k: spec.BaseRank(), mu: spec.Mu0(), eps: eps, v: spec.BaseVectors,
		lambda: spec.BaseVariances, prec: spec.BasePrecisionWeights(), root: make([]float64, spec.BaseRank()),
		sqrtE: math.Sqrt(eps), logZ: spec.BaseLogZ(), m: m}
	b.sqrtL = make([]float64, b.k)
	for j, l := range b.lambda {
		b.root[j] = math.Sqrt(l+eps) - b.sqrtE
		b.sqrtL[j] = math.Sqrt(l)
	}
	b.v32 = make([]float32, len(b.v))
	for i, v := range b.v {
		b.v32[i] = float32(v)
	}
	b.scratch.New = func() any {
		return &pcaScratch{r: make([]float64, smc.ChunkWalkers*b.d), c: make([]float64, smc.ChunkWalkers*b.k),
			y: make([]float64, smc.ChunkWalkers*b.d), c32: make([]float32, smc.ChunkWalkers*b.k), y32: make([]float32, smc.ChunkWalkers*b.d)}
	}
	return b, nil
}

// mustPCABase is newPCABase for a model that checkBase accepted (the same
// construction succeeded there).
func mustPCABase(spec *models.Spec) *pcaBase {
	b, err := newPCABase(spec)
	if err != nil {
		panic(err)
	}
	return b
}

// project writes C = R·Vᵀ (rows×k) for rows×d values R.
func (b *pcaBase) project(r []float64, rows int, c []float64) {
	gonum.Implementation{}.Dgemm(blas.NoTrans, blas.Trans, rows, b.k, b.d, 1, r, b.d, b.v, b.d, 0, c, b.k)
}

// lift writes Y = A·V (rows×d) for rows×k coefficients A.
func (b *pcaBase) lift(a []float64, rows int, y []float64) {
	gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, rows, b.d, b.k, 1, a, b.k, b.v, b.d, 0, y, b.d)
}

// sample turns rows of standard normal draws ξ (at most ChunkWalkers rows
// of d values) into exact base samples μ0 + Σ^{1/2}·ξ in place.
func (b *pcaBase) sample(x []float32) {
	d, k := b.d, b.k
	rows := len(x) / d
	s := b.getScratch()
	defer b.putScratch(s)
	xi, c, y := s.r[:rows*d], s.c[:rows*k], s.y[:rows*d]
	for i, v := range x {
		xi[i] = float64(v)
	}
	b.project(xi, rows, c)
	for i := range c {
		c[i] *= b.root[i%k]
	}
	b.lift(c, rows, y)
	for i, v := range xi {
		x[i] = float32(b.mu[i%d] + b.sqrtE*v + y[i])
	}
}

// getScratch and putScratch lend a chunk's working memory.
func (b *pcaBase) getScratch() *pcaScratch  { return b.scratch.Get().(*pcaScratch) }
func (b *pcaBase) putScratch(s *pcaScratch) { b.scratch.Put(s) }

// energy writes, for rows of positions x (at most ChunkWalkers), the base
// term U_base = ½(x − μ0)ᵀΣ⁻¹(x − μ0) into u and its gradient Σ⁻¹(x − μ0)
// into s.y (rows×d), with c_j = ⟨v_j, x − μ0⟩:
//
//	U_base = |x − μ0|²/(2ε) + ½·Σ_j w_j·c_j²,  Σ⁻¹(x − μ0) = (x − μ0)/ε + Σ_j w_j·c_j·v_j.
func (b *pcaBase) energy(s *pcaScratch, x []float32, u []float64) {
	d, k := b.d, b.k
	rows := len(x) / d
	t, c, grad := s.r[:rows*d], s.c[:rows*k], s.y[:rows*d]
	for i, v := range x {
		t[i] = float64(v) - b.mu[i%d]
	}
	b.project(t, rows, c)
	inv := 1 / b.eps
	for i := 0; i < rows; i++ {
		ui := 0.0
		for _, v := range t[i*d : (i+1)*d] {
			ui += v * v
		}
		ui *= 0.5 * inv
		ci := c[i*k : (i+1)*k]
		for j, w := range b.prec {
			ui += 0.5 * w * ci[j] * ci[j]
			ci[j] *= w
		}
		u[i] = ui
	}
	b.lift(c, rows, grad)
	for i, v := range t {
		grad[i] += v * inv
	}
}

// move moves rows of walkers x (at most ChunkWalkers) with gradients g by
// one preconditioned ULA step with M = Σ, x ← x − h·Σ·g + √(2h)·ζ with
// ζ ∼ N(0, Σ) drawn as √ε·ξ + V·(√λ ⊙ η), ξ ∼ N(0, I_d) and η ∼ N(0, I_k)
// independent (the same law as Σ^{1/2}·ξ at a k·d-fold lower cost):
//
//	x ← [x − hε·g + √(2hε)·ξ] + V·[−h·λ ⊙ (Vᵀg) + √(2h)·√λ ⊙ η].
//
// The bracket is one pass of kernels.ULA32 at step hε, keyed by rng's first
// Uint64; η comes from rng.NormFloat64, row by row. The products with V run
// in float32 (the positions' precision): plain ULA carries no weights.
// Weighted annealing moves with smc's float64 kernel instead.
func (b *pcaBase) move(x, g []float32, h float64, rng *rand.Rand) {
	d, k := b.d, b.k
	rows := len(x) / d
	s := b.getScratch()
	defer b.putScratch(s)
	key := rng.Uint64()
	c, y := s.c32[:rows*k], s.y32[:rows*d]
	b.project32(g[:rows*d], rows, c)
	s2h := math.Sqrt(2 * h)
	for i := range c {
		j := i % k
		c[i] = float32(-h*b.lambda[j]*float64(c[i]) + s2h*b.sqrtL[j]*rng.NormFloat64())
	}
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, rows, d, k, 1, c, k, b.v32, d, 0, y, d)
	kernels.ULA32(x, g[:rows*d], float32(h*b.eps), float32(s2h*b.sqrtE), key)
	for i, v := range y {
		x[i] += v
	}
}

// project32 writes C = R·Vᵀ (rows×k) for rows×d values R, in float32.
func (b *pcaBase) project32(r []float32, rows int, c []float32) {
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.Trans, rows, b.k, b.d, 1, r, b.d, b.v32, b.d, 0, c, b.k)
}

// checkBase checks the settings that depend on the model's base:
// precondition base needs a data-fitted base (for an isotropic N(μ0, σ0²I),
// M = σ0²·I is plain ULA at step h·σ0²), and a data-fitted base must be one
// the sampler can use. Errors are *FieldError.
func checkBase(info ModelInfo, cfg SampleConfig) error {
	if !hasPCABase(&info) {
		if cfg.Precondition == PreconditionBase {
			return fieldErr("precondition", "base needs a model with a data-fitted base N(μ0, Σ) (model.base_fit pca); this model's base is N(μ0, σ0²I), where M = σ0²I is plain ULA with step h·σ0²: use none or auto")
		}
		return nil
	}
	if _, err := newPCABase(info.Spec); err != nil {
		return fieldErr("model", "%s", trimServe(err))
	}
	return nil
}

// resolvePrecondition is cfg's preconditioner for the model: none or base
// (auto: base for a data-fitted base).
func resolvePrecondition(info *ModelInfo, p Precondition) Precondition {
	if p == PreconditionNone || p == PreconditionBase {
		return p
	}
	if hasPCABase(info) {
		return PreconditionBase
	}
	return PreconditionNone
}

// BaseSummary describes a data-fitted base without its k×d vectors (1.6 MB
// of JSON at k = 100, d = 784): what model metadata shows of it.
type BaseSummary struct {
	// Rank is k, the number of principal directions.
	Rank int `json:"rank"`
	// Eps is ε = σ0², the variance added along them and left in every
	// other direction.
	Eps float64 `json:"eps"`
}

// summariseBase returns the model's spec with its base vectors left out
// (nil when the model carries no spec) and, for a data-fitted base, its
// summary (else nil).
func summariseBase(info *ModelInfo) (*models.Spec, *BaseSummary) {
	if info.Spec == nil {
		return nil, nil
	}
	spec := *info.Spec
	spec.BaseVectors = nil
	if spec.BaseRank() == 0 {
		return &spec, nil
	}
	return &spec, &BaseSummary{Rank: spec.BaseRank(), Eps: spec.BaseStd * spec.BaseStd}
}

// describeBase is the base distribution in words, for Model.Describe.
func describeBase(info *ModelInfo) string {
	if _, s := summariseBase(info); s != nil {
		return fmt.Sprintf("N(μ0, Σ) with Σ = εI + %d principal directions, ε %g", s.Rank, s.Eps)
	}
	return fmt.Sprintf("N(μ0, %g²I)", info.BaseStd)
}
