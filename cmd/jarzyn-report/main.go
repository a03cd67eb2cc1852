// Command jarzyn-report plots one metrics.csv column of several runs together.
//
//	jarzyn-report --column mass_0 --target 0.25 --out mass.png jarzynski=runs/a pcd=runs/b cd=runs/c
//
// It links no training engine: the plotting lives in internal/report.
//
// Exit status: 0 on success, 2 for a usage error (bad flag, no run dirs), 1
// when a run's metrics cannot be read or the plot cannot be written.
package main

import (
	"context"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jarzyn/jarzyn/internal/cli"
	"github.com/jarzyn/jarzyn/internal/report"
)

const name = "jarzyn-report"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command line (args without the program name); it returns the
// exit status. Drawing one plot is quick, so ctx is not consulted.
func run(_ context.Context, args []string, _, stderr io.Writer) int {
	fs := cli.NewFlagSet(name, "usage: jarzyn-report [flags] LABEL=RUNDIR...\n"+
		"Plots one "+report.MetricsFile+" column of each RUNDIR, labelled LABEL (a bare RUNDIR is its own label).", stderr)
	column := fs.String("column", "mass_0", "metrics.csv `column` to plot")
	title := fs.String("title", "", "plot title (default: the column)")
	ylabel := fs.String("ylabel", "", "y axis label (default: the column)")
	target := fs.Float64("target", math.NaN(), "draw a dashed horizontal line at this `value`")
	out := fs.String("out", "compare.png", "output PNG `file`")
	if code, ok := cli.Parse(fs, args); !ok {
		return code
	}
	if *column == "" {
		return cli.UsageError(stderr, name, "--column must name a column")
	}
	var labels, dirs []string
	for _, a := range fs.Args() {
		l, d, ok := strings.Cut(a, "=")
		if !ok {
			l, d = a, a
		}
		if d == "" {
			return cli.UsageError(stderr, name, "argument %q names no run dir", a)
		}
		labels, dirs = append(labels, l), append(dirs, d)
	}
	if len(dirs) == 0 {
		return cli.UsageError(stderr, name, "at least one LABEL=RUNDIR is required")
	}
	if *title == "" {
		*title = *column
	}
	if *ylabel == "" {
		*ylabel = *column
	}
	if err := report.CompareRuns(dirs, labels, *column, *title, *ylabel, *target, *out); err != nil {
		return cli.Failure(stderr, name, err)
	}
	return cli.ExitOK
}
