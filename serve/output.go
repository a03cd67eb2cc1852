package serve

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/smc"
)

// Format is an output file format.
type Format string

const (
	// FormatCSV writes one sample per row (coordinates, then the log-weight
	// when weighted) after a "#" header line.
	FormatCSV Format = "csv"
	// FormatNPY writes a float32 array [N, shape…]; weighted runs add a
	// float64 [N] array of log-weights next to it (see LogWeightsPath).
	FormatNPY Format = "npy"
	// FormatPNG draws a scatter (or density) plot for 2-D data, a histogram
	// for 1-D data and an image grid for images.
	FormatPNG Format = "png"
)

// ParseFormat checks a --format value; empty means "take it from the path".
func ParseFormat(s, path string) (Format, error) {
	if s == "" {
		s = strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
		if s == "" {
			return FormatCSV, nil
		}
	}
	switch f := Format(strings.ToLower(s)); f {
	case FormatCSV, FormatNPY, FormatPNG:
		return f, nil
	}
	return "", fmt.Errorf("serve: format must be csv, npy or png, got %q", s)
}

// LogWeightsPath is where a weighted NPY or PNG output's log-weights go:
// OUT with its extension replaced by ".logw.npy".
func LogWeightsPath(out string) string {
	return strings.TrimSuffix(out, filepath.Ext(out)) + ".logw.npy"
}

// WriteResult writes r to path in format f and, for a weighted NPY or PNG
// output, its log-weights to LogWeightsPath(path), and returns the paths
// written. The outputs are written all or none: each goes to a temporary
// file in its folder first, and they are renamed into place only when all
// have been written; on any failure nothing is left at the paths (an
// earlier file there is replaced by the new outputs or, when a rename fails
// midway, removed). A reader never sees half a file.
func WriteResult(path string, f Format, r *Result) ([]string, error) {
	var buf bytes.Buffer
	var err error
	switch f {
	case FormatCSV:
		err = WriteCSV(&buf, r)
	case FormatNPY:
		err = WriteNPY(&buf, r.Samples, append([]int{r.N}, r.DataShape...))
	case FormatPNG:
		err = WritePNG(&buf, r)
	default:
		err = fmt.Errorf("serve: unknown format %q", f)
	}
	if err != nil {
		return nil, err
	}
	outs := []pendingFile{{path: path, data: buf.Bytes()}}
	if r.Weighted && f != FormatCSV {
		var wb bytes.Buffer
		if err := WriteNPY(&wb, r.LogWeights, []int{r.N}); err != nil {
			return nil, err
		}
		outs = append(outs, pendingFile{path: LogWeightsPath(path), data: wb.Bytes()})
	}
	return writeAll(outs)
}

// pendingFile is one output of writeAll.
type pendingFile struct {
	path string
	data []byte
	tmp  *os.File // its temporary file, until renamed
}

// writeAll writes every file to a synced temporary file next to its path
// (atomicfile.CreateTemp), then renames them all into place; on a failure
// it removes the temporary files and whatever it has renamed.
func writeAll(files []pendingFile) (paths []string, err error) {
	renamed := 0
	defer func() {
		for i, f := range files {
			if f.tmp != nil {
				f.tmp.Close()
				if err != nil {
					os.Remove(f.tmp.Name())
				}
			}
			if err != nil && i < renamed {
				os.Remove(f.path)
			}
		}
		if err != nil {
			paths = nil
		}
	}()
	for i := range files {
		f := &files[i]
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, fmt.Errorf("serve: writing %s: %w", f.path, err)
		}
		t, err := atomicfile.CreateTemp(f.path)
		if err != nil {
			return nil, fmt.Errorf("serve: writing %s: %w", f.path, err)
		}
		f.tmp = t
		_, err = t.Write(f.data)
		if err == nil {
			err = t.Chmod(0o644)
		}
		if err == nil {
			err = t.Sync()
		}
		if err != nil {
			return nil, fmt.Errorf("serve: writing %s: %w", f.path, err)
		}
	}
	for i := range files {
		f := &files[i]
		if err := os.Rename(f.tmp.Name(), f.path); err != nil {
			return nil, fmt.Errorf("serve: writing %s: %w", f.path, err)
		}
		f.tmp.Close()
		f.tmp = nil
		renamed++
		paths = append(paths, f.path)
	}
	for _, dir := range uniqueDirs(files) {
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return paths, nil
}

func uniqueDirs(files []pendingFile) []string {
	var dirs []string
	for _, f := range files {
		if d := filepath.Dir(f.path); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// CheckWritable reports whether an output can be written at path: path is
// not a folder, and its folder, or the nearest folder above it that exists
// (the missing ones are created when the output is written), takes a new
// file. It creates and removes a temporary file there and leaves nothing
// behind. `jarzyn-serve sample` calls it before sampling.
func CheckWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("serve: output %s is a folder", path)
	}
	dir := filepath.Dir(path)
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("serve: output %s: %s is not a folder", path, dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("serve: output %s: %w", path, err)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return fmt.Errorf("serve: output %s: %w", path, err)
		}
		dir = up
	}
	t, err := os.CreateTemp(dir, ".jarzyn-write-check*")
	if err != nil {
		return fmt.Errorf("serve: output %s: cannot write in %s: %w", path, dir, errors.Unwrap(err))
	}
	t.Close()
	os.Remove(t.Name())
	return nil
}

// WriteCSV writes a header line "# x0,x1,…[,log_weight]" and one sample per
// row, float32 coordinates in shortest round-trip form.
func WriteCSV(w io.Writer, r *Result) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString("# ")
	for k := 0; k < r.Dim; k++ {
		if k > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("x" + strconv.Itoa(k))
	}
	if r.Weighted {
		bw.WriteString(",log_weight")
	}
	bw.WriteByte('\n')
	var line []byte
	for i := 0; i < r.N; i++ {
		line = line[:0]
		for k, v := range r.Samples[i*r.Dim : (i+1)*r.Dim] {
			if k > 0 {
				line = append(line, ',')
			}
			line = strconv.AppendFloat(line, float64(v), 'g', -1, 32)
		}
		if r.Weighted {
			line = append(line, ',')
			line = strconv.AppendFloat(line, r.LogWeights[i], 'g', -1, 64)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("serve: writing CSV: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("serve: writing CSV: %w", err)
	}
	return nil
}

// WriteNPY writes data (float32 or float64, row-major) as a NumPy .npy
// version 1.0 array of the given shape.
func WriteNPY[T float32 | float64](w io.Writer, data []T, shape []int) error {
	n := 1
	dims := make([]string, len(shape))
	for i, s := range shape {
		n *= s
		dims[i] = strconv.Itoa(s)
	}
	if n != len(data) {
		return fmt.Errorf("serve: npy shape %v holds %d values, got %d", shape, n, len(data))
	}
	descr, size := "<f4", 4
	var zero T
	if _, ok := any(zero).(float64); ok {
		descr, size = "<f8", 8
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	// magic (6) + version (2) + header length (2) + header + '\n', padded to 64
	total := 10 + len(header) + 1
	pad := (64 - total%64) % 64
	header += strings.Repeat(" ", pad) + "\n"
	var pre [10]byte
	copy(pre[:], "\x93NUMPY\x01\x00")
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(header)))
	body := make([]byte, size*len(data))
	for i, v := range data {
		if size == 4 {
			binary.LittleEndian.PutUint32(body[4*i:], math.Float32bits(float32(v)))
		} else {
			binary.LittleEndian.PutUint64(body[8*i:], math.Float64bits(float64(v)))
		}
	}
	for _, b := range [][]byte{pre[:], []byte(header), body} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("serve: writing npy: %w", err)
		}
	}
	return nil
}

// imageShape says whether samples of this shape are images and returns
// channels, height and width: shapes [H, W], [C, H, W] with C ∈ {1, 3}, or
// [d] with d a perfect square ≥ 64 (a flattened square grey image, e.g. 784).
func imageShape(shape []int) (c, h, w int, ok bool) {
	switch len(shape) {
	case 1:
		s := int(math.Round(math.Sqrt(float64(shape[0]))))
		if shape[0] >= 64 && s*s == shape[0] {
			return 1, s, s, true
		}
	case 2:
		return 1, shape[0], shape[1], true
	case 3:
		if shape[0] == 1 || shape[0] == 3 {
			return shape[0], shape[1], shape[2], true
		}
	}
	return 0, 0, 0, false
}

// WritePNG renders r: an image grid for image-shaped samples, a histogram
// for d = 1, otherwise a scatter of the first two coordinates (a density
// heat map when N > 5000 or the run is weighted; weights are honoured).
func WritePNG(w io.Writer, r *Result) error {
	if c, h, wd, ok := imageShape(r.DataShape); ok {
		return writeImageGrid(w, r, c, h, wd)
	}
	p := plot.New()
	title := fmt.Sprintf("%d samples, %d steps, h=%g", r.N, r.Steps+r.ExtraSteps, r.StepSize)
	if r.Weighted {
		title = fmt.Sprintf("%d weighted samples (ESS %.0f), log Ẑ = %.4g", r.N, r.ESS, r.LogZ)
	}
	p.Title.Text = title
	weights := r.normalizedWeights()
	if r.Dim == 1 {
		vals := make(plotter.XYs, r.N)
		for i := range vals {
			vals[i] = plotter.XY{X: float64(r.Samples[i]), Y: weights[i]}
		}
		hist, err := plotter.NewHistogram(vals, 60)
		if err != nil {
			return fmt.Errorf("serve: histogram: %w", err)
		}
		hist.Normalize(1)
		p.Add(hist)
		p.X.Label.Text = "x0"
		p.Y.Label.Text = "density"
	} else {
		p.X.Label.Text, p.Y.Label.Text = "x0", "x1"
		if r.Dim > 2 {
			p.Title.Text += fmt.Sprintf(" (first 2 of %d coordinates)", r.Dim)
		}
		if r.N > 5000 || r.Weighted {
			p.Add(newDensity(r, weights, 120))
		} else {
			xy := make(plotter.XYs, r.N)
			for i := range xy {
				xy[i] = plotter.XY{X: float64(r.Samples[i*r.Dim]), Y: float64(r.Samples[i*r.Dim+1])}
			}
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return fmt.Errorf("serve: scatter: %w", err)
			}
			sc.GlyphStyle.Shape = draw.CircleGlyph{}
			sc.GlyphStyle.Radius = vg.Points(1)
			sc.GlyphStyle.Color = color.NRGBA{R: 30, G: 80, B: 200, A: 140}
			p.Add(sc)
		}
	}
	wt, err := p.WriterTo(6*vg.Inch, 6*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("serve: rendering PNG: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("serve: writing PNG: %w", err)
	}
	return nil
}

// normalizedWeights returns softmax(log-weights), or 1/N each.
func (r *Result) normalizedWeights() []float64 {
	w := make([]float64, r.N)
	if r.Weighted {
		smc.Normalize(r.LogWeights, w)
		return w
	}
	for i := range w {
		w[i] = 1 / float64(r.N)
	}
	return w
}

// density is a weighted 2-D histogram of the first two coordinates.
type density struct {
	bins           int
	x0, y0, dx, dy float64
	z              []float64
}

func newDensity(r *Result, weights []float64, bins int) *plotter.HeatMap {
	lo := [2]float64{math.Inf(1), math.Inf(1)}
	hi := [2]float64{math.Inf(-1), math.Inf(-1)}
	for i := 0; i < r.N; i++ {
		for k := 0; k < 2; k++ {
			v := float64(r.Samples[i*r.Dim+k])
			lo[k], hi[k] = math.Min(lo[k], v), math.Max(hi[k], v)
		}
	}
	for k := range lo {
		if !(hi[k] > lo[k]) {
			lo[k], hi[k] = lo[k]-1, hi[k]+1
		}
	}
	g := &density{bins: bins, x0: lo[0], y0: lo[1], dx: (hi[0] - lo[0]) / float64(bins), dy: (hi[1] - lo[1]) / float64(bins), z: make([]float64, bins*bins)}
	for i := 0; i < r.N; i++ {
		c := min(bins-1, int((float64(r.Samples[i*r.Dim])-g.x0)/g.dx))
		rr := min(bins-1, int((float64(r.Samples[i*r.Dim+1])-g.y0)/g.dy))
		g.z[rr*bins+c] += weights[i]
	}
	// white (empty) → yellow → red → black (dense)
	cm := palette.Reverse(moreland.ExtendedBlackBody())
	cm.SetMin(0)
	cm.SetMax(1)
	hm := plotter.NewHeatMap(g, cm.Palette(128))
	hm.Min = 0
	hm.Rasterized = true
	return hm
}

func (g *density) Dims() (c, r int)   { return g.bins, g.bins }
func (g *density) Z(c, r int) float64 { return g.z[r*g.bins+c] }
func (g *density) X(c int) float64    { return g.x0 + (float64(c)+0.5)*g.dx }
func (g *density) Y(r int) float64    { return g.y0 + (float64(r)+0.5)*g.dy }

// gridMax is the most images a grid shows.
const gridMax = 64

// writeImageGrid tiles up to 64 samples (drawn ∝ weight when weighted) into
// one PNG, mapping the model's data range (or, if unknown, the shown
// samples' range) to black..white; values outside are clipped.
func writeImageGrid(w io.Writer, r *Result, ch, h, wd int) error {
	k := min(r.N, gridMax)
	idx := make([]int, k)
	if r.Weighted {
		p := r.normalizedWeights()
		all := make([]int, r.N)
		smc.Resample(smc.Systematic, p, all, rand.New(rand.NewPCG(1, 2)))
		for i := range idx {
			idx[i] = all[i*r.N/k]
		}
	} else {
		for i := range idx {
			idx[i] = i
		}
	}
	lo, hi := r.DataMin, r.DataMax
	if !(hi > lo) {
		lo, hi = math.Inf(1), math.Inf(-1)
		for _, i := range idx {
			for _, v := range r.Samples[i*r.Dim : (i+1)*r.Dim] {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
		}
		if !(hi > lo) {
			hi = lo + 1
		}
	}
	cols := int(math.Ceil(math.Sqrt(float64(k))))
	rows := (k + cols - 1) / cols
	scale := max(1, 96/max(h, wd))
	const gap = 2
	img := image.NewRGBA(image.Rect(0, 0, cols*(wd*scale+gap)+gap, rows*(h*scale+gap)+gap))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for t, i := range idx {
		s := r.Samples[i*r.Dim : (i+1)*r.Dim]
		ox, oy := gap+(t%cols)*(wd*scale+gap), gap+(t/cols)*(h*scale+gap)
		for y := 0; y < h; y++ {
			for x := 0; x < wd; x++ {
				var rgb [3]uint8
				for c := 0; c < 3; c++ {
					cc := min(c, ch-1)
					v := (float64(s[cc*h*wd+y*wd+x]) - lo) / (hi - lo)
					rgb[c] = uint8(math.Round(255 * math.Min(1, math.Max(0, v))))
				}
				col := color.RGBA{R: rgb[0], G: rgb[1], B: rgb[2], A: 255}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < scale; dx++ {
						img.SetRGBA(ox+x*scale+dx, oy+y*scale+dy, col)
					}
				}
			}
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("serve: writing PNG: %w", err)
	}
	return nil
}
