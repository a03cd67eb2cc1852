package serve

// checkBase refuses what the sampler cannot do for a model whose base is
// N(μ0, Σ) with a low-rank-plus-scalar Σ (model.base_fit pca, docs/METHOD.md
// §8): its draws from the base (init base) and its weighted annealing from
// the base both assume N(μ0, σ0²I). Plain ULA from uniform starting points
// only evaluates the exported energy, which includes the whole base term,
// and works unchanged. The error is a *FieldError for init (or weighted).
func checkBase(info ModelInfo, cfg SampleConfig) error {
	if info.Spec == nil || info.Spec.BaseRank() == 0 {
		return nil
	}
	if cfg.Weighted {
		return fieldErr("weighted", "is not supported for this model: its base is N(μ0, Σ) with %d principal directions (model.base_fit pca), and weighted sampling anneals from an isotropic base; sample unweighted with init uniform", info.Spec.BaseRank())
	}
	if cfg.Init == "" || cfg.Init == InitBase {
		return fieldErr("init", "base is not supported for this model: its base is N(μ0, Σ) with %d principal directions (model.base_fit pca), and the sampler draws from an isotropic base; use init uniform", info.Spec.BaseRank())
	}
	return nil
}
