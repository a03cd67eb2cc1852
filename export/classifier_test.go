package export

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/train"
)

// trainedClassifier trains a small classifier (train.TrainClassifier) on
// noisy stroke prototypes of shape c×h×w, labelled 7, 3, 5, 1, saves it and
// returns the training engine's classifier and the file.
func trainedClassifier(t *testing.T, c, h, w int) (*train.Classifier, string) {
	t.Helper()
	protos, err := datasets.Prototypes("strokes", c, h, w)
	if err != nil {
		t.Fatal(err)
	}
	labels := []int{7, 3, 5, 1}
	rng := rand.New(rand.NewPCG(4, 5))
	im := &datasets.Images{N: 256, C: c, H: h, W: w}
	for i := 0; i < im.N; i++ {
		for _, v := range protos[i%4] {
			im.Pixels = append(im.Pixels, v+0.7*rng.NormFloat64())
		}
		im.Labels = append(im.Labels, labels[i%4])
	}
	clf, err := train.TrainClassifier(context.Background(), im, labels, train.ClassifierConfig{Epochs: 2, BatchSize: 32, Hidden: 24, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	clf.TestAccuracy = 0.75
	path := filepath.Join(t.TempDir(), models.ClassifierFile)
	if err := train.SaveClassifier(path, clf); err != nil {
		t.Fatal(err)
	}
	return clf, path
}

// The exported classifier computes the training engine's probabilities
// (train.Classifier.Predict, float32 gorgonia) within 1e-4 at batches 1, 7
// and 256, on MNIST's shape and on a three-channel image with odd, unequal
// sides (flatten order and padding); so does the float64 reference.
func TestClassifierParity(t *testing.T) {
	needORT(t)
	for _, tc := range []struct{ c, h, w int }{{1, 28, 28}, {3, 11, 9}} {
		clf, path := trainedClassifier(t, tc.c, tc.h, tc.w)
		c, err := ReadClassifier(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Accuracy != 0.75 || c.Hidden != 24 || len(c.Classes) != 4 {
			t.Fatalf("read back header %+v", c.ClassifierHeader)
		}
		model, err := BuildClassifier(c)
		if err != nil {
			t.Fatal(err)
		}
		x := ClassifierCheckImages(c, 256, 3)
		for _, n := range []int{1, 7, 256} {
			xs := x[len(x)-n*tc.c*tc.h*tc.w:] // smooth images last: n = 1 and 7 see them
			want, err := clf.Predict(xs, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ClassifierParity(model, xs, n, want)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := ClassifierReference(c, xs, n)
			if err != nil {
				t.Fatal(err)
			}
			refErr := 0.0
			for i := range ref {
				refErr = math.Max(refErr, math.Abs(ref[i]-want[i]))
			}
			t.Logf("%d×%d×%d batch %d: ONNX vs training engine %.2e, float64 reference vs training engine %.2e", tc.c, tc.h, tc.w, n, got, refErr)
			if !(got <= 1e-4) || !(refErr <= 1e-4) {
				t.Errorf("%d×%d×%d batch %d: max probability error ONNX %.3g, float64 reference %.3g, want ≤ 1e-4", tc.c, tc.h, tc.w, n, got, refErr)
			}
		}
	}
}

// The file's metadata and signature: x [batch, C, H, W] → probs [batch, K],
// jarzyn.graph classifier, jarzyn.classes in output order, the data shape
// and the accuracy.
func TestClassifierMetadata(t *testing.T) {
	needORT(t)
	_, path := trainedClassifier(t, 1, 8, 8)
	c, err := ReadClassifier(path)
	if err != nil {
		t.Fatal(err)
	}
	model, err := BuildClassifier(c)
	if err != nil {
		t.Fatal(err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].Name != models.InputX || ins[0].Dimensions.String() != "[-1 1 8 8]" ||
		len(outs) != 1 || outs[0].Name != models.OutputProbs || outs[0].Dimensions.String() != "[-1 4]" {
		t.Fatalf("signature %v → %v", ins, outs)
	}
	md, err := ort.GetModelMetadataWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Destroy()
	for k, want := range map[string]string{models.KeyGraph: models.GraphClassifier, models.KeyClasses: "7,3,5,1",
		models.KeyDataShape: "[1,8,8]", models.KeyClassifierAccuracy: "0.75", models.KeyFormatVersion: "1"} {
		got, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil || !ok || got != want {
			t.Errorf("metadata %s = %q (present %v, %v), want %q", k, got, ok, err, want)
		}
	}
}

// RunClassifier writes a sealed model that passes its check, refuses
// files that are no classifier, and leaves nothing when the reference
// disagrees.
func TestRunClassifier(t *testing.T) {
	needORT(t)
	clf, path := trainedClassifier(t, 1, 8, 8)
	dir := t.TempDir()
	out := filepath.Join(dir, "clf.onnx")
	res, err := RunClassifier(context.Background(), ClassifierOptions{Path: path, Out: out, Reference: clf.Predict, ReferenceName: "training engine"})
	if err != nil {
		t.Fatal(err)
	}
	if !(res.ProbErr <= Tolerance) || res.N != 256 {
		t.Errorf("result %+v", res)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.VerifySeal(out, data); err != nil {
		t.Errorf("seal: %v", err)
	}
	// the float64 reference by default
	if _, err := RunClassifier(context.Background(), ClassifierOptions{Path: path, Out: filepath.Join(dir, "b.onnx")}); err != nil {
		t.Errorf("default reference: %v", err)
	}
	// a reference that disagrees by 1e-3: nothing written
	bad := filepath.Join(dir, "bad.onnx")
	off := func(x []float64, n int) ([]float64, error) {
		p, err := clf.Predict(x, n)
		p[0] += 1e-3
		return p, err
	}
	if _, err := RunClassifier(context.Background(), ClassifierOptions{Path: path, Out: bad, Reference: off}); err == nil || !strings.Contains(err.Error(), "parity") {
		t.Errorf("disagreeing reference: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed check left %s (%v)", bad, err)
	}
	// a weights file is not a classifier; a missing file is named
	p, err := models.NewParams(models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{3}, Activation: models.SiLU, BaseStd: 1})
	if err != nil {
		t.Fatal(err)
	}
	wPath := filepath.Join(dir, "model.weights")
	if err := models.WriteParams(wPath, p, nil); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{wPath, filepath.Join(dir, "missing.bin")} {
		if _, err := RunClassifier(context.Background(), ClassifierOptions{Path: src, Out: bad}); err == nil || !strings.Contains(err.Error(), filepath.Base(src)) {
			t.Errorf("%s: %v", src, err)
		}
	}
}
