package serve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ModelFileName is the file a model version folder holds:
// DIR/<name>/<version>/model.onnx.
const ModelFileName = "model.onnx"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Registry holds the served models by name and version. It is read-only
// once built, so handlers share it without locks.
type Registry struct {
	byName map[string]*modelVersions
}

type modelVersions struct {
	versions map[string]*Model
	order    []string // ascending; the last is the latest
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byName: map[string]*modelVersions{}} }

// Add registers m under m.Name and m.Version.
func (r *Registry) Add(m *Model) error {
	if !nameRE.MatchString(m.Name) {
		return fmt.Errorf("serve: model name %q must match %s", m.Name, nameRE)
	}
	if !nameRE.MatchString(m.Version) {
		return fmt.Errorf("serve: model %s version %q must match %s", m.Name, m.Version, nameRE)
	}
	mv := r.byName[m.Name]
	if mv == nil {
		mv = &modelVersions{versions: map[string]*Model{}}
		r.byName[m.Name] = mv
	}
	if _, dup := mv.versions[m.Version]; dup {
		return fmt.Errorf("serve: model %s version %s registered twice", m.Name, m.Version)
	}
	mv.versions[m.Version] = m
	mv.order = append(mv.order, m.Version)
	sort.Slice(mv.order, func(i, j int) bool { return versionLess(mv.order[i], mv.order[j]) })
	return nil
}

// versionLess orders versions numerically when both are integers, else as strings.
func versionLess(a, b string) bool {
	x, e1 := strconv.ParseInt(a, 10, 64)
	y, e2 := strconv.ParseInt(b, 10, 64)
	if e1 == nil && e2 == nil {
		return x < y
	}
	if (e1 == nil) != (e2 == nil) {
		return e1 == nil // numbers before names
	}
	return a < b
}

// ErrModelNotFound is returned (wrapped) by Get for unknown names or versions.
var ErrModelNotFound = errors.New("model not found")

// Get returns a model. An empty version means the latest; an empty name is
// allowed when exactly one model is served. The error repeats at most 64
// bytes of an unknown name or version.
func (r *Registry) Get(name, version string) (*Model, error) {
	if name == "" {
		if len(r.byName) != 1 {
			return nil, fmt.Errorf("%w: name a model (one of %s)", ErrModelNotFound, strings.Join(r.Names(), ", "))
		}
		for n := range r.byName {
			name = n
		}
	}
	mv := r.byName[name]
	if mv == nil {
		return nil, fmt.Errorf("%w: no model %s (serving %s)", ErrModelNotFound, clipq(name), strings.Join(r.Names(), ", "))
	}
	if version == "" {
		version = mv.order[len(mv.order)-1]
	}
	m := mv.versions[version]
	if m == nil {
		return nil, fmt.Errorf("%w: model %q has no version %s (versions %s)", ErrModelNotFound, name, clipq(version), strings.Join(mv.order, ", "))
	}
	return m, nil
}

// Names lists the model names, sorted.
func (r *Registry) Names() []string {
	var n []string
	for k := range r.byName {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// Versions lists a model's versions, oldest first.
func (r *Registry) Versions(name string) []string {
	if mv := r.byName[name]; mv != nil {
		return slices.Clone(mv.order)
	}
	return nil
}

// Models lists every model, by name then version.
func (r *Registry) Models() []*Model {
	var out []*Model
	for _, n := range r.Names() {
		mv := r.byName[n]
		for _, v := range mv.order {
			out = append(out, mv.versions[v])
		}
	}
	return out
}

// Close frees every model.
func (r *Registry) Close() error {
	var errs []error
	for _, m := range r.Models() {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// DefaultModelName derives a model's name from its file: the base name
// without .onnx, or the parent folder's name when that is "model".
func DefaultModelName(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if base == "model" {
		if p := filepath.Base(filepath.Dir(path)); p != "." && p != string(filepath.Separator) {
			base = p
		}
	}
	clean := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(base, "_")
	if clean == "" || !nameRE.MatchString(clean) {
		clean = "model" + clean
	}
	return clean
}

// LoadFile loads one model file into a new registry under name (empty:
// DefaultModelName) and version "1".
func LoadFile(path, name string, opt LoadOptions) (*Registry, error) {
	if name == "" {
		name = DefaultModelName(path)
	}
	opt.Name, opt.Version = name, "1"
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("serve: model name %q must match %s", name, nameRE)
	}
	m, err := LoadModel(path, opt)
	if err != nil {
		return nil, err
	}
	r := NewRegistry()
	if err := r.Add(m); err != nil {
		m.Close()
		return nil, err
	}
	return r, nil
}

// LoadDir loads every DIR/<name>/<version>/model.onnx. Any bad model fails
// the whole load with an error naming its file.
func LoadDir(dir string, opt LoadOptions) (*Registry, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("serve: models folder: %w", err)
	}
	r := NewRegistry()
	fail := func(err error) (*Registry, error) {
		r.Close()
		return nil, err
	}
	for _, n := range names {
		if !n.IsDir() || strings.HasPrefix(n.Name(), ".") {
			continue
		}
		vdir := filepath.Join(dir, n.Name())
		versions, err := os.ReadDir(vdir)
		if err != nil {
			return fail(fmt.Errorf("serve: %w", err))
		}
		for _, v := range versions {
			if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
				continue
			}
			path := filepath.Join(vdir, v.Name(), ModelFileName)
			if _, err := os.Stat(path); err != nil {
				return fail(fmt.Errorf("serve: model %s: %v (layout is DIR/<name>/<version>/%s)", path, errors.Unwrap(err), ModelFileName))
			}
			o := opt
			o.Name, o.Version = n.Name(), v.Name()
			if !nameRE.MatchString(o.Name) || !nameRE.MatchString(o.Version) {
				return fail(fmt.Errorf("serve: model %s: name and version folders must match %s", path, nameRE))
			}
			m, err := LoadModel(path, o)
			if err != nil {
				return fail(err)
			}
			if err := r.Add(m); err != nil {
				m.Close()
				return fail(err)
			}
		}
	}
	if len(r.byName) == 0 {
		return nil, fmt.Errorf("serve: no models under %s (layout is %s/<name>/<version>/%s)", dir, dir, ModelFileName)
	}
	return r, nil
}
