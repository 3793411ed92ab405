package api

import (
	"errors"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	published *prometheus.CounterVec
	gatherer  prometheus.Gatherer
}

func newMetrics(reg prometheus.Registerer, g prometheus.Gatherer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_http_requests_total",
			Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abacus_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_events_published_total",
			Help: "Events published to JetStream by subject and outcome (ok, duplicate, error).",
		}, []string{"subject", "outcome"}),
		gatherer: g,
	}
	reg.MustRegister(m.requests, m.latency, m.published)
	return m
}

func (m *metrics) handler() echo.HandlerFunc {
	h := promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
	return echo.WrapHandler(h)
}

// metricsMiddleware counts requests and observes latency by route pattern
// (never by raw path, which would make one series per test id).
func (s *Server) metricsMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := c.Response().Status
		if err != nil {
			code, _ = classify(err)
		}
		method := c.Request().Method
		s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		s.metrics.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err
	}
}

// recoverMiddleware turns a handler panic into a 500 and logs it once.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("handler panicked", "route", c.Path(), "panic", r, "stack", string(debug.Stack()))
				err = errors.New("handler panicked")
			}
		}()
		return next(c)
	}
}
