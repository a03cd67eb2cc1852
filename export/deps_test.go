package export

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTrainingEngine keeps export free of gorgonia (docs/ARCHITECTURE.md: the exporter
// links ONNX Runtime for its check, never the training engine).
func TestNoTrainingEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "gorgonia.org/") || dep == "github.com/jarzyn/jarzyn/train" {
			t.Errorf("export depends on %s", dep)
		}
	}
}
