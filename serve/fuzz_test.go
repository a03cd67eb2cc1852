package serve

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
)

// The fuzz targets call the body decoders and validators directly, without
// HTTP. Their seed corpora are in testdata/fuzz/<FuzzName>/ (go test runs
// them as part of the suite); `go test -run '^$' -fuzz FuzzX ./serve/`
// explores further.

// fuzzServer is a server over no models, with the limits the decoders check.
func fuzzServer() *Server {
	return &Server{cfg: ServerConfig{MaxN: 5000, MaxSteps: 100_000, MaxWalkerSteps: 2_000_000, MaxInferBatch: 100,
		MaxBodyBytes: 1 << 16}.withDefaults()}
}

// fuzzModel is model metadata without a session: the validators read only
// Info.
func fuzzModel(shape ...int) *Model {
	d := 1
	for _, s := range shape {
		d *= s
	}
	m := &Model{Name: "m", Version: "1"}
	m.Info.DataShape, m.Info.Dim = shape, d
	m.Info.StepSize, m.Info.DataMin, m.Info.DataMax = 0.05, -1, 1
	return m
}

// decodeLimited decodes body as decodeBody does, under a 64 KiB limit.
func decodeLimited(body string, v any) (int, error) {
	return decodeJSON(http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(body)), 1<<16), v)
}

// checkDecodeError: a refused body gets a 4xx and a message that names a
// field ("<field>: …"), bounded in length.
func checkDecodeError(t *testing.T, body string, code int, err error) {
	t.Helper()
	if code < 400 || code > 499 {
		t.Fatalf("%q: code %d for %v", body, code, err)
	}
	msg := trimServe(err)
	if i := strings.Index(msg, ": "); i <= 0 {
		t.Fatalf("%q: message %q names no field", body, msg)
	}
	if len(msg) > maxMessage+len("…") {
		t.Fatalf("%q: message of %d bytes", body, len(msg))
	}
}

// FuzzDecodeSampleRequest: decoding and validating a /v1/sample body never
// panics; a refusal is a 4xx naming a field; what is accepted is within the
// limits and passes SampleConfig.Validate.
func FuzzDecodeSampleRequest(f *testing.F) {
	for _, s := range []string{
		`{"n":10,"steps":5}`, `{"model":"m","n":64,"steps":10,"seed":5,"h":0.1}`,
		`{"n":500,"steps":50,"weighted":true,"extra_steps":5,"resample_threshold":0.3,"resample_scheme":"multinomial"}`,
		`{"n":10,"steps":1,"init":"uniform"}`, `{"n":-1,"steps":1}`, `{"n":1e30,"steps":1}`, `{"n":"10"}`,
		`{"n":10,"steps":1,"resample_threshold":0.5}`, `{"n":10,"steps":1,"walkers":3}`, `[1]`, `{"n":10,`, `{}{}`,
	} {
		f.Add(s)
	}
	s, m := fuzzServer(), fuzzModel(2)
	f.Fuzz(func(t *testing.T, body string) {
		var req SampleRequest
		code, err := decodeLimited(body, &req)
		if err != nil {
			checkDecodeError(t, body, code, err)
			return
		}
		cfg, err := s.sampleConfig(&req, m)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || len(fe.Msg) > maxMessage {
				t.Fatalf("%q: error %v is not a bounded FieldError", body, err)
			}
			return
		}
		if err := s.cfg.limits().Check(cfg, m.Info.Dim); err != nil {
			t.Fatalf("%q: accepted beyond the limits: %v", body, err)
		}
		if err := cfg.Validate(m.Info.TrainingInfo); err != nil {
			t.Fatalf("%q: accepted an invalid config: %v", body, err)
		}
		if !cfg.Weighted && (req.ResampleThreshold != nil || req.ResampleScheme != "" || cfg.ExtraSteps != 0) {
			t.Fatalf("%q: weighted settings accepted without weighted", body)
		}
	})
}

// FuzzDecodeInferRequest: decoding and validating a /v2 infer body never
// panics; a refusal is a 4xx naming a field; what is accepted has a batch
// within the limit and exactly batch·d finite values.
func FuzzDecodeInferRequest(f *testing.F) {
	x := func(shape, data string) string {
		return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"FP32","data":` + data + `}]}`
	}
	for _, s := range []string{
		x(`[2,2]`, `[[1,2],[3,4]]`), x(`[2,2]`, `[1,2,3,4]`), x(`[2,2]`, `[[1,2],[3]]`), x(`[2,2]`, `[[1,2],3,4]`),
		x(`[1,2]`, `[1e39,0]`), x(`[1,2]`, `[1,"NaN"]`), x(`[0,2]`, `[]`), x(`[2]`, `[1,2]`),
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"grad"}]}`,
		`{"id":"r","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`,
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2],"dtype":"f"}]}`, `{"inputs":{}}`,
	} {
		f.Add(s)
	}
	s, m := fuzzServer(), fuzzModel(2)
	f.Fuzz(func(t *testing.T, body string) {
		var req InferRequest
		code, err := decodeLimited(body, &req)
		if err != nil {
			checkDecodeError(t, body, code, err)
			return
		}
		n, xs, outs, err := s.inferInput(&req, m)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || len(fe.Msg) > maxMessage {
				t.Fatalf("%q: error %v is not a bounded FieldError", body, err)
			}
			return
		}
		if n < 1 || n > s.cfg.MaxInferBatch || len(xs) != n*m.Info.Dim || len(outs) == 0 || len(outs) > 2 {
			t.Fatalf("%q: accepted n=%d with %d values, outputs %v", body, n, len(xs), outs)
		}
		for _, v := range xs {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%q: accepted %v", body, v)
			}
		}
	})
}

// FuzzParseTensorData: the infer data parser never panics, and what it
// accepts has exactly the shape's count of finite float32 values, flat or
// nested exactly as the shape.
func FuzzParseTensorData(f *testing.F) {
	for _, s := range []string{`[1,2,3,4]`, `[[1,2],[3,4]]`, `[[[1e-3]],[[-2.5E+2]]]`, `[1,"a"]`, `[null]`, `{}`, `5`, `[1e39]`, `[[1,2],3]`, `[]`, `[[1,2,3],[4]]`, `[[1],[2],[3],[4]]`} {
		f.Add(s, uint8(2), uint8(2))
	}
	f.Fuzz(func(t *testing.T, s string, a, b uint8) {
		if !json.Valid([]byte(s)) {
			return
		}
		shape := []int64{int64(a%8) + 1, int64(b%8) + 1}
		v, err := parseTensorData(json.RawMessage(s), "data", shape)
		if err != nil {
			return
		}
		if int64(len(v)) != shape[0]*shape[1] {
			t.Fatalf("%q: %d values, want %v", s, len(v), shape)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%q: accepted %v", s, x)
			}
		}
		// accepted data is flat or nested as the shape: re-encoding it both
		// ways and comparing proves the structure
		var flat []float64
		var nested [][]float64
		if json.Unmarshal([]byte(s), &flat) != nil {
			if err := json.Unmarshal([]byte(s), &nested); err != nil || int64(len(nested)) != shape[0] {
				t.Fatalf("%q accepted for shape %v: neither flat nor nested as the shape (%v)", s, shape, err)
			}
			for _, row := range nested {
				if int64(len(row)) != shape[1] {
					t.Fatalf("%q accepted for shape %v: ragged", s, shape)
				}
			}
		}
	})
}
