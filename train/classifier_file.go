package train

import (
	"fmt"

	"github.com/jarzyn/jarzyn/models"
)

// classifierHeader is the JSON section of a classifier file.
type classifierHeader struct {
	Classes []int `json:"classes"`
	C       int   `json:"c"`
	H       int   `json:"h"`
	W       int   `json:"w"`
	Hidden  int   `json:"hidden"`
}

// classifierKind is the container kind of a classifier file.
const classifierKind = "classifier"

// SaveClassifier writes c to path as a sealed container file (kind
// "classifier": its classes, input shape, hidden width and parameter
// tensors), atomically.
func SaveClassifier(path string, c *Classifier) error {
	f := models.NewContainer(classifierKind)
	if err := f.PutJSON("classifier", classifierHeader{Classes: c.Classes, C: c.C, H: c.H, W: c.W, Hidden: c.Hidden}); err != nil {
		return err
	}
	for k, p := range c.Params {
		f.PutFloats(fmt.Sprintf("param/%d", k), p)
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
	if f.Kind != classifierKind {
		return nil, fmt.Errorf("train: %s is a %q file, not a classifier", path, f.Kind)
	}
	var h classifierHeader
	if err := f.JSON("classifier", &h); err != nil {
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
	c := &Classifier{Classes: h.Classes, C: h.C, H: h.H, W: h.W, Hidden: h.Hidden}
	for k, shape := range c.arch().shapes() {
		v, err := f.Floats(fmt.Sprintf("param/%d", k))
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
