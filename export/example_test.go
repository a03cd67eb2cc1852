package export_test

import (
	"fmt"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// Export a two-mode mixture and check it against the float64 reference.
func Example() {
	p, _ := models.NewParams(models.Spec{Family: models.GMM, Dim: 2, Modes: 2})
	copy(p.Get("means").Data, []float64{-3, 0, 2, 1})
	copy(p.Get("log_mass").Data, []float64{0, 0.5})

	model, err := export.Build(p, models.TrainingInfo{Method: "jarzynski", StepSize: 0.1, DataMin: -4, DataMax: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	x := []float64{0, 0, -3, 0.5, 2, 1}
	u, g, _ := export.ModelsReference(p, x, 3, "float64")
	eErr, gErr, err := export.Parity(model, x, 3, u, g)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("energy within tolerance:", eErr <= export.Tolerance)
	fmt.Println("grad within tolerance:", gErr <= export.Tolerance)
	// Output:
	// energy within tolerance: true
	// grad within tolerance: true
}
