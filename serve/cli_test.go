package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runMain runs the command line in-process.
func runMain(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// runSample runs `sample --out out args…` in-process, fails the test unless
// it exits 0 with an empty stderr, and returns the JSON summary and the
// output file.
func runSample(t *testing.T, out string, args ...string) (SampleSummary, []byte) {
	t.Helper()
	code, stdout, stderr := runMain(t, context.Background(), append([]string{"sample", "--out", out}, args...)...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr not empty off a terminal: %q", stderr)
	}
	var sum SampleSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return sum, b
}

func gaussianFile(t *testing.T) string {
	t.Helper()
	needORT(t)
	return writeFile(t, t.TempDir(), "gauss.onnx", testGaussian.build(t))
}

func TestMainSampleCSV(t *testing.T) {
	model := gaussianFile(t)
	dir := t.TempDir()
	run := func(name string, extra ...string) (SampleSummary, []byte) {
		return runSample(t, filepath.Join(dir, name), append([]string{"--model", model, "--n", "300", "--steps", "20"}, extra...)...)
	}
	sum, a := run("a.csv", "--seed", "9")
	_, b := run("b.csv", "--seed", "9")
	_, c := run("c.csv", "--seed", "10")
	if !bytes.Equal(a, b) {
		t.Errorf("same seed, different CSV")
	}
	if bytes.Equal(a, c) {
		t.Errorf("different seeds, same CSV")
	}
	if sum.N != 300 || sum.Steps != 20 || sum.H != testGaussian.h || sum.Seed != 9 || sum.Weighted || sum.LogZ != nil || sum.Device != "cpu" || len(sum.Files) != 1 {
		t.Errorf("summary %+v", sum)
	}
	lines := strings.Split(strings.TrimSpace(string(a)), "\n")
	if len(lines) != 301 || lines[0] != "# x0,x1" {
		t.Fatalf("CSV has %d lines, header %q", len(lines), lines[0])
	}
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 2 {
			t.Fatalf("row %d: %q", i, l)
		}
		for _, v := range f {
			if _, err := strconv.ParseFloat(v, 32); err != nil {
				t.Fatalf("row %d: %q", i, l)
			}
		}
	}
	// weighted: a log_weight column and the estimates in the summary
	sum, w := run("w.csv", "--weighted", "--h", "0.1", "--extra-steps", "3")
	wl := strings.Split(strings.TrimSpace(string(w)), "\n")
	if wl[0] != "# x0,x1,log_weight" || len(strings.Split(wl[1], ",")) != 3 || len(wl) != 301 {
		t.Errorf("weighted CSV header %q, row %q", wl[0], wl[1])
	}
	if !sum.Weighted || sum.LogZ == nil || sum.ESS == nil || sum.ExtraSteps != 3 || math.Abs(*sum.LogZ-testGaussian.logZ()) > 0.5 {
		t.Errorf("weighted summary %+v", sum)
	}
}

// readNPY parses a .npy file written by WriteNPY.
func readNPY(t *testing.T, path string) (descr string, shape []int, data []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("%s: bad magic %q", path, b[:8])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:]))
	if (10+hl)%64 != 0 {
		t.Errorf("%s: header not 64-byte aligned", path)
	}
	h := string(b[10 : 10+hl])
	descr = h[strings.Index(h, "'descr': '")+10:]
	descr = descr[:strings.IndexByte(descr, '\'')]
	s := h[strings.Index(h, "'shape': (")+10:]
	s = s[:strings.IndexByte(s, ')')]
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			v, _ := strconv.Atoi(f)
			shape = append(shape, v)
		}
	}
	return descr, shape, b[10+hl:]
}

func TestMainSampleNPYAndPNG(t *testing.T) {
	model := gaussianFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "s.npy")
	if code, _, stderr := runMain(t, context.Background(), "sample", "--model", model, "--n", "50", "--steps", "5", "--weighted", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	descr, shape, data := readNPY(t, out)
	if descr != "<f4" || len(shape) != 2 || shape[0] != 50 || shape[1] != 2 || len(data) != 4*100 {
		t.Errorf("samples npy: %s %v %d bytes", descr, shape, len(data))
	}
	descr, shape, data = readNPY(t, LogWeightsPath(out))
	if descr != "<f8" || len(shape) != 1 || shape[0] != 50 || len(data) != 8*50 {
		t.Errorf("log-weights npy: %s %v %d bytes", descr, shape, len(data))
	}
	for _, tc := range []struct {
		name  string
		model string
		args  []string
		minW  int
	}{
		{"scatter", model, []string{"--n", "500"}, 300},
		{"density", model, []string{"--n", "6000"}, 300},
		{"weighted density", model, []string{"--n", "500", "--weighted"}, 300},
		{"image grid", writeFile(t, dir, "img.onnx", goodRaw(1, 8, 8).marshal()), []string{"--n", "20"}, 40},
		{"flat image grid", writeFile(t, dir, "flat.onnx", goodRaw(64).marshal()), []string{"--n", "20"}, 40},
		{"histogram", writeFile(t, dir, "one.onnx", goodRaw(1).marshal()), []string{"--n", "500"}, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".png")
			args := append([]string{"sample", "--model", tc.model, "--steps", "3", "--out", out}, tc.args...)
			if code, _, stderr := runMain(t, context.Background(), args...); code != 0 {
				t.Fatal(stderr)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds().Dx() < tc.minW {
				t.Errorf("image %v", img.Bounds())
			}
		})
	}
}

func TestMainErrors(t *testing.T) {
	model := gaussianFile(t)
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc.onnx")
	b, _ := os.ReadFile(model)
	os.WriteFile(trunc, b[:len(b)/3], 0o644)
	out := filepath.Join(dir, "o.csv")
	img := writeFile(t, dir, "img.onnx", goodRaw(1, 4, 4).marshal())
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"--help"}, ExitOK, "Usage:"},
		{"sample help", []string{"sample", "-h"}, ExitOK, "Usage: jarzyn-serve sample"},
		{"http help", []string{"http", "--help"}, ExitOK, "Usage: jarzyn-serve http"},
		{"no command", nil, ExitUsage, "missing command"},
		{"unknown command", []string{"train"}, ExitUsage, "unknown command"},
		{"unknown flag", []string{"sample", "--model", model, "--out", out, "--bogus"}, ExitUsage, "-bogus"},
		{"bad flag value", []string{"sample", "--model", model, "--out", out, "--n", "many"}, ExitUsage, "-n"},
		{"unexpected argument", []string{"sample", "--model", model, "--out", out, "extra"}, ExitUsage, `unexpected arguments ["extra"]`},
		{"http unexpected argument", []string{"http", "--model", model, "extra"}, ExitUsage, `unexpected arguments ["extra"]`},
		{"http unknown flag", []string{"http", "--bogus"}, ExitUsage, "-bogus"},
		{"no out", []string{"sample", "--model", model}, ExitUsage, "--out are required"},
		{"bad threads", []string{"sample", "--model", model, "--out", out, "--threads", "-1"}, ExitUsage, "--threads: must be in [0, "},
		{"threads huge", []string{"sample", "--model", model, "--out", out, "--threads", "100000"}, ExitUsage, "--threads: must be in [0, "},
		{"http threads huge", []string{"http", "--model", model, "--threads", "100000"}, ExitUsage, "--threads: must be in [0, "},
		{"bad n", []string{"sample", "--model", model, "--out", out, "--n", "0"}, ExitUsage, "--n: must be > 0"},
		{"n huge", []string{"sample", "--model", model, "--out", out, "--n", "2000000000"}, ExitUsage, "--n: must be in [1, 10000000], got 2000000000"},
		{"n huge, checked before loading", []string{"sample", "--model", filepath.Join(dir, "none.onnx"), "--out", out, "--n", "2000000000"}, ExitUsage, "--n: must be in [1, 10000000], got 2000000000"},
		{"steps huge", []string{"sample", "--model", model, "--out", out, "--steps", "2000000000"}, ExitUsage, "--steps: must be in [0, 1000000000], got 2000000000"},
		{"n*steps huge", []string{"sample", "--model", model, "--out", out, "--n", "10000000", "--steps", "10000000"}, ExitUsage, "--n * --steps: n·(steps+extra_steps) = 100000000000000 exceeds the limit 10000000000000"},
		{"extra steps overflow", []string{"sample", "--model", model, "--out", out, "--weighted", "--extra-steps", "9223372036854775807"}, ExitUsage, "--extra-steps: must be in [0, "},
		{"run batch huge", []string{"sample", "--model", model, "--out", out, "--run-batch", "9223372036854775807"}, ExitUsage, "--run-batch: must be in [0, 10000000]"},
		{"n·d huge", []string{"sample", "--model", img, "--out", out, "--n", "10000000", "--steps", "1"}, ExitUsage, "--n: n·d = 10000000·16 = 160000000 numbers exceeds the limit 100000000"},
		{"bad h", []string{"sample", "--model", model, "--out", out, "--h", "-1"}, ExitUsage, "--h: must be a finite number > 0, or 0 for the model's training step size; got -1\n"},
		{"h NaN", []string{"sample", "--model", model, "--out", out, "--h", "NaN"}, ExitUsage, "--h: must be a finite number > 0, or 0 for the model's training step size; got NaN\n"},
		{"threshold unweighted", []string{"sample", "--model", model, "--out", out, "--resample-threshold", "0.3"}, ExitUsage, "--resample-threshold: only applies to weighted sampling"},
		{"scheme unweighted", []string{"sample", "--model", model, "--out", out, "--resample", "multinomial"}, ExitUsage, "--resample: only applies to weighted sampling"},
		{"out a folder", []string{"sample", "--model", model, "--out", dir}, ExitError, "is a folder"},
		{"out under a file", []string{"sample", "--model", model, "--out", filepath.Join(trunc, "o.csv")}, ExitError, "trunc.onnx is not a folder"},
		{"http max-n huge", []string{"http", "--model", model, "--max-n", "2000000000"}, ExitUsage, "--max-n: must be in [0, 10000000]"},
		{"http max-body huge", []string{"http", "--model", model, "--max-body", "99999999999"}, ExitUsage, "--max-body: must be in [0, 1073741824]"},
		{"http read-timeout negative", []string{"http", "--model", model, "--read-timeout", "-1s"}, ExitUsage, "--read-timeout: must be in [0, 24h0m0s], got -1s"},
		{"bad init", []string{"sample", "--model", model, "--out", out, "--init", "zeros"}, ExitUsage, "--init:"},
		{"bad threshold", []string{"sample", "--model", model, "--out", out, "--weighted", "--resample-threshold", "2"}, ExitUsage, "--resample-threshold:"},
		{"bad format", []string{"sample", "--model", model, "--out", filepath.Join(dir, "o.txt")}, ExitUsage, "format must be csv, npy or png"},
		{"bad device", []string{"sample", "--model", model, "--out", out, "--device", "tpu"}, ExitUsage, "device must be"},
		{"missing model", []string{"sample", "--model", filepath.Join(dir, "none.onnx"), "--out", out}, ExitError, "none.onnx: no such file"},
		{"truncated model", []string{"sample", "--model", trunc, "--out", out}, ExitError, "trunc.onnx is not a loadable ONNX model"},
		{"cuda unavailable", []string{"sample", "--model", model, "--out", out, "--device", "cuda", "--cuda-ep-lib", filepath.Join(dir, "nope.so")}, ExitError, "--device cuda: CUDA execution provider unavailable"},
		{"http without model", []string{"http"}, ExitUsage, "exactly one of"},
		{"http bad model", []string{"http", "--model", trunc, "--addr", "127.0.0.1:0"}, ExitError, "trunc.onnx"},
		{"http bad log level", []string{"http", "--model", model, "--log-level", "loud"}, ExitUsage, "--log-level"},
		{"http bad log format", []string{"http", "--model", model, "--log-format", "xml"}, ExitUsage, "--log-format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, context.Background(), tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, stderr, tc.code, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			// a usage error is the message and a one-line hint, not the whole usage
			if tc.code == ExitUsage {
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				if len(lines) != 2 || !strings.HasPrefix(lines[0], "jarzyn-serve") || !strings.HasPrefix(lines[1], "Run 'jarzyn-serve") || !strings.HasSuffix(lines[1], " --help' for usage.") {
					t.Errorf("usage error is not a message and a hint: %q", stderr)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output written by a failed run")
			}
		})
	}
}

// TestMainSampleOutputCheckedFirst: an output that cannot be written fails
// the run before it samples: with a context that has already ended, the
// run fails on the output (exit 1), not on the sampling (exit 130). The
// check leaves nothing behind.
func TestMainSampleOutputCheckedFirst(t *testing.T) {
	model := gaussianFile(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "file", []byte("x"))
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name, out string
		code      int
		want      string
	}{
		{"out a folder", dir, ExitError, "is a folder"},
		{"folder a file", filepath.Join(file, "s.csv"), ExitError, "is not a folder"},
		{"missing folders under a file", filepath.Join(file, "a", "b", "s.csv"), ExitError, "is not a folder"},
		{"writable, missing folders", filepath.Join(dir, "new", "s.csv"), ExitInterrupted, "interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runMain(t, ended, "sample", "--model", model, "--n", "100", "--steps", "10", "--out", tc.out)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, stderr, tc.code, tc.want)
			}
			es, _ := os.ReadDir(dir)
			if len(es) != 1 || es[0].Name() != "file" {
				t.Errorf("left in the folder: %v", es)
			}
		})
	}
}

// TestWriteResultAllOrNothing: when one output of a weighted run cannot be
// written (its path is a folder), none is left, nor any temporary file; the
// command exits 1 without its samples file.
func TestWriteResultAllOrNothing(t *testing.T) {
	r := &Result{N: 3, DataShape: []int{2}, Dim: 2, Samples: []float32{1, 2, 3, 4, 5, 6}, Weighted: true, LogWeights: []float64{0, -1, -2}}
	for _, f := range []Format{FormatNPY, FormatPNG} {
		dir := t.TempDir()
		out := filepath.Join(dir, "s."+string(f))
		if err := os.Mkdir(LogWeightsPath(out), 0o755); err != nil {
			t.Fatal(err)
		}
		files, err := WriteResult(out, f, r)
		if err == nil || files != nil {
			t.Fatalf("%s: wrote %v, err %v", f, files, err)
		}
		if es, _ := os.ReadDir(dir); len(es) != 1 {
			t.Errorf("%s: %v left after %v", f, es, err)
		}
		// with the folder gone both are written
		os.Remove(LogWeightsPath(out))
		if files, err := WriteResult(out, f, r); err != nil || len(files) != 2 {
			t.Fatalf("%s: %v, %v", f, files, err)
		}
	}
	model := gaussianFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "s.npy")
	os.Mkdir(LogWeightsPath(out), 0o755)
	code, stdout, stderr := runMain(t, context.Background(), "sample", "--model", model, "--n", "50", "--steps", "5", "--weighted", "--out", out)
	if code != ExitError || stdout != "" || !strings.Contains(stderr, "s.logw.npy") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("left after a failed write: %v", es)
	}
}

func TestMainSampleInterrupted(t *testing.T) {
	model := gaussianFile(t)
	out := filepath.Join(t.TempDir(), "never.csv")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	code, stdout, stderr := runMain(t, ctx, "sample", "--model", model, "--n", "1000", "--steps", "10000000", "--out", out)
	if code != ExitInterrupted || !strings.Contains(stderr, "interrupted") || stdout != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("an interrupted run wrote %s", out)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// serveBinary builds cmd/jarzyn-serve once per test run.
func serveBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jarzyn-serve-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "jarzyn-serve")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/jarzyn/jarzyn/cmd/jarzyn-serve").CombinedOutput()
		if err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("building jarzyn-serve: %v\n%s", binErr, binPath)
	}
	return binPath
}

// TestBinarySignals runs the real binary: SIGINT stops `sample` cleanly
// (exit 130, nothing written) and SIGTERM shuts `http` down gracefully;
// --ort-lib pointing nowhere is a clear error.
func TestBinarySignals(t *testing.T) {
	bin := serveBinary(t)
	model := gaussianFile(t)
	dir := t.TempDir()

	t.Run("ort-lib missing", func(t *testing.T) {
		cmd := exec.Command(bin, "sample", "--model", model, "--out", filepath.Join(dir, "x.csv"), "--ort-lib", "/nonexistent/libonnxruntime.so")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitError || !strings.Contains(string(out), "/nonexistent/libonnxruntime.so") {
			t.Errorf("%v: %s", err, out)
		}
	})

	t.Run("sample SIGINT", func(t *testing.T) {
		out := filepath.Join(dir, "never.csv")
		cmd := exec.Command(bin, "sample", "--model", model, "--n", "1000", "--steps", "100000000", "--out", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitInterrupted {
			t.Errorf("exit: %v, stderr %s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("stderr %q", stderr.String())
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("interrupted run wrote output")
		}
	})

	t.Run("http SIGTERM", func(t *testing.T) {
		cmd := exec.Command(bin, "http", "--model", model, "--addr", "127.0.0.1:0")
		pr, pw, _ := os.Pipe()
		cmd.Stderr = pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		sc := bufio.NewScanner(pr)
		addr := ""
		var logs []string
		for sc.Scan() {
			line := sc.Text()
			logs = append(logs, line)
			if i := strings.Index(line, "addr="); i >= 0 && strings.Contains(line, "msg=serving") {
				addr = strings.Fields(line[i+5:])[0]
				break
			}
		}
		if addr == "" {
			cmd.Process.Kill()
			t.Fatalf("no serving line: %q", logs)
		}
		code, body := call(t, "GET", "http://"+addr+"/v2/health/ready", "", nil)
		if code != 200 {
			t.Errorf("ready: %d %s", code, body)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for sc.Scan() {
				logs = append(logs, sc.Text())
			}
		}()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v", err)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatal("server did not stop on SIGTERM")
		}
	})
}
