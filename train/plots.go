package train

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
)

// readMetrics loads metrics.csv as columns.
func readMetrics(path string) (map[string][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("train: %s is empty", path)
	}
	cols := map[string][]float64{}
	for _, r := range recs[1:] {
		for j, name := range recs[0] {
			v := math.NaN()
			if j < len(r) && r[j] != "" {
				v, _ = strconv.ParseFloat(r[j], 64)
			}
			cols[name] = append(cols[name], v)
		}
	}
	return cols, nil
}

var plotColors = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
}

// series returns the (iter, value) points of a column, skipping blanks.
func series(cols map[string][]float64, name string) plotter.XYs {
	var xy plotter.XYs
	for i, v := range cols[name] {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			xy = append(xy, plotter.XY{X: cols["iter"][i], Y: v})
		}
	}
	return xy
}

func addLine(p *plot.Plot, xy plotter.XYs, label string, c color.Color, dashed bool) error {
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l)
	if label != "" {
		p.Legend.Add(label, l)
	}
	return nil
}

// writePlots draws masses.png, kl.png and ess.png from metrics.csv, and for
// 2-D data energy.png: the model density with the walkers on top.
func writePlots(dir string, params *models.Params, teacher datasets.Teacher, data, walkers []float64, grid int) error {
	cols, err := readMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		return err
	}
	out := filepath.Join(dir, PlotsDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	first, last := 0.0, 1.0
	if it := cols["iter"]; len(it) > 0 {
		first, last = it[0], it[len(it)-1]
	}
	// masses over training, with the teacher's as dashed lines
	p := plot.New()
	p.Title.Text = "model mass per teacher mode"
	p.X.Label.Text, p.Y.Label.Text = "iteration", "mass"
	for j, w := range teacher.Masses {
		c := plotColors[j%len(plotColors)]
		if err := addLine(p, series(cols, fmt.Sprintf("mass_%d", j)), fmt.Sprintf("mode %d", j), c, false); err != nil {
			return err
		}
		if err := addLine(p, plotter.XYs{{X: first, Y: w}, {X: last, Y: w}}, "", c, true); err != nil {
			return err
		}
	}
	p.Y.Min, p.Y.Max = 0, 1
	if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(out, "masses.png")); err != nil {
		return err
	}
	if err := twoLinePlot(cols, filepath.Join(out, "kl.png"), "KL(ρ* ‖ ρθ): exact vs estimated from the weights", "nats",
		[2]string{"exact_kl", "estimated_kl"}, [2]string{"exact", "estimated"}, false); err != nil {
		return err
	}
	if err := twoLinePlot(cols, filepath.Join(out, "ess.png"), "effective sample size / N", "ESS/N",
		[2]string{"ess", "ess_monitor"}, [2]string{"walkers", "monitor walkers"}, true); err != nil {
		return err
	}
	if params.Spec.Dim == 2 {
		return energyPlot(filepath.Join(out, "energy.png"), params, teacher, data, walkers, grid)
	}
	return nil
}

// twoLinePlot draws two metrics columns against the iteration (the second
// dashed); unit fixes the y range to [0, 1].
func twoLinePlot(cols map[string][]float64, path, title, yLabel string, columns, labels [2]string, unit bool) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "iteration", yLabel
	for i := range columns {
		if err := addLine(p, series(cols, columns[i]), labels[i], plotColors[i], i == 1); err != nil {
			return err
		}
	}
	if unit {
		p.Y.Min, p.Y.Max = 0, 1
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
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

func energyPlot(path string, params *models.Params, teacher datasets.Teacher, data, walkers []float64, grid int) error {
	lo, hi := quadratureBox(teacher, data)
	n := min(grid, 200)
	g := densityGrid{lo: lo, step: [2]float64{(hi[0] - lo[0]) / float64(n), (hi[1] - lo[1]) / float64(n)}, n: n, z: make([]float64, n*n)}
	parallelRange(n, func(a, b int) {
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
	p.Title.Text = "model density e^{-U}/Z, energy contours, walkers"
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

// CompareRuns draws one column of several runs' metrics.csv on one plot
// (e.g. mass_0 of jarzynski, pcd and cd), with an optional horizontal target.
func CompareRuns(runs, labels []string, column, title, yLabel string, target float64, out string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "iteration", yLabel
	last := 0.0
	for i, dir := range runs {
		cols, err := readMetrics(filepath.Join(dir, MetricsFile))
		if err != nil {
			return err
		}
		xy := series(cols, column)
		if len(xy) == 0 {
			return fmt.Errorf("train: %s has no values in column %q", dir, column)
		}
		last = math.Max(last, xy[len(xy)-1].X)
		if err := addLine(p, xy, labels[i], plotColors[i%len(plotColors)], false); err != nil {
			return err
		}
	}
	if !math.IsNaN(target) {
		addLine(p, plotter.XYs{{X: 0, Y: target}, {X: last, Y: target}}, "target", color.Gray{Y: 90}, true)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, out)
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
