package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxImages returns an IDX image file of n images rows×cols whose pixel j of
// image i is (i+j)%256.
func idxImages(magic uint32, n, rows, cols int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{magic, uint32(n), uint32(rows), uint32(cols)})
	for i := 0; i < n; i++ {
		for j := 0; j < rows*cols; j++ {
			b.WriteByte(byte((i + j) % 256))
		}
	}
	return b.Bytes()
}

func idxLabels(magic uint32, labels []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{magic, uint32(len(labels))})
	b.Write(labels)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadMNISTSmallFiles(t *testing.T) {
	labels := []byte{2, 3, 6, 2, 1, 3, 2}
	good := map[string][]byte{
		"train-images-idx3-ubyte.gz": gz(idxImages(idxImagesMagic, 7, 3, 4)),
		"train-labels-idx1-ubyte.gz": gz(idxLabels(idxLabelsMagic, labels)),
		// the test split uncompressed, without the .gz suffix
		"t10k-images-idx3-ubyte": idxImages(idxImagesMagic, 2, 3, 4),
		"t10k-labels-idx1-ubyte": idxLabels(idxLabelsMagic, []byte{0, 9}),
	}
	dir := writeFiles(t, good)
	im, err := LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 7 || im.H != 3 || im.W != 4 || im.C != 1 || len(im.Pixels) != 7*12 {
		t.Fatalf("read %d images %d×%d×%d, %d pixels", im.N, im.C, im.H, im.W, len(im.Pixels))
	}
	// pixel j of image i is (i+j)%256, mapped to 2p/255 − 1
	if got, want := im.Image(5)[3], 2*float64(8)/255-1; got != want {
		t.Errorf("image 5 pixel 3 = %v, want %v", got, want)
	}
	if im.Image(0)[0] != -1 {
		t.Errorf("pixel 0 → %v, want −1", im.Image(0)[0])
	}
	sub, err := im.Subset([]int{2, 3, 6}, []int{2, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	// the first two 2s are images 0 and 3, the first 3 image 1, the 6 image 2
	if sub.N != 4 || sub.Labels[0] != 2 || sub.Labels[2] != 3 || sub.Image(1)[0] != im.Image(3)[0] || sub.Image(3)[0] != im.Image(2)[0] {
		t.Errorf("subset labels %v", sub.Labels)
	}
	if _, err := im.Subset([]int{2}, []int{4}); err == nil || !strings.Contains(err.Error(), "class 2 has 3 images") {
		t.Errorf("subset larger than the class: %v", err)
	}
	test, err := LoadMNIST(dir, "t10k")
	if err != nil || test.N != 2 || test.Labels[1] != 9 {
		t.Fatalf("t10k: %v %+v", err, test)
	}

	for _, c := range []struct {
		name  string
		edit  func(map[string][]byte)
		split string
		want  string
	}{
		{"bad magic", func(f map[string][]byte) {
			f["train-images-idx3-ubyte.gz"] = gz(idxImages(0x0803+1, 7, 3, 4))
		}, "train", "magic number"},
		{"truncated", func(f map[string][]byte) {
			b := idxImages(idxImagesMagic, 7, 3, 4)
			f["train-images-idx3-ubyte.gz"] = gz(b[:len(b)-5])
		}, "train", "truncated"},
		{"huge count", func(f map[string][]byte) {
			b := []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28}
			f["train-images-idx3-ubyte.gz"] = b
		}, "train", "want 1..1048576 images"},
		{"trailing data", func(f map[string][]byte) {
			f["train-labels-idx1-ubyte.gz"] = append(idxLabels(idxLabelsMagic, labels), 0)
		}, "train", "data after"},
		{"count mismatch", func(f map[string][]byte) {
			f["train-labels-idx1-ubyte.gz"] = idxLabels(idxLabelsMagic, labels[:6])
		}, "train", "has 6 labels"},
		{"label out of range", func(f map[string][]byte) {
			f["train-labels-idx1-ubyte.gz"] = idxLabels(idxLabelsMagic, []byte{2, 3, 6, 2, 1, 3, 12})
		}, "train", "label 6 is 12"},
		{"missing", func(f map[string][]byte) { delete(f, "train-labels-idx1-ubyte.gz") }, "train", "train-labels-idx1-ubyte.gz not found"},
		{"split", func(map[string][]byte) {}, "validation", "train or t10k"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = v
			}
			c.edit(files)
			_, err := LoadMNIST(writeFiles(t, files), c.split)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// The real MNIST files, when present (make setup puts them in .deps/mnist;
// JARZYN_MNIST_DIR overrides): counts and the training split's label
// histogram.
func TestLoadMNISTRealFiles(t *testing.T) {
	dir := os.Getenv("JARZYN_MNIST_DIR")
	if dir == "" {
		dir = filepath.Join("..", ".deps", "mnist")
	}
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("no MNIST files in %s", dir)
	}
	train, err := LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := LoadMNIST(dir, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 60000 || test.N != 10000 || train.H != 28 || train.W != 28 {
		t.Fatalf("train %d test %d images of %d×%d", train.N, test.N, train.H, train.W)
	}
	hist := make([]int, 10)
	for _, l := range train.Labels {
		hist[l]++
	}
	want := []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	for k := range want {
		if hist[k] != want[k] {
			t.Fatalf("training label histogram %v, want %v", hist, want)
		}
	}
	sub, err := train.Subset([]int{2, 3, 6}, []int{5600, 2800, 1400})
	if err != nil || sub.N != 9800 {
		t.Fatalf("the 2/3/6 subset: %v, %d images", err, sub.N)
	}
}

func TestLoadCIFAR10SmallFile(t *testing.T) {
	rec := func(label byte, v byte) []byte {
		b := bytes.Repeat([]byte{v}, cifarRecord)
		b[0] = label
		return b
	}
	files := map[string][]byte{}
	for i, name := range CIFAR10Files {
		files[name] = append(rec(byte(i), 0), rec(9, 255)...)
	}
	files["test_batch.bin"] = rec(3, 51)
	dir := writeFiles(t, files)
	im, err := LoadCIFAR10(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 10 || im.C != 3 || im.H != 32 || len(im.Pixels) != 10*3072 || im.Labels[2] != 1 || im.Labels[3] != 9 {
		t.Fatalf("train: %d images, labels %v", im.N, im.Labels)
	}
	if im.Image(0)[5] != -1 || im.Image(1)[3071] != 1 {
		t.Errorf("pixels %v %v, want −1 and 1", im.Image(0)[5], im.Image(1)[3071])
	}
	test, err := LoadCIFAR10(dir, false)
	if err != nil || test.N != 1 || test.Labels[0] != 3 || test.Image(0)[0] != 2*51.0/255-1 {
		t.Fatalf("test: %v %+v", err, test.Labels)
	}
	for _, c := range []struct {
		name string
		edit func(map[string][]byte)
		want string
	}{
		{"missing", func(f map[string][]byte) { delete(f, "data_batch_3.bin") }, "data_batch_1.bin, data_batch_2.bin"},
		{"partial record", func(f map[string][]byte) { f["data_batch_2.bin"] = f["data_batch_2.bin"][:100] }, "whole number"},
		{"label", func(f map[string][]byte) { f["data_batch_1.bin"] = rec(10, 0) }, "label 10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := map[string][]byte{}
			for k, v := range files {
				g[k] = v
			}
			c.edit(g)
			_, err := LoadCIFAR10(writeFiles(t, g), true)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
