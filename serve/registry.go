package serve

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ModelFileName is the file a model version folder holds:
// DIR/<name>/<version>/model.onnx.
const ModelFileName = "model.onnx"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Registry holds the served models by name and version. Readers (Get,
// Names, Versions, Models) take no lock: they read an immutable snapshot
// that changes (Add, and a repository's scans, Load and Unload) replace as a
// whole. A model leaves the snapshot at once when it is removed and is
// closed when its last user releases it (see Get and Model.Release).
type Registry struct {
	cur atomic.Pointer[snapshot]
	// mu serialises the changes, and guards repo's state and closed.
	mu     sync.Mutex
	repo   *repository // nil unless the registry serves a models folder (OpenRepository)
	closed bool
}

// snapshot is one immutable state of a registry: never changed once
// published.
type snapshot struct {
	byName map[string]*modelVersions
	names  []string // sorted
}

type modelVersions struct {
	versions map[string]*Model
	order    []string // ascending; the last is the latest
}

var emptySnapshot = &snapshot{byName: map[string]*modelVersions{}}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.cur.Store(emptySnapshot)
	return r
}

// Add registers m under m.Name and m.Version; the registry owns it from
// then on and closes it when it is removed or the registry is closed (and
// no request holds it). A registry that serves a models folder is changed
// only by its scans, Load and Unload.
func (r *Registry) Add(m *Model) error {
	if !nameRE.MatchString(m.Name) {
		return fmt.Errorf("serve: model name %q must match %s", m.Name, nameRE)
	}
	if !nameRE.MatchString(m.Version) {
		return fmt.Errorf("serve: model %s version %q must match %s", m.Name, m.Version, nameRE)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return errors.New("serve: registry is closed")
	case r.repo != nil:
		return fmt.Errorf("serve: the registry of %s changes only with its folder", r.repo.dir)
	}
	if mv := r.cur.Load().byName[m.Name]; mv != nil && mv.versions[m.Version] != nil {
		return fmt.Errorf("serve: model %s version %s registered twice", m.Name, m.Version)
	}
	if !m.adopt() {
		return fmt.Errorf("serve: model %s version %s is already in a registry", m.Name, m.Version)
	}
	r.publish(map[modelKey]*Model{{m.Name, m.Version}: m})
	return nil
}

// modelKey names one model version.
type modelKey struct{ name, version string }

// publish swaps in a snapshot with the changes applied: a nil model removes
// the version. The caller holds r.mu and releases the registry's hold on
// every model it replaced or removed after publish returns (never before:
// Get relies on a released model being out of the current snapshot).
func (r *Registry) publish(changes map[modelKey]*Model) {
	old := r.cur.Load()
	next := &snapshot{byName: make(map[string]*modelVersions, len(old.byName))}
	for n, mv := range old.byName {
		next.byName[n] = mv
	}
	touched := map[string]bool{}
	for k := range changes {
		touched[k.name] = true
	}
	for n := range touched {
		versions := map[string]*Model{}
		if mv := old.byName[n]; mv != nil {
			for v, m := range mv.versions {
				versions[v] = m
			}
		}
		for k, m := range changes {
			if k.name != n {
				continue
			}
			if m == nil {
				delete(versions, k.version)
			} else {
				versions[k.version] = m
			}
		}
		if len(versions) == 0 {
			delete(next.byName, n)
			continue
		}
		mv := &modelVersions{versions: versions}
		for v := range versions {
			mv.order = append(mv.order, v)
		}
		slices.SortFunc(mv.order, compareVersions)
		next.byName[n] = mv
	}
	for n := range next.byName {
		next.names = append(next.names, n)
	}
	slices.Sort(next.names)
	r.cur.Store(next)
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

// compareVersions is versionLess as a comparison for slices.SortFunc.
func compareVersions(a, b string) int {
	switch {
	case versionLess(a, b):
		return -1
	case versionLess(b, a):
		return 1
	}
	return 0
}

// ErrModelNotFound is returned (wrapped) by Get for unknown names or versions.
var ErrModelNotFound = errors.New("model not found")

// Get returns a model, retained: the caller calls its Release when done
// with it, and until then the model stays open even if it is removed from
// the registry (it then serves that caller only). An empty version means
// the latest; an empty name is allowed when exactly one model is served.
// The error repeats at most 64 bytes of an unknown name or version. Get
// takes no lock.
func (r *Registry) Get(name, version string) (*Model, error) {
	for {
		m, err := r.cur.Load().get(name, version)
		if err != nil {
			return nil, err
		}
		if m.retain() {
			return m, nil
		}
		// m was removed and released since the lookup: the current
		// snapshot no longer holds it (publish comes before the release)
	}
}

// get looks a model up in the snapshot.
func (s *snapshot) get(name, version string) (*Model, error) {
	if name == "" {
		if len(s.byName) != 1 {
			return nil, fmt.Errorf("%w: name a model (one of %s)", ErrModelNotFound, strings.Join(s.names, ", "))
		}
		name = s.names[0]
	}
	mv := s.byName[name]
	if mv == nil {
		return nil, fmt.Errorf("%w: no model %s (serving %s)", ErrModelNotFound, clipq(name), strings.Join(s.names, ", "))
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

// Names lists the served model names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.cur.Load().names) }

// Versions lists a model's served versions, oldest first.
func (r *Registry) Versions(name string) []string {
	if mv := r.cur.Load().byName[name]; mv != nil {
		return slices.Clone(mv.order)
	}
	return nil
}

// Models lists every served model, by name then version, for listing (its
// Name, Version, Device and Info): a model to evaluate comes from Get.
func (r *Registry) Models() []*Model {
	s := r.cur.Load()
	var out []*Model
	for _, n := range s.names {
		mv := s.byName[n]
		for _, v := range mv.order {
			out = append(out, mv.versions[v])
		}
	}
	return out
}

// Close empties the registry and stops its scans: every model is closed
// now, or when the last request holding it releases it. Closing twice is
// harmless.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	held := r.Models()
	r.cur.Store(emptySnapshot)
	var errs []error
	for _, m := range held {
		errs = append(errs, m.drop())
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

// LoadDir loads every DIR/<name>/<version>/model.onnx: OpenRepository with
// every version served. Any bad model fails the whole load with an error
// naming its file.
func LoadDir(dir string, opt LoadOptions) (*Registry, error) {
	return OpenRepository(dir, RepositoryOptions{Load: opt})
}
