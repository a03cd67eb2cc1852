// Command jarzyn-report plots one metrics.csv column of several runs together.
//
//	jarzyn-report --column mass_0 --target 0.25 --out mass.png jarzynski=runs/a pcd=runs/b cd=runs/c
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/jarzyn/jarzyn/train"
)

func main() {
	column := flag.String("column", "mass_0", "metrics.csv column to plot")
	title := flag.String("title", "", "plot title (default: the column)")
	ylabel := flag.String("ylabel", "", "y axis label (default: the column)")
	target := flag.Float64("target", math.NaN(), "draw a dashed horizontal line at this value")
	out := flag.String("out", "compare.png", "output PNG")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: jarzyn-report [flags] LABEL=RUNDIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	var labels, dirs []string
	for _, a := range flag.Args() {
		l, d, ok := strings.Cut(a, "=")
		if !ok {
			l, d = a, a
		}
		labels, dirs = append(labels, l), append(dirs, d)
	}
	if len(dirs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *title == "" {
		*title = *column
	}
	if *ylabel == "" {
		*ylabel = *column
	}
	if err := train.CompareRuns(dirs, labels, *column, *title, *ylabel, *target, *out); err != nil {
		fmt.Fprintln(os.Stderr, "jarzyn-report:", err)
		os.Exit(1)
	}
}
