package report

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeRun(t *testing.T, dir, csv string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadMetricsAndSeries(t *testing.T) {
	dir := writeRun(t, t.TempDir(), "iter,a,b\n0,1,\n10,NaN,2\n20,3,4\n")
	cols, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(cols["a"]) != 3 || !math.IsNaN(cols["b"][0]) {
		t.Errorf("columns %v", cols)
	}
	xy := cols.Series("a") // NaN skipped
	if len(xy) != 2 || xy[0].X != 0 || xy[0].Y != 1 || xy[1].X != 20 || xy[1].Y != 3 {
		t.Errorf("series a %v", xy)
	}
	if xy := cols.Series("missing"); len(xy) != 0 {
		t.Errorf("missing column %v", xy)
	}
	if _, err := ReadMetrics(filepath.Join(writeRun(t, filepath.Join(t.TempDir(), "e"), ""), MetricsFile)); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: %v", err)
	}
}

func TestCompareRuns(t *testing.T) {
	root := t.TempDir()
	a := writeRun(t, filepath.Join(root, "a"), "iter,mass_0\n0,0.5\n10,0.3\n")
	b := writeRun(t, filepath.Join(root, "b"), "iter,mass_0\n0,0.5\n20,0.26\n")
	out := filepath.Join(root, "out", "m.png")
	if err := CompareRuns([]string{a, b}, []string{"a", "b"}, "mass_0", "t", "mass", 0.25, out); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Errorf("%s: %v", out, err)
	}
	if err := CompareRuns([]string{a}, []string{"a"}, "ess", "t", "ess", math.NaN(), out); err == nil || !strings.Contains(err.Error(), `no values in column "ess"`) {
		t.Errorf("missing column: %v", err)
	}
	if err := CompareRuns([]string{a, b}, []string{"a"}, "mass_0", "t", "m", math.NaN(), out); err == nil {
		t.Errorf("labels mismatch accepted")
	}
}
