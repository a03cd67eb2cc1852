// Package datasets provides training data: Gaussian-mixture teachers (any
// dimension, modes, masses and isotropic covariances), seeded.
package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Teacher is a Gaussian mixture Σ_j w_j N(μ_j, s_j² I).
type Teacher struct {
	// Means lists one mean per mode; a mean shorter than Dim is padded with zeros.
	Means [][]float64 `json:"means" mapstructure:"means"`
	// Masses are the mode weights; they must be positive and are normalised to sum to 1.
	Masses []float64 `json:"masses" mapstructure:"masses"`
	// Stds are the per-mode standard deviations; empty means 1 for every mode.
	Stds []float64 `json:"stds,omitempty" mapstructure:"stds"`
}

// TeacherError is a teacher field that Normalized refuses.
type TeacherError struct {
	// Field is the field as a config key below the teacher: "masses",
	// "means[2]", "stds[0]".
	Field string
	// Msg says what is wrong: "must be > 0, got 0".
	Msg string
}

func (e *TeacherError) Error() string { return "datasets: teacher." + e.Field + " " + e.Msg }

func teacherErr(field, format string, a ...any) error {
	return &TeacherError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Normalized returns the teacher with means padded to dim, masses summing to 1
// and Stds filled, or a *TeacherError naming the bad field.
func (t Teacher) Normalized(dim int) (Teacher, error) {
	M := len(t.Means)
	if M == 0 {
		return t, teacherErr("means", "must list at least one mode")
	}
	if len(t.Masses) != M {
		return t, teacherErr("masses", "has %d entries, teacher.means has %d", len(t.Masses), M)
	}
	out := Teacher{Means: make([][]float64, M), Masses: make([]float64, M), Stds: make([]float64, M)}
	s := 0.0
	for j, w := range t.Masses {
		if !(w > 0) || math.IsInf(w, 0) {
			return t, teacherErr(fmt.Sprintf("masses[%d]", j), "must be > 0, got %v", w)
		}
		s += w
	}
	for j := range t.Means {
		if len(t.Means[j]) > dim {
			return t, teacherErr(fmt.Sprintf("means[%d]", j), "has %d coordinates, more than dim=%d", len(t.Means[j]), dim)
		}
		out.Means[j] = make([]float64, dim)
		copy(out.Means[j], t.Means[j])
		out.Masses[j] = t.Masses[j] / s
		out.Stds[j] = 1
		if len(t.Stds) > 0 {
			if len(t.Stds) != M {
				return t, teacherErr("stds", "has %d entries, teacher.means has %d", len(t.Stds), M)
			}
			if !(t.Stds[j] > 0) {
				return t, teacherErr(fmt.Sprintf("stds[%d]", j), "must be > 0, got %v", t.Stds[j])
			}
			out.Stds[j] = t.Stds[j]
		}
	}
	return out, nil
}

// Sample draws n points (row-major n×dim) and their mode labels. With split
// true the per-mode counts are the deterministic round(n·w_j) (the paper's
// setting: 2500/7500 for n = 10⁴, masses ¼, ¾), else each point's mode is drawn.
func (t Teacher) Sample(n int, split bool, rng *rand.Rand) (x []float64, labels []int) {
	dim := len(t.Means[0])
	x = make([]float64, n*dim)
	labels = make([]int, n)
	if split {
		i := 0
		acc := 0.0
		for j, w := range t.Masses {
			acc += w
			end := int(math.Round(acc * float64(n)))
			if j == len(t.Masses)-1 {
				end = n
			}
			for ; i < end; i++ {
				labels[i] = j
			}
		}
	} else {
		for i := range labels {
			u, acc := rng.Float64(), 0.0
			labels[i] = len(t.Masses) - 1
			for j, w := range t.Masses {
				acc += w
				if u < acc {
					labels[i] = j
					break
				}
			}
		}
	}
	for i, j := range labels {
		for k := 0; k < dim; k++ {
			x[i*dim+k] = t.Means[j][k] + t.Stds[j]*rng.NormFloat64()
		}
	}
	return x, labels
}

// LogDensity is log ρ*(x).
func (t Teacher) LogDensity(x []float64) float64 {
	dim := len(x)
	best := math.Inf(-1)
	terms := make([]float64, len(t.Means))
	for j, mu := range t.Means {
		s2 := t.Stds[j] * t.Stds[j]
		d2 := 0.0
		for k := range x {
			v := x[k] - mu[k]
			d2 += v * v
		}
		terms[j] = math.Log(t.Masses[j]) - 0.5*d2/s2 - 0.5*float64(dim)*math.Log(2*math.Pi*s2)
		best = math.Max(best, terms[j])
	}
	s := 0.0
	for _, v := range terms {
		s += math.Exp(v - best)
	}
	return best + math.Log(s)
}

// Nearest returns the index of the teacher mean closest to x (the Voronoi cell of x).
func (t Teacher) Nearest(x []float64) int {
	best, bi := math.Inf(1), 0
	for j, mu := range t.Means {
		d2 := 0.0
		for k := range x {
			v := x[k] - mu[k]
			d2 += v * v
		}
		if d2 < best {
			best, bi = d2, j
		}
	}
	return bi
}
