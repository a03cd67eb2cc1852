package train

import (
	"math"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// Evaluation is what can be said of the model exactly (or by quadrature)
// against the teacher at one moment of training.
type Evaluation struct {
	// ModeMasses is the model's mass in each teacher mode's Voronoi cell, in
	// teacher order (GMM: the masses of the components nearest each teacher
	// mean; MLP in 2-D: quadrature of e^{-U}; otherwise the weighted share of
	// the walkers, the monitor population's when there is one, nearest each
	// teacher mean).
	ModeMasses []float64 `json:"mode_masses"`
	// LogZ is log Z_θ, analytic (GMM) or by quadrature (MLP, d = 2); NaN when unknown.
	LogZ float64 `json:"log_z"`
	// LogZMethod says how LogZ was obtained: "analytic", "quadrature" or "".
	LogZMethod string `json:"log_z_method"`
	// MeanUData is the mean energy over the data used.
	MeanUData float64 `json:"mean_u_data"`
	// CE is LogZ + MeanUData, the cross-entropy.
	CE float64 `json:"ce"`
	// ExactKL is CE − H(ρ*), with H(ρ*) = −mean log ρ*(data).
	ExactKL float64 `json:"exact_kl"`
	// EstimatedKL is the weights' CE estimate − H(ρ*).
	EstimatedKL float64 `json:"estimated_kl"`
}

// evaluate computes an Evaluation. meanUData is used when it is over the
// whole data set (fullBatch); otherwise the mean is recomputed here.
func evaluate(p *models.Params, teacher datasets.Teacher, data []float64, grid int, meanUData, logRhoStar float64, fullBatch bool) Evaluation {
	d := p.Spec.Dim
	if !fullBatch {
		meanUData = meanEnergy(p, data)
	}
	ev := Evaluation{LogZ: math.NaN(), MeanUData: meanUData, CE: math.NaN(), ExactKL: math.NaN(), EstimatedKL: math.NaN()}
	switch {
	case p.Spec.Family == models.GMM:
		ev.LogZ, _ = p.ExactLogZ()
		ev.LogZMethod = "analytic"
		ev.ModeMasses = make([]float64, len(teacher.Means))
		a := p.Get("means").Data
		for m, w := range p.ModeMasses() {
			ev.ModeMasses[teacher.Nearest(a[m*d:(m+1)*d])] += w
		}
	case d == 2:
		ev.LogZ, ev.ModeMasses = quadrature2D(p, teacher, data, grid)
		ev.LogZMethod = "quadrature"
	}
	ev.CE = ev.LogZ + meanUData
	ev.ExactKL = ev.CE + logRhoStar
	return ev
}

func meanEnergy(p *models.Params, data []float64) float64 {
	d := p.Spec.Dim
	n := len(data) / d
	u := make([]float64, n)
	smc.For(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			u[i] = p.Energy(data[i*d:(i+1)*d], nil)
		}
	})
	s := 0.0
	for _, v := range u {
		s += v
	}
	return s / float64(n)
}

// quadratureBox is the 2-D box integrated over: the data's bounding box
// widened by 4 teacher standard deviations on every side.
func quadratureBox(teacher datasets.Teacher, data []float64) (lo, hi [2]float64) {
	lo = [2]float64{math.Inf(1), math.Inf(1)}
	hi = [2]float64{math.Inf(-1), math.Inf(-1)}
	for i := 0; i+1 < len(data); i += 2 {
		for k := 0; k < 2; k++ {
			lo[k] = math.Min(lo[k], data[i+k])
			hi[k] = math.Max(hi[k], data[i+k])
		}
	}
	s := 0.0
	for _, v := range teacher.Stds {
		s = math.Max(s, v)
	}
	for k := 0; k < 2; k++ {
		lo[k] -= 4 * s
		hi[k] += 4 * s
	}
	return lo, hi
}

// quadrature2D integrates e^{-U} on a grid×grid midpoint rule over the box and
// returns log Z and the mass in each teacher mode's Voronoi cell.
func quadrature2D(p *models.Params, teacher datasets.Teacher, data []float64, grid int) (float64, []float64) {
	lo, hi := quadratureBox(teacher, data)
	dx := (hi[0] - lo[0]) / float64(grid)
	dy := (hi[1] - lo[1]) / float64(grid)
	negU := make([]float64, grid*grid)
	cell := make([]int, grid*grid)
	smc.For(grid, func(a, b int) {
		x := make([]float64, 2)
		for i := a; i < b; i++ {
			for j := 0; j < grid; j++ {
				x[0] = lo[0] + (float64(i)+0.5)*dx
				x[1] = lo[1] + (float64(j)+0.5)*dy
				negU[i*grid+j] = -p.Energy(x, nil)
				cell[i*grid+j] = teacher.Nearest(x)
			}
		}
	})
	lse := models.LogSumExp(negU)
	masses := make([]float64, len(teacher.Means))
	for i, v := range negU {
		masses[cell[i]] += math.Exp(v - lse)
	}
	return lse + math.Log(dx*dy), masses
}

// walkerModeMasses is the weighted share of the walkers in each teacher
// mode's Voronoi cell: Σ_i p_i [nearest mean of X_i is j], p = softmax(A).
// With exact weights it estimates the model's mass per mode.
func walkerModeMasses[T Float](teacher datasets.Teacher, pop *smc.Population[T]) []float64 {
	if len(teacher.Means) == 0 {
		return nil // image files: no modes to measure
	}
	p := make([]float64, pop.N())
	smc.Normalize(pop.A, p)
	d := pop.Dim()
	masses := make([]float64, len(teacher.Means))
	x := make([]float64, d)
	for i, w := range p {
		for k, v := range pop.X[i*d : (i+1)*d] {
			x[k] = float64(v)
		}
		masses[teacher.Nearest(x)] += w
	}
	return masses
}
