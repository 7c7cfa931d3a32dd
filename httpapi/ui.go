package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// ui: GET /ui/* → the web console's files (embedded).
func (s *Server) ui(c echo.Context) error {
	return c.Redirect(http.StatusFound, "/v1/status")
}
