package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// TestLoadVerifiesSeal: a model is checked against the seal jarzyn-export
// writes beside it. One flipped bit in the weights (which ONNX Runtime
// loads without complaint) or a malformed seal refuses the model with an
// error naming the model and the seal; LoadOptions.SkipVerify and
// JARZYN_NO_VERIFY=1 load it anyway; a model without a seal loads with a
// warning.
func TestLoadVerifiesSeal(t *testing.T) {
	needORT(t)
	good := testGaussian.build(t)
	// the means (1, −2) as float32 initializer bytes; flip the lowest bit of 1
	var pat bytes.Buffer
	binary.Write(&pat, binary.LittleEndian, []float32{1, -2})
	i := bytes.Index(good, pat.Bytes())
	if i < 0 || bytes.Count(good, pat.Bytes()) != 1 {
		t.Fatal("cannot find the means in the exported model")
	}
	flipped := append([]byte(nil), good...)
	flipped[i] ^= 1
	if math.Float32frombits(binary.LittleEndian.Uint32(flipped[i:])) == 1 {
		t.Fatal("the flip did not change the weight")
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		seal   string // "good", "none", or the seal file's content
		skip   bool
		env    string
		errs   []string // substrings of the error; nil means it loads
		warned string   // substring of the log
	}{
		{"sealed", good, "good", false, "", nil, ""},
		{"one bit flipped", flipped, "good", false, "", []string{"does not match its seal", "model.onnx.sha256", "JARZYN_NO_VERIFY"}, ""},
		{"flipped, SkipVerify", flipped, "good", true, "", nil, ""},
		{"flipped, JARZYN_NO_VERIFY=1", flipped, "good", false, "1", nil, ""},
		{"flipped, JARZYN_NO_VERIFY=0", flipped, "good", false, "0", []string{"does not match its seal"}, ""},
		{"malformed seal", good, "not a digest\n", false, "", []string{"is malformed", "model.onnx.sha256"}, ""},
		{"no seal", good, "none", false, "", nil, "model has no seal"},
		{"no seal, flipped", flipped, "none", false, "", nil, "model has no seal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.onnx")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			switch tc.seal {
			case "good":
				if err := models.WriteSeal(path, good); err != nil {
					t.Fatal(err)
				}
			case "none":
			default:
				writeFile(t, dir, "model.onnx.sha256", []byte(tc.seal))
			}
			t.Setenv(NoVerifyEnv, tc.env)
			var log bytes.Buffer
			m, err := LoadModel(path, LoadOptions{SkipVerify: tc.skip, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if tc.errs == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				m.Close()
				if tc.warned != "" && !strings.Contains(log.String(), tc.warned) {
					t.Errorf("log %q lacks %q", log.String(), tc.warned)
				}
				return
			}
			if err == nil {
				m.Close()
				t.Fatal("a model that does not match its seal was loaded")
			}
			for _, w := range append(tc.errs, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// `jarzyn-serve sample` refuses a model that does not match its seal (exit
// 1, naming --no-verify) and samples it with --no-verify.
func TestMainNoVerify(t *testing.T) {
	needORT(t)
	t.Setenv(NoVerifyEnv, "")
	dir := t.TempDir()
	good := testGaussian.build(t)
	path := filepath.Join(dir, "model.onnx")
	if err := models.WriteSeal(path, good); err != nil {
		t.Fatal(err)
	}
	// flip the lowest bit of the weight 1 (the first mean's first coordinate)
	var pat bytes.Buffer
	binary.Write(&pat, binary.LittleEndian, []float32{1, -2})
	tampered := append([]byte(nil), good...)
	tampered[bytes.Index(good, pat.Bytes())] ^= 1
	if err := os.WriteFile(path, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"sample", "--model", path, "--n", "8", "--steps", "2", "--out", filepath.Join(dir, "s.csv")}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), args, &stdout, &stderr); code != ExitError || !strings.Contains(stderr.String(), "--no-verify") {
		t.Fatalf("tampered model: exit %d, stderr %q; want %d naming --no-verify", code, stderr.String(), ExitError)
	}
	stderr.Reset()
	if code := Main(context.Background(), append(args, "--no-verify"), &stdout, &stderr); code != ExitOK {
		t.Fatalf("--no-verify: exit %d, stderr %q", code, stderr.String())
	}
}
