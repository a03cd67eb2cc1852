package train

import (
	G "gorgonia.org/gorgonia"
)

// deviceVMOpts returns the tape-machine options for cfg.Device; the CUDA build
// (device_cuda.go, -tags cuda) supplies its own checkDevice and options.
func deviceVMOpts(device string) []G.VMOpt {
	return deviceOpts(device)
}
