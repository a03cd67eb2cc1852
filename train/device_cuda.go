//go:build cuda

package train

// The CUDA build (-tags cuda; make build-cuda; docs/GPU.md).
//
// gorgonia v0.9.18 chooses the device of every op by its Go type, not by a VM
// option: at compile time (analysis.go analyzeDevice) an op that implements
// CUDADoer (matrix products through cuBLAS, the elementwise unary and binary
// ops through gorgonia's PTX kernels, reshape) is placed on GPU 0 and every
// other op (reductions such as Sum and Max, transposes, broadcasts' repeats,
// and this package's fused activation actOp, which has no CUDADo) stays on the
// CPU; the compiler inserts host↔device copies (devTrans) wherever a value
// crosses. There is no switch to keep a graph on the CPU in a -tags cuda
// binary, so such a binary refuses device=cpu, and deviceOpts has no option to
// add: the tape machines are the same as in the CPU build.
//
// Parameters and inputs stay Go slices. A graph leaf (paramSet's slices, the
// walker and data buffers) is a CPU value; each RunAll loads it and copies it
// to the device before the first GPU op that reads it, so an optimizer step
// done in place on the host is seen by the next run without any re-binding.
// Results are bound to device registers in CUDA managed memory (gorgonia's
// engine allocates its arena with cuMemAllocManaged), which the host can read
// once RunAll has flushed the batched CUDA calls, so valueData works
// unchanged. The cost is one host→device copy of every leaf per run and a
// device→host round trip around every CPU op (the activations, the LSE
// reductions).
//
// gorgonia's elementwise kernels are PTX made by its cudagen command, which
// needs nvcc and writes Go source into the build; instead, loadKernels reads
// PTX files compiled from gorgonia's "cuda modules/src/*.cu" by
// scripts/gpu/build-ptx.sh (bin/cuda-ptx next to the binary, or
// $JARZYN_CUDA_PTX) and registers them with gorgonia.AddToStdLib, as the
// code cudagen generates would.

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"gorgonia.org/cu"
	G "gorgonia.org/gorgonia"

	"github.com/jarzyn/jarzyn/internal/cudashim"
)

// CUDAEnabled reports whether this binary was built with -tags cuda.
const CUDAEnabled = true

// PTXDirEnv names the environment variable with the folder of gorgonia's PTX
// kernels (elembinop.ptx, elemunaryop.ptx, …); the default is cuda-ptx next
// to the executable.
const PTXDirEnv = "JARZYN_CUDA_PTX"

// ptxModules are the modules gorgonia's CUDA ops look their kernels up in
// (gorgonia "cuda modules/src": elembinop.cu, elemunaryop.cu, …).
var ptxModules = []string{"elembinop", "elemunaryop"}

var ptxKernels struct {
	once   sync.Once
	dir    string
	loaded []string
	err    error
}

func init() { loadKernels() }

// loadKernels registers the PTX modules once per process; the tape machines
// load them into each CUDA context when they are created.
func loadKernels() error {
	ptxKernels.once.Do(func() {
		dir := os.Getenv(PTXDirEnv)
		if dir == "" {
			// the default: cuda-ptx next to the executable (make build-cuda)
			if exe, err := os.Executable(); err == nil {
				dir = filepath.Join(filepath.Dir(exe), "cuda-ptx")
			}
		}
		ptxKernels.dir = dir
		ptxKernels.loaded, ptxKernels.err = cudashim.AddPTXDir(dir, ptxModules, G.AddToStdLib)
		if ptxKernels.err != nil {
			ptxKernels.err = fmt.Errorf("train: device cuda: %w (or set %s)", ptxKernels.err, PTXDirEnv)
		}
	})
	return ptxKernels.err
}

func checkDevice(device string) error {
	switch device {
	case "cpu":
		return fmt.Errorf("train: device cpu: this binary is built with -tags cuda, where gorgonia runs every op it has a CUDA kernel for on GPU 0 whatever the setting; use the CPU build (make build) for device=cpu")
	case "cuda":
		if err := loadKernels(); err != nil {
			return err
		}
		n, err := cu.NumDevices()
		if err != nil {
			return fmt.Errorf("train: device cuda: counting CUDA devices: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("train: device cuda: no CUDA device is visible")
		}
	}
	return nil
}

// deviceOpts returns no option: placement is by op type (see above). It makes
// sure the kernels are registered before a tape machine is created.
func deviceOpts(string) []G.VMOpt {
	_ = loadKernels()
	return nil
}

// CUDAInfo describes the CUDA side of this binary for logs and reports: the
// driver and cuDNN versions, the device count and the PTX modules loaded.
func CUDAInfo() string {
	n, err := cu.NumDevices()
	dev := fmt.Sprint(n)
	if err != nil {
		dev = "error: " + err.Error()
	}
	name := ""
	if n > 0 {
		if d, err := cu.GetDevice(0); err == nil {
			if s, err := d.Name(); err == nil {
				name = s
			}
		}
	}
	kerr := "ok"
	if err := loadKernels(); err != nil {
		kerr = err.Error()
	}
	return fmt.Sprintf("cuda driver %d, cudnn %d, devices %s (%s), ptx dir %s: modules %v (%s)",
		cu.Version(), cudashim.CUDNNVersion(), dev, name, ptxKernels.dir, ptxKernels.loaded, kerr)
}
