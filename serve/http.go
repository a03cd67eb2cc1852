package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jarzyn/jarzyn/smc"
)

// ServerConfig bounds what one request may ask for and what the server
// holds at once. Every limit must be at most the matching hard limit (see
// HardLimits and Check); NewServer clamps larger values.
type ServerConfig struct {
	// MaxN is the most walkers per /v1/sample request. The default value is 100000.
	MaxN int
	// MaxSteps is the most steps (steps + extra_steps) per request. The default value is 100000.
	MaxSteps int
	// MaxWalkerSteps bounds n·(steps + extra_steps). The default value is 5e7.
	MaxWalkerSteps int64
	// MaxOutputValues bounds n·d, the numbers in a sampling response. The
	// default value is 4e6.
	MaxOutputValues int64
	// MaxInferBatch is the most rows per infer request. The default value is 65536.
	MaxInferBatch int
	// MaxBodyBytes bounds request bodies: a request whose Content-Length is
	// larger is answered 413 before its body is read, and a body without a
	// length is cut off at this size (413). The default value is 16 MiB.
	MaxBodyBytes int64
	// MaxInflightBytes is the memory budget for request bodies: a body of B
	// bytes is charged BodyMemoryFactor·B (what decoding it holds at most:
	// the decoder's buffer and the tensor data), and the server admits a
	// body only while the charges of the requests it is serving, this one
	// included, add up to at most MaxInflightBytes. A body with a
	// Content-Length is charged before it is read; one without (chunked) is
	// charged as it arrives. The charge is released when the response has
	// been written. A request that does not fit is answered 429 with
	// Retry-After: 1, and nothing (more) of its body is read. The Go heap
	// holds up to twice its live data between collections (GOGC=100), so
	// bodies add at most about 2 × MaxInflightBytes to the server's idle
	// memory. The default value is 64 MiB; it is raised to
	// BodyMemoryFactor × MaxBodyBytes when lower (a body of the largest
	// allowed size must fit).
	MaxInflightBytes int64
	// ReadTimeout bounds reading one request, headers and body: a client
	// that sends its body slower, or never, is cut off (the connection is
	// closed). The default value is 30 s.
	ReadTimeout time.Duration
	// Timeout bounds each request (sampling stops at the deadline). The
	// default value is 60 s.
	Timeout time.Duration
	// MaxConcurrent is the number of model evaluations (samplers or infer
	// calls) running at once; others wait, up to Timeout. DefaultServerConfig
	// sets 2; a value ≤ 0 means max(2, GOMAXPROCS/2).
	MaxConcurrent int
	// Batching is "on" (the default, also for "") or "off". On, /v1/sample
	// requests on the same model share one walker batch, stepped together
	// (continuous batching, Batcher); off, each request takes one of
	// MaxConcurrent slots and runs its own batch.
	Batching string
	// PoolWalkers is the capacity of each model's shared walker pool. The
	// default value is MaxN.
	PoolWalkers int
	// BatchMaxN is the largest request (in walkers) that joins the shared
	// walker pool; a larger one already fills the cores with its own Runs
	// and runs on its own batch, behind the MaxConcurrent slots. The
	// default value is DefaultBatchMaxN; it is at most PoolWalkers.
	BatchMaxN int
	// MaxQueue is the most requests waiting for room in a model's pool;
	// beyond it a request gets 429 with Retry-After. The default value is
	// 1024.
	MaxQueue int
	// Logger receives request and lifecycle logs. The default value is slog.Default().
	Logger *slog.Logger
}

// DefaultBatchMaxN is the default ServerConfig.BatchMaxN. Measured on the
// 2-core CPU machine (docs/RESULTS.md §8): requests of 1000 walkers ran at
// 13.4M walker-steps/s on their own lane-parallel batches and at 8.8M in the
// shared batch, whose steps synchronise every request; requests of 16
// walkers ran 3.4× faster shared.
const DefaultBatchMaxN = 512

// Batching modes of ServerConfig.Batching.
const (
	BatchingOn  = "on"
	BatchingOff = "off"
)

// BodyMemoryFactor is what a request body of B bytes is charged to the
// in-flight budget (ServerConfig.MaxInflightBytes), in units of B: decoding
// it holds the JSON decoder's buffer (up to 2·B) and the tensor data's text.
const BodyMemoryFactor = 3

// Fixed bounds of the HTTP server (Serve): headers must arrive within
// ReadHeaderTimeout (or ServerConfig.ReadTimeout when shorter) and fit in
// MaxHeaderBytes (431 beyond); an idle keep-alive connection is closed after
// IdleTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	MaxHeaderBytes    = 64 << 10
	IdleTimeout       = 2 * time.Minute
	// maxTimeout bounds ServerConfig.Timeout and ReadTimeout.
	maxTimeout = 24 * time.Hour
	// maxConcurrentCap bounds ServerConfig.MaxConcurrent.
	maxConcurrentCap = 1024
	// maxQueueCap bounds ServerConfig.MaxQueue.
	maxQueueCap = 1 << 16
)

// DefaultServerConfig returns the documented defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{MaxN: 100_000, MaxSteps: 100_000, MaxWalkerSteps: 50_000_000, MaxOutputValues: 4_000_000,
		MaxInferBatch: 65536, MaxBodyBytes: 16 << 20, MaxInflightBytes: 64 << 20, ReadTimeout: 30 * time.Second,
		Timeout: 60 * time.Second, MaxConcurrent: 2}
}

// Check refuses limits above the hard limits (HardLimits, HardMaxBodyBytes,
// 24 h timeouts, 1024 concurrent evaluations) and negative ones; zero means
// the default. The error is a *FieldError naming the setting as the command
// line does ("max_n" for --max-n).
func (c ServerConfig) Check() error {
	h := HardLimits()
	for _, f := range []struct {
		name   string
		v, max int64
	}{
		{"max_n", int64(c.MaxN), int64(h.MaxN)},
		{"max_steps", int64(c.MaxSteps), int64(h.MaxSteps)},
		{"max_walker_steps", c.MaxWalkerSteps, h.MaxWalkerSteps},
		{"max_output_values", c.MaxOutputValues, h.MaxValues},
		{"max_infer_batch", int64(c.MaxInferBatch), int64(h.MaxN)},
		{"max_body", c.MaxBodyBytes, HardMaxBodyBytes},
		{"max_inflight_bytes", c.MaxInflightBytes, 16 * HardMaxBodyBytes},
		{"read_timeout", int64(c.ReadTimeout), int64(maxTimeout)},
		{"timeout", int64(c.Timeout), int64(maxTimeout)},
		{"max_concurrent", int64(c.MaxConcurrent), maxConcurrentCap},
		{"pool_walkers", int64(c.PoolWalkers), int64(h.MaxN)},
		{"batch_max_n", int64(c.BatchMaxN), int64(h.MaxN)},
		{"max_queue", int64(c.MaxQueue), maxQueueCap},
	} {
		if f.v < 0 || f.v > f.max {
			if strings.HasSuffix(f.name, "timeout") {
				return fieldErr(f.name, "must be in [0, %v], got %v", time.Duration(f.max), time.Duration(f.v))
			}
			return fieldErr(f.name, "must be in [0, %d] (0: the default), got %d", f.max, f.v)
		}
	}
	switch c.Batching {
	case "", BatchingOn, BatchingOff:
	default:
		return fieldErr("batching", "must be on or off, got %q", clip(c.Batching))
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	h := HardLimits()
	c.MaxN = pick(c.MaxN, d.MaxN, h.MaxN)
	c.MaxSteps = pick(c.MaxSteps, d.MaxSteps, h.MaxSteps)
	c.MaxWalkerSteps = pick(c.MaxWalkerSteps, d.MaxWalkerSteps, h.MaxWalkerSteps)
	c.MaxOutputValues = pick(c.MaxOutputValues, d.MaxOutputValues, h.MaxValues)
	c.MaxInferBatch = pick(c.MaxInferBatch, d.MaxInferBatch, h.MaxN)
	c.MaxBodyBytes = pick(c.MaxBodyBytes, d.MaxBodyBytes, HardMaxBodyBytes)
	c.MaxInflightBytes = max(pick(c.MaxInflightBytes, d.MaxInflightBytes, 16*HardMaxBodyBytes), BodyMemoryFactor*c.MaxBodyBytes)
	c.ReadTimeout = pick(c.ReadTimeout, d.ReadTimeout, maxTimeout)
	c.Timeout = pick(c.Timeout, d.Timeout, maxTimeout)
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = max(d.MaxConcurrent, runtime.GOMAXPROCS(0)/2)
	}
	c.MaxConcurrent = min(c.MaxConcurrent, maxConcurrentCap)
	if c.Batching == "" {
		c.Batching = BatchingOn
	}
	c.PoolWalkers = pick(c.PoolWalkers, c.MaxN, h.MaxN)
	c.BatchMaxN = min(pick(c.BatchMaxN, DefaultBatchMaxN, h.MaxN), c.PoolWalkers)
	c.MaxQueue = pick(c.MaxQueue, 1024, maxQueueCap)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// pick is v, or def when v ≤ 0, at most hard.
func pick[T int | int64 | time.Duration](v, def, hard T) T {
	if v <= 0 {
		v = def
	}
	return min(v, hard)
}

// limits is the sampling Limits of the configuration.
func (c ServerConfig) limits() Limits {
	return Limits{MaxN: c.MaxN, MaxSteps: c.MaxSteps, MaxWalkerSteps: c.MaxWalkerSteps, MaxValues: c.MaxOutputValues,
		MaxThreads: HardLimits().MaxThreads}
}

// Server is the HTTP API over a registry of models: POST /v1/sample, the
// Open Inference Protocol v2 endpoints and GET /metrics.
type Server struct {
	reg      *Registry
	cfg      ServerConfig
	log      *slog.Logger
	mux      *http.ServeMux
	metrics  *metrics
	ready    atomic.Bool
	slots    chan struct{}
	budget   *byteBudget
	inflight sync.WaitGroup
	// allow lists the methods of each route path, for 405 answers.
	allow map[string][]string
	// routes lists every "METHOD path" served, in registration order (the
	// OpenAPI description is checked against it).
	routes []string
}

var _ http.Handler = (*Server)(nil)

// NewServer builds the handler. It is ready at once; Serve marks it not
// ready while shutting down.
func NewServer(reg *Registry, cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	s := &Server{reg: reg, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), slots: make(chan struct{}, cfg.MaxConcurrent),
		budget: &byteBudget{capacity: cfg.MaxInflightBytes}, allow: map[string][]string{}}
	s.ready.Store(true)
	s.metrics = newMetrics(reg.Models, s.ready.Load, s.budget)
	s.route("POST", "/v1/sample", s.handleSample)
	s.route("GET", "/v2", s.handleServerMetadata)
	s.route("GET", "/v2/health/live", s.handleLive)
	s.route("GET", "/v2/health/ready", s.handleReady)
	s.route("GET", "/v2/models/{name}/ready", s.handleModelReady)
	s.route("GET", "/v2/models/{name}/versions/{version}/ready", s.handleModelReady)
	s.route("GET", "/v2/models/{name}", s.handleModelMetadata)
	s.route("GET", "/v2/models/{name}/versions/{version}", s.handleModelMetadata)
	s.route("POST", "/v2/models/{name}/infer", s.handleInfer)
	s.route("POST", "/v2/models/{name}/versions/{version}/infer", s.handleInfer)
	s.route("GET", "/metrics", s.handleMetrics)
	s.route("GET", "/openapi.json", s.handleOpenAPI)
	s.route("POST", "/v2/repository/index", s.handleRepositoryIndex)
	s.route("POST", "/v2/repository/models/{name}/load", s.handleRepositoryLoad)
	s.route("POST", "/v2/repository/models/{name}/unload", s.handleRepositoryUnload)
	// every other method on a route path: 405 in JSON with an Allow header
	// (ServeMux's own 405 is plain text); any other path: 404 in JSON
	for path, methods := range s.allow {
		allow := strings.Join(methods, ", ")
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.fail(w, r, http.StatusMethodNotAllowed, fmt.Sprintf("method: %s takes %s, got %s", path, allow, clipq(r.Method)))
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "path: no route "+clipq(r.URL.Path))
	})
	return s
}

// route registers "METHOD path" and remembers the method for the path's 405
// answer (a GET route also answers HEAD).
func (s *Server) route(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+path, h)
	s.routes = append(s.routes, method+" "+path)
	s.allow[path] = append(s.allow[path], method)
	if method == http.MethodGet {
		s.allow[path] = append(s.allow[path], http.MethodHead)
	}
}

// statusWriter remembers the status code for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StatusClientClosedRequest is the status recorded (in metrics and logs)
// for a request whose client went away before its answer: nginx's 499. The
// client never sees it.
const StatusClientClosedRequest = 499

// ServeHTTP admits a request (see ServerConfig.MaxBodyBytes and
// MaxInflightBytes), routes it and records its metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	start := time.Now()
	s.metrics.begin()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		pattern := r.Pattern
		if pattern == "" {
			_, pattern = s.mux.Handler(r)
		}
		d := time.Since(start)
		s.metrics.observe(routeLabel(pattern), methodLabel(r.Method), sw.code, d)
		s.log.Debug("request", "method", clip(r.Method), "path", clip(r.URL.Path), "code", sw.code, "duration", d)
	}()
	release, ok := s.admit(sw, r)
	if !ok {
		return
	}
	defer release()
	s.mux.ServeHTTP(sw, r)
}

// routeLabel is a metrics label for a ServeMux pattern: the pattern's path
// (a fixed set), or "unmatched".
func routeLabel(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}

// methodLabel maps a request method to a fixed set of metrics labels: the
// methods of RFC 9110 and PATCH, and "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// admit refuses a body larger than MaxBodyBytes by its Content-Length (413)
// and charges the body to the in-flight budget (BodyMemoryFactor per byte):
// by its Content-Length now, or as it is read when it has none. When the
// budget is full it answers 429 with Retry-After. release returns the
// charge.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	switch n := r.ContentLength; {
	case n > s.cfg.MaxBodyBytes:
		w.Header().Set("Connection", "close")
		s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: Content-Length %d exceeds the limit of %d bytes", n, s.cfg.MaxBodyBytes))
		return nil, false
	case n > 0:
		charge := BodyMemoryFactor * n
		if !s.budget.tryAcquire(charge) {
			s.overBudget(w, r, fmt.Sprintf("server busy: a %d-byte body does not fit in the memory budget for request bodies in flight (%d bytes); retry later", n, s.cfg.MaxInflightBytes))
			return nil, false
		}
		return func() { s.budget.release(charge) }, true
	case n < 0:
		br := &budgetReader{r: r.Body, b: s.budget}
		r.Body = br
		return br.release, true
	}
	return func() {}, true
}

// busy answers 503 with Retry-After, logged at Warn: the server is at a
// limit that frees up (back-pressure, not a failure).
func (s *Server) busy(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("Retry-After", "1")
	s.answer(w, r, http.StatusServiceUnavailable, slog.LevelWarn, msg)
}

// overBudget answers 429 Too Many Requests with Retry-After, logged at
// Warn: the bodies in flight fill the memory budget, and the client is
// asked to send this one later (back-pressure, not a server failure).
func (s *Server) overBudget(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("Retry-After", "1")
	s.answer(w, r, http.StatusTooManyRequests, slog.LevelWarn, msg)
}

// byteBudget is a semaphore of bytes: ServerConfig.MaxInflightBytes.
type byteBudget struct {
	mu             sync.Mutex
	capacity, used int64
}

// tryAcquire takes n bytes if they fit, without waiting.
func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.capacity-b.used {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// errBudget is a body read stopped by the in-flight budget.
var errBudget = errors.New("the budget for request bodies in flight is full")

// budgetChunk is the step, in bytes, in which a body without a length is
// charged: small, so that a client that sends a few bytes and stops holds
// little of the budget.
const budgetChunk = 8 << 10

// budgetReader charges the bytes of a body without a Content-Length to the
// budget as they are read (BodyMemoryFactor per byte), budgetChunk bytes at
// a time, and fails the read with errBudget when the budget is full.
type budgetReader struct {
	r          io.ReadCloser
	b          *byteBudget
	mu         sync.Mutex
	held, read int64
	failed     bool
}

func (br *budgetReader) Read(p []byte) (int, error) {
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.held == br.read {
		if br.failed || !br.b.tryAcquire(BodyMemoryFactor*budgetChunk) {
			br.failed = true
			return 0, errBudget
		}
		br.held += budgetChunk
	}
	// never read more than is charged
	if room := br.held - br.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := br.r.Read(p)
	br.read += int64(n)
	return n, err
}

func (br *budgetReader) Close() error { return br.r.Close() }

// release returns what the reader charged.
func (br *budgetReader) release() {
	br.mu.Lock()
	defer br.mu.Unlock()
	br.b.release(BodyMemoryFactor * br.held)
	br.held, br.read = 0, 0
}

// errorBody is the Open Inference Protocol error response.
type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Error("encoding response", "err", err)
		code = http.StatusInternalServerError
		buf.Reset()
		enc.Encode(errorBody{"encoding the response failed: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// fail answers {"error": msg} (at most maxMessage bytes) and logs it: at
// Error for 5xx, else at Info. Echoed client strings are clipped (clip).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	level := slog.LevelInfo
	if code >= 500 {
		level = slog.LevelError
	}
	s.answer(w, r, code, level, msg)
}

// answer writes the error answer of fail and logs it at level.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, code int, level slog.Level, msg string) {
	msg = clipMessage(msg)
	what := "request rejected"
	if level >= slog.LevelError {
		what = "request failed"
	}
	s.log.Log(r.Context(), level, what, "method", clip(r.Method), "path", clip(r.URL.Path), "code", code, "err", msg)
	s.writeJSON(w, code, errorBody{msg})
}

// clientGone records a request whose client went away (its context was
// cancelled) as 499, logged at Info: the client is not the server's fault.
func (s *Server) clientGone(w http.ResponseWriter, r *http.Request, while string, err error) {
	s.log.Info("client went away", "method", clip(r.Method), "path", clip(r.URL.Path), "while", while, "err", err)
	w.WriteHeader(StatusClientClosedRequest)
}

// decodeBody reads one JSON object into v, rejecting unknown fields,
// trailing data and bodies over the limit, and answers the error itself:
// it returns false when it has. The message names the field.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	code, err := decodeJSON(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), v)
	switch {
	case err == nil:
		return true
	case code == http.StatusTooManyRequests:
		s.overBudget(w, r, err.Error())
	case code == http.StatusRequestTimeout:
		w.Header().Set("Connection", "close")
		s.fail(w, r, code, err.Error())
	default:
		s.fail(w, r, code, err.Error())
	}
	return false
}

// decodeJSON reads one JSON object from body into v, rejecting unknown
// fields and trailing data, and returns the status code and a message
// naming the field on error: 400 for bad JSON, 413 for a body over an
// http.MaxBytesReader's limit, 408 for a body not sent within the read
// timeout, 429 for one stopped by the in-flight budget.
func decodeJSON(body io.Reader, v any) (int, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			var mbe *http.MaxBytesError
			var ne net.Error
			if errors.As(e, &mbe) || errors.Is(e, errBudget) || (errors.As(e, &ne) && ne.Timeout()) {
				err = e
			} else {
				return http.StatusBadRequest, errors.New("body: trailing data after the JSON object")
			}
		}
	}
	if err == nil {
		return 0, nil
	}
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
		ne  net.Error
	)
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body: larger than the limit of %d bytes", mbe.Limit)
	case errors.Is(err, errBudget):
		return http.StatusTooManyRequests, errors.New("server busy: " + errBudget.Error() + "; retry later")
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, errors.New("body: not received within the read timeout")
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, errors.New("body: empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, errors.New("body: truncated JSON")
	case errors.As(err, &se):
		return http.StatusBadRequest, fmt.Errorf("body: invalid JSON at byte %d: %v", se.Offset, clip(se.Error()))
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		return http.StatusBadRequest, fmt.Errorf("%s: want %s, got JSON %s", clip(field), jsonKind(ute.Type), clip(ute.Value))
	}
	if f, ok := unknownJSONField(err); ok {
		return http.StatusBadRequest, fmt.Errorf("%s: unknown field", fieldName(f))
	}
	return http.StatusBadRequest, fmt.Errorf("body: %s", clip(err.Error()))
}

// fieldName is a client's JSON key as a message names it: as it is when
// it is a plain name, else quoted (an empty key is ""); at most maxEcho
// bytes of it either way.
func fieldName(key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return clip(key)
	}
	return clipq(key)
}

// unknownJSONField reports whether err is json.Decoder's refusal of an
// object key under DisallowUnknownFields, and the key. encoding/json has no
// error type for that case (it returns fmt.Errorf("json: unknown field %q",
// key)), so this is the one place that reads its text;
// TestUnknownJSONField pins it against the standard library, so that a Go
// release that changes the text fails the test instead of turning the 400
// "<field>: unknown field" into "body: …".
func unknownJSONField(err error) (field string, ok bool) {
	rest, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	field, uerr := strconv.Unquote(rest)
	if uerr != nil {
		return "", false
	}
	return field, true
}

// jsonKind names the JSON value that a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// acquire takes a model-evaluation slot, waiting at most until ctx ends.
func (s *Server) acquire(ctx context.Context) bool {
	// a free slot wins even over a context that has already ended
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) release() { <-s.slots }

// slot gives a request its timeout context and one of the evaluation slots
// (the caller calls s.release when its evaluation ends, and cancel when the
// request ends), or answers and returns ok = false: 503 with Retry-After
// naming what it waited for when the timeout passed, 499 (logged at Info)
// when the client went away while it waited.
func (s *Server) slot(w http.ResponseWriter, r *http.Request, what string) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	ctx, cancel = context.WithTimeout(r.Context(), s.cfg.Timeout)
	if !s.acquire(ctx) {
		cancel()
		if err := r.Context().Err(); err != nil {
			s.clientGone(w, r, "waiting for a "+what, err)
			return nil, nil, false
		}
		s.busy(w, r, fmt.Sprintf("server busy: no %s free within the %v request timeout", what, s.cfg.Timeout))
		return nil, nil, false
	}
	return ctx, cancel, true
}

// SampleRequest is the body of POST /v1/sample.
type SampleRequest struct {
	// Model and Version select the model; both may be omitted when one model
	// is served (the latest version is the default).
	Model   string `json:"model,omitempty"`
	Version string `json:"version,omitempty"`
	// N walkers (required, 1..MaxN) and Steps (required, ≥ 1 when weighted).
	N     *int `json:"n"`
	Steps *int `json:"steps"`
	// H is the step size; absent means the model's training h.
	H *float64 `json:"h,omitempty"`
	// Seed makes the result reproducible; absent means 0.
	Seed *uint64 `json:"seed,omitempty"`
	// Weighted anneals from the base with Jarzynski weights.
	Weighted bool `json:"weighted,omitempty"`
	// Init is "base" (default) or "uniform" (unweighted only).
	Init string `json:"init,omitempty"`
	// ExtraSteps at β = 1 (weighted only).
	ExtraSteps int `json:"extra_steps,omitempty"`
	// ResampleThreshold on ESS/N (weighted only; default 0.5, 0 = never).
	ResampleThreshold *float64 `json:"resample_threshold,omitempty"`
	// ResampleScheme is "systematic" (default) or "multinomial".
	ResampleScheme string `json:"resample_scheme,omitempty"`
	// Precondition is the matrix M of the Langevin moves: "auto" (default:
	// "base" for a model with a data-fitted base), "none" or "base".
	Precondition string `json:"precondition,omitempty"`
	// Kernel is the move of weighted annealing: "ula" (default) or "mala"
	// (Metropolis-adjusted, the weights carrying only the work of the β
	// steps; weighted only).
	Kernel string `json:"kernel,omitempty"`
}

// SampleResponse is the body of a successful POST /v1/sample.
type SampleResponse struct {
	Model      string  `json:"model"`
	Version    string  `json:"version"`
	N          int     `json:"n"`
	Steps      int     `json:"steps"`
	ExtraSteps int     `json:"extra_steps"`
	H          float64 `json:"h"`
	Seed       uint64  `json:"seed"`
	Weighted   bool    `json:"weighted"`
	// Shape is [n, data shape…]; Samples has one row of d numbers per walker.
	Shape   []int       `json:"shape"`
	Samples [][]float32 `json:"samples"`
	// LogWeights, ESS and LogZ are null for unweighted sampling.
	LogWeights  []float64 `json:"log_weights"`
	ESS         *float64  `json:"ess"`
	ESSFraction *float64  `json:"ess_fraction"`
	LogZ        *float64  `json:"log_z"`
	Resamplings int       `json:"resamplings"`
	// Accept is the fraction of MALA proposals accepted (kernel mala only).
	Accept *float64 `json:"accept,omitempty"`
	// LatentDim is r when the walk ran in the model's latent space
	// (model.latent.onnx), absent when it ran in the full dimension.
	LatentDim int `json:"latent_dim,omitempty"`
	// Batched is true when the request's walkers were stepped in the model's
	// shared walker batch (continuous batching), false when it ran alone.
	Batched bool `json:"batched"`
	// WalkerStepsPerSecond is this request's sampler throughput.
	WalkerStepsPerSecond float64 `json:"walker_steps_per_second"`
	ElapsedSeconds       float64 `json:"elapsed_seconds"`
}

// sampleConfig validates a request against the limits and the model.
func (s *Server) sampleConfig(req *SampleRequest, m *Model) (SampleConfig, error) {
	cfg := DefaultSampleConfig()
	if req.N == nil {
		return cfg, fieldErr("n", "required")
	}
	if req.Steps == nil {
		return cfg, fieldErr("steps", "required")
	}
	cfg.N, cfg.Steps, cfg.Weighted, cfg.ExtraSteps = *req.N, *req.Steps, req.Weighted, req.ExtraSteps
	if err := s.cfg.limits().Check(cfg, m.Info.Dim); err != nil {
		return cfg, err
	}
	if req.H != nil {
		if !(*req.H > 0) {
			return cfg, fieldErr("h", "must be > 0, got %v", *req.H)
		}
		cfg.StepSize = *req.H
	}
	if req.Seed != nil {
		cfg.Seed = *req.Seed
	}
	// a clipped string stays invalid, so the messages below echo at most
	// maxEcho bytes of it
	if req.Init != "" {
		cfg.Init = Init(clip(req.Init))
	}
	if !req.Weighted {
		// as extra_steps: settings of weighted sampling are refused, not ignored
		if req.ResampleThreshold != nil {
			return cfg, fieldErr("resample_threshold", "only applies to weighted sampling")
		}
		if req.ResampleScheme != "" {
			return cfg, fieldErr("resample_scheme", "only applies to weighted sampling")
		}
		if req.Kernel != "" {
			return cfg, fieldErr("kernel", "only applies to weighted sampling")
		}
	}
	if req.ResampleThreshold != nil {
		cfg.ResampleThreshold = *req.ResampleThreshold
	}
	if req.ResampleScheme != "" {
		cfg.ResampleScheme = smc.Scheme(clip(req.ResampleScheme))
	}
	cfg.Precondition = Precondition(clip(req.Precondition))
	cfg.Kernel = Kernel(clip(req.Kernel))
	if err := cfg.Validate(m.Info.TrainingInfo); err != nil {
		return cfg, err
	}
	if err := checkBase(m.Info, cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (s *Server) handleSample(w http.ResponseWriter, r *http.Request) {
	var req SampleRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	if req.Version != "" && req.Model == "" {
		s.fail(w, r, http.StatusBadRequest, "version: needs model")
		return
	}
	m, err := s.reg.Get(req.Model, req.Version)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "model: "+err.Error())
		return
	}
	defer m.Release()
	cfg, err := s.sampleConfig(&req, m)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, trimServe(err))
		return
	}
	var res *Result
	if bt := s.batcherFor(m, cfg); bt != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		res, err = bt.Sample(ctx, cfg)
		if err != nil {
			s.batchedFailed(w, r, ctx, err)
			return
		}
	} else {
		ctx, cancel, ok := s.slot(w, r, "sampler")
		if !ok {
			return
		}
		defer cancel()
		res, err = Sample(ctx, m, cfg)
		s.release()
		if err != nil {
			s.sampleFailed(w, r, ctx, err)
			return
		}
	}
	s.metrics.sampled(res)
	out := SampleResponse{
		Model: m.Name, Version: m.Version, N: res.N, Steps: res.Steps, ExtraSteps: res.ExtraSteps, H: res.StepSize,
		Seed: res.Seed, Weighted: res.Weighted, Shape: append([]int{res.N}, res.DataShape...),
		Samples: make([][]float32, res.N), Resamplings: res.Resamplings, LatentDim: res.LatentDim, Batched: res.Batched,
		WalkerStepsPerSecond: res.WalkerStepsPerSecond(), ElapsedSeconds: res.Elapsed.Seconds(),
	}
	for i := range out.Samples {
		out.Samples[i] = res.Samples[i*res.Dim : (i+1)*res.Dim : (i+1)*res.Dim]
	}
	if res.Weighted {
		out.LogWeights = res.LogWeights
		out.ESS, out.ESSFraction, out.LogZ = &res.ESS, &res.ESSFraction, &res.LogZ
		if res.Kernel == KernelMALA {
			out.Accept = &res.Accept
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

// batcherFor returns the model's batcher when the request runs in the
// shared walker pool: batching on, a walk in the model's full dimension (a
// latent walk runs solo), and n within the pool. Otherwise nil: the request
// takes an evaluation slot and runs on its own batch.
func (s *Server) batcherFor(m *Model, cfg SampleConfig) *Batcher {
	if s.cfg.Batching == BatchingOff || walksLatent(m, cfg) || cfg.N > s.cfg.BatchMaxN {
		return nil
	}
	return m.Batcher(BatcherConfig{MaxWalkers: s.cfg.PoolWalkers, MaxQueue: s.cfg.MaxQueue})
}

// batchedFailed maps a batched request's error to a status: a full queue
// 429 and a wait for room that outlasted the timeout 503 (both with
// Retry-After: back-pressure), a client gone while it waited 499; the
// sampler's own errors as sampleFailed.
func (s *Server) batchedFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, err error) {
	switch {
	case errors.Is(err, ErrQueueFull):
		s.overBudget(w, r, "server busy: "+trimServe(err)+"; retry later")
	case errors.Is(err, errBatcherClosed):
		s.busy(w, r, "server busy: the model is being unloaded; retry later")
	case errors.Is(err, ErrNotAdmitted) && r.Context().Err() != nil:
		s.clientGone(w, r, "waiting for room in the walker pool", err)
	case errors.Is(err, ErrNotAdmitted):
		s.busy(w, r, fmt.Sprintf("server busy: no room in the walker pool within the %v request timeout", s.cfg.Timeout))
	default:
		s.sampleFailed(w, r, ctx, err)
	}
}

// sampleFailed maps a sampler error to a status: timeouts 503, client
// disconnects 499 (logged only), diverging walkers 422, the rest 500.
func (s *Server) sampleFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, err error) {
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		s.fail(w, r, http.StatusBadRequest, trimServe(err))
	case errors.Is(err, context.DeadlineExceeded):
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Sprintf("timeout: sampling took longer than %v; ask for fewer walkers or steps", s.cfg.Timeout))
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		s.clientGone(w, r, "sampling", err)
	case errors.Is(err, ErrDiverged):
		s.fail(w, r, http.StatusUnprocessableEntity, "h: "+trimServe(err))
	default:
		s.fail(w, r, http.StatusInternalServerError, trimServe(err))
	}
}

// trimServe is err as API clients and command-line users read it: a
// FieldError as "field: message"; any other error without the "serve: "
// prefix that this package's errors carry for Go callers (the one place that
// knows about that prefix).
func trimServe(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) && error(fe) == err {
		return fe.Field + ": " + fe.Msg
	}
	return strings.TrimPrefix(err.Error(), "serve: ")
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, reports not ready, lets in-flight requests finish for up to
// shutdownTimeout, then cancels the remaining ones and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	base, abort := context.WithCancel(context.Background())
	defer abort()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(ReadHeaderTimeout, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "models", len(s.reg.Models()), "max_concurrent", s.cfg.MaxConcurrent)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("shutting down: draining in-flight requests", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown timeout: cancelling in-flight requests", "err", err)
		abort()
		srv.Close()
	}
	<-errc
	s.inflight.Wait()
	s.log.Info("stopped")
	return nil
}

// ErrDiverged marks a run whose walkers or weights became non-finite.
var ErrDiverged = errors.New("diverged")
