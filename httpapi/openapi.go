package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

// openAPIDoc is the document GET /v1/openapi.json answers, built into the
// binary (api/openapi.json).
var openAPIDoc = api.OpenAPI()

// openAPI: GET /v1/openapi.json → 200 the OpenAPI document of this API
// (application/json). It needs no principal (auth.go).
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}
