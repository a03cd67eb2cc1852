package train

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/report"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// writePlots draws masses.png, kl.png and ess.png from metrics.csv, and for
// 2-D data energy.png: the model density with the walkers on top.
func writePlots(dir string, params *models.Params, teacher datasets.Teacher, data, walkers []float64, grid int) error {
	return writeRunPlots(dir, params, teacher, data, walkers, grid, "")
}

// writeRunPlots is writePlots with label appended to every title
// (Config.weightLabel: " (heuristic weights)" with walkers.heuristic).
func writeRunPlots(dir string, params *models.Params, teacher datasets.Teacher, data, walkers []float64, grid int, label string) error {
	cols, err := report.ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		return err
	}
	out := filepath.Join(dir, PlotsDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	first, last := 0.0, 1.0
	if it := cols[report.IterColumn]; len(it) > 0 {
		first, last = it[0], it[len(it)-1]
	}
	// masses over training, with the teacher's as dashed lines
	p := plot.New()
	p.Title.Text = "model mass per teacher mode" + label
	p.X.Label.Text, p.Y.Label.Text = "iteration", "mass"
	for j, w := range teacher.Masses {
		c := report.Colors[j%len(report.Colors)]
		if err := report.AddLine(p, cols.Series(fmt.Sprintf("mass_%d", j)), fmt.Sprintf("mode %d", j), c, false); err != nil {
			return err
		}
		if err := report.AddLine(p, plotter.XYs{{X: first, Y: w}, {X: last, Y: w}}, "", c, true); err != nil {
			return err
		}
	}
	p.Y.Min, p.Y.Max = 0, 1
	if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(out, "masses.png")); err != nil {
		return err
	}
	if err := report.TwoLines(cols, filepath.Join(out, "kl.png"), "KL(ρ* ‖ ρθ): exact vs estimated from the weights"+label, "nats",
		[2]string{"exact_kl", "estimated_kl"}, [2]string{"exact", "estimated"}, false); err != nil {
		return err
	}
	if err := report.TwoLines(cols, filepath.Join(out, "ess.png"), "effective sample size / N"+label, "ESS/N",
		[2]string{"ess", "ess_monitor"}, [2]string{"walkers", "monitor walkers"}, true); err != nil {
		return err
	}
	if params.Spec.Dim == 2 {
		return energyPlot(filepath.Join(out, "energy.png"), params, teacher, data, walkers, grid, label)
	}
	return nil
}

// densityGrid is e^{-U} normalised on a grid, for a heat map.
type densityGrid struct {
	lo, step [2]float64
	n        int
	z        []float64
}

func (g densityGrid) Dims() (int, int)   { return g.n, g.n }
func (g densityGrid) Z(c, r int) float64 { return g.z[c*g.n+r] }
func (g densityGrid) X(c int) float64    { return g.lo[0] + (float64(c)+0.5)*g.step[0] }
func (g densityGrid) Y(r int) float64    { return g.lo[1] + (float64(r)+0.5)*g.step[1] }

func energyPlot(path string, params *models.Params, teacher datasets.Teacher, data, walkers []float64, grid int, label string) error {
	lo, hi := quadratureBox(teacher, data)
	n := min(grid, 200)
	g := densityGrid{lo: lo, step: [2]float64{(hi[0] - lo[0]) / float64(n), (hi[1] - lo[1]) / float64(n)}, n: n, z: make([]float64, n*n)}
	smc.For(n, func(a, b int) {
		for c := a; c < b; c++ {
			for r := 0; r < n; r++ {
				g.z[c*n+r] = -params.Energy([]float64{g.X(c), g.Y(r)}, nil)
			}
		}
	})
	lse := models.LogSumExp(g.z)
	for i := range g.z {
		g.z[i] = math.Exp(g.z[i] - lse)
	}
	p := plot.New()
	p.Title.Text = "model density e^{-U}/Z, energy contours, walkers" + label
	p.Add(plotter.NewHeatMap(g, whiteToRed{}))
	// energy contours: U − min U = 0.5, 1, 2, 4, 8 (lines of equal density ratio)
	ug := densityGrid{lo: g.lo, step: g.step, n: n, z: make([]float64, len(g.z))}
	for i, v := range g.z {
		ug.z[i] = -math.Log(math.Max(v, 1e-300))
	}
	minU := math.Inf(1)
	for _, v := range ug.z {
		minU = math.Min(minU, v)
	}
	var levels []float64
	for _, l := range []float64{0.5, 1, 2, 4, 8} {
		levels = append(levels, minU+l)
	}
	c := plotter.NewContour(ug, levels, grayPalette{})
	c.LineStyles[0].Width = vg.Points(0.8)
	p.Add(c)
	var pts plotter.XYs
	stride := max(1, len(walkers)/2/3000)
	for i := 0; i+1 < len(walkers); i += 2 * stride {
		if walkers[i] >= lo[0] && walkers[i] <= hi[0] && walkers[i+1] >= lo[1] && walkers[i+1] <= hi[1] {
			pts = append(pts, plotter.XY{X: walkers[i], Y: walkers[i+1]})
		}
	}
	if len(pts) > 0 {
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		s.GlyphStyle.Radius = vg.Points(0.8)
		s.GlyphStyle.Color = color.NRGBA{R: 0, G: 70, B: 200, A: 150}
		p.Add(s)
		p.Legend.Add("walkers", s)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo[0], hi[0], lo[1], hi[1]
	return p.Save(6*vg.Inch, 6*vg.Inch, path)
}

// whiteToRed is a 64-colour palette from white (low density) to dark red.
type whiteToRed struct{}

func (whiteToRed) Colors() []color.Color {
	cs := make([]color.Color, 64)
	for i := range cs {
		t := float64(i) / 63
		cs[i] = color.RGBA{R: uint8(255 - 90*t), G: uint8(255 * (1 - t)), B: uint8(255 * (1 - t)), A: 255}
	}
	return cs
}

// grayPalette draws every contour line in dark gray.
type grayPalette struct{}

func (grayPalette) Colors() []color.Color { return []color.Color{color.Gray{Y: 60}} }
