package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/internal/cli/clitest"

	"github.com/jarzyn/jarzyn/export"
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
			if code := run(context.Background(), []string{"--run", dir, "--out", out}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
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

// TestExitCodes pins the exit status convention (internal/cli): 0 for
// success and -h, 2 for usage errors with a one-line hint, 1 for failures.
func TestExitCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p, err := models.InitMLP(models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{4}, Activation: models.SiLU, BaseStd: 1}, rng)
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	if err := models.WriteParams(filepath.Join(runDir, "model.weights"), p, map[string]string{"step_size": "0.1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "model.onnx")
	// a reference that disagrees with the model: the parity check must fail
	wrong := func(p *models.Params, x []float64, n int, dtype string) ([]float64, []float64, error) {
		u, g, err := export.ModelsReference(p, x, n, dtype)
		for i := range u {
			u[i] += 1
		}
		return u, g, err
	}
	for _, tc := range []struct {
		name   string
		args   []string
		ref    export.Reference
		code   int
		stderr []string // substrings of stderr
	}{
		{"help", []string{"-h"}, nil, 0, []string{"usage: jarzyn-export", "-out"}},
		{"long help", []string{"--help"}, nil, 0, []string{"usage: jarzyn-export"}},
		{"unknown flag", []string{"--bogus"}, nil, 2, []string{"-bogus", "Run 'jarzyn-export --help' for usage."}},
		{"bad flag value", []string{"--run", runDir, "--out", out, "--n", "many"}, nil, 2, []string{"-n", "Run 'jarzyn-export --help'"}},
		{"n too small", []string{"--run", runDir, "--out", out, "--n", "1"}, nil, 2, []string{"--n must be ≥ 2"}},
		{"missing out", []string{"--run", runDir}, nil, 2, []string{"--out FILE is required", "Run 'jarzyn-export --help'"}},
		{"missing run", []string{"--out", out}, nil, 2, []string{"--run DIR or --checkpoint FILE is required"}},
		{"unexpected argument", []string{"--run", runDir, "--out", out, "extra"}, nil, 2, []string{`unexpected arguments ["extra"]`, "Run 'jarzyn-export --help'"}},
		{"run dir does not exist", []string{"--run", filepath.Join(dir, "nope"), "--out", out}, nil, 1, []string{"jarzyn-export: ", "nope"}},
		{"parity failure", []string{"--run", runDir, "--out", out}, wrong, 1, []string{"parity check failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ref != nil {
				defer func(r export.Reference) { reference = r }(reference)
				reference = tc.ref
			}
			stdout, _ := clitest.Run(t, run, nil, tc.args, tc.code, tc.stderr...)
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written", out)
			}
		})
	}
}
