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
	"regexp"
	"sort"
	"strings"
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

var kernels struct {
	once   sync.Once
	dir    string
	loaded []string
	err    error
}

func init() { loadKernels() }

// loadKernels registers the PTX modules once per process; the tape machines
// load them into each CUDA context when they are created.
func loadKernels() error {
	kernels.once.Do(func() {
		dir := os.Getenv(PTXDirEnv)
		if dir == "" {
			if exe, err := os.Executable(); err == nil {
				dir = filepath.Join(filepath.Dir(exe), "cuda-ptx")
			}
		}
		kernels.dir = dir
		kernels.loaded, kernels.err = addPTXDir(dir, G.AddToStdLib)
	})
	return kernels.err
}

var ptxEntryRE = regexp.MustCompile(`\.entry\s+([A-Za-z_$][\w$]*)|\.globl\s+([A-Za-z_$][\w$]*)`)

// ptxFunctions lists the kernel entry points of a PTX module, as cudagen does
// (its .globl directives).
func ptxFunctions(ptx string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ptxEntryRE.FindAllStringSubmatch(ptx, -1) {
		name := m[1] + m[2]
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// addPTXDir registers every *.ptx file in dir under its base name and reports
// which modules it added; it fails when a module gorgonia's ops need is absent.
func addPTXDir(dir string, add func(name, data string, funcs []string)) ([]string, error) {
	if dir == "" {
		return nil, fmt.Errorf("train: no folder for gorgonia's CUDA kernels: set %s", PTXDirEnv)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ptx"))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return names, fmt.Errorf("train: reading CUDA kernels: %w", err)
		}
		fns := ptxFunctions(string(b))
		if len(fns) == 0 {
			return names, fmt.Errorf("train: %s holds no PTX kernel entry", f)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".ptx")
		add(name, string(b), fns)
		names = append(names, name)
	}
	for _, m := range ptxModules {
		if !contains(names, m) {
			return names, fmt.Errorf("train: gorgonia's CUDA kernel module %q not found in %s (run scripts/gpu/build-ptx.sh or make build-cuda, or set %s)", m, dir, PTXDirEnv)
		}
	}
	return names, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
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
		cu.Version(), cudashim.CUDNNVersion(), dev, name, kernels.dir, kernels.loaded, kerr)
}
