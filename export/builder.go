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
//
// A child builder (for a Loop body) prefixes its node and input names and
// puts every initializer and constant into its root graph, where the body
// sees it as an outer-scope value.
type builder struct {
	g       graphProto
	prefix  string
	root    *builder // nil for the main graph
	names   map[string]bool
	consts  map[string]string
	initIdx map[string]int
	err     error
	// fused makes activation use the fused operators of FusedDomain
	// (BuildFused); set on the root builder.
	fused bool
	// gradOnly (with fused) leaves the energy out (BuildFusedGrad).
	gradOnly bool
}

func newBuilder(name, doc string) *builder {
	return &builder{g: graphProto{name: name, doc: doc}, names: map[string]bool{}, consts: map[string]string{}, initIdx: map[string]int{}}
}

// child returns a builder for a subgraph whose names start with prefix.
func (b *builder) child(prefix, name, doc string) *builder {
	c := newBuilder(name, doc)
	c.prefix, c.root = prefix, b.top()
	return c
}

func (b *builder) top() *builder {
	if b.root != nil {
		return b.root
	}
	return b
}

// fail records the first error.
func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// claim registers a value name, recording an error on a duplicate (also
// one that would shadow a name of the root graph).
func (b *builder) claim(name string) {
	if b.names[name] || (b.root != nil && b.root.names[name]) {
		b.fail(fmt.Errorf("export: graph %s: value name %q used twice", b.g.name, name))
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

// input declares a float32 graph input and returns its (prefixed) name.
func (b *builder) input(name, doc string, shape ...dim) string {
	return b.typedInput(name, dtFloat, doc, shape...)
}

// typedInput declares a graph input of the given element type.
func (b *builder) typedInput(name string, elemType int32, doc string, shape ...dim) string {
	name = b.prefix + name
	b.claim(name)
	b.g.inputs = append(b.g.inputs, valueInfo{name: name, elemType: elemType, shape: shape, doc: doc})
	return name
}

// output declares an existing value (full name) as a float32 graph output.
func (b *builder) output(name, doc string, shape ...dim) {
	b.typedOutput(name, dtFloat, doc, shape...)
}

// typedOutput declares an existing value as a graph output of the given type.
func (b *builder) typedOutput(name string, elemType int32, doc string, shape ...dim) {
	if !b.names[name] {
		b.fail(fmt.Errorf("export: graph %s: output %q is not computed by any node", b.g.name, name))
	}
	b.g.outputs = append(b.g.outputs, valueInfo{name: name, elemType: elemType, shape: shape, doc: doc})
}

// initializer adds a constant tensor to the root graph and returns its name.
// Adding the same name again with the same contents returns the existing one
// (a Loop body rebuilding the energy reuses the outer weights).
func (b *builder) initializer(t tensorProto) string {
	r := b.top()
	if i, ok := r.initIdx[t.name]; ok {
		old := r.g.inits[i]
		if old.dataType != t.dataType || fmt.Sprint(old.dims) != fmt.Sprint(t.dims) || string(old.raw) != string(t.raw) {
			r.fail(fmt.Errorf("export: graph %s: initializer %q defined twice with different contents", r.g.name, t.name))
		}
		return t.name
	}
	r.claim(t.name)
	r.initIdx[t.name] = len(r.g.inits)
	r.g.inits = append(r.g.inits, t)
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
	r := b.top()
	key := "f/" + strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if n, ok := r.consts[key]; ok {
		return n
	}
	n := r.initializer(floatTensor("const/"+strconv.FormatFloat(float64(float32(v)), 'g', -1, 32), nil, []float64{v}))
	r.consts[key] = n
	return n
}

// axes returns a 1-D int64 constant listing axes, as the opset-13 Reduce/Squeeze
// operators take them, shared between uses.
func (b *builder) axes(ax ...int64) string {
	r := b.top()
	key := fmt.Sprint("axes", ax)
	if n, ok := r.consts[key]; ok {
		return n
	}
	name := "const/axes"
	for _, a := range ax {
		name += "_" + strconv.FormatInt(a, 10)
	}
	n := r.initializer(int64Tensor(name, []int64{int64(len(ax))}, ax))
	r.consts[key] = n
	return n
}

// node appends an operator whose single output is named like the node
// (with the builder's prefix) and returns that name.
func (b *builder) node(name, op string, inputs []string, attrs ...attribute) string {
	name = b.prefix + name
	b.claim(name)
	b.g.nodes = append(b.g.nodes, nodeProto{name: name, opType: op, inputs: inputs, outputs: []string{name}, attrs: attrs})
	return name
}

// fusedPair appends an operator of FusedDomain with two outputs named
// name+"/"+out0 and name+"/"+out1.
func (b *builder) fusedPair(name, op string, inputs []string, out0, out1 string) (string, string) {
	name = b.prefix + name
	y, d := name+"/"+out0, name+"/"+out1
	b.claim(name)
	b.claim(y)
	b.claim(d)
	b.g.nodes = append(b.g.nodes, nodeProto{name: name, opType: op, domain: FusedDomain, inputs: inputs, outputs: []string{y, d}})
	return y, d
}

// fusedOne appends an operator of FusedDomain with one output named like
// the node.
func (b *builder) fusedOne(name, op string, inputs []string) string {
	name = b.prefix + name
	b.claim(name)
	b.g.nodes = append(b.g.nodes, nodeProto{name: name, opType: op, domain: FusedDomain, inputs: inputs, outputs: []string{name}})
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

// GemmScaled is x·wᵀ + beta·c (x·w + beta·c without transB): ONNX Runtime
// adds beta·c in the GEMM itself, with no pass of its own over the result.
func (b *builder) GemmScaled(name, x, w, c string, beta float64, transB bool) string {
	return b.node(name, "Gemm", []string{x, w, c}, intAttr("transB", boolInt(transB)),
		attribute{name: "beta", typ: attrFloat, f: float32(beta)})
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

// Sqrt is the elementwise square root.
func (b *builder) Sqrt(name, x string) string { return b.node(name, "Sqrt", []string{x}) }

// Identity passes x through.
func (b *builder) Identity(name, x string) string { return b.node(name, "Identity", []string{x}) }

// Gather takes the slice x[i] along axis 0 for a scalar index i.
func (b *builder) Gather(name, x, i string) string {
	return b.node(name, "Gather", []string{x, i}, intAttr("axis", 0))
}

// Dim returns dimension k of x as an int64 scalar (Shape with start/end, opset ≥ 15).
func (b *builder) Dim(name, x string, k int64) string {
	s := b.node(name+"/shape", "Shape", []string{x}, intAttr("start", k), intAttr("end", k+1))
	return b.Squeeze(name, s, 0)
}

// ZerosLike is a float32 tensor of zeros with the shape of x.
func (b *builder) ZerosLike(name, x string) string {
	s := b.node(name+"/shape", "Shape", []string{x})
	return b.node(name, "ConstantOfShape", []string{s}) // value defaults to float32 0
}

// Loop runs body trips times (no early exit condition) from the carried
// initial values; body takes (iteration, cond, carried...) and returns (cond,
// carried..., scans...). The node's outputs, the final carried values then
// the stacked scan outputs, get the names outs (with the builder's prefix),
// which Loop returns.
func (b *builder) Loop(name, trips string, carried []string, body *graphProto, outs ...string) []string {
	var outputs []string
	for _, o := range outs {
		outputs = append(outputs, b.prefix+o)
		b.claim(b.prefix + o)
	}
	b.g.nodes = append(b.g.nodes, nodeProto{name: b.prefix + name, opType: "Loop", inputs: append([]string{trips, ""}, carried...),
		outputs: outputs, attrs: []attribute{{name: "body", typ: attrGraph, g: body}}})
	return outputs
}

// within runs f with prefix appended to the builder's name prefix.
func (b *builder) within(prefix string, f func()) {
	old := b.prefix
	b.prefix += prefix
	defer func() { b.prefix = old }()
	f()
}
