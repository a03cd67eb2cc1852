package train

import (
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/report"
	"github.com/jarzyn/jarzyn/models"
)

// The run dir's metrics table is where report (jarzyn-report) reads it.
func TestMetricsFileName(t *testing.T) {
	if MetricsFile != report.MetricsFile {
		t.Errorf("train writes %s, report reads %s", MetricsFile, report.MetricsFile)
	}
}

// writePlots draws the four PNGs of a 2-D run from its metrics.csv.
func TestWritePlots(t *testing.T) {
	dir := t.TempDir()
	csv := "iter,mass_0,mass_1,exact_kl,estimated_kl,ess,ess_monitor\n" +
		"0,0.5,0.5,0.3,,1,\n10,0.4,0.6,0.2,0.25,0.7,0.8\n20,0.3,0.7,0.1,0.12,0.6,0.9\n"
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p, err := models.InitGMM(models.Spec{Family: models.GMM, Dim: 2, Modes: 2, BaseStd: 1}, 1, nil, rng)
	if err != nil {
		t.Fatal(err)
	}
	teacher, err := datasets.Teacher{Means: [][]float64{{-2, 0}, {2, 0}}, Masses: []float64{0.25, 0.75}}.Normalized(2)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := teacher.Sample(200, true, rng)
	walkers, _ := teacher.Sample(100, true, rng)
	if err := writePlots(dir, p, teacher, data, walkers, 20); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"masses.png", "kl.png", "ess.png", "energy.png"} {
		f, err := os.Open(filepath.Join(dir, PlotsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}
}
