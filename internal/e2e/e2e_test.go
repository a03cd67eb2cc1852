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

// TestImageTeacherPipeline runs train → export → sample on a tiny version of
// configs/images-demo.yaml (1×6×6 prototype images, conv family): the
// pipeline works end to end and writes what it promises. It checks shapes
// and keys, not the accuracy targets (those need the full config; see
// docs/RESULTS.md §2b and scripts/prototype-fractions.py).
func TestImageTeacherPipeline(t *testing.T) {
	dir := t.TempDir()
	cfg, err := train.LoadConfig("../../configs/images-demo.yaml", []string{
		"iterations=150", "walkers.n=256", "walkers.monitor=128", "data.n=2000", "data.batch=256",
		"log.every=50", "log.eval_every=1", "log.checkpoint_every=1000", "log.plots=false"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Model.InputShape; len(got) != 3 || got[0] != 1 || got[1] != 6 || got[2] != 6 {
		t.Fatalf("configs/images-demo.yaml: input_shape %v, the test expects [1 6 6]", got)
	}
	sum, err := train.Run(context.Background(), train.Options{Config: cfg, OutDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}

	// summary.json: the keys the image demo is judged by
	raw, err := os.ReadFile(filepath.Join(dir, train.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]json.RawMessage
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"teacher", "mode_masses", "teacher_entropy", "ce_estimate", "monitor_ce_estimate"} {
		if v, ok := js[k]; !ok || string(v) == "null" {
			t.Errorf("summary.json: %s missing or null", k)
		}
	}
	var teacher struct {
		Means  [][]float64 `json:"means"`
		Masses []float64   `json:"masses"`
		Stds   []float64   `json:"stds"`
	}
	if err := json.Unmarshal(js["teacher"], &teacher); err != nil {
		t.Fatal(err)
	}
	if len(teacher.Means) != 4 || len(teacher.Masses) != 4 || len(teacher.Stds) != 4 || len(sum.ModeMasses) != 4 {
		t.Fatalf("teacher %d means, %d masses, %d stds; %d mode masses; want 4 each", len(teacher.Means), len(teacher.Masses), len(teacher.Stds), len(sum.ModeMasses))
	}
	for j, m := range teacher.Means {
		if len(m) != 36 {
			t.Errorf("teacher.means[%d] has %d values, want 36", j, len(m))
		}
	}
	total := 0.0
	for _, m := range sum.ModeMasses {
		total += m
	}
	if math.Abs(total-1) > 1e-6 {
		t.Errorf("mode_masses %v sum to %v", sum.ModeMasses, total)
	}
	// Σ_j m_j·[d/2·log(2πe σ_j²) − log m_j]: the closed form for well-separated prototypes
	h := 0.0
	for j, m := range teacher.Masses {
		h += m * (18*math.Log(2*math.Pi*math.E*teacher.Stds[j]*teacher.Stds[j]) - math.Log(m))
	}
	if sum.TeacherEntropy == nil || math.Abs(*sum.TeacherEntropy-h) > 0.5 { // the data set's mean: 2000 points, std ≈ 0.1
		t.Errorf("teacher_entropy %v, closed form %.4f", sum.TeacherEntropy, h)
	}
	if sum.MonitorCE == nil || sum.CEEstimate == nil {
		t.Fatal("no CE estimates")
	}

	// metrics.csv: a mass_<j> column filled on every row
	f, err := os.Open(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for j := 0; j < 4; j++ {
		c, ok := col["mass_"+strconv.Itoa(j)]
		if !ok {
			t.Fatalf("metrics.csv has no mass_%d column: %v", j, recs[0])
		}
		for _, rec := range recs[1:] {
			if _, err := strconv.ParseFloat(rec[c], 64); err != nil {
				t.Errorf("metrics.csv iteration %s: mass_%d %q", rec[0], j, rec[c])
			}
		}
	}

	model := filepath.Join(dir, "model.onnx")
	res, err := export.Run(context.Background(), export.Options{RunDir: dir, Out: model, Reference: train.EvalEnergy, ReferenceName: "gorgonia"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export parity: energy %.3g, grad %.3g", res.EnergyErr, res.GradErr)
	m, err := serve.LoadModel(model, serve.LoadOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	shape := m.Info.DataShape
	m.Close()
	if len(shape) != 3 || shape[0] != 1 || shape[1] != 6 || shape[2] != 6 {
		t.Fatalf("exported data_shape %v, want [1 6 6]", shape)
	}

	sample := func(out string, extra ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"sample", "--model", model, "--n", "256", "--steps", "50", "--seed", "1", "--quiet", "--out", out}, extra...)
		if code := serve.Main(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("jarzyn-serve %v exited %d: %s", args, code, stderr.String())
		}
	}
	npy := filepath.Join(dir, "samples.npy")
	sample(npy, "--weighted", "--format", "npy")
	if got := npyShape(t, npy); len(got) != 4 || got[0] != 256 || got[1] != 1 || got[2] != 6 || got[3] != 6 {
		t.Errorf("samples.npy shape %v, want [256 1 6 6]", got)
	}
	if got := npyShape(t, serve.LogWeightsPath(npy)); len(got) != 1 || got[0] != 256 {
		t.Errorf("log-weights shape %v, want [256]", got)
	}
	png := filepath.Join(dir, "samples.png")
	sample(png, "--format", "png")
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 || string(b[:8]) != "\x89PNG\r\n\x1a\n" {
		t.Errorf("samples.png is not a PNG (%d bytes)", len(b))
	}
	t.Logf("mode masses %.3f (teacher %.3f), CE estimate %.2f, monitor %.2f, H %.2f",
		sum.ModeMasses, teacher.Masses, *sum.CEEstimate, *sum.MonitorCE, *sum.TeacherEntropy)
}

// npyShape returns the shape in a .npy file's header.
func npyShape(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		t.Fatalf("%s: not a .npy file", path)
	}
	hl := int(b[8]) | int(b[9])<<8
	h := string(b[10 : 10+hl])
	i := bytes.Index([]byte(h), []byte("'shape': ("))
	if i < 0 {
		t.Fatalf("%s: no shape in header %q", path, h)
	}
	s := h[i+len("'shape': ("):]
	s = s[:bytes.IndexByte([]byte(s), ')')]
	var shape []int
	for _, f := range bytes.Split([]byte(s), []byte(",")) {
		if f = bytes.TrimSpace(f); len(f) > 0 {
			v, err := strconv.Atoi(string(f))
			if err != nil {
				t.Fatalf("%s: shape %q", path, s)
			}
			shape = append(shape, v)
		}
	}
	return shape
}
