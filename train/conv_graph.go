package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/jarzyn/jarzyn/models"
)

// convEnergy builds the parametric part of the conv family's energy for a
// batch x [n, C·H·W] (NCHW rows): the convolutions (convOp, bias included)
// each followed by its activation, the flatten (a no-op: rows are already
// (C, H, W) ordered), then the linear layers as mlpEnergy builds them. The
// quadratic base is added outside the graph (addQuadratic).
//
// With taps, every layer's input a_{l−1} and output z_l (before the
// activation) are recorded, the convolutions first, and each activation is
// its own op; without, each convolution and its activation are one op
// (applyConvAct).
func convEnergy[T Float](g *G.ExprGraph, spec models.Spec, params G.Nodes, x *G.Node, n int, taps *layerTaps) (*G.Node, error) {
	var err error
	must := func(nd *G.Node, e error) *G.Node {
		if e != nil && err == nil {
			err = e
		}
		return nd
	}
	h := x
	shapes := spec.ConvShapes()
	blk := blockConvs[T](spec, n)
	for i, l := range spec.Conv {
		in, slope := h, models.LeakySlopeOf(l.Activation, l.Slope)
		if taps == nil {
			h = must(applyConvAct[T](newConvGeom(shapes[i], l), l.Activation, slope, h, params[2*i], params[2*i+1], i > 0 && blk[i-1], blk[i], n))
			if err != nil {
				return nil, fmt.Errorf("train: building convolution %d: %w", i, err)
			}
			continue
		}
		h = must(applyConv[T](newConvGeom(shapes[i], l), h, params[2*i], params[2*i+1]))
		taps.inputs = append(taps.inputs, in)
		taps.pre = append(taps.pre, h)
		h = must(applyActivationSlope(l.Activation, slope, h))
		if err != nil {
			return nil, fmt.Errorf("train: building convolution %d: %w", i, err)
		}
	}
	off := len(spec.Conv)
	slope := models.LeakySlopeOf(spec.Activation, spec.LeakySlope)
	act := func(h *G.Node) (*G.Node, error) { return applyActivationSlope(spec.Activation, slope, h) }
	return linearStack[T](h, params[2*off:], len(spec.LinearLayers())-1, act, n, taps)
}

// cacheWidths is the width of each layer's input and output rows in the
// walker caches: [d, H1, …, 1] for the MLP; for conv [d, Out·Ho·Wo of each
// convolution…, Hidden…, 1] (the last convolution's width is FlatDim).
func cacheWidths(spec models.Spec) []int {
	if spec.Family != models.Conv {
		return spec.Layers()
	}
	w := []int{spec.Dim}
	for _, s := range spec.ConvShapes()[1:] {
		w = append(w, s[0]*s[1]*s[2])
	}
	return append(w, spec.LinearLayers()[1:]...)
}

// convKernels returns a kernel per convolution of spec, for
// weightedParamGrad.
func convKernels[T Float](spec models.Spec) []*convKernel[T] {
	var out []*convKernel[T]
	shapes := spec.ConvShapes()
	for i, l := range spec.Conv {
		out = append(out, newConvKernel[T](newConvGeom(shapes[i], l)))
	}
	return out
}

// blockConvs reports, per convolution of spec, whether its output goes to
// the next one blocked (convKernel's inBlk, outBlk) for batches of n: both
// have activations (so both are fused ops, whose derivatives are the only
// readers of the blocked matrices), both lay their patches out sample-minor
// and both cut the batch into the same chunks.
func blockConvs[T Float](spec models.Spec, n int) []bool {
	ks := convKernels[T](spec)
	out := make([]bool, len(spec.Conv))
	for i := 0; i+1 < len(ks); i++ {
		a, b := ks[i], ks[i+1]
		a.act, b.act = spec.Conv[i].Activation, spec.Conv[i+1].Activation
		na, _ := a.chunking(n)
		nb, _ := b.chunking(n)
		out[i] = a.fused() && b.fused() && a.minor(n) && b.minor(n) && na == nb
	}
	return out
}
