package train

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/internal/config"
)

// TestConfigKeyErrors checks that LoadConfig's refusals of a key or value are
// *config.KeyError values naming the key and the file, including the
// teacher's, whose checks live in package datasets.
func TestConfigKeyErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("walkers:\n  n: 64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		sets []string
		key  string
		src  string
	}{
		{file, []string{"walkers.n=-3"}, "walkers.n", file},
		{file, []string{"data.teacher.masses=[0.5, 0, 0.5]"}, "data.teacher.masses[1]", file},
		{file, []string{"data.teacher.stds=[1]"}, "data.teacher.stds", file},
		{file, []string{"optimizer.group_lr.zz=1"}, "optimizer.group_lr.zz", file},
		{file, []string{"walkers.zz=1"}, "walkers.zz", file},
		{"", []string{"method=magic"}, "method", "defaults"},
	} {
		_, err := LoadConfig(tc.file, tc.sets)
		var ke *config.KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%v: error %v is not a *config.KeyError", tc.sets, err)
			continue
		}
		if ke.Key != tc.key || ke.File != tc.src {
			t.Errorf("%v: key %q, file %q; want %q, %q", tc.sets, ke.Key, ke.File, tc.key, tc.src)
		}
		if msg := err.Error(); !strings.Contains(msg, `"`+tc.key+`"`) || !strings.Contains(msg, tc.src) || strings.Contains(msg, "datasets:") {
			t.Errorf("%v: message %q", tc.sets, msg)
		}
	}
}
