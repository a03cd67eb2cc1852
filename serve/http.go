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

// ServerConfig bounds what one request may ask for.
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
	// MaxBodyBytes bounds request bodies. The default value is 16 MiB.
	MaxBodyBytes int64
	// Timeout bounds each request (sampling stops at the deadline). The
	// default value is 60 s.
	Timeout time.Duration
	// MaxConcurrent is the number of model evaluations (samplers or infer
	// calls) running at once; others wait, up to Timeout. DefaultServerConfig
	// sets 2; a value ≤ 0 means max(2, GOMAXPROCS/2).
	MaxConcurrent int
	// Logger receives request and lifecycle logs. The default value is slog.Default().
	Logger *slog.Logger
}

// DefaultServerConfig returns the documented defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{MaxN: 100_000, MaxSteps: 100_000, MaxWalkerSteps: 50_000_000, MaxOutputValues: 4_000_000,
		MaxInferBatch: 65536, MaxBodyBytes: 16 << 20, Timeout: 60 * time.Second, MaxConcurrent: 2}
}

func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.MaxN <= 0 {
		c.MaxN = d.MaxN
	}
	if c.MaxSteps <= 0 {
		c.MaxSteps = d.MaxSteps
	}
	if c.MaxWalkerSteps <= 0 {
		c.MaxWalkerSteps = d.MaxWalkerSteps
	}
	if c.MaxOutputValues <= 0 {
		c.MaxOutputValues = d.MaxOutputValues
	}
	if c.MaxInferBatch <= 0 {
		c.MaxInferBatch = d.MaxInferBatch
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = max(d.MaxConcurrent, runtime.GOMAXPROCS(0)/2)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
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
	inflight sync.WaitGroup
}

var _ http.Handler = (*Server)(nil)

// NewServer builds the handler. It is ready at once; Serve marks it not
// ready while shutting down.
func NewServer(reg *Registry, cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	s := &Server{reg: reg, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), slots: make(chan struct{}, cfg.MaxConcurrent)}
	s.ready.Store(true)
	s.metrics = newMetrics(reg.Models(), s.ready.Load)
	s.mux.HandleFunc("POST /v1/sample", s.handleSample)
	s.mux.HandleFunc("GET /v2", s.handleServerMetadata)
	s.mux.HandleFunc("GET /v2/health/live", s.handleLive)
	s.mux.HandleFunc("GET /v2/health/ready", s.handleReady)
	s.mux.HandleFunc("GET /v2/models/{name}/ready", s.handleModelReady)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.handleModelReady)
	s.mux.HandleFunc("GET /v2/models/{name}", s.handleModelMetadata)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.handleModelMetadata)
	s.mux.HandleFunc("POST /v2/models/{name}/infer", s.handleInfer)
	s.mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.handleInfer)
	s.mux.HandleFunc("GET /metrics", s.handleMetrics)
	return s
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

// ServeHTTP routes a request and records its metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	start := time.Now()
	s.metrics.begin()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		} else if i := strings.IndexByte(route, ' '); i >= 0 {
			route = route[i+1:]
		}
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observe(route, r.Method, sw.code, d)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "code", sw.code, "duration", d)
	}()
	s.mux.ServeHTTP(sw, r)
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

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", msg)
	} else {
		s.log.Info("request rejected", "method", r.Method, "path", r.URL.Path, "code", code, "err", msg)
	}
	s.writeJSON(w, code, errorBody{msg})
}

// decodeBody reads one JSON object into v, rejecting unknown fields,
// trailing data and bodies over the limit. The message names the field.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			var mbe *http.MaxBytesError
			if errors.As(e, &mbe) {
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
	)
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body: larger than the limit of %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, errors.New("body: empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, errors.New("body: truncated JSON")
	case errors.As(err, &se):
		return http.StatusBadRequest, fmt.Errorf("body: invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		return http.StatusBadRequest, fmt.Errorf("%s: want %s, got JSON %s", field, jsonKind(ute.Type), ute.Value)
	}
	if f, ok := unknownJSONField(err); ok {
		return http.StatusBadRequest, fmt.Errorf("%s: unknown field", f)
	}
	return http.StatusBadRequest, fmt.Errorf("body: %v", err)
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
// request ends), or answers 503 naming what it waited for and returns
// ok = false.
func (s *Server) slot(w http.ResponseWriter, r *http.Request, what string) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	ctx, cancel = context.WithTimeout(r.Context(), s.cfg.Timeout)
	if !s.acquire(ctx) {
		cancel()
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Sprintf("server busy: no %s free within the %v request timeout", what, s.cfg.Timeout))
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
	// LatentDim is r when the walk ran in the model's latent space
	// (model.latent.onnx), absent when it ran in the full dimension.
	LatentDim int `json:"latent_dim,omitempty"`
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
	if cfg.N < 1 || cfg.N > s.cfg.MaxN {
		return cfg, fieldErr("n", "must be in [1, %d], got %d", s.cfg.MaxN, cfg.N)
	}
	if cfg.Steps < 0 || cfg.Steps > s.cfg.MaxSteps {
		return cfg, fieldErr("steps", "must be in [0, %d], got %d", s.cfg.MaxSteps, cfg.Steps)
	}
	if cfg.ExtraSteps < 0 || cfg.ExtraSteps > s.cfg.MaxSteps-cfg.Steps {
		return cfg, fieldErr("extra_steps", "must be in [0, %d] (steps + extra_steps ≤ %d), got %d", s.cfg.MaxSteps-cfg.Steps, s.cfg.MaxSteps, cfg.ExtraSteps)
	}
	if ws := int64(cfg.N) * int64(cfg.TotalSteps()); ws > s.cfg.MaxWalkerSteps {
		return cfg, fieldErr("n*steps", "n·(steps+extra_steps) = %d exceeds the limit %d", ws, s.cfg.MaxWalkerSteps)
	}
	if vals := int64(cfg.N) * int64(m.Info.Dim); vals > s.cfg.MaxOutputValues {
		return cfg, fieldErr("n", "n·d = %d numbers exceeds the response limit %d", vals, s.cfg.MaxOutputValues)
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
	if req.Init != "" {
		cfg.Init = Init(req.Init)
	}
	if req.ResampleThreshold != nil {
		cfg.ResampleThreshold = *req.ResampleThreshold
	}
	if req.ResampleScheme != "" {
		cfg.ResampleScheme = smc.Scheme(req.ResampleScheme)
	}
	if err := cfg.Validate(m.Info.TrainingInfo); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (s *Server) handleSample(w http.ResponseWriter, r *http.Request) {
	var req SampleRequest
	if code, err := s.decodeBody(w, r, &req); err != nil {
		s.fail(w, r, code, err.Error())
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
	cfg, err := s.sampleConfig(&req, m)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, trimServe(err))
		return
	}
	ctx, cancel, ok := s.slot(w, r, "sampler")
	if !ok {
		return
	}
	defer cancel()
	res, err := Sample(ctx, m, cfg)
	s.release()
	if err != nil {
		s.sampleFailed(w, r, ctx, err)
		return
	}
	s.metrics.sampled(res)
	out := SampleResponse{
		Model: m.Name, Version: m.Version, N: res.N, Steps: res.Steps, ExtraSteps: res.ExtraSteps, H: res.StepSize,
		Seed: res.Seed, Weighted: res.Weighted, Shape: append([]int{res.N}, res.DataShape...),
		Samples: make([][]float32, res.N), Resamplings: res.Resamplings, LatentDim: res.LatentDim,
		WalkerStepsPerSecond: res.WalkerStepsPerSecond(), ElapsedSeconds: res.Elapsed.Seconds(),
	}
	for i := range out.Samples {
		out.Samples[i] = res.Samples[i*res.Dim : (i+1)*res.Dim : (i+1)*res.Dim]
	}
	if res.Weighted {
		out.LogWeights = res.LogWeights
		out.ESS, out.ESSFraction, out.LogZ = &res.ESS, &res.ESSFraction, &res.LogZ
	}
	s.writeJSON(w, http.StatusOK, out)
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
		s.log.Info("client went away", "path", r.URL.Path, "err", err)
		w.WriteHeader(499)
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
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
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
