package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// repoServer serves OpenRepository(dir) (every version) with testServer's
// limits and returns the server and the registry.
func repoServer(t *testing.T, dir string) (*httptest.Server, *Registry) {
	t.Helper()
	reg, err := OpenRepository(dir, RepositoryOptions{Load: LoadOptions{Threads: 1, Logger: quietLog}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{MaxN: 5000, MaxSteps: 100_000, MaxWalkerSteps: 2_000_000, MaxInferBatch: 100, MaxBodyBytes: 1 << 16,
		Timeout: 20 * time.Second, Logger: quietLog}
	ts := httptest.NewServer(NewServer(reg, cfg))
	t.Cleanup(func() {
		ts.Close()
		reg.Close()
	})
	return ts, reg
}

// The repository endpoints: index (all, ready only), unload and load, their
// errors in the JSON error shape, and the live set of models in readiness,
// metadata and /metrics.
func TestRepositoryEndpoints(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	putVersion(t, dir, "gauss", "1", 1)
	putVersion(t, dir, "gauss", "2", 2)
	putVersion(t, dir, "other", "1", 1)
	ts, reg := repoServer(t, dir)
	// a bad model at the start fails the open: add it afterwards
	putRaw(t, dir, "broken", "1", []byte("not a model"), []byte("not a model"))
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	reg.scan(scanForce)

	index := func(body string) string {
		t.Helper()
		var rows []RepositoryModel
		if code, b := call(t, "POST", ts.URL+"/v2/repository/index", body, &rows); code != 200 {
			t.Fatalf("index %s: %d %s", body, code, b)
		}
		return renderIndex(rows)
	}
	metricsHas := func(series string) bool {
		_, b := call(t, "GET", ts.URL+"/metrics", "", nil)
		return strings.Contains(b, series)
	}
	if got, want := index(""), "broken/1=UNAVAILABLE(failed) gauss/1=READY gauss/2=READY other/1=READY"; got != want {
		t.Errorf("index: %s, want %s", got, want)
	}
	if got, want := index(`{"ready": true}`), "gauss/1=READY gauss/2=READY other/1=READY"; got != want {
		t.Errorf("ready index: %s, want %s", got, want)
	}
	if code, b := call(t, "GET", ts.URL+"/v2", "", nil); code != 200 || !strings.Contains(b, `"extensions":["model_repository"]`) {
		t.Errorf("GET /v2: %d %s", code, b)
	}

	// unload: gone from every route at once, left unloaded by scans
	var rows []RepositoryModel
	if code, b := call(t, "POST", ts.URL+"/v2/repository/models/gauss/unload", "", &rows); code != 200 ||
		renderIndex(rows) != "gauss/1=UNAVAILABLE(unloaded) gauss/2=UNAVAILABLE(unloaded)" {
		t.Fatalf("unload: %d %s", code, b)
	}
	for _, path := range []string{"/v2/models/gauss", "/v2/models/gauss/ready", "/v2/models/gauss/versions/1/ready"} {
		if code, b := call(t, "GET", ts.URL+path, "", nil); code != 404 || !strings.Contains(b, `"error":"name: model not found`) {
			t.Errorf("GET %s after unload: %d %s", path, code, b)
		}
	}
	if code, b := call(t, "POST", ts.URL+"/v1/sample", `{"model":"gauss","n":4,"steps":1}`, nil); code != 404 {
		t.Errorf("sample after unload: %d %s", code, b)
	}
	if metricsHas(`jarzyn_model_ready{model="gauss"`) || !metricsHas(`jarzyn_model_ready{model="other",version="1",device="cpu"} 1`) {
		t.Error("/metrics does not follow the unload")
	}
	putVersion(t, dir, "gauss", "3", 3)
	reg.scan(scanForce)
	if got, want := index(""), "broken/1=UNAVAILABLE(failed) gauss/1=UNAVAILABLE(unloaded) gauss/2=UNAVAILABLE(unloaded) gauss/3=UNAVAILABLE(unloaded) other/1=READY"; got != want {
		t.Errorf("index after unload and a rescan: %s, want %s", got, want)
	}

	// load: served again, the new version included
	if code, b := call(t, "POST", ts.URL+"/v2/repository/models/gauss/load", `{}`, &rows); code != 200 ||
		renderIndex(rows) != "gauss/1=READY gauss/2=READY gauss/3=READY" {
		t.Fatalf("load: %d %s", code, b)
	}
	var md ModelMetadataResponse
	if code, _ := call(t, "GET", ts.URL+"/v2/models/gauss", "", &md); code != 200 || strings.Join(md.Versions, ",") != "1,2,3" {
		t.Errorf("metadata after load: %d %v", code, md.Versions)
	}
	if !metricsHas(`jarzyn_model_ready{model="gauss",version="3",device="cpu"} 1`) {
		t.Error("/metrics does not list the loaded version")
	}
	// a version found since the last scan
	putVersion(t, dir, "gauss", "4", 4)
	if got := index(""); !strings.Contains(got, "gauss/4=UNAVAILABLE(new)") {
		t.Errorf("index with a new folder: %s", got)
	}

	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"load unknown", "/v2/repository/models/nope/load", "", 404, `{"error":"name: model not in the repository: no model \"nope\" in the models folder"}`},
		{"unload unknown", "/v2/repository/models/nope/unload", "", 404, `"error":"name: model not in the repository`},
		{"load a bad name", "/v2/repository/models/..%2Fetc/load", "", 404, `"error":"name: model not in the repository`},
		{"load a long name", "/v2/repository/models/" + strings.Repeat("a", 300) + "/load", "", 404, `aaaa…\" in the models folder`},
		{"load a broken model", "/v2/repository/models/broken/load", "", 422, `"error":"name: model not loaded: no version of broken could be served (version 1: load failed: model broken/1/model.onnx is not a loadable ONNX model`},
		{"load a model without versions", "/v2/repository/models/empty/load", "", 422, `(it has no version folders)`},
		{"load with parameters", "/v2/repository/models/gauss/load", `{"parameters":{"config":"{}"}}`, 400, `{"error":"parameters.config: not supported"}`},
		{"unload with an unknown field", "/v2/repository/models/gauss/unload", `{"unload_dependents":true}`, 400, `{"error":"unload_dependents: unknown field"}`},
		{"index with a bad body", "/v2/repository/index", `{"ready": 1}`, 400, `{"error":"ready: want a boolean, got JSON number"}`},
		{"index with trailing data", "/v2/repository/index", `{} {}`, 400, `"error":"body: trailing data`},
		{"index body too large", "/v2/repository/index", `{"ready":true` + strings.Repeat(" ", 1<<16) + `}`, 413, `"error":"body: Content-Length`},
		{"GET on index", "/v2/repository/index", "", 405, `"error":"method: /v2/repository/index takes POST, got \"GET\""`},
	} {
		method := "POST"
		if strings.HasPrefix(tc.name, "GET") {
			method = "GET"
		}
		if code, b := call(t, method, ts.URL+tc.path, tc.body, nil); code != tc.code || !strings.Contains(b, tc.want) {
			t.Errorf("%s: %d %s, want %d containing %s", tc.name, code, b, tc.code, tc.want)
		}
	}
	if got := index(""); !strings.Contains(got, "gauss/1=READY gauss/2=READY gauss/3=READY") {
		t.Errorf("the errors changed the index: %s", got)
	}
	// a model folder removed since the last scan: no longer loadable, still
	// known to unload
	os.RemoveAll(filepath.Join(dir, "broken"))
	if code, b := call(t, "POST", ts.URL+"/v2/repository/models/broken/load", "", nil); code != 404 {
		t.Errorf("load of a removed folder: %d %s", code, b)
	}
	if code, b := call(t, "POST", ts.URL+"/v2/repository/models/broken/unload", "", nil); code != 200 {
		t.Errorf("unload of a model known from the last scan: %d %s", code, b)
	}

	// every model unloaded: not ready
	for _, n := range []string{"gauss", "other"} {
		if code, b := call(t, "POST", ts.URL+"/v2/repository/models/"+n+"/unload", "", nil); code != 200 {
			t.Fatalf("unload %s: %d %s", n, code, b)
		}
	}
	if code, b := call(t, "GET", ts.URL+"/v2/health/ready", "", nil); code != 503 || strings.TrimSpace(b) != `{"ready":false}` {
		t.Errorf("ready with no model: %d %s", code, b)
	}
	if code, _ := call(t, "POST", ts.URL+"/v2/repository/models/other/load", "", nil); code != 200 {
		t.Fatal("load other")
	}
	if code, _ := call(t, "GET", ts.URL+"/v2/health/ready", "", nil); code != 200 {
		t.Errorf("ready after a load: %d", code)
	}
}

// A server of one model file has no repository: its repository routes
// answer 404 in the JSON error shape, and GET /v2 lists no extension.
func TestRepositoryEndpointsWithoutRepository(t *testing.T) {
	needORT(t)
	reg, err := LoadFile(writeFile(t, t.TempDir(), "gauss.onnx", testGaussian.build(t)), "", LoadOptions{Threads: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(NewServer(reg, ServerConfig{Logger: quietLog}))
	defer func() {
		ts.Close()
		reg.Close()
	}()
	for _, path := range []string{"/v2/repository/index", "/v2/repository/models/gauss/load", "/v2/repository/models/gauss/unload"} {
		if code, b := call(t, "POST", ts.URL+path, "", nil); code != 404 || strings.TrimSpace(b) != `{"error":"repository: this server serves one model file (--model) and has no model repository; start it with --models DIR"}` {
			t.Errorf("POST %s: %d %s", path, code, b)
		}
	}
	if code, b := call(t, "GET", ts.URL+"/v2", "", nil); code != 200 || !strings.Contains(b, `"extensions":[]`) {
		t.Errorf("GET /v2: %d %s", code, b)
	}
	if code, _ := call(t, "GET", ts.URL+"/v2/models/gauss", "", nil); code != 200 {
		t.Errorf("model still served: %d", code)
	}
}

// openapi.json describes the repository extension's request and response
// types with the same properties as their JSON fields.
func TestRepositoryOpenAPISchemas(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"RepositoryIndexRequest": RepositoryIndexRequest{}, "RepositoryModelRequest": RepositoryModelRequest{}, "RepositoryModel": RepositoryModel{}} {
		var props, fields []string
		for p := range doc.Components.Schemas[name].Properties {
			props = append(props, p)
		}
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(props)
		slices.Sort(fields)
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has properties %v; %s has JSON fields %v", name, props, rt.Name(), fields)
		}
	}
}

// eventually polls cond every 5 ms for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// status is the status code of a GET, or 0 when it fails.
func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// New versions rolled in, changed in place and the old ones removed under
// load, by polling and by explicit loads, lose no request: 8 concurrent
// clients of /v1/sample and /v2/…/infer see only 200s, and the newest
// version ends up served.
func TestRepositorySwapUnderLoad(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	putVersion(t, dir, "gauss", "1", 1)
	putVersion(t, dir, "gauss", "2", 2)
	putVersion(t, dir, "other", "1", 1)
	ts, reg := repoServer(t, dir)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		reg.Watch(ctx, 10*time.Millisecond, nil)
	}()

	var (
		wg       sync.WaitGroup
		ok, bad  atomic.Int64
		mu       sync.Mutex
		firstBad string
		lastV    [8]string
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second}
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var url, body string
				var out struct {
					Version      string `json:"version"`
					ModelVersion string `json:"model_version"`
				}
				if c%2 == 0 {
					url, body = ts.URL+"/v1/sample", fmt.Sprintf(`{"model":"gauss","n":64,"steps":20,"seed":%d}`, i)
				} else {
					url, body = ts.URL+"/v2/models/gauss/infer", `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[0,0,1,-2]}]}`
				}
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					bad.Add(1)
					mu.Lock()
					if firstBad == "" {
						firstBad = fmt.Sprintf("%s: %v", url, err)
					}
					mu.Unlock()
					continue
				}
				ok.Add(1)
				lastV[c] = out.Version + out.ModelVersion
			}
		}()
	}
	served := func(v string) func() bool {
		return func() bool { return status(ts.URL+"/v2/models/gauss/versions/"+v+"/ready") == 200 }
	}
	gone := func(v string) func() bool {
		return func() bool { return status(ts.URL+"/v2/models/gauss/versions/"+v+"/ready") == 404 }
	}
	time.Sleep(50 * time.Millisecond)
	// roll 3 in by polling, written in place (no rename): the scans wait
	// for it to be complete
	putVersion(t, dir, "gauss", "3", 3)
	eventually(t, "version 3 served", served("3"))
	os.RemoveAll(filepath.Join(dir, "gauss", "1"))
	os.RemoveAll(filepath.Join(dir, "gauss", "2"))
	eventually(t, "versions 1 and 2 unloaded", func() bool { return gone("1")() && gone("2")() })
	load := func() {
		if code, b := call(t, "POST", ts.URL+"/v2/repository/models/gauss/load", "", nil); code != 200 {
			t.Errorf("load: %d %s", code, b)
		}
	}
	// change 3 in place, again and again: each new file replaces the
	// served one while requests run on it, picked up by polling or loaded
	// explicitly
	for i := range 6 {
		z := float64(5 + i)
		putVersion(t, dir, "gauss", "3", z)
		if i%2 == 1 {
			load()
		}
		eventually(t, "the changed version 3 served", func() bool { return servedZ(reg, "gauss", "3") == z })
		time.Sleep(10 * time.Millisecond)
	}
	// roll 4 in and 3 out explicitly
	putVersion(t, dir, "gauss", "4", 4)
	load()
	if status(ts.URL+"/v2/models/gauss/versions/4/ready") != 200 {
		t.Error("version 4 not served after load")
	}
	os.RemoveAll(filepath.Join(dir, "gauss", "3"))
	load()
	if status(ts.URL+"/v2/models/gauss/versions/3/ready") != 404 {
		t.Error("version 3 still served after its removal and a load")
	}
	before := ok.Load()
	eventually(t, "requests after the roll", func() bool { return ok.Load() >= before+40 })
	stop()
	wg.Wait()
	<-watched
	if bad.Load() > 0 {
		t.Fatalf("%d of %d requests failed; first: %s", bad.Load(), bad.Load()+ok.Load(), firstBad)
	}
	for c, v := range lastV {
		if v != "4" {
			t.Errorf("client %d: last answer from version %q, want 4", c, v)
		}
	}
	if got := renderIndex(mustIndex(t, reg)); got != "gauss/4=READY other/1=READY" {
		t.Errorf("index at the end: %s", got)
	}
	t.Logf("%d requests, 0 failed", ok.Load())
}

// `jarzyn-serve http --models DIR` rescans on SIGHUP (polling off), and
// its flags --version-policy and --poll-interval are checked.
func TestRunHTTPRescanOnSIGHUP(t *testing.T) {
	needORT(t)
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	putVersion(t, dir, "gauss", "1", 1)
	putVersion(t, dir, "gauss", "2", 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunHTTP(ctx, HTTPOptions{ModelsDir: dir, Listener: ln, VersionPolicy: VersionPolicy{Latest: 1},
			Load: LoadOptions{Threads: 1}, Server: ServerConfig{Logger: quietLog}})
	}()
	url := "http://" + ln.Addr().String()
	eventually(t, "the server", func() bool { return status(url+"/v2/health/ready") == 200 })
	if status(url+"/v2/models/gauss/versions/1/ready") != 404 || status(url+"/v2/models/gauss/versions/2/ready") != 200 {
		t.Error("latest:1 does not serve version 2 alone")
	}
	putRaw(t, dir, "gauss", "3", zModel(t, 3), nil) // unsealed: a poll would wait a scan
	if err := self.Signal(syscall.SIGHUP); err != nil {
		t.Skipf("no SIGHUP here: %v", err)
	}
	eventually(t, "version 3 after SIGHUP", func() bool { return status(url+"/v2/models/gauss/versions/3/ready") == 200 })
	if status(url+"/v2/models/gauss/versions/2/ready") != 404 {
		t.Error("version 2 still served under latest:1")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	model := writeFile(t, dir, "one.onnx", zModel(t, 1))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"http", "--models", dir, "--version-policy", "newest"}, `--version-policy: want all, latest:N or specific:V1,V2,…, got "newest"`},
		{[]string{"http", "--models", dir, "--version-policy", "latest:0"}, "--version-policy: latest:N needs a whole number N in [1, 1024]"},
		{[]string{"http", "--models", dir, "--poll-interval", "-1s"}, "--poll-interval: must be ≥ 0 (0: only on SIGHUP), got -1s"},
		{[]string{"http", "--model", model, "--poll-interval", "1s"}, "--poll-interval applies to --models DIR, not to one --model FILE"},
		{[]string{"http", "--model", model, "--version-policy", "all"}, "--version-policy applies to --models DIR"},
	} {
		if code, _, stderr := runMain(t, context.Background(), tc.args...); code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d containing %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
}

// A model unloaded while a request samples from it finishes that request
// (200), and is closed only afterwards.
func TestRepositoryUnloadDuringRequest(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	putVersion(t, dir, "gauss", "1", 1)
	ts, reg := repoServer(t, dir)
	m, err := reg.Get("gauss", "1")
	if err != nil {
		t.Fatal(err)
	}
	m.Release()
	type answer struct {
		code int
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Post(ts.URL+"/v1/sample", "application/json", strings.NewReader(`{"model":"gauss","n":100,"steps":20000}`))
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = io.Copy(&b, resp.Body)
		done <- answer{resp.StatusCode, b.String(), err}
	}()
	eventually(t, "the request to hold the model", func() bool { return m.refs.Load() >= 2 })
	if code, b := call(t, "POST", ts.URL+"/v2/repository/models/gauss/unload", "", nil); code != 200 {
		t.Fatalf("unload: %d %s", code, b)
	}
	if closedModel(m) {
		t.Error("model closed while the request runs")
	}
	a := <-done
	if a.err != nil || a.code != 200 || !strings.Contains(a.body, `"version":"1"`) {
		t.Fatalf("request running through the unload: %d %.200s %v", a.code, a.body, a.err)
	}
	if !closedModel(m) || m.refs.Load() != 0 {
		t.Errorf("model not closed after the request (refs %d)", m.refs.Load())
	}
}
