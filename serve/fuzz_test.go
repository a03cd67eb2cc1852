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
