package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

// openAPI: GET /v1/openapi.json → the OpenAPI document of this API.
func (s *Server) openAPI(c echo.Context) error {
	return api.Errorf(api.CodeNotFound, "the OpenAPI document is not built yet")
}

var _ = http.StatusOK
