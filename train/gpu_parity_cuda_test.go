//go:build cuda

package train

// GPU checks for the -tags cuda build. They run only on a machine with an
// NVIDIA GPU: gorgonia.org/cu calls cuInit in its package init and exits the
// process when that fails, so a -tags cuda test binary cannot even start, let
// alone skip, without a GPU and its driver. Run them through
// scripts/gpu/run-gpu-checks.sh (or by hand: go test -c -tags cuda ./train,
// then train.test -test.run 'GPU|CUDA' on the GPU machine); CI never builds
// them.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// parityConfigs are small runs of each family in float32, without
// resampling (a discrete decision that float32 rounding could flip).
func parityConfigs() map[string]Config {
	gmm := DefaultConfig()
	gmm.Name, gmm.Dtype, gmm.Seed = "parity_gmm", "float32", 7
	gmm.Model.Spec = models.Spec{Family: models.GMM, Dim: 50, Modes: 2, BaseStd: 1}
	gmm.Model.MeanScale = 0.01
	gmm.Data.Teacher.Means = [][]float64{{-10}, {6}}
	gmm.Data.Teacher.Masses = []float64{0.25, 0.75}
	gmm.Data.N, gmm.Walkers.N = 1024, 1024
	gmm.Optimizer.Kind, gmm.Optimizer.LR = "sgd", 0.0025

	mlp := DefaultConfig()
	mlp.Name, mlp.Dtype, mlp.Seed = "parity_mlp", "float32", 7
	mlp.Model.Spec = models.Spec{Family: models.MLP, Dim: 16, Hidden: []int{32, 32}, Activation: models.SiLU, BaseStd: 1}
	mlp.Data.Teacher.Means = [][]float64{{1}, {-1}}
	mlp.Data.Teacher.Masses = []float64{0.5, 0.5}
	mlp.Data.N, mlp.Data.Batch, mlp.Walkers.N, mlp.Walkers.StepSize = 1024, 256, 1024, 0.01
	out := map[string]Config{"gmm": gmm, "mlp": mlp}
	for k, c := range out {
		c.Iterations = 1
		c.Resample.Threshold = 0
		c.Log.Every, c.Log.CheckpointEvery, c.Log.EvalEvery = 1, 1, 1
		c.Log.Plots = false
		out[k] = c
	}
	return out
}

// parityTol is the float32 tolerance of TestGPUParity: the largest absolute
// difference of a checkpoint section, over the largest magnitude in it
// (at least 1). cuBLAS and the CPU sum in different orders, so float32
// results differ in the last bits; one iteration must not amplify that past
// a few hundred ulps.
const parityTol = 2e-4

// TestGPUParity runs one training iteration on the GPU (this binary) and on
// the CPU (the CPU build of jarzyn-train named by JARZYN_CPU_TRAIN, run with
// the same resolved configuration and seed) and compares every section of the
// two checkpoints: parameters, walkers, energies, gradients, log-weights and
// optimizer state. JARZYN_PARITY_OUT, if set, receives the differences as JSON.
func TestGPUParity(t *testing.T) {
	if _, err := os.Stat("/dev/nvidia0"); err != nil {
		t.Skip("no /dev/nvidia0: TestGPUParity needs an NVIDIA GPU")
	}
	cpuTrain := os.Getenv("JARZYN_CPU_TRAIN")
	if cpuTrain == "" {
		t.Skip("JARZYN_CPU_TRAIN must name a CPU build of jarzyn-train (scripts/gpu/run-gpu-checks.sh sets it)")
	}
	t.Log(CUDAInfo())
	report := map[string]map[string]float64{}
	for _, name := range []string{"gmm", "mlp"} {
		t.Run(name, func(t *testing.T) {
			cfg := parityConfigs()[name]
			dir := t.TempDir()
			gpuDir, cpuDir := filepath.Join(dir, "gpu"), filepath.Join(dir, "cpu")

			cpuCfg := cfg
			cpuCfg.Device = "cpu"
			y, err := cpuCfg.YAML()
			if err != nil {
				t.Fatal(err)
			}
			cfgFile := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfgFile, y, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(cpuTrain, "--config", cfgFile, "--out", cpuDir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("CPU run: %v\n%s", err, out)
			}

			gpuCfg := cfg
			gpuCfg.Device = "cuda"
			if _, err := Run(context.Background(), Options{Config: gpuCfg, OutDir: gpuDir, Progress: os.Stderr}); err != nil {
				t.Fatalf("GPU run: %v", err)
			}

			diffs, err := compareCheckpoints(filepath.Join(gpuDir, CheckpointDir, LatestCkpt), filepath.Join(cpuDir, CheckpointDir, LatestCkpt))
			if err != nil {
				t.Fatal(err)
			}
			report[name] = diffs
			for sec, d := range diffs {
				t.Logf("%s: %-24s relative max difference %.3g", name, sec, d)
				if !(d <= parityTol) {
					t.Errorf("%s: section %s differs by %.3g (tolerance %.g)", name, sec, d, parityTol)
				}
			}
		})
	}
	if p := os.Getenv("JARZYN_PARITY_OUT"); p != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// compareCheckpoints returns, for every float section present in both
// checkpoints and for the parameters, max|a−b| / max(1, max|b|).
func compareCheckpoints(a, b string) (map[string]float64, error) {
	ca, err := models.ReadContainer(a)
	if err != nil {
		return nil, err
	}
	cb, err := models.ReadContainer(b)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	pa, err := ca.Params()
	if err != nil {
		return nil, err
	}
	pb, err := cb.Params()
	if err != nil {
		return nil, err
	}
	for k := range pb.Tensors {
		out["params/"+pb.Tensors[k].Name] = relDiff(pa.Tensors[k].Data, pb.Tensors[k].Data)
	}
	secs := []string{"walkers", "energies", "grads", "log_weights"}
	for k := range pb.Tensors {
		secs = append(secs, fmt.Sprintf("opt/m/%d", k), fmt.Sprintf("opt/v/%d", k))
	}
	for _, sec := range secs {
		if !cb.Has(sec) {
			continue
		}
		vb, err := cb.Floats(sec)
		if err != nil {
			return nil, err
		}
		va, err := ca.Floats(sec)
		if err != nil {
			return nil, fmt.Errorf("GPU checkpoint: %w", err)
		}
		out[sec] = relDiff(va, vb)
	}
	var sa, sb struct {
		LogZRef   float64 `json:"log_z_ref"`
		MeanUData float64 `json:"mean_u_data"`
	}
	if err := ca.JSON("state", &sa); err != nil {
		return nil, err
	}
	if err := cb.JSON("state", &sb); err != nil {
		return nil, err
	}
	out["state/log_z_ref"] = relDiff([]float64{sa.LogZRef}, []float64{sb.LogZRef})
	out["state/mean_u_data"] = relDiff([]float64{sa.MeanUData}, []float64{sb.MeanUData})
	return out, nil
}

func relDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	scale, d := 1.0, 0.0
	for i := range b {
		scale = math.Max(scale, math.Abs(b[i]))
		d = math.Max(d, math.Abs(a[i]-b[i]))
		if math.IsNaN(a[i]) != math.IsNaN(b[i]) {
			return math.Inf(1)
		}
	}
	return d / scale
}
