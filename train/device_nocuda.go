//go:build !cuda

package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// CUDAEnabled reports whether this binary was built with -tags cuda.
const CUDAEnabled = false

func checkDevice(device string) error {
	if device == "cuda" {
		return fmt.Errorf("train: device cuda needs a binary built with -tags cuda (make build-cuda); this one is CPU-only")
	}
	return nil
}

func deviceOpts(string) []G.VMOpt { return nil }
