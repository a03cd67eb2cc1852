package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HostileReport is the hostile-load part of the report.
type HostileReport struct {
	InferClients int `json:"infer_clients"`
	InferBytes   int `json:"infer_body_bytes"`
	InferOK      int `json:"infer_ok"`
	// InferBudget429 counts the budget's refusals: 429 with Retry-After.
	InferBudget429 int    `json:"infer_budget_429"`
	InferErrors    int    `json:"infer_errors"`
	InferFirstErr  string `json:"infer_first_error,omitempty"`
	SlowConns      int    `json:"slow_conns"`
	// SlowCutOff counts slow connections the server ended (answered 408 or
	// 413, or closed); SlowHeldMaxMs is the longest it held one.
	SlowCutOff    int      `json:"slow_cut_off"`
	SlowAnswers   string   `json:"slow_answers"`
	SlowHeldMaxMs float64  `json:"slow_held_max_ms"`
	Probes        int      `json:"probes"`
	ProbeFailures int      `json:"probe_failures"`
	ProbeMaxMs    float64  `json:"probe_max_ms"`
	ProbeSlow     int      `json:"probes_over_limit"`
	BudgetBytes   int64    `json:"budget_bytes"`
	RSSLimitKB    int64    `json:"rss_limit_kb"`
	FDStart       int      `json:"fd_start"`
	FDPeak        int      `json:"fd_peak"`
	FDEnd         int      `json:"fd_end"`
	Failures      []string `json:"failures,omitempty"`
}

// hostileOptions configures the hostile load.
type hostileOptions struct {
	inferClients, inferBytes, inferRows, slow int
	probe                                     bool
	maxProbe                                  time.Duration
	rssBudgets                                float64
	pid                                       int
}

// fdCount counts /proc/PID/fd entries (-1 when unknown).
func fdCount(pid int) int {
	if pid <= 0 {
		return -1
	}
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// serverInfo reads the first served model, its data dimension and the body
// budget from the server.
func serverInfo(base string) (model string, dim int, budget int64, err error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return "", 0, 0, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, `jarzyn_model_ready{model="`); ok && model == "" {
			model = rest[:strings.IndexByte(rest, '"')]
		}
		if v, ok := strings.CutPrefix(l, "jarzyn_http_body_budget_bytes "); ok {
			budget, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	resp.Body.Close()
	if model == "" {
		return "", 0, 0, errors.New("no model in /metrics")
	}
	resp, err = http.Get(base + "/v2/models/" + model)
	if err != nil {
		return "", 0, 0, err
	}
	defer resp.Body.Close()
	var md struct {
		Inputs []struct {
			Shape []int64 `json:"shape"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || len(md.Inputs) != 1 {
		return "", 0, 0, fmt.Errorf("model metadata: %v", err)
	}
	dim = 1
	for _, d := range md.Inputs[0].Shape[1:] {
		dim *= int(d)
	}
	return model, dim, budget, nil
}

// inferBody is an infer request of rows points of dim numbers, padded with
// whitespace to size bytes.
func inferBody(rows, dim, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"inputs":[{"name":"x","shape":[%d`, rows)
	fmt.Fprintf(&b, `,%d],"datatype":"FP32","data":[`, dim)
	for i := 0; i < rows*dim; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(i%1000)/250-2+1e-7*float64(i%7), 'e', 9, 64))
	}
	b.WriteString("]}]")
	if pad := size - b.Len() - 1; pad > 0 {
		b.Write(bytes.Repeat([]byte{' '}, pad))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// slowRequests are what the slow connections send; none sends its body.
var slowRequests = []string{
	"POST /v1/sample HTTP/1.1\r\nHost: loadtest\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"n\":",
	"POST /v1/sample HTTP/1.1\r\nHost: loadtest\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{\"n\":",
	"POST /v2/models/%s/infer HTTP/1.1\r\nHost: loadtest\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{",
}

// runHostile runs the hostile load until ctx ends, then waits for the
// server to let go of the connections.
func runHostile(ctx context.Context, base string, o hostileOptions, rssStartKB int64) HostileReport {
	rep := HostileReport{InferClients: o.inferClients, InferBytes: o.inferBytes, SlowConns: o.slow}
	fail := func(format string, a ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, a...)) }
	model, dim, budget, err := serverInfo(base)
	if err != nil {
		fail("server info: %v", err)
		return rep
	}
	rep.BudgetBytes = budget
	rep.FDStart = fdCount(o.pid)
	u := strings.TrimPrefix(base, "http://")
	var (
		mu        sync.Mutex
		wg        sync.WaitGroup
		fdPeak    atomic.Int64
		slowCodes = map[string]int{}
	)
	fdPeak.Store(int64(rep.FDStart))
	// infer uploads
	body := inferBody(o.inferRows, dim, o.inferBytes)
	rep.InferBytes = len(body)
	tr := &http.Transport{MaxIdleConnsPerHost: o.inferClients}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	for range o.inferClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, refused, errs, first := 0, 0, 0, ""
			for ctx.Err() == nil {
				req, _ := http.NewRequest("POST", base+"/v2/models/"+model+"/infer", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				switch {
				case err != nil:
					errs++
					first = cmp(first, err.Error())
				case resp.StatusCode == 200:
					ok++
				case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "":
					refused++
					s, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(max(s, 1)) * 100 * time.Millisecond):
					}
				default:
					errs++
					first = cmp(first, fmt.Sprintf("status %d", resp.StatusCode))
				}
			}
			mu.Lock()
			rep.InferOK += ok
			rep.InferBudget429 += refused
			rep.InferErrors += errs
			rep.InferFirstErr = cmp(rep.InferFirstErr, first)
			mu.Unlock()
		}()
	}
	// slow connections
	var held []time.Duration
	for i := range o.slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := slowRequests[i%len(slowRequests)]
			if strings.Contains(raw, "%s") {
				raw = fmt.Sprintf(raw, model)
			}
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", u)
				if err != nil {
					mu.Lock()
					slowCodes["dial error"]++
					mu.Unlock()
					time.Sleep(100 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				t0 := time.Now()
				io.WriteString(c, raw)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				what := "closed"
				if err == nil {
					what = strconv.Itoa(resp.StatusCode)
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					// read on until the server closes the connection
					c.SetReadDeadline(time.Now().Add(time.Minute))
					io.Copy(io.Discard, c)
				}
				d := time.Since(t0)
				stop()
				c.Close()
				if ctx.Err() != nil {
					break // cut off by the end of the test, not by the server
				}
				mu.Lock()
				slowCodes[what]++
				held = append(held, d)
				rep.SlowCutOff++
				mu.Unlock()
				select { // reconnect a second later
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	// liveness probe and server resource sampling
	if o.probe {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				t0 := time.Now()
				resp, err := pc.Get(base + "/v2/health/live")
				d := time.Since(t0)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				rep.Probes++
				if err != nil || resp.StatusCode != 200 {
					rep.ProbeFailures++
				}
				rep.ProbeMaxMs = max(rep.ProbeMaxMs, float64(d)/1e6)
				if d >= o.maxProbe {
					rep.ProbeSlow++
				}
				mu.Unlock()
				if n := fdCount(o.pid); int64(n) > fdPeak.Load() {
					fdPeak.Store(int64(n))
				}
			}
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	rep.FDPeak = int(fdPeak.Load())
	for _, d := range held {
		rep.SlowHeldMaxMs = max(rep.SlowHeldMaxMs, float64(d)/1e6)
	}
	var parts []string
	for k, v := range slowCodes {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	rep.SlowAnswers = strings.Join(parts, ", ")
	// checks (the descriptors' in checkFDs, once every client is done)
	if rep.InferErrors > 0 {
		fail("%d infer requests failed (first: %s)", rep.InferErrors, rep.InferFirstErr)
	}
	if o.inferClients > 0 && rep.InferOK == 0 {
		fail("no infer request succeeded")
	}
	if o.probe && (rep.Probes == 0 || rep.ProbeFailures > 0 || rep.ProbeSlow > 0) {
		fail("liveness: %d probes, %d failed, %d took ≥ %v (max %.1f ms)", rep.Probes, rep.ProbeFailures, rep.ProbeSlow, o.maxProbe, rep.ProbeMaxMs)
	}
	if _, peak := rss(o.pid); peak > 0 && budget > 0 && o.rssBudgets > 0 {
		rep.RSSLimitKB = rssStartKB + int64(o.rssBudgets*float64(budget)/1024)
		if peak > rep.RSSLimitKB {
			fail("peak RSS %d kB above the limit %d kB (idle %d kB + %g × the %d-byte body budget)", peak, rep.RSSLimitKB, rssStartKB, o.rssBudgets, budget)
		}
	}
	if o.slow > 0 && rep.SlowCutOff == 0 {
		fail("the server cut off none of the slow connections")
	}
	return rep
}

// checkFDs waits up to 10 s for the server to let go of every connection,
// once every client of this process has closed its idle keep-alive ones,
// and records a failure if it holds more descriptors than at the start.
func checkFDs(rep *HostileReport, pid int) {
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for rep.FDEnd = fdCount(pid); rep.FDEnd > rep.FDStart && time.Now().Before(deadline); rep.FDEnd = fdCount(pid) {
		time.Sleep(100 * time.Millisecond)
	}
	if rep.FDStart >= 0 && rep.FDEnd > rep.FDStart {
		rep.Failures = append(rep.Failures, fmt.Sprintf("file descriptors: %d at the start, %d at the end", rep.FDStart, rep.FDEnd))
	}
}

// cmp keeps the first non-empty string.
func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func printHostile(w io.Writer, r HostileReport) {
	fmt.Fprintf(w, "  infer         %d clients × %d-byte bodies: %d ok, %d budget 429s (Retry-After), %d errors\n", r.InferClients, r.InferBytes, r.InferOK, r.InferBudget429, r.InferErrors)
	fmt.Fprintf(w, "  slow bodies   %d connections: cut off %d times (%s), held at most %.0f ms\n", r.SlowConns, r.SlowCutOff, r.SlowAnswers, r.SlowHeldMaxMs)
	fmt.Fprintf(w, "  liveness      %d probes, %d failed, max %.1f ms, %d over the limit\n", r.Probes, r.ProbeFailures, r.ProbeMaxMs, r.ProbeSlow)
	fmt.Fprintf(w, "  server fds    start %d, peak %d, end %d\n", r.FDStart, r.FDPeak, r.FDEnd)
	if r.RSSLimitKB > 0 {
		fmt.Fprintf(w, "  RSS limit     %.1f MiB (body budget %.0f MiB)\n", float64(r.RSSLimitKB)/1024, float64(r.BudgetBytes)/(1<<20))
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAILED        %s\n", f)
	}
}
