package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

func writeWeights(t *testing.T, dir string, p *models.Params, walkers []float64) {
	t.Helper()
	c := models.NewContainer("weights")
	c.Meta = map[string]string{"method": "jarzynski", "step_size": "0.1", "log_z_estimate": "2.5", "data_min": "-11", "data_max": "7", "config_digest": "d1"}
	if err := c.PutParams(p); err != nil {
		t.Fatal(err)
	}
	if walkers != nil {
		c.PutFloats(WalkersSection, walkers)
	}
	if err := models.WriteContainer(filepath.Join(dir, models.WeightsFile), c); err != nil {
		t.Fatal(err)
	}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestRun(t *testing.T) {
	needORT(t)
	gmm := testGMM(t, 3, 2, 1)
	mlp := testMLP(t, models.Tanh, 2, []int{8}, 2)
	cases := []struct {
		name     string
		p        *models.Params
		walkers  []float64
		dataLike string
	}{
		{"gmm uniform", gmm, nil, "uniform in [-11, 7]"},
		{"mlp walkers", mlp, testPoints(mlp, 40, 9), "512 of 40 walkers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := t.TempDir()
			writeWeights(t, run, c.p, c.walkers)
			outDir := t.TempDir()
			out := filepath.Join(outDir, "model.onnx")
			res, err := Run(context.Background(), Options{RunDir: run, Out: out})
			if err != nil {
				t.Fatal(err)
			}
			if res.DataLike != c.dataLike || res.N != 1024 || res.EnergyErr > Tolerance || res.GradErr > Tolerance {
				t.Errorf("result %+v", res)
			}
			model, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			props, _, _, _, version := readBack(t, model)
			m, err := models.ParseONNXMeta(props, version)
			if err != nil {
				t.Fatal(err)
			}
			if m.Method != "jarzynski" || m.StepSize != 0.1 || m.LogZEstimate != 2.5 || m.DataMin != -11 || m.ConfigDigest != "d1" {
				t.Errorf("metadata %+v", m)
			}
			if names := dirEntries(t, outDir); len(names) != 2 || names[0] != "model.onnx" || names[1] != "model.onnx.sha256" {
				t.Errorf("output dir holds %v, want only model.onnx and its seal model.onnx.sha256", names)
			}
		})
	}
}

func TestRunFailsParityLeavesNothing(t *testing.T) {
	needORT(t)
	p := testGMM(t, 2, 2, 1)
	run := t.TempDir()
	writeWeights(t, run, p, nil)
	out := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// a reference that disagrees by 1e-3 in the energy only
	off := func(p *models.Params, x []float64, n int, dtype string) ([]float64, []float64, error) {
		u, g, err := ModelsReference(p, x, n, dtype)
		for i := range u {
			u[i] += 1e-3 * max(1, abs(u[i]))
		}
		return u, g, err
	}
	_, err := Run(context.Background(), Options{RunDir: run, Out: out, Reference: off, ReferenceName: "perturbed"})
	if err == nil || !strings.Contains(err.Error(), "parity check failed") || !strings.Contains(err.Error(), "energy 0.001") || !strings.Contains(err.Error(), "grad ") {
		t.Fatalf("error %v, want a parity failure naming both errors", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("the existing %s was replaced", out)
	}
	if names := dirEntries(t, filepath.Dir(out)); len(names) != 1 {
		t.Errorf("output dir holds %v: a temporary file was left behind", names)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func TestRunRejects(t *testing.T) {
	needORT(t)
	run := t.TempDir()
	writeWeights(t, run, testGMM(t, 2, 2, 1), []float64{1, 2, 3})
	damaged := filepath.Join(t.TempDir(), "bad.weights")
	if err := os.WriteFile(damaged, []byte("JARZYNC1 but not really a container, only text"), 0o644); err != nil {
		t.Fatal(err)
	}
	goodRun := t.TempDir()
	writeWeights(t, goodRun, testGMM(t, 2, 2, 1), nil)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "m.onnx")
	cases := []struct {
		name string
		ctx  context.Context
		o    Options
		want string
	}{
		{"no out", context.Background(), Options{RunDir: run}, "--out"},
		{"no source", context.Background(), Options{Out: out}, "--run"},
		{"n", context.Background(), Options{RunDir: run, Out: out, N: 1}, "≥ 2"},
		{"missing weights", context.Background(), Options{RunDir: t.TempDir(), Out: out}, "no such file"},
		{"damaged", context.Background(), Options{Checkpoint: damaged, Out: out}, "checksum"},
		{"walkers shape", context.Background(), Options{RunDir: run, Out: out}, `section "walkers" has 3 values`},
		{"canceled", canceled, Options{RunDir: goodRun, Out: out}, "canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(c.ctx, c.o)
			if err == nil || !strings.HasPrefix(err.Error(), "export: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want an export: error mentioning %q", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s exists after a failed run", out)
			}
		})
	}
}
