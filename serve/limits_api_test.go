package serve

import (
	"context"
	"errors"
	"testing"
)

// The Go API holds the same bounds as the CLI and HTTP: LoadModel refuses a
// thread count ONNX Runtime cannot create a session with, Sample a run too
// large to allocate.
func TestAPILimits(t *testing.T) {
	needORT(t)
	var fe *FieldError
	if _, err := LoadModel("unused.onnx", LoadOptions{Threads: HardLimits().MaxThreads + 1}); !errors.As(err, &fe) || fe.Field != "threads" {
		t.Errorf("LoadModel with too many threads: %v", err)
	}
	m := loadGaussian(t, testGaussian)
	for _, cfg := range []SampleConfig{
		{N: HardMaxN + 1, Steps: 1},
		{N: 10, Steps: 1, RunBatch: HardMaxN + 1},
		{N: 100_000, Steps: HardMaxSteps}, // n·steps above HardMaxWalkerSteps
	} {
		if _, err := Sample(context.Background(), m, cfg); !errors.As(err, &fe) {
			t.Errorf("Sample(%+v) = %v, want a FieldError", cfg, err)
		}
	}
}
