package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// TestExportSeals: every model jarzyn-export writes is sealed by a
// .sha256 beside it that matches its bytes; an export over an earlier one
// replaces its seal, and removes a latent model and its seal that no longer
// belong.
func TestExportSeals(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	mlp := func(spec models.Spec) *models.Params {
		p, err := models.InitMLP(spec, rng)
		if err != nil {
			t.Fatal(err)
		}
		last := p.Tensors[len(p.Tensors)-2].Data
		for i := range last {
			last[i] = rng.NormFloat64()
		}
		return p
	}
	latent := mlp(models.Spec{Family: models.MLP, Dim: 4, Hidden: []int{2, 8}, Activation: models.SiLU, BaseStd: 1})
	plain := mlp(models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{8}, Activation: models.SiLU, BaseStd: 1})
	dir := t.TempDir()
	out := filepath.Join(dir, "model.onnx")
	lp := models.LatentPath(out)
	// a seal of something else, left by hand: the export must replace it
	if err := os.WriteFile(models.SealPath(out), models.Seal(out, []byte("old")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		p      *models.Params
		sealed []string // files that must exist and match their seals
		gone   []string // files that must not exist
	}{
		{"latent MLP", latent, []string{out, lp}, nil},
		{"plain MLP over it", plain, []string{out}, []string{lp, models.SealPath(lp)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run1 := t.TempDir()
			if err := models.WriteParams(filepath.Join(run1, "model.weights"), tc.p, map[string]string{"step_size": "0.1", "data_min": "-3", "data_max": "3"}); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"--run", run1, "--out", out, "--n", "64"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			for _, p := range tc.sealed {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := models.VerifySeal(p, data); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
			for _, p := range tc.gone {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s was left behind (%v)", p, err)
				}
			}
			if !bytes.Contains(stdout.Bytes(), []byte("sealed by "+models.SealPath(out))) {
				t.Errorf("output %q does not name the seal", stdout.String())
			}
		})
	}
}
