package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/models"
)

// ClassifierRunOptions configures RunClassifier.
type ClassifierRunOptions struct {
	// MNISTDir holds the MNIST IDX files (datasets.LoadMNIST).
	MNISTDir string
	// Classes are the digits to tell apart, e.g. [2, 3, 6].
	Classes []int
	// OutDir receives classifier.bin and summary.json.
	OutDir string
	// Config sets the training (ClassifierConfig's defaults apply).
	Config ClassifierConfig
}

// ClassifierSummary is the summary.json of a classifier run.
type ClassifierSummary struct {
	Classes []int `json:"classes"`
	// ClassifierAccuracy is the share of the t10k images of Classes labelled right.
	ClassifierAccuracy float64 `json:"classifier_accuracy"`
	TrainImages        int     `json:"train_images"`
	TestImages         int     `json:"test_images"`
	Epochs             int     `json:"epochs"`
	Seed               uint64  `json:"seed"`
	Seconds            float64 `json:"seconds"`
	// Classifier is the classifier file written.
	Classifier string `json:"classifier"`
}

// RunClassifier trains the classifier of docs/METHOD.md §5.2's metric on
// every MNIST training image of o.Classes, measures its accuracy on the
// t10k images of those classes, and writes OutDir/classifier.bin (with the
// accuracy in it) and OutDir/summary.json.
func RunClassifier(ctx context.Context, o ClassifierRunOptions) (*ClassifierSummary, error) {
	trainSet, err := datasets.LoadMNIST(o.MNISTDir, "train")
	if err != nil {
		return nil, err
	}
	testSet, err := datasets.LoadMNIST(o.MNISTDir, "t10k")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	clf, err := TrainClassifier(ctx, trainSet, o.Classes, o.Config)
	if err != nil {
		return nil, err
	}
	if clf.TestAccuracy, err = clf.Accuracy(testSet); err != nil {
		return nil, err
	}
	cfg, _ := o.Config.withDefaults()
	sum := &ClassifierSummary{Classes: clf.Classes, ClassifierAccuracy: clf.TestAccuracy, Epochs: cfg.Epochs, Seed: cfg.Seed,
		Seconds: time.Since(start).Seconds(), Classifier: filepath.Join(o.OutDir, models.ClassifierFile)}
	in := map[int]bool{}
	for _, c := range o.Classes {
		in[c] = true
	}
	for _, l := range trainSet.Labels {
		if in[l] {
			sum.TrainImages++
		}
	}
	for _, l := range testSet.Labels {
		if in[l] {
			sum.TestImages++
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := SaveClassifier(sum.Classifier, clf); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(o.OutDir, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return sum, nil
}
