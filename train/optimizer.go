package train

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/jarzyn/jarzyn/models"
)

// optimizer applies θ ← update(θ, D) per parameter tensor: plain gradient
// descent with per-group step sizes, or Adam; frozen entries never move; the
// global gradient norm may be clipped.
type optimizer[T Float] struct {
	adam         bool
	lr           []float64 // per tensor
	frozen       [][]bool  // per tensor, nil when nothing in it is frozen
	beta1, beta2 float64
	eps, clip    float64
	t            int
	m, v         [][]float64
}

var frozenEntry = regexp.MustCompile(`^([a-z_0-9]+)(?:\[(\d+)\])?$`)

func newOptimizer[T Float](c OptimizerConfig, spec models.Spec, lrScale float64) (*optimizer[T], error) {
	shapes := spec.ParamShapes()
	o := &optimizer[T]{adam: c.Kind == "adam", beta1: c.Beta1, beta2: c.Beta2, eps: c.Eps, clip: c.ClipNorm}
	index := map[string]int{}
	for k, s := range shapes {
		index[s.Name] = k
		lr := c.LR
		if g, ok := c.GroupLR[s.Name]; ok {
			lr = g
		}
		o.lr = append(o.lr, lr*lrScale)
		o.frozen = append(o.frozen, nil)
		n := prodInts(s.Shape)
		o.m = append(o.m, make([]float64, n))
		o.v = append(o.v, make([]float64, n))
	}
	for _, f := range c.Frozen {
		m := frozenEntry.FindStringSubmatch(f)
		if m == nil {
			return nil, fmt.Errorf("train: optimizer.frozen entry %q must be a name or name[index]", f)
		}
		k, ok := index[m[1]]
		if !ok {
			return nil, fmt.Errorf("train: optimizer.frozen entry %q names no parameter", f)
		}
		n := len(o.m[k])
		if o.frozen[k] == nil {
			o.frozen[k] = make([]bool, n)
		}
		if m[2] == "" {
			for i := range o.frozen[k] {
				o.frozen[k][i] = true
			}
			continue
		}
		i, _ := strconv.Atoi(m[2])
		if i >= n {
			return nil, fmt.Errorf("train: optimizer.frozen entry %q is out of range (size %d)", f, n)
		}
		o.frozen[k][i] = true
	}
	return o, nil
}

// gradNorm is the Euclidean norm of the gradient over entries that may move.
func (o *optimizer[T]) gradNorm(grads [][]T) float64 {
	s := 0.0
	for k, g := range grads {
		for i, v := range g {
			if o.frozen[k] != nil && o.frozen[k][i] {
				continue
			}
			s += float64(v) * float64(v)
		}
	}
	return math.Sqrt(s)
}

// step updates params in place from grads (the gradient of the loss to
// minimise) with every learning rate multiplied by lrFactor (the schedule),
// and returns the gradient norm before clipping.
func (o *optimizer[T]) step(params, grads [][]T, lrFactor float64) float64 {
	norm := o.gradNorm(grads)
	scale := 1.0
	if o.clip > 0 && norm > o.clip {
		scale = o.clip / norm
	}
	o.t++
	bc1 := 1 - math.Pow(o.beta1, float64(o.t))
	bc2 := 1 - math.Pow(o.beta2, float64(o.t))
	for k, g := range grads {
		p, lr, fz := params[k], o.lr[k]*lrFactor, o.frozen[k]
		m, v := o.m[k], o.v[k]
		for i, gi := range g {
			if fz != nil && fz[i] {
				continue
			}
			d := float64(gi) * scale
			if !o.adam {
				p[i] = T(float64(p[i]) - lr*d)
				continue
			}
			m[i] = o.beta1*m[i] + (1-o.beta1)*d
			v[i] = o.beta2*v[i] + (1-o.beta2)*d*d
			p[i] = T(float64(p[i]) - lr*(m[i]/bc1)/(math.Sqrt(v[i]/bc2)+o.eps))
		}
	}
	return norm
}
