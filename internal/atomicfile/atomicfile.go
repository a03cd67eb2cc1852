// Package atomicfile writes files so that a reader sees either the old
// content or the complete new content, never a torn write: temp file in the
// same directory, fsync, rename, fsync of the directory.
//
// The temp file of PATH is named ".<base>.tmp-<random digits>" beside it
// (TempPrefix). A process killed while writing (SIGKILL, power loss) leaves
// that file behind; the next WriteFile or CreateTemp of the same PATH
// removes such stale temps before it writes (RemoveStale). A temp is stale
// when no process holds it: every writer keeps an exclusive advisory lock
// (flock) on its temp while it writes, and the kernel drops the lock when
// the writer dies, so a temp that can be locked belongs to a dead writer,
// however young it is. A live writer's temp is never removed, except in
// the instant between its creation and its lock, which only another writer
// of the same PATH at the same moment can hit (one of the two writes then
// fails with an error; neither leaves a torn file). Only names of that
// pattern for that one PATH are touched, never other files in the folder.
// Where flock is unavailable, a temp counts as stale after an hour.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TempPrefix returns the prefix of the temp files of path: ".<base>.tmp".
// A temp file's name is this prefix, "-" and decimal digits; names of
// earlier jarzyn versions had the digits right after the prefix.
func TempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp" }

// IsTemp reports whether name (a base name) is a temp file of path.
func IsTemp(path, name string) bool {
	rest, ok := strings.CutPrefix(name, TempPrefix(path))
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "-")
	if rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// RemoveStale removes the temp files of path (IsTemp) that no live writer
// holds, and returns the names removed. A missing folder is no error.
func RemoveStale(path string) ([]string, error) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("atomicfile: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !IsTemp(path, e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !unheld(p) {
			continue
		}
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		}
	}
	return removed, nil
}

// CreateTemp removes the stale temp files of path (RemoveStale), then
// creates a new temp file for it in its folder (which must exist), named
// by the pattern and locked as its writer's until it is closed. Writers
// that rename several files into place together use it; WriteFile does
// the whole write for one file.
func CreateTemp(path string) (*os.File, error) {
	if _, err := RemoveStale(path); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix(path)+"-*")
	if err != nil {
		return nil, fmt.Errorf("atomicfile: %w", err)
	}
	// held until closed: RemoveStale in another process leaves it alone
	if err := lock(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("atomicfile: locking %s: %w", f.Name(), err)
	}
	return f, nil
}

// WriteFile atomically replaces path with data, after removing stale temp
// files of path left by killed writers (RemoveStale).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	f, err := CreateTemp(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: syncing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	ok = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
