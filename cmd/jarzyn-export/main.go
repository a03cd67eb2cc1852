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
// With --classifier FILE it exports an image classifier instead (a
// classifier file of train.SaveClassifier, e.g. from `jarzyn-train
// classifier`): input x [batch, C, H, W], output probs [batch, K], metadata
// jarzyn.graph=classifier and jarzyn.classes (export.BuildClassifier),
// checked against the training engine's probabilities on --n images
// (default 256) before it is written:
//
//	jarzyn-export --classifier runs/mnist236/classifier.bin --out classifier.onnx
//
// Each file written is sealed: model.onnx.sha256 (and
// model.latent.onnx.sha256) beside it holds its SHA-256 in sha256sum's
// format (`sha256sum -c model.onnx.sha256` checks it). jarzyn-serve refuses
// a model that does not match its seal, warns about one without a seal, and
// skips the check with JARZYN_NO_VERIFY=1. Copy a model with its seal.
//
// Exit status: 0 on success, 2 for a usage error (bad flag, missing --out or
// --run/--checkpoint/--classifier, --classifier with --run or --checkpoint,
// extra arguments), 1 when the export fails (unreadable
// weights, ONNX Runtime missing, the parity check failing).
package main

import (
	"context"
	"flag"
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
	fs := cli.NewFlagSet(name, "usage: jarzyn-export --run DIR [--checkpoint FILE] --out model.onnx [--ort-lib PATH] [--n 1024]\n       jarzyn-export --classifier FILE --out classifier.onnx [--ort-lib PATH] [--n 256]", stderr)
	o := export.Options{Reference: reference, ReferenceName: "training engine", DType: "float32"}
	fs.StringVar(&o.RunDir, "run", "", "training run `dir`ectory (reads DIR/"+models.WeightsFile+")")
	fs.StringVar(&o.Checkpoint, "checkpoint", "", "weights or checkpoint `file` to export instead of the run's weights")
	fs.StringVar(&o.Out, "out", "", "ONNX `file` to write (required)")
	fs.StringVar(&o.ORTLib, "ort-lib", "", "ONNX Runtime shared library `path` (default: $JARZYN_ORT_LIB or .deps/onnxruntime)")
	fs.IntVar(&o.N, "n", 1024, "number of check inputs (≥ 2; with --classifier default 256)")
	classifier := fs.String("classifier", "", "export this classifier `file` (jarzyn-train classifier) instead of an energy model")
	if code, ok := cli.Parse(fs, args); !ok {
		return code
	}
	if code, ok := cli.NoArgs(fs); !ok {
		return code
	}
	if *classifier != "" {
		return runClassifier(ctx, fs, *classifier, o, stdout, stderr)
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

// runClassifier is jarzyn-export --classifier: the classifier file is
// exported and checked against the training engine's probabilities.
func runClassifier(ctx context.Context, fs *flag.FlagSet, path string, o export.Options, stdout, stderr io.Writer) int {
	n := o.N
	if !flagSet(fs, "n") {
		n = 256
	}
	switch {
	case o.RunDir != "" || o.Checkpoint != "":
		return cli.UsageError(stderr, name, "--classifier exports a classifier file: give neither --run nor --checkpoint with it")
	case o.Out == "":
		return cli.UsageError(stderr, name, "--out FILE is required")
	case n < 1:
		return cli.UsageError(stderr, name, "--n must be ≥ 1, got %d", n)
	}
	clf, err := train.LoadClassifier(path)
	if err != nil {
		return cli.Failure(stderr, name, err)
	}
	res, err := export.RunClassifier(ctx, export.ClassifierOptions{Path: path, Out: o.Out, ORTLib: o.ORTLib, N: n,
		Reference: clf.Predict, ReferenceName: "training engine"})
	if err != nil {
		return cli.Failure(stderr, name, err)
	}
	c := res.Classifier
	fmt.Fprintf(stdout, "wrote %s (classifier of %d×%d×%d images, classes %s, %d bytes) from %s, sealed by %s\n",
		res.Out, c.C, c.H, c.W, export.ClassesString(c.Classes), res.Bytes, res.Source, models.SealPath(res.Out))
	fmt.Fprintf(stdout, "parity vs %s on %d images: max probability error %.2e (tolerance %g)\n", res.Reference, res.N, res.ProbErr, export.Tolerance)
	return cli.ExitOK
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fs *flag.FlagSet, flagName string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == flagName })
	return set
}
