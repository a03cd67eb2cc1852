// Command jarzyn-train trains an energy-based model with Jarzynski-weighted
// SMC (or the PCD/CD baselines) and writes a run dir.
//
//	jarzyn-train --config FILE [--out DIR] [--set key=value]...
//	jarzyn-train --resume DIR [--set iterations=N]...
//	jarzyn-train classifier --classes 2,3,6 --out DIR [--mnist .deps/mnist] [--epochs 8] [--seed 0]
//
// The classifier subcommand trains the image classifier that labels the
// walkers of an MNIST run (docs/METHOD.md §5.2; the config key
// log.classifier) and writes DIR/classifier.bin, DIR/classifier.onnx and
// DIR/summary.json with its t10k accuracy.
//
// Exit status: 0 on success, 2 for a usage error (bad flag, missing --config,
// extra arguments, an unknown config key or a refused value), 1 when the run
// fails (an unreadable config file or run dir, a diverging run, I/O errors),
// 130 after SIGINT/SIGTERM once a checkpoint to resume from is written.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/jarzyn/jarzyn/internal/cli"
	"github.com/jarzyn/jarzyn/train"
)

const name = "jarzyn-train"

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command line (args without the program name); it returns the
// exit status. When ctx ends the run checkpoints and run returns 130.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "classifier" {
		return runClassifier(ctx, args[1:], stdout, stderr)
	}
	flags := cli.NewFlagSet(name, "usage: jarzyn-train --config FILE [--out DIR] [--set key=value]...\n"+
		"       jarzyn-train --resume DIR [--set key=value]...\n"+
		"       jarzyn-train classifier --classes 2,3,6 --out DIR [flags]   (jarzyn-train classifier --help)\n"+
		"Environment: JARZYN_<KEY> overrides the file (e.g. JARZYN_WALKERS_N=4096); --set overrides both.", stderr)
	var (
		cfgFile = flags.String("config", "", "experiment YAML `file` (see configs/)")
		out     = flags.String("out", "", "run `dir` (default runs/<name>)")
		resume  = flags.String("resume", "", "continue the run in this `dir` from its latest checkpoint")
		printC  = flags.Bool("print-config", false, "print the resolved configuration as YAML and exit")
		sets    multiFlag
	)
	flags.Var(&sets, "set", "override a config key: --set key=value (repeatable; value is YAML)")
	if code, ok := cli.Parse(flags, args); !ok {
		return code
	}
	if code, ok := cli.NoArgs(flags); !ok {
		return code
	}
	file, dir := *cfgFile, *out
	if *resume != "" {
		if file != "" {
			return cli.UsageError(stderr, name, "--resume reads the run's own config.yaml; drop --config (use --set to change e.g. iterations)")
		}
		if dir != "" && dir != *resume {
			return cli.UsageError(stderr, name, "--resume DIR writes into DIR; drop --out")
		}
		file, dir = filepath.Join(*resume, train.ConfigFile), *resume
	} else if file == "" && !*printC {
		return cli.UsageError(stderr, name, "--config FILE is required (try configs/gmm2d.yaml)")
	}
	cfg, err := train.LoadConfig(file, sets)
	if err != nil {
		// a config file that cannot be read is a failure like any other
		// unreadable input; a key or value it refuses is a usage error
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return cli.Failure(stderr, name, err)
		}
		return cli.UsageError(stderr, name, "%v", err)
	}
	if *printC {
		b, err := cfg.YAML()
		if err != nil {
			return cli.Failure(stderr, name, err)
		}
		if _, err := stdout.Write(b); err != nil {
			return cli.Failure(stderr, name, err)
		}
		return cli.ExitOK
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := train.Options{Config: cfg, OutDir: dir, Resume: *resume != "", Logger: log}
	sum, err := train.Run(ctx, opts)
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(stderr, "%s: interrupted; resume with: jarzyn-train --resume %s\n", name, opts.RunDir())
		return cli.ExitInterrupted
	}
	if err != nil {
		return cli.Failure(stderr, name, err)
	}
	f := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", *p)
	}
	fmt.Fprintf(stdout, "run %s: %d iterations in %.1fs (%.1f it/s); CE estimate %s, exact CE %s, exact KL %s, estimated KL %s",
		opts.RunDir(), sum.Iterations, sum.Seconds, sum.ItersPerSecond, f(sum.CEEstimate), f(sum.CE), f(sum.ExactKL), f(sum.EstimatedKL))
	if sum.Teacher != nil {
		fmt.Fprintf(stdout, ", mode masses %.4f (teacher %.4f)", sum.ModeMasses, sum.Teacher.Masses)
	}
	if sum.ClassSummary != nil {
		fmt.Fprintf(stdout, ", class fractions %v (targets %v, confident %.4f)", fmtFractions(sum.ClassFractions), fmtFractions(sum.TargetFractions), sum.ConfidentFraction)
	}
	fmt.Fprintf(stdout, ", resamplings %d\n", sum.Resamplings)
	return cli.ExitOK
}

// fmtFractions writes class fractions as "2:0.5714 3:0.2857 6:0.1429", in
// class order.
func fmtFractions(f map[string]float64) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, ea := strconv.Atoi(keys[i])
		b, eb := strconv.Atoi(keys[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%.4f", k, f[k])
	}
	return strings.Join(parts, " ")
}
