package serve

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/internal/progress"
	"github.com/jarzyn/jarzyn/smc"
)

// Exit codes of Main.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

const usage = `jarzyn-serve samples from and serves exported jarzyn energy models.

Usage:
  jarzyn-serve sample --model FILE --n N --steps K --out FILE [flags]
  jarzyn-serve http (--model FILE | --models DIR) [--addr :8080] [flags]

Run "jarzyn-serve sample -h" or "jarzyn-serve http -h" for the flags.
The ONNX Runtime library is found from --ort-lib, then $JARZYN_ORT_LIB, then
.deps/onnxruntime/libonnxruntime.so.1 (install it with scripts/install-ort.sh).
`

// Main runs the jarzyn-serve command line (args without the program name)
// and returns the process exit code. ctx is cancelled on SIGINT/SIGTERM by
// the caller: sampling then stops cleanly without writing output, and the
// HTTP server shuts down gracefully.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "sample":
		return mainSample(ctx, args[1:], stdout, stderr)
	case "http", "serve":
		return mainHTTP(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "jarzyn-serve: unknown command %q\n\n%s", args[0], usage)
	return ExitUsage
}

// loadFlags registers the flags shared by both commands.
func loadFlags(fs *flag.FlagSet) func() (LoadOptions, error) {
	ortLib := fs.String("ort-lib", "", "ONNX Runtime shared library (default $"+ortlib.EnvVar+", then "+ortlib.DefaultRel+")")
	device := fs.String("device", "cpu", "execution provider: cpu, cuda (fail without CUDA) or auto (CUDA, else CPU)")
	cudaLib := fs.String("cuda-ep-lib", "", "CUDA plugin execution provider libonnxruntime_providers_cuda.so (default $"+CUDAEnvVar+", then next to the ONNX Runtime library)")
	threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads per Run (default 1: one Run per core, each on its own walkers)")
	noLatent := fs.Bool("no-latent", false, "ignore the model's latent reduction (model.latent.onnx) and always sample in the full dimension")
	noFused := fs.Bool("no-fused", false, "run the file's graph as it is on the CPU, without jarzyn's fused activation operators")
	return func() (LoadOptions, error) {
		d, err := ParseDevice(*device)
		if err != nil {
			return LoadOptions{}, err
		}
		if *threads < 0 {
			return LoadOptions{}, fmt.Errorf("serve: --threads must be ≥ 0, got %d", *threads)
		}
		return LoadOptions{ORTLib: *ortLib, Device: d, CUDAProviderLib: *cudaLib, Threads: *threads, NoLatent: *noLatent, NoFused: *noFused}, nil
	}
}

func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: jarzyn-serve %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// cliError prints err for a command-line user: a FieldError names the flag.
func cliError(stderr io.Writer, err error) {
	var fe *FieldError
	if errors.As(err, &fe) {
		fmt.Fprintf(stderr, "jarzyn-serve: --%s: %s\n", strings.ReplaceAll(fe.Field, "_", "-"), fe.Msg)
		return
	}
	fmt.Fprintf(stderr, "jarzyn-serve: %s\n", strings.TrimPrefix(err.Error(), "serve: "))
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
	WalkerStepsPerSecond float64  `json:"walker_steps_per_second"`
	ElapsedSeconds       float64  `json:"elapsed_seconds"`
}

func mainSample(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sample", stderr, "--model FILE --n N --steps K --out FILE [flags]")
	model := fs.String("model", "", "exported model.onnx (required)")
	out := fs.String("out", "", "output file (required); written atomically")
	format := fs.String("format", "", "csv, npy or png (default from --out's extension, else csv)")
	n := fs.Int("n", 1000, "number of samples (walkers)")
	steps := fs.Int("steps", 100, "ULA steps; with --weighted, annealing steps of the linear schedule β_k = k/steps")
	h := fs.Float64("h", 0, "ULA step size (default: the model's training step size)")
	seed := fs.Uint64("seed", 0, "random seed; the output depends only on it and the settings")
	init := fs.String("init", "base", "starting distribution: base (the model's base Gaussian) or uniform (in the data range)")
	weighted := fs.Bool("weighted", false, "anneal from the base Gaussian to the model with Jarzynski weights; writes log-weights, ESS and log Ẑ")
	extra := fs.Int("extra-steps", 0, "weighted: extra ULA steps at β = 1 after the schedule")
	threshold := fs.Float64("resample-threshold", 0.5, "weighted: resample when ESS/N falls below this (0 = never)")
	scheme := fs.String("resample", "systematic", "weighted: resampling scheme, systematic or multinomial")
	runBatch := fs.Int("run-batch", 0, fmt.Sprintf("walkers per ONNX Runtime Run, rounded up to a multiple of 64 (default min(%d, n/cores) on the CPU, the whole batch on CUDA); results do not depend on it", DefaultRunBatch))
	quiet := fs.Bool("quiet", false, "no progress bar")
	verbose := fs.Bool("v", false, "log model loading")
	load := loadFlags(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *model == "" || *out == "" {
		fmt.Fprintln(stderr, "jarzyn-serve sample: --model and --out are required")
		fs.Usage()
		return ExitUsage
	}
	f, err := ParseFormat(*format, *out)
	if err != nil {
		cliError(stderr, err)
		return ExitUsage
	}
	opt, err := load()
	if err != nil {
		cliError(stderr, err)
		return ExitUsage
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	opt.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := SampleConfig{N: *n, Steps: *steps, StepSize: *h, Seed: *seed, Init: Init(*init), Weighted: *weighted,
		ExtraSteps: *extra, ResampleThreshold: *threshold, ResampleScheme: smc.Scheme(*scheme), RunBatch: *runBatch}
	// check the settings that need no model before loading it
	if err := cfg.Validate(&ModelInfo{StepSize: 1, DataMin: 0, DataMax: 1}); err != nil {
		cliError(stderr, err)
		return ExitUsage
	}
	opt.Name, opt.Version = DefaultModelName(*model), "1"
	m, err := LoadModel(*model, opt)
	if err != nil {
		cliError(stderr, err)
		return ExitError
	}
	defer m.Close()
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
			fmt.Fprintf(stderr, "jarzyn-serve: interrupted (%s); nothing written\n", strings.TrimPrefix(err.Error(), "serve: "))
			return ExitInterrupted
		}
		cliError(stderr, err)
		return ExitError
	}
	files, err := WriteResult(*out, f, res)
	if err != nil {
		cliError(stderr, err)
		return ExitError
	}
	sum := SampleSummary{Files: files, Model: *model, Device: string(m.Device), N: res.N, Steps: res.Steps, ExtraSteps: res.ExtraSteps,
		H: res.StepSize, Seed: res.Seed, Weighted: res.Weighted, Resamplings: res.Resamplings, LatentDim: res.LatentDim, Fused: res.Fused,
		WalkerStepsPerSecond: res.WalkerStepsPerSecond(), ElapsedSeconds: res.Elapsed.Seconds()}
	if res.Weighted {
		sum.ESS, sum.ESSFraction, sum.LogZ = &res.ESS, &res.ESSFraction, &res.LogZ
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
	Load            LoadOptions
	Server          ServerConfig
}

// RunHTTP loads the models, serves until ctx ends, shuts down gracefully
// and frees the models.
func RunHTTP(ctx context.Context, o HTTPOptions) error {
	if (o.Model == "") == (o.ModelsDir == "") {
		return errors.New("serve: give exactly one of --model FILE and --models DIR")
	}
	if o.Load.Logger == nil {
		o.Load.Logger = o.Server.Logger
	}
	var reg *Registry
	var err error
	if o.Model != "" {
		reg, err = LoadFile(o.Model, o.Name, o.Load)
	} else {
		reg, err = LoadDir(o.ModelsDir, o.Load)
	}
	if err != nil {
		return err
	}
	defer reg.Close()
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
	fs.StringVar(&o.ModelsDir, "models", "", "serve every DIR/<name>/<version>/model.onnx")
	fs.StringVar(&o.Name, "name", "", "name of the --model (default: its file name, or its folder's when that is model.onnx)")
	fs.StringVar(&o.Addr, "addr", ":8080", "listen address")
	fs.IntVar(&o.Server.MaxN, "max-n", d.MaxN, "most walkers per sampling request")
	fs.IntVar(&o.Server.MaxSteps, "max-steps", d.MaxSteps, "most steps per sampling request")
	fs.Int64Var(&o.Server.MaxWalkerSteps, "max-walker-steps", d.MaxWalkerSteps, "most n·steps per sampling request")
	fs.Int64Var(&o.Server.MaxOutputValues, "max-output-values", d.MaxOutputValues, "most n·d numbers per sampling response")
	fs.IntVar(&o.Server.MaxInferBatch, "max-infer-batch", d.MaxInferBatch, "most rows per infer request")
	fs.Int64Var(&o.Server.MaxBodyBytes, "max-body", d.MaxBodyBytes, "most bytes per request body")
	fs.DurationVar(&o.Server.Timeout, "timeout", d.Timeout, "per-request timeout")
	fs.IntVar(&o.Server.MaxConcurrent, "max-concurrent", d.MaxConcurrent, "model evaluations running at once (others queue)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "graceful shutdown drain time")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	load := loadFlags(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "jarzyn-serve: --log-level: %v\n", err)
		return ExitUsage
	}
	hopt := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "text":
		o.Server.Logger = slog.New(slog.NewTextHandler(stderr, hopt))
	case "json":
		o.Server.Logger = slog.New(slog.NewJSONHandler(stderr, hopt))
	default:
		fmt.Fprintf(stderr, "jarzyn-serve: --log-format must be text or json, got %q\n", *logFormat)
		return ExitUsage
	}
	var err error
	if o.Load, err = load(); err != nil {
		cliError(stderr, err)
		return ExitUsage
	}
	if (o.Model == "") == (o.ModelsDir == "") {
		fmt.Fprintln(stderr, "jarzyn-serve http: give exactly one of --model FILE and --models DIR")
		return ExitUsage
	}
	if err := RunHTTP(ctx, o); err != nil {
		o.Server.Logger.Error("server failed", "err", strings.TrimPrefix(err.Error(), "serve: "))
		return ExitError
	}
	return ExitOK
}

// parseFlags parses a subcommand's flags and refuses positional arguments;
// when ok is false, code is the exit status (0 after -h).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jarzyn-serve %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return ExitUsage, false
	}
	return 0, true
}
