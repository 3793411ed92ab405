package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/schemas"
)

// routes is the route table: every endpoint of the API, in one place.
// schemas/openapi.yaml describes each of them; a test keeps the two in step.
func (s *Server) routes() {
	e := s.e
	e.Use(s.metricsMiddleware, s.recoverMiddleware, securityHeaders)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics.handler())
	e.GET("/openapi.yaml", serveOpenAPI)

	g := e.Group("/api/ab-testing")
	g.POST("/tests", s.createTest)
	g.GET("/tests", s.listTests)
	g.GET("/tests/:test_id", s.getTest)
	g.POST("/tests/:test_id/start", s.startTest)
	g.POST("/tests/:test_id/stop", s.stopTest)
	g.POST("/tests/:test_id/assign", s.assign)
	g.POST("/tests/:test_id/record", s.record)
	g.GET("/tests/:test_id/analyze", s.analyze)
}

func serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", schemas.OpenAPI)
}

// securityHeaders sets the headers every JSON API response should carry.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}
