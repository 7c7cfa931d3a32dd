package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
)

// Server timeouts. Request bodies are small (1 MiB at most on the client
// port), so a whole request must arrive within readTimeout; answers have
// no write timeout on the client port, because waiting acquires and event
// streams bound their own time.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 10 * time.Second
	clientIdleTimeout = 2 * time.Minute
	peerIdleTimeout   = 30 * time.Second
)

// listen listens on addr with at most maxConns open connections (more wait
// in the kernel's backlog), every read and write bounded by perIO when it
// is positive (as etcd's peer listener: a silently dead peer is noticed
// within perIO), and TLS when cfg is not nil.
func listen(addr string, maxConns int, perIO time.Duration, cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln = transport.LimitListener(ln, maxConns)
	if perIO > 0 {
		ln = &ioTimeoutListener{Listener: ln, timeout: perIO}
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// peerIOTimeout is rafthttp's own per-read and per-write timeout: streams
// send a heartbeat every third of it.
var peerIOTimeout = rafthttp.ConnReadTimeout

// ioTimeoutListener bounds every Read and Write of its connections by
// timeout, as etcd's timeout listener does, but keeps the earlier
// deadlines the http.Server sets (header, request and idle timeouts):
// etcd's would replace them with its own at every read.
type ioTimeoutListener struct {
	net.Listener
	timeout time.Duration
}

func (l *ioTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ioTimeoutConn{Conn: c, timeout: l.timeout}, nil
}

// ioTimeoutConn is a connection whose every Read and Write ends within
// timeout, or at the deadline set with Set*Deadline if that is earlier.
type ioTimeoutConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex // held while a deadline is computed and set
	rd, wd  time.Time  // deadlines set by the user; zero: none
}

func (c *ioTimeoutConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	err := c.Conn.SetReadDeadline(earlier(time.Now().Add(c.timeout), c.rd))
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *ioTimeoutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	err := c.Conn.SetWriteDeadline(earlier(time.Now().Add(c.timeout), c.wd))
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *ioTimeoutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd, c.wd = t, t
	return c.Conn.SetDeadline(t)
}

func (c *ioTimeoutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	return c.Conn.SetReadDeadline(t)
}

func (c *ioTimeoutConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	return c.Conn.SetWriteDeadline(t)
}

// earlier returns the earlier of d and user, ignoring a zero user.
func earlier(d, user time.Time) time.Time {
	if !user.IsZero() && user.Before(d) {
		return user
	}
	return d
}

// isLoopback reports whether host (a URL's host name, without port) names
// the loopback interface: a loopback IP literal, or localhost.
func isLoopback(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// urlHost returns the host name of a URL, without port.
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// checkLoopbackAddr checks a host:port that must be on the loopback
// interface (--pprof-listen).
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, [::1] or localhost): the profiles have no authentication", addr)
	}
	return nil
}
