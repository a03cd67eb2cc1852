package export

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// DumpGraph returns a text listing of the main graph of a serialized ONNX
// model: its inputs and outputs with element types and shapes, its
// initializers with their shapes, and its nodes in order with op type,
// attributes, inputs and outputs. Weights are not printed, so the listing
// of a model changes only when its graph does; the tests keep listings of
// the exported graphs as golden files.
func DumpGraph(model []byte) (string, error) {
	var graph []byte
	if err := eachField(model, func(num protowire.Number, _ uint64, b []byte) error {
		if num == fModelGraph {
			graph = b
		}
		return nil
	}); err != nil {
		return "", err
	}
	if graph == nil {
		return "", errors.New("export: model has no graph")
	}
	var ins, outs, inits, nodes []string
	err := eachField(graph, func(num protowire.Number, _ uint64, b []byte) error {
		var line string
		var err error
		switch num {
		case fGraphInput, fGraphOutput:
			line, err = dumpValueInfo(b)
		case fGraphInitializer:
			line, err = dumpTensor(b)
		case fGraphNode:
			line, err = dumpNode(b)
		default:
			return nil
		}
		switch num {
		case fGraphInput:
			ins = append(ins, line)
		case fGraphOutput:
			outs = append(outs, line)
		case fGraphInitializer:
			inits = append(inits, line)
		default:
			nodes = append(nodes, line)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, sec := range []struct {
		title string
		lines []string
	}{{"inputs", ins}, {"outputs", outs}, {"initializers", inits}, {"nodes", nodes}} {
		fmt.Fprintf(&sb, "%s (%d):\n", sec.title, len(sec.lines))
		for _, l := range sec.lines {
			sb.WriteString("  " + l + "\n")
		}
	}
	return sb.String(), nil
}

func elemTypeName(t uint64) string {
	switch t {
	case dtFloat:
		return "float32"
	case dtInt64:
		return "int64"
	case dtBool:
		return "bool"
	}
	return "type" + strconv.FormatUint(t, 10)
}

// dumpValueInfo is "name type [dims]" of a graph input or output.
func dumpValueInfo(v []byte) (string, error) {
	var name, typ string
	var dims []string
	err := eachField(v, func(num protowire.Number, _ uint64, b []byte) error {
		switch num {
		case fValueName:
			name = string(b)
		case fValueType:
			return eachField(b, func(num protowire.Number, _ uint64, b []byte) error {
				if num != fTypeTensor {
					return nil
				}
				return eachField(b, func(num protowire.Number, x uint64, b []byte) error {
					switch num {
					case fTensorTypeElem:
						typ = elemTypeName(x)
					case fTensorTypeShape:
						return eachField(b, func(num protowire.Number, _ uint64, b []byte) error {
							if num != fShapeDim {
								return nil
							}
							d := "?"
							err := eachField(b, func(num protowire.Number, x uint64, b []byte) error {
								switch num {
								case fDimValue:
									d = strconv.FormatInt(int64(x), 10)
								case fDimParam:
									d = string(b)
								}
								return nil
							})
							dims = append(dims, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return fmt.Sprintf("%s %s [%s]", name, typ, strings.Join(dims, ", ")), err
}

// dumpTensor is "name type [dims]" of an initializer.
func dumpTensor(v []byte) (string, error) {
	var name string
	var typ uint64
	var dims []string
	err := eachField(v, func(num protowire.Number, x uint64, b []byte) error {
		switch num {
		case fTensorName:
			name = string(b)
		case fTensorDataType:
			typ = x
		case fTensorDims:
			var err error
			dims, err = appendInts(dims, x, b, "tensor dims")
			return err
		}
		return nil
	})
	return fmt.Sprintf("%s %s [%s]", name, elemTypeName(typ), strings.Join(dims, ", ")), err
}

// dumpNode is "name: domain.Op(inputs) -> outputs {attributes}".
func dumpNode(v []byte) (string, error) {
	var name, op, domain string
	var ins, outs, attrs []string
	err := eachField(v, func(num protowire.Number, _ uint64, b []byte) error {
		switch num {
		case fNodeName:
			name = string(b)
		case fNodeOpType:
			op = string(b)
		case fNodeDomain:
			domain = string(b)
		case fNodeInput:
			ins = append(ins, string(b))
		case fNodeOutput:
			outs = append(outs, string(b))
		case fNodeAttribute:
			a, err := dumpAttribute(b)
			attrs = append(attrs, a)
			return err
		}
		return nil
	})
	if domain != "" {
		op = domain + "." + op
	}
	s := fmt.Sprintf("%s: %s(%s) -> %s", name, op, strings.Join(ins, ", "), strings.Join(outs, ", "))
	if len(attrs) > 0 {
		s += " {" + strings.Join(attrs, ", ") + "}"
	}
	return s, err
}

// dumpAttribute is "name=value" of a node attribute.
func dumpAttribute(v []byte) (string, error) {
	var name, val string
	var ints []string
	err := eachField(v, func(num protowire.Number, x uint64, b []byte) error {
		switch num {
		case fAttrName:
			name = string(b)
		case fAttrI:
			val = strconv.FormatInt(int64(x), 10)
		case fAttrF:
			val = strconv.FormatFloat(float64(math.Float32frombits(uint32(x))), 'g', -1, 32)
		case fAttrG:
			val = "<graph>"
		case fAttrInts:
			var err error
			ints, err = appendInts(ints, x, b, "attribute")
			return err
		}
		return nil
	})
	if ints != nil {
		val = "[" + strings.Join(ints, ", ") + "]"
	}
	if val == "" {
		val = "?"
	}
	return name + "=" + val, err
}

// appendInts appends the values of one repeated int64 field as decimal
// strings: x for an unpacked element (b nil), else every varint of the
// packed bytes b.
func appendInts(dst []string, x uint64, b []byte, what string) ([]string, error) {
	if b == nil {
		return append(dst, strconv.FormatInt(int64(x), 10)), nil
	}
	for len(b) > 0 {
		d, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return dst, fmt.Errorf("export: malformed %s: %v", what, protowire.ParseError(n))
		}
		dst = append(dst, strconv.FormatInt(int64(d), 10))
		b = b[n:]
	}
	return dst, nil
}
