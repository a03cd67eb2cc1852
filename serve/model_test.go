package serve

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/internal/ortlib"
)

func TestLoadModelInfo(t *testing.T) {
	g := testGaussian
	m := loadGaussian(t, g)
	in := m.Info
	if in.Family != "gmm" || in.Dim != 2 || len(in.DataShape) != 1 || in.DataShape[0] != 2 || in.FormatVersion != 1 ||
		in.BaseStd != g.sd0 || in.BaseMean[0] != g.mu0[0] || in.BaseMean[1] != g.mu0[1] || in.StepSize != g.h ||
		in.DataMin != g.min || in.DataMax != g.max || in.Method != "test" || in.LogZEstimate != g.logZ() ||
		in.Spec == nil || in.Spec.Modes != 1 || in.ModelVersion != 1 || m.Device != DeviceCPU {
		t.Errorf("info %+v", in)
	}
}

// TestLoadModelBadFiles: every kind of bad file is one error naming the file
// and saying what is wrong.
func TestLoadModelBadFiles(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	good := testGaussian.build(t)
	noMeta := goodRaw(2)
	noMeta.meta = map[string]string{"producer": "someone"}
	partMeta := goodRaw(2)
	delete(partMeta.meta, "jarzyn.base_std")
	badStd := goodRaw(2)
	badStd.meta["jarzyn.base_std"] = "-1"
	newer := goodRaw(2)
	newer.meta["jarzyn.format_version"] = "9"
	badShape := goodRaw(2)
	badShape.meta["jarzyn.data_shape"] = "[3]"
	badShape.meta["jarzyn.base_mean"] = "[0,0,0]"
	wrongInput := goodRaw(2)
	wrongInput.input = "y"
	intInput := goodRaw(2)
	intInput.elemType = 7
	fused := goodRaw(2)
	fused.meta["jarzyn.graph"] = "ula"
	noGrad := goodRaw(2)
	noGrad.grad = "gradient"
	for _, tc := range []struct {
		name string
		data []byte // nil: the file does not exist
		want string
	}{
		{"missing.onnx", nil, "no such file"},
		{"empty.onnx", []byte{}, "empty file"},
		{"truncated.onnx", good[:len(good)/2], "not a loadable ONNX model"},
		{"garbage.onnx", []byte("this is not protobuf at all, just text\n"), "not a loadable ONNX model"},
		{"nometa.onnx", noMeta.marshal(), "missing jarzyn metadata jarzyn.format_version"},
		{"partmeta.onnx", partMeta.marshal(), "missing jarzyn metadata jarzyn.base_std"},
		{"badstd.onnx", badStd.marshal(), "jarzyn.base_std"},
		{"newer.onnx", newer.marshal(), "jarzyn.format_version"},
		{"badshape.onnx", badShape.marshal(), "wrong type or shape"},
		{"wronginput.onnx", wrongInput.marshal(), "wrong inputs"},
		{"intinput.onnx", intInput.marshal(), "input x has the wrong type"},
		{"nograd.onnx", noGrad.marshal(), "missing outputs"},
		{"fused.onnx", fused.marshal(), "jarzyn.graph"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.data != nil {
				writeFile(t, dir, tc.name, tc.data)
			}
			m, err := LoadModel(path, LoadOptions{Logger: quietLog})
			if err == nil {
				m.Close()
				t.Fatal("loaded a bad model")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "serve: ") || !strings.Contains(msg, path) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want it to start with \"serve: \", name %s and say %q", msg, path, tc.want)
			}
		})
	}
	// a models folder with one bad model fails as a whole, naming the file
	writeFile(t, dir, "tree/ok/1/model.onnx", good)
	writeFile(t, dir, "tree/bad/1/model.onnx", good[:100])
	if _, err := LoadDir(filepath.Join(dir, "tree"), LoadOptions{Logger: quietLog}); err == nil || !strings.Contains(err.Error(), filepath.Join("bad", "1", "model.onnx")) {
		t.Errorf("LoadDir with a bad model: %v", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "nothing-here"), LoadOptions{Logger: quietLog}); err == nil {
		t.Errorf("LoadDir of a missing folder succeeded")
	}
	empty := filepath.Join(dir, "emptytree")
	os.Mkdir(empty, 0o755)
	if _, err := LoadDir(empty, LoadOptions{Logger: quietLog}); err == nil || !strings.Contains(err.Error(), "no models") {
		t.Errorf("LoadDir of an empty folder: %v", err)
	}
}

// TestDeviceSelection exercises the CUDA paths on a machine without CUDA:
// cuda fails clearly, auto falls back to the CPU with a log line.
func TestDeviceSelection(t *testing.T) {
	needORT(t)
	path := writeFile(t, t.TempDir(), "m.onnx", testGaussian.build(t))
	lib, err := ortlib.Init("")
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "libonnxruntime_providers_cuda.so")
	for _, tc := range []struct {
		name    string
		dev     Device
		cudaLib string
		wantErr string // empty: loads on the CPU
		wantLog string
	}{
		{"cpu", DeviceCPU, missing, "", ""},
		{"cuda without provider library", DeviceCUDA, missing, "--device cuda: CUDA execution provider unavailable: " + missing + " not found", ""},
		// the CPU library is no execution-provider plugin: registration itself fails
		{"cuda with a library that is no provider", DeviceCUDA, lib, "registering " + lib + " failed", ""},
		{"auto without provider library", DeviceAuto, missing, "", "falling back to CPU"},
		{"auto with a library that is no provider", DeviceAuto, lib, "", "falling back to CPU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			m, err := LoadModel(path, LoadOptions{Device: tc.dev, CUDAProviderLib: tc.cudaLib, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errNoCUDA) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Device != DeviceCPU {
				t.Errorf("device %s, want cpu", m.Device)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tc.wantLog)
			}
		})
	}
	if _, err := ParseDevice("gpu"); err == nil {
		t.Errorf("ParseDevice accepted gpu")
	}
}

// TestNoGorgonia: the production binary links no gorgonia (docs/ARCHITECTURE.md).
func TestNoGorgonia(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/jarzyn/jarzyn/cmd/jarzyn-serve").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := string(out)
	if !strings.Contains(deps, "github.com/yalue/onnxruntime_go") || !strings.Contains(deps, "github.com/jarzyn/jarzyn/smc") {
		t.Fatalf("go list output looks wrong:\n%s", deps)
	}
	for _, line := range strings.Split(deps, "\n") {
		if strings.Contains(line, "gorgonia") {
			t.Errorf("jarzyn-serve depends on %s", line)
		}
	}
}
