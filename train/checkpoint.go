package train

import (
	"fmt"
	"math"
	"strconv"

	"github.com/jarzyn/jarzyn/models"
)

// checkpointState is the scalar part of a checkpoint.
type checkpointState struct {
	Iter        int     `json:"iter"`
	Elapsed     float64 `json:"elapsed_seconds"`
	OptT        int     `json:"opt_t"`
	LogZRef     float64 `json:"log_z_ref"`
	Resamplings int     `json:"resamplings"`
	MonLogZRef  float64 `json:"monitor_log_z_ref"`
	MonResamp   int     `json:"monitor_resamplings"`
	MeanUData   float64 `json:"mean_u_data"`
	// MALA acceptance counts (walkers.kernel mala) and the last
	// iteration's rate, "NaN" before the first
	Accepted   int64  `json:"mala_accepted,omitempty"`
	Proposed   int64  `json:"mala_proposed,omitempty"`
	LastAccept string `json:"mala_last_accept,omitempty"`
	// MALA's step size for the next iteration (walkers.target_accept), ""
	// before the first
	MALAStep string `json:"mala_step,omitempty"`
	// warm-up steps taken (walkers.warmup_steps)
	WarmupDone int `json:"warmup_done,omitempty"`
}

func toF64[T Float](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// readSection loads the float64 section name into dst (converting to its
// element type); a missing section or a length mismatch is an error.
func readSection[E Float](c *models.Container, name string, dst []E) error {
	v, err := c.Floats(name)
	if err != nil {
		return err
	}
	if len(v) != len(dst) {
		return fmt.Errorf("train: checkpoint section %s has %d values, want %d (walkers.n or the model changed?)", name, len(v), len(dst))
	}
	for i, x := range v {
		dst[i] = E(x)
	}
	return nil
}

// checkpoint encodes the full state at the start of iteration t.iter.
func (t *trainer[T]) checkpoint(elapsed float64, configYAML []byte) (*models.Container, error) {
	c := models.NewContainer("checkpoint")
	if err := c.PutParams(t.ps.params()); err != nil {
		return nil, err
	}
	st := checkpointState{Iter: t.iter, Elapsed: elapsed, OptT: t.opt.t, LogZRef: t.pop.LogZRef,
		Resamplings: t.pop.Resamplings, MeanUData: t.lastMeanUData,
		Accepted: t.mala.Accepted, Proposed: t.mala.Proposed, WarmupDone: t.vs.warmupDone}
	if t.cfg.Walkers.Kernel == "mala" {
		st.LastAccept = strconv.FormatFloat(t.mala.Last, 'g', -1, 64)
		if t.mala.H != 0 {
			st.MALAStep = strconv.FormatFloat(t.mala.H, 'g', -1, 64)
		}
	}
	put := func(prefix string, pop *population[T]) {
		c.PutFloats(prefix+"walkers", toF64(pop.X))
		c.PutFloats(prefix+"energies", pop.U)
		c.PutFloats(prefix+"grads", toF64(pop.G))
		c.PutFloats(prefix+"log_weights", pop.A)
	}
	put("", t.pop)
	if t.mon != nil {
		put("monitor/", t.mon)
		st.MonLogZRef, st.MonResamp = t.mon.LogZRef, t.mon.Resamplings
	}
	for k := range t.opt.m {
		c.PutFloats(fmt.Sprintf("opt/m/%d", k), t.opt.m[k])
		c.PutFloats(fmt.Sprintf("opt/v/%d", k), t.opt.v[k])
	}
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("train: saving the RNG state: %w", err)
	}
	c.PutBytes("rng", rng)
	c.PutBytes("config", configYAML)
	if err := c.PutJSON("state", st); err != nil {
		return nil, err
	}
	for k, v := range t.exportMeta() {
		c.Meta[k] = v
	}
	return c, nil
}

// exportMeta is the metadata of the weights and checkpoint files: the
// TrainingInfo that export carries into the ONNX model, the precision and
// the iteration.
func (t *trainer[T]) exportMeta() map[string]string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range t.data {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	logZ := math.NaN()
	if t.cfg.Method == Jarzynski {
		logZ = t.pop.LogZ()
	}
	if t.mon != nil {
		logZ = t.mon.LogZ()
	}
	meta := models.TrainingInfo{Method: string(t.cfg.Method), StepSize: t.cfg.Walkers.StepSize, LogZEstimate: logZ,
		ConfigDigest: t.cfg.Digest(), DataMin: lo, DataMax: hi, ModelVersion: 1}.Meta()
	meta[models.MetaDtype] = t.cfg.Dtype
	meta[models.MetaIteration] = strconv.Itoa(t.iter)
	return meta
}

// restore loads a checkpoint written by checkpoint into a trainer built from
// the same configuration.
func (t *trainer[T]) restore(c *models.Container) error {
	p, err := c.Params()
	if err != nil {
		return err
	}
	if err := sameSpec(p.Spec, t.cfg.Model.Spec); err != nil {
		return err
	}
	// a fitted PCA base comes from the checkpoint, bit for bit, whatever a
	// new fit to the same data gives
	t.cfg.Model.Spec = p.Spec
	if err := t.build(p); err != nil {
		return err
	}
	var st checkpointState
	if err := c.JSON("state", &st); err != nil {
		return err
	}
	get := func(prefix string, pop *population[T]) error {
		if err := readSection(c, prefix+"walkers", pop.X); err != nil {
			return err
		}
		if err := readSection(c, prefix+"grads", pop.G); err != nil {
			return err
		}
		if err := readSection(c, prefix+"energies", pop.U); err != nil {
			return err
		}
		return readSection(c, prefix+"log_weights", pop.A)
	}
	// rebuild the walker machine's per-layer caches at the restored positions;
	// get then puts back the stored energies and gradients, so that the state
	// is exactly the checkpointed one
	if err := readSection(c, "walkers", t.pop.X); err != nil {
		return err
	}
	if err := t.pop.evaluate(); err != nil {
		return err
	}
	if err := get("", t.pop); err != nil {
		return err
	}
	if t.mon != nil {
		if err := get("monitor/", t.mon); err != nil {
			return err
		}
		t.mon.LogZRef, t.mon.Resamplings = st.MonLogZRef, st.MonResamp
	}
	for k := range t.opt.m {
		if err := readSection(c, fmt.Sprintf("opt/m/%d", k), t.opt.m[k]); err != nil {
			return err
		}
		if err := readSection(c, fmt.Sprintf("opt/v/%d", k), t.opt.v[k]); err != nil {
			return err
		}
	}
	rng, err := c.Bytes("rng")
	if err != nil {
		return err
	}
	if err := t.pcg.UnmarshalBinary(rng); err != nil {
		return fmt.Errorf("train: checkpoint RNG state: %w", err)
	}
	t.opt.t = st.OptT
	t.iter, t.elapsed = st.Iter, st.Elapsed
	t.pop.LogZRef, t.pop.Resamplings = st.LogZRef, st.Resamplings
	t.lastMeanUData = st.MeanUData
	t.vs.warmupDone = st.WarmupDone
	t.mala.Accepted, t.mala.Proposed, t.mala.Last = st.Accepted, st.Proposed, math.NaN()
	if st.LastAccept != "" {
		if t.mala.Last, err = strconv.ParseFloat(st.LastAccept, 64); err != nil {
			return fmt.Errorf("train: checkpoint MALA acceptance %q: %w", st.LastAccept, err)
		}
	}
	t.mala.H = 0
	if st.MALAStep != "" {
		if t.mala.H, err = strconv.ParseFloat(st.MALAStep, 64); err != nil || !(t.mala.H > 0) {
			return fmt.Errorf("train: checkpoint MALA step size %q: want a number > 0", st.MALAStep)
		}
	}
	return nil
}
