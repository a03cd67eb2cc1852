package main

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/cli/clitest"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/train"
)

// jarzyn-export --classifier: a trained classifier file is exported and
// checked against the training engine; the usage and failure paths keep the
// exit-code convention and write nothing.
func TestExportClassifier(t *testing.T) {
	protos, err := datasets.Prototypes("strokes", 1, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	im := &datasets.Images{N: 128, C: 1, H: 8, W: 8}
	for i := 0; i < im.N; i++ {
		for _, v := range protos[i%4] {
			im.Pixels = append(im.Pixels, v+0.5*rng.NormFloat64())
		}
		im.Labels = append(im.Labels, i%4)
	}
	clf, err := train.TrainClassifier(context.Background(), im, []int{0, 1, 2, 3}, train.ClassifierConfig{Epochs: 1, BatchSize: 32, Hidden: 8})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, models.ClassifierFile)
	if err := train.SaveClassifier(path, clf); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "model.weights")
	p, err := models.NewParams(models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{3}, Activation: models.SiLU, BaseStd: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := models.WriteParams(weights, p, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "clf.onnx")
	stdout, _ := clitest.Run(t, run, nil, []string{"--classifier", path, "--out", out}, 0)
	if !strings.Contains(stdout, "classes 0,1,2,3") || !strings.Contains(stdout, "parity vs training engine on 256 images") {
		t.Errorf("stdout %q", stdout)
	}
	if _, err := os.Stat(models.SealPath(out)); err != nil {
		t.Errorf("no seal: %v", err)
	}
	bad := filepath.Join(dir, "bad.onnx")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"with --run", []string{"--classifier", path, "--run", dir, "--out", bad}, 2, []string{"neither --run nor --checkpoint", "Run 'jarzyn-export --help'"}},
		{"missing out", []string{"--classifier", path}, 2, []string{"--out FILE is required"}},
		{"n zero", []string{"--classifier", path, "--out", bad, "--n", "0"}, 2, []string{"--n must be ≥ 1"}},
		{"missing file", []string{"--classifier", filepath.Join(dir, "nope.bin"), "--out", bad}, 1, []string{"jarzyn-export: ", "nope.bin"}},
		{"not a classifier", []string{"--classifier", weights, "--out", bad}, 1, []string{"model.weights", "not a classifier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clitest.Run(t, run, nil, tc.args, tc.code, tc.want...)
			if _, err := os.Stat(bad); err == nil {
				t.Errorf("%s written", bad)
			}
		})
	}
}
