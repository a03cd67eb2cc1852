package serve

import (
	"encoding/json"
	"math"
	"testing"
)

// FuzzParseTensorData: the infer data parser never panics, and what it
// accepts has exactly the wanted count of finite float32 values.
func FuzzParseTensorData(f *testing.F) {
	for _, s := range []string{`[1,2,3,4]`, `[[1,2],[3,4]]`, `[[[1e-3]],[[-2.5E+2]]]`, `[1,"a"]`, `[null]`, `{}`, `5`, `[1e39]`, `[[1,2],3]`, `[]`} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, want int) {
		if !json.Valid([]byte(s)) || want < 0 || want > 1<<16 {
			return
		}
		v, err := parseTensorData(json.RawMessage(s), "data", want)
		if err != nil {
			return
		}
		if len(v) != want {
			t.Fatalf("%q: %d values, want %d", s, len(v), want)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%q: accepted %v", s, x)
			}
		}
	})
}

// FuzzParseMeta: the metadata parser never panics and what it accepts is
// usable by the sampler.
func FuzzParseMeta(f *testing.F) {
	f.Add("1", "[2]", "[0,0]", "1", "[-1,1]", "0.01")
	f.Add("1", "[1,28,28]", "[0]", "0.5", "[0,0]", "0")
	f.Add("2", "[]", "x", "-1", "[1]", "NaN")
	f.Fuzz(func(t *testing.T, fv, shape, mean, std, rng, h string) {
		meta := map[string]string{
			"jarzyn.format_version": fv, "jarzyn.family": "gmm", "jarzyn.data_shape": shape, "jarzyn.base_mean": mean,
			"jarzyn.base_std": std, "jarzyn.data_range": rng, "jarzyn.step_size": h,
		}
		var info ModelInfo
		if err := info.parseMeta(meta); err != nil {
			return
		}
		if info.Dim <= 0 || len(info.BaseMean) != info.Dim || !(info.BaseStd > 0) || math.IsInf(info.BaseStd, 0) || info.StepSize < 0 || math.IsNaN(info.LogZBase()) {
			t.Fatalf("accepted unusable metadata %+v", info)
		}
	})
}
