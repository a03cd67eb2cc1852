// Command loadtest is a bounded loopback load test for `jarzyn-serve http`:
// C concurrent clients send small POST /v1/sample requests for a fixed
// duration, then it reports requests/s, latency percentiles, the error count
// and the server's resident memory at the start and end (from /proc/PID).
//
// With -infer-clients, -slow and -probe it is also a hostile-load test:
// clients upload large /v2 infer bodies (-infer-bytes each, against the
// server's in-flight body budget; after a 429 they retry a tenth of its
// Retry-After later, harder than a polite client), -slow connections send headers and then
// never their body (a Content-Length whose bytes never come, a chunk of
// size 2⁶⁴−1, a Content-Length of 1 GB) and reconnect whenever the server
// cuts them off, and a probe asks GET /v2/health/live on a new connection
// every 100 ms. It then checks: no 5xx and no error other than the budget's
// 429s with Retry-After (counted apart), every probe answered within -max-probe-ms,
// the server's peak RSS within -rss-budgets × the body budget above its idle
// RSS, and its file descriptors back to their start count once the clients
// are gone. It exits 1 when a check fails.
//
// It only targets loopback addresses. scripts/loadtest.sh builds and runs
// everything; by hand:
//
//	go run ./serve/loadtest -write-model /tmp/gmm2d.onnx
//	jarzyn-serve http --model /tmp/gmm2d.onnx --addr 127.0.0.1:18080 &
//	go run ./serve/loadtest -url http://127.0.0.1:18080 -c 16 -d 60s -pid $!
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// maxDuration bounds a run.
const maxDuration = 10 * time.Minute

// Report is the JSON summary printed at the end.
type Report struct {
	URL                   string  `json:"url"`
	Clients               int     `json:"clients"`
	DurationSeconds       float64 `json:"duration_seconds"`
	Requests              int     `json:"requests"`
	Errors                int     `json:"errors"`
	RequestsPerSecond     float64 `json:"requests_per_second"`
	P50ms                 float64 `json:"p50_ms"`
	P90ms                 float64 `json:"p90_ms"`
	P99ms                 float64 `json:"p99_ms"`
	MaxMs                 float64 `json:"max_ms"`
	RSSStartKB            int64   `json:"rss_start_kb,omitempty"`
	RSSEndKB              int64   `json:"rss_end_kb,omitempty"`
	RSSPeakKB             int64   `json:"rss_peak_kb,omitempty"`
	ServerWalkerStepsPerS float64 `json:"server_walker_steps_per_second,omitempty"`
	FirstError            string  `json:"first_error,omitempty"`
	// Hostile is the hostile load's part (-infer-clients, -slow, -probe).
	Hostile *HostileReport `json:"hostile,omitempty"`
}

func main() {
	target := flag.String("url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	clients := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 60*time.Second, "duration (at most 10m)")
	body := flag.String("body", `{"n":16,"steps":10}`, "JSON body of each POST /v1/sample; a \"seed\" is added per request unless present")
	pid := flag.Int("pid", 0, "server process id, for its RSS from /proc/PID/status")
	wait := flag.Duration("wait-ready", 30*time.Second, "wait this long for GET /v2/health/ready before starting")
	writeModel := flag.String("write-model", "", "write a small 2-D Gaussian-mixture model to this file and exit")
	var h hostileOptions
	flag.IntVar(&h.inferClients, "infer-clients", 0, "clients uploading large /v2 infer bodies at the same time")
	flag.IntVar(&h.inferBytes, "infer-bytes", 7_000_000, "size of each infer body (rows of data, then whitespace)")
	flag.IntVar(&h.inferRows, "infer-rows", 65536, "rows of each infer body")
	flag.IntVar(&h.slow, "slow", 0, "connections that send headers and never their body")
	flag.BoolVar(&h.probe, "probe", false, "probe GET /v2/health/live on a new connection every 100 ms (on with -infer-clients or -slow)")
	flag.DurationVar(&h.maxProbe, "max-probe", 100*time.Millisecond, "longest a liveness probe may take")
	flag.Float64Var(&h.rssBudgets, "rss-budgets", 4, "the server's peak RSS may exceed its idle RSS by this many body budgets (0: no check)")
	flag.Parse()
	if *writeModel != "" {
		if err := writeGMM(*writeModel); err != nil {
			fail(err)
		}
		return
	}
	if *clients < 1 || *dur <= 0 || *dur > maxDuration {
		fail(fmt.Errorf("need -c ≥ 1 and 0 < -d ≤ %v", maxDuration))
	}
	base, err := loopback(*target)
	if err != nil {
		fail(err)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(*body), &req); err != nil {
		fail(fmt.Errorf("-body: %v", err))
	}
	if err := waitReady(base, *wait); err != nil {
		fail(err)
	}
	h.pid = *pid
	hostile := h.inferClients > 0 || h.slow > 0 || h.probe
	h.probe = hostile
	rssStart, _ := rss(*pid)
	var hrep HostileReport
	done := make(chan struct{})
	if hostile {
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), *dur)
			defer cancel()
			hrep = runHostile(ctx, base, h, rssStart)
		}()
	} else {
		close(done)
	}
	rep := run(base, *clients, *dur, req, *pid)
	<-done
	if hostile {
		checkFDs(&hrep, *pid)
		rep.Hostile = &hrep
		rep.RSSEndKB, rep.RSSPeakKB = rss(*pid)
	}
	printReport(os.Stdout, rep)
	if rep.Requests == 0 || rep.Errors > 0 || len(hrep.Failures) > 0 {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "loadtest: %v\n", err)
	os.Exit(2)
}

// loopback checks that the URL names a loopback host.
func loopback(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("-url %q: only loopback addresses (127.0.0.1, ::1) may be load-tested", raw)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func waitReady(base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(base + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s not ready after %v (last: %v)", base, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rss reads VmRSS and VmHWM (peak) in kB from /proc/PID/status.
func rss(pid int) (cur, peak int64) {
	if pid <= 0 {
		return 0, 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "VmRSS:":
			cur = v
		case "VmHWM:":
			peak = v
		}
	}
	return cur, peak
}

// serverCounters reads the sampler counters from GET /metrics.
func serverCounters(base string) (steps, seconds float64) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(fs[1], 64)
		switch fs[0] {
		case "jarzyn_sampler_walker_steps_total":
			steps = v
		case "jarzyn_sampler_seconds_total":
			seconds = v
		}
	}
	return steps, seconds
}

func run(base string, clients int, dur time.Duration, req map[string]any, pid int) Report {
	rep := Report{URL: base, Clients: clients}
	rep.RSSStartKB, _ = rss(pid)
	steps0, secs0 := serverCounters(base)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	var (
		mu       sync.Mutex
		lats     []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			nerr, ferr := 0, ""
			for i := 0; ctx.Err() == nil; i++ {
				r := make(map[string]any, len(req)+1)
				for k, v := range req {
					r[k] = v
				}
				if _, ok := r["seed"]; !ok {
					r["seed"] = c*1_000_000 + i
				}
				b, _ := json.Marshal(r)
				t0 := time.Now()
				hr, _ := http.NewRequestWithContext(context.Background(), "POST", base+"/v1/sample", bytes.NewReader(b))
				hr.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(hr)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mine = append(mine, time.Since(t0))
				if err != nil {
					nerr++
					if ferr == "" {
						ferr = err.Error()
					}
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += nerr
			if firstErr == "" {
				firstErr = ferr
			}
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	tr.CloseIdleConnections()
	el := time.Since(start)
	rep.DurationSeconds = el.Seconds()
	rep.Requests, rep.Errors, rep.FirstError = len(lats), errs, firstErr
	rep.RequestsPerSecond = float64(len(lats)) / el.Seconds()
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return math.NaN()
		}
		i := min(len(lats)-1, int(math.Ceil(p*float64(len(lats))))-1)
		return float64(lats[max(0, i)]) / 1e6
	}
	rep.P50ms, rep.P90ms, rep.P99ms, rep.MaxMs = pct(0.5), pct(0.9), pct(0.99), pct(1)
	rep.RSSEndKB, rep.RSSPeakKB = rss(pid)
	if steps1, secs1 := serverCounters(base); secs1 > secs0 {
		rep.ServerWalkerStepsPerS = (steps1 - steps0) / (secs1 - secs0)
	}
	return rep
}

func printReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "loadtest %s: %d clients for %.1f s\n", r.URL, r.Clients, r.DurationSeconds)
	fmt.Fprintf(w, "  requests      %d (%.1f/s), errors %d\n", r.Requests, r.RequestsPerSecond, r.Errors)
	fmt.Fprintf(w, "  latency       p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	if r.RSSStartKB > 0 {
		fmt.Fprintf(w, "  server RSS    start %.1f MiB, end %.1f MiB, peak %.1f MiB\n", float64(r.RSSStartKB)/1024, float64(r.RSSEndKB)/1024, float64(r.RSSPeakKB)/1024)
	}
	if r.ServerWalkerStepsPerS > 0 {
		fmt.Fprintf(w, "  sampler       %.3g walker-steps/s while sampling (server metrics)\n", r.ServerWalkerStepsPerS)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error   %s\n", r.FirstError)
	}
	if r.Hostile != nil {
		printHostile(w, *r.Hostile)
	}
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}

// writeGMM writes a 2-D two-mode Gaussian mixture (modes at (−3, 0) and
// (3, 0), masses ¼ and ¾) exported with package export.
func writeGMM(path string) error {
	p, err := models.NewParams(models.Spec{Family: models.GMM, Dim: 2, Modes: 2, BaseStd: 3})
	if err != nil {
		return err
	}
	copy(p.Get("means").Data, []float64{-3, 0, 3, 0})
	copy(p.Get("log_mass").Data, []float64{0, -math.Log(3)})
	b, err := export.Build(p, models.TrainingInfo{Method: "loadtest", StepSize: 0.05, LogZEstimate: math.NaN(), DataMin: -6, DataMax: 6})
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	return nil
}
