package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Device selects where a model runs.
type Device string

const (
	// DeviceCPU runs on ONNX Runtime's CPU execution provider.
	DeviceCPU Device = "cpu"
	// DeviceCUDA runs on the CUDA plugin execution provider and fails when it
	// cannot be loaded.
	DeviceCUDA Device = "cuda"
	// DeviceAuto tries CUDA and falls back to the CPU with a log line.
	DeviceAuto Device = "auto"
)

// ParseDevice checks a --device value.
func ParseDevice(s string) (Device, error) {
	switch d := Device(strings.ToLower(strings.TrimSpace(s))); d {
	case DeviceCPU, DeviceCUDA, DeviceAuto:
		return d, nil
	case "":
		return DeviceCPU, nil
	}
	return "", fmt.Errorf("serve: device must be cpu, cuda or auto, got %q", s)
}

// CUDAEnvVar names the environment variable that points at the CUDA
// execution-provider library (libonnxruntime_providers_cuda.so).
const CUDAEnvVar = "JARZYN_ORT_CUDA_EP"

// cudaLibName is the CUDA plugin execution provider's file name; by default it
// is looked for next to the ONNX Runtime library.
const cudaLibName = "libonnxruntime_providers_cuda.so"

// cudaRegistrationName is the name the CUDA plugin library is registered under.
const cudaRegistrationName = "jarzyn-cuda"

// errNoCUDA wraps every reason the CUDA provider is unavailable.
var errNoCUDA = errors.New("CUDA execution provider unavailable")

// cudaState remembers, per provider library, the outcome of registering it:
// ONNX Runtime registers a library once per process.
var cudaState struct {
	sync.Mutex
	byLib map[string]*cudaLibState
}

type cudaLibState struct {
	err     error
	devices []ort.EpDevice
}

// findCUDALib resolves the CUDA provider library: the explicit path, then
// JARZYN_ORT_CUDA_EP, then next to the ONNX Runtime library in use.
func findCUDALib(explicit, ortLib string) (string, error) {
	cand, from := explicit, "--cuda-ep-lib"
	if cand == "" {
		cand, from = os.Getenv(CUDAEnvVar), CUDAEnvVar
	}
	if cand == "" {
		cand, from = filepath.Join(filepath.Dir(ortLib), cudaLibName), "next to the ONNX Runtime library"
	}
	if st, err := os.Stat(cand); err != nil || st.IsDir() {
		return "", fmt.Errorf("%w: %s not found (%s); set --cuda-ep-lib or %s to libonnxruntime_providers_cuda.so of an ONNX Runtime ≥ 1.29 GPU build", errNoCUDA, cand, from, CUDAEnvVar)
	}
	return cand, nil
}

// cudaDevices registers the CUDA plugin execution provider once per process
// and library (RegisterExecutionProviderLibrary) and returns its devices
// (GetEpDevices). Go's signal handlers are saved and restored around the
// native calls.
func cudaDevices(explicit, ortLib string, log *slog.Logger) ([]ort.EpDevice, error) {
	lib, err := findCUDALib(explicit, ortLib)
	if err != nil {
		return nil, err
	}
	cudaState.Lock()
	defer cudaState.Unlock()
	if st := cudaState.byLib[lib]; st != nil {
		return st.devices, st.err
	}
	if cudaState.byLib == nil {
		cudaState.byLib = map[string]*cudaLibState{}
	}
	regName := fmt.Sprintf("%s-%d", cudaRegistrationName, len(cudaState.byLib))
	var devs []ort.EpDevice
	restored, err := withGoSignalHandlers(func() error {
		if err := ort.RegisterExecutionProviderLibrary(regName, lib); err != nil {
			return fmt.Errorf("%w: registering %s failed: %v (on a CUDA machine, put the CUDA 13 / cuDNN 9 libraries on LD_LIBRARY_PATH)", errNoCUDA, lib, err)
		}
		all, err := ort.GetEpDevices()
		if err != nil {
			return fmt.Errorf("%w: listing execution-provider devices failed: %v", errNoCUDA, err)
		}
		var names []string
		for _, d := range all {
			names = append(names, d.EpName())
			if strings.Contains(strings.ToLower(d.EpName()), "cuda") {
				devs = append(devs, d)
			}
		}
		if len(devs) == 0 {
			return fmt.Errorf("%w: %s registered but offers no CUDA device (devices: %s); is a GPU visible?", errNoCUDA, lib, strings.Join(names, ", "))
		}
		return nil
	})
	if restored > 0 && log != nil {
		log.Info("restored Go signal handlers replaced by the CUDA provider", "count", restored)
	}
	cudaState.byLib[lib] = &cudaLibState{err: err, devices: devs}
	return devs, err
}

// sessionOptions builds the options for a model session on the requested
// device. It returns the device actually used.
func sessionOptions(opt LoadOptions, ortLib string) (*ort.SessionOptions, Device, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, "", fmt.Errorf("serve: creating session options: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			so.Destroy()
		}
	}()
	threads := opt.threads()
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, "", fmt.Errorf("serve: setting intra-op threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, "", fmt.Errorf("serve: setting inter-op threads: %w", err)
	}
	// Between Runs the sampler's own goroutines draw noise; spinning ONNX
	// Runtime threads would take the cores away from them.
	if !opt.Spin {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, "", fmt.Errorf("serve: disabling thread spinning: %w", err)
		}
	}
	dev := opt.Device
	if dev == "" {
		dev = DeviceCPU
	}
	used := DeviceCPU
	if dev == DeviceCUDA || dev == DeviceAuto {
		devs, err := cudaDevices(opt.CUDAProviderLib, ortLib, opt.logger())
		if err == nil {
			_, err = withGoSignalHandlers(func() error {
				return so.AppendExecutionProviderV2(devs[:1], nil)
			})
			if err != nil {
				err = fmt.Errorf("%w: appending the CUDA provider to the session failed: %v", errNoCUDA, err)
			}
		}
		switch {
		case err == nil:
			used = DeviceCUDA
		case dev == DeviceCUDA:
			return nil, "", fmt.Errorf("serve: --device cuda: %w", err)
		default:
			opt.logger().Warn("CUDA unavailable, falling back to CPU", "device", "auto", "reason", err.Error())
		}
	}
	ok = true
	return so, used, nil
}
