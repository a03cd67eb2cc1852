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
		info     Info
		wantMean []float64
		wantStd  float64
		wantVer  int64
	}{
		{"gmm default base", gmm, Info{Method: "pcd", StepSize: 0.1, LogZEstimate: math.NaN(), ConfigDigest: "sha256:ab", DataMin: -13.5, DataMax: 9.25, ModelVersion: 8000}, []float64{0, 0, 0}, 1, 8000},
		{"gmm own base", gmmMean, Info{Method: "jarzynski", StepSize: 0.1, LogZEstimate: 3.25}, []float64{1, -2, 0.5}, 3, 1},
		{"mlp", mlp, Info{Method: "jarzynski", StepSize: 1e-3, LogZEstimate: -0.1 / 3, DataMin: -1, DataMax: 1, ModelVersion: 2}, mlp.Spec.BaseMean, 1.7, 2},
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
	model, err := Build(testGMM(t, 5, 2, 1), Info{})
	if err != nil {
		t.Fatal(err)
	}
	in, out, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0].Name != InputX || in[0].DataType != ort.TensorElementDataTypeFloat || !reflect.DeepEqual([]int64(in[0].Dimensions), []int64{-1, 5}) {
		t.Errorf("inputs %v", in)
	}
	if len(out) != 2 || out[0].Name != OutputEnergy || out[1].Name != OutputGrad ||
		!reflect.DeepEqual([]int64(out[0].Dimensions), []int64{-1}) || !reflect.DeepEqual([]int64(out[1].Dimensions), []int64{-1, 5}) {
		t.Errorf("outputs %v", out)
	}
}

// infoOf is the training information in a model's metadata.
func infoOf(m models.ONNXMeta) Info {
	return Info{Method: m.Method, StepSize: m.StepSize, LogZEstimate: m.LogZEstimate, ConfigDigest: m.ConfigDigest,
		DataMin: m.DataMin, DataMax: m.DataMax, ModelVersion: m.ModelVersion}
}

func sameInfo(a, b Info) bool {
	na, nb := math.IsNaN(a.LogZEstimate), math.IsNaN(b.LogZEstimate)
	if na || nb {
		a.LogZEstimate, b.LogZEstimate = 0, 0
		if na != nb {
			return false
		}
	}
	return a == b
}

func TestInfoFromMeta(t *testing.T) {
	cases := []struct {
		name    string
		meta    map[string]string
		want    Info
		wantErr string
	}{
		{"empty", nil, Info{LogZEstimate: math.NaN(), ModelVersion: 1}, ""},
		{"full", map[string]string{"method": "jarzynski", "step_size": "0.1", "log_z_estimate": "-3.5", "config_digest": "abc",
			"data_min": "-14", "data_max": "10", "model_version": "8000", "other": "ignored"},
			Info{Method: "jarzynski", StepSize: 0.1, LogZEstimate: -3.5, ConfigDigest: "abc", DataMin: -14, DataMax: 10, ModelVersion: 8000}, ""},
		{"nan log z", map[string]string{"log_z_estimate": "NaN"}, Info{LogZEstimate: math.NaN(), ModelVersion: 1}, ""},
		{"bad step", map[string]string{"step_size": "fast"}, Info{}, "step_size"},
		{"nan step", map[string]string{"step_size": "NaN"}, Info{}, "step_size"},
		{"negative step", map[string]string{"step_size": "-0.1"}, Info{}, "step size"},
		{"inf log z", map[string]string{"log_z_estimate": "+Inf"}, Info{}, "log_z_estimate"},
		{"range order", map[string]string{"data_min": "1", "data_max": "0"}, Info{}, "data range"},
		{"version", map[string]string{"model_version": "1.5"}, Info{}, "model_version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := InfoFromMeta(c.meta)
			if c.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "export: ") || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !sameInfo(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// FuzzInfoFromMeta: any metadata either fails with an export: error or gives
// a valid Info that survives formatting and parsing again unchanged.
func FuzzInfoFromMeta(f *testing.F) {
	f.Add("jarzynski", "0.1", "-3.5", "abc", "-14", "10", "8000")
	f.Add("", "NaN", "NaN", "", "1", "0", "-1")
	f.Add("pcd", "1e308", "1e-320", "x", "-0", "0x1p-2", "")
	f.Fuzz(func(t *testing.T, method, step, logZ, digest, lo, hi, version string) {
		meta := map[string]string{"method": method, "step_size": step, "log_z_estimate": logZ, "config_digest": digest,
			"data_min": lo, "data_max": hi, "model_version": version}
		for k, v := range meta {
			if v == "" && k != "method" && k != "config_digest" {
				delete(meta, k) // also exercise missing keys
			}
		}
		info, err := InfoFromMeta(meta)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "export: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if err := info.validate(); err != nil {
			t.Fatalf("InfoFromMeta accepted an invalid Info %+v: %v", info, err)
		}
		again, err := InfoFromMeta(map[string]string{"method": info.Method, "step_size": fmtFloat(info.StepSize),
			"log_z_estimate": fmtFloat(info.LogZEstimate), "config_digest": info.ConfigDigest,
			"data_min": fmtFloat(info.DataMin), "data_max": fmtFloat(info.DataMax),
			"model_version": strconv.FormatInt(info.ModelVersion, 10)})
		if err != nil || !sameInfo(again, info) {
			t.Fatalf("round trip: %+v → %+v, %v", info, again, err)
		}
	})
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
