package train

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
)

// WeightedClassFractions on hand-made probabilities: the argmax class
// takes the weight, ties go to the first class, confident counts top
// probabilities above 0.9 only; nil weights are uniform.
func TestWeightedClassFractions(t *testing.T) {
	probs := []float64{
		0.95, 0.03, 0.02, // class 2, confident
		0.1, 0.5, 0.4, // class 3
		0.2, 0.2, 0.6, // class 6
		0.45, 0.45, 0.1, // tie → class 2
		0.0, 0.05, 0.95, // class 6, confident
	}
	classes := []int{2, 3, 6}
	for _, tc := range []struct {
		name      string
		w         []float64
		want      []float64
		confident float64
	}{
		{"weighted", []float64{0.1, 0.2, 0.3, 0.15, 0.25}, []float64{0.25, 0.2, 0.55}, 0.35},
		{"uniform", nil, []float64{0.4, 0.2, 0.4}, 0.4},
	} {
		f, err := WeightedClassFractions(probs, classes, tc.w)
		if err != nil {
			t.Fatal(err)
		}
		for k := range tc.want {
			if math.Abs(f.Fractions[k]-tc.want[k]) > 1e-15 {
				t.Errorf("%s: fractions %v, want %v", tc.name, f.Fractions, tc.want)
				break
			}
		}
		if math.Abs(f.Confident-tc.confident) > 1e-15 || !slices.Equal(f.Classes, classes) {
			t.Errorf("%s: confident %v classes %v, want %v", tc.name, f.Confident, f.Classes, tc.confident)
		}
	}
	if _, err := WeightedClassFractions(probs[:4], classes, nil); err == nil {
		t.Error("4 probabilities for 3 classes accepted")
	}
	if _, err := WeightedClassFractions(probs, classes, []float64{1}); err == nil {
		t.Error("1 weight for 5 images accepted")
	}
}

// On real MNIST t10k digits 2, 3, 6 with hand-made weights (each class's
// images share 4/7, 2/7, 1/7 of the weight): the weighted fractions equal a
// brute-force count over Classifier.Label, and differ from the true
// fractions by at most the weight of the misclassified images. The
// classifier is a quick one (one epoch on 3000 training images).
func TestClassFractionsMNIST(t *testing.T) {
	dir := filepath.Join("..", ".deps", "mnist")
	if _, err := os.Stat(filepath.Join(dir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("MNIST is not in %s (make setup installs it): %v", dir, err)
	}
	trainSet, err := datasets.LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	trainSet, err = trainSet.Subset([]int{2, 3, 6}, []int{1000, 1000, 1000})
	if err != nil {
		t.Fatal(err)
	}
	testSet, err := datasets.LoadMNIST(dir, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	testSet, err = testSet.Subset([]int{2, 3, 6}, []int{300, 300, 300})
	if err != nil {
		t.Fatal(err)
	}
	classes := []int{2, 3, 6}
	clf, err := TrainClassifier(context.Background(), trainSet, classes, ClassifierConfig{Epochs: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	share := map[int]float64{2: 4.0 / 7, 3: 2.0 / 7, 6: 1.0 / 7}
	count := map[int]int{}
	for _, l := range testSet.Labels {
		count[l]++
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, testSet.N)
	raw := make([]float64, testSet.N)
	for i := range raw {
		raw[i] = 0.5 + rng.Float64() // uneven within a class
	}
	classSum := map[int]float64{}
	for i, l := range testSet.Labels {
		classSum[l] += raw[i]
	}
	for i, l := range testSet.Labels {
		w[i] = share[l] * raw[i] / classSum[l]
	}
	probs, err := clf.Predict(testSet.Pixels, testSet.N)
	if err != nil {
		t.Fatal(err)
	}
	f, err := WeightedClassFractions(probs, classes, w)
	if err != nil {
		t.Fatal(err)
	}
	labels, conf, err := clf.Label(testSet.Pixels, testSet.N)
	if err != nil {
		t.Fatal(err)
	}
	brute := map[int]float64{}
	wrong, confident := 0.0, 0.0
	for i, l := range labels {
		brute[l] += w[i]
		if l != testSet.Labels[i] {
			wrong += w[i]
		}
		if conf[i] > 0.9 {
			confident += w[i]
		}
	}
	for k, c := range classes {
		if math.Abs(f.Fractions[k]-brute[c]) > 1e-12 {
			t.Errorf("class %d: fraction %v, brute force %v", c, f.Fractions[k], brute[c])
		}
		if math.Abs(f.Fractions[k]-share[c]) > wrong+1e-12 {
			t.Errorf("class %d: fraction %v, true %v, misclassified weight %v", c, f.Fractions[k], share[c], wrong)
		}
	}
	if math.Abs(f.Confident-confident) > 1e-12 {
		t.Errorf("confident %v, brute force %v", f.Confident, confident)
	}
	t.Logf("fractions %.4f (true 0.5714 0.2857 0.1429), misclassified weight %.4f, confident %.4f", f.Fractions, wrong, f.Confident)
	if wrong > 0.1 {
		t.Errorf("misclassified weight %v: the classifier did not learn", wrong)
	}
}

// strokesRunConfig is a small image run: the four 1×8×8 stroke prototypes
// with pixel noise 0.5 and masses 0.4/0.3/0.2/0.1, a one-layer conv net.
func strokesRunConfig() Config {
	c := DefaultConfig()
	c.Dtype = "float32"
	c.Model.Spec = models.Spec{Family: models.Conv, Dim: 64, InputShape: []int{1, 8, 8},
		Conv:   []models.ConvLayer{{Out: 4, Kernel: 3, Stride: 2, Pad: 1, Activation: models.SiLU}},
		Hidden: []int{8}, Activation: models.SiLU, BaseStd: 1}
	c.Data.Kind = "images"
	c.Data.N = 1000
	c.Data.Batch = 100
	c.Data.Teacher.Masses = []float64{0.4, 0.3, 0.2, 0.1}
	c.Data.Teacher.Stds = []float64{0.5, 0.5, 0.5, 0.5}
	c.Walkers.N = 2000
	c.Walkers.StepSize = 1e-3
	c.Iterations = 20
	c.Log.Every = 5
	c.Log.EvalEvery = 1
	c.Log.CheckpointEvery = 1000
	return c
}

// strokesClassifier trains a classifier of the strokes teacher's modes
// (labels 0..3, as the data's labels) on fresh teacher samples and saves it.
func strokesClassifier(t *testing.T, cfg Config, shape []int) string {
	t.Helper()
	teacher, err := cfg.teacher()
	if err != nil {
		t.Fatal(err)
	}
	x, labels := teacher.Sample(512, true, rand.New(rand.NewPCG(7, 7)))
	im := &datasets.Images{N: 512, C: shape[0], H: shape[1], W: shape[2], Pixels: x, Labels: labels}
	clf, err := TrainClassifier(context.Background(), im, []int{0, 1, 2, 3}, ClassifierConfig{Epochs: 3, BatchSize: 32, Hidden: 16, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	clf.TestAccuracy = 0.98
	path := filepath.Join(t.TempDir(), models.ClassifierFile)
	if err := SaveClassifier(path, clf); err != nil {
		t.Fatal(err)
	}
	return path
}

// A short PCD run with log.classifier: metrics.csv has class_<label> and
// confident_fraction columns, filled every classify_every iterations and
// summing to 1; at iteration 0 the walkers are data points, so their class
// fractions match the data's 0.4/0.3/0.2/0.1 within sampling error;
// summary.json has classifier_accuracy, class_fractions, target_fractions
// and confident_fraction; plots/classes.png and the walker grids exist.
func TestTrainingClassMetric(t *testing.T) {
	for _, method := range []Method{PCD, Jarzynski} {
		t.Run(string(method), func(t *testing.T) {
			cfg := strokesRunConfig()
			cfg.Method = method
			if method == Jarzynski {
				cfg.Walkers.Monitor = 500 // the metric reads the monitor walkers
			}
			cfg.Log.Classifier = strokesClassifier(t, cfg, []int{1, 8, 8})
			cfg.Log.ClassifyEvery = 10
			cfg.Log.ImageGridEvery = 10
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			rows := readMetricsRows(t, dir)
			head := rows[0]
			col := map[string]int{}
			for i, h := range head {
				col[h] = i
			}
			want := []string{"class_0", "class_1", "class_2", "class_3", "confident_fraction"}
			if !slices.Equal(head[len(head)-5:], want) {
				t.Fatalf("metrics.csv ends with %v, want %v", head[len(head)-5:], want)
			}
			labelled := 0
			for _, r := range rows[1:] {
				it, _ := strconv.Atoi(r[0])
				if r[col["class_0"]] == "" {
					if it%10 == 0 {
						t.Errorf("iteration %d: no class fractions", it)
					}
					continue
				}
				labelled++
				s := 0.0
				var fr []float64
				for _, c := range want[:4] {
					v, _ := strconv.ParseFloat(r[col[c]], 64)
					fr = append(fr, v)
					s += v
				}
				if math.Abs(s-1) > 1e-9 {
					t.Errorf("iteration %d: fractions %v sum to %v", it, fr, s)
				}
				if it == 0 && method == PCD {
					for k, m := range []float64{0.4, 0.3, 0.2, 0.1} {
						if math.Abs(fr[k]-m) > 0.05 {
							t.Errorf("iteration 0: walkers are data, class %d fraction %.3f, data %.1f", k, fr[k], m)
						}
					}
				}
			}
			if labelled != 3 { // iterations 0, 10 and the final 20
				t.Errorf("%d labelled rows, want 3", labelled)
			}
			b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
			if err != nil {
				t.Fatal(err)
			}
			var js map[string]any
			if err := json.Unmarshal(b, &js); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"classifier_accuracy", "class_fractions", "target_fractions", "confident_fraction"} {
				if _, ok := js[k]; !ok {
					t.Errorf("summary.json has no %s", k)
				}
			}
			if sum.ClassSummary == nil || *sum.ClassifierAccuracy != 0.98 {
				t.Fatalf("summary %+v", sum.ClassSummary)
			}
			for k, m := range map[string]float64{"0": 0.4, "1": 0.3, "2": 0.2, "3": 0.1} {
				if math.Abs(sum.TargetFractions[k]-m) > 1e-12 {
					t.Errorf("target fraction of %s = %v, want %v (data.split)", k, sum.TargetFractions[k], m)
				}
			}
			for _, p := range []string{"classes.png", "grid_0.png", "grid_10.png", "grid_final.png"} {
				if st, err := os.Stat(filepath.Join(dir, PlotsDir, p)); err != nil || st.Size() == 0 {
					t.Errorf("plots/%s: %v", p, err)
				}
			}
		})
	}
}

// A classifier that takes other images, or a missing file, stops the run
// before anything is written, with both names in the error; the keys are
// validated.
func TestTrainingClassifierErrors(t *testing.T) {
	cfg := strokesRunConfig()
	other := strokesRunConfig()
	other.Model.InputShape, other.Model.Dim = []int{1, 9, 9}, 81
	cfg.Log.Classifier = strokesClassifier(t, other, []int{1, 9, 9})
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Logger: quiet}); err == nil ||
		!strings.Contains(err.Error(), cfg.Log.Classifier) || !strings.Contains(err.Error(), "1×9×9") || !strings.Contains(err.Error(), "model.input_shape is [1 8 8]") {
		t.Errorf("shape mismatch: %v", err)
	}
	cfg.Log.Classifier = filepath.Join(t.TempDir(), "missing.bin")
	if _, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Logger: quiet}); err == nil ||
		!strings.Contains(err.Error(), "log.classifier") || !strings.Contains(err.Error(), "missing.bin") {
		t.Errorf("missing classifier: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused run created %s", dir)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"classify_every not a multiple", func(c *Config) { c.Log.ClassifyEvery = 7 }, "log.classify_every"},
		{"grid every not a multiple", func(c *Config) { c.Log.ImageGridEvery = 3 }, "log.image_grid_every"},
		{"classifier on an mlp", func(c *Config) { *c = DefaultConfig(); c.Log.Classifier = "x.bin" }, "log.classifier"},
		{"grid on an mlp", func(c *Config) { *c = DefaultConfig(); c.Log.ImageGridEvery = 10 }, "log.image_grid_every"},
	} {
		c := strokesRunConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
