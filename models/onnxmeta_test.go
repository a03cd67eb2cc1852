package models

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// propsMap turns Props' list into the map ParseONNXMeta reads.
func propsMap(t testing.TB, m ONNXMeta) map[string]string {
	t.Helper()
	ps, err := m.Props()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ps {
		if _, dup := out[p.Key]; dup {
			t.Fatalf("Props lists %s twice", p.Key)
		}
		if !strings.HasPrefix(p.Key, KeyPrefix) {
			t.Fatalf("key %q lacks the %q prefix", p.Key, KeyPrefix)
		}
		out[p.Key] = p.Value
	}
	return out
}

// sameMeta compares two ONNXMeta, NaN log Ẑ equal to NaN.
func sameMeta(a, b ONNXMeta) bool {
	if math.IsNaN(a.LogZEstimate) && math.IsNaN(b.LogZEstimate) {
		a.LogZEstimate, b.LogZEstimate = 0, 0
	}
	return reflect.DeepEqual(a, b)
}

func TestONNXMetaRoundTrip(t *testing.T) {
	gmm := Spec{Family: GMM, Dim: 3, Modes: 2}
	gmmBase := Spec{Family: GMM, Dim: 3, Modes: 2, BaseMean: []float64{1, -2, 0.5}, BaseStd: 3}
	mlp := Spec{Family: MLP, Dim: 2, Hidden: []int{16, 16}, Activation: SiLU, BaseMean: []float64{0.25, -1}, BaseStd: 1.7}
	withInfo := func(m ONNXMeta, f func(*ONNXMeta)) ONNXMeta { f(&m); return m }
	cases := []struct {
		name     string
		m        ONNXMeta
		wantMean []float64
		wantStd  float64
	}{
		{"gmm default base", withInfo(NewONNXMeta(gmm), func(m *ONNXMeta) {
			m.Method, m.StepSize, m.ConfigDigest, m.DataMin, m.DataMax, m.ModelVersion = "pcd", 0.1, "sha256:ab", -13.5, 9.25, 8000
		}), []float64{0, 0, 0}, 1},
		{"gmm own base", withInfo(NewONNXMeta(gmmBase), func(m *ONNXMeta) {
			m.Method, m.StepSize, m.LogZEstimate = "jarzynski", 0.1, 3.25
		}), []float64{1, -2, 0.5}, 3},
		{"mlp trained", withInfo(NewONNXMeta(mlp), func(m *ONNXMeta) {
			m.Graph, m.StepSize, m.LogZEstimate, m.DataMin, m.DataMax, m.ModelVersion = GraphEnergy, 1e-3, -0.1/3, -1, 1, 2
		}), []float64{0.25, -1}, 1.7},
		{"image, no spec, unknown step", ONNXMeta{Family: "conv", DataShape: []int{1, 4, 4}, BaseMean: make([]float64, 16), BaseStd: 0.5,
			TrainingInfo: TrainingInfo{LogZEstimate: math.NaN()}}, make([]float64, 16), 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseONNXMeta(propsMap(t, c.m), c.m.ModelVersion)
			if err != nil {
				t.Fatal(err)
			}
			want := c.m
			want.FormatVersion = ONNXFormatVersion
			if want.Graph == "" {
				want.Graph = GraphEnergy
			}
			if !sameMeta(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(got.BaseMean, c.wantMean) || got.BaseStd != c.wantStd {
				t.Errorf("base mean %v std %v, want %v %v", got.BaseMean, got.BaseStd, c.wantMean, c.wantStd)
			}
		})
	}
}

// TestNewONNXMetaCopies: the metadata does not alias the caller's spec.
func TestNewONNXMetaCopies(t *testing.T) {
	s := Spec{Family: GMM, Dim: 2, Modes: 1, BaseMean: []float64{1, 2}}
	m := NewONNXMeta(s)
	m.BaseMean[0] = 9
	m.Spec.Dim = 7
	if s.BaseMean[0] != 1 || s.Dim != 2 {
		t.Errorf("NewONNXMeta aliases its spec: %+v", s)
	}
}

// goodProps is valid metadata of a 2-D, 2-mode GMM.
func goodProps(t testing.TB) map[string]string {
	m := NewONNXMeta(Spec{Family: GMM, Dim: 2, Modes: 2})
	m.LogZEstimate = 1
	return propsMap(t, m)
}

func TestParseONNXMetaAccepts(t *testing.T) {
	cases := []struct {
		name  string
		edit  map[string]string // "" deletes the key
		check func(ONNXMeta) bool
	}{
		{"defaults", map[string]string{KeyGraph: "", KeyLogZEstimate: "", KeyMethod: "", KeyConfigDigest: "", KeySpec: ""},
			func(m ONNXMeta) bool {
				return m.Graph == GraphEnergy && math.IsNaN(m.LogZEstimate) && m.Spec == nil && m.Family == GMM && m.Dim() == 2
			}},
		{"unknown step", map[string]string{KeyStepSize: "0"}, func(m ONNXMeta) bool { return m.StepSize == 0 }},
		{"image shape without spec", map[string]string{KeySpec: "", KeyFamily: "conv", KeyDataShape: "[1,28,28]", KeyBaseMean: "[0.5]"},
			func(m ONNXMeta) bool {
				return m.Dim() == 784 && len(m.BaseMean) == 784 && m.BaseMean[783] == 0.5 && m.Family == "conv"
			}},
		{"spec flattened", map[string]string{KeyDataShape: "[1,2]"}, func(m ONNXMeta) bool { return m.Dim() == 2 }},
		{"scalar base mean", map[string]string{KeyBaseMean: "[3]"}, func(m ONNXMeta) bool { return reflect.DeepEqual(m.BaseMean, []float64{3, 3}) }},
		{"no base mean", map[string]string{KeyBaseMean: "[]"}, func(m ONNXMeta) bool { return reflect.DeepEqual(m.BaseMean, []float64{0, 0}) }},
		{"white space", map[string]string{KeyFormatVersion: " 1.0 ", KeyFamily: "gmm\n", KeyBaseStd: " 2", KeyGraph: " latent ", KeyLatentOf: strings.Repeat("ab", 32)},
			func(m ONNXMeta) bool { return m.FormatVersion == 1 && m.BaseStd == 2 && m.Graph == GraphLatent }},
		{"nan log z", map[string]string{KeyLogZEstimate: "NaN"}, func(m ONNXMeta) bool { return math.IsNaN(m.LogZEstimate) }},
		{"empty optional values", map[string]string{KeySpec: " ", KeyGraph: " ", KeyLogZEstimate: " "},
			func(m ONNXMeta) bool { return m.Spec == nil && m.Graph == GraphEnergy && math.IsNaN(m.LogZEstimate) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			props := goodProps(t)
			for k, v := range c.edit {
				if v == "" {
					delete(props, k)
				} else {
					props[k] = v
				}
			}
			m, err := ParseONNXMeta(props, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(m) || m.ModelVersion != 3 {
				t.Errorf("got %+v", m)
			}
			if err := m.Validate(); err != nil {
				t.Errorf("accepted metadata does not validate: %v", err)
			}
		})
	}
}

func TestParseONNXMetaRejects(t *testing.T) {
	cases := []struct{ key, value, want string }{
		{KeyFormatVersion, "2", "jarzyn.format_version=\"2\": newer"},
		{KeyFormatVersion, "0", "jarzyn.format_version"},
		{KeyFormatVersion, "1.5", "jarzyn.format_version"},
		{KeyFormatVersion, "one", "jarzyn.format_version"},
		{KeySpec, `{"family":"gmm","dim":0}`, "dim must be > 0"},
		{KeySpec, `{`, "jarzyn.spec"},
		{KeyFamily, "mlp", "disagrees"},
		{KeyFamily, " ", "jarzyn.family"},
		{KeyDataShape, "[3]", "disagrees"},
		{KeyDataShape, "[]", "jarzyn.data_shape"},
		{KeyDataShape, "[2,0]", "jarzyn.data_shape"},
		{KeyDataShape, "[65536,65536]", "jarzyn.data_shape"},
		{KeyDataShape, "2", "jarzyn.data_shape"},
		{KeyBaseMean, "[1,2,3]", "entries"},
		{KeyBaseMean, `["a"]`, "jarzyn.base_mean"},
		{KeyBaseStd, "0", "jarzyn.base_std"},
		{KeyBaseStd, "-1", "jarzyn.base_std"},
		{KeyBaseStd, "NaN", "jarzyn.base_std"},
		{KeyBaseStd, "+Inf", "jarzyn.base_std"},
		{KeyDataRange, "[1]", "[min,max]"},
		{KeyDataRange, "[2,1]", "min ≤ max"},
		{KeyStepSize, "-1", "jarzyn.step_size"},
		{KeyStepSize, "NaN", "jarzyn.step_size"},
		{KeyStepSize, "fast", "jarzyn.step_size"},
		{KeyLogZEstimate, "Inf", "jarzyn.log_z_estimate"},
		{KeyLogZEstimate, "unknown", "jarzyn.log_z_estimate"},
		{KeyGraph, "scan", "jarzyn.graph"},
	}
	for _, c := range cases {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			props := goodProps(t)
			props[c.key] = c.value
			_, err := ParseONNXMeta(props, 1)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		props := goodProps(t)
		delete(props, KeyBaseStd)
		delete(props, KeyFamily)
		_, err := ParseONNXMeta(props, 1)
		if err == nil || !strings.Contains(err.Error(), "missing jarzyn metadata jarzyn.family, jarzyn.base_std") {
			t.Fatalf("error %v", err)
		}
		if _, err := ParseONNXMeta(map[string]string{"producer": "someone"}, 1); err == nil ||
			!strings.Contains(err.Error(), "missing jarzyn metadata jarzyn.format_version") {
			t.Fatalf("foreign model: error %v", err)
		}
		// a newer format is reported as such, whatever else is missing
		if _, err := ParseONNXMeta(map[string]string{KeyFormatVersion: "9"}, 1); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("newer format: error %v", err)
		}
	})
	t.Run("model version", func(t *testing.T) {
		if _, err := ParseONNXMeta(goodProps(t), -1); err == nil || !strings.Contains(err.Error(), "model_version") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestONNXMetaPropsRejects(t *testing.T) {
	base := NewONNXMeta(Spec{Family: MLP, Dim: 2, Hidden: []int{4}, Activation: Tanh, BaseStd: 1})
	cases := []struct {
		name string
		edit func(*ONNXMeta)
		want string
	}{
		{"nan mean", func(m *ONNXMeta) { m.BaseMean[1] = math.NaN() }, "jarzyn.base_mean"},
		{"short mean", func(m *ONNXMeta) { m.BaseMean = m.BaseMean[:1] }, "jarzyn.base_mean"},
		{"inf log z", func(m *ONNXMeta) { m.LogZEstimate = math.Inf(-1) }, "jarzyn.log_z_estimate"},
		{"range", func(m *ONNXMeta) { m.DataMin, m.DataMax = 1, 0 }, "jarzyn.data_range"},
		{"inf range", func(m *ONNXMeta) { m.DataMax = math.Inf(1) }, "jarzyn.data_range"},
		{"step", func(m *ONNXMeta) { m.StepSize = -0.1 }, "jarzyn.step_size"},
		{"family", func(m *ONNXMeta) { m.Family = GMM }, "jarzyn.family"},
		{"spec", func(m *ONNXMeta) { m.Spec.Activation = "relu" }, "jarzyn.spec"},
		{"graph", func(m *ONNXMeta) { m.Graph = "loop" }, "jarzyn.graph"},
		{"model version", func(m *ONNXMeta) { m.ModelVersion = -2 }, "model_version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewONNXMeta(*base.Spec)
			c.edit(&m)
			if _, err := m.Props(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// FuzzParseONNXMeta: arbitrary metadata never panics; accepted metadata is
// usable by a sampler (a positive dim, a base mean per value, finite σ0 > 0,
// h ≥ 0), consistent with its spec when it has one, and survives Props and
// parsing again unchanged.
func FuzzParseONNXMeta(f *testing.F) {
	f.Add("1", `{"family":"gmm","dim":2,"modes":2}`, "gmm", "[2]", "[0,0]", "1", "[-1,1]", "0.1", "NaN", "")
	f.Add("1", `{"family":"mlp","dim":1,"hidden":[4],"activation":"tanh","base_std":2}`, "mlp", "[1]", "[0.5]", "2", "[0,0]", "0", "3", "ula")
	f.Add("1", "", "test", "[1,28,28]", "[0]", "0.5", "[0,0]", "0", "", "energy")
	f.Add("2", "", "gmm", "[]", "x", "-1", "[1]", "NaN", "Inf", "scan")
	f.Fuzz(func(t *testing.T, fv, spec, family, shape, mean, std, rng, step, logZ, graph string) {
		props := map[string]string{KeyFormatVersion: fv, KeySpec: spec, KeyFamily: family, KeyDataShape: shape,
			KeyBaseMean: mean, KeyBaseStd: std, KeyDataRange: rng, KeyStepSize: step, KeyLogZEstimate: logZ, KeyGraph: graph}
		if spec == "" {
			delete(props, KeySpec)
		}
		m, err := ParseONNXMeta(props, 1)
		if err != nil {
			return
		}
		d := m.Dim()
		if d <= 0 || d > ONNXMaxDim || len(m.BaseMean) != d || !(m.BaseStd > 0) || math.IsInf(m.BaseStd, 0) ||
			m.StepSize < 0 || math.IsInf(m.StepSize, 0) || math.IsInf(m.LogZEstimate, 0) || m.DataMin > m.DataMax {
			t.Fatalf("accepted unusable metadata %+v", m)
		}
		if m.Spec != nil && (m.Spec.Validate() != nil || m.Spec.Dim != d || m.Spec.Family != m.Family) {
			t.Fatalf("accepted metadata inconsistent with its spec %+v", m)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted metadata that does not validate: %v", err)
		}
		again, err := ParseONNXMeta(propsMap(t, m), m.ModelVersion)
		if err != nil {
			t.Fatalf("Props of accepted metadata does not parse: %v", err)
		}
		if !reflect.DeepEqual(propsMap(t, again), propsMap(t, m)) {
			t.Fatalf("round trip changed the metadata: %+v → %+v", m, again)
		}
	})
}
