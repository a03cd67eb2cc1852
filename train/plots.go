package train

import (
	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
)

// writePlots draws the run's PNG plots (filled in by plots_png.go).
var writePlots = func(dir string, p *models.Params, teacher datasets.Teacher, data, walkers []float64, grid int) error {
	return nil
}
