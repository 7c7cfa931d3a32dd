package httpapi

import "github.com/labstack/echo/v4"

// principalKey is the echo context key of the request's principal, set by
// the authenticate middleware.
const principalKey = "raftlock.principal"

// tokenKey is the echo context key of the ID of the bearer token that
// proved the principal (uint64; absent for a certificate or anonymous).
const tokenKey = "raftlock.token"

// certKey marks a principal proven by a client certificate (bool): only
// those travel in the forwarding header (a token's user is resolved again
// by the leader, from the forwarded Authorization header).
const certKey = "raftlock.cert"

// tokenOf returns the ID of the token that proved the request's principal.
func tokenOf(c echo.Context) uint64 {
	id, _ := c.Get(tokenKey).(uint64)
	return id
}

// principalOf returns the request's authenticated principal: a user name,
// or "" when auth is off or the request is anonymous. Without auth every
// client counts as the one principal "".
func principalOf(c echo.Context) string {
	p, _ := c.Get(principalKey).(string)
	return p
}
