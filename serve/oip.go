package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/models"
)

// The Open Inference Protocol (KServe v2) REST endpoints for the energy
// model: health, model readiness and metadata, and infer (energy and grad at
// given points). Tensors use the JSON representation (datatype, shape, data
// row-major, flat or nested); the binary extension is not supported.

// ServerName and ServerVersion answer GET /v2.
const (
	ServerName    = "jarzyn-serve"
	ServerVersion = "1"
	// Platform is reported in model metadata.
	Platform = "onnxruntime_onnx"
	// DatatypeFP32 is the only tensor datatype the energy model takes.
	DatatypeFP32 = "FP32"
)

// TensorMetadata describes an input or output in model metadata.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadataResponse is the body of GET /v2/models/{name}[/versions/{v}].
type ModelMetadataResponse struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
	// Parameters carries the jarzyn metadata (an extension field).
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferInput is one input tensor of an infer request.
type InferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// InferRequestedOutput names an output the client wants.
type InferRequestedOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferRequest is the body of POST /v2/models/{name}[/versions/{v}]/infer.
type InferRequest struct {
	ID         string                 `json:"id,omitempty"`
	Parameters map[string]any         `json:"parameters,omitempty"`
	Inputs     []InferInput           `json:"inputs"`
	Outputs    []InferRequestedOutput `json:"outputs,omitempty"`
}

// InferOutput is one output tensor of an infer response.
type InferOutput struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float32 `json:"data"`
}

// InferResponse is the body of a successful infer.
type InferResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version"`
	ID           string        `json:"id,omitempty"`
	Outputs      []InferOutput `json:"outputs"`
}

func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	ext := []string{}
	if s.reg.repo != nil {
		ext = append(ext, ExtensionModelRepository)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"name": ServerName, "version": ServerVersion, "extensions": ext})
}

// ExtensionModelRepository is the Open Inference Protocol extension that
// GET /v2 lists when the server has a model repository (--models DIR).
const ExtensionModelRepository = "model_repository"

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

// handleReady reports ready while the server is not shutting down and
// serves at least one model (a repository's scans may unload them all).
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() || len(s.reg.Names()) == 0 {
		s.writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

// model resolves the {name} and optional {version} path values (404 if
// unknown) to a retained model: the caller releases it.
func (s *Server) model(w http.ResponseWriter, r *http.Request) (*Model, bool) {
	m, err := s.reg.Get(r.PathValue("name"), r.PathValue("version"))
	if err != nil || r.PathValue("name") == "" {
		if err == nil {
			m.Release()
			err = ErrModelNotFound
		}
		s.fail(w, r, http.StatusNotFound, "name: "+err.Error())
		return nil, false
	}
	return m, true
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok {
		return
	}
	defer m.Release()
	ready := s.ready.Load()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, map[string]any{"name": m.Name, "version": m.Version, "ready": ready})
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok {
		return
	}
	defer m.Release()
	versions := s.reg.Versions(m.Name)
	if r.PathValue("version") != "" {
		versions = []string{m.Version}
	}
	shape := []int64{-1}
	for _, d := range m.Info.DataShape {
		shape = append(shape, int64(d))
	}
	params := map[string]any{
		"family": m.Info.Family, "format_version": m.Info.FormatVersion, "data_shape": m.Info.DataShape,
		"base_mean": m.Info.BaseMean, "base_std": m.Info.BaseStd, "data_range": []float64{m.Info.DataMin, m.Info.DataMax},
		"step_size": m.Info.StepSize, "method": m.Info.Method, "config_digest": m.Info.ConfigDigest,
		"model_version": m.Info.ModelVersion, "device": string(m.Device),
	}
	if !math.IsNaN(m.Info.LogZEstimate) {
		params["log_z_estimate"] = m.Info.LogZEstimate
	}
	// the spec without a data-fitted base's k×d vectors: its summary instead
	if spec, base := summariseBase(&m.Info); spec != nil {
		params["spec"] = spec
		if base != nil {
			params["base"] = base
		}
	}
	s.writeJSON(w, http.StatusOK, ModelMetadataResponse{
		Name: m.Name, Versions: versions, Platform: Platform,
		Inputs: []TensorMetadata{{models.InputX, DatatypeFP32, shape}},
		Outputs: []TensorMetadata{
			{models.OutputEnergy, DatatypeFP32, []int64{-1}},
			{models.OutputGrad, DatatypeFP32, shape},
		},
		Parameters: params,
	})
}

// parseTensorData reads a JSON array of numbers (row-major) for a tensor of
// the given shape: flat (every value in one array) or nested exactly as the
// shape (an array of shape[0] arrays of shape[1] … numbers). Anything else
// is refused, ragged arrays and arrays mixing numbers and arrays included,
// and so is a value that is not a finite float32. The message names the
// element. raw must be valid JSON.
func parseTensorData(raw json.RawMessage, field string, shape []int64) ([]float32, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fieldErr(field, "required")
	}
	want := int64(1)
	for _, d := range shape {
		if d < 1 || want > math.MaxInt32/d {
			return nil, fieldErr(field, "shape %s holds no values or too many", fmtShape(shape))
		}
		want *= d
	}
	out := make([]float32, 0, want)
	// count[k] counts the elements of the open array at depth k+1, size[k]
	// is the length every array at that depth has (-1 until one closes);
	// leaf is the depth of the numbers (0 until the first)
	count := make([]int64, 0, len(shape))
	size := make([]int64, 0, len(shape))
	leaf := 0
	ragged := func() error {
		return fieldErr(field, "the nesting does not match shape %s: want a flat array of %d numbers or arrays nested as the shape", fmtShape(shape), want)
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			i++
		case c == '[':
			if len(count) > 0 {
				if leaf == len(count) {
					return nil, ragged() // an array among numbers
				}
				count[len(count)-1]++
			}
			if len(count) == len(shape) {
				return nil, ragged() // deeper than the shape
			}
			count = append(count, 0)
			if len(size) < len(count) {
				size = append(size, -1)
			}
			i++
		case c == ']':
			k := len(count) - 1
			if k < 0 {
				return nil, fieldErr(field, "want an array of numbers")
			}
			if count[k] == 0 {
				return nil, ragged() // an empty array
			}
			if size[k] >= 0 && size[k] != count[k] {
				return nil, ragged()
			}
			size[k] = count[k]
			count = count[:k]
			i++
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(raw) && (raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E' || raw[j] == '+' || raw[j] == '-' || (raw[j] >= '0' && raw[j] <= '9')) {
				j++
			}
			if len(count) == 0 {
				return nil, fieldErr(field, "want an array of numbers")
			}
			if leaf == 0 {
				leaf = len(count)
			} else if leaf != len(count) {
				return nil, ragged() // numbers at two depths
			}
			v, err := strconv.ParseFloat(string(raw[i:j]), 64)
			if err != nil || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
				return nil, fieldErr(fmt.Sprintf("%s[%d]", field, len(out)), "%s is not a finite float32", clip(string(raw[i:j])))
			}
			if int64(len(out)) == want {
				return nil, fieldErr(field, "has more than the %d values its shape needs", want)
			}
			out = append(out, float32(v))
			count[len(count)-1]++
			i = j
		default:
			if len(count) == 0 {
				return nil, fieldErr(field, "want an array of numbers")
			}
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, len(out)), "want a number (NaN and Inf are not allowed)")
		}
	}
	if int64(len(out)) != want {
		return nil, fieldErr(field, "has %d values, its shape needs %d", len(out), want)
	}
	if leaf != 1 {
		// nested: the lengths at each depth must be the shape
		if leaf != len(shape) {
			return nil, ragged()
		}
		for k, d := range shape {
			if size[k] != d {
				return nil, ragged()
			}
		}
	}
	return out, nil
}

// fmtShape formats a client's shape, at most maxEcho bytes of it.
func fmtShape(shape []int64) string {
	return clip(fmt.Sprint(shape[:min(len(shape), maxEcho)]))
}

// inferInput validates an infer request against a model and returns the
// batch size, the points and which outputs to return.
func (s *Server) inferInput(req *InferRequest, m *Model) (n int, x []float32, outs []string, err error) {
	if len(req.Inputs) != 1 {
		return 0, nil, nil, fieldErr("inputs", "want exactly one input named %q, got %d inputs", models.InputX, len(req.Inputs))
	}
	in := &req.Inputs[0]
	if in.Name != models.InputX {
		return 0, nil, nil, fieldErr("inputs[0].name", "want %q, got %s", models.InputX, clipq(in.Name))
	}
	if in.Datatype != DatatypeFP32 {
		return 0, nil, nil, fieldErr("inputs[0].datatype", "want %q, got %s", DatatypeFP32, clipq(in.Datatype))
	}
	if _, ok := in.Parameters["binary_data_size"]; ok {
		return 0, nil, nil, fieldErr("inputs[0].parameters.binary_data_size", "binary tensor data is not supported; send JSON data")
	}
	ds := m.Info.DataShape
	if len(in.Shape) != 1+len(ds) {
		return 0, nil, nil, fieldErr("inputs[0].shape", "want [batch,%s], got %s", joinInts(ds), fmtShape(in.Shape))
	}
	if in.Shape[0] < 1 || in.Shape[0] > int64(s.cfg.MaxInferBatch) {
		return 0, nil, nil, fieldErr("inputs[0].shape[0]", "batch must be in [1, %d], got %d", s.cfg.MaxInferBatch, in.Shape[0])
	}
	for k, d := range ds {
		if in.Shape[k+1] != int64(d) {
			return 0, nil, nil, fieldErr(fmt.Sprintf("inputs[0].shape[%d]", k+1), "want %d (data shape %v), got %d", d, ds, in.Shape[k+1])
		}
	}
	n = int(in.Shape[0])
	if x, err = parseTensorData(in.Data, "inputs[0].data", in.Shape); err != nil {
		return 0, nil, nil, err
	}
	seen := map[string]bool{}
	for j, o := range req.Outputs {
		if o.Name != models.OutputEnergy && o.Name != models.OutputGrad {
			return 0, nil, nil, fieldErr(fmt.Sprintf("outputs[%d].name", j), "want %q or %q, got %s", models.OutputEnergy, models.OutputGrad, clipq(o.Name))
		}
		if seen[o.Name] {
			return 0, nil, nil, fieldErr(fmt.Sprintf("outputs[%d].name", j), "%q requested twice", o.Name)
		}
		seen[o.Name] = true
		outs = append(outs, o.Name)
	}
	if len(outs) == 0 {
		outs = []string{models.OutputEnergy, models.OutputGrad}
	}
	return n, x, outs, nil
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok {
		return
	}
	defer m.Release()
	var req InferRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	n, x, outs, err := s.inferInput(&req, m)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, trimServe(err))
		return
	}
	ctx, cancel, ok := s.slot(w, r, "evaluation slot")
	if !ok {
		return
	}
	defer cancel()
	energy, grad, err := s.evaluate(ctx, m, n, x)
	s.release()
	if err != nil {
		s.inferFailed(w, r, err)
		return
	}
	for i, e := range energy {
		if math.IsNaN(float64(e)) || math.IsInf(float64(e), 0) {
			s.fail(w, r, http.StatusUnprocessableEntity, fmt.Sprintf("inputs[0].data: the model's energy at row %d is %v", i, e))
			return
		}
	}
	for i, g := range grad {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			s.fail(w, r, http.StatusUnprocessableEntity, fmt.Sprintf("inputs[0].data: the model's gradient at row %d is %v", i/m.Info.Dim, g))
			return
		}
	}
	resp := InferResponse{ModelName: m.Name, ModelVersion: m.Version, ID: req.ID}
	gshape := append([]int64(nil), req.Inputs[0].Shape...)
	for _, name := range outs {
		if name == models.OutputEnergy {
			resp.Outputs = append(resp.Outputs, InferOutput{models.OutputEnergy, DatatypeFP32, []int64{int64(n)}, energy})
		} else {
			resp.Outputs = append(resp.Outputs, InferOutput{models.OutputGrad, DatatypeFP32, gshape, grad})
		}
	}
	s.writeJSON(w, http.StatusOK, resp)
}

// inferFailed maps an evaluation error to a status as sampleFailed does:
// timeouts 503, client disconnects 499 (logged only), the rest 500.
func (s *Server) inferFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Sprintf("timeout: inference took longer than %v; send fewer rows", s.cfg.Timeout))
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		s.clientGone(w, r, "evaluating", err)
	default:
		s.fail(w, r, http.StatusInternalServerError, trimServe(err))
	}
}

// evaluate runs the model on n points with a pooled batch, under ctx (see
// runUnder).
func (s *Server) evaluate(ctx context.Context, m *Model, n int, x []float32) (energy, grad []float32, err error) {
	b, err := m.getBatch(n, 0)
	if err != nil {
		return nil, nil, err
	}
	defer m.putBatch(b)
	copy(b.X, x)
	if err := runUnder(ctx, func(ro *ort.RunOptions) error { return m.Eval(b, ro) }); err != nil {
		return nil, nil, err
	}
	return append([]float32(nil), b.Energy...), append([]float32(nil), b.Grad...), nil
}
