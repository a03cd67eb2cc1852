package export

import (
	"fmt"
	"strconv"
)

// builder assembles an ONNX graph. Every operator helper takes the node's
// name, which is also the name of its (single) output value, and returns that
// output name, so graphs read like straight-line code:
//
//	h := b.Gemm("layer0/gemm", "x", "param/w0", "param/b0", false)
//	h = b.Tanh("layer0/tanh", h)
//
// The first error (a duplicate name) is kept in err and reported by graph.
type builder struct {
	g      graphProto
	names  map[string]bool
	consts map[string]string
	err    error
}

func newBuilder(name, doc string) *builder {
	return &builder{g: graphProto{name: name, doc: doc}, names: map[string]bool{}, consts: map[string]string{}}
}

// claim registers a value name, recording an error on a duplicate.
func (b *builder) claim(name string) {
	if b.names[name] && b.err == nil {
		b.err = fmt.Errorf("export: graph %s: value name %q used twice", b.g.name, name)
	}
	b.names[name] = true
}

// graph returns the finished graph or the first error.
func (b *builder) graph() (*graphProto, error) {
	if b.err != nil {
		return nil, b.err
	}
	return &b.g, nil
}

// input declares a float32 graph input.
func (b *builder) input(name, doc string, shape ...dim) string {
	b.claim(name)
	b.g.inputs = append(b.g.inputs, valueInfo{name: name, elemType: dtFloat, shape: shape, doc: doc})
	return name
}

// output declares an existing value as a float32 graph output.
func (b *builder) output(name, doc string, shape ...dim) {
	if !b.names[name] && b.err == nil {
		b.err = fmt.Errorf("export: graph %s: output %q is not computed by any node", b.g.name, name)
	}
	b.g.outputs = append(b.g.outputs, valueInfo{name: name, elemType: dtFloat, shape: shape, doc: doc})
}

// initializer adds a constant tensor and returns its name.
func (b *builder) initializer(t tensorProto) string {
	b.claim(t.name)
	b.g.inits = append(b.g.inits, t)
	return t.name
}

// floats adds a float32 initializer with the given shape.
func (b *builder) floats(name string, v []float64, shape ...int) string {
	dims := make([]int64, len(shape))
	for i, s := range shape {
		dims[i] = int64(s)
	}
	return b.initializer(floatTensor(name, dims, v))
}

// scalar returns a float32 scalar constant, shared between uses.
func (b *builder) scalar(v float64) string {
	key := "f/" + strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.initializer(floatTensor("const/"+strconv.FormatFloat(float64(float32(v)), 'g', -1, 32), nil, []float64{v}))
	b.consts[key] = n
	return n
}

// axes returns a 1-D int64 constant listing axes, as the opset-13 Reduce/Squeeze
// operators take them, shared between uses.
func (b *builder) axes(ax ...int64) string {
	key := fmt.Sprint("axes", ax)
	if n, ok := b.consts[key]; ok {
		return n
	}
	name := "const/axes"
	for _, a := range ax {
		name += "_" + strconv.FormatInt(a, 10)
	}
	n := b.initializer(int64Tensor(name, []int64{int64(len(ax))}, ax))
	b.consts[key] = n
	return n
}

// node appends an operator whose single output is named like the node.
func (b *builder) node(name, op string, inputs []string, attrs ...attribute) string {
	b.claim(name)
	b.g.nodes = append(b.g.nodes, nodeProto{name: name, opType: op, inputs: inputs, outputs: []string{name}, attrs: attrs})
	return name
}

// doc sets the doc_string of the most recently added node.
func (b *builder) doc(s string) {
	if len(b.g.nodes) > 0 {
		b.g.nodes[len(b.g.nodes)-1].doc = s
	}
}

func intAttr(name string, v int64) attribute { return attribute{name: name, typ: attrInt, i: v} }

func intsAttr(name string, v ...int64) attribute {
	return attribute{name: name, typ: attrInts, ints: v}
}

func boolInt(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// Elementwise operators with numpy-style broadcasting.

func (b *builder) Add(name, x, y string) string { return b.node(name, "Add", []string{x, y}) }
func (b *builder) Sub(name, x, y string) string { return b.node(name, "Sub", []string{x, y}) }
func (b *builder) Mul(name, x, y string) string { return b.node(name, "Mul", []string{x, y}) }
func (b *builder) Div(name, x, y string) string { return b.node(name, "Div", []string{x, y}) }

// Unary operators.

func (b *builder) Exp(name, x string) string      { return b.node(name, "Exp", []string{x}) }
func (b *builder) Log(name, x string) string      { return b.node(name, "Log", []string{x}) }
func (b *builder) Sigmoid(name, x string) string  { return b.node(name, "Sigmoid", []string{x}) }
func (b *builder) Tanh(name, x string) string     { return b.node(name, "Tanh", []string{x}) }
func (b *builder) Softplus(name, x string) string { return b.node(name, "Softplus", []string{x}) }

// MatMul is x·w.
func (b *builder) MatMul(name, x, w string) string { return b.node(name, "MatMul", []string{x, w}) }

// Gemm is x·w + c (x·wᵀ + c with transB) for 2-D x and w; c may be "" (none)
// and broadcasts to the result.
func (b *builder) Gemm(name, x, w, c string, transB bool) string {
	in := []string{x, w}
	if c != "" {
		in = append(in, c)
	}
	return b.node(name, "Gemm", in, intAttr("transB", boolInt(transB)))
}

// ReduceSum sums over one axis (opset 13: axes as an input).
func (b *builder) ReduceSum(name, x string, axis int64, keepDims bool) string {
	return b.node(name, "ReduceSum", []string{x, b.axes(axis)}, intAttr("keepdims", boolInt(keepDims)))
}

// ReduceMax takes the maximum over one axis (opset ≤ 17: axes as an attribute).
func (b *builder) ReduceMax(name, x string, axis int64, keepDims bool) string {
	return b.node(name, "ReduceMax", []string{x}, intsAttr("axes", axis), intAttr("keepdims", boolInt(keepDims)))
}

// ReduceMin takes the minimum over one axis (opset ≤ 17: axes as an attribute).
func (b *builder) ReduceMin(name, x string, axis int64, keepDims bool) string {
	return b.node(name, "ReduceMin", []string{x}, intsAttr("axes", axis), intAttr("keepdims", boolInt(keepDims)))
}

// Squeeze removes one axis of size 1.
func (b *builder) Squeeze(name, x string, axis int64) string {
	return b.node(name, "Squeeze", []string{x, b.axes(axis)})
}

// Unsqueeze inserts one axis of size 1.
func (b *builder) Unsqueeze(name, x string, axis int64) string {
	return b.node(name, "Unsqueeze", []string{x, b.axes(axis)})
}
