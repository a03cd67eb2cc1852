package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jarzyn/jarzyn/models"
)

// A model repository is a folder DIR/<name>/<version>/model.onnx that a
// Registry serves and follows while it runs (OpenRepository):
//
//   - a scan reads the folder again: new version folders are loaded, removed
//     ones unloaded, and a version whose files changed (model.onnx, its seal,
//     the latent model beside it and its seal, by size and modification
//     time) is loaded again and replaces the served one;
//   - a periodic scan (Watch's interval) loads a new or changed model.onnx
//     only once it is complete: when it matches its seal model.onnx.sha256,
//     or, without a matching seal, when its size and modification time are
//     the same at two scans in a row. A half-written file is skipped until
//     then, and the version it replaces keeps serving;
//   - a rescan on request (Rescan, SIGHUP, Load) loads new and changed files
//     at once and retries the ones that failed;
//   - a version that fails to load is logged with its file and reported by
//     Index; the served versions are not disturbed, and a failed reload
//     keeps the earlier file serving;
//   - the version policy (RepositoryOptions.Policy) picks the versions
//     served per model on each scan;
//   - an unloaded or replaced version leaves the registry at once and is
//     closed when its last request releases it.
//
// Folders whose names start with "." are ignored: copying a version as
// DIR/<name>/.3 and renaming it to 3 adds it in one step.

// RepositoryOptions configures OpenRepository.
type RepositoryOptions struct {
	// Load configures every model loaded (its Name and Version are set from
	// the folders).
	Load LoadOptions
	// Policy picks the versions served per model. The default value serves
	// every version.
	Policy VersionPolicy
}

// Model states in Index, as the Open Inference Protocol's repository
// extension names them.
const (
	StateReady       = "READY"
	StateUnavailable = "UNAVAILABLE"
)

// RepositoryModel is one model version of the repository, as
// POST /v2/repository/index lists it.
type RepositoryModel struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// State is READY (served) or UNAVAILABLE.
	State string `json:"state"`
	// Reason says why a version is not served, or notes a served one whose
	// newer file failed to load; empty otherwise.
	Reason string `json:"reason"`
}

// Errors of Load, Unload and Index (wrapped).
var (
	// ErrNoRepository: the registry serves no models folder (LoadFile).
	ErrNoRepository = errors.New("no model repository")
	// ErrNotInRepository: the models folder has no such model.
	ErrNotInRepository = errors.New("model not in the repository")
	// ErrNotLoaded: Load found the model but served none of its versions.
	ErrNotLoaded = errors.New("model not loaded")
)

// repository is the state of a registry that serves a models folder,
// guarded by Registry.mu.
type repository struct {
	dir    string
	opt    RepositoryOptions
	log    *slog.Logger
	models map[string]map[string]*versionEntry
	// unloaded holds the models unloaded on request: scans leave them
	// unloaded until Load.
	unloaded map[string]bool
	// ignored holds the folders skipped for their names (warned once).
	ignored map[string]bool
}

// versionEntry is what the repository knows of one version folder.
type versionEntry struct {
	path        string    // DIR/<name>/<version>/model.onnx
	stamp, prev fileStamp // at the last scan and the one before
	present     bool      // model.onnx existed at the last scan
	model       *Model    // served, or nil
	loaded      fileStamp // the files model was loaded from
	failed      fileStamp // the files whose load failed last (with failErr)
	failErr     string
	reason      string // why it is not served, or a note on the served one
}

// fileStamp identifies the contents of a version's files by size and
// modification time: model.onnx, its seal, and the latent model and its
// seal.
type fileStamp [4]struct{ size, mod int64 }

func stampOf(path string) (fileStamp, error) {
	var st fileStamp
	for i, p := range []string{path, models.SealPath(path), models.LatentPath(path), models.SealPath(models.LatentPath(path))} {
		fi, err := os.Stat(p)
		if err != nil {
			if i == 0 {
				return st, err
			}
			st[i].size = -1
			continue
		}
		st[i].size, st[i].mod = fi.Size(), fi.ModTime().UnixNano()
	}
	return st, nil
}

// scanMode is how a scan treats new, changed and failed files.
type scanMode int

const (
	// scanPoll loads a new or changed file once it has settled (it matches
	// its seal, or is unchanged since the scan before) and does not retry a
	// failed file until it changes.
	scanPoll scanMode = iota
	// scanForce loads new and changed files at once and retries failures.
	scanForce
	// scanStrict is scanForce where any bad folder or model is an error.
	scanStrict
)

// OpenRepository loads the models folder dir (DIR/<name>/<version>/model.onnx,
// the versions that opt.Policy picks) into a registry that follows it: see
// Rescan, Watch, Load, Unload and Index. Any bad model or folder fails the
// whole open with an error naming its file, and so does a folder with no
// model to serve; later scans log such errors and go on.
func OpenRepository(dir string, opt RepositoryOptions) (*Registry, error) {
	r := NewRegistry()
	r.repo = &repository{dir: filepath.Clean(dir), opt: opt, log: opt.Load.logger(), models: map[string]map[string]*versionEntry{},
		unloaded: map[string]bool{}, ignored: map[string]bool{}}
	if err := r.scan(scanStrict); err != nil {
		r.Close()
		return nil, err
	}
	if len(r.Names()) == 0 {
		r.Close()
		return nil, fmt.Errorf("serve: no models under %s (layout is %s/<name>/<version>/%s; version policy %s)", dir, dir, ModelFileName, opt.Policy)
	}
	return r, nil
}

// Rescan reads the models folder again and loads new and changed files at
// once (as SIGHUP does for `jarzyn-serve http`).
func (r *Registry) Rescan() error {
	if r.repo == nil {
		return fmt.Errorf("serve: %w", ErrNoRepository)
	}
	return r.scan(scanForce)
}

// Watch rescans the models folder every interval (0: never), loading new
// and changed files once they have settled, and at once, as Rescan, on each
// value received from hup; it returns when ctx ends. It does nothing for a
// registry without a models folder.
func (r *Registry) Watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	if r.repo == nil {
		return
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			r.scan(scanPoll)
		case sig := <-hup:
			r.repo.log.Info("rescanning the models folder", "dir", r.repo.dir, "signal", fmt.Sprint(sig))
			r.scan(scanForce)
		}
	}
}

// changeSet collects a scan's changes to the served models: the versions
// to publish (nil: remove) and the models whose registry hold is released
// once they are published.
type changeSet struct {
	set map[modelKey]*Model
	old []*Model
}

func (c *changeSet) put(name, version string, m *Model) {
	if c.set == nil {
		c.set = map[modelKey]*Model{}
	}
	c.set[modelKey{name, version}] = m
}

// unload takes a version out of service with the reason given.
func (c *changeSet) unload(name, version string, e *versionEntry, why string) {
	if e.model != nil {
		c.old = append(c.old, e.model)
		c.put(name, version, nil)
		e.model, e.loaded = nil, fileStamp{}
	}
	e.reason = why
}

// commit publishes the changes, then releases the registry's hold on the
// models they took out. The caller holds r.mu.
func (r *Registry) commit(c *changeSet) {
	if len(c.set) > 0 {
		r.publish(c.set)
	}
	for _, m := range c.old {
		r.repo.log.Info("model version unloaded", "name", m.Name, "version", m.Version, "path", m.Info.Path)
		if err := m.drop(); err != nil {
			r.repo.log.Warn("closing an unloaded model version", "path", m.Info.Path, "err", err)
		}
	}
}

// scan reads the whole folder in the given mode and publishes the result.
func (r *Registry) scan(mode scanMode) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	var c changeSet
	defer r.commit(&c)
	repo := r.repo
	items, err := os.ReadDir(repo.dir)
	if err != nil {
		if mode != scanStrict {
			repo.log.Error("cannot read the models folder; the loaded models keep serving", "dir", repo.dir, "err", err)
		}
		return fmt.Errorf("serve: models folder: %w", err)
	}
	names := map[string]bool{}
	for n := range repo.models {
		names[n] = true
	}
	for _, it := range items {
		if !it.IsDir() || strings.HasPrefix(it.Name(), ".") {
			continue
		}
		if !nameRE.MatchString(it.Name()) {
			if err := repo.badName(mode, filepath.Join(repo.dir, it.Name())); err != nil {
				return err
			}
			continue
		}
		names[it.Name()] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if err := r.scanModel(n, mode, &c); err != nil && mode == scanStrict {
			return err
		}
	}
	return nil
}

// badName refuses (strict) or skips, warning once, a folder whose name
// cannot be a model name or version.
func (repo *repository) badName(mode scanMode, dir string) error {
	if mode == scanStrict {
		return fmt.Errorf("serve: model folder %s: name and version folders must match %s", dir, nameRE)
	}
	if !repo.ignored[dir] {
		repo.ignored[dir] = true
		repo.log.Warn("ignoring a folder: name and version folders must match "+nameRE.String(), "dir", dir)
	}
	return nil
}

// reasonUnloaded is why a model unloaded on request is not served.
const reasonUnloaded = "unloaded by request; POST /v2/repository/models/{name}/load serves it again"

// scanModel reads DIR/name and applies the version policy to it.
func (r *Registry) scanModel(name string, mode scanMode, c *changeSet) error {
	repo := r.repo
	vdir := filepath.Join(repo.dir, name)
	entries := repo.models[name]
	if entries == nil {
		entries = map[string]*versionEntry{}
	}
	onDisk := map[string]bool{}
	items, err := os.ReadDir(vdir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// the model was removed
	case err != nil:
		if mode == scanStrict {
			return fmt.Errorf("serve: %w", err)
		}
		repo.log.Error("cannot read a model folder; its versions stay as they are", "dir", vdir, "err", err)
		return nil
	}
	for _, it := range items {
		if !it.IsDir() || strings.HasPrefix(it.Name(), ".") {
			continue
		}
		if !nameRE.MatchString(it.Name()) {
			if err := repo.badName(mode, filepath.Join(vdir, it.Name(), ModelFileName)); err != nil {
				return err
			}
			continue
		}
		onDisk[it.Name()] = true
	}
	for v, e := range entries {
		if !onDisk[v] {
			c.unload(name, v, e, "")
			delete(entries, v)
		}
	}
	for v := range onDisk {
		e := entries[v]
		if e == nil {
			e = &versionEntry{path: filepath.Join(vdir, v, ModelFileName)}
			entries[v] = e
		}
		st, err := stampOf(e.path)
		e.prev, e.stamp, e.present = e.stamp, st, err == nil
		if err != nil {
			why := fmt.Sprintf("%s: %v (layout is DIR/<name>/<version>/%s)", e.path, unwrapPath(err), ModelFileName)
			if mode == scanStrict {
				return fmt.Errorf("serve: model %s", why)
			}
			c.unload(name, v, e, repo.rel(why))
		}
	}
	if len(entries) == 0 {
		delete(repo.models, name)
		delete(repo.unloaded, name)
		return nil
	}
	repo.models[name] = entries
	versions := slices.SortedFunc(maps.Keys(entries), compareVersions)
	if repo.unloaded[name] {
		for _, v := range versions {
			c.unload(name, v, entries[v], reasonUnloaded)
		}
		return nil
	}
	var firstErr error
	served := 0
	for i := len(versions) - 1; i >= 0; i-- {
		v, e := versions[i], entries[versions[i]]
		if !e.present {
			continue
		}
		if ok, why := repo.opt.Policy.wants(v, served); !ok {
			c.unload(name, v, e, why)
			continue
		}
		if err := r.ensure(name, v, e, mode, c); err != nil {
			if mode == scanStrict {
				return err
			}
			firstErr = cmp.Or(firstErr, err)
		}
		if e.model != nil {
			served++
		}
	}
	return firstErr
}

// ensure serves the version's current files: it loads them when they are
// new or changed (and, in scanPoll, settled and not failed before).
func (r *Registry) ensure(name, version string, e *versionEntry, mode scanMode, c *changeSet) error {
	repo := r.repo
	if e.model != nil && e.loaded == e.stamp {
		e.reason = ""
		return nil
	}
	if mode == scanPoll {
		if e.failErr != "" && e.failed == e.stamp {
			return nil
		}
		if e.stamp != e.prev && !sealMatches(e.path) {
			e.reason = "waiting for " + ModelFileName + " to be complete: it is loaded when it matches its seal or is unchanged at the next scan"
			if e.model != nil {
				e.reason = "serving the earlier file; " + e.reason
			}
			repo.log.Debug("model file not settled yet", "path", e.path)
			return nil
		}
	}
	opt := repo.opt.Load
	opt.Name, opt.Version = name, version
	m, err := LoadModel(e.path, opt)
	if err != nil {
		e.failed, e.failErr = e.stamp, repo.rel(trimServe(err))
		e.reason = "load failed: " + e.failErr
		if e.model != nil {
			e.reason = "serving the earlier file; loading the changed one failed: " + e.failErr
		}
		if mode != scanStrict {
			repo.log.Error("model version failed to load", "name", name, "version", version, "file", e.path, "err", trimServe(err))
		}
		return err
	}
	m.adopt()
	if e.model != nil {
		c.old = append(c.old, e.model)
	}
	e.model, e.loaded, e.failErr, e.reason = m, e.stamp, "", ""
	c.put(name, version, m)
	return nil
}

// sealMatches reports whether the file at path matches its seal: a
// complete copy of a sealed model.
func sealMatches(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && len(data) > 0 && models.VerifySeal(path, data) == nil
}

// unwrapPath is err without an *os.PathError's path and operation.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// rel shortens the models folder's paths in a message to a client to
// paths relative to it.
func (repo *repository) rel(msg string) string {
	return strings.ReplaceAll(msg, repo.dir+string(filepath.Separator), "")
}

// Load serves model name from the models folder now: the versions the
// policy picks are loaded (new and changed files at once, earlier failures
// retried) and served, and an Unload of the model is undone. It returns
// the model's versions as Index does. The error wraps ErrNoRepository,
// ErrNotInRepository, or ErrNotLoaded when no version could be served.
func (r *Registry) Load(name string) ([]RepositoryModel, error) {
	if r.repo == nil {
		return nil, ErrNoRepository
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.known(name, true); err != nil {
		return nil, err
	}
	delete(r.repo.unloaded, name)
	var c changeSet
	err := r.scanModel(name, scanForce, &c)
	r.commit(&c)
	rows := r.index(name)
	if len(r.Versions(name)) == 0 {
		var why []string
		for _, row := range rows {
			why = append(why, fmt.Sprintf("version %s: %s", row.Version, row.Reason))
		}
		switch {
		case len(why) > 0:
		case err != nil:
			why = append(why, repoMessage(r.repo, err))
		default:
			why = append(why, "it has no version folders")
		}
		return rows, fmt.Errorf("%w: no version of %s could be served (%s)", ErrNotLoaded, name, strings.Join(why, "; "))
	}
	return rows, nil
}

// repoMessage is err for a client: without the package prefix, paths
// relative to the models folder.
func repoMessage(repo *repository, err error) string { return repo.rel(trimServe(err)) }

// Unload takes every version of model name out of service at once: new
// requests no longer find it, and each version is closed when the last
// request using it ends. Scans leave the model unloaded until Load. It
// returns the model's versions as Index does. The error wraps
// ErrNoRepository or ErrNotInRepository.
func (r *Registry) Unload(name string) ([]RepositoryModel, error) {
	if r.repo == nil {
		return nil, ErrNoRepository
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.known(name, false); err != nil {
		return nil, err
	}
	r.repo.unloaded[name] = true
	var c changeSet
	for v, e := range r.repo.models[name] {
		c.unload(name, v, e, reasonUnloaded)
	}
	r.commit(&c)
	return r.index(name), nil
}

// known checks that model name has a folder in the models folder or,
// unless onDisk, is known from a scan; the caller holds r.mu.
func (r *Registry) known(name string, onDisk bool) error {
	if r.closed {
		return errors.New("serve: registry is closed")
	}
	if nameRE.MatchString(name) {
		if !onDisk && r.repo.models[name] != nil {
			return nil
		}
		if fi, err := os.Stat(filepath.Join(r.repo.dir, name)); err == nil && fi.IsDir() {
			return nil
		}
	}
	return fmt.Errorf("%w: no model %s in the models folder", ErrNotInRepository, clipq(name))
}

// Index lists every model version in the models folder now, by name and
// version, with its state: the ones served are READY; the others are
// UNAVAILABLE with the reason (a version found since the last scan says
// so). A version removed from the folder but not yet unloaded by a scan is
// listed too. The error wraps ErrNoRepository.
func (r *Registry) Index() ([]RepositoryModel, error) {
	if r.repo == nil {
		return nil, ErrNoRepository
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.index(""), nil
}

// index lists model name (every model when empty); the caller holds r.mu.
func (r *Registry) index(name string) []RepositoryModel {
	repo := r.repo
	onDisk := map[modelKey]bool{}
	names := []string{name}
	if name == "" {
		names = nil
		if items, err := os.ReadDir(repo.dir); err == nil {
			for _, it := range items {
				if it.IsDir() && nameRE.MatchString(it.Name()) {
					names = append(names, it.Name())
				}
			}
		}
	}
	for _, n := range names {
		items, _ := os.ReadDir(filepath.Join(repo.dir, n))
		for _, it := range items {
			if it.IsDir() && nameRE.MatchString(it.Name()) {
				onDisk[modelKey{n, it.Name()}] = true
			}
		}
	}
	keys := map[modelKey]bool{}
	for k := range onDisk {
		keys[k] = true
	}
	for n, entries := range repo.models {
		if name != "" && n != name {
			continue
		}
		for v := range entries {
			keys[modelKey{n, v}] = true
		}
	}
	rows := make([]RepositoryModel, 0, len(keys))
	for k := range keys {
		row := RepositoryModel{Name: k.name, Version: k.version, State: StateUnavailable}
		switch e := repo.models[k.name][k.version]; {
		case e == nil && repo.unloaded[k.name]:
			row.Reason = reasonUnloaded
		case e == nil:
			row.Reason = "found since the last scan: the next scan loads it, or POST /v2/repository/models/{name}/load"
		default:
			row.Reason = e.reason
			if e.model != nil {
				row.State = StateReady
			}
			if !onDisk[k] {
				row.Reason = strings.TrimPrefix(row.Reason+"; removed from the models folder: the next scan unloads it", "; ")
			}
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b RepositoryModel) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return compareVersions(a.Version, b.Version)
	})
	return rows
}
