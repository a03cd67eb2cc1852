package train

import (
	"errors"
	"testing"

	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// data.kind images takes its teacher's means from the prototype set in the
// model's input shape, and refuses what cannot work, naming the key.
func TestImagesTeacherConfig(t *testing.T) {
	conv := func() Config {
		c := DefaultConfig()
		c.Model.Spec = models.Spec{Family: models.Conv, Dim: 64, InputShape: []int{1, 8, 8},
			Conv:   []models.ConvLayer{{Out: 4, Kernel: 3, Stride: 2, Pad: 1, Activation: models.SiLU}},
			Hidden: []int{8}, Activation: models.SiLU, BaseStd: 1}
		c.Data.Kind = "images"
		c.Data.Teacher.Masses = []float64{4, 3, 2, 1}
		c.Data.Teacher.Stds = []float64{0.5, 0.5, 0.5, 0.5}
		return c
	}
	c := conv()
	teacher, err := c.teacher()
	if err != nil {
		t.Fatal(err)
	}
	if len(teacher.Means) != 4 || len(teacher.Means[0]) != 64 || teacher.Masses[0] != 0.4 {
		t.Fatalf("teacher: %d means of %d values, masses %v", len(teacher.Means), len(teacher.Means[0]), teacher.Masses)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"mlp", func(c *Config) { c.Model.Spec = DefaultConfig().Model.Spec }, "data.kind"},
		{"unknown set", func(c *Config) { c.Data.Prototypes = "digits" }, "data.prototypes"},
		{"three masses", func(c *Config) { c.Data.Teacher.Masses = []float64{1, 1, 1} }, "data.teacher.masses"},
		{"kind", func(c *Config) { c.Data.Kind = "cifar100" }, "data.kind"},
		{"mnist shape", func(c *Config) { c.Data.Kind = "mnist" }, "model.dim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conv()
			tc.edit(&c)
			err := c.Validate()
			var ke *config.KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key {
				t.Fatalf("Validate = %v, want a KeyError for %s", err, tc.key)
			}
		})
	}
}
