package serve

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/smc"
)

// linearMap is x ↦ x·W for a fixed W [in, out] (float32, row-major), run by
// ONNX Runtime as a one-MatMul model built in memory (export.BuildMatMul),
// so that the latent sampler's projections run at the speed of ONNX
// Runtime's GEMM.
type linearMap struct {
	sess    *ort.DynamicAdvancedSession
	in, out int
	lanes   int
}

// newLinearMap builds and opens the model of x ↦ x·W; up to lanes Runs of
// one thread each work on separate rows.
func newLinearMap(w []float32, in, out, lanes int) (*linearMap, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, err
	}
	model, err := export.BuildMatMul(w, in, out)
	if err != nil {
		return nil, err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{export.MatMulInput}, []string{export.MatMulOutput}, so)
	if err != nil {
		return nil, fmt.Errorf("serve: building the %d×%d projection: %w", in, out, err)
	}
	return &linearMap{sess: sess, in: in, out: out, lanes: max(1, lanes)}, nil
}

// apply writes y = x·W for the n rows of x (n×in) into y (n×out).
func (l *linearMap) apply(x []float32, n int, y []float32) error {
	return smc.ForErr(l.lanes, n, func(lo, hi int) error {
		return l.applyRows(x[lo*l.in:hi*l.in], hi-lo, y[lo*l.out:hi*l.out])
	})
}

func (l *linearMap) applyRows(x []float32, n int, y []float32) error {
	xt, err := ort.NewTensor(ort.NewShape(int64(n), int64(l.in)), x)
	if err != nil {
		return err
	}
	defer xt.Destroy()
	yt, err := ort.NewTensor(ort.NewShape(int64(n), int64(l.out)), y)
	if err != nil {
		return err
	}
	defer yt.Destroy()
	return l.sess.Run([]ort.Value{xt}, []ort.Value{yt})
}

func (l *linearMap) close() {
	if l != nil && l.sess != nil {
		l.sess.Destroy()
		l.sess = nil
	}
}
