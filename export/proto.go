package export

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file writes the subset of the ONNX protobuf schema (onnx.proto, IR
// version 8) that the exported graphs use, by field number, with protowire.
// Only writing is needed: the models are read back by ONNX Runtime itself.

// ONNX field numbers, grouped by message.
const (
	// ModelProto
	fModelIRVersion       = 1
	fModelProducerName    = 2
	fModelProducerVersion = 3
	fModelDomain          = 4
	fModelModelVersion    = 5
	fModelDocString       = 6
	fModelGraph           = 7
	fModelOpsetImport     = 8
	fModelMetadataProps   = 14

	// OperatorSetIdProto
	fOpsetDomain  = 1
	fOpsetVersion = 2

	// StringStringEntryProto
	fEntryKey   = 1
	fEntryValue = 2

	// GraphProto
	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphDocString   = 10
	fGraphInput       = 11
	fGraphOutput      = 12

	// NodeProto
	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	fNodeDocString = 6
	fNodeDomain    = 7

	// AttributeProto
	fAttrName = 1
	fAttrF    = 2
	fAttrI    = 3
	fAttrG    = 6
	fAttrInts = 8
	fAttrType = 20

	// TensorProto
	fTensorDims     = 1
	fTensorDataType = 2
	fTensorName     = 8
	fTensorRawData  = 9

	// ValueInfoProto
	fValueName = 1
	fValueType = 2
	fValueDoc  = 3

	// TypeProto and TypeProto.Tensor
	fTypeTensor      = 1
	fTensorTypeElem  = 1
	fTensorTypeShape = 2
	fShapeDim        = 1
	fDimValue        = 1
	fDimParam        = 2
)

// AttributeProto.AttributeType values.
const (
	attrFloat = 1
	attrInt   = 2
	attrGraph = 5
	attrInts  = 7
)

// TensorProto.DataType values.
const (
	dtFloat = 1
	dtInt64 = 7
	dtBool  = 9
)

// tensorProto is an initializer: a named constant with raw little-endian data.
type tensorProto struct {
	name     string
	dims     []int64
	dataType int32
	raw      []byte
}

// floatTensor makes a float32 initializer from float64 values.
func floatTensor(name string, dims []int64, v []float64) tensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(x)))
	}
	return tensorProto{name: name, dims: dims, dataType: dtFloat, raw: raw}
}

// int64Tensor makes an int64 initializer.
func int64Tensor(name string, dims []int64, v []int64) tensorProto {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return tensorProto{name: name, dims: dims, dataType: dtInt64, raw: raw}
}

// dim is one dimension of a value's shape: a fixed size, or a named dynamic
// size when param is set.
type dim struct {
	value int64
	param string
}

// valueInfo declares a graph input or output: a tensor with an element type and shape.
type valueInfo struct {
	name     string
	elemType int32
	shape    []dim
	doc      string
}

// attribute is a node attribute; typ selects which value field is written.
type attribute struct {
	name string
	typ  int32
	f    float32
	i    int64
	ints []int64
	g    *graphProto
}

// nodeProto is one operator application.
type nodeProto struct {
	name    string
	opType  string
	domain  string
	inputs  []string
	outputs []string
	attrs   []attribute
	doc     string
}

// graphProto is a computation graph.
type graphProto struct {
	name    string
	doc     string
	nodes   []nodeProto
	inits   []tensorProto
	inputs  []valueInfo
	outputs []valueInfo
}

// opsetID imports an operator set.
type opsetID struct {
	domain  string
	version int64
}

// keyValue is a metadata_props entry.
type keyValue struct{ key, value string }

// modelProto is the top-level ONNX model.
type modelProto struct {
	irVersion       int64
	opsets          []opsetID
	producerName    string
	producerVersion string
	domain          string
	modelVersion    int64
	doc             string
	graph           *graphProto
	meta            []keyValue
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendPackedInts writes a repeated int64 field in packed encoding.
func appendPackedInts(b []byte, num protowire.Number, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return appendBytes(b, num, p)
}

// appendMessage writes a nested message produced by enc.
func appendMessage(b []byte, num protowire.Number, enc func([]byte) []byte) []byte {
	return appendBytes(b, num, enc(nil))
}

func (t *tensorProto) marshal(b []byte) []byte {
	b = appendPackedInts(b, fTensorDims, t.dims)
	b = appendVarint(b, fTensorDataType, int64(t.dataType))
	b = appendString(b, fTensorName, t.name)
	return appendBytes(b, fTensorRawData, t.raw)
}

func (d dim) marshal(b []byte) []byte {
	if d.param != "" {
		return appendString(b, fDimParam, d.param)
	}
	return appendVarint(b, fDimValue, d.value)
}

func (v *valueInfo) marshal(b []byte) []byte {
	b = appendString(b, fValueName, v.name)
	b = appendMessage(b, fValueType, func(b []byte) []byte {
		return appendMessage(b, fTypeTensor, func(b []byte) []byte {
			b = appendVarint(b, fTensorTypeElem, int64(v.elemType))
			return appendMessage(b, fTensorTypeShape, func(b []byte) []byte {
				for _, d := range v.shape {
					b = appendMessage(b, fShapeDim, d.marshal)
				}
				return b
			})
		})
	})
	return appendString(b, fValueDoc, v.doc)
}

func (a *attribute) marshal(b []byte) []byte {
	b = appendString(b, fAttrName, a.name)
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, fAttrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarint(b, fAttrI, a.i)
	case attrInts:
		b = appendPackedInts(b, fAttrInts, a.ints)
	case attrGraph:
		b = appendMessage(b, fAttrG, a.g.marshal)
	}
	return appendVarint(b, fAttrType, int64(a.typ))
}

func (n *nodeProto) marshal(b []byte) []byte {
	for _, s := range n.inputs {
		// an empty input name means "optional input left out" and must be kept
		b = protowire.AppendTag(b, fNodeInput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range n.outputs {
		b = protowire.AppendTag(b, fNodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendString(b, fNodeName, n.name)
	b = appendString(b, fNodeOpType, n.opType)
	for i := range n.attrs {
		b = appendMessage(b, fNodeAttribute, n.attrs[i].marshal)
	}
	b = appendString(b, fNodeDocString, n.doc)
	return appendString(b, fNodeDomain, n.domain)
}

func (g *graphProto) marshal(b []byte) []byte {
	for i := range g.nodes {
		b = appendMessage(b, fGraphNode, g.nodes[i].marshal)
	}
	b = appendString(b, fGraphName, g.name)
	for i := range g.inits {
		b = appendMessage(b, fGraphInitializer, g.inits[i].marshal)
	}
	b = appendString(b, fGraphDocString, g.doc)
	for i := range g.inputs {
		b = appendMessage(b, fGraphInput, g.inputs[i].marshal)
	}
	for i := range g.outputs {
		b = appendMessage(b, fGraphOutput, g.outputs[i].marshal)
	}
	return b
}

// marshal serialises the model as an ONNX ModelProto.
func (m *modelProto) marshal() []byte {
	var b []byte
	b = appendVarint(b, fModelIRVersion, m.irVersion)
	b = appendString(b, fModelProducerName, m.producerName)
	b = appendString(b, fModelProducerVersion, m.producerVersion)
	b = appendString(b, fModelDomain, m.domain)
	b = appendVarint(b, fModelModelVersion, m.modelVersion)
	b = appendString(b, fModelDocString, m.doc)
	if m.graph != nil {
		b = appendMessage(b, fModelGraph, m.graph.marshal)
	}
	for _, o := range m.opsets {
		b = appendMessage(b, fModelOpsetImport, func(b []byte) []byte {
			// the ai.onnx domain "" is left out: an absent string reads as ""
			b = appendString(b, fOpsetDomain, o.domain)
			return appendVarint(b, fOpsetVersion, o.version)
		})
	}
	for _, kv := range m.meta {
		b = appendMessage(b, fModelMetadataProps, func(b []byte) []byte {
			b = appendString(b, fEntryKey, kv.key)
			return appendString(b, fEntryValue, kv.value)
		})
	}
	return b
}
