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
// With -roll-dir it rolls model versions during the load: the server runs
// with --models DIR, and every -roll-every the newest version folder v of
// -roll-model is copied to v+1 (in place, the model before its seal), the
// load generator waits until the server serves v+1, removes v and waits
// until it is unloaded (-roll-hup sends SIGHUP to -pid after each change;
// otherwise the server's polling finds them); -roll-infer clients send
// small infer requests beside the sampling clients. Any failed request, or
// a roll that does not complete, fails the run.
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
	// WalkerStepsPerS is n·(steps+extra_steps) of the successful requests per second.
	WalkerStepsPerS float64 `json:"walker_steps_per_second"`
	FirstError      string  `json:"first_error,omitempty"`
	// Classes is each client class's part (-c/-body, then -c2/-body2).
	Classes []ClassReport `json:"classes"`
	// Hostile is the hostile load's part (-infer-clients, -slow, -probe).
	Hostile *HostileReport `json:"hostile,omitempty"`
	// Roll is the model roll's part (-roll-dir).
	Roll *RollReport `json:"roll,omitempty"`
}

func main() {
	target := flag.String("url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	clients := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 60*time.Second, "duration (at most 10m)")
	body := flag.String("body", `{"n":16,"steps":10}`, "JSON body of each POST /v1/sample; a \"seed\" is added per request unless present")
	clients2 := flag.Int("c2", 0, "concurrent clients of a second class, sending -body2 at the same time")
	body2 := flag.String("body2", `{"n":1000,"steps":100}`, "JSON body of the second class's requests")
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
	var ro rollOptions
	flag.StringVar(&ro.dir, "roll-dir", "", "the server's --models DIR: roll versions of -roll-model in it during the load")
	flag.StringVar(&ro.model, "roll-model", "gmm2d", "the model whose versions are rolled")
	flag.DurationVar(&ro.every, "roll-every", 5*time.Second, "time between rolls")
	flag.BoolVar(&ro.hup, "roll-hup", false, "send SIGHUP to -pid after each change of the folder (default: the server's polling finds them)")
	flag.IntVar(&ro.inferClients, "roll-infer", 4, "with -roll-dir: clients of small infer requests on -roll-model")
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
	var req, req2 map[string]any
	if err := json.Unmarshal([]byte(*body), &req); err != nil {
		fail(fmt.Errorf("-body: %v", err))
	}
	classes := []class{{Name: "small", Clients: *clients, Req: req}}
	if *clients2 > 0 {
		if err := json.Unmarshal([]byte(*body2), &req2); err != nil {
			fail(fmt.Errorf("-body2: %v", err))
		}
		classes = append(classes, class{Name: "large", Clients: *clients2, Req: req2})
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
	var rrep RollReport
	rolled := make(chan struct{})
	if ro.dir != "" {
		ro.pid = *pid
		rrep.Model = ro.model
		go func() {
			defer close(rolled)
			ctx, cancel := context.WithTimeout(context.Background(), *dur)
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				runRollInfer(ctx, base, ro, &rrep)
			}()
			rollModel(ctx, base, ro, &rrep)
			wg.Wait()
		}()
	} else {
		close(rolled)
	}
	rep := run(base, classes, *dur, *pid)
	<-done
	<-rolled
	if ro.dir != "" {
		rrep.LastVersion = lastSampleVersion(base, ro.model)
		if rrep.Rolls == 0 {
			rrep.Failures = append(rrep.Failures, "no roll completed: make -d longer than -roll-every")
		}
		rep.Roll = &rrep
	}
	if hostile {
		checkFDs(&hrep, *pid)
		rep.Hostile = &hrep
		rep.RSSEndKB, rep.RSSPeakKB = rss(*pid)
	}
	printReport(os.Stdout, rep)
	if rep.Requests == 0 || rep.Errors > 0 || len(hrep.Failures) > 0 || len(rrep.Failures) > 0 || rrep.InferErrors > 0 {
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

// class is a kind of client: Clients concurrent clients sending Req.
type class struct {
	Name    string
	Clients int
	Req     map[string]any
}

// ClassReport is one client class's part of a run.
type ClassReport struct {
	Name              string  `json:"name"`
	Clients           int     `json:"clients"`
	Body              string  `json:"body"`
	Requests          int     `json:"requests"`
	Errors            int     `json:"errors"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// WalkerStepsPerS is n·(steps+extra_steps) of its successful requests per second.
	WalkerStepsPerS float64 `json:"walker_steps_per_second"`
	P50ms           float64 `json:"p50_ms"`
	P90ms           float64 `json:"p90_ms"`
	P99ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	FirstError      string  `json:"first_error,omitempty"`
}

// walkerSteps is n·(steps + extra_steps) of a request body.
func walkerSteps(req map[string]any) float64 {
	num := func(k string) float64 { v, _ := req[k].(float64); return v }
	return num("n") * (num("steps") + num("extra_steps"))
}

func run(base string, classes []class, dur time.Duration, pid int) Report {
	total := 0
	for _, c := range classes {
		total += c.Clients
	}
	rep := Report{URL: base, Clients: total}
	rep.RSSStartKB, _ = rss(pid)
	steps0, secs0 := serverCounters(base)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: total, MaxConnsPerHost: total}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	type tally struct {
		mu       sync.Mutex
		lats     []time.Duration
		ok, errs int
		firstErr string
	}
	tallies := make([]tally, len(classes))
	var wg sync.WaitGroup
	start := time.Now()
	id := 0
	for k, cl := range classes {
		for c := 0; c < cl.Clients; c++ {
			wg.Add(1)
			go func(k, c int) {
				defer wg.Done()
				var mine []time.Duration
				nok, nerr, ferr := 0, 0, ""
				for i := 0; ctx.Err() == nil; i++ {
					r := make(map[string]any, len(cl.Req)+1)
					for key, v := range cl.Req {
						r[key] = v
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
					} else {
						nok++
					}
				}
				t := &tallies[k]
				t.mu.Lock()
				t.lats = append(t.lats, mine...)
				t.ok += nok
				t.errs += nerr
				if t.firstErr == "" {
					t.firstErr = ferr
				}
				t.mu.Unlock()
			}(k, id)
			id++
		}
	}
	wg.Wait()
	tr.CloseIdleConnections()
	el := time.Since(start)
	rep.DurationSeconds = el.Seconds()
	var all []time.Duration
	for k, cl := range classes {
		t := &tallies[k]
		body, _ := json.Marshal(cl.Req)
		cr := ClassReport{Name: cl.Name, Clients: cl.Clients, Body: string(body), Requests: len(t.lats), Errors: t.errs,
			RequestsPerSecond: float64(len(t.lats)) / el.Seconds(), WalkerStepsPerS: float64(t.ok) * walkerSteps(cl.Req) / el.Seconds(), FirstError: t.firstErr}
		cr.P50ms, cr.P90ms, cr.P99ms, cr.MaxMs = percentiles(t.lats)
		rep.Classes = append(rep.Classes, cr)
		rep.Requests += cr.Requests
		rep.Errors += cr.Errors
		rep.WalkerStepsPerS += cr.WalkerStepsPerS
		if rep.FirstError == "" {
			rep.FirstError = cr.FirstError
		}
		all = append(all, t.lats...)
	}
	rep.RequestsPerSecond = float64(len(all)) / el.Seconds()
	rep.P50ms, rep.P90ms, rep.P99ms, rep.MaxMs = percentiles(all)
	rep.RSSEndKB, rep.RSSPeakKB = rss(pid)
	if steps1, secs1 := serverCounters(base); secs1 > secs0 {
		rep.ServerWalkerStepsPerS = (steps1 - steps0) / (secs1 - secs0)
	}
	return rep
}

// percentiles are the 50th, 90th, 99th percentiles and the maximum of lats
// in milliseconds (lats is sorted in place).
func percentiles(lats []time.Duration) (p50, p90, p99, maxMs float64) {
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return math.NaN()
		}
		i := min(len(lats)-1, int(math.Ceil(p*float64(len(lats))))-1)
		return float64(lats[max(0, i)]) / 1e6
	}
	return pct(0.5), pct(0.9), pct(0.99), pct(1)
}

func printReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "loadtest %s: %d clients for %.1f s\n", r.URL, r.Clients, r.DurationSeconds)
	fmt.Fprintf(w, "  requests      %d (%.1f/s), errors %d\n", r.Requests, r.RequestsPerSecond, r.Errors)
	fmt.Fprintf(w, "  latency       p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	fmt.Fprintf(w, "  walker-steps  %.4g/s (n·steps of the successful requests, client side)\n", r.WalkerStepsPerS)
	if len(r.Classes) > 1 {
		for _, c := range r.Classes {
			fmt.Fprintf(w, "  %-6s %3d clients of %s: %d requests (%.1f/s), errors %d, %.4g walker-steps/s, p50 %.2f ms, p99 %.2f ms\n",
				c.Name, c.Clients, c.Body, c.Requests, c.RequestsPerSecond, c.Errors, c.WalkerStepsPerS, c.P50ms, c.P99ms)
		}
	}
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
	if r.Roll != nil {
		printRoll(w, *r.Roll)
	}
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}

// writeGMM writes a 2-D two-mode Gaussian mixture (modes at (−3, 0) and
// (3, 0), masses ¼ and ¾) exported with package export, and its seal.
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
	return models.WriteSeal(path, b)
}
