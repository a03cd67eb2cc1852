package datasets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Images is a labelled set of images, pixels scaled to [−1, 1], one image
// of C·H·W values in (channel, row, column) order after another.
type Images struct {
	N, C, H, W int
	Pixels     []float64
	Labels     []int
}

// Dim is the number of values of one image.
func (im *Images) Dim() int { return im.C * im.H * im.W }

// Image returns image i.
func (im *Images) Image(i int) []float64 { d := im.Dim(); return im.Pixels[i*d : (i+1)*d] }

// Limits of the image readers, guards against hostile files.
const (
	MaxImages    = 1 << 20 // images in one file
	MaxImageSide = 1024    // rows or columns of an IDX image
)

// IDX magic numbers: unsigned bytes, 3 dimensions (images) or 1 (labels).
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// MNIST file names, as distributed (gzip).
var mnistFiles = map[string][2]string{
	"train": {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
	"t10k":  {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
}

// LoadMNIST reads the MNIST split "train" or "t10k" from dir, which holds the
// four IDX files (gzip-compressed, or uncompressed without the .gz suffix).
// Errors name the file and what is wrong with it.
func LoadMNIST(dir, split string) (*Images, error) {
	names, ok := mnistFiles[split]
	if !ok {
		return nil, fmt.Errorf("datasets: MNIST split must be train or t10k, got %q", split)
	}
	imgPath, err := findFile(dir, names[0])
	if err != nil {
		return nil, err
	}
	lblPath, err := findFile(dir, names[1])
	if err != nil {
		return nil, err
	}
	im, err := ReadIDXImages(imgPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDXLabels(lblPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != im.N {
		return nil, fmt.Errorf("datasets: %s has %d labels, %s has %d images", lblPath, len(labels), imgPath, im.N)
	}
	for i, l := range labels {
		if l > 9 {
			return nil, fmt.Errorf("datasets: %s: label %d is %d, want 0..9", lblPath, i, l)
		}
	}
	im.Labels = labels
	return im, nil
}

// findFile returns dir/name, or dir/name without ".gz" when only that
// exists, or an error naming both.
func findFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	plain := strings.TrimSuffix(p, ".gz")
	if _, err := os.Stat(plain); err == nil {
		return plain, nil
	}
	return "", fmt.Errorf("datasets: %s not found (nor %s); `make setup` places the MNIST files in .deps/mnist, data.path points elsewhere", p, filepath.Base(plain))
}

// openMaybeGzip opens path, decompressing it when it starts with the gzip
// magic bytes.
func openMaybeGzip(path string) (io.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("datasets: %w", err)
	}
	br := bufio.NewReader(f)
	head, _ := br.Peek(2)
	if bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("datasets: %s: %w", path, err)
		}
		return zr, f.Close, nil
	}
	return br, f.Close, nil
}

// ReadIDXImages reads an IDX file of unsigned-byte images [n, rows, cols]
// (gzip or plain), pixels mapped to [−1, 1] by 2p/255 − 1.
func ReadIDXImages(path string) (*Images, error) {
	r, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("datasets: %s: reading the IDX header: %w", path, err)
	}
	if hdr[0] != idxImagesMagic {
		return nil, fmt.Errorf("datasets: %s: magic number %#08x, want %#08x (IDX unsigned-byte images)", path, hdr[0], idxImagesMagic)
	}
	n, rows, cols := int(hdr[1]), int(hdr[2]), int(hdr[3])
	if n < 1 || n > MaxImages || rows < 1 || rows > MaxImageSide || cols < 1 || cols > MaxImageSide {
		return nil, fmt.Errorf("datasets: %s: %d images of %d×%d, want 1..%d images with sides 1..%d", path, n, rows, cols, MaxImages, MaxImageSide)
	}
	raw := make([]byte, rows*cols)
	im := &Images{N: n, C: 1, H: rows, W: cols, Pixels: make([]float64, 0, n*rows*cols)}
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(r, raw); err != nil {
			return nil, fmt.Errorf("datasets: %s: image %d of %d: %w (truncated file?)", path, i, n, err)
		}
		for _, p := range raw {
			im.Pixels = append(im.Pixels, 2*float64(p)/255-1)
		}
	}
	if extra, _ := io.Copy(io.Discard, io.LimitReader(r, 1)); extra > 0 {
		return nil, fmt.Errorf("datasets: %s: data after the %d images the header announces", path, n)
	}
	return im, nil
}

// ReadIDXLabels reads an IDX file of unsigned-byte labels (gzip or plain).
func ReadIDXLabels(path string) ([]int, error) {
	r, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("datasets: %s: reading the IDX header: %w", path, err)
	}
	if hdr[0] != idxLabelsMagic {
		return nil, fmt.Errorf("datasets: %s: magic number %#08x, want %#08x (IDX unsigned-byte labels)", path, hdr[0], idxLabelsMagic)
	}
	n := int(hdr[1])
	if n < 1 || n > MaxImages {
		return nil, fmt.Errorf("datasets: %s: %d labels, want 1..%d", path, n, MaxImages)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("datasets: %s: %d labels announced: %w (truncated file?)", path, n, err)
	}
	if extra, _ := io.Copy(io.Discard, io.LimitReader(r, 1)); extra > 0 {
		return nil, fmt.Errorf("datasets: %s: data after the %d labels the header announces", path, n)
	}
	out := make([]int, n)
	for i, b := range raw {
		out[i] = int(b)
	}
	return out, nil
}

// Subset returns, for each class in order, the first counts[k] images of
// classes[k] (in file order), all of class 0 first, then class 1, …; for
// MNIST 2/3/6 at 4:2:1 (docs/METHOD.md §5.2): classes [2, 3, 6], counts
// [5600, 2800, 1400]. A class with fewer images than asked is an error.
func (im *Images) Subset(classes, counts []int) (*Images, error) {
	if len(classes) == 0 || len(classes) != len(counts) {
		return nil, fmt.Errorf("datasets: subset needs one count per class, got classes %v and counts %v", classes, counts)
	}
	d := im.Dim()
	out := &Images{C: im.C, H: im.H, W: im.W}
	for k, cl := range classes {
		if counts[k] < 1 {
			return nil, fmt.Errorf("datasets: subset count for class %d must be ≥ 1, got %d", cl, counts[k])
		}
		got := 0
		for i := 0; i < im.N && got < counts[k]; i++ {
			if im.Labels[i] == cl {
				out.Pixels = append(out.Pixels, im.Pixels[i*d:(i+1)*d]...)
				out.Labels = append(out.Labels, cl)
				got++
			}
		}
		if got < counts[k] {
			return nil, fmt.Errorf("datasets: class %d has %d images, %d asked", cl, got, counts[k])
		}
	}
	out.N = len(out.Labels)
	return out, nil
}

// CIFAR-10 binary batches: one record per image, a label byte then 3072
// bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major).
const (
	cifarSide   = 32
	cifarRecord = 1 + 3*cifarSide*cifarSide
)

// CIFAR10Files lists the binary batch files LoadCIFAR10 reads for the
// training split; the test split is test_batch.bin.
var CIFAR10Files = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}

// LoadCIFAR10 reads CIFAR-10's binary batches from dir: the five training
// batches (train true) or test_batch.bin. A missing file is an error that
// names the files expected.
func LoadCIFAR10(dir string, train bool) (*Images, error) {
	files := CIFAR10Files
	if !train {
		files = []string{"test_batch.bin"}
	}
	im := &Images{C: 3, H: cifarSide, W: cifarSide}
	for _, name := range files {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("datasets: %s not found: CIFAR-10 needs the binary version's files %s in data.path (%s)", p, strings.Join(files, ", "), dir)
		}
		if err != nil {
			return nil, fmt.Errorf("datasets: %w", err)
		}
		if len(b) == 0 || len(b)%cifarRecord != 0 {
			return nil, fmt.Errorf("datasets: %s: %d bytes is not a whole number of %d-byte CIFAR-10 records", p, len(b), cifarRecord)
		}
		if im.N+len(b)/cifarRecord > MaxImages {
			return nil, fmt.Errorf("datasets: %s: more than %d images", p, MaxImages)
		}
		for off := 0; off < len(b); off += cifarRecord {
			if b[off] > 9 {
				return nil, fmt.Errorf("datasets: %s: record %d has label %d, want 0..9", p, off/cifarRecord, b[off])
			}
			im.Labels = append(im.Labels, int(b[off]))
			for _, v := range b[off+1 : off+cifarRecord] {
				im.Pixels = append(im.Pixels, 2*float64(v)/255-1)
			}
		}
		im.N += len(b) / cifarRecord
	}
	return im, nil
}
