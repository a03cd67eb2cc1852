package export

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/models"
)

// readBack loads a model's metadata with ONNX Runtime.
func readBack(t *testing.T, model []byte) (props map[string]string, producer, graphName, doc string, version int64) {
	t.Helper()
	md, err := ort.GetModelMetadataWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		t.Fatal(err)
	}
	props = map[string]string{}
	for _, k := range keys {
		v, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil || !ok {
			t.Fatalf("metadata %s: ok=%v err=%v", k, ok, err)
		}
		props[k] = v
	}
	must := func(s string, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	producer, graphName, doc = must(md.GetProducerName()), must(md.GetGraphName()), must(md.GetDescription())
	if version, err = md.GetVersion(); err != nil {
		t.Fatal(err)
	}
	return props, producer, graphName, doc, version
}

func TestMetadataRoundTrip(t *testing.T) {
	needORT(t)
	gmm := testGMM(t, 3, 2, 1)
	gmmMean := gmm.Clone()
	gmmMean.Spec.BaseMean, gmmMean.Spec.BaseStd = []float64{1, -2, 0.5}, 3
	mlp := testMLP(t, models.SiLU, 2, []int{16, 16}, 3)
	cases := []struct {
		name     string
		p        *models.Params
		info     models.TrainingInfo
		wantMean []float64
		wantStd  float64
		wantVer  int64
	}{
		{"gmm default base", gmm, models.TrainingInfo{Method: "pcd", StepSize: 0.1, LogZEstimate: math.NaN(), ConfigDigest: "sha256:ab", DataMin: -13.5, DataMax: 9.25, ModelVersion: 8000}, []float64{0, 0, 0}, 1, 8000},
		{"gmm own base", gmmMean, models.TrainingInfo{Method: "jarzynski", StepSize: 0.1, LogZEstimate: 3.25}, []float64{1, -2, 0.5}, 3, 1},
		{"mlp", mlp, models.TrainingInfo{Method: "jarzynski", StepSize: 1e-3, LogZEstimate: -0.1 / 3, DataMin: -1, DataMax: 1, ModelVersion: 2}, mlp.Spec.BaseMean, 1.7, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, err := Build(c.p, c.info)
			if err != nil {
				t.Fatal(err)
			}
			props, producer, graphName, doc, version := readBack(t, model)
			if producer != "jarzyn" || version != c.wantVer || !strings.Contains(graphName, string(c.p.Spec.Family)) || !strings.Contains(doc, "∇ₓU") {
				t.Errorf("producer %q, version %d (want %d), graph %q, doc %q", producer, version, c.wantVer, graphName, doc)
			}
			for k := range props {
				if !strings.HasPrefix(k, models.KeyPrefix) {
					t.Errorf("metadata key %q lacks the %q prefix", k, models.KeyPrefix)
				}
			}
			m, err := models.ParseONNXMeta(props, version)
			if err != nil {
				t.Fatal(err)
			}
			if m.Spec == nil || !reflect.DeepEqual(*m.Spec, c.p.Spec) || m.Family != c.p.Spec.Family || m.Graph != models.GraphEnergy {
				t.Errorf("spec %+v, want %+v", m.Spec, c.p.Spec)
			}
			if !reflect.DeepEqual(m.DataShape, []int{c.p.Spec.Dim}) || !reflect.DeepEqual(m.BaseMean, c.wantMean) || m.BaseStd != c.wantStd {
				t.Errorf("shape %v, base mean %v std %v; want mean %v std %v", m.DataShape, m.BaseMean, m.BaseStd, c.wantMean, c.wantStd)
			}
			want := c.info
			if want.ModelVersion == 0 {
				want.ModelVersion = 1
			}
			if got := infoOf(m); !sameInfo(got, want) {
				t.Errorf("info %+v, want %+v", got, want)
			}
		})
	}
}

func TestModelSignature(t *testing.T) {
	needORT(t)
	model, err := Build(testGMM(t, 5, 2, 1), models.TrainingInfo{})
	if err != nil {
		t.Fatal(err)
	}
	in, out, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0].Name != models.InputX || in[0].DataType != ort.TensorElementDataTypeFloat || !reflect.DeepEqual([]int64(in[0].Dimensions), []int64{-1, 5}) {
		t.Errorf("inputs %v", in)
	}
	if len(out) != 2 || out[0].Name != models.OutputEnergy || out[1].Name != models.OutputGrad ||
		!reflect.DeepEqual([]int64(out[0].Dimensions), []int64{-1}) || !reflect.DeepEqual([]int64(out[1].Dimensions), []int64{-1, 5}) {
		t.Errorf("outputs %v", out)
	}
}

// infoOf is the training information in a model's metadata.
func infoOf(m models.ONNXMeta) models.TrainingInfo { return m.TrainingInfo }

func sameInfo(a, b models.TrainingInfo) bool {
	na, nb := math.IsNaN(a.LogZEstimate), math.IsNaN(b.LogZEstimate)
	if na || nb {
		a.LogZEstimate, b.LogZEstimate = 0, 0
		if na != nb {
			return false
		}
	}
	return a == b
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
