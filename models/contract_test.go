package models

import (
	"math"
	"strings"
	"testing"
)

func sameInfo(a, b TrainingInfo) bool {
	na, nb := math.IsNaN(a.LogZEstimate), math.IsNaN(b.LogZEstimate)
	if na || nb {
		a.LogZEstimate, b.LogZEstimate = 0, 0
		if na != nb {
			return false
		}
	}
	return a == b
}

func TestTrainingInfoFromMeta(t *testing.T) {
	cases := []struct {
		name    string
		meta    map[string]string
		want    TrainingInfo
		wantErr string
	}{
		{"empty", nil, TrainingInfo{LogZEstimate: math.NaN(), ModelVersion: 1}, ""},
		{"full", map[string]string{"method": "jarzynski", "step_size": "0.1", "log_z_estimate": "-3.5", "config_digest": "abc",
			"data_min": "-14", "data_max": "10", "model_version": "8000", "other": "ignored"},
			TrainingInfo{Method: "jarzynski", StepSize: 0.1, LogZEstimate: -3.5, ConfigDigest: "abc", DataMin: -14, DataMax: 10, ModelVersion: 8000}, ""},
		{"nan log z", map[string]string{"log_z_estimate": "NaN"}, TrainingInfo{LogZEstimate: math.NaN(), ModelVersion: 1}, ""},
		{"bad step", map[string]string{"step_size": "fast"}, TrainingInfo{}, "step_size"},
		{"nan step", map[string]string{"step_size": "NaN"}, TrainingInfo{}, "step_size"},
		{"negative step", map[string]string{"step_size": "-0.1"}, TrainingInfo{}, "step size"},
		{"inf log z", map[string]string{"log_z_estimate": "+Inf"}, TrainingInfo{}, "log_z_estimate"},
		{"range order", map[string]string{"data_min": "1", "data_max": "0"}, TrainingInfo{}, "data range"},
		{"version", map[string]string{"model_version": "1.5"}, TrainingInfo{}, "model_version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := TrainingInfoFromMeta(c.meta)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
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

// FuzzTrainingInfoFromMeta: any metadata either fails with an export: error or gives
// a valid TrainingInfo that survives formatting and parsing again unchanged.
func FuzzTrainingInfoFromMeta(f *testing.F) {
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
		info, err := TrainingInfoFromMeta(meta)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "metadata ") {
				t.Fatalf("error does not name the metadata key: %v", err)
			}
			return
		}
		if err := info.Validate(); err != nil {
			t.Fatalf("InfoFromMeta accepted an invalid Info %+v: %v", info, err)
		}
		again, err := TrainingInfoFromMeta(info.Meta())
		if err != nil || !sameInfo(again, info) {
			t.Fatalf("round trip: %+v → %+v, %v", info, again, err)
		}
	})
}
