package serve

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI description matches the server: the same operations as the
// routes it registers, and for every request and response type the same
// properties as the type's JSON fields. GET /openapi.json serves it.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var described []string
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" {
				continue
			}
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	reg, cfg := testRegistry(t, nil)
	defer reg.Close()
	s := NewServer(reg, cfg)
	served := slices.Clone(s.routes)
	sort.Strings(described)
	sort.Strings(served)
	if !slices.Equal(described, served) {
		t.Errorf("openapi.json describes %v;\nthe server registers %v", described, served)
	}

	for name, v := range map[string]any{
		"SampleRequest": SampleRequest{}, "SampleResponse": SampleResponse{},
		"InferRequest": InferRequest{}, "InferInput": InferInput{}, "InferRequestedOutput": InferRequestedOutput{},
		"InferResponse": InferResponse{}, "InferOutput": InferOutput{},
		"ModelMetadataResponse": ModelMetadataResponse{}, "TensorMetadata": TensorMetadata{}, "Error": errorBody{},
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		var props, fields []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			if tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]; tag != "" && tag != "-" {
				fields = append(fields, tag)
			}
		}
		sort.Strings(props)
		sort.Strings(fields)
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has properties %v; the Go type %s has JSON fields %v", name, props, rt.Name(), fields)
		}
	}

	ts, _ := testServer(t, nil)
	resp, err := http.Get(ts.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, openAPI) {
		t.Errorf("GET /openapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}
