package train

import (
	"math"

	"github.com/jarzyn/jarzyn/internal/config"
)

// The variants of the training loop that the image runs need
// (docs/METHOD.md §2, "Variants", and the paper's heuristic setting of
// §5.2): moving a random subset of the walkers (walkers.move), the loss on
// a random subset (loss.walkers), the energy-squared regulariser
// (loss.energy_reg), the resampling criteria (resample.criterion) and the
// heuristic moves behind walkers.heuristic.

// validateVariants checks the keys of the variants.
func (c *Config) validateVariants() error {
	bad := config.Errorf
	w := c.Walkers
	if w.Move < 0 || w.Move > w.N {
		return bad("walkers.move", "must be in [0, walkers.n=%d], got %d", w.N, w.Move)
	}
	if w.Move > 0 && w.Move < w.N && w.Kernel == "mala" {
		return bad("walkers.move", "moves a subset with the ula kernel only, not walkers.kernel mala (got %d of %d walkers)", w.Move, w.N)
	}
	if c.Loss.Walkers < 0 || c.Loss.Walkers > w.N {
		return bad("loss.walkers", "must be in [0, walkers.n=%d], got %d", w.N, c.Loss.Walkers)
	}
	if !(c.Loss.EnergyReg >= 0) || math.IsInf(c.Loss.EnergyReg, 0) {
		return bad("loss.energy_reg", "must be finite and >= 0, got %v", c.Loss.EnergyReg)
	}
	switch c.Resample.Criterion {
	case "ess":
	case "std":
		if !(c.Resample.Threshold >= 0) {
			return bad("resample.threshold", "must be >= 0 for resample.criterion std, got %v", c.Resample.Threshold)
		}
	case "loss_ess":
		if n := c.lossWalkers(); !(c.Resample.Threshold >= 0) || c.Resample.Threshold > float64(n) {
			return bad("resample.threshold", "must be in [0, %d] (the loss subset's size) for resample.criterion loss_ess, got %v", n, c.Resample.Threshold)
		}
	default:
		return bad("resample.criterion", "must be ess, std or loss_ess, got %q", c.Resample.Criterion)
	}
	// the heuristic keys: each refused unless walkers.heuristic is true
	if !(w.NoiseStd >= 0) || math.IsInf(w.NoiseStd, 0) {
		return bad("walkers.noise_std", "must be finite and >= 0, got %v", w.NoiseStd)
	}
	if !(w.DriftClamp >= 0) || math.IsInf(w.DriftClamp, 0) {
		return bad("walkers.drift_clamp", "must be finite and >= 0, got %v", w.DriftClamp)
	}
	if w.WarmupSteps < 0 || w.WarmupSteps > MaxIterations {
		return bad("walkers.warmup_steps", "must be in [0, %d], got %d", MaxIterations, w.WarmupSteps)
	}
	if !w.Heuristic {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"walkers.noise_std", w.NoiseStd != 0},
			{"walkers.drift_clamp", w.DriftClamp != 0},
			{"walkers.revert_outside", w.RevertOutside},
			{"walkers.warmup_steps", w.WarmupSteps != 0},
		} {
			if k.set {
				return bad(k.key, "is a heuristic setting whose weights are not exact: it needs walkers.heuristic: true")
			}
		}
		return nil
	}
	if w.Kernel == "mala" {
		return bad("walkers.heuristic", "applies to the ula kernel, not walkers.kernel mala")
	}
	if c.basePreconditioned() {
		return bad("walkers.heuristic", "applies to the unpreconditioned ula kernel: set walkers.preconditioner none")
	}
	return nil
}

// lossWalkers is the size of the loss subset (all walkers when
// loss.walkers is 0).
func (c *Config) lossWalkers() int {
	if c.Loss.Walkers == 0 {
		return c.Walkers.N
	}
	return c.Loss.Walkers
}

// subsetMoves reports whether only a subset of the walkers moves per
// iteration (walkers.move in (0, walkers.n)).
func (c *Config) subsetMoves() bool { return c.Walkers.Move > 0 && c.Walkers.Move < c.Walkers.N }

// heuristicMoves reports whether the moves leave the exact ULA kernel
// (a decoupled noise, a drift clamp or reverting).
func (c *Config) heuristicMoves() bool {
	w := c.Walkers
	return w.Heuristic && (w.NoiseStd != 0 || w.DriftClamp != 0 || w.RevertOutside)
}

// weightLabel is what plot titles append to say that the weights are
// heuristic ("" when they are exact).
func (c *Config) weightLabel() string {
	if c.Walkers.Heuristic {
		return " (heuristic weights)"
	}
	return ""
}
