package models

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawContainer builds a container file by hand: magic, the given header
// length field, header bytes and body, then a valid SHA-256 seal over all of
// it, as an attacker re-sealing an edited file would.
func rawContainer(hlen uint32, header []byte, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(containerMagic)
	binary.Write(&b, binary.LittleEndian, hlen)
	b.Write(header)
	b.Write(body)
	return reseal(b.Bytes())
}

func reseal(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(append([]byte(nil), body...), sum[:]...)
}

func headerJSON(t testing.TB, kind string, sections ...sectionInfo) []byte {
	b, err := json.Marshal(containerHeader{Kind: kind, Sections: sections})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeContainerResealed: files with a valid checksum but lengths,
// counts or specs that do not fit the bytes present are errors that name
// the file, never a panic or a huge allocation.
func TestDecodeContainerResealed(t *testing.T) {
	manySections := make([]sectionInfo, MaxSections+1)
	for i := range manySections {
		manySections[i] = sectionInfo{Name: "s" + string(rune('a'+i%26)) + string(rune(i)), Len: 0}
	}
	specSection := func(spec string, params map[string]int) []byte {
		var secs []sectionInfo
		var body []byte
		secs = append(secs, sectionInfo{"spec", len(spec)})
		body = append(body, spec...)
		for n, l := range params {
			secs = append(secs, sectionInfo{"param/" + n, l})
			body = append(body, make([]byte, l)...)
		}
		h := headerJSON(t, "weights", secs...)
		return rawContainer(uint32(len(h)), h, body)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		decode string // substring of DecodeContainer's error; "" means it decodes
		params string // substring of Params' error
	}{
		{"section length 2^63-1", func() []byte {
			h := headerJSON(t, "checkpoint", sectionInfo{"a", 8}, sectionInfo{"b", math.MaxInt64})
			return rawContainer(uint32(len(h)), h, make([]byte, 8))
		}(), `section "b" has length 9223372036854775807`, ""},
		{"section length 2^63-1 first", func() []byte {
			h := headerJSON(t, "checkpoint", sectionInfo{"a", math.MaxInt64}, sectionInfo{"b", 2})
			return rawContainer(uint32(len(h)), h, make([]byte, 8))
		}(), `section "a" has length`, ""},
		{"negative section length", func() []byte {
			h := headerJSON(t, "checkpoint", sectionInfo{"a", -8})
			return rawContainer(uint32(len(h)), h, nil)
		}(), `section "a" has length -8`, ""},
		{"header length 2^32-1", rawContainer(math.MaxUint32, []byte("{}"), nil), "header length 4294967295", ""},
		{"header length past the end", rawContainer(1000, []byte("{}"), nil), "header length 1000", ""},
		{"header over the limit", func() []byte {
			h, _ := json.Marshal(containerHeader{Kind: "weights", Meta: map[string]string{"x": strings.Repeat("a", MaxHeaderBytes)}})
			return rawContainer(uint32(len(h)), h, nil)
		}(), "limit of 16777216 bytes", ""},
		{"too many sections", func() []byte {
			h := headerJSON(t, "weights", manySections...)
			return rawContainer(uint32(len(h)), h, nil)
		}(), "sections, more than the limit", ""},
		{"duplicate section", func() []byte {
			h := headerJSON(t, "weights", sectionInfo{"a", 1}, sectionInfo{"a", 1})
			return rawContainer(uint32(len(h)), h, []byte{1, 2})
		}(), `section "a" twice`, ""},
		{"stray bytes", func() []byte {
			h := headerJSON(t, "weights", sectionInfo{"a", 1})
			return rawContainer(uint32(len(h)), h, []byte{1, 2})
		}(), "1 stray bytes", ""},
		{"huge MLP spec, tiny sections", specSection(`{"family":"mlp","dim":2,"hidden":[100000000,100000000],"activation":"silu","base_std":1}`,
			map[string]int{"w0": 8, "b0": 8, "w1": 8, "b1": 8, "w2": 8, "b2": 8}), "", "parameter w0 has 8 bytes"},
		{"overflowing GMM shape", specSection(`{"family":"gmm","dim":4611686018427387904,"modes":8}`,
			map[string]int{"means": 8, "log_mass": 64}), "", "parameter means has 8 bytes"},
		{"GMM section one value short", specSection(`{"family":"gmm","dim":2,"modes":2}`,
			map[string]int{"means": 24, "log_mass": 16}), "", "parameter means has 24 bytes"},
		{"missing parameter", specSection(`{"family":"gmm","dim":2,"modes":2}`,
			map[string]int{"means": 32}), "", `no section "param/log_mass"`},
		{"NaN parameter", func() []byte {
			c := NewContainer("weights")
			c.PutJSON("spec", Spec{Family: GMM, Dim: 1, Modes: 1})
			c.PutFloats("param/means", []float64{math.NaN()})
			c.PutFloats("param/log_mass", []float64{0})
			b, _ := c.Encode()
			return b
		}(), "", "means[0] is NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeContainer(tc.data, "file.ckpt")
			if tc.decode != "" {
				if err == nil || !strings.Contains(err.Error(), tc.decode) || !strings.Contains(err.Error(), "file.ckpt") {
					t.Fatalf("error %v, want one naming file.ckpt and %q", err, tc.decode)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if _, err := c.Params(); err == nil || !strings.Contains(err.Error(), tc.params) {
				t.Fatalf("Params error %v, want %q", err, tc.params)
			}
		})
	}
}

// TestSeal: a sealed file verifies; a flipped bit, a malformed or foreign
// seal are errors naming the file; a missing seal is ErrNoSeal.
func TestSeal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	data := []byte("the model bytes")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifySeal(path, data); !errors.Is(err, ErrNoSeal) {
		t.Fatalf("unsealed file: %v, want ErrNoSeal", err)
	}
	if err := WriteSeal(path, data); err != nil {
		t.Fatal(err)
	}
	line, _ := os.ReadFile(SealPath(path))
	if !strings.HasSuffix(string(line), "  model.onnx\n") || len(line) != 64+2+len("model.onnx")+1 {
		t.Fatalf("seal line %q is not sha256sum's format", line)
	}
	flipped := append([]byte(nil), data...)
	flipped[3] ^= 1
	for _, tc := range []struct {
		name string
		seal string // "" keeps the written seal
		data []byte
		want string
	}{
		{"intact", "", data, ""},
		{"one bit flipped", "", flipped, "does not match its seal"},
		{"seal without file name", string(line[:64]), data, ""},
		{"seal of other bytes", string(Seal(path, []byte("other"))), data, "does not match its seal"},
		{"not hex", strings.Repeat("z", 64) + "  model.onnx\n", data, "is malformed"},
		{"short digest", "abcd  model.onnx\n", data, "is malformed"},
		{"empty seal", "\n", data, "is malformed"},
		{"huge seal", strings.Repeat("a", 1<<20), data, "is malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := string(line)
			if tc.seal != "" {
				s = tc.seal
			}
			if err := os.WriteFile(SealPath(path), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			err := VerifySeal(path, tc.data)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), SealPath(path)) {
				t.Fatalf("error %v, want one naming %s and %q", err, SealPath(path), tc.want)
			}
		})
	}
}

// FuzzResealedContainer: any bytes, as they are and re-sealed with a valid
// SHA-256 (the checksum no longer protects), decode to an error or to a
// container whose parameters are an error or usable; never a panic. Seeds:
// testdata/fuzz/FuzzResealedContainer.
func FuzzResealedContainer(f *testing.F) {
	c := NewContainer("checkpoint")
	c.PutJSON("spec", Spec{Family: GMM, Dim: 2, Modes: 2})
	c.PutFloats("param/means", []float64{1, 2, 3, 4})
	c.PutFloats("param/log_mass", []float64{0, 0})
	c.Meta["iteration"] = "3"
	b, _ := c.Encode()
	f.Add(b[:len(b)-sha256.Size])
	h := headerJSON(f, "checkpoint", sectionInfo{"a", 8}, sectionInfo{"b", math.MaxInt64})
	raw := rawContainer(uint32(len(h)), h, make([]byte, 8))
	f.Add(raw[:len(raw)-sha256.Size])
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, data := range [][]byte{body, reseal(body)} {
			c, err := DecodeContainer(data, "fuzz.ckpt")
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.ckpt") {
					t.Fatalf("error does not name the file: %v", err)
				}
				continue
			}
			if p, err := c.Params(); err == nil {
				if err := p.Check(); err != nil {
					t.Fatalf("Params accepted parameters that Check refuses: %v", err)
				}
			}
			if enc, err := c.Encode(); err == nil {
				if _, err := DecodeContainer(enc, "again"); err != nil {
					t.Fatalf("a decoded container does not survive Encode: %v", err)
				}
			}
		}
	})
}
