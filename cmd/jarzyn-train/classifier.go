package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/internal/cli"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/train"
)

// runClassifier is `jarzyn-train classifier`: it trains the image
// classifier that labels walkers (docs/METHOD.md §5.2) on MNIST digits and
// writes DIR/classifier.bin, DIR/summary.json (classifier_accuracy on the
// t10k digits of those classes) and DIR/classifier.onnx (checked against
// the training engine and sealed, as jarzyn-export --classifier does).
func runClassifier(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const sub = name + " classifier"
	flags := cli.NewFlagSet(sub, "usage: jarzyn-train classifier --classes 2,3,6 --out DIR [--mnist .deps/mnist] [--epochs 8] [--seed 0]", stderr)
	var (
		mnist   = flags.String("mnist", filepath.Join(".deps", "mnist"), "`dir`ectory of the MNIST IDX files")
		classes = flags.String("classes", "", "comma-separated digits to tell apart, e.g. 2,3,6 (required)")
		out     = flags.String("out", "", "output `dir` (required): classifier.bin, classifier.onnx, summary.json")
		ortLib  = flags.String("ort-lib", "", "ONNX Runtime shared library `path` for the ONNX check (default: $JARZYN_ORT_LIB or .deps/onnxruntime)")
		cfg     train.ClassifierConfig
	)
	flags.IntVar(&cfg.Epochs, "epochs", 8, "passes over the training images")
	flags.IntVar(&cfg.BatchSize, "batch", 128, "images per Adam step")
	flags.Float64Var(&cfg.LR, "lr", 1e-3, "Adam's learning rate")
	flags.IntVar(&cfg.Hidden, "hidden", 64, "width of the hidden linear layer")
	flags.Uint64Var(&cfg.Seed, "seed", 0, "initialisation and shuffling seed")
	if code, ok := cli.Parse(flags, args); !ok {
		return code
	}
	if code, ok := cli.NoArgs(flags); !ok {
		return code
	}
	if *out == "" || *classes == "" {
		return cli.UsageError(stderr, sub, "--classes and --out are required")
	}
	var labels []int
	for _, s := range strings.Split(*classes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 0 || v > 9 {
			return cli.UsageError(stderr, sub, "--classes: want MNIST digits 0..9 separated by commas, got %q", *classes)
		}
		labels = append(labels, v)
	}
	if cfg.Epochs < 1 || cfg.BatchSize < 1 || cfg.Hidden < 1 || !(cfg.LR > 0) {
		return cli.UsageError(stderr, sub, "--epochs, --batch and --hidden must be ≥ 1 and --lr > 0")
	}
	sum, err := train.RunClassifier(ctx, train.ClassifierRunOptions{MNISTDir: *mnist, Classes: labels, OutDir: *out, Config: cfg})
	if err != nil {
		return cli.Failure(stderr, sub, err)
	}
	fmt.Fprintf(stdout, "classifier %v: accuracy %.4f on %d t10k images (trained on %d in %.1fs): %s\n",
		sum.Classes, sum.ClassifierAccuracy, sum.TestImages, sum.TrainImages, sum.Seconds, sum.Classifier)
	clf, err := train.LoadClassifier(sum.Classifier)
	if err != nil {
		return cli.Failure(stderr, sub, err)
	}
	onnx := filepath.Join(*out, models.ClassifierModelFile)
	res, err := export.RunClassifier(ctx, export.ClassifierOptions{Path: sum.Classifier, Out: onnx, ORTLib: *ortLib,
		Reference: clf.Predict, ReferenceName: "training engine"})
	if err != nil {
		return cli.Failure(stderr, sub, fmt.Errorf("%w (the classifier file is written; export it later with jarzyn-export --classifier %s)", err, sum.Classifier))
	}
	fmt.Fprintf(stdout, "wrote %s (parity vs training engine on %d images: max probability error %.2e), sealed by %s\n",
		res.Out, res.N, res.ProbErr, models.SealPath(res.Out))
	return cli.ExitOK
}
