package serve

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"slices"
)

// The Open Inference Protocol's model repository extension over a models
// folder (OpenRepository): POST /v2/repository/index lists every model
// version with its state, POST /v2/repository/models/{name}/load and
// …/unload serve a model or take it out of service. A server of one model
// file (--model) has no repository: these answer 404.

// RepositoryIndexRequest is the body of POST /v2/repository/index; the
// body may be empty.
type RepositoryIndexRequest struct {
	// Ready, when true, lists only the versions served.
	Ready bool `json:"ready,omitempty"`
}

// RepositoryModelRequest is the body of POST /v2/repository/models/{name}/load
// and …/unload; the body may be empty. No parameters are supported.
type RepositoryModelRequest struct {
	Parameters map[string]any `json:"parameters,omitempty"`
}

// decodeOptionalBody is decodeBody for a body that may be empty (no body
// decodes as the zero value).
func (s *Server) decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	br := bufio.NewReaderSize(r.Body, 512)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return true
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return s.decodeBody(w, r, v)
}

// repositoryFailed answers an error of Load, Unload or Index.
func (s *Server) repositoryFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoRepository):
		s.fail(w, r, http.StatusNotFound, "repository: this server serves one model file (--model) and has no model repository; start it with --models DIR")
	case errors.Is(err, ErrNotInRepository):
		s.fail(w, r, http.StatusNotFound, "name: "+trimServe(err))
	case errors.Is(err, ErrNotLoaded):
		s.fail(w, r, http.StatusUnprocessableEntity, "name: "+trimServe(err))
	default:
		s.fail(w, r, http.StatusInternalServerError, trimServe(err))
	}
}

func (s *Server) handleRepositoryIndex(w http.ResponseWriter, r *http.Request) {
	var req RepositoryIndexRequest
	if !s.decodeOptionalBody(w, r, &req) {
		return
	}
	rows, err := s.reg.Index()
	if err != nil {
		s.repositoryFailed(w, r, err)
		return
	}
	if req.Ready {
		rows = slices.DeleteFunc(rows, func(m RepositoryModel) bool { return m.State != StateReady })
	}
	s.writeJSON(w, http.StatusOK, rows)
}

// repositoryModelRequest decodes the body of load and unload.
func (s *Server) repositoryModelRequest(w http.ResponseWriter, r *http.Request) bool {
	var req RepositoryModelRequest
	if !s.decodeOptionalBody(w, r, &req) {
		return false
	}
	for k := range req.Parameters {
		s.fail(w, r, http.StatusBadRequest, "parameters."+fieldName(k)+": not supported")
		return false
	}
	return true
}

func (s *Server) handleRepositoryLoad(w http.ResponseWriter, r *http.Request) {
	if !s.repositoryModelRequest(w, r) {
		return
	}
	rows, err := s.reg.Load(r.PathValue("name"))
	if err != nil {
		s.repositoryFailed(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, rows)
}

func (s *Server) handleRepositoryUnload(w http.ResponseWriter, r *http.Request) {
	if !s.repositoryModelRequest(w, r) {
		return
	}
	rows, err := s.reg.Unload(r.PathValue("name"))
	if err != nil {
		s.repositoryFailed(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, rows)
}
