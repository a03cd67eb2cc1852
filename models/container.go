package models

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
)

// The container file format holds named binary sections and string metadata,
// sealed by a SHA-256 over everything before it:
//
//	"JARZYNC1" | uint32 LE header length | JSON header | section bytes… | sha256
//
// Both weights files (kind "weights") and training checkpoints (kind
// "checkpoint") use it; both carry the parameters under the same section names,
// so ReadParams reads either.
const containerMagic = "JARZYNC1"

// Container is an in-memory container file.
type Container struct {
	Kind     string
	Meta     map[string]string
	sections map[string][]byte
}

type containerHeader struct {
	Kind     string            `json:"kind"`
	Meta     map[string]string `json:"meta"`
	Sections []sectionInfo     `json:"sections"`
}

type sectionInfo struct {
	Name string `json:"name"`
	Len  int    `json:"len"`
}

// NewContainer returns an empty container of the given kind.
func NewContainer(kind string) *Container {
	return &Container{Kind: kind, Meta: map[string]string{}, sections: map[string][]byte{}}
}

// PutBytes stores a raw section.
func (c *Container) PutBytes(name string, b []byte) { c.sections[name] = append([]byte(nil), b...) }

// PutFloats stores float64 values (little-endian IEEE 754, exact).
func (c *Container) PutFloats(name string, v []float64) {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	c.sections[name] = b
}

// PutJSON stores v encoded as JSON.
func (c *Container) PutJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("models: encoding section %s: %w", name, err)
	}
	c.sections[name] = b
	return nil
}

// Has reports whether a section exists.
func (c *Container) Has(name string) bool { _, ok := c.sections[name]; return ok }

// Bytes returns a raw section.
func (c *Container) Bytes(name string) ([]byte, error) {
	b, ok := c.sections[name]
	if !ok {
		return nil, fmt.Errorf("models: %s file has no section %q", c.Kind, name)
	}
	return b, nil
}

// Floats decodes a float64 section.
func (c *Container) Floats(name string) ([]float64, error) {
	b, err := c.Bytes(name)
	if err != nil {
		return nil, err
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("models: section %q has %d bytes, not a multiple of 8", name, len(b))
	}
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

// JSON decodes a JSON section into v.
func (c *Container) JSON(name string, v any) error {
	b, err := c.Bytes(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("models: decoding section %q: %w", name, err)
	}
	return nil
}

// Encode serialises the container.
func (c *Container) Encode() ([]byte, error) {
	names := make([]string, 0, len(c.sections))
	for n := range c.sections {
		names = append(names, n)
	}
	sort.Strings(names)
	h := containerHeader{Kind: c.Kind, Meta: c.Meta}
	for _, n := range names {
		h.Sections = append(h.Sections, sectionInfo{n, len(c.sections[n])})
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("models: encoding header: %w", err)
	}
	if len(hb) > MaxHeaderBytes || len(names) > MaxSections {
		return nil, fmt.Errorf("models: container header of %d bytes and %d sections exceeds the limits (%d bytes, %d sections)", len(hb), len(names), MaxHeaderBytes, MaxSections)
	}
	var buf bytes.Buffer
	buf.WriteString(containerMagic)
	var l [4]byte
	binary.LittleEndian.PutUint32(l[:], uint32(len(hb)))
	buf.Write(l[:])
	buf.Write(hb)
	for _, n := range names {
		buf.Write(c.sections[n])
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
}

// Bounds of the container format: a header of at most MaxHeaderBytes
// holding at most MaxSections sections. A file beyond them is refused as
// damaged, before anything is allocated for it.
const (
	MaxHeaderBytes = 16 << 20
	MaxSections    = 1 << 16
)

// DecodeContainer parses and verifies a container; name is used in errors.
// Every length and offset is checked against the bytes present without
// overflow, so a file with a valid checksum and absurd lengths is an error,
// never a panic.
func DecodeContainer(b []byte, name string) (*Container, error) {
	if len(b) < len(containerMagic)+4+sha256.Size || string(b[:len(containerMagic)]) != containerMagic {
		return nil, fmt.Errorf("models: %s is not a jarzyn weights/checkpoint file (bad magic or too short: %d bytes)", name, len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("models: %s is damaged or truncated (checksum mismatch); refusing to load it", name)
	}
	off := len(containerMagic)
	hl := uint64(binary.LittleEndian.Uint32(b[off:]))
	off += 4
	if hl > MaxHeaderBytes || hl > uint64(len(body)-off) {
		return nil, fmt.Errorf("models: %s has a header length %d beyond the file or the limit of %d bytes", name, hl, MaxHeaderBytes)
	}
	var h containerHeader
	if err := json.Unmarshal(body[off:off+int(hl)], &h); err != nil {
		return nil, fmt.Errorf("models: %s has a bad header: %w", name, err)
	}
	off += int(hl)
	if len(h.Sections) > MaxSections {
		return nil, fmt.Errorf("models: %s has %d sections, more than the limit of %d", name, len(h.Sections), MaxSections)
	}
	c := NewContainer(h.Kind)
	if h.Meta != nil {
		c.Meta = h.Meta
	}
	for _, s := range h.Sections {
		// off ≤ len(body) holds here, so the subtraction cannot wrap
		if s.Len < 0 || s.Len > len(body)-off {
			return nil, fmt.Errorf("models: %s section %q has length %d, beyond the %d bytes left in the file", name, s.Name, s.Len, len(body)-off)
		}
		if _, dup := c.sections[s.Name]; dup {
			return nil, fmt.Errorf("models: %s lists section %q twice", name, s.Name)
		}
		c.sections[s.Name] = body[off : off+s.Len]
		off += s.Len
	}
	if off != len(body) {
		return nil, fmt.Errorf("models: %s has %d stray bytes after its sections", name, len(body)-off)
	}
	return c, nil
}

// WriteContainer writes c atomically to path.
func WriteContainer(path string, c *Container) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// ReadContainer reads and verifies a container file.
func ReadContainer(path string) (*Container, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	return DecodeContainer(b, path)
}

// PutParams stores p under the standard sections "spec" and "param/<name>".
func (c *Container) PutParams(p *Params) error {
	if err := c.PutJSON("spec", p.Spec); err != nil {
		return err
	}
	for _, t := range p.Tensors {
		c.PutFloats("param/"+t.Name, t.Data)
	}
	return nil
}

// Params reads the parameters stored by PutParams and checks them.
func (c *Container) Params() (*Params, error) {
	var spec Spec
	if err := c.JSON("spec", &spec); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	// every parameter's values are in the file: compare the spec's sizes
	// with the sections before allocating anything for them
	for _, ts := range spec.ParamShapes() {
		b, err := c.Bytes("param/" + ts.Name)
		if err != nil {
			return nil, err
		}
		if n, ok := boundedProd(ts.Shape, len(b)/8); !ok || n*8 != len(b) {
			return nil, fmt.Errorf("models: parameter %s has %d bytes, not 8 per value of shape %v", ts.Name, len(b), ts.Shape)
		}
	}
	p, err := NewParams(spec)
	if err != nil {
		return nil, err
	}
	for i := range p.Tensors {
		t := &p.Tensors[i]
		v, err := c.Floats("param/" + t.Name)
		if err != nil {
			return nil, err
		}
		if len(v) != len(t.Data) {
			return nil, fmt.Errorf("models: parameter %s has %d values, want %d for shape %v", t.Name, len(v), len(t.Data), t.Shape)
		}
		copy(t.Data, v)
	}
	return p, p.Check()
}

// boundedProd returns the product of the non-negative dims of shape when it
// is at most limit (false otherwise), without overflowing.
func boundedProd(shape []int, limit int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > limit/d) {
			return 0, false
		}
		n *= d
	}
	return n, n <= limit
}

// WriteParams writes a weights file: the parameters plus string metadata.
func WriteParams(path string, p *Params, meta map[string]string) error {
	c := NewContainer("weights")
	for k, v := range meta {
		c.Meta[k] = v
	}
	if err := c.PutParams(p); err != nil {
		return err
	}
	return WriteContainer(path, c)
}

// ReadParams reads parameters and metadata from a weights file or a training checkpoint.
func ReadParams(path string) (*Params, map[string]string, error) {
	c, err := ReadContainer(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.Params()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, c.Meta, nil
}

// SealSuffix ends the name of a file's seal: model.onnx is sealed by
// model.onnx.sha256 beside it.
const SealSuffix = ".sha256"

// maxSealBytes bounds how much of a seal file is read.
const maxSealBytes = 4096

// SealPath returns the seal file of path.
func SealPath(path string) string { return path + SealSuffix }

// Seal returns the seal of data written as path: the SHA-256 in hex, two
// spaces and the file's base name, the line `sha256sum` writes, so that
// `sha256sum -c model.onnx.sha256` checks it from its folder.
func Seal(path string, data []byte) []byte {
	sum := sha256.Sum256(data)
	return []byte(hex.EncodeToString(sum[:]) + "  " + filepath.Base(path) + "\n")
}

// WriteSeal writes the seal of data, the content of path, to SealPath(path)
// atomically.
func WriteSeal(path string, data []byte) error {
	return atomicfile.WriteFile(SealPath(path), Seal(path, data), 0o644)
}

// ErrNoSeal is VerifySeal's error for a file without a seal.
var ErrNoSeal = errors.New("models: file has no seal")

// VerifySeal checks data, the content of path, against the seal beside it.
// It returns an error wrapping ErrNoSeal when there is no seal file, and an
// error naming both files when the seal is unreadable, malformed or holds
// another SHA-256 (the file was damaged or changed after it was sealed).
func VerifySeal(path string, data []byte) error {
	sp := SealPath(path)
	f, err := os.Open(sp)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is missing", ErrNoSeal, sp)
	}
	if err != nil {
		return fmt.Errorf("models: cannot read the seal of %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSealBytes+1))
	if err != nil {
		return fmt.Errorf("models: cannot read the seal of %s: %w", path, err)
	}
	fields := strings.Fields(string(b))
	want, herr := []byte(nil), error(nil)
	if len(fields) > 0 {
		want, herr = hex.DecodeString(fields[0])
	}
	if len(b) > maxSealBytes || len(fields) == 0 || herr != nil || len(want) != sha256.Size {
		return fmt.Errorf("models: seal %s of %s is malformed: want a line \"<64 hex digits>  %s\"", sp, path, filepath.Base(path))
	}
	got := sha256.Sum256(data)
	if !bytes.Equal(got[:], want) {
		return fmt.Errorf("models: %s does not match its seal %s (SHA-256 %x, sealed %x): the file was damaged or changed after export",
			path, sp, got, want)
	}
	return nil
}
