package train

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// A saved classifier loads back with the same predictions; files that do not
// describe a classifier, or whose tensors do not fit the architecture, are
// refused with the file named.
func TestClassifierSaveLoad(t *testing.T) {
	trainSet := strokesImages(t, 256, 0.6, 1)
	c, err := TrainClassifier(context.Background(), trainSet, []int{10, 11, 12, 13}, ClassifierConfig{Epochs: 1, BatchSize: 32, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "clf.ckpt")
	if err := SaveClassifier(path, c); err != nil {
		t.Fatal(err)
	}
	back, err := LoadClassifier(path)
	if err != nil {
		t.Fatal(err)
	}
	x := trainSet.Pixels[:8*trainSet.Dim()]
	p0, err := c.Predict(x, 8)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := back.Predict(x, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p0, p1) || !slices.Equal(back.Classes, c.Classes) {
		t.Fatalf("loaded classifier predicts %v, saved one %v", p1[:4], p0[:4])
	}

	// a classifier whose header claims another hidden width
	bad := &Classifier{Classes: c.Classes, C: c.C, H: c.H, W: c.W, Hidden: c.Hidden + 1, Params: c.Params}
	badPath := filepath.Join(dir, "bad.ckpt")
	if err := SaveClassifier(badPath, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClassifier(badPath); err == nil || !strings.Contains(err.Error(), "bad.ckpt") {
		t.Errorf("a tensor that does not fit the header: %v", err)
	}
	// a weights file is not a classifier
	p, err := models.NewParams(models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{3}, Activation: models.SiLU, BaseStd: 1})
	if err != nil {
		t.Fatal(err)
	}
	wPath := filepath.Join(dir, "model.weights")
	if err := models.WriteParams(wPath, p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClassifier(wPath); err == nil || !strings.Contains(err.Error(), "not a classifier") {
		t.Errorf("a weights file: %v", err)
	}
}
