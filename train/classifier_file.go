package train

import (
	"fmt"

	"github.com/jarzyn/jarzyn/models"
)

// SaveClassifier writes c to path as a sealed container file (kind
// models.ClassifierKind: its models.ClassifierHeader — classes, input
// shape, hidden width, accuracy — and parameter tensors), atomically.
func SaveClassifier(path string, c *Classifier) error {
	f := models.NewContainer(models.ClassifierKind)
	h := models.ClassifierHeader{Classes: c.Classes, C: c.C, H: c.H, W: c.W, Hidden: c.Hidden, Accuracy: c.TestAccuracy}
	if err := f.PutJSON(models.ClassifierHeaderSection, h); err != nil {
		return err
	}
	for k, p := range c.Params {
		f.PutFloats(models.ClassifierParamSection(k), p)
	}
	return models.WriteContainer(path, f)
}

// LoadClassifier reads a classifier written by SaveClassifier, checking
// every tensor's size against the architecture its header describes.
func LoadClassifier(path string) (*Classifier, error) {
	f, err := models.ReadContainer(path)
	if err != nil {
		return nil, err
	}
	if f.Kind != models.ClassifierKind {
		return nil, fmt.Errorf("train: %s is a %q file, not a classifier", path, f.Kind)
	}
	var h models.ClassifierHeader
	if err := f.JSON(models.ClassifierHeaderSection, &h); err != nil {
		return nil, err
	}
	const maxSide, maxHidden = 1024, 1 << 16
	if h.C < 1 || h.C > 16 || h.H < 1 || h.H > maxSide || h.W < 1 || h.W > maxSide || h.Hidden < 1 || h.Hidden > maxHidden {
		return nil, fmt.Errorf("train: %s: classifier input %d×%d×%d or hidden width %d out of range", path, h.C, h.H, h.W, h.Hidden)
	}
	if len(h.Classes) > 1000 {
		return nil, fmt.Errorf("train: %s: %d classes, at most 1000", path, len(h.Classes))
	}
	if _, err := classIndex(h.Classes); err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	if !(h.Accuracy >= 0 && h.Accuracy <= 1) {
		return nil, fmt.Errorf("train: %s: classifier accuracy %v is not in [0, 1]", path, h.Accuracy)
	}
	c := &Classifier{Classes: h.Classes, C: h.C, H: h.H, W: h.W, Hidden: h.Hidden, TestAccuracy: h.Accuracy}
	for k, shape := range c.arch().shapes() {
		v, err := f.Floats(models.ClassifierParamSection(k))
		if err != nil {
			return nil, err
		}
		if want := prodInts(shape); len(v) != want {
			return nil, fmt.Errorf("train: %s: parameter %d has %d values, the architecture needs %d", path, k, len(v), want)
		}
		c.Params = append(c.Params, v)
	}
	return c, nil
}
