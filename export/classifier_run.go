package export

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// ClassifierReferenceFunc computes the class probabilities (n×K) that an
// exported classifier must match on the n images x; train.Classifier.Predict
// has this shape once bound to a classifier.
type ClassifierReferenceFunc func(x []float64, n int) ([]float64, error)

// ClassifierOptions configures RunClassifier.
type ClassifierOptions struct {
	// Path is the classifier file (train.SaveClassifier).
	Path string
	// Out is the ONNX file to write.
	Out string
	// ORTLib is the ONNX Runtime library; "" searches as ortlib.Find does.
	ORTLib string
	// N is the number of check images. The default value is 256.
	N int
	// Seed seeds the check images. The default value is 1.
	Seed uint64
	// Reference computes the probabilities the model must match. The
	// default value is ClassifierReference on the file's classifier.
	Reference ClassifierReferenceFunc
	// ReferenceName names Reference in messages. The default value is
	// "float64 reference".
	ReferenceName string
}

// ClassifierResult reports what RunClassifier wrote and how well it matched.
type ClassifierResult struct {
	Out, Source string
	Classifier  *Classifier
	Bytes, N    int
	Reference   string
	// ProbErr is the largest absolute difference of a class probability
	// between ONNX Runtime and the reference.
	ProbErr float64
}

// ClassifierCheckImages returns n check images of c's shape: the first half
// uniform in [−1, 1] (pixel noise), the rest smooth (a sum of a few random
// Gaussian blobs, clipped to [−1, 1]), like digits more than noise is.
func ClassifierCheckImages(c *Classifier, n int, seed uint64) []float64 {
	h := c.ClassifierHeader
	d := h.C * h.H * h.W
	rng := rand.New(rand.NewPCG(seed, 0x636c66))
	x := make([]float64, n*d)
	for i := 0; i < n; i++ {
		img := x[i*d : (i+1)*d]
		if i < n/2 {
			for k := range img {
				img[k] = 2*rng.Float64() - 1
			}
			continue
		}
		for k := range img {
			img[k] = -1
		}
		for blob := 0; blob < 3; blob++ {
			cy, cx := rng.Float64()*float64(h.H), rng.Float64()*float64(h.W)
			s := 1 + rng.Float64()*float64(max(h.H, h.W))/6
			for ch := 0; ch < h.C; ch++ {
				for y := 0; y < h.H; y++ {
					for z := 0; z < h.W; z++ {
						r2 := (float64(y)-cy)*(float64(y)-cy) + (float64(z)-cx)*(float64(z)-cx)
						img[(ch*h.H+y)*h.W+z] += 2 * math.Exp(-r2/(2*s*s))
					}
				}
			}
		}
		for k, v := range img {
			img[k] = math.Min(1, v)
		}
	}
	return x
}

// ClassifierParity runs the exported classifier model with ONNX Runtime on
// the n images x (n×C·H·W, rounded to float32) and returns the largest
// absolute difference between its probabilities and ref (n×K); a NaN gives
// +Inf.
func ClassifierParity(model []byte, x []float64, n int, ref []float64) (float64, error) {
	probs, err := EvalClassifier(model, x, n)
	if err != nil {
		return 0, err
	}
	if len(probs) != len(ref) {
		return 0, fmt.Errorf("export: the classifier gave %d probabilities, the reference %d", len(probs), len(ref))
	}
	worst := 0.0
	for i, p := range probs {
		e := math.Abs(float64(p) - ref[i])
		if math.IsNaN(e) {
			return math.Inf(1), nil
		}
		worst = math.Max(worst, e)
	}
	return worst, nil
}

// EvalClassifier runs an exported classifier model (BuildClassifier) with
// ONNX Runtime on the n images x and returns its probabilities, n×K.
func EvalClassifier(model []byte, x []float64, n int) ([]float32, error) {
	if _, err := ortlib.Init(""); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("export: onnxruntime cannot read the classifier: %w", err)
	}
	if len(ins) != 1 || len(ins[0].Dimensions) != 4 || len(outs) != 1 || len(outs[0].Dimensions) != 2 {
		return nil, fmt.Errorf("export: not a classifier: want input x [batch, C, H, W] and output probs [batch, K]")
	}
	shape := ort.NewShape(int64(n), ins[0].Dimensions[1], ins[0].Dimensions[2], ins[0].Dimensions[3])
	if int64(len(x)) != shape.FlattenedSize() {
		return nil, fmt.Errorf("export: %d values for %d images of %v", len(x), n, ins[0].Dimensions[1:])
	}
	k := outs[0].Dimensions[1]
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("export: onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("export: onnxruntime: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("export: onnxruntime: %w", err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{models.InputX}, []string{models.OutputProbs}, opts)
	if err != nil {
		return nil, fmt.Errorf("export: onnxruntime cannot load the classifier: %w", err)
	}
	defer sess.Destroy()
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
	}
	in, err := ort.NewTensor(shape, x32)
	if err != nil {
		return nil, fmt.Errorf("export: onnxruntime input: %w", err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), k))
	if err != nil {
		return nil, fmt.Errorf("export: onnxruntime output: %w", err)
	}
	defer out.Destroy()
	if err := sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return nil, fmt.Errorf("export: onnxruntime run of the classifier on %d images: %w", n, err)
	}
	return append([]float32(nil), out.GetData()...), nil
}

// RunClassifier exports a classifier file: it reads and checks it, builds
// the ONNX model (BuildClassifier), evaluates it with ONNX Runtime on N
// check images (ClassifierCheckImages) and compares the probabilities with
// o.Reference. Only when the largest difference is within Tolerance is the
// model written to o.Out, atomically and sealed (o.Out+".sha256", as Run);
// otherwise o.Out is left as it was and the error gives the difference.
func RunClassifier(ctx context.Context, o ClassifierOptions) (*ClassifierResult, error) {
	if o.Path == "" || o.Out == "" {
		return nil, errors.New("export: a classifier file and an output file are required")
	}
	if o.N == 0 {
		o.N = 256
	}
	if o.N < 1 {
		return nil, fmt.Errorf("export: the number of check images must be ≥ 1, got %d", o.N)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if _, err := ortlib.Init(o.ORTLib); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	c, err := ReadClassifier(o.Path)
	if err != nil {
		return nil, err
	}
	if o.Reference == nil {
		o.Reference = func(x []float64, n int) ([]float64, error) { return ClassifierReference(c, x, n) }
		if o.ReferenceName == "" {
			o.ReferenceName = "float64 reference"
		}
	}
	if o.ReferenceName == "" {
		o.ReferenceName = "reference"
	}
	model, err := BuildClassifier(c)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, o.Path)
	}
	x := ClassifierCheckImages(c, o.N, o.Seed)
	ref, err := o.Reference(x, o.N)
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", o.ReferenceName, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	res := &ClassifierResult{Out: o.Out, Source: o.Path, Classifier: c, Bytes: len(model), N: o.N, Reference: o.ReferenceName}
	if res.ProbErr, err = ClassifierParity(model, x, o.N, ref); err != nil {
		return nil, err
	}
	if !(res.ProbErr <= Tolerance) {
		return nil, fmt.Errorf("export: classifier parity check failed against the %s on %d images: max probability error %.3g, tolerance %g; %s was not written",
			o.ReferenceName, o.N, res.ProbErr, Tolerance, o.Out)
	}
	if err := writeSealed(o.Out, model); err != nil {
		return nil, err
	}
	return res, nil
}
