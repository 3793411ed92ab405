package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/schemas"
)

// routes is the route table: every endpoint of the API, in one place, with
// the permission an API key needs to call it (see admit; the README
// lists them). Middleware runs in the seed's order, CORS, input validation,
// rate limiting, authentication, with two refinements: admit
// authenticates the key before it applies the limits, which are per
// verified key; and the body is validated after authentication (validateBody), so
// that anonymous clients cannot make the server read and scan bodies. schemas/openapi.yaml describes each of them; tests keep the
// two in step, and New fails on a route added without s.handle.
func (s *Server) routes() {
	s.e.Use(s.metricsMiddleware, s.recoverMiddleware, securityHeaders)
	if len(s.cfg.CORSOrigins) > 0 {
		s.e.Use(cors(s.cfg.CORSOrigins))
	}
	s.e.Use(s.validateInput, s.admit, s.validateBody)

	s.handle(http.MethodGet, "/healthz", auth.Public, s.healthz)
	s.handle(http.MethodGet, "/readyz", auth.Public, s.readyz)
	s.handle(http.MethodGet, "/metrics", auth.Public, s.metrics.handler())
	s.handle(http.MethodGet, "/openapi.yaml", auth.Public, serveOpenAPI)

	const t = "/api/ab-testing/tests"
	s.handle(http.MethodPost, t, auth.TestsCreate, s.createTest)
	s.handle(http.MethodGet, t, auth.TestsRead, s.listTestsCached)
	s.handle(http.MethodGet, t+"/:test_id", auth.TestsRead, s.getTestCached)
	s.handle(http.MethodPost, t+"/:test_id/start", auth.TestsManage, s.startTest)
	s.handle(http.MethodPost, t+"/:test_id/stop", auth.TestsManage, s.stopTest)
	s.dataPlaneRoute(http.MethodPost, t+"/:test_id/assign", auth.TestsAssign, s.assign)
	s.dataPlaneRoute(http.MethodPost, t+"/:test_id/record", auth.TestsRecord, s.record)
	s.handle(http.MethodGet, t+"/:test_id/analyze", auth.TestsAnalyze, s.analyze)
	s.handle(http.MethodGet, t+"/:test_id/analyze/history", auth.TestsAnalyze, s.analyzeHistory)
	s.handle(http.MethodPost, "/api/ab-testing/power", auth.TestsAnalyze, s.power)
	s.dataPlaneRoute(http.MethodPost, batchPath, auth.TestsRecord, s.ingestBatch)

	// OpenFeature remote evaluation (ofrep.go): an evaluation is an assignment.
	s.dataPlaneRoute(http.MethodPost, "/ofrep/v1/evaluate/flags/:key", auth.TestsAssign, s.ofrepEvaluate)
	s.dataPlaneRoute(http.MethodPost, "/ofrep/v1/evaluate/flags", auth.TestsAssign, s.ofrepBulkEvaluate)
	// The definitions that local evaluation (the Go SDK) decides on.
	s.dataPlaneRoute(http.MethodGet, "/api/ab-testing/flags", auth.TestsAssign, s.listFlags)

	const k = "/api/admin/keys"
	s.handle(http.MethodPost, k, auth.AdminKeys, s.createKey)
	s.handle(http.MethodGet, k, auth.AdminKeys, s.listKeys)
	s.handle(http.MethodGet, k+"/:key_id", auth.AdminKeys, s.getKey)
	s.handle(http.MethodDelete, k+"/:key_id", auth.AdminKeys, s.revokeKey)
	s.handle(http.MethodPost, k+"/:key_id/rotate", auth.AdminKeys, s.rotateKey)

	s.handle(http.MethodGet, "/api/admin/cache/stats", auth.AdminCache, s.cacheStats)
	s.handle(http.MethodPost, "/api/admin/clear-cache", auth.AdminCache, s.clearCache)
}

// dataPlaneRoute is handle for a route of the data plane, where one
// server-side key carries many end users' traffic: its requests count
// toward RateLimitConfig.DataPlane instead of Global.
func (s *Server) dataPlaneRoute(method, path string, perm auth.Permission, h echo.HandlerFunc) {
	s.dataPlane[routeKey{method, path}] = true
	s.handle(method, path, perm, h)
}

// batchPath is the batch ingestion route, whose events are validated one by
// one by its handler (see validateBody).
const batchPath = "/api/ab-testing/events"

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
