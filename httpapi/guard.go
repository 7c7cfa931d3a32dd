package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

// crossOrigin is the standard library's CSRF protection with no trusted
// origins: from Sec-Fetch-Site (every browser since 2023), or else by
// comparing Origin with Host, it refuses a non-safe request (not GET, HEAD
// or OPTIONS) that a browser sends from another site's page. A request
// with neither header (curl, the SDK, the CLI) is not a browser's and
// passes.
var crossOrigin = http.NewCrossOriginProtection()

// guardRequest refuses what no legitimate client sends, before any other
// work (issue 11), with 403 permission_denied and a message that says what
// was refused:
//
//   - A cross-site browser request (crossOrigin): a page of another site
//     could otherwise make a visitor's browser, which reaches a node on
//     localhost or the intranet, acquire or release locks. Reading answers
//     cross-site is already prevented by the browser (no CORS headers).
//   - A Host that is not a name of this node (DNS rebinding: a site whose
//     name resolves to the node's address makes the browser send it
//     requests the same-origin policy treats as the site's own). Allowed:
//     an empty Host (HTTP/1.0), IP literals (probes send the pod's IP),
//     "localhost" and names under ".localhost" (which resolve to loopback
//     only), the hosts of the cluster's advertised client URLs (so a
//     request a follower forwards passes), and Config.AllowedHosts: exact
//     names, "*.example.com" for the names under example.com, "*" for any
//     (the check off). Names compare without case, port or trailing dot.
//     /healthz, /readyz and /metrics are not checked.
//
// 403 rather than 421 Misdirected Request: the refusal goes through the
// API's one error table (errors.go), and a client must not retry it on
// another connection as it may a 421.
func (s *Server) guardRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if err := crossOrigin.Check(r); err != nil {
			return api.Errorf(api.CodePermissionDenied, "cross-site request refused: a browser sent %s %s from another site's page (Origin %q, Sec-Fetch-Site %q); the API serves no cross-site writes: use curl, the SDK or the CLI",
				r.Method, r.URL.Path, clipValue(r.Header.Get("Origin")), clipValue(r.Header.Get("Sec-Fetch-Site")))
		}
		if !unguardedPath(r.URL.Path) && !s.hostAllowed(r.Host) {
			return api.Errorf(api.CodePermissionDenied, "Host %q is not a name of this node: use its IP address, localhost, or a name of its advertised client URL; the operator can allow more names (AllowedHosts)", clipValue(r.Host))
		}
		return next(c)
	}
}

// hostAllowed reports whether the request's Host (with or without a port)
// names this node; see guardRequest.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostOnly(hostport)
	if host == "" || isIPLiteral(host) || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, a := range s.cfg.AllowedHosts {
		if hostMatches(host, a) {
			return true
		}
	}
	// The cluster's advertised client URLs (this node's, and the leader's
	// a follower forwards to), looked up only when nothing else matched.
	st := s.node.Status()
	if u := st.LeaderClientURL; u != "" && urlHost(u) == host {
		return true
	}
	for _, m := range st.Members {
		if m.ClientURL != "" && urlHost(m.ClientURL) == host {
			return true
		}
	}
	return false
}

// hostOnly returns the host of a Host header value, lower case, without
// port, brackets or trailing dot.
func hostOnly(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// isIPLiteral reports whether host is an IPv4 or IPv6 address (a zone
// allowed): a request to an address cannot be a rebound name.
func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// hostMatches reports whether host matches the allowed name pattern a:
// "*" matches any host, "*.example.com" any name under example.com (not
// example.com itself), anything else itself.
func hostMatches(host, a string) bool {
	a = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(a)), ".")
	switch {
	case a == "*":
		return true
	case strings.HasPrefix(a, "*."):
		return strings.HasSuffix(host, a[1:]) && len(host) > len(a)-1
	}
	return host == hostOnly(a)
}

// urlHost returns the host of a URL as hostOnly does, "" if it has none.
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return hostOnly(u.Host)
}
