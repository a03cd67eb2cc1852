// Package report reads a training run's metrics.csv and draws its columns as
// line plots with gonum/plot. It links no training engine (no gorgonia), so
// that cmd/jarzyn-report stays a small binary; package train draws its own
// metric plots with it too.
package report

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
)

// MetricsFile is the name of the metrics table inside a run dir
// (train.MetricsFile is the same name).
const MetricsFile = "metrics.csv"

// IterColumn is the column that holds the iteration, the x axis of every plot.
const IterColumn = "iter"

// Columns is a metrics table by column name. A blank or unparsable cell is NaN.
type Columns map[string][]float64

// ReadMetrics loads a metrics.csv (a header row, then one row per log line)
// as columns.
func ReadMetrics(path string) (Columns, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("report: %s is empty", path)
	}
	cols := Columns{}
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

// Series returns the (iteration, value) points of a column, skipping blank
// and non-finite values.
func (c Columns) Series(name string) plotter.XYs {
	var xy plotter.XYs
	it := c[IterColumn]
	for i, v := range c[name] {
		if i < len(it) && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xy = append(xy, plotter.XY{X: it[i], Y: v})
		}
	}
	return xy
}

// Colors is the line colour cycle (matplotlib's first six).
var Colors = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
}

// AddLine adds xy to p as a line, dashed or solid, with a legend entry
// unless label is empty. An empty xy adds nothing.
func AddLine(p *plot.Plot, xy plotter.XYs, label string, c color.Color, dashed bool) error {
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

// TwoLines draws two columns against the iteration (the second dashed) into
// the PNG path; unit fixes the y range to [0, 1].
func TwoLines(cols Columns, path, title, yLabel string, columns, labels [2]string, unit bool) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "iteration", yLabel
	for i := range columns {
		if err := AddLine(p, cols.Series(columns[i]), labels[i], Colors[i], i == 1); err != nil {
			return err
		}
	}
	if unit {
		p.Y.Min, p.Y.Max = 0, 1
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}

// CompareRuns draws one column of several runs' metrics.csv on one plot
// (e.g. mass_0 of jarzynski, pcd and cd), labelled by labels (one per run),
// with a dashed horizontal line at target unless it is NaN, into the PNG out.
func CompareRuns(runs, labels []string, column, title, yLabel string, target float64, out string) error {
	if len(labels) != len(runs) {
		return fmt.Errorf("report: %d labels for %d runs", len(labels), len(runs))
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = "iteration", yLabel
	last := 0.0
	for i, dir := range runs {
		cols, err := ReadMetrics(filepath.Join(dir, MetricsFile))
		if err != nil {
			return err
		}
		xy := cols.Series(column)
		if len(xy) == 0 {
			return fmt.Errorf("report: %s has no values in column %q", filepath.Join(dir, MetricsFile), column)
		}
		last = math.Max(last, xy[len(xy)-1].X)
		if err := AddLine(p, xy, labels[i], Colors[i%len(Colors)], false); err != nil {
			return err
		}
	}
	if !math.IsNaN(target) {
		if err := AddLine(p, plotter.XYs{{X: 0, Y: target}, {X: last, Y: target}}, "target", color.Gray{Y: 90}, true); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, out)
}
