package export

import (
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// Tolerance is the largest relative error (see Parity) that an exported model
// may show against the training engine's numbers.
const Tolerance = 1e-4

// Parity evaluates model with ONNX Runtime at the n points x (float64, n×d
// row-major, rounded to float32 for the model) and compares the outputs with
// reference energies (n) and gradients (n×d). It returns the largest
// relative errors:
//
//	energyErr = max_i |U_i − Û_i| / max(|Û_i|, 1)
//	gradErr   = max_i ‖g_i − ĝ_i‖∞ / max(‖ĝ_i‖∞, 1)
//
// with Û, ĝ the reference. The floor of 1 makes values near 0 (an energy
// is defined up to a constant and may cross 0) compare absolutely; the
// gradient of a point is compared as a vector, relative to its largest
// component. ONNX Runtime is initialised with ortlib.Init("") if needed.
func Parity(model []byte, x []float64, n int, refEnergy, refGrad []float64) (energyErr, gradErr float64, err error) {
	if n <= 0 || len(x)%n != 0 || len(x) == 0 {
		return 0, 0, fmt.Errorf("export: parity needs n > 0 points with len(x) a multiple of n, got n=%d, len(x)=%d", n, len(x))
	}
	d := len(x) / n
	if len(refEnergy) != n || len(refGrad) != n*d {
		return 0, 0, fmt.Errorf("export: parity got %d reference energies and %d gradient values for %d points of dim %d", len(refEnergy), len(refGrad), n, d)
	}
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
	}
	u, g, err := evaluate(model, x32, n, d)
	if err != nil {
		return 0, 0, err
	}
	return maxRelErr(u, refEnergy, n, 1), maxRelErr(g, refGrad, n, d), nil
}

// maxRelErr is max over the n rows of ‖a_i − b_i‖∞ / max(‖b_i‖∞, 1); a NaN
// anywhere gives +Inf.
func maxRelErr(a []float32, b []float64, n, d int) float64 {
	worst := 0.0
	for i := 0; i < n; i++ {
		diff, scale := 0.0, 1.0
		for k := i * d; k < (i+1)*d; k++ {
			e := math.Abs(float64(a[k]) - b[k])
			if math.IsNaN(e) {
				return math.Inf(1)
			}
			diff = math.Max(diff, e)
			scale = math.Max(scale, math.Abs(b[k]))
		}
		worst = math.Max(worst, diff/scale)
	}
	return worst
}

// evaluate runs the model on x32 (n×d) and returns energy (n) and grad (n×d).
// The points are fed in the shape the model's input declares, [n, d] or,
// for the conv family, [n, C, H, W] (C·H·W = d).
func evaluate(model []byte, x32 []float32, n, d int) (energy, grad []float32, err error) {
	if _, err := ortlib.Init(""); err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	shape, err := inputShape(model, n, d)
	if err != nil {
		return nil, nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	// a check, not a hot path: keep it off the other cores
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime: %w", err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{models.InputX}, []string{models.OutputEnergy, models.OutputGrad}, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime cannot load the model: %w", err)
	}
	defer sess.Destroy()
	in, err := ort.NewTensor(shape, x32)
	if err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime input: %w", err)
	}
	defer in.Destroy()
	eOut, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n)))
	if err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime output: %w", err)
	}
	defer eOut.Destroy()
	gOut, err := ort.NewEmptyTensor[float32](shape.Clone())
	if err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime output: %w", err)
	}
	defer gOut.Destroy()
	if err := sess.Run([]ort.Value{in}, []ort.Value{eOut, gOut}); err != nil {
		return nil, nil, fmt.Errorf("export: onnxruntime run on %d points of dim %d: %w", n, d, err)
	}
	return append([]float32(nil), eOut.GetData()...), append([]float32(nil), gOut.GetData()...), nil
}

// inputShape is the shape of n points of d values as the model's input x
// declares it: [n, data shape…] when every dimension after the batch is
// fixed, [n, d] when any is dynamic. A fixed shape that does not hold d
// values is an error.
func inputShape(model []byte, n, d int) (ort.Shape, error) {
	ins, _, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("export: onnxruntime cannot read the model's inputs: %w", err)
	}
	for _, in := range ins {
		if in.Name != models.InputX || len(in.Dimensions) < 2 {
			continue
		}
		shape, size := ort.NewShape(int64(n)), int64(1)
		for _, v := range in.Dimensions[1:] {
			if v <= 0 {
				return ort.NewShape(int64(n), int64(d)), nil
			}
			shape = append(shape, v)
			size *= v
		}
		if size != int64(d) {
			return nil, fmt.Errorf("export: the model's input x takes %v values per point, got %d", in.Dimensions[1:], d)
		}
		return shape, nil
	}
	return ort.NewShape(int64(n), int64(d)), nil
}
