package ortlib

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindOrder(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib.so")
	os.WriteFile(lib, []byte("x"), 0o644)
	t.Setenv(EnvVar, "")
	if p, err := Find(lib); err != nil || p != lib {
		t.Fatalf("explicit path: %v %v", p, err)
	}
	if _, err := Find(filepath.Join(dir, "missing.so")); err == nil || !strings.Contains(err.Error(), "missing.so") || !strings.Contains(err.Error(), "make setup") {
		t.Fatalf("missing explicit library: %v", err)
	}
	t.Setenv(EnvVar, lib)
	if p, err := Find(""); err != nil || p != lib {
		t.Fatalf("from %s: %v %v", EnvVar, p, err)
	}
	t.Setenv(EnvVar, filepath.Join(dir, "nope.so"))
	if _, err := Find(""); err == nil || !strings.Contains(err.Error(), EnvVar) {
		t.Fatalf("bad %s: %v", EnvVar, err)
	}
}

func TestInitRejectsWrongFile(t *testing.T) {
	if inited {
		t.Skip("already initialised in this process")
	}
	bogus := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	os.WriteFile(bogus, []byte("not a library"), 0o644)
	_, err := Init(bogus)
	if err == nil || !strings.Contains(err.Error(), bogus) {
		t.Fatalf("a non-library file was accepted or not named: %v", err)
	}
}
