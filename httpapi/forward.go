package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/raftnode"
)

// hopHeaders are not copied between the client, this node and the leader.
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Content-Length":      true,
}

// proposeFailed turns the error of the request's first proposal into its
// answer. A *raftnode.NotLeaderError that names the leader's URL forwards
// the request to the leader, unless the request was itself forwarded (then
// 503 unavailable: no forwarding loops). extra is how much longer than
// RequestTimeout the leader may take (the wait of an acquire).
func (s *Server) proposeFailed(c echo.Context, err error, extra time.Duration) error {
	var nle *raftnode.NotLeaderError
	if !errors.As(err, &nle) {
		return err
	}
	if c.Request().Header.Get(api.HeaderForwarded) != "" {
		return api.Errorf(api.CodeUnavailable, "this node is not the leader (leader %d at %q) and the request was already forwarded once; nothing was changed, retry", nle.LeaderID, nle.LeaderClientURL)
	}
	if nle.LeaderClientURL == "" {
		return api.Errorf(api.CodeUnavailable, "this node is not the leader and does not know the leader's URL yet; nothing was changed, retry")
	}
	return s.forward(c, nle.LeaderClientURL, 2*s.cfg.RequestTimeout+extra)
}

// forward sends the request (same method, path, query, headers and the
// buffered body) to the leader at base with the header Raftlock-Forwarded,
// and relays the leader's status, headers and body.
func (s *Server) forward(c echo.Context, base string, limit time.Duration) error {
	r := c.Request()
	body, _ := c.Get(bodyKey).([]byte)
	target := strings.TrimSuffix(base, "/") + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(body))
	if err != nil {
		return api.Errorf(api.CodeUnavailable, "the leader's URL %q is invalid: %v; nothing was changed", base, err)
	}
	for k, vs := range r.Header {
		if !hopHeaders[k] {
			req.Header[k] = append([]string(nil), vs...)
		}
	}
	req.Header.Set(api.HeaderForwarded, "1")
	// The principal this node resolved travels with the request; whatever
	// the client put in the header is dropped (the leader trusts it from a
	// member).
	req.Header.Del(api.HeaderPrincipal)
	if cert, _ := c.Get(certKey).(bool); cert {
		// A certificate's principal: the leader cannot see the client's
		// certificate, so it trusts this node's word, proven by this
		// node's member certificate. A token's principal needs no header:
		// the leader resolves the forwarded Authorization itself.
		req.Header.Set(api.HeaderPrincipal, principalOf(c))
	}
	resp, err := s.fwd.Do(req)
	if err != nil {
		var (
			op    *net.OpError
			cert  *tls.CertificateVerificationError
			rec   tls.RecordHeaderError
			alert tls.AlertError
		)
		// Nothing was sent when the connection or its TLS handshake
		// failed: the request certainly did not happen.
		if (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &cert) || errors.As(err, &rec) || errors.As(err, &alert) {
			return api.Errorf(api.CodeUnavailable, "forwarding to the leader at %s failed: %v; nothing was changed, retry", base, err)
		}
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		return api.Errorf(api.CodeTimeout, "forwarding to the leader at %s failed after the request was sent (%v): the outcome is unknown; retrying the same request is safe", base, err)
	}
	defer resp.Body.Close()
	h := c.Response().Header()
	for k, vs := range resp.Header {
		if !hopHeaders[k] {
			h[k] = append([]string(nil), vs...)
		}
	}
	c.Response().WriteHeader(resp.StatusCode)
	if _, err := io.Copy(c.Response(), resp.Body); err != nil {
		s.log.Warn("relay the leader's answer", "leader", base, "error", err)
	}
	return nil
}
