package serve

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds (seconds) of the request latency histogram.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

type requestKey struct{ route, method, code string }

type histogram struct {
	counts []uint64 // per bucket (not cumulative), plus +Inf last
	sum    float64
	n      uint64
}

// metrics collects the server's Prometheus metrics.
type metrics struct {
	mu             sync.Mutex
	requests       map[requestKey]uint64
	latency        map[string]*histogram
	walkerSteps    float64
	samplerSeconds float64
	lastRate       float64
	inflight       int64
	models         func() []*Model // the models served now
	ready          func() bool
	budget         *byteBudget
}

// newMetrics returns the metrics of a server. Every label is from a fixed
// set: route patterns (or "unmatched"), methodLabel's methods, the status
// codes the server writes, and the models served (models, read at each
// scrape: a repository's scans change them).
func newMetrics(models func() []*Model, ready func() bool, budget *byteBudget) *metrics {
	return &metrics{requests: map[requestKey]uint64{}, latency: map[string]*histogram{}, models: models, ready: ready, budget: budget}
}

func (m *metrics) begin() {
	m.mu.Lock()
	m.inflight++
	m.mu.Unlock()
}

// observe records one finished request.
func (m *metrics) observe(route, method string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight--
	m.requests[requestKey{route, method, strconv.Itoa(code)}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		m.latency[route] = h
	}
	s := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets, s)
	h.counts[i]++
	h.sum += s
	h.n++
}

// sampled records a finished sampling run.
func (m *metrics) sampled(r *Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.walkerSteps += float64(r.WalkerSteps)
	m.samplerSeconds += r.Elapsed.Seconds()
	m.lastRate = r.WalkerStepsPerSecond()
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func fmtFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// write renders the metrics in the Prometheus text exposition format 0.0.4.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	head := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	head("jarzyn_http_requests_total", "counter", "HTTP requests by route pattern, method and status code.")
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b requestKey) int {
		return strings.Compare(a.route+"\x00"+a.method+"\x00"+a.code, b.route+"\x00"+b.method+"\x00"+b.code)
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "jarzyn_http_requests_total{route=\"%s\",method=\"%s\",code=\"%s\"} %d\n", escapeLabel(k.route), escapeLabel(k.method), k.code, m.requests[k])
	}
	head("jarzyn_http_request_duration_seconds", "histogram", "HTTP request latency by route pattern.")
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		h, l := m.latency[r], escapeLabel(r)
		var cum uint64
		for i, ub := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "jarzyn_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %d\n", l, fmtFloat(ub), cum)
		}
		fmt.Fprintf(&b, "jarzyn_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %d\n", l, h.n)
		fmt.Fprintf(&b, "jarzyn_http_request_duration_seconds_sum{route=\"%s\"} %s\n", l, fmtFloat(h.sum))
		fmt.Fprintf(&b, "jarzyn_http_request_duration_seconds_count{route=\"%s\"} %d\n", l, h.n)
	}
	head("jarzyn_http_requests_in_flight", "gauge", "HTTP requests being served.")
	fmt.Fprintf(&b, "jarzyn_http_requests_in_flight %d\n", m.inflight)
	head("jarzyn_http_body_bytes_in_flight", "gauge", "Request body bytes charged to the in-flight budget.")
	fmt.Fprintf(&b, "jarzyn_http_body_bytes_in_flight %d\n", m.budget.inUse())
	head("jarzyn_http_body_budget_bytes", "gauge", "The in-flight budget for request bodies (ServerConfig.MaxInflightBytes).")
	fmt.Fprintf(&b, "jarzyn_http_body_budget_bytes %d\n", m.budget.capacity)
	head("jarzyn_sampler_walker_steps_total", "counter", "Walker steps (walkers × Langevin steps) completed by /v1/sample.")
	fmt.Fprintf(&b, "jarzyn_sampler_walker_steps_total %s\n", fmtFloat(m.walkerSteps))
	head("jarzyn_sampler_seconds_total", "counter", "Wall time spent sampling; rate(walker_steps_total)/rate(seconds_total) is the throughput.")
	fmt.Fprintf(&b, "jarzyn_sampler_seconds_total %s\n", fmtFloat(m.samplerSeconds))
	head("jarzyn_sampler_walker_steps_per_second", "gauge", "Throughput of the last completed sampling request.")
	fmt.Fprintf(&b, "jarzyn_sampler_walker_steps_per_second %s\n", fmtFloat(m.lastRate))
	head("jarzyn_model_ready", "gauge", "1 when the model version is loaded and the server is ready.")
	ready := 0
	if m.ready() {
		ready = 1
	}
	served := m.models()
	for _, md := range served {
		fmt.Fprintf(&b, "jarzyn_model_ready{model=\"%s\",version=\"%s\",device=\"%s\"} %d\n", escapeLabel(md.Name), escapeLabel(md.Version), md.Device, ready)
	}
	writeBatcherMetrics(&b, served)
	io.WriteString(w, b.String())
}
