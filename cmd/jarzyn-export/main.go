// Command jarzyn-export turns a trained model into an ONNX file and checks it
// against the training engine before writing it:
//
//	jarzyn-export --run DIR [--checkpoint FILE] --out model.onnx [--ort-lib PATH] [--n 1024]
//
// It reads DIR/model.weights (or FILE, a weights file or a training
// checkpoint), builds the ONNX graph of U and ∇ₓU with export.Build, evaluates
// it with ONNX Runtime on --n inputs and compares with the training engine's
// float32 numbers (train.EvalEnergy). Above export.Tolerance it fails and
// leaves nothing at --out. For an MLP whose first layer is narrower than its
// input it also writes the exact latent reduction (export.BuildLatent) beside
// it as model.latent.onnx, checked the same way, which jarzyn-serve uses to
// sample in r instead of d dimensions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/train"
)

// reference is the training engine's evaluation that the export is checked
// against; a variable so that the engine can be swapped (for instance for
// models' float64 reference, export.ModelsReference).
var reference export.Reference = train.EvalEnergy

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "jarzyn-export:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jarzyn-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := export.Options{Reference: reference, ReferenceName: "training engine", DType: "float32"}
	fs.StringVar(&o.RunDir, "run", "", "training run `dir`ectory (reads DIR/"+export.WeightsFile+")")
	fs.StringVar(&o.Checkpoint, "checkpoint", "", "weights or checkpoint `file` to export instead of the run's weights")
	fs.StringVar(&o.Out, "out", "", "ONNX `file` to write")
	fs.StringVar(&o.ORTLib, "ort-lib", "", "ONNX Runtime shared library `path` (default: $JARZYN_ORT_LIB or .deps/onnxruntime)")
	fs.IntVar(&o.N, "n", 1024, "number of check inputs")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jarzyn-export --run DIR [--checkpoint FILE] --out model.onnx [--ort-lib PATH] [--n 1024]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	res, err := export.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%s d=%d, %d bytes) from %s\n", res.Out, res.Spec.Family, res.Spec.Dim, res.Bytes, res.Source)
	fmt.Fprintf(stdout, "parity vs %s on %d inputs (half base Gaussian, half %s): max relative error energy %.2e, grad %.2e (tolerance %g)\n",
		res.Reference, res.N, res.DataLike, res.EnergyErr, res.GradErr, export.Tolerance)
	if res.LatentOut != "" {
		fmt.Fprintf(stdout, "wrote %s (exact latent reduction d=%d → r=%d for sampling; parity energy %.2e, grad %.2e)\n",
			res.LatentOut, res.Spec.Dim, res.LatentRank, res.LatentEnergyErr, res.LatentGradErr)
	}
	return nil
}
