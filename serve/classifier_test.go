package serve

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// tinyClassifier is a classifier of shape images with hand-drawn weights
// (scaled so that its probabilities are spread, not all 0 or 1).
func tinyClassifier(t testing.TB, shape []int, classes []int) *export.Classifier {
	t.Helper()
	c := &export.Classifier{ClassifierHeader: models.ClassifierHeader{Classes: classes, C: shape[0], H: shape[1], W: shape[2], Hidden: 5, Accuracy: 0.9}}
	h1 := (shape[1]+4-5)/2 + 1
	w1 := (shape[2]+4-5)/2 + 1
	flat := 32 * ((h1+2-3)/2 + 1) * ((w1+2-3)/2 + 1)
	sizes := []int{16 * shape[0] * 25, 16, 32 * 16 * 9, 32, flat * 5, 5, 5 * len(classes), len(classes)}
	scales := []float64{0.3, 0.1, 0.2, 0.1, 0.3, 0.1, 2, 0.3}
	rng := rand.New(rand.NewPCG(11, 12))
	for k, n := range sizes {
		p := make([]float64, n)
		for i := range p {
			p[i] = scales[k] * rng.NormFloat64()
		}
		c.Params = append(c.Params, p)
	}
	return c
}

// classifierFile exports c, sealed, into a temp dir.
func classifierFile(t testing.TB, c *export.Classifier) string {
	t.Helper()
	b, err := export.BuildClassifier(c)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "classifier.onnx", b)
}

// convModelFile exports the conv test model (images 2×5×7).
func convModelFile(t testing.TB) string {
	t.Helper()
	b, err := export.Build(convParams(t, 0.5, 0.1), models.TrainingInfo{Method: "test", StepSize: 0.01, LogZEstimate: math.NaN(), DataMin: -1, DataMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "model.onnx", b)
}

// Classify on weighted samples: the class fractions and the confident
// fraction equal a brute-force count over the float64 reference of the
// classifier (export.ClassifierReference) with the normalised weights.
func TestClassifyWeightedSamples(t *testing.T) {
	needORT(t)
	ec := tinyClassifier(t, []int{2, 5, 7}, []int{4, 9, 1})
	clf, err := LoadClassifier(classifierFile(t, ec), LoadOptions{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	m, err := LoadModel(convModelFile(t), LoadOptions{Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, err := Sample(context.Background(), m, SampleConfig{N: 300, Steps: 10, Seed: 3, Weighted: true, ResampleThreshold: 0})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := clf.Classify(res)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, len(res.Samples))
	for i, v := range res.Samples {
		x[i] = float64(v)
	}
	probs, err := export.ClassifierReference(ec, x, res.N)
	if err != nil {
		t.Fatal(err)
	}
	lse := math.Inf(-1)
	for _, a := range res.LogWeights {
		lse = math.Max(lse, a)
	}
	z := 0.0
	for _, a := range res.LogWeights {
		z += math.Exp(a - lse)
	}
	frac := map[int]float64{}
	confident, spread := 0.0, 0
	for i := 0; i < res.N; i++ {
		w := math.Exp(res.LogWeights[i]-lse) / z
		best := 0
		for j := 1; j < 3; j++ {
			if probs[i*3+j] > probs[i*3+best] {
				best = j
			}
		}
		frac[ec.Classes[best]] += w
		if probs[i*3+best] > ConfidentProb {
			confident += w
		} else {
			spread++
		}
	}
	for _, c := range ec.Classes {
		if got := rep.ClassFractions[strconv.Itoa(c)]; math.Abs(got-frac[c]) > 1e-9 {
			t.Errorf("class %d: fraction %v, brute force %v", c, got, frac[c])
		}
	}
	if math.Abs(rep.ConfidentFraction-confident) > 1e-9 || !rep.Weighted || rep.N != 300 || rep.ClassifierAccuracy != 0.9 {
		t.Errorf("report %+v, confident by brute force %v", rep, confident)
	}
	if spread == 0 || spread == res.N {
		t.Errorf("%d of %d samples below the confidence threshold: the test does not exercise both sides", spread, res.N)
	}
	t.Log(rep.Line())
}

// sample --classifier: the report goes to stderr, the summary and
// OUT.classes.json; a missing classifier, an energy model in its place and
// a classifier of other images fail with exit 1 before sampling, naming the
// files, and write nothing.
func TestMainSampleClassifier(t *testing.T) {
	needORT(t)
	model := convModelFile(t)
	clf := classifierFile(t, tinyClassifier(t, []int{2, 5, 7}, []int{4, 9, 1}))
	dir := t.TempDir()
	out := filepath.Join(dir, "s.png")
	code, stdout, stderr := runMain(t, context.Background(), "sample", "--model", model, "--classifier", clf, "--n", "100", "--steps", "5", "--weighted", "--out", out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "class fractions (weighted, 100 samples): 4 ") {
		t.Errorf("stderr %q", stderr)
	}
	var sum SampleSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ClassesPath(out))
	if err != nil {
		t.Fatal(err)
	}
	var rep ClassReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	s := 0.0
	for _, v := range rep.ClassFractions {
		s += v
	}
	if sum.Classes == nil || len(rep.ClassFractions) != 3 || math.Abs(s-1) > 1e-9 || rep.ClassFractions["9"] != sum.Classes.ClassFractions["9"] {
		t.Errorf("report %+v, summary %+v", rep, sum.Classes)
	}
	if n := len(sum.Files); n == 0 || sum.Files[n-1] != ClassesPath(out) {
		t.Errorf("files %v", sum.Files)
	}

	other := classifierFile(t, tinyClassifier(t, []int{1, 8, 8}, []int{0, 1}))
	for _, tc := range []struct {
		name, classifier string
		want             []string
	}{
		{"missing", filepath.Join(dir, "nope.onnx"), []string{"nope.onnx"}},
		{"energy model", model, []string{model, "not a classifier"}},
		{"shape mismatch", other, []string{other, model, "[1 8 8]", "[2 5 7]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := filepath.Join(t.TempDir(), "x.png")
			code, stdout, stderr := runMain(t, context.Background(), "sample", "--model", model, "--classifier", tc.classifier, "--n", "10", "--steps", "2", "--out", o)
			if code != ExitError || stdout != "" {
				t.Errorf("exit %d, stdout %q", code, stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if _, err := os.Stat(o); !os.IsNotExist(err) {
				t.Errorf("%s written", o)
			}
		})
	}
}

// CheckShape accepts the classifier's image shape and the same images
// flattened (an MLP on image files), and refuses anything else naming both
// files.
func TestClassifierCheckShape(t *testing.T) {
	c := &Classifier{Path: "clf.onnx", Shape: []int{1, 4, 4}}
	for _, tc := range []struct {
		shape []int
		ok    bool
	}{
		{[]int{1, 4, 4}, true},
		{[]int{16}, true},
		{[]int{4, 4}, false},
		{[]int{17}, false},
		{[]int{1, 4, 5}, false},
		{[]int{2}, false},
	} {
		err := c.CheckShape("model.onnx", tc.shape)
		if (err == nil) != tc.ok {
			t.Errorf("shape %v: %v, want ok %v", tc.shape, err, tc.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "clf.onnx") || !strings.Contains(err.Error(), "model.onnx")) {
			t.Errorf("shape %v: %v does not name both files", tc.shape, err)
		}
	}
}
