package httpapi

import "github.com/labstack/echo/v4"

// principalKey is the echo context key of the request's principal, set by
// the authenticate middleware.
const principalKey = "raftlock.principal"

// principalOf returns the request's authenticated principal: a user name,
// or "" when auth is off or the request is anonymous. Without auth every
// client counts as the one principal "".
func principalOf(c echo.Context) string {
	p, _ := c.Get(principalKey).(string)
	return p
}
