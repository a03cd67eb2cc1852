package export

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jarzyn/jarzyn/models"
)

// Classifier is an image classifier as its file stores it (the header and
// the eight parameter tensors of train.Classifier, in float64): the
// classifier of docs/METHOD.md §5.2's metric, which labels samples by class.
//
// Params, in order: conv1 filters [16, C, 5, 5], conv1 bias [16], conv2
// filters [32, 16, 3, 3], conv2 bias [32], W1 [flatten, Hidden], b1
// [Hidden], W2 [Hidden, K], b2 [K] (models.ClassifierConvs; filters in
// (out, in, kh, kw) order, linear weights input-major: y = x·W + b; flatten
// in (channel, row, column) order).
type Classifier struct {
	models.ClassifierHeader
	Params [][]float64
}

// classifierShapes returns the conv output shapes [C, H, W] after each
// convolution and the parameter shapes of h.
func classifierShapes(h models.ClassifierHeader) (out [2][3]int, params [][]int) {
	in := [3]int{h.C, h.H, h.W}
	for i, l := range models.ClassifierConvs() {
		out[i] = [3]int{l.Out, (in[1]+2*l.Pad-l.Kernel)/l.Stride + 1, (in[2]+2*l.Pad-l.Kernel)/l.Stride + 1}
		params = append(params, []int{l.Out, in[0], l.Kernel, l.Kernel}, []int{l.Out})
		in = out[i]
	}
	flat := in[0] * in[1] * in[2]
	params = append(params, []int{flat, h.Hidden}, []int{h.Hidden}, []int{h.Hidden, len(h.Classes)}, []int{len(h.Classes)})
	return out, params
}

// Limits of a classifier file, guards against hostile headers.
const (
	maxClassifierSide    = 1024
	maxClassifierHidden  = 1 << 16
	maxClassifierClasses = 1000
)

// Check reports the first thing wrong with c: a header out of range
// (channels 1..16, sides 1..1024, hidden width 1..65536, 2..1000 distinct
// classes, accuracy in [0, 1]) or a tensor that does not fit it.
func (c *Classifier) Check() error {
	h := c.ClassifierHeader
	if h.C < 1 || h.C > 16 || h.H < 1 || h.H > maxClassifierSide || h.W < 1 || h.W > maxClassifierSide || h.Hidden < 1 || h.Hidden > maxClassifierHidden {
		return fmt.Errorf("classifier input %d×%d×%d or hidden width %d out of range", h.C, h.H, h.W, h.Hidden)
	}
	if len(h.Classes) < 2 || len(h.Classes) > maxClassifierClasses {
		return fmt.Errorf("classifier has %d classes, want 2..%d", len(h.Classes), maxClassifierClasses)
	}
	seen := map[int]bool{}
	for _, k := range h.Classes {
		if seen[k] {
			return fmt.Errorf("classifier class %d listed twice", k)
		}
		seen[k] = true
	}
	if !(h.Accuracy >= 0 && h.Accuracy <= 1) {
		return fmt.Errorf("classifier accuracy %v is not in [0, 1]", h.Accuracy)
	}
	out, shapes := classifierShapes(h)
	if out[1][1] < 1 || out[1][2] < 1 {
		return fmt.Errorf("classifier input %d×%d×%d is too small", h.C, h.H, h.W)
	}
	if len(c.Params) != len(shapes) {
		return fmt.Errorf("classifier has %d parameter tensors, want %d", len(c.Params), len(shapes))
	}
	for k, s := range shapes {
		if len(c.Params[k]) != prodInts(s) {
			return fmt.Errorf("classifier parameter %d has %d values, the architecture needs %d (%v)", k, len(c.Params[k]), prodInts(s), s)
		}
		for i, v := range c.Params[k] {
			if !finite(v) {
				return fmt.Errorf("classifier parameter %d[%d] is %v", k, i, v)
			}
		}
	}
	return nil
}

func prodInts(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// ReadClassifier reads a classifier file (train.SaveClassifier) and checks
// it; errors name the file.
func ReadClassifier(path string) (*Classifier, error) {
	f, err := models.ReadContainer(path)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if f.Kind != models.ClassifierKind {
		return nil, fmt.Errorf("export: %s is a %q file, not a classifier (%q)", path, f.Kind, models.ClassifierKind)
	}
	c := &Classifier{}
	if err := f.JSON(models.ClassifierHeaderSection, &c.ClassifierHeader); err != nil {
		return nil, fmt.Errorf("export: %s: %w", path, err)
	}
	_, shapes := classifierShapes(c.ClassifierHeader)
	for k := range shapes {
		v, err := f.Floats(models.ClassifierParamSection(k))
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", path, err)
		}
		c.Params = append(c.Params, v)
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("export: %s: %w", path, err)
	}
	return c, nil
}

// ClassesString is the jarzyn.classes value of classes: the labels,
// comma-separated.
func ClassesString(classes []int) string {
	s := make([]string, len(classes))
	for i, c := range classes {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// BuildClassifier exports c as a serialized ONNX ModelProto (opset 17, the
// same IR as Build) with input x float32 [batch, C, H, W] (pixels as the
// classifier was trained on: [−1, 1] for MNIST) and output probs float32
// [batch, K], the softmax of the logits, column k for class c.Classes[k].
// Its metadata_props: jarzyn.format_version, jarzyn.graph = classifier,
// jarzyn.classes (e.g. "2,3,6"), jarzyn.data_shape ([C,H,W]) and, when
// known, jarzyn.classifier_accuracy.
func BuildClassifier(c *Classifier) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("export: no classifier")
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	h := c.ClassifierHeader
	out, shapes := classifierShapes(h)
	b := newBuilder("jarzyn_classifier",
		fmt.Sprintf("Class probabilities of %d×%d×%d images over the classes %s.", h.C, h.H, h.W, ClassesString(h.Classes)))
	b.input(models.InputX, "images, one per row, pixels as in training", dim{param: BatchDim}, dim{value: int64(h.C)}, dim{value: int64(h.H)}, dim{value: int64(h.W)})
	silu := func(name, z string) string { return b.Mul(name, z, b.Sigmoid(name+"/sigmoid", z)) }
	x := models.InputX
	for i, l := range models.ClassifierConvs() {
		w := b.floats(fmt.Sprintf("param/cw%d", i), c.Params[2*i], shapes[2*i]...)
		bias := b.floats(fmt.Sprintf("param/cb%d", i), c.Params[2*i+1], shapes[2*i+1]...)
		x = silu(fmt.Sprintf("conv%d/silu", i), b.node(fmt.Sprintf("conv%d/conv", i), "Conv", []string{x, w, bias}, convAttrs(l)...))
		b.doc(fmt.Sprintf("[batch, %d, %d, %d]", out[i][0], out[i][1], out[i][2]))
	}
	x = b.node("flatten", "Flatten", []string{x}, intAttr("axis", 1))
	b.doc("(channel, row, column) order")
	x = silu("linear0/silu", b.Gemm("linear0/gemm", x, b.floats("param/w0", c.Params[4], shapes[4]...), b.floats("param/b0", c.Params[5], shapes[5]...), false))
	logits := b.Gemm("logits", x, b.floats("param/w1", c.Params[6], shapes[6]...), b.floats("param/b1", c.Params[7], shapes[7]...), false)
	b.node(models.OutputProbs, "Softmax", []string{logits}, intAttr("axis", 1))
	b.doc("class probabilities, column k for class k of jarzyn.classes")
	b.output(models.OutputProbs, "class probabilities, one row per image", dim{param: BatchDim}, dim{value: int64(len(h.Classes))})
	g, err := b.graph()
	if err != nil {
		return nil, err
	}
	meta := []keyValue{
		{models.KeyFormatVersion, strconv.Itoa(models.ONNXFormatVersion)},
		{models.KeyGraph, models.GraphClassifier},
		{models.KeyClasses, ClassesString(h.Classes)},
		{models.KeyDataShape, fmt.Sprintf("[%d,%d,%d]", h.C, h.H, h.W)},
	}
	if h.Accuracy > 0 {
		meta = append(meta, keyValue{models.KeyClassifierAccuracy, strconv.FormatFloat(h.Accuracy, 'g', -1, 64)})
	}
	m := modelProto{
		irVersion:       IRVersion,
		opsets:          []opsetID{{domain: "", version: Opset}},
		producerName:    "jarzyn",
		producerVersion: strconv.Itoa(models.ONNXFormatVersion),
		domain:          "io.github.jarzyn",
		modelVersion:    1,
		doc: fmt.Sprintf("jarzyn image classifier: conv %d→16 k5 s2 p2, SiLU, conv 16→32 k3 s2 p1, SiLU, flatten, linear → %d, SiLU, linear → %d logits, softmax. Input x [batch, %d, %d, %d]; output probs [batch, %d] for the classes %s. Metadata under jarzyn.*.",
			h.C, h.Hidden, len(h.Classes), h.C, h.H, h.W, len(h.Classes), ClassesString(h.Classes)),
		graph: g,
		meta:  meta,
	}
	return m.marshal(), nil
}

// ClassifierReference is a float64 evaluation of c, written independently
// of both training engine and ONNX (direct loops over every tap): the class
// probabilities of the n images in x (n×C·H·W), n×K row-major.
func ClassifierReference(c *Classifier, x []float64, n int) ([]float64, error) {
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	h := c.ClassifierHeader
	d := h.C * h.H * h.W
	if n < 0 || len(x) != n*d {
		return nil, fmt.Errorf("export: classifier reference got %d values for %d images of %d", len(x), n, d)
	}
	out, _ := classifierShapes(h)
	convs := models.ClassifierConvs()
	k := len(h.Classes)
	probs := make([]float64, n*k)
	silu := func(v float64) float64 { return v / (1 + math.Exp(-v)) }
	for i := 0; i < n; i++ {
		a, sh := x[i*d:(i+1)*d], [3]int{h.C, h.H, h.W}
		for j, l := range convs {
			w, bias, osh := c.Params[2*j], c.Params[2*j+1], out[j]
			next := make([]float64, osh[0]*osh[1]*osh[2])
			for o := 0; o < osh[0]; o++ {
				for r := 0; r < osh[1]; r++ {
					for q := 0; q < osh[2]; q++ {
						s := bias[o]
						for ci := 0; ci < sh[0]; ci++ {
							for u := 0; u < l.Kernel; u++ {
								y := r*l.Stride - l.Pad + u
								if y < 0 || y >= sh[1] {
									continue
								}
								for v := 0; v < l.Kernel; v++ {
									z := q*l.Stride - l.Pad + v
									if z < 0 || z >= sh[2] {
										continue
									}
									s += w[((o*sh[0]+ci)*l.Kernel+u)*l.Kernel+v] * a[(ci*sh[1]+y)*sh[2]+z]
								}
							}
						}
						next[(o*osh[1]+r)*osh[2]+q] = silu(s)
					}
				}
			}
			a, sh = next, osh
		}
		hid := make([]float64, h.Hidden)
		for u := range hid {
			s := c.Params[5][u]
			for f, v := range a {
				s += v * c.Params[4][f*h.Hidden+u]
			}
			hid[u] = silu(s)
		}
		logits := make([]float64, k)
		for m := range logits {
			s := c.Params[7][m]
			for u, v := range hid {
				s += v * c.Params[6][u*k+m]
			}
			logits[m] = s
		}
		lse := models.LogSumExp(logits)
		for m, v := range logits {
			probs[i*k+m] = math.Exp(v - lse)
		}
	}
	return probs, nil
}
