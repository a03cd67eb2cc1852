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
//
// Each file written is sealed: model.onnx.sha256 (and
// model.latent.onnx.sha256) beside it holds its SHA-256 in sha256sum's
// format (`sha256sum -c model.onnx.sha256` checks it). jarzyn-serve refuses
// a model that does not match its seal, warns about one without a seal, and
// skips the check with JARZYN_NO_VERIFY=1. Copy a model with its seal.
//
// Exit status: 0 on success, 2 for a usage error (bad flag, missing --out or
// --run/--checkpoint, extra arguments), 1 when the export fails (unreadable
// weights, ONNX Runtime missing, the parity check failing).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/internal/cli"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/train"
)

const name = "jarzyn-export"

// reference is the training engine's evaluation that the export is checked
// against; a variable so that the engine can be swapped (for instance for
// models' float64 reference, export.ModelsReference).
var reference export.Reference = train.EvalEnergy

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command line (args without the program name); it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet(name, "usage: jarzyn-export --run DIR [--checkpoint FILE] --out model.onnx [--ort-lib PATH] [--n 1024]", stderr)
	o := export.Options{Reference: reference, ReferenceName: "training engine", DType: "float32"}
	fs.StringVar(&o.RunDir, "run", "", "training run `dir`ectory (reads DIR/"+models.WeightsFile+")")
	fs.StringVar(&o.Checkpoint, "checkpoint", "", "weights or checkpoint `file` to export instead of the run's weights")
	fs.StringVar(&o.Out, "out", "", "ONNX `file` to write (required)")
	fs.StringVar(&o.ORTLib, "ort-lib", "", "ONNX Runtime shared library `path` (default: $JARZYN_ORT_LIB or .deps/onnxruntime)")
	fs.IntVar(&o.N, "n", 1024, "number of check inputs (≥ 2)")
	if code, ok := cli.Parse(fs, args); !ok {
		return code
	}
	if code, ok := cli.NoArgs(fs); !ok {
		return code
	}
	switch {
	case o.Out == "":
		return cli.UsageError(stderr, name, "--out FILE is required")
	case o.RunDir == "" && o.Checkpoint == "":
		return cli.UsageError(stderr, name, "--run DIR or --checkpoint FILE is required")
	case o.N < 2:
		return cli.UsageError(stderr, name, "--n must be ≥ 2, got %d", o.N)
	}
	res, err := export.Run(ctx, o)
	if err != nil {
		return cli.Failure(stderr, name, err)
	}
	fmt.Fprintf(stdout, "wrote %s (%s d=%d, %d bytes) from %s, sealed by %s\n", res.Out, res.Spec.Family, res.Spec.Dim, res.Bytes, res.Source, models.SealPath(res.Out))
	fmt.Fprintf(stdout, "parity vs %s on %d inputs (half base Gaussian, half %s): max relative error energy %.2e, grad %.2e (tolerance %g)\n",
		res.Reference, res.N, res.DataLike, res.EnergyErr, res.GradErr, export.Tolerance)
	if res.LatentOut != "" {
		fmt.Fprintf(stdout, "wrote %s (exact latent reduction d=%d → r=%d for sampling; parity energy %.2e, grad %.2e)\n",
			res.LatentOut, res.Spec.Dim, res.LatentRank, res.LatentEnergyErr, res.LatentGradErr)
	}
	return cli.ExitOK
}
