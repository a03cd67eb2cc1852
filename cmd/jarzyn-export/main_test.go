package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// TestExportAgainstTrainingEngine exports trained-looking parameters of each
// family and checks them against train.EvalEnergy in float32 end to end.
func TestExportAgainstTrainingEngine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gmm, err := models.InitGMM(models.Spec{Family: models.GMM, Dim: 50, Modes: 2}, 0.3, map[[2]int]float64{{0, 0}: -10, {1, 0}: 6}, rng)
	if err != nil {
		t.Fatal(err)
	}
	gmm.Get("log_mass").Data[1] = -1.1
	cases := []struct {
		name string
		p    *models.Params
	}{{"gmm-d50", gmm}}
	for _, act := range []models.Activation{models.SiLU, models.Softplus, models.Tanh} {
		spec := models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{16, 16}, Activation: act, BaseMean: []float64{0.5, -1}, BaseStd: 2}
		p, err := models.InitMLP(spec, rng)
		if err != nil {
			t.Fatal(err)
		}
		for i := range p.Get("w2").Data {
			p.Get("w2").Data[i] = rng.NormFloat64()
		}
		cases = append(cases, struct {
			name string
			p    *models.Params
		}{"mlp-" + string(act), p})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			meta := map[string]string{"method": "jarzynski", "step_size": "0.1", "data_min": "-14", "data_max": "10"}
			if err := models.WriteParams(filepath.Join(dir, "model.weights"), c.p, meta); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "model.onnx")
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"--run", dir, "--out", out}, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			t.Log(strings.TrimSpace(stdout.String()))
			if _, err := os.Stat(out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), "parity vs training engine") {
				t.Errorf("output %q", stdout.String())
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--out", "x.onnx"}, {"--run", "d", "--out", "o", "extra"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
