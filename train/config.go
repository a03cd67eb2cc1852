package train

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// Method selects the gradient estimator.
type Method string

const (
	// Jarzynski is the Jarzynski-weighted SMC estimator of docs/METHOD.md §2.
	Jarzynski Method = "jarzynski"
	// PCD is persistent contrastive divergence: same walkers, uniform weights.
	PCD Method = "pcd"
	// CD is contrastive divergence: PCD with walkers reset to data every cd.reset_every iterations.
	CD Method = "cd"
)

// Config is a whole training run. Every field has a key (its mapstructure
// tags joined by dots) that a YAML file, JARZYN_* variables or --set can set.
type Config struct {
	// Name of the run (the run dir defaults to runs/<name>). The default value is "run".
	Name string `mapstructure:"name"`
	// Seed of every random draw. The default value is 0.
	Seed uint64 `mapstructure:"seed"`
	// Method is jarzynski, pcd or cd. The default value is "jarzynski".
	Method Method `mapstructure:"method"`
	// Dtype of the gorgonia graphs: float64 or float32. The default value is "float64".
	Dtype string `mapstructure:"dtype"`
	// Device is cpu (cuda needs a build with -tags cuda). The default value is "cpu".
	Device string `mapstructure:"device"`
	// Iterations is the number of parameter updates. The default value is 1000.
	Iterations int `mapstructure:"iterations"`

	Model     ModelConfig     `mapstructure:"model"`
	Data      DataConfig      `mapstructure:"data"`
	Walkers   WalkerConfig    `mapstructure:"walkers"`
	Resample  ResampleConfig  `mapstructure:"resample"`
	Loss      LossConfig      `mapstructure:"loss"`
	CD        CDConfig        `mapstructure:"cd"`
	Optimizer OptimizerConfig `mapstructure:"optimizer"`
	Log       LogConfig       `mapstructure:"log"`
}

// ModelConfig is the energy family and its initialisation.
type ModelConfig struct {
	models.Spec `mapstructure:",squash"`
	// MeanScale: GMM means start at mean_scale·N(0, I). The default value is 0.01.
	MeanScale float64 `mapstructure:"mean_scale"`
	// MeanOverrides: GMM initial mean entries [mode, coordinate, value]. The default value is empty.
	MeanOverrides [][]float64 `mapstructure:"mean_overrides"`
	// BaseFit "data" sets the base N(μ0, σ0²I) of the mlp and conv families
	// from the training data: μ0 the per-coordinate mean, σ0² the mean
	// per-coordinate variance (replacing base_mean and base_std); "pca" sets
	// the base N(μ0, Σ) with μ0 the data mean and Σ = base_eps·I plus the
	// top base_rank principal components of the data (docs/METHOD.md §8,
	// "A data-fitted Gaussian base"); "none" keeps them. The default value
	// is "none".
	BaseFit string `mapstructure:"base_fit"`
	// BaseRank is the number of principal components of base_fit pca. The
	// default value is 100.
	BaseRank int `mapstructure:"base_rank"`
	// BaseEps is ε of base_fit pca: the variance of the base in every
	// direction outside the principal components, and added along them
	// (σ0² = ε). The default value is 0.01.
	BaseEps float64 `mapstructure:"base_eps"`
	// Preset fills the conv architecture (family, dim, input_shape, conv,
	// hidden, activation, leaky_slope) from a net of docs/METHOD.md §5:
	// "mnist" (models.MNISTConvSpec), "cifar" (models.CIFARConvSpec), or ""
	// for none. base_mean and base_std are kept. The default value is "".
	Preset string `mapstructure:"preset"`
}

// DataConfig is the data set.
type DataConfig struct {
	// Kind of data: "gmm", a Gaussian-mixture teacher, or "images", a
	// mixture of prototype images (data.prototypes) of the model's
	// input_shape with the teacher's masses and pixel noise stds (family
	// conv), or image files: "mnist" (1×28×28) or "cifar10" (3×32×32, the
	// binary batches), read from data.path, pixels scaled to [−1, 1]. The
	// default value is "gmm".
	Kind string `mapstructure:"kind"`
	// Path is the folder of the image files (kinds mnist, cifar10). For
	// mnist the default value is $JARZYN_MNIST_DIR, else .deps/mnist under
	// the working directory (where `make setup` puts them); cifar10 has no
	// default.
	Path string `mapstructure:"path"`
	// Classes and Counts pick the training images of a file kind: the first
	// Counts[k] images of class Classes[k] in file order; data.n is then
	// their sum. The default value for mnist is digits [2, 3, 6] at [5600,
	// 2800, 1400] (masses 4/7, 2/7, 1/7, docs/METHOD.md §5.2), for cifar10
	// all ten classes at 5000.
	Classes []int `mapstructure:"classes"`
	Counts  []int `mapstructure:"counts"`
	// Noise adds N(0, noise²) to every pixel of a file kind once, when the
	// data set is loaded (from the data stream of the seed). The default
	// value is 0.
	Noise float64 `mapstructure:"noise"`
	// Prototypes names the prototype set of kind images (datasets.Prototypes).
	// The default value is "strokes".
	Prototypes string `mapstructure:"prototypes"`
	// N is the number of data points. The default value is 10000.
	N int `mapstructure:"n"`
	// Batch is the data batch per iteration; 0 means the whole data set. The default value is 0.
	Batch int `mapstructure:"batch"`
	// Split: draw exactly round(n·mass) points per mode (the paper's split). The default value is true.
	Split bool `mapstructure:"split"`
	// Teacher is the mixture teacher (kind gmm). The default value is three unit modes at
	// (−4,−2), (4,−2), (0,4) with masses 0.5, 0.3, 0.2.
	Teacher datasets.Teacher `mapstructure:"teacher"`
}

// WalkerConfig sets the Langevin walkers.
type WalkerConfig struct {
	// N is the number of walkers. The default value is 1000.
	N int `mapstructure:"n"`
	// StepSize is the ULA step h. The default value is 0.1.
	StepSize float64 `mapstructure:"step_size"`
	// ULASteps per parameter update. The default value is 1.
	ULASteps int `mapstructure:"ula_steps"`
	// Init is "model" (exact samples of ρ_θ0, required by jarzynski), "data", or "auto" (model for
	// jarzynski, data for pcd and cd, as in the paper's mixture experiment). The default value is "auto".
	Init string `mapstructure:"init"`
	// Monitor is the size of an optional second walker population that follows the same θ path with
	// its own weights but never enters the gradient (an unbiased log Ẑ / CE). 0 disables it. The default value is 0.
	Monitor int `mapstructure:"monitor"`
	// Kernel moves the walkers: "ula" (the unadjusted Langevin step of docs/METHOD.md §2, with the
	// weights of §2) or "mala" (Metropolis-adjusted, at the new parameters, with work-only weights:
	// docs/METHOD.md §8). The default value is "ula".
	Kernel string `mapstructure:"kernel"`
	// TargetAccept adapts MALA's step size (walkers.kernel mala) after every iteration towards this
	// acceptance rate of the gradient population: h ← h·exp(acceptance − target), kept within
	// [step_size/1000, 100·step_size]. h is chosen from the past iterations only, as the parameter
	// path is, and MALA leaves ρθ invariant for every h, so the work-only weights stay exact
	// (docs/METHOD.md §8). 0 keeps h = step_size. The default value is 0.
	TargetAccept float64 `mapstructure:"target_accept"`
	// Preconditioner is the matrix M of the Langevin steps, x ← x − h·M·∇U + √(2h)·M^{1/2}·ξ: "none"
	// (M = I), "base" (M = Σ, the base's covariance), or "auto" (base with model.base_fit pca, none
	// otherwise). The default value is "auto".
	Preconditioner string `mapstructure:"preconditioner"`
	// Move is the number of walkers moved per iteration, a random subset drawn from the run's
	// stream; every walker, moved or not, gets the work term of the parameter change at its
	// position (docs/METHOD.md §2, "Variants"). 0 moves all. A monitor population moves the same
	// fraction of its walkers (at least one). The default value is 0.
	Move int `mapstructure:"move"`
	// Heuristic allows the paper's heuristic settings below (docs/METHOD.md §5.2), under which the
	// log-weights, log Ẑ and the CE estimate are no longer exact: summary.json then has
	// "heuristic_weights": true, and the log and the titles of the run plots (masses, kl, ess,
	// energy) say "heuristic weights". It is
	// refused for walkers.kernel mala and with a preconditioner. The default value is false.
	Heuristic bool `mapstructure:"heuristic"`
	// NoiseStd is the standard deviation of the Langevin noise, decoupled from the step size
	// (walkers.heuristic only); 0 means √(2h), the exact value. The default value is 0.
	NoiseStd float64 `mapstructure:"noise_std"`
	// DriftClamp clamps every coordinate of the drift h·∇U to [−drift_clamp, drift_clamp]
	// (walkers.heuristic only); 0 does not clamp. The default value is 0.
	DriftClamp float64 `mapstructure:"drift_clamp"`
	// RevertOutside puts every coordinate that a move takes out of the data range [min, max]
	// (over the whole data set) back to its value before the move; a coordinate already outside
	// moves freely (walkers.heuristic only). The default value is false.
	RevertOutside bool `mapstructure:"revert_outside"`
	// WarmupSteps Langevin steps at θ0 move every walker before the first iteration, without
	// weights: the log-weights stay 0 as if the walkers were still samples of ρ_θ0
	// (walkers.heuristic only). The default value is 0.
	WarmupSteps int `mapstructure:"warmup_steps"`
}

// ResampleConfig sets ESS-triggered resampling (jarzynski only).
type ResampleConfig struct {
	// Threshold: resample when ESS/N falls below it; 0 never resamples. The default value is 0.5.
	Threshold float64 `mapstructure:"threshold"`
	// Scheme is systematic or multinomial. The default value is "systematic".
	Scheme string `mapstructure:"scheme"`
	// Warmup: no resampling before this iteration. The default value is 0.
	Warmup int `mapstructure:"warmup"`
	// Criterion decides when to resample: "ess" (ESS/N < threshold, threshold in [0, 1]), "std"
	// (the sample standard deviation of w/mean(w), w = e^A, above threshold, as the paper's
	// MNIST runs), or "loss_ess" (the ESS of the log-weights of this iteration's loss subset,
	// loss.walkers, below threshold, a number of walkers; a monitor population uses ESS/N <
	// threshold/loss.walkers). Threshold 0 never resamples. The default value is "ess".
	Criterion string `mapstructure:"criterion"`
}

// LossConfig sets the walker side of the loss (docs/METHOD.md §2, "Variants").
type LossConfig struct {
	// Walkers is the size of the random subset of walkers (from the run's stream, each
	// iteration) whose weights, renormalised inside it, make the walker term of the gradient;
	// 0 uses all walkers. The default value is 0.
	Walkers int `mapstructure:"walkers"`
	// EnergyReg λ adds λ·(mean U(data)² + Σ_i p_i·U(X_i)²) to the loss (p the loss weights),
	// whose gradient is 2λ·(mean U·∂θU over the data batch + Σ_i p_i·U_i·∂θU_i), as the paper's
	// MNIST runs; 0 disables it. The default value is 0.
	EnergyReg float64 `mapstructure:"energy_reg"`
}

// CDConfig sets the CD baseline.
type CDConfig struct {
	// ResetEvery: walkers go back to data every this many iterations. The default value is 4.
	ResetEvery int `mapstructure:"reset_every"`
	// LRMultiplier scales every learning rate when method is cd. The default value is 1.
	LRMultiplier float64 `mapstructure:"lr_multiplier"`
}

// OptimizerConfig sets the parameter update.
type OptimizerConfig struct {
	// Kind is sgd (plain gradient descent) or adam. The default value is "adam".
	Kind string `mapstructure:"kind"`
	// LR is the learning rate of every group without its own. The default value is 0.001.
	LR float64 `mapstructure:"lr"`
	// GroupLR maps a parameter tensor name (means, log_mass, w0, b0, …) to its learning rate.
	GroupLR map[string]float64 `mapstructure:"group_lr"`
	// Frozen lists parameters that never move: a tensor name ("means") or one entry ("log_mass[0]").
	Frozen []string `mapstructure:"frozen"`
	// Beta1, Beta2, Eps are Adam's. The default values are 0.9, 0.999, 1e-8.
	Beta1 float64 `mapstructure:"beta1"`
	Beta2 float64 `mapstructure:"beta2"`
	Eps   float64 `mapstructure:"eps"`
	// ClipNorm clips the global gradient norm; 0 disables. The default value is 0.
	ClipNorm float64 `mapstructure:"clip_norm"`
	// Schedule of the learning rates: "constant", or "linear" from the full rate at iteration 0
	// to final_lr_fraction of it at the last iteration. The default value is "constant".
	Schedule string `mapstructure:"schedule"`
	// FinalLRFraction is where the linear schedule ends. The default value is 0.
	FinalLRFraction float64 `mapstructure:"final_lr_fraction"`
}

// LogConfig sets logging, checkpoints and plots.
type LogConfig struct {
	// Every: a metrics row every this many iterations. The default value is 10.
	Every int `mapstructure:"every"`
	// CheckpointEvery: a checkpoint every this many iterations (and at the end). The default value is 500.
	CheckpointEvery int `mapstructure:"checkpoint_every"`
	// Plots: write PNG plots at the end. The default value is true.
	Plots bool `mapstructure:"plots"`
	// Grid: points per axis of the 2-D quadrature grid (MLP family, d = 2). The default value is 400.
	Grid int `mapstructure:"grid"`
	// EvalEvery: model masses and exact KL (quadrature for the MLP family) every this many rows; GMM rows always have them. The default value is 10.
	EvalEvery int `mapstructure:"eval_every"`
	// Classifier is a classifier file (jarzyn-train classifier) of the model's image shape; when
	// set, the walkers are labelled every classify_every iterations: weighted class fractions
	// and the confident fraction in metrics.csv and summary.json, plots/classes.png (docs/METHOD.md §5.2).
	// The default value is "" (none).
	Classifier string `mapstructure:"classifier"`
	// ClassifyEvery: iterations between labellings, a multiple of log.every; 0 means log.every. The default value is 0.
	ClassifyEvery int `mapstructure:"classify_every"`
	// ImageGridEvery: for image models, an 8×8 grid of walkers drawn by weight, plots/grid_<iter>.png, every this many
	// iterations (and plots/grid_final.png at the end with log.plots); 0 draws only the final one. The default value is 0.
	ImageGridEvery int `mapstructure:"image_grid_every"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Name: "run", Method: Jarzynski, Dtype: "float64", Device: "cpu", Iterations: 1000,
		Model: ModelConfig{Spec: models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{32, 32},
			Activation: models.SiLU, BaseStd: 1}, MeanScale: 0.01, BaseFit: "none", BaseRank: 100, BaseEps: 0.01},
		Data: DataConfig{Kind: "gmm", Prototypes: "strokes", N: 10000, Split: true, Teacher: datasets.Teacher{
			Means: [][]float64{{-4, -2}, {4, -2}, {0, 4}}, Masses: []float64{0.5, 0.3, 0.2}}},
		Walkers:   WalkerConfig{N: 1000, StepSize: 0.1, ULASteps: 1, Init: "auto", Kernel: "ula", Preconditioner: "auto"},
		Resample:  ResampleConfig{Threshold: 0.5, Scheme: "systematic", Criterion: "ess"},
		CD:        CDConfig{ResetEvery: 4, LRMultiplier: 1},
		Optimizer: OptimizerConfig{Kind: "adam", LR: 1e-3, GroupLR: map[string]float64{}, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Schedule: "constant"},
		Log:       LogConfig{Every: 10, CheckpointEvery: 500, Plots: true, Grid: 400, EvalEvery: 10},
	}
}

// LoadConfig reads file (may be empty for defaults) with env and key=value overrides, then validates.
func LoadConfig(file string, sets []string) (Config, error) {
	c := DefaultConfig()
	if err := config.Load(file, sets, &c); err != nil {
		return c, err
	}
	if c.Model.Family == models.GMM && c.Model.BaseStd == 0 {
		c.Model.BaseStd = 1
	}
	if err := c.Validate(); err != nil {
		src := file
		if src == "" {
			src = "defaults"
		}
		var ke *config.KeyError
		if errors.As(err, &ke) {
			return c, config.InFile(err, src)
		}
		return c, fmt.Errorf("%w (config %s)", err, src)
	}
	return c, nil
}

// Validate reports the first invalid field: a *config.KeyError naming its
// key (File empty; LoadConfig fills it in), or for the model spec an error
// of package models.
func (c *Config) Validate() error {
	bad := config.Errorf
	if err := config.CheckFinite(c); err != nil {
		return err
	}
	switch c.Method {
	case Jarzynski, PCD, CD:
	default:
		return bad("method", "must be jarzynski, pcd or cd, got %q", c.Method)
	}
	if c.Dtype != "float64" && c.Dtype != "float32" {
		return bad("dtype", "must be float64 or float32, got %q", c.Dtype)
	}
	if c.Device != "cpu" && c.Device != "cuda" {
		return bad("device", "must be cpu or cuda, got %q", c.Device)
	}
	if c.Iterations < 0 || c.Iterations > MaxIterations {
		return bad("iterations", "must be in [0, %d], got %d", MaxIterations, c.Iterations)
	}
	for _, check := range []func() error{c.validateModel, c.validateData, c.validateWalkers, c.validateVariants, c.validateOptimizer, c.validateLog} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateModel checks the model keys (and fills the conv preset and the default base_std).
func (c *Config) validateModel() error {
	bad := config.Errorf
	if err := c.Model.applyPreset(); err != nil {
		return err
	}
	if (c.Model.Family == models.MLP || c.Model.Family == models.Conv) && c.Model.BaseStd == 0 {
		c.Model.BaseStd = 1
	}
	if err := c.Model.Spec.Validate(); err != nil {
		return fmt.Errorf("train: model: %w", err)
	}
	if err := c.checkLimits(); err != nil {
		return err
	}
	switch c.Model.BaseFit {
	case "none":
	case "data", "pca":
		if c.Model.Family == models.GMM {
			return config.Errorf("model.base_fit", "%s applies to the mlp and conv families, not gmm", c.Model.BaseFit)
		}
	default:
		return config.Errorf("model.base_fit", "must be none, data or pca, got %q", c.Model.BaseFit)
	}
	if c.Model.BaseFit == "pca" {
		if c.Model.BaseRank < 1 || c.Model.BaseRank > c.Model.Dim {
			return config.Errorf("model.base_rank", "must be in [1, model.dim=%d] for base_fit pca, got %d", c.Model.Dim, c.Model.BaseRank)
		}
		if !(c.Model.BaseEps > 0) {
			return config.Errorf("model.base_eps", "must be > 0 for base_fit pca, got %v", c.Model.BaseEps)
		}
	}
	for i, o := range c.Model.MeanOverrides {
		if len(o) != 3 || o[0] != math.Trunc(o[0]) || o[1] != math.Trunc(o[1]) || (c.Model.Family == models.GMM &&
			(o[0] < 0 || o[0] >= float64(c.Model.Modes) || o[1] < 0 || o[1] >= float64(c.Model.Dim))) {
			return bad(fmt.Sprintf("model.mean_overrides[%d]", i), "must be [mode, coordinate, value] with an integer mode in [0, model.modes) and coordinate in [0, model.dim), got %v", o)
		}
	}
	return nil
}

// validateData checks the data keys and the teacher.
func (c *Config) validateData() error {
	bad := config.Errorf
	switch c.Data.Kind {
	case DataGMM, DataImages:
	case DataMNIST, DataCIFAR10:
		c.Data.normalizeFileData()
		if err := c.validateFileData(); err != nil {
			return err
		}
	default:
		return bad("data.kind", "must be gmm, images, mnist or cifar10, got %q", c.Data.Kind)
	}
	if c.Data.N <= 0 {
		return bad("data.n", "must be > 0, got %d", c.Data.N)
	}
	if c.Data.Batch < 0 || c.Data.Batch > c.Data.N {
		return bad("data.batch", "must be in [0, data.n=%d], got %d", c.Data.N, c.Data.Batch)
	}
	if c.Data.fromFiles() {
		return nil
	}
	if _, err := c.teacher(); err != nil {
		return err
	}
	return nil
}

// validateWalkers checks the walker, resampling and CD keys.
func (c *Config) validateWalkers() error {
	bad := config.Errorf
	if c.Walkers.N <= 0 {
		return bad("walkers.n", "must be > 0, got %d", c.Walkers.N)
	}
	if !(c.Walkers.StepSize > 0) || math.IsInf(c.Walkers.StepSize, 0) {
		return bad("walkers.step_size", "must be > 0, got %v", c.Walkers.StepSize)
	}
	if c.Walkers.ULASteps <= 0 {
		return bad("walkers.ula_steps", "must be >= 1, got %d", c.Walkers.ULASteps)
	}
	if c.Walkers.Init != "auto" && c.Walkers.Init != "model" && c.Walkers.Init != "data" {
		return bad("walkers.init", "must be auto, model or data, got %q", c.Walkers.Init)
	}
	if c.Method == Jarzynski && c.Walkers.Init == "data" {
		return bad("walkers.init", "must be model for method jarzynski (the weights need exact samples of ρ_θ0), got %q", c.Walkers.Init)
	}
	if c.Walkers.Monitor < 0 {
		return bad("walkers.monitor", "must be >= 0, got %d", c.Walkers.Monitor)
	}
	if c.Walkers.Kernel != "ula" && c.Walkers.Kernel != "mala" {
		return bad("walkers.kernel", "must be ula or mala, got %q", c.Walkers.Kernel)
	}
	if ta := c.Walkers.TargetAccept; math.IsNaN(ta) || ta < 0 || ta >= 1 || (ta > 0 && c.Walkers.Kernel != "mala") {
		return bad("walkers.target_accept", "must be 0 (off) or in (0, 1) with walkers.kernel mala, got %v with kernel %s", ta, c.Walkers.Kernel)
	}
	switch c.Walkers.Preconditioner {
	case "auto", "none":
	case "base":
		if c.Model.Family == models.GMM {
			return bad("walkers.preconditioner", "base needs the mlp or conv family (a base Gaussian), got gmm")
		}
	default:
		return bad("walkers.preconditioner", "must be auto, none or base, got %q", c.Walkers.Preconditioner)
	}
	if c.Resample.Criterion == "ess" && (c.Resample.Threshold < 0 || c.Resample.Threshold > 1) {
		return bad("resample.threshold", "must be in [0, 1] for resample.criterion ess, got %v", c.Resample.Threshold)
	}
	if c.Resample.Scheme != "systematic" && c.Resample.Scheme != "multinomial" {
		return bad("resample.scheme", "must be systematic or multinomial, got %q", c.Resample.Scheme)
	}
	if c.Resample.Warmup < 0 {
		return bad("resample.warmup", "must be >= 0, got %d", c.Resample.Warmup)
	}
	if c.CD.ResetEvery <= 0 {
		return bad("cd.reset_every", "must be >= 1, got %d", c.CD.ResetEvery)
	}
	if !(c.CD.LRMultiplier > 0) {
		return bad("cd.lr_multiplier", "must be > 0, got %v", c.CD.LRMultiplier)
	}
	return nil
}

// validateOptimizer checks the optimizer keys.
func (c *Config) validateOptimizer() error {
	bad := config.Errorf
	o := c.Optimizer
	if o.Kind != "sgd" && o.Kind != "adam" {
		return bad("optimizer.kind", "must be sgd or adam, got %q", o.Kind)
	}
	if !(o.LR > 0) {
		return bad("optimizer.lr", "must be > 0, got %v", o.LR)
	}
	names := map[string]int{}
	for _, s := range c.Model.ParamShapes() {
		names[s.Name] = prodInts(s.Shape)
	}
	for k, v := range o.GroupLR {
		if _, ok := names[k]; !ok {
			return bad("optimizer.group_lr."+k, "names no parameter of family %s", c.Model.Family)
		}
		if !(v >= 0) {
			return bad("optimizer.group_lr."+k, "must be >= 0, got %v", v)
		}
	}
	for _, f := range o.Frozen {
		m := frozenEntry.FindStringSubmatch(f)
		if m == nil {
			return bad("optimizer.frozen", "entry %q must be a name or name[index]", f)
		}
		size, ok := names[m[1]]
		if !ok {
			return bad("optimizer.frozen", "entry %q names no parameter of family %s", f, c.Model.Family)
		}
		if m[2] != "" {
			if i, _ := strconv.Atoi(m[2]); i >= size {
				return bad("optimizer.frozen", "entry %q is out of range (size %d)", f, size)
			}
		}
	}
	if o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 {
		return bad("optimizer.beta1/beta2", "must be in [0, 1), got %v, %v", o.Beta1, o.Beta2)
	}
	if !(o.Eps > 0) {
		return bad("optimizer.eps", "must be > 0, got %v", o.Eps)
	}
	if o.Schedule != "constant" && o.Schedule != "linear" {
		return bad("optimizer.schedule", "must be constant or linear, got %q", o.Schedule)
	}
	if o.FinalLRFraction < 0 || o.FinalLRFraction > 1 {
		return bad("optimizer.final_lr_fraction", "must be in [0, 1], got %v", o.FinalLRFraction)
	}
	if o.ClipNorm < 0 {
		return bad("optimizer.clip_norm", "must be >= 0, got %v", o.ClipNorm)
	}
	return nil
}

// validateLog checks the log keys.
func (c *Config) validateLog() error {
	bad := config.Errorf
	if c.Log.Every <= 0 {
		return bad("log.every", "must be >= 1, got %d", c.Log.Every)
	}
	if c.Log.CheckpointEvery <= 0 {
		return bad("log.checkpoint_every", "must be >= 1, got %d", c.Log.CheckpointEvery)
	}
	if c.Log.EvalEvery <= 0 {
		return bad("log.eval_every", "must be >= 1, got %d", c.Log.EvalEvery)
	}
	if c.Log.Grid < 10 {
		return bad("log.grid", "must be >= 10, got %d", c.Log.Grid)
	}
	if c.Log.ClassifyEvery < 0 || c.Log.ClassifyEvery%c.Log.Every != 0 || c.Log.ClassifyEvery > MaxIterations {
		return bad("log.classify_every", "must be 0 or a multiple of log.every=%d, got %d", c.Log.Every, c.Log.ClassifyEvery)
	}
	if c.Log.Classifier != "" && c.imageShape() == nil {
		return bad("log.classifier", "labels images: needs an image model (model.input_shape [C, H, W]) or image data (data.kind mnist, cifar10), got family %s", c.Model.Family)
	}
	if c.Log.ImageGridEvery < 0 || c.Log.ImageGridEvery%c.Log.Every != 0 || c.Log.ImageGridEvery > MaxIterations {
		return bad("log.image_grid_every", "must be 0 or a multiple of log.every=%d, got %d", c.Log.Every, c.Log.ImageGridEvery)
	}
	if c.Log.ImageGridEvery > 0 && c.imageShape() == nil {
		return bad("log.image_grid_every", "draws images: needs an image model (model.input_shape [C, H, W]) or image data (data.kind mnist, cifar10), got family %s", c.Model.Family)
	}
	return nil
}

// teacher is the data's teacher, normalised: data.teacher, or for kind
// images the prototype images of data.prototypes in the model's input shape
// as its means, with data.teacher's masses and stds.
func (c *Config) teacher() (datasets.Teacher, error) {
	t := c.Data.Teacher
	if c.Data.Kind == "images" {
		if c.Model.Family != models.Conv {
			return t, config.Errorf("data.kind", "images needs model.family conv (an input_shape), got %q", c.Model.Family)
		}
		sh := c.Model.InputShape
		means, err := datasets.Prototypes(c.Data.Prototypes, sh[0], sh[1], sh[2])
		if err != nil {
			return t, config.Errorf("data.prototypes", "%v", err)
		}
		t.Means = means
	}
	n, err := t.Normalized(c.Model.Dim)
	if err != nil {
		return n, teacherError(err)
	}
	return n, nil
}

// applyPreset fills the architecture from model.preset; for family conv
// without a preset, dim is C·H·W of input_shape.
func (m *ModelConfig) applyPreset() error {
	var p models.Spec
	switch m.Preset {
	case "":
		if m.Family == models.Conv && len(m.InputShape) == 3 {
			m.Dim = prodInts(m.InputShape)
		}
		return nil
	case "mnist":
		p = models.MNISTConvSpec()
	case "cifar":
		p = models.CIFARConvSpec()
	default:
		return config.Errorf("model.preset", "must be mnist, cifar or empty, got %q", m.Preset)
	}
	p.BaseMean, p.BaseStd = m.BaseMean, m.BaseStd
	m.Spec = p
	return nil
}

// Limits on the sizes of a run, checked by Validate (checkLimits) before
// anything is allocated; a value beyond one is refused with its key named.
// MaxMemoryBytes bounds the estimate of the memory the run needs
// (memoryEstimate).
const (
	MaxIterations  = 1_000_000_000 // iterations, log.every, log.eval_every, log.checkpoint_every
	MaxDataN       = 1 << 26       // data.n (67,108,864 points)
	MaxWalkers     = 1 << 24       // walkers.n and walkers.monitor (16,777,216 each)
	MaxULASteps    = 1 << 20       // walkers.ula_steps (1,048,576)
	MaxDim         = 1 << 24       // model.dim (16,777,216, as jarzyn-serve accepts)
	MaxModes       = 1 << 16       // model.modes (65,536)
	MaxLayers      = 64            // entries of model.hidden and of model.conv
	MaxWidth       = 1 << 16       // each model.hidden width (65,536)
	MaxParams      = 1 << 28       // parameters of the model (268,435,456)
	MaxGrid        = 4096          // log.grid (points per axis)
	MaxMemoryBytes = 64 << 30      // memoryEstimate (64 GiB)
)

// checkLimits refuses sizes beyond the limits above with a
// *config.KeyError naming the key.
func (c *Config) checkLimits() error {
	bad := config.Errorf
	for _, v := range []struct {
		key      string
		val, max int
	}{
		{"data.n", c.Data.N, MaxDataN},
		{"walkers.n", c.Walkers.N, MaxWalkers},
		{"walkers.monitor", c.Walkers.Monitor, MaxWalkers},
		{"walkers.ula_steps", c.Walkers.ULASteps, MaxULASteps},
		{"model.dim", c.Model.Dim, MaxDim},
		{"model.modes", c.Model.Modes, MaxModes},
		{"log.grid", c.Log.Grid, MaxGrid},
		{"log.every", c.Log.Every, MaxIterations},
		{"log.eval_every", c.Log.EvalEvery, MaxIterations},
		{"log.checkpoint_every", c.Log.CheckpointEvery, MaxIterations},
	} {
		if v.val > v.max {
			return bad(v.key, "must be at most %d, got %d", v.max, v.val)
		}
	}
	if len(c.Model.Hidden) > MaxLayers || len(c.Model.Conv) > MaxLayers {
		return bad("model.hidden", "and model.conv must have at most %d entries each, got %d and %d", MaxLayers, len(c.Model.Hidden), len(c.Model.Conv))
	}
	for i, h := range c.Model.Hidden {
		if h > MaxWidth {
			return bad(fmt.Sprintf("model.hidden[%d]", i), "must be at most %d, got %d", MaxWidth, h)
		}
	}
	// every size is bounded now (conv ones by models), so this fits an int
	params := c.Model.NumParams()
	if params > MaxParams {
		return bad("model", "has %d parameters, more than the limit of %d (reduce model.hidden, model.dim or model.modes)", params, MaxParams)
	}
	if est := c.memoryEstimate(params); est > MaxMemoryBytes {
		return bad("walkers.n", "needs about %.1f GiB with data.n=%d, walkers.monitor=%d, model.dim=%d and %d parameters, more than the limit of %d GiB",
			est/(1<<30), c.Data.N, c.Walkers.Monitor, c.Model.Dim, params, MaxMemoryBytes>>30)
	}
	return nil
}

// memoryEstimate is a rough upper estimate, in bytes, of what a run of c
// allocates (8-byte values): the data set and its graph copy, about eight
// d-vectors per walker (positions, gradients, their saved copies, noise)
// and four values per hidden unit per walker (the caches' activations and
// deltas), the same for the data batch, ten copies of the parameters
// (values, gradients, optimizer moments, snapshots, graph nodes), and the
// quadrature grid of a 2-D model.
func (c *Config) memoryEstimate(params int) float64 {
	d := float64(c.Model.Dim)
	units := 0.0 // hidden values per point
	if c.Model.Family == models.GMM {
		units = float64(c.Model.Modes)
	}
	for _, h := range c.Model.Hidden {
		units += float64(h)
	}
	if len(c.Model.InputShape) == 3 {
		h, w := c.Model.InputShape[1], c.Model.InputShape[2]
		for _, l := range c.Model.Conv {
			if l.Stride > 0 {
				h, w = (h+2*l.Pad-l.Kernel)/l.Stride+1, (w+2*l.Pad-l.Kernel)/l.Stride+1
			}
			units += float64(l.Out) * float64(h) * float64(w)
		}
	}
	walkers := float64(c.Walkers.N) + float64(c.Walkers.Monitor)
	batch := float64(c.Data.Batch)
	if batch == 0 {
		batch = float64(c.Data.N)
	}
	grid := 0.0
	if c.Model.Dim == 2 {
		grid = 4 * float64(c.Log.Grid) * float64(c.Log.Grid)
	}
	return 8 * (2*float64(c.Data.N)*d + walkers*(8*d+4*units) + batch*(2*d+4*units) + 10*float64(params) + grid)
}

// teacherError is the error for a teacher that datasets refuses: a
// *config.KeyError with the field's key under "data.teacher.".
func teacherError(err error) error {
	var te *datasets.TeacherError
	if errors.As(err, &te) {
		return &config.KeyError{Key: "data.teacher." + te.Field, Msg: te.Msg}
	}
	return fmt.Errorf("train: data.teacher: %w", err)
}

func prodInts(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// YAML renders the resolved configuration.
func (c Config) YAML() ([]byte, error) { return config.YAML(c) }

// Digest is a short SHA-256 of the resolved configuration.
func (c Config) Digest() string {
	b, _ := c.YAML()
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
