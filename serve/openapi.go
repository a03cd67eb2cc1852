package serve

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 description of the HTTP API, served at
// GET /openapi.json; a test checks it against the routes and the request
// and response types.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI)
}
