package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the Server's Prometheus registry: a registry of its own (not
// the global default one, which rafthttp and etcd's packages fill), with
// the HTTP request durations and, when the node provides them
// (collectorNode), the node's metrics.
type metrics struct {
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
	routes   map[string]bool // echo's route paths: the only route label values besides "other"
	handler  http.Handler
	// observers caches the histogram of each (method, route, code), so a
	// request does not hash its labels: observerKey → prometheus.Observer.
	// Bounded: methods, routes and status codes are finite sets.
	observers sync.Map
}

type observerKey struct {
	method, route string
	code          int
}

// observer returns the duration histogram of (method, route, code).
func (m *metrics) observer(method, route string, code int) prometheus.Observer {
	k := observerKey{method, route, code}
	if o, ok := m.observers.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o := m.duration.WithLabelValues(method, route, strconv.Itoa(code))
	m.observers.Store(k, o)
	return o
}

// collectorNode is implemented by *raftnode.Node: a node that exports its
// metrics. Test fakes need not.
type collectorNode interface {
	Collector() prometheus.Collector
}

func newMetrics(node any) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "raftlock_http_request_duration_seconds",
			Help: "Time to serve an HTTP request of the client API, by method, route (echo's route path, not the URL) and status code. A wait or a stream lasts until it ends.",
			// 1 ms … ~65 s: waits for a lock can be long.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}, []string{"method", "route", "code"}),
		routes: map[string]bool{},
	}
	m.reg.MustRegister(m.duration)
	if cn, ok := node.(collectorNode); ok {
		m.reg.MustRegister(cn.Collector())
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// knowRoutes records e's route paths, the route label's values.
func (m *metrics) knowRoutes(e *echo.Echo) {
	for _, r := range e.Routes() {
		m.routes[r.Path] = true
	}
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// observeRequest is the outermost middleware: it times each request and
// counts it under its route and status. It hands a handler's error to the
// error handler itself (as echo would after it), so that the status is the
// one sent.
func (s *Server) observeRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if !s.metrics.routes[route] {
			route = "other" // no route matched (404): never the raw URL
		}
		s.metrics.observer(methodLabel(c.Request().Method), route, c.Response().Status).Observe(time.Since(start).Seconds())
		return nil
	}
}

// serveMetrics answers GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics(c echo.Context) error {
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// MetricsHandler serves the Server's metrics in the Prometheus text format,
// as GET /metrics does, for a listener of its own (raftlockd
// --listen-metrics).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler }

// Registry is the Server's own Prometheus registry, for a caller that
// wants to add collectors of its own.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }
