package serve

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/internal/ortops"
	"github.com/jarzyn/jarzyn/models"
)

// fusedTolerance bounds the disagreement between the fused graph and the
// file's graph on the probe points, relative to max(1, |value|) (energy) and
// max(1, the row's largest |∂U|) (gradient): the bound export uses against
// the training code.
const fusedTolerance = 1e-4

// fusedProbe is the number of probe points the fused graph is checked on.
const fusedProbe = 256

var errNotFusable = errors.New("no fused graph for this model")

// fuse replaces m's session (the file's graph) by the same model with fused
// activation operators (export.BuildFused, run by internal/ortops), and adds
// a session for the gradient alone (export.BuildFusedGrad) for plain
// Langevin steps, after checking both against the file's graph on probe
// points around the base distribution and over the data range. It returns
// why it did not (m unchanged) or nil.
//
// Only the CPU gains: the operators run on the CPU execution provider.
func (m *Model) fuse(data []byte, opt LoadOptions, lib string) error {
	spec := m.Info.Spec
	if m.Device != DeviceCPU || spec == nil || spec.Family != models.MLP || spec.Activation != models.SiLU {
		return errNotFusable
	}
	p, err := export.ParamsFromModel(data, *spec)
	if err != nil {
		return err
	}
	graph, err := export.BuildFused(p)
	if err != nil {
		return err
	}
	cpu := opt
	cpu.Device = DeviceCPU
	so, _, err := sessionOptions(cpu, lib)
	if err != nil {
		return err
	}
	defer so.Destroy()
	if err := ortops.Register(so, lib); err != nil {
		return err
	}
	gradGraph, err := export.BuildFusedGrad(p)
	if err != nil {
		return err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(graph, []string{models.InputX}, []string{models.OutputEnergy, models.OutputGrad}, so)
	if err != nil {
		return fmt.Errorf("creating the fused session: %v", err)
	}
	gradSess, err := ort.NewDynamicAdvancedSessionWithONNXData(gradGraph, []string{models.InputX}, []string{models.OutputGrad}, so)
	if err != nil {
		sess.Destroy()
		return fmt.Errorf("creating the fused gradient session: %v", err)
	}
	x := m.probePoints()
	err = agree(m.sess, sess, x, m.Info.Dim, true)
	if err == nil {
		err = agree(m.sess, gradSess, x, m.Info.Dim, false)
	}
	if err != nil {
		sess.Destroy()
		gradSess.Destroy()
		return err
	}
	old := m.sess
	m.sess, m.gradSess, m.Fused = sess, gradSess, true
	_ = old.Destroy() // fails only for a session already destroyed
	return nil
}

// probePoints returns fusedProbe points (row-major): half from the base
// Gaussian, half uniform over the data range (3σ0 around μ0 if unknown).
func (m *Model) probePoints() []float32 {
	d := m.Info.Dim
	rng := rand.New(rand.NewPCG(1, 2))
	lo, hi := m.Info.DataMin, m.Info.DataMax
	x := make([]float32, fusedProbe*d)
	for i := 0; i < fusedProbe; i++ {
		for k := 0; k < d; k++ {
			mu := 0.0
			if k < len(m.Info.BaseMean) {
				mu = m.Info.BaseMean[k]
			}
			v := mu + m.Info.BaseStd*rng.NormFloat64()
			if i%2 == 1 {
				if hi > lo {
					v = lo + (hi-lo)*rng.Float64()
				} else {
					v = mu + 3*m.Info.BaseStd*(2*rng.Float64()-1)
				}
			}
			x[i*d+k] = float32(v)
		}
	}
	return x
}

// agree evaluates session a (energy and grad) and b (energy and grad when
// withEnergy, else grad alone) on x (n×d) and fails when they differ by more
// than fusedTolerance, naming the worst output.
func agree(a, b *ort.DynamicAdvancedSession, x []float32, d int, withEnergy bool) error {
	n := len(x) / d
	ea, ga, err := probe(a, x, n, d, true)
	if err != nil {
		return fmt.Errorf("probe evaluation of the file's graph: %v", err)
	}
	eb, gb, err := probe(b, x, n, d, withEnergy)
	if err != nil {
		return fmt.Errorf("probe evaluation of the fused graph: %v", err)
	}
	if !withEnergy {
		eb = ea
	}
	if len(ea) != n || len(eb) != n || len(ga) != n*d || len(gb) != n*d {
		return errors.New("probe outputs have the wrong size")
	}
	worstE, worstG := 0.0, 0.0
	for i := 0; i < n; i++ {
		worstE = math.Max(worstE, relDiff(ea[i], eb[i], math.Max(1, math.Abs(float64(ea[i])))))
		scale := 1.0
		for _, v := range ga[i*d : (i+1)*d] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for k := i * d; k < (i+1)*d; k++ {
			worstG = math.Max(worstG, relDiff(ga[k], gb[k], scale))
		}
	}
	if !(worstE <= fusedTolerance && worstG <= fusedTolerance) {
		return fmt.Errorf("the fused graph disagrees with the file's (max relative difference: energy %.3g, grad %.3g, tolerance %g)", worstE, worstG, fusedTolerance)
	}
	return nil
}

// probe runs s on x (n×d) and returns its energy (when withEnergy) and grad.
func probe(s *ort.DynamicAdvancedSession, x []float32, n, d int, withEnergy bool) (energy, grad []float32, err error) {
	xt, err := ort.NewTensor(ort.NewShape(int64(n), int64(d)), x)
	if err != nil {
		return nil, nil, err
	}
	defer xt.Destroy()
	out := []ort.Value{nil}
	if withEnergy {
		out = append(out, nil)
	}
	if err := s.Run([]ort.Value{xt}, out); err != nil {
		return nil, nil, err
	}
	res := make([][]float32, len(out))
	for i, v := range out {
		t, ok := v.(*ort.Tensor[float32])
		if ok {
			res[i] = append([]float32(nil), t.GetData()...)
		}
		v.Destroy()
		if !ok {
			return nil, nil, errors.New("outputs are not float32 tensors")
		}
	}
	if withEnergy {
		return res[0], res[1], nil
	}
	return nil, res[0], nil
}

// relDiff is |a − b|/scale, +Inf when either is not finite.
func relDiff(a, b float32, scale float64) float64 {
	x, y := float64(a), float64(b)
	if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return math.Inf(1)
	}
	return math.Abs(x-y) / scale
}
