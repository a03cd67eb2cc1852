package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// batchCases are requests of different kinds that join the shared batch at
// different steps: plain and weighted, their own h, seeds, schedules,
// resampling settings, starts and sizes (not multiples of 64 too).
var batchCases = []SampleConfig{
	{N: 16, Steps: 60, Seed: 1},
	{N: 16, Steps: 25, Seed: 2, StepSize: 0.02},
	{N: 200, Steps: 40, Seed: 3, Weighted: true, ResampleThreshold: 0.9},
	{N: 130, Steps: 30, Seed: 4, Weighted: true, ExtraSteps: 7, ResampleThreshold: 0.5, ResampleScheme: "multinomial"},
	{N: 70, Steps: 10, Seed: 5, Init: InitUniform},
	{N: 1000, Steps: 20, Seed: 6, Weighted: true, ResampleThreshold: 0},
	{N: 1, Steps: 33, Seed: 7},
}

// runBatched runs batchCases[0] in bt and starts case i ≥ 1 when the first
// has done 2i steps, so that requests join and leave a running batch; it
// returns the results in case order.
func runBatched(t *testing.T, bt *Batcher) []*Result {
	t.Helper()
	res := make([]*Result, len(batchCases))
	errs := make([]error, len(batchCases))
	var wg sync.WaitGroup
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = bt.Sample(context.Background(), batchCases[i])
		}()
	}
	first := batchCases[0]
	first.Progress = func(done, total int) {
		if i := done / 2; done%2 == 0 && i >= 1 && i < len(batchCases) {
			start(i)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		res[0], errs[0] = bt.Sample(context.Background(), first)
	}()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
	}
	return res
}

// TestBatchedEqualsSolo: each request's result in the shared batch equals
// a solo run with the same settings: bit for bit on the Gaussian model,
// whose graph is row-wise elementwise, and within float32 round-off on an
// MLP, whose matrix products may round differently in a larger batch.
func TestBatchedEqualsSolo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     *Model
		exact bool
	}{
		{"gaussian", loadGaussian(t, testGaussian), true},
		{"mlp", mlpModel(t, 4, 32, 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bt := NewBatcher(tc.m, BatcherConfig{MaxWalkers: 4096, MaxQueue: 16})
			defer bt.Close()
			got := runBatched(t, bt)
			steps := 0
			for i, c := range batchCases {
				steps += c.TotalSteps()
				want, err := Sample(context.Background(), tc.m, c)
				if err != nil {
					t.Fatal(err)
				}
				compareResults(t, i, got[i], want, tc.exact)
			}
			st := bt.Stats()
			if st.Evals >= int64(steps) || st.Evals < int64(batchCases[0].Steps) {
				t.Errorf("%d shared evaluations for %d request steps: the requests did not share steps", st.Evals, steps)
			}
			if st.Active != 0 || st.Walkers != 0 || st.Queued != 0 {
				t.Errorf("after the requests: %+v, want an empty pool", st)
			}
		})
	}
}

func compareResults(t *testing.T, i int, got, want *Result, exact bool) {
	t.Helper()
	if !got.Batched || want.Batched {
		t.Errorf("case %d: Batched %v/%v, want true/false", i, got.Batched, want.Batched)
	}
	if got.N != want.N || len(got.Samples) != len(want.Samples) || got.Resamplings != want.Resamplings || got.Weighted != want.Weighted {
		t.Fatalf("case %d: got n %d, %d values, %d resamplings; solo n %d, %d values, %d resamplings",
			i, got.N, len(got.Samples), got.Resamplings, want.N, len(want.Samples), want.Resamplings)
	}
	tol := 0.0
	if !exact {
		tol = 1e-4
	}
	worst := 0.0
	for k := range got.Samples {
		worst = max(worst, math.Abs(float64(got.Samples[k]-want.Samples[k]))/(1+math.Abs(float64(want.Samples[k]))))
	}
	for k := range got.LogWeights {
		worst = max(worst, math.Abs(got.LogWeights[k]-want.LogWeights[k])/(1+math.Abs(want.LogWeights[k])))
	}
	if got.Weighted {
		worst = max(worst, math.Abs(got.LogZ-want.LogZ)/(1+math.Abs(want.LogZ)))
	}
	if worst > tol {
		t.Errorf("case %d: batched and solo differ by %.3g (relative), want ≤ %g", i, worst, tol)
	}
}

// TestBatcherBackpressure: a request waits while the pool is full, a
// request beyond MaxQueue is refused at once, a waiting request whose
// context ends is not admitted, and a cancelled request leaves at its next
// step and frees its walkers for the queue.
func TestBatcherBackpressure(t *testing.T) {
	m := loadGaussian(t, testGaussian)
	bt := NewBatcher(m, BatcherConfig{MaxWalkers: 128, MaxQueue: 1})
	defer bt.Close()

	ctxA, cancelA := context.WithCancel(context.Background())
	running := make(chan struct{})
	var once sync.Once
	doneA := make(chan error, 1)
	go func() {
		_, err := bt.Sample(ctxA, SampleConfig{N: 128, Steps: 1_000_000, Progress: func(int, int) { once.Do(func() { close(running) }) }})
		doneA <- err
	}()
	<-running

	// B waits (the pool is full); C finds the queue full
	ctxB, cancelB := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelB()
	doneB := make(chan error, 1)
	go func() {
		_, err := bt.Sample(ctxB, SampleConfig{N: 64, Steps: 5})
		doneB <- err
	}()
	waitUntil(t, func() bool { return bt.Stats().Queued == 1 })
	if _, err := bt.Sample(context.Background(), SampleConfig{N: 1, Steps: 1}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("third request: got %v, want ErrQueueFull", err)
	}
	if err := <-doneB; !errors.Is(err, ErrNotAdmitted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request timed out in the queue: got %v, want ErrNotAdmitted wrapping the deadline", err)
	}
	if st := bt.Stats(); st.Queued != 0 || st.Walkers != 128 {
		t.Errorf("after the queued request gave up: %+v", st)
	}

	// D waits; cancelling A frees the pool at A's next step and admits D
	doneD := make(chan error, 1)
	go func() {
		_, err := bt.Sample(context.Background(), SampleConfig{N: 100, Steps: 5})
		doneD <- err
	}()
	waitUntil(t, func() bool { return bt.Stats().Queued == 1 })
	cancelA()
	select {
	case err := <-doneA:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled request: got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled request still running after 10 s")
	}
	if err := <-doneD; err != nil {
		t.Errorf("queued request after the pool freed: %v", err)
	}
	if _, err := bt.Sample(context.Background(), SampleConfig{N: 129, Steps: 1}); err == nil {
		t.Error("a request larger than the pool was accepted")
	}
	if st := bt.Stats(); st.Active != 0 || st.Walkers != 0 || st.Queued != 0 {
		t.Errorf("at the end: %+v, want an empty pool", st)
	}
}

// TestBatcherClose: Close refuses waiting and new requests and returns.
func TestBatcherClose(t *testing.T) {
	m := loadGaussian(t, testGaussian)
	bt := NewBatcher(m, BatcherConfig{MaxWalkers: 64, MaxQueue: 4})
	if _, err := bt.Sample(context.Background(), SampleConfig{N: 64, Steps: 3}); err != nil {
		t.Fatal(err)
	}
	bt.Close()
	if _, err := bt.Sample(context.Background(), SampleConfig{N: 1, Steps: 1}); !errors.Is(err, errBatcherClosed) {
		t.Errorf("after Close: got %v", err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHTTPBatchingOnOff: /v1/sample gives the same answer with batching on
// and off (bit for bit on the Gaussian model), says whether it was batched,
// and /metrics reports the pool.
func TestHTTPBatchingOnOff(t *testing.T) {
	var got [2]SampleResponse
	for i, mode := range []string{BatchingOn, BatchingOff} {
		ts, _ := testServer(t, func(c *ServerConfig) { c.Batching = mode })
		body := `{"model":"gauss","n":300,"steps":20,"seed":9,"weighted":true,"resample_threshold":0.8}`
		if code, raw := call(t, "POST", ts.URL+"/v1/sample", body, &got[i]); code != 200 {
			t.Fatalf("batching %s: %d %s", mode, code, raw)
		}
		_, m := call(t, "GET", ts.URL+"/metrics", "", nil)
		wantPool := `jarzyn_batcher_walker_steps_total{model="gauss",version="2"} 6000`
		if strings.Contains(m, wantPool) != (mode == BatchingOn) {
			t.Errorf("batching %s: metrics have %q: %v\n%s", mode, wantPool, mode == BatchingOn, m)
		}
	}
	on, off := got[0], got[1]
	if !on.Batched || off.Batched {
		t.Errorf("batched: on %v, off %v", on.Batched, off.Batched)
	}
	if fmt.Sprint(on.Samples) != fmt.Sprint(off.Samples) || fmt.Sprint(on.LogWeights) != fmt.Sprint(off.LogWeights) ||
		*on.LogZ != *off.LogZ || on.Resamplings != off.Resamplings {
		t.Errorf("batching on and off gave different results: log Ẑ %v vs %v, resamplings %d vs %d", *on.LogZ, *off.LogZ, on.Resamplings, off.Resamplings)
	}
}

// TestHTTPBatchMaxN: requests up to batch_max_n walkers join the shared
// batch, larger ones run on their own batch.
func TestHTTPBatchMaxN(t *testing.T) {
	ts, _ := testServer(t, func(c *ServerConfig) { c.BatchMaxN = 100 })
	for _, tc := range []struct {
		n       int
		batched bool
	}{{100, true}, {101, false}} {
		var out SampleResponse
		if code, raw := call(t, "POST", ts.URL+"/v1/sample", fmt.Sprintf(`{"model":"gauss","n":%d,"steps":3}`, tc.n), &out); code != 200 || out.Batched != tc.batched {
			t.Errorf("n %d: %d, batched %v, want batched %v (%s)", tc.n, code, out.Batched, tc.batched, raw)
		}
	}
}
