package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/internal/report"
	"github.com/jarzyn/jarzyn/smc"
)

// The class-fraction metric of docs/METHOD.md §5.2: a separately trained
// classifier (log.classifier) labels the walkers, and the weighted share of
// each class is compared with the class proportions of the data.

// ConfidentProb is the top-class probability above which a walker counts
// as confidently labelled (ClassFractions.Confident).
const ConfidentProb = 0.9

// ClassFractions is what a classifier says of a weighted set of images.
type ClassFractions struct {
	// Classes are the classifier's labels, in its output order.
	Classes []int
	// Fractions[k] is Σ_i w_i [argmax_j probs_ij = k]: the weighted share
	// of the images whose most probable class is Classes[k].
	Fractions []float64
	// Confident is Σ_i w_i [max_j probs_ij > ConfidentProb].
	Confident float64
}

// WeightedClassFractions computes the ClassFractions of n images from their
// class probabilities (n×len(classes), row-major) and normalised weights w
// (length n, summing to 1; nil means 1/n each). Ties go to the first class.
func WeightedClassFractions(probs []float64, classes []int, w []float64) (ClassFractions, error) {
	k := len(classes)
	if k == 0 || len(probs)%k != 0 {
		return ClassFractions{}, fmt.Errorf("train: %d probabilities for %d classes", len(probs), k)
	}
	n := len(probs) / k
	if w != nil && len(w) != n {
		return ClassFractions{}, fmt.Errorf("train: %d weights for %d images", len(w), n)
	}
	f := ClassFractions{Classes: append([]int(nil), classes...), Fractions: make([]float64, k)}
	for i := 0; i < n; i++ {
		wi := 1 / float64(n)
		if w != nil {
			wi = w[i]
		}
		row := probs[i*k : (i+1)*k]
		best := 0
		for j := 1; j < k; j++ {
			if row[j] > row[best] {
				best = j
			}
		}
		f.Fractions[best] += wi
		if row[best] > ConfidentProb {
			f.Confident += wi
		}
	}
	return f, nil
}

// ClassSummary is the class-fraction part of summary.json (present when
// log.classifier is set). Maps are keyed by class label.
type ClassSummary struct {
	// ClassifierAccuracy is the classifier's held-out accuracy as its file
	// records it.
	ClassifierAccuracy *float64 `json:"classifier_accuracy,omitempty"`
	// ClassFractions are the final weighted class fractions of the walkers
	// (the monitor population's when there is one).
	ClassFractions map[string]float64 `json:"class_fractions"`
	// TargetFractions are the class proportions of the training data.
	TargetFractions map[string]float64 `json:"target_fractions"`
	// ConfidentFraction is the weighted share of walkers whose top class
	// probability exceeds ConfidentProb.
	ConfidentFraction float64 `json:"confident_fraction"`
}

// classMetric labels the walkers during a run (log.classifier).
type classMetric struct {
	clf       *Classifier
	path      string
	every     int       // iterations between labellings
	gridEvery int       // iterations between image grids; 0 = only at the end
	target    []float64 // class proportions of the data
	lo, hi    float64   // pixel range of the grids
	label     string    // appended to plot titles: " (heuristic weights)" with walkers.heuristic
}

// newClassMetric loads log.classifier (nil when unset), checks that it
// takes the model's images and computes the target fractions from the data
// labels.
func newClassMetric(cfg Config, labels []int, data []float64) (*classMetric, error) {
	lo, hi := dataRange(data)
	m := &classMetric{path: cfg.Log.Classifier, every: cfg.Log.ClassifyEvery, gridEvery: cfg.Log.ImageGridEvery, lo: lo, hi: hi,
		label: cfg.weightLabel()}
	if m.every == 0 {
		m.every = cfg.Log.Every
	}
	if cfg.Log.Classifier == "" {
		return m, nil
	}
	clf, err := LoadClassifier(cfg.Log.Classifier)
	if err != nil {
		return nil, fmt.Errorf("train: log.classifier: %w", err)
	}
	if sh := cfg.imageShape(); len(sh) != 3 || sh[0] != clf.C || sh[1] != clf.H || sh[2] != clf.W {
		what := "model.input_shape"
		if len(cfg.Model.InputShape) != 3 {
			what = "the image shape of data.kind " + cfg.Data.Kind
		}
		return nil, fmt.Errorf("train: log.classifier %s takes %d×%d×%d images, but %s is %v", cfg.Log.Classifier, clf.C, clf.H, clf.W, what, sh)
	}
	m.clf = clf
	m.target = make([]float64, len(clf.Classes))
	for _, l := range labels {
		for k, c := range clf.Classes {
			if l == c {
				m.target[k] += 1 / float64(len(labels))
			}
		}
	}
	return m, nil
}

// dataRange is the smallest and largest value of data ([−1, 1] if empty or flat).
func dataRange(data []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range data {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if !(hi > lo) {
		return -1, 1
	}
	return lo, hi
}

// classes are the classifier's labels (nil without one).
func (m *classMetric) classes() []int {
	if m == nil || m.clf == nil {
		return nil
	}
	return m.clf.Classes
}

// due reports whether the walkers are labelled at iteration iter.
func (m *classMetric) due(iter int) bool { return m.clf != nil && iter%m.every == 0 }

// gridDue reports whether an image grid is drawn at iteration iter (during training).
func (m *classMetric) gridDue(iter int) bool { return m.gridEvery > 0 && iter%m.gridEvery == 0 }

// walkerImages returns the walkers that the metric reads, in float64, and
// their normalised weights: the monitor population's (weighted) when there
// is one, else the training walkers, weighted for the Jarzynski method and
// uniform for PCD and CD.
func walkerImages[T Float](t *trainer[T]) (x, w []float64) {
	pop, weighted := t.pop, t.cfg.Method == Jarzynski
	if t.mon != nil {
		pop, weighted = t.mon, true
	}
	x = toF64(pop.X)
	w = make([]float64, pop.N())
	if weighted {
		smc.Normalize(pop.A, w)
	} else {
		for i := range w {
			w[i] = 1 / float64(len(w))
		}
	}
	return x, w
}

// measure labels the trainer's walkers.
func measureClasses[T Float](m *classMetric, t *trainer[T]) (*ClassFractions, error) {
	x, w := walkerImages(t)
	probs, err := m.clf.Predict(x, len(w))
	if err != nil {
		return nil, err
	}
	f, err := WeightedClassFractions(probs, m.clf.Classes, w)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// summary is the ClassSummary of the final fractions f.
func (m *classMetric) summary(f *ClassFractions) *ClassSummary {
	if m == nil || m.clf == nil || f == nil {
		return nil
	}
	s := &ClassSummary{ClassFractions: map[string]float64{}, TargetFractions: map[string]float64{}, ConfidentFraction: f.Confident}
	if a := m.clf.TestAccuracy; a > 0 {
		s.ClassifierAccuracy = &a
	}
	for k, c := range m.clf.Classes {
		s.ClassFractions[strconv.Itoa(c)] = f.Fractions[k]
		s.TargetFractions[strconv.Itoa(c)] = m.target[k]
	}
	return s
}

// classColumns are the metrics.csv columns of the metric.
func classColumns(classes []int) []string {
	if len(classes) == 0 {
		return nil
	}
	var cols []string
	for _, c := range classes {
		cols = append(cols, "class_"+strconv.Itoa(c))
	}
	return append(cols, "confident_fraction")
}

// classCells are the values of classColumns for a row (empty when f is nil).
func classCells(classes []int, f *ClassFractions) []string {
	if len(classes) == 0 {
		return nil
	}
	cells := make([]string, len(classes)+1)
	if f != nil {
		for k, v := range f.Fractions {
			cells[k] = num(v)
		}
		cells[len(classes)] = num(f.Confident)
	}
	return cells
}

// classPlot draws plots/classes.png: each class's weighted fraction over
// training (metrics.csv), with the data's proportions as dashed lines.
func classPlot(dir string, m *classMetric) error {
	cols, err := report.ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		return err
	}
	first, last := 0.0, 1.0
	if it := cols[report.IterColumn]; len(it) > 0 {
		first, last = it[0], it[len(it)-1]
	}
	p := plot.New()
	p.Title.Text = "weighted class fractions of the walkers (dashed: data)" + m.label
	p.X.Label.Text, p.Y.Label.Text = "iteration", "fraction"
	for k, c := range m.clf.Classes {
		col := report.Colors[k%len(report.Colors)]
		if err := report.AddLine(p, cols.Series("class_"+strconv.Itoa(c)), "class "+strconv.Itoa(c), col, false); err != nil {
			return err
		}
		if err := report.AddLine(p, plotter.XYs{{X: first, Y: m.target[k]}, {X: last, Y: m.target[k]}}, "", col, true); err != nil {
			return err
		}
	}
	if err := report.AddLine(p, cols.Series("confident_fraction"), fmt.Sprintf("top class p > %g", ConfidentProb), color.Gray{Y: 120}, false); err != nil {
		return err
	}
	p.Y.Min, p.Y.Max = 0, 1
	if err := os.MkdirAll(filepath.Join(dir, PlotsDir), 0o755); err != nil {
		return err
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, PlotsDir, "classes.png"))
}

// gridSide is the number of images per row and column of a walker grid.
const gridSide = 8

// writeWalkerGrid draws gridSide² walkers of shape [C, H, W], chosen by
// systematic resampling of the weights w (so a walker appears about
// 64·w_i times), as one PNG (channels averaged to gray, [lo, hi] mapped to
// black..white and clipped), written atomically.
func writeWalkerGrid(path string, x, w []float64, shape []int, lo, hi float64, seed uint64) error {
	if len(shape) != 3 {
		return fmt.Errorf("train: a walker grid needs images [C, H, W], got %v", shape)
	}
	c, h, wd := shape[0], shape[1], shape[2]
	d := c * h * wd
	idx := make([]int, len(w))
	smc.Resample(smc.Systematic, w, idx, rand.New(rand.NewPCG(seed, 0x67726964)))
	k := min(len(w), gridSide*gridSide)
	scale := max(1, 48/max(h, wd))
	const gap = 2
	img := image.NewGray(image.Rect(0, 0, gridSide*(wd*scale+gap)+gap, gridSide*(h*scale+gap)+gap))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for t := 0; t < k; t++ {
		im := x[idx[t*len(w)/k]*d:][:d]
		ox, oy := gap+(t%gridSide)*(wd*scale+gap), gap+(t/gridSide)*(h*scale+gap)
		for y := 0; y < h; y++ {
			for z := 0; z < wd; z++ {
				v := 0.0
				for ch := 0; ch < c; ch++ {
					v += im[(ch*h+y)*wd+z] / float64(c)
				}
				g := uint8(math.Round(255 * math.Max(0, math.Min(1, (v-lo)/(hi-lo)))))
				for sy := 0; sy < scale; sy++ {
					for sx := 0; sx < scale; sx++ {
						img.SetGray(ox+z*scale+sx, oy+y*scale+sy, color.Gray{Y: g})
					}
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

// atRow labels the walkers and draws a grid when due at row r (failures
// are logged: the metric never stops a run).
func (m *classMetric) atRow(t trainerView, r *row, dir string, log *slog.Logger) {
	if m.due(r.Iter) {
		f, err := t.classify(m)
		if err != nil {
			log.Warn("labelling the walkers failed", "iteration", r.Iter, "err", err)
		}
		r.Classes = f
	}
	if m.gridDue(r.Iter) {
		if err := t.grid(m, filepath.Join(dir, PlotsDir, fmt.Sprintf("grid_%d.png", r.Iter)), uint64(r.Iter)); err != nil {
			log.Warn("walker grid failed", "iteration", r.Iter, "err", err)
		}
	}
}

// atEnd labels the walkers of the final row.
func (m *classMetric) atEnd(t trainerView, r *row, log *slog.Logger) {
	if m.clf == nil {
		return
	}
	f, err := t.classify(m)
	if err != nil {
		log.Warn("labelling the walkers failed", "iteration", r.Iter, "err", err)
	}
	r.Classes = f
}

// plots draws plots/classes.png (with a classifier) and, for image models,
// plots/grid_final.png.
func (m *classMetric) plots(t trainerView, dir string) error {
	if m.clf != nil {
		if err := classPlot(dir, m); err != nil {
			return err
		}
	}
	if t.imageShape() == nil {
		return nil
	}
	return t.grid(m, filepath.Join(dir, PlotsDir, "grid_final.png"), 0)
}

// trainerView is what the metric reads of a trainer of either element type.
type trainerView interface {
	classify(m *classMetric) (*ClassFractions, error)
	grid(m *classMetric, path string, seed uint64) error
	imageShape() []int
}

func (t *trainer[T]) classify(m *classMetric) (*ClassFractions, error) { return measureClasses(m, t) }

func (t *trainer[T]) imageShape() []int { return t.cfg.imageShape() }

func (t *trainer[T]) grid(m *classMetric, path string, seed uint64) error {
	x, w := walkerImages(t)
	return writeWalkerGrid(path, x, w, t.imageShape(), m.lo, m.hi, seed)
}
