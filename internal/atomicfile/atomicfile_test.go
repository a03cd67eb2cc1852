package atomicfile

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIsTemp(t *testing.T) {
	const path = "/x/latest.ckpt"
	for _, tc := range []struct {
		name string
		want bool
	}{
		{".latest.ckpt.tmp-123456", true},
		{".latest.ckpt.tmp987", true}, // earlier versions' names
		{".latest.ckpt.tmp-", false},
		{".latest.ckpt.tmp", false},
		{".latest.ckpt.tmp-12x", false},
		{"latest.ckpt", false},
		{".latest.ckpt.tmp-12/3", false},
		{".other.ckpt.tmp-123", false},
		{".latest.ckpt.old.tmp-1", false},
		{"latest.ckpt.tmp-123", false},
	} {
		if got := IsTemp(path, tc.name); got != tc.want {
			t.Errorf("IsTemp(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A child process (this test binary) that creates a temp of path, holds
// it as a writer does, prints its name and waits to be killed.
func TestMain(m *testing.M) {
	if p := os.Getenv("ATOMICFILE_HOLD"); p != "" {
		f, err := os.CreateTemp(filepath.Dir(p), TempPrefix(p)+"-*")
		if err != nil {
			os.Exit(3)
		}
		if err := lock(f); err != nil {
			os.Exit(4)
		}
		os.Stdout.WriteString(f.Name() + "\n")
		time.Sleep(time.Hour) // until killed
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestWriteFileRemovesStaleTemps: WriteFile of a path removes the temps of
// that path whose writer is gone, keeps a live writer's temp and every
// other file, and leaves no temp of its own.
func TestWriteFileRemovesStaleTemps(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("temps are aged, not locked, here")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "latest.ckpt")
	// a live writer in another process, then one killed with SIGKILL
	hold := func() (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_HOLD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		name, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("holder: %v", err)
		}
		return cmd, strings.TrimSpace(name)
	}
	live, liveTmp := hold()
	defer func() { live.Process.Kill(); live.Wait() }()
	killed, killedTmp := hold()
	killed.Process.Kill()
	killed.Wait()

	files := map[string]bool{ // name → must survive
		".latest.ckpt.tmp-4242":  false, // stale, current naming
		".latest.ckpt.tmp77":     false, // stale, earlier naming
		".latest.ckpt.tmp-x":     true,  // not our pattern
		".config.yaml.tmp-4242":  true,  // another file's temp
		"notes.txt":              true,
		filepath.Base(liveTmp):   true,
		filepath.Base(killedTmp): false,
	}
	for n := range files {
		if n == filepath.Base(liveTmp) || n == filepath.Base(killedTmp) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range []string{"first", "second"} {
		if err := WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != data {
			t.Fatalf("write %d: read back %q, %v", i, b, err)
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	for n, keep := range files {
		if slices.Contains(left, n) != keep {
			t.Errorf("%s: present %v, want %v (left: %v)", n, !keep, keep, left)
		}
	}
	for _, n := range left {
		if _, known := files[n]; !known && n != "latest.ckpt" {
			t.Errorf("unexpected file %s left behind", n)
		}
	}
}
