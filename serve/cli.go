package serve

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jarzyn/jarzyn/internal/cli"
	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/internal/progress"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// Exit codes of Main: the convention of every jarzyn binary (internal/cli).
const (
	// ExitOK: done, or -h/--help.
	ExitOK = cli.ExitOK
	// ExitError: the command line was fine but the work failed (a model
	// that cannot be loaded, an output that cannot be written, a server that
	// cannot listen).
	ExitError = cli.ExitFailure
	// ExitUsage: a bad command, flag or flag value, a missing required flag
	// or an unexpected argument.
	ExitUsage = cli.ExitUsage
	// ExitInterrupted: sample stopped by SIGINT/SIGTERM; nothing written.
	ExitInterrupted = cli.ExitInterrupted
)

// prog is the program name in messages.
const prog = "jarzyn-serve"

const usage = `jarzyn-serve samples from and serves exported jarzyn energy models.

Usage:
  jarzyn-serve sample --model FILE --n N --steps K --out FILE [flags]
  jarzyn-serve http (--model FILE | --models DIR) [--addr :8080] [flags]

Run "jarzyn-serve sample --help" or "jarzyn-serve http --help" for the flags.
The ONNX Runtime library is found from --ort-lib, then $JARZYN_ORT_LIB, then
.deps/onnxruntime/libonnxruntime.so.1 (install it with scripts/install-ort.sh).
`

// Main runs the jarzyn-serve command line (args without the program name)
// and returns the process exit code. ctx is cancelled on SIGINT/SIGTERM by
// the caller: sampling then stops cleanly without writing output, and the
// HTTP server shuts down gracefully. Help (-h) goes to stderr, like every
// message; stdout carries only sample's JSON summary.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return cli.UsageError(stderr, prog, "missing command: sample or http")
	}
	switch args[0] {
	case "sample":
		return mainSample(ctx, args[1:], stdout, stderr)
	case "http", "serve":
		return mainHTTP(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return ExitOK
	}
	return cli.UsageError(stderr, prog, "unknown command %q: want sample or http", args[0])
}

// loadFlags registers the flags shared by both commands.
func loadFlags(fs *flag.FlagSet) func() (LoadOptions, error) {
	ortLib := fs.String("ort-lib", "", "ONNX Runtime shared library (default $"+ortlib.EnvVar+", then "+ortlib.DefaultRel+")")
	device := fs.String("device", "cpu", "execution provider: cpu, cuda (fail without CUDA) or auto (CUDA, else CPU)")
	cudaLib := fs.String("cuda-ep-lib", "", "CUDA plugin execution provider libonnxruntime_providers_cuda.so (default $"+CUDAEnvVar+", then next to the ONNX Runtime library)")
	threads := fs.Int("threads", 0, fmt.Sprintf("ONNX Runtime intra-op threads per Run, at most %d (default 1: one Run per core, each on its own walkers)", HardLimits().MaxThreads))
	noLatent := fs.Bool("no-latent", false, "ignore the model's latent reduction (model.latent.onnx) and always sample in the full dimension")
	noFused := fs.Bool("no-fused", false, "run the file's graph as it is on the CPU, without jarzyn's fused activation operators")
	noVerify := fs.Bool("no-verify", false, "load a model whose SHA-256 seal (model.onnx.sha256) does not match (same as $"+NoVerifyEnv+"=1)")
	return func() (LoadOptions, error) {
		d, err := ParseDevice(*device)
		if err != nil {
			return LoadOptions{}, err
		}
		// ONNX Runtime crashes creating a session with a huge thread count
		if err := HardLimits().CheckThreads(*threads); err != nil {
			return LoadOptions{}, err
		}
		return LoadOptions{ORTLib: *ortLib, Device: d, CUDAProviderLib: *cudaLib, Threads: *threads, NoLatent: *noLatent, NoFused: *noFused, SkipVerify: *noVerify}, nil
	}
}

// newFlagSet returns the flag set of the subcommand cmd.
func newFlagSet(cmd string, stderr io.Writer, synopsis string) *flag.FlagSet {
	return cli.NewFlagSet(prog+" "+cmd, "Usage: "+prog+" "+cmd+" "+synopsis, stderr)
}

// usageError prints err, a bad setting of the subcommand fs, as a usage
// error; a FieldError names its flag (the JSON field with "--" and dashes).
func usageError(fs *flag.FlagSet, err error) int {
	return cli.UsageError(fs.Output(), fs.Name(), "%s", flagMessage(err))
}

// failure prints err, a failure of the subcommand fs, and returns ExitError.
func failure(fs *flag.FlagSet, err error) int {
	fmt.Fprintf(fs.Output(), "%s: %s\n", prog, flagMessage(err))
	return ExitError
}

// flagMessage is err for a command-line user: as trimServe, but a
// FieldError names the flag instead of the JSON field.
func flagMessage(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		// "n*steps" names two flags
		flags := strings.Split(fe.Field, "*")
		for i, f := range flags {
			flags[i] = "--" + strings.ReplaceAll(f, "_", "-")
		}
		return strings.Join(flags, " * ") + ": " + fe.Msg
	}
	return trimServe(err)
}

// SampleSummary is what `jarzyn-serve sample` prints on stdout (one JSON line).
type SampleSummary struct {
	Files                []string `json:"files"`
	Model                string   `json:"model"`
	Device               string   `json:"device"`
	N                    int      `json:"n"`
	Steps                int      `json:"steps"`
	ExtraSteps           int      `json:"extra_steps,omitempty"`
	H                    float64  `json:"h"`
	Seed                 uint64   `json:"seed"`
	Weighted             bool     `json:"weighted"`
	ESS                  *float64 `json:"ess,omitempty"`
	ESSFraction          *float64 `json:"ess_fraction,omitempty"`
	LogZ                 *float64 `json:"log_z,omitempty"`
	Resamplings          int      `json:"resamplings,omitempty"`
	LatentDim            int      `json:"latent_dim,omitempty"` // r when the walk ran in the latent space
	Fused                bool     `json:"fused"`                // the model ran on jarzyn's fused operators
	Precondition         string   `json:"precondition"`         // the moves' M: none or base
	Kernel               string   `json:"kernel,omitempty"`     // weighted: the moves, ula or mala
	Accept               *float64 `json:"accept,omitempty"`     // mala: the fraction of proposals accepted
	WalkerStepsPerSecond float64  `json:"walker_steps_per_second"`
	ElapsedSeconds       float64  `json:"elapsed_seconds"`
	// Classes is the --classifier report (also in FILE.classes.json).
	Classes *ClassReport `json:"classes,omitempty"`
}

func mainSample(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sample", stderr, "--model FILE --n N --steps K --out FILE [flags]")
	model := fs.String("model", "", "exported model.onnx (required)")
	out := fs.String("out", "", "output file (required); checked writable before sampling; with its log-weights file, all written or none")
	format := fs.String("format", "", "csv, npy or png (default from --out's extension, else csv)")
	n := fs.Int("n", 1000, fmt.Sprintf("number of samples (walkers), at most %d, and n·d at most %d", HardMaxN, HardMaxValues))
	steps := fs.Int("steps", 100, fmt.Sprintf("ULA steps; with --weighted, annealing steps of the linear schedule β_k = k/steps; steps + extra steps at most %d", HardMaxSteps))
	h := fs.Float64("h", 0, "ULA step size (default: the model's training step size)")
	seed := fs.Uint64("seed", 0, "random seed; the output depends only on it and the settings")
	init := fs.String("init", "base", "starting distribution: base (the model's base Gaussian) or uniform (in the data range)")
	weighted := fs.Bool("weighted", false, "anneal from the base Gaussian to the model with Jarzynski weights; writes log-weights, ESS and log Ẑ")
	extra := fs.Int("extra-steps", 0, "weighted: extra ULA steps at β = 1 after the schedule")
	threshold := fs.Float64("resample-threshold", 0.5, "weighted: resample when ESS/N falls below this (0 = never)")
	scheme := fs.String("resample", "systematic", "weighted: resampling scheme, systematic or multinomial")
	kernel := fs.String("kernel", "ula", "weighted: the moves, ula (the weights carry each move's discretisation error) or mala (Metropolis-adjusted moves, the weights carry only the work of the β steps: exact for any h; step 0 evaluates the start, so it makes steps − 1 moves before the extra steps)")
	precondition := fs.String("precondition", "auto", "matrix M of the Langevin moves x ← x − h·M·∇U + √(2h)·M^{1/2}·ξ: none (M = I), base (M = Σ of a data-fitted base, model.base_fit pca) or auto (base when the model has one)")
	runBatch := fs.Int("run-batch", 0, fmt.Sprintf("walkers per ONNX Runtime Run, rounded up to a multiple of 64 (default min(%d, n/cores) on the CPU, the whole batch on CUDA); results do not depend on it", DefaultRunBatch))
	quiet := fs.Bool("quiet", false, "no progress bar")
	verbose := fs.Bool("v", false, "log model loading")
	classifier := fs.String("classifier", "", "exported image classifier (jarzyn-export --classifier): label the samples and report the (with --weighted, weighted) class fractions on stderr, in the summary and in OUT.classes.json")
	load := loadFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *model == "" || *out == "" {
		return cli.UsageError(stderr, fs.Name(), "--model and --out are required")
	}
	f, err := ParseFormat(*format, *out)
	if err != nil {
		return usageError(fs, err)
	}
	opt, err := load()
	if err != nil {
		return usageError(fs, err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	opt.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// check the settings that need no model before loading it, against
	// the hard limits (a huge --n would run out of memory)
	if math.IsNaN(*h) || math.IsInf(*h, 0) || *h < 0 {
		return usageError(fs, fieldErr("h", "must be a finite number > 0, or 0 for the model's training step size; got %v", *h))
	}
	cfg := SampleConfig{N: *n, Steps: *steps, StepSize: *h, Seed: *seed, Init: Init(clip(*init)), Weighted: *weighted,
		ExtraSteps: *extra, ResampleThreshold: *threshold, ResampleScheme: smc.Scheme(clip(*scheme)), RunBatch: *runBatch,
		Precondition: Precondition(clip(*precondition)), Kernel: Kernel(clip(*kernel))}
	if !cfg.Weighted {
		// as --extra-steps: settings of weighted sampling are refused, not ignored
		var werr error
		fs.Visit(func(fl *flag.Flag) {
			if werr == nil && (fl.Name == "resample-threshold" || fl.Name == "resample" || fl.Name == "kernel") {
				werr = fmt.Errorf("--%s: only applies to weighted sampling (--weighted)", fl.Name)
			}
		})
		if werr != nil {
			return cli.UsageError(stderr, fs.Name(), "%v", werr)
		}
	}
	if err := cfg.Validate(models.TrainingInfo{StepSize: 1, DataMin: 0, DataMax: 1}); err != nil {
		return usageError(fs, err)
	}
	limits := HardLimits()
	if err := limits.Check(cfg, 0); err != nil {
		return usageError(fs, err)
	}
	// an output that cannot be written fails now, not after the sampling
	if err := CheckWritable(*out); err != nil {
		return failure(fs, err)
	}
	opt.Name, opt.Version = DefaultModelName(*model), "1"
	m, err := LoadModel(*model, opt)
	if err != nil {
		return failure(fs, err)
	}
	defer m.Close()
	if err := limits.Check(cfg, m.Info.Dim); err != nil {
		return usageError(fs, err)
	}
	// --precondition base on a model without a data-fitted base is a bad
	// flag value, found only once the model is loaded
	if err := checkBase(m.Info, cfg); err != nil {
		if fe := (*FieldError)(nil); errors.As(err, &fe) && fe.Field == "precondition" {
			return usageError(fs, err)
		}
		return failure(fs, err)
	}
	var clf *Classifier
	if *classifier != "" {
		if clf, err = LoadClassifier(*classifier, opt); err != nil {
			return failure(fs, err)
		}
		defer clf.Close()
		if err := clf.CheckShape(*model, m.Info.DataShape); err != nil {
			return failure(fs, err)
		}
	}
	label := "sampling"
	if cfg.Weighted {
		label = "annealing"
	}
	// a bar on a terminal; elsewhere progress.Bar logs (at Info, shown with -v)
	endBar := func() {}
	if f, ok := stderr.(*os.File); ok && !*quiet {
		bar := progress.New(f, label, 0, cfg.TotalSteps(), opt.Logger, 0)
		start := time.Now()
		cfg.Progress = func(done, total int) {
			bar.Update(done, "walker_steps_per_s", float64(done)*float64(cfg.N)/time.Since(start).Seconds())
		}
		endBar = bar.Done
	}
	res, err := Sample(ctx, m, cfg)
	endBar()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			fmt.Fprintf(stderr, "%s: interrupted (%s); nothing written\n", prog, trimServe(err))
			return ExitInterrupted
		}
		return failure(fs, err)
	}
	var classes *ClassReport
	if clf != nil {
		if classes, err = clf.Classify(res); err != nil {
			return failure(fs, err)
		}
	}
	files, err := WriteResult(*out, f, res)
	if err != nil {
		return failure(fs, err)
	}
	if classes != nil {
		if err := WriteClassReport(ClassesPath(*out), classes); err != nil {
			return failure(fs, err)
		}
		files = append(files, ClassesPath(*out))
		fmt.Fprintf(stderr, "%s: %s\n", prog, classes.Line())
	}
	sum := SampleSummary{Classes: classes, Files: files, Model: *model, Device: string(m.Device), N: res.N, Steps: res.Steps, ExtraSteps: res.ExtraSteps,
		H: res.StepSize, Seed: res.Seed, Weighted: res.Weighted, Resamplings: res.Resamplings, LatentDim: res.LatentDim, Fused: res.Fused, Precondition: string(res.Precondition),
		WalkerStepsPerSecond: res.WalkerStepsPerSecond(), ElapsedSeconds: res.Elapsed.Seconds()}
	if res.Weighted {
		sum.ESS, sum.ESSFraction, sum.LogZ = &res.ESS, &res.ESSFraction, &res.LogZ
		sum.Kernel = string(res.Kernel)
		if res.Kernel == KernelMALA {
			sum.Accept = &res.Accept
		}
	}
	b, _ := json.Marshal(sum)
	fmt.Fprintf(stdout, "%s\n", b)
	return ExitOK
}

// HTTPOptions configures RunHTTP.
type HTTPOptions struct {
	// Model is one model file, served under Name (default DefaultModelName)
	// and version "1"; ModelsDir is a folder DIR/<name>/<version>/model.onnx.
	// Exactly one must be set.
	Model, ModelsDir, Name string
	// Addr is the listen address. The default value is ":8080".
	Addr string
	// Listener, when set, is used instead of Addr.
	Listener net.Listener
	// ShutdownTimeout bounds the graceful drain. The default value is 30 s.
	ShutdownTimeout time.Duration
	// PollInterval is how often ModelsDir is scanned for added, removed and
	// changed versions (see OpenRepository); SIGHUP and the repository's
	// load endpoint scan it at once. The default value, 0, polls never; the
	// command line's default is DefaultPollInterval.
	PollInterval time.Duration
	// VersionPolicy picks the versions of each model of ModelsDir that are
	// served. The default value serves every version.
	VersionPolicy VersionPolicy
	Load          LoadOptions
	Server        ServerConfig
}

// DefaultPollInterval is the --poll-interval of `jarzyn-serve http`.
const DefaultPollInterval = 10 * time.Second

// RunHTTP loads the models, serves until ctx ends, shuts down gracefully
// and frees the models. With ModelsDir it follows the folder while it
// serves: every PollInterval, and at once on SIGHUP.
func RunHTTP(ctx context.Context, o HTTPOptions) error {
	if (o.Model == "") == (o.ModelsDir == "") {
		return errors.New("serve: give exactly one of --model FILE and --models DIR")
	}
	if err := o.Server.Check(); err != nil {
		return err
	}
	if o.PollInterval < 0 {
		return fieldErr("poll_interval", "must be ≥ 0 (0: never), got %v", o.PollInterval)
	}
	if o.Load.Logger == nil {
		o.Load.Logger = o.Server.Logger
	}
	var reg *Registry
	var hup chan os.Signal
	var err error
	if o.Model != "" {
		reg, err = LoadFile(o.Model, o.Name, o.Load)
	} else {
		// a SIGHUP while the models load rescans once they have
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reg, err = OpenRepository(o.ModelsDir, RepositoryOptions{Load: o.Load, Policy: o.VersionPolicy})
	}
	if err != nil {
		return err
	}
	defer reg.Close()
	if hup != nil {
		wctx, stop := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			reg.Watch(wctx, o.PollInterval, hup)
		}()
		defer func() {
			stop()
			<-watched
		}()
	}
	ln := o.Listener
	if ln == nil {
		addr := o.Addr
		if addr == "" {
			addr = ":8080"
		}
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	return NewServer(reg, o.Server).Serve(ctx, ln, o.ShutdownTimeout)
}

func mainHTTP(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlagSet("http", stderr, "(--model FILE | --models DIR) [flags]")
	d := DefaultServerConfig()
	var o HTTPOptions
	fs.StringVar(&o.Model, "model", "", "serve one model.onnx")
	fs.StringVar(&o.ModelsDir, "models", "", "serve every DIR/<name>/<version>/model.onnx, following the folder: added, removed and changed versions are loaded and unloaded while serving")
	fs.DurationVar(&o.PollInterval, "poll-interval", DefaultPollInterval, "with --models: rescan DIR this often; a new or changed model.onnx loads once it matches its seal or is unchanged at two scans in a row (0: only on SIGHUP and POST /v2/repository/models/NAME/load)")
	policy := fs.String("version-policy", "all", "with --models: the versions served per model: all, latest:N (the N newest that load) or specific:V1,V2,...")
	fs.StringVar(&o.Name, "name", "", "name of the --model (default: its file name, or its folder's when that is model.onnx)")
	fs.StringVar(&o.Addr, "addr", ":8080", "listen address")
	fs.IntVar(&o.Server.MaxN, "max-n", d.MaxN, "most walkers per sampling request")
	fs.IntVar(&o.Server.MaxSteps, "max-steps", d.MaxSteps, "most steps per sampling request")
	fs.Int64Var(&o.Server.MaxWalkerSteps, "max-walker-steps", d.MaxWalkerSteps, "most n·steps per sampling request")
	fs.Int64Var(&o.Server.MaxOutputValues, "max-output-values", d.MaxOutputValues, "most n·d numbers per sampling response")
	fs.IntVar(&o.Server.MaxInferBatch, "max-infer-batch", d.MaxInferBatch, "most rows per infer request")
	fs.Int64Var(&o.Server.MaxBodyBytes, "max-body", d.MaxBodyBytes, "most bytes per request body")
	fs.Int64Var(&o.Server.MaxInflightBytes, "max-inflight-bytes", d.MaxInflightBytes, "memory budget: most request body bytes admitted at once (429 with Retry-After beyond)")
	fs.DurationVar(&o.Server.ReadTimeout, "read-timeout", d.ReadTimeout, "most time to read a request's headers and body")
	fs.DurationVar(&o.Server.Timeout, "timeout", d.Timeout, "per-request timeout")
	fs.IntVar(&o.Server.MaxConcurrent, "max-concurrent", d.MaxConcurrent, "model evaluations running at once (others queue); with --batching on, infer calls and requests run solo")
	fs.StringVar(&o.Server.Batching, "batching", BatchingOn, "on: sampling requests on a model share one walker batch, stepped together (continuous batching); off: each request runs its own batch")
	fs.IntVar(&o.Server.PoolWalkers, "pool-walkers", 0, "capacity of each model's shared walker pool (default --max-n)")
	fs.IntVar(&o.Server.BatchMaxN, "batch-max-n", DefaultBatchMaxN, "largest request (walkers) that joins the shared walker pool; larger ones run their own batch behind --max-concurrent")
	fs.IntVar(&o.Server.MaxQueue, "max-queue", 1024, "most sampling requests waiting for room in a model's walker pool (429 with Retry-After beyond)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "graceful shutdown drain time")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	load := loadFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cli.UsageError(stderr, fs.Name(), "--log-level: must be debug, info, warn or error, got %q", *logLevel)
	}
	hopt := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "text":
		o.Server.Logger = slog.New(slog.NewTextHandler(stderr, hopt))
	case "json":
		o.Server.Logger = slog.New(slog.NewJSONHandler(stderr, hopt))
	default:
		return cli.UsageError(stderr, fs.Name(), "--log-format: must be text or json, got %q", *logFormat)
	}
	var err error
	if o.Load, err = load(); err != nil {
		return usageError(fs, err)
	}
	if (o.Model == "") == (o.ModelsDir == "") {
		return cli.UsageError(stderr, fs.Name(), "give exactly one of --model FILE and --models DIR")
	}
	if err := o.Server.Check(); err != nil {
		return usageError(fs, err)
	}
	if o.VersionPolicy, err = ParseVersionPolicy(*policy); err != nil {
		return usageError(fs, err)
	}
	if o.PollInterval < 0 {
		return usageError(fs, fieldErr("poll_interval", "must be ≥ 0 (0: only on SIGHUP), got %v", o.PollInterval))
	}
	if o.Model != "" {
		var repoFlag string
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "poll-interval" || fl.Name == "version-policy" {
				repoFlag = fl.Name
			}
		})
		if repoFlag != "" {
			return cli.UsageError(stderr, fs.Name(), "--%s applies to --models DIR, not to one --model FILE", repoFlag)
		}
	}
	if err := RunHTTP(ctx, o); err != nil {
		o.Server.Logger.Error("server failed", "err", trimServe(err))
		return ExitError
	}
	return ExitOK
}

// parseFlags parses a subcommand's flags and refuses positional arguments;
// when ok is false, code is the exit status (0 after -h).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if code, ok := cli.Parse(fs, args); !ok {
		return code, false
	}
	return cli.NoArgs(fs)
}
