// Command jarzyn-train trains an energy-based model with Jarzynski-weighted
// SMC (or the PCD/CD baselines) and writes a run dir.
//
//	jarzyn-train --config FILE [--out DIR] [--set key=value]...
//	jarzyn-train --resume DIR [--set iterations=N]...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jarzyn/jarzyn/train"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	var (
		cfgFile = flag.String("config", "", "experiment YAML file (see configs/)")
		out     = flag.String("out", "", "run dir (default runs/<name>)")
		resume  = flag.String("resume", "", "continue the run in this dir from its latest checkpoint")
		printC  = flag.Bool("print-config", false, "print the resolved configuration as YAML and exit")
		sets    multiFlag
	)
	flag.Var(&sets, "set", "override a config key: --set key=value (repeatable; value is YAML)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: jarzyn-train --config FILE [--out DIR] [--set key=value]...\n       jarzyn-train --resume DIR [--set key=value]...\nEnvironment: JARZYN_<KEY> overrides the file (e.g. JARZYN_WALKERS_N=4096); --set overrides both.\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "jarzyn-train: unexpected argument %q\n", flag.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	file, dir := *cfgFile, *out
	if *resume != "" {
		if file != "" {
			fmt.Fprintln(os.Stderr, "jarzyn-train: --resume reads the run's own config.yaml; drop --config (use --set to change e.g. iterations)")
			return 2
		}
		if dir != "" && dir != *resume {
			fmt.Fprintln(os.Stderr, "jarzyn-train: --resume DIR writes into DIR; drop --out")
			return 2
		}
		file, dir = filepath.Join(*resume, train.ConfigFile), *resume
	} else if file == "" && !*printC {
		fmt.Fprintln(os.Stderr, "jarzyn-train: --config FILE is required (try configs/gmm2d.yaml)")
		flag.Usage()
		return 2
	}
	cfg, err := train.LoadConfig(file, sets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jarzyn-train:", err)
		return 2
	}
	if *printC {
		b, err := cfg.YAML()
		if err != nil {
			fmt.Fprintln(os.Stderr, "jarzyn-train:", err)
			return 1
		}
		os.Stdout.Write(b)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := train.Options{Config: cfg, OutDir: dir, Resume: *resume != "", Logger: log}
	sum, err := train.Run(ctx, opts)
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "jarzyn-train: interrupted; resume with: jarzyn-train --resume %s\n", opts.RunDir())
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jarzyn-train:", err)
		return 1
	}
	f := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", *p)
	}
	fmt.Printf("run %s: %d iterations in %.1fs (%.1f it/s); CE estimate %s, exact CE %s, exact KL %s, estimated KL %s, mode masses %.4f (teacher %.4f), resamplings %d\n",
		opts.RunDir(), sum.Iterations, sum.Seconds, sum.ItersPerSecond, f(sum.CEEstimate), f(sum.CE), f(sum.ExactKL), f(sum.EstimatedKL), sum.ModeMasses, sum.Teacher.Masses, sum.Resamplings)
	return 0
}
