package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// Classifier is an exported image classifier (export.BuildClassifier: x
// [batch, C, H, W] → probs [batch, K]) loaded in ONNX Runtime, which labels
// samples by class: the class-fraction metric of docs/METHOD.md §5.2.
type Classifier struct {
	// Path is the file it was read from.
	Path string
	// Classes are the labels of its outputs (jarzyn.classes).
	Classes []int
	// Shape is the image shape [C, H, W] it takes.
	Shape []int
	// Accuracy is its held-out accuracy (jarzyn.classifier_accuracy), 0 if unknown.
	Accuracy float64

	sess *ort.DynamicAdvancedSession
}

// ConfidentProb is the top-class probability above which a sample counts
// as confidently labelled (ClassReport.ConfidentFraction).
const ConfidentProb = 0.9

// classifierBatch is the number of images per classifier Run.
const classifierBatch = 256

// LoadClassifier reads an exported classifier, checks its seal (as
// LoadModel), metadata (jarzyn.graph = classifier, jarzyn.classes) and
// signature, and creates a CPU session. Errors name the file.
func LoadClassifier(path string, opt LoadOptions) (*Classifier, error) {
	if _, err := ortlib.Init(opt.ORTLib); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("serve: classifier %s: %v", path, err)
	}
	if err := verifySeal(path, data, opt); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("serve: classifier %s is not a loadable ONNX model: %v", path, err)
	}
	meta, err := classifierMeta(data)
	if err != nil {
		return nil, fmt.Errorf("serve: classifier %s: %v", path, err)
	}
	c := &Classifier{Path: path}
	if g := meta[models.KeyGraph]; g != models.GraphClassifier {
		return nil, fmt.Errorf("serve: %s is not a classifier: metadata %s=%q, want %q (export one with jarzyn-export --classifier)", path, models.KeyGraph, g, models.GraphClassifier)
	}
	for _, s := range strings.Split(meta[models.KeyClasses], ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("serve: classifier %s: metadata %s=%q is not a list of integers", path, models.KeyClasses, meta[models.KeyClasses])
		}
		c.Classes = append(c.Classes, v)
	}
	if a, ok := meta[models.KeyClassifierAccuracy]; ok {
		if c.Accuracy, err = strconv.ParseFloat(a, 64); err != nil || !(c.Accuracy >= 0 && c.Accuracy <= 1) {
			return nil, fmt.Errorf("serve: classifier %s: metadata %s=%q is not in [0, 1]", path, models.KeyClassifierAccuracy, a)
		}
	}
	if len(ins) != 1 || ins[0].Name != models.InputX || ins[0].DataType != ort.TensorElementDataTypeFloat || len(ins[0].Dimensions) != 4 ||
		len(outs) != 1 || outs[0].Name != models.OutputProbs || outs[0].DataType != ort.TensorElementDataTypeFloat || len(outs[0].Dimensions) != 2 ||
		outs[0].Dimensions[1] != int64(len(c.Classes)) {
		return nil, fmt.Errorf("serve: classifier %s has inputs %v and outputs %v, want input x float32 [batch, C, H, W] and output probs float32 [batch, %d] (one column per class of %s)",
			path, ins, outs, len(c.Classes), models.KeyClasses)
	}
	for _, v := range ins[0].Dimensions[1:] {
		if v < 1 || v > models.ONNXMaxDim {
			return nil, fmt.Errorf("serve: classifier %s: input shape %v is not fixed", path, ins[0].Dimensions)
		}
		c.Shape = append(c.Shape, int(v))
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("serve: classifier %s: %v", path, err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opt.threads()); err != nil {
		return nil, fmt.Errorf("serve: classifier %s: %v", path, err)
	}
	if c.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, []string{models.InputX}, []string{models.OutputProbs}, so); err != nil {
		return nil, fmt.Errorf("serve: classifier %s: creating the session failed: %v", path, err)
	}
	return c, nil
}

// classifierMeta reads an ONNX file's metadata_props.
func classifierMeta(data []byte) (map[string]string, error) {
	md, err := ort.GetModelMetadataWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %v", err)
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, fmt.Errorf("reading metadata keys: %v", err)
	}
	meta := map[string]string{}
	for _, k := range keys {
		if meta[k], _, err = md.LookupCustomMetadataMap(k); err != nil {
			return nil, fmt.Errorf("reading metadata %s: %v", k, err)
		}
	}
	return meta, nil
}

// Close frees the session; the classifier must not be used afterwards.
func (c *Classifier) Close() {
	if c != nil && c.sess != nil {
		c.sess.Destroy()
		c.sess = nil
	}
}

// CheckShape returns an error naming both files when the classifier does
// not take the images that model (a file path, for the message) samples:
// the same [C, H, W], or their C·H·W values in one row, as an MLP trained on
// image files samples them.
func (c *Classifier) CheckShape(model string, shape []int) error {
	if slices.Equal(c.Shape, shape) {
		return nil
	}
	// an MLP trained on image files samples the images flattened, in the
	// same C·H·W order
	if len(shape) == 1 && shape[0] == c.Shape[0]*c.Shape[1]*c.Shape[2] {
		return nil
	}
	return fmt.Errorf("serve: classifier %s takes images %v, but model %s samples %v", c.Path, c.Shape, model, shape)
}

// Probs returns the class probabilities of the n images x (n×C·H·W),
// n×len(Classes) row-major, evaluated in batches of 256.
func (c *Classifier) Probs(x []float32, n int) ([]float32, error) {
	d := c.Shape[0] * c.Shape[1] * c.Shape[2]
	if n < 0 || len(x) != n*d {
		return nil, fmt.Errorf("serve: classifier %s got %d values for %d images of %v", c.Path, len(x), n, c.Shape)
	}
	k := len(c.Classes)
	probs := make([]float32, 0, n*k)
	for s := 0; s < n; s += classifierBatch {
		m := min(classifierBatch, n-s)
		in, err := ort.NewTensor(ort.NewShape(int64(m), int64(c.Shape[0]), int64(c.Shape[1]), int64(c.Shape[2])), x[s*d:(s+m)*d])
		if err != nil {
			return nil, fmt.Errorf("serve: classifier input: %w", err)
		}
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(m), int64(k)))
		if err != nil {
			in.Destroy()
			return nil, fmt.Errorf("serve: classifier output: %w", err)
		}
		err = c.sess.Run([]ort.Value{in}, []ort.Value{out})
		probs = append(probs, out.GetData()...)
		in.Destroy()
		out.Destroy()
		if err != nil {
			return nil, fmt.Errorf("serve: classifier %s: %w", c.Path, err)
		}
	}
	return probs, nil
}

// ClassReport is what a classifier says of a sampling result: the share of
// the samples (weighted by their normalised Jarzynski weights when the
// result is weighted, else equally) whose most probable class is each
// class, and the share whose top probability exceeds ConfidentProb.
type ClassReport struct {
	Classifier string `json:"classifier"`
	Classes    []int  `json:"classes"`
	// ClassFractions maps each class label to its fraction.
	ClassFractions    map[string]float64 `json:"class_fractions"`
	ConfidentFraction float64            `json:"confident_fraction"`
	// ClassifierAccuracy is the classifier's held-out accuracy, if known.
	ClassifierAccuracy float64 `json:"classifier_accuracy,omitempty"`
	Weighted           bool    `json:"weighted"`
	N                  int     `json:"n"`
}

// Classify labels every sample of r and reports the (weighted) class
// fractions.
func (c *Classifier) Classify(r *Result) (*ClassReport, error) {
	if err := c.CheckShape("of the result", r.DataShape); err != nil {
		return nil, err
	}
	probs, err := c.Probs(r.Samples, r.N)
	if err != nil {
		return nil, err
	}
	w := r.normalizedWeights()
	k := len(c.Classes)
	rep := &ClassReport{Classifier: c.Path, Classes: c.Classes, ClassFractions: map[string]float64{}, ClassifierAccuracy: c.Accuracy, Weighted: r.Weighted, N: r.N}
	frac := make([]float64, k)
	for i := 0; i < r.N; i++ {
		row := probs[i*k : (i+1)*k]
		best := 0
		for j := 1; j < k; j++ {
			if row[j] > row[best] {
				best = j
			}
		}
		frac[best] += w[i]
		if row[best] > ConfidentProb {
			rep.ConfidentFraction += w[i]
		}
	}
	for j, cl := range c.Classes {
		rep.ClassFractions[strconv.Itoa(cl)] = frac[j]
	}
	return rep, nil
}

// Line is the report in one line, classes in the classifier's order.
func (rep *ClassReport) Line() string {
	var parts []string
	for _, c := range rep.Classes {
		parts = append(parts, fmt.Sprintf("%d %.4f", c, rep.ClassFractions[strconv.Itoa(c)]))
	}
	kind := "unweighted"
	if rep.Weighted {
		kind = "weighted"
	}
	return fmt.Sprintf("class fractions (%s, %d samples): %s; confident (p > %g) %.4f", kind, rep.N, strings.Join(parts, ", "), ConfidentProb, rep.ConfidentFraction)
}

// ClassesPath is where sample --classifier writes the report beside an
// output file: out + ".classes.json".
func ClassesPath(out string) string { return out + ".classes.json" }

// WriteClassReport writes rep as indented JSON to path, atomically.
func WriteClassReport(path string, rep *ClassReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
