package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// Data kinds of data.kind. Mixture teachers (gmm, images) draw the data set
// and know its density; image files (mnist, cifar10) are read from
// data.path and have no known density (no teacher entropy, no exact KL, no
// mode masses: the class metric of log.classifier measures the walkers
// instead).
const (
	DataGMM     = "gmm"
	DataImages  = "images"
	DataMNIST   = "mnist"
	DataCIFAR10 = "cifar10"
)

// MNISTDirEnv names the environment variable with the default folder of
// the MNIST files (data.path unset); without it, .deps/mnist under the
// working directory, where `make setup` puts them.
const MNISTDirEnv = "JARZYN_MNIST_DIR"

// DefaultMNISTDir is the folder of the MNIST files when neither data.path
// nor $JARZYN_MNIST_DIR is set.
const DefaultMNISTDir = ".deps/mnist"

// fromFiles reports whether the data kind reads image files.
func (d *DataConfig) fromFiles() bool { return d.Kind == DataMNIST || d.Kind == DataCIFAR10 }

// dataPath is data.path, or for mnist $JARZYN_MNIST_DIR, then
// DefaultMNISTDir.
func (d *DataConfig) dataPath() string {
	if d.Path != "" || d.Kind != DataMNIST {
		return d.Path
	}
	if p := os.Getenv(MNISTDirEnv); p != "" {
		return p
	}
	return DefaultMNISTDir
}

// fileShape is the image shape of a file kind: 1×28×28 (mnist) or 3×32×32
// (cifar10).
func (d *DataConfig) fileShape() []int {
	if d.Kind == DataMNIST {
		return []int{1, 28, 28}
	}
	return []int{3, 32, 32}
}

// normalizeFileData fills the class subset defaults of a file kind (mnist:
// digits 2/3/6 at 5600/2800/1400, docs/METHOD.md §5.2; cifar10: all ten
// classes at 5000) and sets data.n to the subset's size.
func (d *DataConfig) normalizeFileData() {
	if len(d.Classes) == 0 {
		if d.Kind == DataMNIST {
			d.Classes = []int{2, 3, 6}
		} else {
			d.Classes = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
		}
	}
	if len(d.Counts) == 0 {
		if d.Kind == DataMNIST && fmt.Sprint(d.Classes) == "[2 3 6]" {
			d.Counts = []int{5600, 2800, 1400}
		} else {
			for range d.Classes {
				d.Counts = append(d.Counts, 5000)
			}
		}
	}
	n := 0
	for _, c := range d.Counts {
		n += c
	}
	d.N = n
}

// validateFileData checks the keys of a file kind against the model.
func (c *Config) validateFileData() error {
	bad := config.Errorf
	d := &c.Data
	if c.Model.Family != models.Conv && c.Model.Family != models.MLP {
		return bad("model.family", "data.kind %s needs family conv or mlp, got %q", d.Kind, c.Model.Family)
	}
	shape := d.fileShape()
	if want := shape[0] * shape[1] * shape[2]; c.Model.Dim != want {
		return bad("model.dim", "data.kind %s has images of %v (%d values); the model's input has %d (set model.input_shape: %v, or model.preset)", d.Kind, shape, want, c.Model.Dim, shape)
	}
	if c.Model.Family == models.Conv && fmt.Sprint(c.Model.InputShape) != fmt.Sprint(shape) {
		return bad("model.input_shape", "must be %v for data.kind %s, got %v", shape, d.Kind, c.Model.InputShape)
	}
	if len(d.Classes) != len(d.Counts) {
		return bad("data.counts", "needs one count per class of data.classes %v, got %v", d.Classes, d.Counts)
	}
	maxClass := 9
	for i, cl := range d.Classes {
		if cl < 0 || cl > maxClass {
			return bad(fmt.Sprintf("data.classes[%d]", i), "must be a class in [0, %d], got %d", maxClass, cl)
		}
		for _, o := range d.Classes[:i] {
			if o == cl {
				return bad(fmt.Sprintf("data.classes[%d]", i), "class %d listed twice", cl)
			}
		}
		if d.Counts[i] < 1 || d.Counts[i] > 6000 {
			return bad(fmt.Sprintf("data.counts[%d]", i), "must be in [1, 6000] (images of a class in the training split), got %d", d.Counts[i])
		}
	}
	if math.IsNaN(d.Noise) || d.Noise < 0 || d.Noise > 10 {
		return bad("data.noise", "must be in [0, 10], got %v", d.Noise)
	}
	return nil
}

// loadData returns the training data set of cfg.Data (n×d, pixels of image
// files in [−1, 1]), each point's label (the teacher mode, or the image's
// class), the mixture teacher (zero for file kinds) and the mean log
// density of the data under the teacher (NaN for file kinds).
func loadData(cfg Config) (teacher datasets.Teacher, data []float64, labels []int, logRhoStar float64, err error) {
	d := cfg.Model.Dim
	// the data set has its own stream, so it never depends on other settings
	dataRNG := rand.New(rand.NewPCG(cfg.Seed, 0xda7a))
	if !cfg.Data.fromFiles() {
		if teacher, err = cfg.teacher(); err != nil {
			return teacher, nil, nil, 0, err
		}
		data, labels = teacher.Sample(cfg.Data.N, cfg.Data.Split, dataRNG)
		s := 0.0
		for i := 0; i < cfg.Data.N; i++ {
			s += teacher.LogDensity(data[i*d : (i+1)*d])
		}
		return teacher, data, labels, s / float64(cfg.Data.N), nil
	}
	dir := cfg.Data.dataPath()
	if dir == "" {
		return teacher, nil, nil, 0, fmt.Errorf("train: data.path: data.kind %s needs the folder of its files (%s); set data.path", cfg.Data.Kind, strings.Join(datasets.CIFAR10Files, ", "))
	}
	var im *datasets.Images
	if cfg.Data.Kind == DataMNIST {
		im, err = datasets.LoadMNIST(dir, "train")
		if err != nil {
			err = fmt.Errorf("train: data.path %q: %w (run `make setup`, or point data.path or $%s at the MNIST files)", dir, err, MNISTDirEnv)
		}
	} else {
		im, err = datasets.LoadCIFAR10(dir, true)
		if err != nil {
			err = fmt.Errorf("train: data.path %q: %w", dir, err)
		}
	}
	if err != nil {
		return teacher, nil, nil, 0, err
	}
	sub, err := im.Subset(cfg.Data.Classes, cfg.Data.Counts)
	if err != nil {
		return teacher, nil, nil, 0, fmt.Errorf("train: data.classes/data.counts: %w", err)
	}
	data = sub.Pixels
	if sd := cfg.Data.Noise; sd > 0 {
		for i := range data {
			data[i] += sd * dataRNG.NormFloat64()
		}
	}
	return teacher, data, sub.Labels, math.NaN(), nil
}

// imageShape is the [C, H, W] of the walkers as images: model.input_shape
// for the conv family, the files' image shape for an mlp on image files,
// else nil.
func (c *Config) imageShape() []int {
	if sh := c.Model.InputShape; len(sh) == 3 {
		return sh
	}
	if c.Data.fromFiles() {
		return c.Data.fileShape()
	}
	return nil
}
