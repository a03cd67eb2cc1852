package export

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGraphGolden keeps a listing of every exported graph (DumpGraph) under
// testdata/, so a change to what export writes shows in review. After an
// intended change: go test ./export -run GraphGolden -args -update.
func TestGraphGolden(t *testing.T) {
	info := models.TrainingInfo{Method: "jarzynski", StepSize: 0.1, DataMin: -4, DataMax: 4}
	mlp := testMLP(t, models.SiLU, 2, []int{8, 8}, 1)
	wide := testMLP(t, models.Tanh, 6, []int{3}, 2)
	lat, ok := wide.Latent()
	if !ok {
		t.Fatal("no latent reduction")
	}
	energy := func(p *models.Params) func() ([]byte, error) {
		return func() ([]byte, error) { return Build(p, info) }
	}
	for _, c := range []struct {
		name  string
		build func() ([]byte, error)
	}{
		{"gmm", energy(testGMM(t, 3, 2, 1))},
		{"mlp_silu", energy(mlp)},
		{"mlp_softplus", energy(testMLP(t, models.Softplus, 3, []int{5}, 1))},
		{"conv", energy(testConvGolden(t))},
		{"mlp_fused", func() ([]byte, error) { return BuildFused(mlp) }},
		{"mlp_fused_grad", func() ([]byte, error) { return BuildFusedGrad(mlp) }},
		{"mlp_latent", func() ([]byte, error) {
			full, err := Build(wide, info)
			if err != nil {
				return nil, err
			}
			return BuildLatent(lat, wide, info, full)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			model, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DumpGraph(model)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "graph_"+c.name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("the graph differs from %s; if the change is intended, run go test ./export -run GraphGolden -args -update and review the diff.\ngot:\n%s", path, got)
			}
		})
	}
}
