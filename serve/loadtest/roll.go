package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RollReport is the model-roll part of the report (-roll-dir): versions
// rolled into the server's models folder during the load, and the infer
// clients that ran beside the sampling clients.
type RollReport struct {
	Model string `json:"model"`
	// Rolls counts completed rolls: version v+1 copied in and served, then
	// version v removed and unloaded.
	Rolls int `json:"rolls"`
	// ServeMs and UnloadMs are the times from writing a version (removing
	// one) until the server serves it (stops serving it).
	ServeMsMean  float64 `json:"serve_ms_mean"`
	ServeMsMax   float64 `json:"serve_ms_max"`
	UnloadMsMean float64 `json:"unload_ms_mean"`
	UnloadMsMax  float64 `json:"unload_ms_max"`
	// LastVersion is the version the sampling clients were last answered by.
	LastVersion  string   `json:"last_version"`
	InferClients int      `json:"infer_clients"`
	InferOK      int64    `json:"infer_ok"`
	InferErrors  int64    `json:"infer_errors"`
	InferFirst   string   `json:"infer_first_error,omitempty"`
	Failures     []string `json:"failures,omitempty"`
}

// rollOptions configures the roll.
type rollOptions struct {
	dir, model   string
	every        time.Duration
	hup          bool
	inferClients int
	pid          int
}

// rollModel rolls versions of o.model in o.dir until ctx ends: every
// o.every it copies the newest version folder v to v+1 file by file in
// place (model.onnx, then its seal: a scan may see it half-written), waits
// until the server serves v+1, removes v and waits until the server stops
// serving it. With o.hup it sends SIGHUP to the server after each change;
// otherwise the server's polling finds them.
func rollModel(ctx context.Context, base string, o rollOptions, rep *RollReport) {
	var serve, unload []float64
	defer func() {
		rep.ServeMsMean, rep.ServeMsMax = meanMax(serve)
		rep.UnloadMsMean, rep.UnloadMsMax = meanMax(unload)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.every):
		}
		v, err := newestVersion(filepath.Join(o.dir, o.model))
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			return
		}
		next := strconv.Itoa(v + 1)
		t0 := time.Now()
		if err := copyVersion(filepath.Join(o.dir, o.model, strconv.Itoa(v)), filepath.Join(o.dir, o.model, next)); err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			return
		}
		o.signal()
		if !waitStatus(ctx, base+"/v2/models/"+o.model+"/versions/"+next+"/ready", 200) {
			if ctx.Err() == nil {
				rep.Failures = append(rep.Failures, "version "+next+" never served")
			}
			return
		}
		serve = append(serve, float64(time.Since(t0))/1e6)
		t0 = time.Now()
		if err := os.RemoveAll(filepath.Join(o.dir, o.model, strconv.Itoa(v))); err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			return
		}
		o.signal()
		if !waitStatus(ctx, base+"/v2/models/"+o.model+"/versions/"+strconv.Itoa(v)+"/ready", 404) {
			if ctx.Err() == nil {
				rep.Failures = append(rep.Failures, fmt.Sprintf("version %d never unloaded", v))
			}
			return
		}
		unload = append(unload, float64(time.Since(t0))/1e6)
		rep.Rolls++
	}
}

func (o rollOptions) signal() {
	if o.hup && o.pid > 0 {
		syscall.Kill(o.pid, syscall.SIGHUP)
	}
}

func meanMax(v []float64) (mean, mx float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
		mx = max(mx, x)
	}
	return mean / float64(len(v)), mx
}

// newestVersion is the largest whole-number version folder under dir.
func newestVersion(dir string) (int, error) {
	items, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var vs []int
	for _, it := range items {
		if v, err := strconv.Atoi(it.Name()); err == nil && it.IsDir() {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("no numbered version folder under %s", dir)
	}
	return slices.Max(vs), nil
}

// copyVersion copies the files of a version folder, the model before its
// seal.
func copyVersion(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	items, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	slices.SortFunc(items, func(a, b os.DirEntry) int {
		return strings.Compare(strings.TrimSuffix(a.Name(), ".sha256"), strings.TrimSuffix(b.Name(), ".sha256"))
	})
	for _, it := range items {
		b, err := os.ReadFile(filepath.Join(from, it.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, it.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// waitStatus polls GET url every 10 ms until it answers code or ctx ends.
func waitStatus(ctx context.Context, url string, code int) bool {
	for ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// runRollInfer runs o.inferClients clients of small infer requests on
// o.model until ctx ends.
func runRollInfer(ctx context.Context, base string, o rollOptions, rep *RollReport) {
	var ok, bad atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.inferClients}, Timeout: time.Minute}
	body := `{"inputs":[{"name":"x","shape":[4,2],"datatype":"FP32","data":[0,0,1,1,-3,0,3,0]}]}`
	for range o.inferClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Post(base+"/v2/models/"+o.model+"/infer", "application/json", strings.NewReader(body))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("infer: status %d", resp.StatusCode)
					}
				}
				if err != nil {
					bad.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	rep.InferClients, rep.InferOK, rep.InferErrors = o.inferClients, ok.Load(), bad.Load()
	if f, _ := first.Load().(string); f != "" {
		rep.InferFirst = f
	}
}

// lastSampleVersion asks one sampling request which version answers now.
func lastSampleVersion(base, model string) string {
	resp, err := http.Post(base+"/v1/sample", "application/json", strings.NewReader(`{"model":"`+model+`","n":1,"steps":1}`))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out struct {
		Version string `json:"version"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Version
}

func printRoll(w io.Writer, r RollReport) {
	fmt.Fprintf(w, "  rolls         %d of model %s: served %.0f ms after the copy (max %.0f), unloaded %.0f ms after the removal (max %.0f); last version %s\n",
		r.Rolls, r.Model, r.ServeMsMean, r.ServeMsMax, r.UnloadMsMean, r.UnloadMsMax, r.LastVersion)
	if r.InferClients > 0 {
		fmt.Fprintf(w, "  infer         %d clients: %d ok, %d errors\n", r.InferClients, r.InferOK, r.InferErrors)
	}
	if r.InferFirst != "" {
		fmt.Fprintf(w, "  infer error   %s\n", r.InferFirst)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAIL          %s\n", f)
	}
}
