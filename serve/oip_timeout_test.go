package serve

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// /v2 infer runs under the request timeout: a server whose timeout has passed
// by the time the model would run answers 503 with the timeout error, the
// same code and {"error": …} shape as a sampling timeout; a server with a
// normal timeout answers the same request.
func TestHTTPInferTimeout(t *testing.T) {
	const body = `{"inputs":[{"name":"x","shape":[3,2],"datatype":"FP32","data":[[1,-2],[0,0],[3.5,1.25]]}]}`
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		code    int
	}{
		{"tiny timeout", time.Nanosecond, http.StatusServiceUnavailable},
		{"normal timeout", 20 * time.Second, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, _ := testServer(t, func(c *ServerConfig) { c.Timeout = tc.timeout })
			// with a 1 ns timeout the context has ended before the slot wait,
			// which then answers 503 "server busy" (also a timeout answer) or
			// takes the free slot, at random: repeat until the infer path
			// answers (each try reaches it with probability ½)
			timeouts := 0
			for i := 0; i < 30 && timeouts < 3; i++ {
				code, raw := call(t, "POST", ts.URL+"/v2/models/gauss/infer", body, nil)
				if code != tc.code {
					t.Fatalf("request %d: %d %s, want %d", i, code, raw, tc.code)
				}
				if code == http.StatusOK {
					var resp InferResponse
					if err := json.Unmarshal([]byte(raw), &resp); err != nil || len(resp.Outputs) != 2 || len(resp.Outputs[0].Data) != 3 {
						t.Fatalf("request %d: response %s (%v)", i, raw, err)
					}
					continue
				}
				var eb map[string]any
				if err := json.Unmarshal([]byte(raw), &eb); err != nil || len(eb) != 1 {
					t.Fatalf("request %d: body %s is not {\"error\": …} (%v)", i, raw, err)
				}
				msg, _ := eb["error"].(string)
				switch {
				case strings.HasPrefix(msg, "timeout: ") && strings.Contains(msg, tc.timeout.String()):
					timeouts++
				case strings.HasPrefix(msg, "server busy: "):
				default:
					t.Fatalf("request %d: error %q, want a timeout naming %v", i, msg, tc.timeout)
				}
			}
			if tc.code != http.StatusOK && timeouts == 0 {
				t.Fatalf("no request reached the infer timeout (all waited for a slot)")
			}
		})
	}
}

// runUnder, table-driven: a context that has ended or whose deadline has
// passed stops the evaluation before it runs; one that ends during run
// terminates ONNX Runtime's Runs (each Run after the termination fails) and
// the caller gets the context's error; a live context leaves a Run alone.
func TestRunUnder(t *testing.T) {
	m := loadGaussian(t, testGaussian)
	b, err := m.NewBatch(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	for i := range b.X {
		b.X[i] = float32(i)
	}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		// cancel inside run, then Run until a Run fails
		cancelInRun bool
		runs        bool // run is called
		want        error
	}{
		{"live", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		},
			false, true, nil},
		{"cancelled before", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, false, false, context.Canceled},
		{"deadline passed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, false, false, context.DeadlineExceeded},
		{"deadline passed, not yet reported", func() (context.Context, context.CancelFunc) {
			return staleDeadline{context.Background(), time.Now().Add(-time.Millisecond)}, func() {}
		}, false, false, context.DeadlineExceeded},
		{"cancelled during run", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			true, true, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			called, runs := false, 0
			var runErr error
			err := runUnder(ctx, func(ro *ort.RunOptions) error {
				called = true
				if !tc.cancelInRun {
					return m.Eval(b, ro)
				}
				cancel()
				// the termination lands asynchronously (context.AfterFunc); a
				// Run whose options were never terminated keeps succeeding
				for limit := time.Now().Add(5 * time.Second); time.Now().Before(limit); runs++ {
					if runErr = m.Eval(b, ro); runErr != nil {
						return runErr
					}
				}
				return nil
			})
			if called != tc.runs {
				t.Fatalf("run called: %v, want %v", called, tc.runs)
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("runUnder returned %v, want %v", err, tc.want)
			}
			if tc.cancelInRun {
				if runErr == nil {
					t.Fatalf("%d Runs after the context ended all succeeded: the Run was never terminated", runs)
				}
				t.Logf("terminated after %d more Runs: %v", runs, runErr)
			}
			if tc.want == nil {
				// energy ½|x − a|² + z at the first point (0, 1)
				dx, dy := 0-testGaussian.a[0], 1-testGaussian.a[1]
				if want := 0.5*(dx*dx+dy*dy) + testGaussian.z; math.Abs(float64(b.Energy[0])-want) > 1e-5 {
					t.Fatalf("energy %v, want %v", b.Energy[0], want)
				}
			}
		})
	}
}

// staleDeadline is a context whose deadline has passed but whose Err and Done
// do not say so yet, as a timer context is between its deadline and its timer
// firing.
type staleDeadline struct {
	context.Context
	dl time.Time
}

func (c staleDeadline) Deadline() (time.Time, bool) { return c.dl, true }
