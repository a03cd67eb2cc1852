package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveOn runs testServer's models behind Serve (the http.Server of
// jarzyn-serve http, with its timeouts) on a loopback port, logging at
// Debug into the returned buffer, and returns the address.
func serveOn(t *testing.T, mod func(*ServerConfig)) (addr string, srv *Server, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	reg, cfg := testRegistry(t, func(c *ServerConfig) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if mod != nil {
			mod(c)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = NewServer(reg, cfg)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		stop()
		<-done
		reg.Close()
	})
	return ln.Addr().String(), srv, logs
}

// rawResponse is what a raw request got back.
type rawResponse struct {
	code   int
	header http.Header
	body   string
	err    error // no response: the connection closed or timed out
}

// rawRequest writes raw bytes to a new connection (closing its write side
// when closeWrite), and reads one response within wait.
func rawRequest(t *testing.T, addr, raw string, closeWrite bool, wait time.Duration) rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, raw); err != nil {
		return rawResponse{err: err}
	}
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return rawResponse{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// TestHostileRequests sends hostile requests to the real server: each gets
// its specific 4xx and, from jarzyn's handlers, a JSON error naming the
// field, at most a few hundred bytes even when the request echoes 100 KB
// strings; every log line stays short; and the server stays healthy.
func TestHostileRequests(t *testing.T) {
	addr, _, logs := serveOn(t, func(c *ServerConfig) { c.MaxBodyBytes = 1 << 20 })
	base := "http://" + addr
	long := strings.Repeat("A", 100_000)
	deep := `{"n":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + `,"steps":1}`
	x := func(shape, data string) string {
		return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"FP32","data":` + data + `}]}`
	}
	post := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	}
	const infer = "/v2/models/gauss/infer"
	for _, tc := range []struct {
		name, method, path, body string
		// raw, when set, is sent as it is instead (closing the write side)
		raw   string
		code  int
		field string // the JSON error starts with it; "" for net/http's own plain-text answers
		allow string // the Allow header of a 405
	}{
		{name: "n huge", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1e300,"steps":1}`, code: 400, field: "n: "},
		{name: "n NaN literal", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":NaN,"steps":1}`, code: 400, field: "body: "},
		{name: "n negative", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":-5,"steps":1}`, code: 400, field: "n: "},
		{name: "n max int64", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":9223372036854775807,"steps":9223372036854775807}`, code: 400, field: "n: "},
		{name: "steps huge", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":2000000000}`, code: 400, field: "steps: "},
		{name: "extra steps overflow", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":100,"weighted":true,"extra_steps":9223372036854775807}`, code: 400, field: "extra_steps: "},
		{name: "h NaN string", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"h":"NaN"}`, code: 400, field: "h: "},
		{name: "h Inf", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"h":1e999}`, code: 400, field: "h: "},
		{name: "weighted a number", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"weighted":1}`, code: 400, field: "weighted: "},
		{name: "n an object", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":{"a":1},"steps":1}`, code: 400, field: "n: "},
		{name: "deep nesting", method: "POST", path: "/v1/sample", body: deep, code: 400, field: "body: "},
		{name: "unknown long field", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"` + long + `":1}`, code: 400, field: "AAAA"},
		{name: "huge model name", method: "POST", path: "/v1/sample", body: `{"model":"` + long + `","n":1,"steps":1}`, code: 404, field: "model: "},
		{name: "huge version", method: "POST", path: "/v1/sample", body: `{"model":"gauss","version":"` + long + `","n":1,"steps":1}`, code: 404, field: "model: "},
		{name: "huge init", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"init":"` + long + `"}`, code: 400, field: "init: "},
		{name: "huge scheme", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"weighted":true,"resample_scheme":"` + long + `"}`, code: 400, field: "resample_scheme: "},
		{name: "threshold unweighted", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"resample_threshold":0.3}`, code: 400, field: "resample_threshold: "},
		{name: "scheme unweighted", method: "POST", path: "/v1/sample", body: `{"model":"gauss","n":1,"steps":1,"resample_scheme":"systematic"}`, code: 400, field: "resample_scheme: "},
		{name: "infer huge model name in path", method: "POST", path: "/v2/models/" + long[:30_000] + "/infer", body: x(`[1,2]`, `[1,2]`), code: 404, field: "name: "},
		{name: "infer huge input name", method: "POST", path: infer, body: `{"inputs":[{"name":"` + long + `","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`, code: 400, field: "inputs[0].name: "},
		{name: "infer long shape", method: "POST", path: infer, body: x(`[`+strings.Repeat("1,", 50_000)+`1]`, `[1]`), code: 400, field: "inputs[0].shape: "},
		{name: "infer ragged rows", method: "POST", path: infer, body: x(`[2,2]`, `[[1,2],[3]]`), code: 400, field: "inputs[0].data: "},
		{name: "infer ragged lengths", method: "POST", path: infer, body: x(`[2,2]`, `[[1,2,3],[4]]`), code: 400, field: "inputs[0].data: "},
		{name: "infer nesting not the shape", method: "POST", path: infer, body: x(`[3,2]`, `[[1,2,3],[4,5,6]]`), code: 400, field: "inputs[0].data: "},
		{name: "infer numbers and arrays", method: "POST", path: infer, body: x(`[2,2]`, `[[1,2],3,4]`), code: 400, field: "inputs[0].data: "},
		{name: "infer too deep", method: "POST", path: infer, body: x(`[1,2]`, `[[[1,2]]]`), code: 400, field: "inputs[0].data: "},
		{name: "infer long number", method: "POST", path: infer, body: x(`[1,2]`, `[1`+strings.Repeat("0", 100_000)+`,2]`), code: 400, field: "inputs[0].data[0]: "},
		{name: "infer data a string", method: "POST", path: infer, body: x(`[1,2]`, `"`+long+`"`), code: 400, field: "inputs[0].data: "},
		{name: "GET on POST route", method: "GET", path: "/v1/sample", code: 405, field: "method: ", allow: "POST"},
		{name: "DELETE on GET route", method: "DELETE", path: "/v2/health/live", code: 405, field: "method: ", allow: "GET, HEAD"},
		{name: "PUT on infer", method: "PUT", path: "/v2/models/gauss/versions/1/infer", body: `{}`, code: 405, field: "method: ", allow: "POST"},
		{name: "custom method", method: strings.Repeat("X", 10_000), path: "/v1/sample", code: 405, field: "method: ", allow: "POST"},
		{name: "unknown path", method: "GET", path: "/" + long[:20_000], code: 404, field: "path: "},
		{name: "Content-Length over the limit", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n{", code: 413, field: "body: "},
		{name: "Content-Length larger than the body", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"n\":1", code: 400, field: "body: "},
		{name: "Content-Length smaller than the body", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n{\"model\":\"gauss\",\"n\":1,\"steps\":1}", code: 400, field: "body: "},
		{name: "truncated infer body", raw: post(infer, x(`[2,2]`, `[[1,2],[3,4]]`))[:160], code: 400, field: "body: "},
		{name: "bad chunk size", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", code: 400, field: "body: "},
		{name: "chunked body over the limit", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 1<<20+10, strings.Repeat(" ", 1<<20+10)), code: 413, field: "body: "},
		{name: "Content-Length not a number", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}", code: 400},
		{name: "negative Content-Length", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n{}", code: 400},
		{name: "two Content-Lengths", raw: "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", code: 400},
		{name: "headers too large", raw: "GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Big: " + strings.Repeat("a", 2*MaxHeaderBytes) + "\r\n\r\n", code: 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rawResponse
			if tc.raw != "" {
				r = rawRequest(t, addr, tc.raw, true, 10*time.Second)
				if r.err != nil {
					t.Fatalf("no response: %v", r.err)
				}
			} else {
				req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r = rawResponse{code: resp.StatusCode, header: resp.Header, body: string(b)}
			}
			if r.code != tc.code {
				t.Fatalf("got %d %.300s, want %d", r.code, r.body, tc.code)
			}
			t.Logf("%d %.200s", r.code, strings.TrimSpace(r.body))
			if tc.allow != "" && r.header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tc.allow)
			}
			if tc.field == "" {
				return
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || len(e) != 1 || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("body %.300q (%s) is not {\"error\": …}: %v", r.body, r.header.Get("Content-Type"), err)
			}
			msg, _ := e["error"].(string)
			if !strings.HasPrefix(msg, tc.field) {
				t.Errorf("error %.300q does not start with %q", msg, tc.field)
			}
			if len(r.body) > 600 {
				t.Errorf("error body of %d bytes echoes the request: %.300s…", len(r.body), r.body)
			}
		})
	}
	code, _ := call(t, "POST", base+"/v1/sample", `{"model":"gauss","n":10,"steps":3}`, nil)
	if code != 200 {
		t.Errorf("after the hostile requests: %d", code)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 2000 {
			t.Errorf("log line of %d bytes: %.300s…", len(line), line)
		}
	}
}

// TestMetricsLabelsBounded: requests with distinct 16 KB methods, distinct
// paths and unknown model names add no labels: /metrics stays small, and
// counts them as method "other" and route "unmatched".
func TestMetricsLabelsBounded(t *testing.T) {
	ts, _ := testServer(t, nil)
	for i := 0; i < 200; i++ {
		method := fmt.Sprintf("M%05d%s", i, strings.Repeat("X", 16<<10))
		call(t, method, ts.URL+"/v1/sample", "", nil)
		call(t, "GET", fmt.Sprintf("%s/nowhere/%d/%s", ts.URL, i, strings.Repeat("p", 1000)), "", nil)
		call(t, "GET", fmt.Sprintf("%s/v2/models/unknown%05d/ready", ts.URL, i), "", nil)
	}
	_, m := call(t, "GET", ts.URL+"/metrics", "", nil)
	if len(m) > 16<<10 {
		t.Errorf("/metrics grew to %d bytes", len(m))
	}
	for _, want := range []string{
		`jarzyn_http_requests_total{route="/v1/sample",method="other",code="405"} 200`,
		`jarzyn_http_requests_total{route="unmatched",method="GET",code="404"} 200`,
		`jarzyn_http_requests_total{route="/v2/models/{name}/ready",method="GET",code="404"} 200`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, bad := range []string{"XXXX", "unknown0", "nowhere", "pppp"} {
		if strings.Contains(m, bad) {
			t.Errorf("metrics contain %q from a request", bad)
		}
	}
}

// metricValue reads a sample's value from the server's /metrics.
func metricValue(t *testing.T, base, name string) string {
	t.Helper()
	_, m := call(t, "GET", base+"/metrics", "", nil)
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitMetric polls /metrics until name has the value want.
func waitMetric(t *testing.T, base, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricValue(t, base, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInflightBudget: a body is admitted only while its charge (3× its
// size) fits in the in-flight budget. With one 300 KB upload in flight (its
// body still arriving) in a 1.2 MB budget, a 150 KB body (by Content-Length)
// and a chunked one are answered 429 with Retry-After, while 50 KB ones are
// served; once the upload ends, the 150 KB body is served too.
func TestInflightBudget(t *testing.T) {
	addr, _, logs := serveOn(t, func(c *ServerConfig) {
		c.MaxBodyBytes, c.MaxInflightBytes = 400_000, 1_200_000
	})
	base := "http://" + addr
	// an infer body padded with spaces to size bytes
	padded := func(size int) string {
		b := `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`
		return b + strings.Repeat(" ", size-len(b))
	}
	const infer = "/v2/models/gauss/infer"
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n{\"inputs\":", infer)
	waitMetric(t, base, "jarzyn_http_body_bytes_in_flight", "900000")

	post := func(body string, chunked bool) (int, http.Header, string) {
		var r io.Reader = strings.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length: the client sends it chunked
		}
		resp, err := http.Post(base+infer, "application/json", r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		code    int
	}{
		{"150 KB by length", 150_000, false, 429},
		{"150 KB chunked", 150_000, true, 429},
		{"50 KB by length", 50_000, false, 200},
		{"50 KB chunked", 50_000, true, 200},
	} {
		code, h, body := post(padded(tc.size), tc.chunked)
		if code != tc.code {
			t.Errorf("%s: %d %.200s, want %d", tc.name, code, body, tc.code)
		}
		if code == 429 && (h.Get("Retry-After") != "1" || !strings.Contains(body, `"error":"server busy: `)) {
			t.Errorf("%s: 429 with Retry-After %q, body %s", tc.name, h.Get("Retry-After"), body)
		}
	}
	// back-pressure, not a failure: logged at Warn
	if l := logs.String(); strings.Contains(l, "level=ERROR") || !strings.Contains(l, `level=WARN msg="request rejected" method=POST path=/v2/models/gauss/infer code=429 err="server busy: `) {
		t.Errorf("budget refusals not logged at Warn alone:\n%s", l)
	}
	// the upload ends (its client goes away): its charge is released
	slow.Close()
	waitMetric(t, base, "jarzyn_http_body_bytes_in_flight", "0")
	if code, _, body := post(padded(150_000), false); code != 200 {
		t.Errorf("after the upload: %d %.200s", code, body)
	}
	if got := metricValue(t, base, "jarzyn_http_body_budget_bytes"); got != "1200000" {
		t.Errorf("budget gauge %q", got)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(es)
}

// TestSlowBodies: the server cuts off clients that send their headers or
// body slowly or never, within the read timeout: a Content-Length whose
// body never comes, a chunk of size 2⁶⁴−1 that never comes, headers that
// never end. 50 such connections at once are all closed (answered 408 or
// cut off) and their descriptors released; a Content-Length over the limit
// is answered 413 at once, before any body.
func TestSlowBodies(t *testing.T) {
	const readTimeout = 500 * time.Millisecond
	addr, _, _ := serveOn(t, func(c *ServerConfig) { c.ReadTimeout = readTimeout })
	fd0 := openFDs(t)
	for _, tc := range []struct {
		name string
		raw  string
		code int // 0: the connection is closed without an answer
	}{
		{"body never sent", "POST /v1/sample HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{\"n\":", 408},
		{"huge chunk never sent", "POST /v1/sample HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{\"n\":", 408},
		{"headers never end", "POST /v1/sample HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n", 0},
		{"Content-Length 1 GB", "POST /v2/models/gauss/infer HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const conns = 50
			var wg sync.WaitGroup
			results := make([]rawResponse, conns)
			took := make([]time.Duration, conns)
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					results[i] = rawRequest(t, addr, tc.raw, false, 10*readTimeout)
					took[i] = time.Since(t0)
				}()
			}
			wg.Wait()
			for i, r := range results {
				if ne, ok := r.err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("connection %d still open after %v", i, took[i])
				}
				if r.code != tc.code || (tc.code == 0) != (r.err != nil) {
					t.Fatalf("connection %d: %d %q (%v), want %d", i, r.code, r.body, r.err, tc.code)
				}
				if took[i] > 4*readTimeout {
					t.Errorf("connection %d held %v", i, took[i])
				}
			}
			t.Logf("%d %q %v; took %v", results[0].code, results[0].body, results[0].err, took[0])
		})
	}
	// the connections' descriptors are released (both ends are in this process)
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > fd0+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if fd := openFDs(t); fd > fd0+5 {
		t.Errorf("%d descriptors open, %d before", fd, fd0)
	}
}

// TestClientGoneWhileQueued: a client that gives up while its request waits
// (for the one evaluation slot with batching off, for room in the walker
// pool with batching on) is recorded as 499 and logged at Info, not as a 503
// "server busy" at Error.
func TestClientGoneWhileQueued(t *testing.T) {
	for _, tc := range []struct {
		batching, while string
		mod             func(*ServerConfig)
	}{
		{BatchingOff, "waiting for a sampler", func(c *ServerConfig) { c.MaxConcurrent = 1 }},
		{BatchingOn, "waiting for room in the walker pool", func(c *ServerConfig) { c.PoolWalkers, c.BatchMaxN = 1000, 1000 }},
	} {
		t.Run("batching="+tc.batching, func(t *testing.T) {
			addr, _, logs := serveOn(t, func(c *ServerConfig) {
				c.Batching = tc.batching
				c.MaxWalkerSteps = 1 << 40
				tc.mod(c)
			})
			base := "http://" + addr
			send := func(ctx context.Context, body string) {
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/sample", strings.NewReader(body))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			// the first request holds the slot (the whole pool) until it is cancelled
			holdCtx, release := context.WithCancel(context.Background())
			held := make(chan struct{})
			go func() { send(holdCtx, `{"model":"gauss","n":1000,"steps":100000}`); close(held) }()
			waitMetric(t, base, "jarzyn_http_requests_in_flight", "2") // the request and this /metrics
			// the second waits; its client gives up
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			send(ctx, `{"model":"gauss","n":10,"steps":1}`)
			waitMetric(t, base, `jarzyn_http_requests_total{route="/v1/sample",method="POST",code="499"}`, "1")
			release()
			<-held
			waitMetric(t, base, `jarzyn_http_requests_total{route="/v1/sample",method="POST",code="499"}`, "2")
			_, m := call(t, "GET", base+"/metrics", "", nil)
			if strings.Contains(m, `code="503"`) {
				t.Errorf("a client that went away was counted as 503:\n%s", m)
			}
			l := logs.String()
			if strings.Contains(l, "level=ERROR") {
				t.Errorf("a client that went away was logged at ERROR:\n%s", l)
			}
			if want := `level=INFO msg="client went away" method=POST path=/v1/sample while="` + tc.while + `"`; !strings.Contains(l, want) {
				t.Errorf("no Info line %q for the queued client:\n%s", want, l)
			}
		})
	}
}

// TestServerConfigCheck: limits above the hard limits are refused, naming
// the setting; NewServer clamps them.
func TestServerConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		mod   func(*ServerConfig)
		field string
	}{
		{func(c *ServerConfig) {}, ""},
		{func(c *ServerConfig) { c.MaxN = HardMaxN + 1 }, "max_n"},
		{func(c *ServerConfig) { c.MaxSteps = -1 }, "max_steps"},
		{func(c *ServerConfig) { c.MaxWalkerSteps = 1 << 62 }, "max_walker_steps"},
		{func(c *ServerConfig) { c.MaxOutputValues = HardMaxValues + 1 }, "max_output_values"},
		{func(c *ServerConfig) { c.MaxInferBatch = HardMaxN + 1 }, "max_infer_batch"},
		{func(c *ServerConfig) { c.MaxBodyBytes = HardMaxBodyBytes + 1 }, "max_body"},
		{func(c *ServerConfig) { c.MaxInflightBytes = -1 }, "max_inflight_bytes"},
		{func(c *ServerConfig) { c.ReadTimeout = 25 * time.Hour }, "read_timeout"},
		{func(c *ServerConfig) { c.Timeout = -time.Second }, "timeout"},
		{func(c *ServerConfig) { c.MaxConcurrent = 100_000 }, "max_concurrent"},
	} {
		c := DefaultServerConfig()
		tc.mod(&c)
		err := c.Check()
		fe, _ := err.(*FieldError)
		if (tc.field == "") != (err == nil) || (fe != nil && fe.Field != tc.field) {
			t.Errorf("%+v: %v, want field %q", c, err, tc.field)
		}
		d := c.withDefaults()
		if d.Check() != nil || d.MaxInflightBytes < BodyMemoryFactor*d.MaxBodyBytes {
			t.Errorf("withDefaults of %+v: %+v: %v", c, d, d.Check())
		}
	}
}

// TestClip: echoed strings are cut at 64 bytes on a rune boundary with "…";
// shorter ones are kept.
func TestClip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"gauss", "gauss"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "…"},
		{strings.Repeat("a", 63) + "éé", strings.Repeat("a", 63) + "…"},
	} {
		if got := clip(tc.in); got != tc.want {
			t.Errorf("clip(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := clipMessage(strings.Repeat("é", 1000)); len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("clipMessage: %d bytes", len(got))
	}
}
