package serve_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/serve"
)

// Anneal from the base Gaussian to a one-mode mixture U(x) = ½|x − a|² + z
// and compare the Jarzynski estimate of log Z with the closed form
// (d/2)·log 2π − z.
func ExampleSample() {
	p, _ := models.NewParams(models.Spec{Family: models.GMM, Dim: 2, Modes: 1, BaseStd: 2})
	copy(p.Get("means").Data, []float64{1, -1})
	p.Get("log_mass").Data[0] = 0.5
	onnx, err := export.Build(p, models.TrainingInfo{StepSize: 0.1, LogZEstimate: math.NaN()})
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.onnx")
	os.WriteFile(path, onnx, 0o644)

	m, err := serve.LoadModel(path, serve.LoadOptions{Threads: 1, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := serve.DefaultSampleConfig()
	cfg.N, cfg.Steps, cfg.Weighted, cfg.Seed = 4000, 100, true, 1
	res, err := serve.Sample(context.Background(), m, cfg)
	if err != nil {
		log.Fatal(err)
	}
	exact := math.Log(2*math.Pi) - 0.5
	fmt.Printf("%d weighted samples of shape %v\n", res.N, res.DataShape)
	fmt.Printf("log Ẑ within 0.05 of %.4f: %v\n", exact, math.Abs(res.LogZ-exact) < 0.05)
	// Output:
	// 4000 weighted samples of shape [2]
	// log Ẑ within 0.05 of 1.3379: true
}

var quiet = slog.New(slog.DiscardHandler)
