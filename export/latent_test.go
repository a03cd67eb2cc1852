package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// An MLP whose first layer is narrower than its input is exported with a
// latent model beside it that matches the reference (V = U − |p|²/2σ0²,
// ∇V = ∇U·Q) and names the energy file by its SHA-256; a model without a
// reduction removes a stale latent file.
func TestRunWritesLatent(t *testing.T) {
	needORT(t)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "model.onnx")
	for _, c := range []struct {
		name   string
		p      *models.Params
		latent bool
	}{
		{"narrow first layer", testMLP(t, models.SiLU, 12, []int{4, 6}, 3), true},
		{"wide first layer", testMLP(t, models.SiLU, 2, []int{8}, 3), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := t.TempDir()
			writeWeights(t, run, c.p, nil)
			res, err := Run(context.Background(), Options{RunDir: run, Out: out})
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(models.LatentPath(out))
			if !c.latent {
				if res.LatentOut != "" || statErr == nil {
					t.Fatalf("latent written for %v: %+v", c.p.Spec, res)
				}
				return
			}
			if res.LatentOut != models.LatentPath(out) || res.LatentRank != 4 || statErr != nil {
				t.Fatalf("result %+v, stat %v", res, statErr)
			}
			if res.LatentEnergyErr > Tolerance || res.LatentGradErr > Tolerance || res.LatentEnergyErr == 0 {
				t.Errorf("latent parity energy %g grad %g", res.LatentEnergyErr, res.LatentGradErr)
			}
			model, _ := os.ReadFile(out)
			latent, _ := os.ReadFile(res.LatentOut)
			props, _, _, _, version := readBack(t, latent)
			m, err := models.ParseONNXMeta(props, version)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(model)
			if m.Graph != models.GraphLatent || m.LatentOf != hex.EncodeToString(sum[:]) || m.Dim() != 4 || m.BaseStd != c.p.Spec.BaseStd {
				t.Errorf("latent metadata %+v", m)
			}
		})
	}
}
