package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/datasets"
)

// strokesImages draws n noisy copies of the four strokes prototypes
// (1×8×8), labelled 10, 11, 12, 13 in turn.
func strokesImages(t *testing.T, n int, sigma float64, seed uint64) *datasets.Images {
	t.Helper()
	protos, err := datasets.Prototypes("strokes", 1, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	im := &datasets.Images{N: n, C: 1, H: 8, W: 8}
	for i := 0; i < n; i++ {
		k := i % len(protos)
		for _, v := range protos[k] {
			im.Pixels = append(im.Pixels, v+sigma*rng.NormFloat64())
		}
		im.Labels = append(im.Labels, 10+k)
	}
	return im
}

// The loss gradient of the graph against central differences of its loss,
// in float64 on a small net.
func TestClassifierGradient(t *testing.T) {
	a := clsArch{in: [3]int{1, 8, 8}, hidden: 8, k: 4}
	init := a.initParams(3)
	n := 6
	net, err := newClsNet[float64](a, init, n, true)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range net.X {
		net.X[i] = rng.NormFloat64()
	}
	for r := 0; r < n; r++ {
		net.Y[r*a.k+r%a.k] = 1
	}
	grads := make([][]float64, len(init))
	for k, p := range init {
		grads[k] = make([]float64, len(p))
	}
	if _, err := net.run(grads); err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		scratch := make([][]float64, len(init))
		for k, p := range init {
			scratch[k] = make([]float64, len(p))
		}
		l, err := net.run(scratch)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	const h = 1e-5
	checked := 0
	for k, p := range init {
		for _, i := range []int{0, len(p) / 2, len(p) - 1} {
			v := p[i]
			p[i] = v + h
			up := loss()
			p[i] = v - h
			down := loss()
			p[i] = v
			fd := (up - down) / (2 * h)
			if math.Abs(fd-grads[k][i]) > 1e-6+1e-4*math.Abs(fd) {
				t.Errorf("tensor %d entry %d: graph gradient %.8g, central difference %.8g", k, i, grads[k][i], fd)
			}
			checked++
		}
	}
	if checked != 3*len(init) {
		t.Fatalf("checked %d entries", checked)
	}
}

// Trained on noisy strokes (σ = 0.6) the classifier separates the four
// classes of fresh images, and equal seeds give equal parameters.
func TestClassifierStrokes(t *testing.T) {
	trainSet := strokesImages(t, 1024, 0.6, 1)
	testSet := strokesImages(t, 400, 0.6, 2)
	classes := []int{10, 11, 12, 13}
	cfg := ClassifierConfig{Epochs: 4, BatchSize: 32, Seed: 7}
	start := time.Now()
	c, err := TrainClassifier(context.Background(), trainSet, classes, cfg)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Accuracy(testSet)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("strokes accuracy %.4f after %v", acc, time.Since(start))
	if acc < 0.98 {
		t.Errorf("accuracy %.4f on noisy strokes, want ≥ 0.98", acc)
	}
	probs, err := c.Predict(testSet.Pixels[:3*testSet.Dim()], 3)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 3; r++ {
		s := 0.0
		for _, p := range probs[r*4 : (r+1)*4] {
			s += p
		}
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("row %d probabilities sum to %v", r, s)
		}
	}
	again, err := TrainClassifier(context.Background(), trainSet, classes, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k := range c.Params {
		if !slices.Equal(c.Params[k], again.Params[k]) {
			t.Fatalf("parameter tensor %d differs between two runs of the same seed", k)
		}
	}
	cfg.DType = "float64"
	c64, err := TrainClassifier(context.Background(), trainSet, classes, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if acc, err := c64.Accuracy(testSet); err != nil || acc < 0.98 {
		t.Errorf("float64: accuracy %.4f (%v), want ≥ 0.98", acc, err)
	}
}

func TestClassifierConfigErrors(t *testing.T) {
	im := strokesImages(t, 64, 0.5, 1)
	ctx := context.Background()
	for name, run := range map[string]func() error{
		"one class":       func() error { _, err := TrainClassifier(ctx, im, []int{10}, ClassifierConfig{}); return err },
		"duplicate class": func() error { _, err := TrainClassifier(ctx, im, []int{10, 10}, ClassifierConfig{}); return err },
		"too few images":  func() error { _, err := TrainClassifier(ctx, im, []int{10, 11}, ClassifierConfig{}); return err },
		"bad dtype": func() error {
			_, err := TrainClassifier(ctx, im, []int{10, 11}, ClassifierConfig{BatchSize: 8, DType: "int8"})
			return err
		},
	} {
		if err := run(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := TrainClassifier(cctx, im, []int{10, 11}, ClassifierConfig{BatchSize: 8}); err == nil {
		t.Error("cancelled context: no error")
	}
}

// MNIST 2/3/6 on the real files: set JARZYN_MNIST_CLASSIFIER=1 (takes
// about 10 s on two cores); JARZYN_MNIST_DIR overrides .deps/mnist.
func TestClassifierMNIST(t *testing.T) {
	if os.Getenv("JARZYN_MNIST_CLASSIFIER") != "1" {
		t.Skip("set JARZYN_MNIST_CLASSIFIER=1 to train the MNIST 2/3/6 classifier")
	}
	dir := os.Getenv("JARZYN_MNIST_DIR")
	if dir == "" {
		dir = filepath.Join("..", ".deps", "mnist")
	}
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("no MNIST files in %s", dir)
	}
	trainSet, err := datasets.LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	testSet, err := datasets.LoadMNIST(dir, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cfg := ClassifierConfig{Seed: 1, Progress: func(ep int, loss float64) {
		t.Logf("epoch %d: mean loss %.5f (%v)", ep, loss, time.Since(start).Round(time.Millisecond))
	}}
	c, err := TrainClassifier(context.Background(), trainSet, []int{2, 3, 6}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	trainTime := time.Since(start)
	acc, err := c.Accuracy(testSet)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("t10k 2/3/6 accuracy %.4f; training %v", acc, trainTime.Round(time.Millisecond))
	if acc < 0.99 {
		t.Errorf("t10k accuracy %.4f, want ≥ 0.99", acc)
	}
}
