// Package e2e holds the end-to-end test: train (gorgonia) → export (ONNX) →
// sample (ONNX Runtime), on a tiny configuration.
package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/serve"
	"github.com/jarzyn/jarzyn/train"
)

func TestTrainExportSample(t *testing.T) {
	dir := t.TempDir()
	cfg, err := train.LoadConfig("../../configs/gmm2d.yaml", []string{
		"iterations=300", "walkers.n=2048", "walkers.monitor=1024", "log.every=50", "log.grid=100", "log.plots=false",
		"model.hidden=[16, 16]", "optimizer.lr=0.01"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := train.Run(context.Background(), train.Options{Config: cfg, OutDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.onnx")
	res, err := export.Run(context.Background(), export.Options{RunDir: dir, Out: model, Reference: train.EvalEnergy, ReferenceName: "gorgonia"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export parity: %+v", res)
	out := filepath.Join(dir, "samples.csv")
	var stdout, stderr bytes.Buffer
	code := serve.Main(context.Background(), []string{"sample", "--model", model, "--n", "4000", "--steps", "300",
		"--seed", "3", "--weighted", "--quiet", "--format", "csv", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("jarzyn-serve sample exited %d: %s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4000 {
		t.Fatalf("%d samples, want 4000", len(recs))
	}
	// weighted mode fractions against the training run's own quadrature masses
	means := sum.Teacher.Means
	frac := make([]float64, len(means))
	lw := make([]float64, len(recs))
	maxLW := math.Inf(-1)
	for i, rec := range recs {
		lw[i], _ = strconv.ParseFloat(rec[2], 64)
		maxLW = math.Max(maxLW, lw[i])
	}
	tot := 0.0
	for i, rec := range recs {
		x0, _ := strconv.ParseFloat(rec[0], 64)
		x1, _ := strconv.ParseFloat(rec[1], 64)
		best, bj := math.Inf(1), 0
		for j, m := range means {
			if d := (x0-m[0])*(x0-m[0]) + (x1-m[1])*(x1-m[1]); d < best {
				best, bj = d, j
			}
		}
		w := math.Exp(lw[i] - maxLW)
		frac[bj] += w
		tot += w
	}
	for j := range frac {
		frac[j] /= tot
		if math.Abs(frac[j]-sum.ModeMasses[j]) > 0.05 {
			t.Errorf("mode %d: sampled fraction %.3f, model mass by quadrature %.3f", j, frac[j], sum.ModeMasses[j])
		}
	}
	var report struct {
		LogZ *float64 `json:"log_z"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil || report.LogZ == nil {
		t.Fatalf("weighted sampling printed no log Z: %q (%v)", stdout.String(), err)
	}
	if d := math.Abs(*report.LogZ - *sum.LogZ); d > 0.1 {
		t.Errorf("sampler log Ẑ %.4f vs quadrature log Z %.4f", *report.LogZ, *sum.LogZ)
	}
	t.Logf("fractions %.3f vs model %.3f (teacher %.3f)", frac, sum.ModeMasses, sum.Teacher.Masses)
}
