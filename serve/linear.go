package serve

import (
	"encoding/binary"
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// linearMap is x ↦ x·W for a fixed W [in, out] (float32, row-major), run by
// ONNX Runtime as a one-MatMul model built in memory, so that the latent
// sampler's projections run at the speed of ONNX Runtime's GEMM.
type linearMap struct {
	sess    *ort.DynamicAdvancedSession
	in, out int
	lanes   int
}

// newLinearMap builds and opens the model of x ↦ x·W; up to lanes Runs of
// one thread each work on separate rows.
func newLinearMap(w []float32, in, out, lanes int) (*linearMap, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(matMulModel(w, in, out), []string{"x"}, []string{"y"}, so)
	if err != nil {
		return nil, fmt.Errorf("serve: building the %d×%d projection: %w", in, out, err)
	}
	return &linearMap{sess: sess, in: in, out: out, lanes: max(1, lanes)}, nil
}

// apply writes y = x·W for the n rows of x (n×in) into y (n×out).
func (l *linearMap) apply(x []float32, n int, y []float32) error {
	return inLanes(l.lanes, n, func(lo, hi int) error {
		return l.applyRows(x[lo*l.in:hi*l.in], hi-lo, y[lo*l.out:hi*l.out])
	})
}

func (l *linearMap) applyRows(x []float32, n int, y []float32) error {
	xt, err := ort.NewTensor(ort.NewShape(int64(n), int64(l.in)), x)
	if err != nil {
		return err
	}
	defer xt.Destroy()
	yt, err := ort.NewTensor(ort.NewShape(int64(n), int64(l.out)), y)
	if err != nil {
		return err
	}
	defer yt.Destroy()
	return l.sess.Run([]ort.Value{xt}, []ort.Value{yt})
}

func (l *linearMap) close() {
	if l != nil && l.sess != nil {
		l.sess.Destroy()
		l.sess = nil
	}
}

// matMulModel serializes the ONNX model y = MatMul(x, W): input x float32
// [batch, in], initializer W [in, out], output y [batch, out]; IR version 8,
// opset 17. Field numbers are those of the ONNX schema (onnx.proto3).
func matMulModel(w []float32, in, out int) []byte {
	raw := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	var tensor []byte // TensorProto
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(in))
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(out))
	tensor = protowire.AppendTag(tensor, 2, protowire.VarintType) // data_type FLOAT
	tensor = protowire.AppendVarint(tensor, 1)
	tensor = appendString(tensor, 8, "W")
	tensor = appendBytes(tensor, 9, raw)

	var node []byte // NodeProto
	node = appendString(node, 1, "x")
	node = appendString(node, 1, "W")
	node = appendString(node, 2, "y")
	node = appendString(node, 3, "project")
	node = appendString(node, 4, "MatMul")

	var graph []byte // GraphProto
	graph = appendBytes(graph, 1, node)
	graph = appendString(graph, 2, "jarzyn_projection")
	graph = appendBytes(graph, 5, tensor)
	graph = appendBytes(graph, 11, valueInfo("x", in))
	graph = appendBytes(graph, 12, valueInfo("y", out))

	var opset []byte // OperatorSetIdProto
	opset = appendString(opset, 1, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, 17)

	var model []byte // ModelProto
	model = protowire.AppendTag(model, 1, protowire.VarintType)
	model = protowire.AppendVarint(model, 8)
	model = appendString(model, 2, "jarzyn-serve")
	model = appendBytes(model, 7, graph)
	model = appendBytes(model, 8, opset)
	return model
}

// valueInfo is a ValueInfoProto: float tensor [batch, cols].
func valueInfo(name string, cols int) []byte {
	var batch, width []byte // TensorShapeProto.Dimension
	batch = appendString(batch, 2, "batch")
	width = protowire.AppendTag(width, 1, protowire.VarintType)
	width = protowire.AppendVarint(width, uint64(cols))
	var shape []byte
	shape = appendBytes(shape, 1, batch)
	shape = appendBytes(shape, 1, width)
	var tensorType []byte // TypeProto.Tensor
	tensorType = protowire.AppendTag(tensorType, 1, protowire.VarintType)
	tensorType = protowire.AppendVarint(tensorType, 1)
	tensorType = appendBytes(tensorType, 2, shape)
	var typ []byte // TypeProto
	typ = appendBytes(typ, 1, tensorType)
	var vi []byte
	vi = appendString(vi, 1, name)
	return appendBytes(vi, 2, typ)
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	return appendBytes(b, field, []byte(s))
}

func appendBytes(b []byte, field protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
