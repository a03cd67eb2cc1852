package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer serves DIR/gauss/{1,2}/model.onnx (the Gaussian test model)
// and DIR/img/1/model.onnx (a raw model with data shape [1,4,4]) with small
// limits.
func testServer(t *testing.T, mod func(*ServerConfig)) (*httptest.Server, *Registry) {
	t.Helper()
	reg, cfg := testRegistry(t, mod)
	ts := httptest.NewServer(NewServer(reg, cfg))
	t.Cleanup(func() {
		ts.Close()
		reg.Close()
	})
	return ts, reg
}

// testRegistry loads testServer's models and returns its configuration
// after mod.
func testRegistry(t *testing.T, mod func(*ServerConfig)) (*Registry, ServerConfig) {
	t.Helper()
	needORT(t)
	dir := t.TempDir()
	g := testGaussian.build(t)
	writeFile(t, dir, "gauss/1/model.onnx", g)
	writeFile(t, dir, "gauss/2/model.onnx", g)
	writeFile(t, dir, "img/1/model.onnx", goodRaw(1, 4, 4).marshal())
	reg, err := LoadDir(dir, LoadOptions{Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{MaxN: 5000, MaxSteps: 100_000, MaxWalkerSteps: 2_000_000, MaxInferBatch: 100, MaxBodyBytes: 1 << 16,
		Timeout: 20 * time.Second, Logger: quietLog}
	if mod != nil {
		mod(&cfg)
	}
	return reg, cfg
}

// call sends a request and decodes a JSON response into out (if non-nil).
func call(t *testing.T, method, url, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

func TestHTTPHealthAndMetadata(t *testing.T) {
	ts, _ := testServer(t, nil)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/v2", 200, `"name":"jarzyn-serve"`},
		{"/v2/health/live", 200, `{"live":true}`},
		{"/v2/health/ready", 200, `{"ready":true}`},
		{"/v2/models/gauss/ready", 200, `"version":"2"`},
		{"/v2/models/gauss/versions/1/ready", 200, `"ready":true`},
		{"/v2/models/gauss/versions/9/ready", 404, `no version \"9\"`},
		{"/v2/models/nope/ready", 404, `no model \"nope\"`},
		{"/v2/models/img", 200, `"shape":[-1,1,4,4]`},
		{"/v2/models/nope", 404, `"error":"name: model not found`},
		{"/nowhere", 404, `{"error":"path: no route \"/nowhere\""}`},
	} {
		code, body := call(t, "GET", ts.URL+tc.path, "", nil)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s, want %d containing %s", tc.path, code, body, tc.code, tc.want)
		}
	}
	var md ModelMetadataResponse
	if code, body := call(t, "GET", ts.URL+"/v2/models/gauss", "", &md); code != 200 {
		t.Fatalf("metadata: %d %s", code, body)
	}
	if md.Name != "gauss" || strings.Join(md.Versions, ",") != "1,2" || md.Platform != Platform ||
		len(md.Inputs) != 1 || md.Inputs[0].Name != "x" || fmt.Sprint(md.Inputs[0].Shape) != "[-1 2]" ||
		len(md.Outputs) != 2 || md.Outputs[0].Name != "energy" || md.Outputs[1].Name != "grad" {
		t.Errorf("metadata: %+v", md)
	}
	if md.Parameters["family"] != "gmm" || md.Parameters["base_std"] != 1.5 {
		t.Errorf("metadata parameters: %v", md.Parameters)
	}
	if code, _ := call(t, "GET", ts.URL+"/v2/models/gauss/versions/1", "", &md); code != 200 || strings.Join(md.Versions, ",") != "1" {
		t.Errorf("version metadata: %d %+v", code, md.Versions)
	}
}

func TestHTTPInfer(t *testing.T) {
	ts, _ := testServer(t, nil)
	g := testGaussian
	pts := [][2]float64{{1, -2}, {0, 0}, {3.5, 1.25}}
	for _, tc := range []struct {
		name, data, outputs string
		want                []string
	}{
		{"nested", `[[1,-2],[0,0],[3.5,1.25]]`, ``, []string{"energy", "grad"}},
		{"flat", `[1,-2,0,0,3.5,1.25]`, ``, []string{"energy", "grad"}},
		{"grad only", `[1,-2,0,0,3.5,1.25]`, `,"outputs":[{"name":"grad"}]`, []string{"grad"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"id":"r1","inputs":[{"name":"x","shape":[3,2],"datatype":"FP32","data":` + tc.data + `}]` + tc.outputs + `}`
			var resp InferResponse
			code, raw := call(t, "POST", ts.URL+"/v2/models/gauss/versions/1/infer", body, &resp)
			if code != 200 {
				t.Fatalf("%d %s", code, raw)
			}
			if resp.ModelName != "gauss" || resp.ModelVersion != "1" || resp.ID != "r1" || len(resp.Outputs) != len(tc.want) {
				t.Fatalf("response %+v", resp)
			}
			for j, o := range resp.Outputs {
				if o.Name != tc.want[j] || o.Datatype != "FP32" {
					t.Fatalf("output %d: %s %s", j, o.Name, o.Datatype)
				}
				for i, p := range pts {
					dx, dy := p[0]-g.a[0], p[1]-g.a[1]
					switch o.Name {
					case "energy":
						if fmt.Sprint(o.Shape) != "[3]" || math.Abs(float64(o.Data[i])-(0.5*(dx*dx+dy*dy)+g.z)) > 1e-5 {
							t.Errorf("energy[%d] = %v (shape %v), want %v", i, o.Data[i], o.Shape, 0.5*(dx*dx+dy*dy)+g.z)
						}
					case "grad":
						if fmt.Sprint(o.Shape) != "[3 2]" || math.Abs(float64(o.Data[2*i])-dx) > 1e-5 || math.Abs(float64(o.Data[2*i+1])-dy) > 1e-5 {
							t.Errorf("grad[%d] = %v, want (%v, %v)", i, o.Data[2*i:2*i+2], dx, dy)
						}
					}
				}
			}
		})
	}
	// the latest version answers the unversioned route
	code, raw := call(t, "POST", ts.URL+"/v2/models/img/infer", `{"inputs":[{"name":"x","shape":[1,1,4,4],"datatype":"FP32","data":[[[[1,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,2]]]]}]}`, nil)
	if code != 200 || !strings.Contains(raw, `"data":[5]`) {
		t.Errorf("img infer: %d %s", code, raw)
	}
}

func TestHTTPSample(t *testing.T) {
	ts, _ := testServer(t, nil)
	var a, b, c SampleResponse
	req := `{"model":"gauss","n":64,"steps":10,"seed":5}`
	for _, out := range []*SampleResponse{&a, &b} {
		if code, raw := call(t, "POST", ts.URL+"/v1/sample", req, out); code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
	}
	if a.Model != "gauss" || a.Version != "2" || fmt.Sprint(a.Shape) != "[64 2]" || len(a.Samples) != 64 || len(a.Samples[0]) != 2 ||
		a.Weighted || a.LogWeights != nil || a.ESS != nil || a.LogZ != nil || a.H != testGaussian.h {
		t.Errorf("unweighted response: %+v", a)
	}
	if fmt.Sprint(a.Samples) != fmt.Sprint(b.Samples) {
		t.Errorf("same seed, different samples")
	}
	code, raw := call(t, "POST", ts.URL+"/v1/sample", `{"model":"gauss","version":"1","n":500,"steps":50,"h":0.1,"seed":5,"weighted":true,"extra_steps":5}`, &c)
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	if !c.Weighted || len(c.LogWeights) != 500 || c.ESS == nil || c.LogZ == nil || c.ESSFraction == nil || c.H != 0.1 || c.ExtraSteps != 5 {
		t.Fatalf("weighted response: %+v", c)
	}
	// with resampling the final ESS understates log Ẑ's error (the weights
	// before the last resampling are gone); over 40 seeds of this request
	// the error's rms is 0.10, so 0.5 is five standard deviations
	if math.Abs(*c.LogZ-testGaussian.logZ()) > 0.5 {
		t.Errorf("log Ẑ %v, want %v", *c.LogZ, testGaussian.logZ())
	}
	// the image model is reachable by name, with image-shaped rows
	if code, raw := call(t, "POST", ts.URL+"/v1/sample", `{"model":"img","n":3,"steps":2}`, &c); code != 200 || fmt.Sprint(c.Shape) != "[3 1 4 4]" || len(c.Samples[0]) != 16 {
		t.Errorf("img sample: %d %s", code, raw)
	}

	_, metrics := call(t, "GET", ts.URL+"/metrics", "", nil)
	for _, want := range []string{
		`jarzyn_http_requests_total{route="/v1/sample",method="POST",code="200"} 4`,
		`# TYPE jarzyn_http_request_duration_seconds histogram`,
		`jarzyn_http_request_duration_seconds_bucket{route="/v1/sample",le="+Inf"} 4`,
		`jarzyn_http_request_duration_seconds_count{route="/v1/sample"} 4`,
		`jarzyn_sampler_walker_steps_total 28786`, // 2·64·10 + 500·55 + 3·2
		`# TYPE jarzyn_sampler_walker_steps_per_second gauge`,
		`jarzyn_model_ready{model="gauss",version="1",device="cpu"} 1`,
		`jarzyn_http_requests_in_flight 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

// TestHTTPBadRequests sends malformed and out-of-range requests: each must
// get a 4xx whose message names the field, and the server must stay healthy.
func TestHTTPBadRequests(t *testing.T) {
	ts, _ := testServer(t, nil)
	big := `{"model":"gauss","n":10,"steps":1,"pad":"` + strings.Repeat("x", 1<<16) + `"}`
	x := func(shape, data string) string {
		return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"FP32","data":` + data + `}]}`
	}
	const infer = "/v2/models/gauss/infer"
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		field                    string
	}{
		{"empty body", "POST", "/v1/sample", ``, 400, "body"},
		{"not json", "POST", "/v1/sample", `n=10`, 400, "body"},
		{"truncated json", "POST", "/v1/sample", `{"model":"gauss","n":10,`, 400, "body"},
		{"trailing data", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1}{}`, 400, "body"},
		{"too large", "POST", "/v1/sample", big, 413, "body"},
		{"not an object", "POST", "/v1/sample", `[1,2]`, 400, "body"},
		{"unknown field", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"walkers":5}`, 400, "walkers: unknown field"},
		{"n missing", "POST", "/v1/sample", `{"model":"gauss","steps":1}`, 400, "n:"},
		{"n zero", "POST", "/v1/sample", `{"model":"gauss","n":0,"steps":1}`, 400, "n:"},
		{"n negative", "POST", "/v1/sample", `{"model":"gauss","n":-3,"steps":1}`, 400, "n:"},
		{"n too big", "POST", "/v1/sample", `{"model":"gauss","n":5001,"steps":1}`, 400, "n:"},
		{"n overflows int", "POST", "/v1/sample", `{"model":"gauss","n":1e30,"steps":1}`, 400, "n:"},
		{"n fractional", "POST", "/v1/sample", `{"model":"gauss","n":2.5,"steps":1}`, 400, "n:"},
		{"n a string", "POST", "/v1/sample", `{"model":"gauss","n":"10","steps":1}`, 400, "n: want an integer in range, got JSON string"},
		{"steps missing", "POST", "/v1/sample", `{"model":"gauss","n":10}`, 400, "steps:"},
		{"steps negative", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":-1}`, 400, "steps:"},
		{"steps too many", "POST", "/v1/sample", `{"model":"gauss","n":1,"steps":100001}`, 400, "steps:"},
		{"n*steps over limit", "POST", "/v1/sample", `{"model":"gauss","n":5000,"steps":1000}`, 400, "n*steps"},
		{"extra steps unweighted", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"extra_steps":3}`, 400, "extra_steps"},
		{"extra steps negative", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"weighted":true,"extra_steps":-3}`, 400, "extra_steps"},
		{"h negative", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"h":-0.1}`, 400, "h:"},
		{"h zero", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"h":0}`, 400, "h:"},
		{"h overflows", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"h":1e400}`, 400, "h:"},
		{"h a string", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"h":"NaN"}`, 400, "h:"},
		{"seed negative", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"seed":-1}`, 400, "seed"},
		{"seed too big", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"seed":18446744073709551616}`, 400, "seed"},
		{"weighted not bool", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"weighted":"yes"}`, 400, "weighted: want a boolean"},
		{"weighted zero steps", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":0,"weighted":true}`, 400, "steps:"},
		{"init unknown", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"init":"data"}`, 400, "init"},
		{"init uniform weighted", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"init":"uniform","weighted":true}`, 400, "init"},
		{"threshold above 1", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"weighted":true,"resample_threshold":1.5}`, 400, "resample_threshold"},
		{"scheme unknown", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"weighted":true,"resample_scheme":"residual"}`, 400, "resample_scheme"},
		{"model unknown", "POST", "/v1/sample", `{"model":"nope","n":10,"steps":1}`, 404, "model"},
		{"model ambiguous", "POST", "/v1/sample", `{"n":10,"steps":1}`, 404, "model"},
		{"version unknown", "POST", "/v1/sample", `{"model":"gauss","version":"7","n":10,"steps":1}`, 404, "model"},
		{"version without model", "POST", "/v1/sample", `{"version":"1","n":10,"steps":1}`, 400, "version"},
		{"wrong method", "GET", "/v1/sample", ``, 405, "method: /v1/sample takes POST, got \"GET\""},
		{"infer wrong method", "GET", infer, ``, 405, "method: /v2/models/{name}/infer takes POST"},
		{"threshold unweighted", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"resample_threshold":0.5}`, 400, "resample_threshold: only applies to weighted sampling"},
		{"scheme unweighted", "POST", "/v1/sample", `{"model":"gauss","n":10,"steps":1,"resample_scheme":"systematic"}`, 400, "resample_scheme: only applies to weighted sampling"},
		{"infer data ragged", "POST", infer, x(`[2,2]`, `[[1,2],[3]]`), 400, "inputs[0].data: the nesting does not match shape [2 2]"},
		{"infer data nested not as the shape", "POST", infer, x(`[3,2]`, `[[1,2,3],[4,5,6]]`), 400, "inputs[0].data: the nesting does not match shape [3 2]"},
		{"infer unknown model", "POST", "/v2/models/nope/infer", x(`[1,2]`, `[1,2]`), 404, "name"},
		{"infer unknown version", "POST", "/v2/models/gauss/versions/3/infer", x(`[1,2]`, `[1,2]`), 404, "name"},
		{"infer empty body", "POST", infer, ``, 400, "body"},
		{"infer no inputs", "POST", infer, `{"inputs":[]}`, 400, "inputs"},
		{"infer two inputs", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`, 400, "inputs"},
		{"infer input name", "POST", infer, `{"inputs":[{"name":"y","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`, 400, "inputs[0].name"},
		{"infer datatype", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`, 400, "inputs[0].datatype"},
		{"infer datatype missing", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"data":[1,2]}]}`, 400, "inputs[0].datatype"},
		{"infer binary data", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`, 400, "binary_data_size"},
		{"infer shape rank", "POST", infer, x(`[2]`, `[1,2]`), 400, "inputs[0].shape"},
		{"infer shape zero batch", "POST", infer, x(`[0,2]`, `[]`), 400, "inputs[0].shape[0]"},
		{"infer shape negative batch", "POST", infer, x(`[-1,2]`, `[1,2]`), 400, "inputs[0].shape[0]"},
		{"infer batch over limit", "POST", infer, x(`[101,2]`, `[1,2]`), 400, "inputs[0].shape[0]"},
		{"infer shape dim", "POST", infer, x(`[1,3]`, `[1,2,3]`), 400, "inputs[0].shape[1]"},
		{"infer shape not ints", "POST", infer, x(`[1.5,2]`, `[1,2]`), 400, "shape"},
		{"infer data short", "POST", infer, x(`[2,2]`, `[1,2,3]`), 400, "inputs[0].data"},
		{"infer data long", "POST", infer, x(`[1,2]`, `[1,2,3]`), 400, "inputs[0].data"},
		{"infer data missing", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32"}]}`, 400, "inputs[0].data"},
		{"infer data not array", "POST", infer, x(`[1,2]`, `{"a":1}`), 400, "inputs[0].data"},
		{"infer data string NaN", "POST", infer, x(`[1,2]`, `[1,"NaN"]`), 400, "inputs[0].data[1]"},
		{"infer data null element", "POST", infer, x(`[1,2]`, `[null,1]`), 400, "inputs[0].data[0]"},
		{"infer data bool", "POST", infer, x(`[1,2]`, `[1,true]`), 400, "inputs[0].data[1]"},
		{"infer data above float32", "POST", infer, x(`[1,2]`, `[1e39,0]`), 400, "inputs[0].data[0]"},
		{"infer data overflow", "POST", infer, x(`[1,2]`, `[0,-1e400]`), 400, "inputs[0].data[1]"},
		{"infer output unknown", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"hessian"}]}`, 400, "outputs[0].name"},
		{"infer output twice", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"grad"},{"name":"grad"}]}`, 400, "outputs[1].name"},
		{"infer unknown field", "POST", infer, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2],"dtype":"f"}]}`, 400, "dtype: unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, ts.URL+tc.path, tc.body, nil)
			if code != tc.code {
				t.Fatalf("got %d %s, want %d", code, body, tc.code)
			}
			t.Logf("%d %s", code, strings.TrimSpace(body))
			if tc.field != "" {
				var e errorBody
				if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tc.field) {
					t.Errorf("error %q does not name %q", body, tc.field)
				}
			}
			if code, _ := call(t, "GET", ts.URL+"/v2/health/ready", "", nil); code != 200 {
				t.Fatalf("server unhealthy after the request: %d", code)
			}
		})
	}
	// still serving real work
	if code, raw := call(t, "POST", ts.URL+"/v1/sample", `{"model":"gauss","n":10,"steps":3}`, nil); code != 200 {
		t.Fatalf("after bad requests: %d %s", code, raw)
	}
}

func TestHTTPTimeoutAndCancel(t *testing.T) {
	ts, _ := testServer(t, func(c *ServerConfig) {
		c.Timeout = 100 * time.Millisecond
		c.MaxWalkerSteps = 1 << 40
	})
	start := time.Now()
	code, body := call(t, "POST", ts.URL+"/v1/sample", `{"model":"gauss","n":1000,"steps":100000}`, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "timeout") {
		t.Errorf("long request: %d %s, want 503 timeout", code, body)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("timeout took %v to stop the sampler", el)
	}
	// a client that goes away stops its sampler too
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/sample", strings.NewReader(`{"model":"gauss","n":1000,"steps":100000}`))
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Errorf("cancelled request succeeded")
	}
	if code, _ := call(t, "POST", ts.URL+"/v1/sample", `{"model":"gauss","n":10,"steps":3}`, nil); code != 200 {
		t.Errorf("after timeouts: %d", code)
	}
}

func TestHTTPConcurrent(t *testing.T) {
	ts, _ := testServer(t, nil)
	var wg sync.WaitGroup
	errs := make(chan string, 32)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"model":"gauss","n":%d,"steps":20,"seed":%d,"weighted":%v}`, 10+i, i, i%2 == 0)
			resp, err := http.Post(ts.URL+"/v1/sample", "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var out SampleResponse
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil || out.N != 10+i {
				errs <- fmt.Sprintf("request %d: %d", i, resp.StatusCode)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestServeGracefulShutdown cancels Serve's context while a request is in
// flight: the request completes, then Serve returns and the port closes.
func TestServeGracefulShutdown(t *testing.T) {
	needORT(t)
	reg, err := LoadFile(writeFile(t, t.TempDir(), "gauss.onnx", testGaussian.build(t)), "", LoadOptions{Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if got := reg.Names(); len(got) != 1 || got[0] != "gauss" {
		t.Fatalf("names %v", got)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(reg, ServerConfig{Logger: quietLog})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 30*time.Second) }()
	url := "http://" + ln.Addr().String()
	type result struct {
		code int
		body []byte
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Post(url+"/v1/sample", "application/json", bytes.NewReader([]byte(`{"n":2000,"steps":3000}`)))
		if err != nil {
			inflight <- result{0, []byte(err.Error())}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{resp.StatusCode, b}
	}()
	// wait until the request is being served, then shut down
	for deadline := time.Now().Add(10 * time.Second); ; {
		var buf bytes.Buffer
		srv.metrics.write(&buf)
		if strings.Contains(buf.String(), "jarzyn_http_requests_in_flight 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("request never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	r := <-inflight
	if r.code != 200 {
		t.Errorf("in-flight request during shutdown: %d %s", r.code, r.body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if srv.ready.Load() {
		t.Errorf("still ready after shutdown")
	}
	if _, err := http.Get(url + "/v2/health/live"); err == nil {
		t.Errorf("server still accepting after shutdown")
	}
}

// TestUnknownJSONField pins unknownJSONField, the one place that recognises
// encoding/json's untyped unknown-field error, against the standard library:
// top level and nested keys, keys that need quoting, and other errors.
func TestUnknownJSONField(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type outer struct {
		In []inner `json:"in"`
		B  string  `json:"b"`
	}
	for _, tc := range []struct {
		body, field string
		ok          bool
	}{
		{`{"b":"x","zz":1}`, "zz", true},
		{`{"in":[{"a":1,"deep":2}]}`, "deep", true},
		{`{"we\"ird ü":1}`, `we"ird ü`, true},
		{`{"b":1}`, "", false},
		{`{"b":`, "", false},
	} {
		dec := json.NewDecoder(strings.NewReader(tc.body))
		dec.DisallowUnknownFields()
		var v outer
		err := dec.Decode(&v)
		if err == nil {
			t.Fatalf("%s: decoded", tc.body)
		}
		field, ok := unknownJSONField(err)
		if field != tc.field || ok != tc.ok {
			t.Errorf("%s: %v: unknownJSONField = %q, %v; want %q, %v", tc.body, err, field, ok, tc.field, tc.ok)
		}
	}
	if f, ok := unknownJSONField(errors.New("json: unknown field")); ok {
		t.Errorf("a bare prefix gave %q", f)
	}
}
