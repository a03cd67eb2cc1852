package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/jarzyn/jarzyn/internal/cli/clitest"
	"github.com/jarzyn/jarzyn/models"
)

// jarzyn-train classifier on real MNIST (one epoch): classifier.bin,
// classifier.onnx (sealed) and summary.json with the t10k accuracy; the
// usage and failure paths keep the exit-code convention.
func TestClassifierCommand(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no classes", []string{"--out", dir}, 2, []string{"--classes and --out are required", "Run 'jarzyn-train classifier --help'"}},
		{"bad digit", []string{"--out", dir, "--classes", "2,13"}, 2, []string{"--classes: want MNIST digits"}},
		{"bad epochs", []string{"--out", dir, "--classes", "2,3", "--epochs", "0"}, 2, []string{"--epochs"}},
		{"no MNIST", []string{"--out", dir, "--classes", "2,3", "--mnist", filepath.Join(dir, "nope")}, 1, []string{"jarzyn-train classifier: ", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clitest.Run(t, run, nil, append([]string{"classifier"}, tc.args...), tc.code, tc.want...)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, models.ClassifierFile)); err == nil {
		t.Fatal("a refused command wrote a classifier")
	}
	mnist := filepath.Join("..", "..", ".deps", "mnist")
	if _, err := os.Stat(filepath.Join(mnist, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("MNIST is not in %s (make setup installs it): %v", mnist, err)
	}
	out := filepath.Join(dir, "clf")
	stdout, _ := clitest.Run(t, run, nil, []string{"classifier", "--mnist", mnist, "--classes", "2,3,6", "--epochs", "1", "--out", out}, 0)
	t.Log(stdout)
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Accuracy   float64 `json:"classifier_accuracy"`
		TestImages int     `json:"test_images"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Accuracy < 0.95 || sum.TestImages != 1032+1010+958 {
		t.Errorf("summary %s", b)
	}
	for _, f := range []string{models.ClassifierFile, models.ClassifierModelFile, models.SealPath(models.ClassifierModelFile)} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
