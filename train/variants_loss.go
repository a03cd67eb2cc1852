package train

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"github.com/jarzyn/jarzyn/smc"
)

// variantState is what the variants of variants_*.go keep in a trainer:
// scratch, the subsets of the current iteration and the movers.
type variantState[T Float] struct {
	// perm is scratch for drawing subsets (drawSubset).
	perm []int
	// lossSet holds this iteration's loss subset (loss.walkers), nil when
	// the loss uses every walker; lossA and lossP are scratch over it.
	lossSet      []int
	lossA, lossP []float64
	// movers holds one mover per population with walkers.move (nil otherwise).
	movers []*mover[T]
	// heur is the heuristic move kernel (nil: the exact ULA of the population).
	heur *heuristicKernel
	// warmupDone counts the warm-up steps taken (walkers.warmup_steps; checkpointed).
	warmupDone int
}

// drawSubset writes k distinct indices of [0, n), uniformly drawn from rng
// (a partial Fisher–Yates shuffle of the identity), into out[:k]. The draw
// depends only on rng's state, n and k.
func drawSubset(rng *rand.Rand, n, k int, perm, out []int) {
	perm = perm[:n]
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < k; i++ {
		j := i + rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	copy(out[:k], perm[:k])
}

// walkerCoefficients writes into t.negP the coefficients c_i of the walker
// term Σ_i c_i·∂θU(X_i) of the loss gradient at (θ_k, X_k) (docs/METHOD.md
// §2 step 2 and "Variants"): c_i = −p_i with p the normalised weights
// (softmax of A, or 1/N without weights), restricted with loss.walkers to a
// random subset S and renormalised inside it (p_i = 0 outside S); with
// loss.energy_reg λ, c_i = −p_i + 2λ·p_i·U_i, the gradient of
// λ·Σ_i p_i·U(X_i)² with p held fixed.
func (t *trainer[T]) walkerCoefficients(weighted bool) {
	n := t.pop.N()
	vs := &t.vs
	if L := t.cfg.Loss.Walkers; L > 0 && L < n {
		if cap(vs.lossSet) < L {
			vs.lossSet, vs.lossA, vs.lossP = make([]int, L), make([]float64, L), make([]float64, L)
		}
		vs.lossSet, vs.lossA, vs.lossP = vs.lossSet[:L], vs.lossA[:L], vs.lossP[:L]
		drawSubset(t.rng, n, L, vs.perm, vs.lossSet)
		for s, i := range vs.lossSet {
			vs.lossA[s] = t.pop.A[i]
		}
		if weighted {
			smc.Normalize(vs.lossA, vs.lossP)
		} else {
			for s := range vs.lossP {
				vs.lossP[s] = 1 / float64(L)
			}
		}
		clear(t.negP)
		for s, i := range vs.lossSet {
			t.negP[i] = -vs.lossP[s]
		}
	} else {
		vs.lossSet = nil
		coef := t.pop.Weights()
		if !weighted {
			for i := range coef {
				coef[i] = 1 / float64(n)
			}
		}
		for i, p := range coef {
			t.negP[i] = -p
		}
	}
	if lambda := t.cfg.Loss.EnergyReg; lambda > 0 {
		for i, c := range t.negP {
			t.negP[i] = c - 2*lambda*c*t.pop.U[i]
		}
	}
}

// energyReg holds the input of the energy regulariser in the data-term
// graph: the base energy of each data row, and scratch.
type energyReg[T Float] struct {
	q []T
	u []float64
}

// addEnergyReg returns loss + reg·mean((ud + q)²) for the graph energies ud
// of the b data rows and an input q that holds their base energies (the
// quadratic term that the graphs leave out, see addQuadratic): ud + q is
// U(data), and the θ-gradient of the new term is 2·reg·mean(U·∂θU).
func addEnergyReg[T Float](g *G.ExprGraph, ud, loss *G.Node, b int, reg float64) (*G.Node, *energyReg[T], error) {
	qn, q := inputVector[T](g, "data_base_energy", b)
	u, err := G.Add(ud, qn)
	if err != nil {
		return nil, nil, fmt.Errorf("train: building the energy regulariser: %w", err)
	}
	sq, err := G.Square(u)
	if err != nil {
		return nil, nil, fmt.Errorf("train: building the energy regulariser: %w", err)
	}
	m, err := G.Mean(sq)
	if err != nil {
		return nil, nil, fmt.Errorf("train: building the energy regulariser: %w", err)
	}
	term, err := G.Mul(g.AddNode(G.NewConstant(T(reg))), m)
	if err != nil {
		return nil, nil, fmt.Errorf("train: building the energy regulariser: %w", err)
	}
	loss, err = G.Add(loss, term)
	if err != nil {
		return nil, nil, fmt.Errorf("train: building the energy regulariser: %w", err)
	}
	return loss, &energyReg[T]{q: q, u: make([]float64, b)}, nil
}

// setBaseEnergies writes the base energy of every data row into q (with
// loss.energy_reg; a no-op otherwise).
func (p *paramGrad[T]) setBaseEnergies() {
	r := p.reg
	if r == nil {
		return
	}
	clear(r.u)
	addQuadratic[T](p.quad, p.Data, p.d, r.u, nil)
	for i, v := range r.u {
		r.q[i] = T(v)
	}
}
