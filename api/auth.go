package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/internal/auth"
)

// keyStore verifies and manages API keys (met by *auth.Store).
type keyStore interface {
	Verify(raw string) (*auth.Key, error)
	keyAdmin
}

// HeaderAPIKey carries an API key; "Authorization: Bearer <key>" works too.
const HeaderAPIKey = "X-API-Key"

// HeaderWarning is set on every response while authentication is disabled.
const HeaderWarning = "X-Abacus-Warning"

const devModeWarning = "authentication is disabled (ENVIRONMENT=development); do not expose this server"

// routeKey identifies a route of the table.
type routeKey struct{ method, path string }

// handle registers a route with the permission it requires (auth.Public for
// none). It is the only way routes are added: New fails if the router holds
// a route that did not come through here.
func (s *Server) handle(method, path string, perm auth.Permission, h echo.HandlerFunc) {
	if perm == "" {
		s.routeErrs = append(s.routeErrs, fmt.Errorf("route %s %s declares no permission", method, path))
	}
	s.perms[routeKey{method, path}] = perm
	s.e.Add(method, path, h)
}

// checkRoutes reports a route that is in the router but not in the table.
func (s *Server) checkRoutes() error {
	errs := s.routeErrs
	for _, r := range s.e.Routes() {
		if _, ok := s.perms[routeKey{r.Method, r.Path}]; !ok {
			errs = append(errs, fmt.Errorf("route %s %s was added without a permission: use Server.handle", r.Method, r.Path))
		}
	}
	return errors.Join(errs...)
}

// Permission returns the permission a route requires, and whether the route
// exists.
func (s *Server) Permission(method, path string) (auth.Permission, bool) {
	p, ok := s.perms[routeKey{method, path}]
	return p, ok
}

// authFailures counts rejected requests by reason.
func newAuthFailures(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "abacus_auth_failures_total",
		Help: "Requests rejected by authentication (401: missing, malformed, unknown, expired, revoked) or authorization (403: forbidden).",
	}, []string{"reason"})
	reg.MustRegister(c)
	return c
}

// admit decides whether a request reaches its handler. It runs the route
// table's checks in this order, each in its own function:
//
//  1. public routes pass, unlimited (health checks, metrics, the spec);
//  2. authenticate: the API key is verified (never trusted unverified, so
//     random keys cannot mint fresh rate-limit buckets); a request without
//     a valid key is limited per client IP under the tighter auth-failure
//     policy (429 once exceeded), then answered 401;
//  3. rate limit: the key's global and route windows, times its
//     rate_limit_multiplier (429 with Retry-After);
//  4. authorize: a route needs a key granting its permission (403).
//
// Every request, including one for a path or method that does not exist,
// needs a valid key. With authentication disabled every request passes,
// limited per client IP, and the response says so in a header.
func (s *Server) admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.AuthDisabled {
			c.Response().Header().Set(HeaderWarning, devModeWarning)
		}
		perm, declared := s.perms[routeKey{c.Request().Method, c.Path()}]
		if declared && perm == auth.Public {
			return next(c)
		}
		if s.cfg.AuthDisabled {
			if denied, err := s.limits.forIP(c); denied {
				return err
			}
			return next(c)
		}
		k, reason, msg := s.authenticate(c.Request())
		if k == nil {
			if denied, err := s.limits.forAuthFailure(c); denied {
				s.authFailures.WithLabelValues(reason).Inc()
				return err
			}
			return s.unauthorized(c, reason, msg)
		}
		if denied, err := s.limits.forKey(c, k); denied {
			return err
		}
		if !declared {
			// Echo's own 404, 405 and OPTIONS answers: no permission to check.
			return next(c)
		}
		if err := s.authorize(c, k, perm); err != nil {
			return err
		}
		if perm == auth.AdminKeys || perm == auth.AdminCache {
			// For the audit log and the escalation check; only here, as Set allocates.
			c.Set(ctxKeyID, k.ID)
			c.Set(ctxKey, k)
		}
		return next(c)
	}
}

// authenticate verifies the request's API key. Without a valid one it
// returns the failure's reason (a metric label) and message.
func (s *Server) authenticate(r *http.Request) (k *auth.Key, reason, msg string) {
	raw, ok := requestKey(r)
	if !ok {
		return nil, "missing", "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>"
	}
	k, err := s.keys.Verify(raw)
	switch {
	case errors.Is(err, auth.ErrMalformed):
		return nil, "malformed", "malformed API key"
	case errors.Is(err, auth.ErrExpired):
		return nil, "expired", "API key expired"
	case errors.Is(err, auth.ErrRevoked):
		return nil, "revoked", "API key revoked"
	case err != nil:
		return nil, "unknown", "invalid API key"
	}
	return k, "", ""
}

// authorize answers 403 unless key k grants perm.
func (s *Server) authorize(c echo.Context, k *auth.Key, perm auth.Permission) error {
	if k.Allows(perm) {
		return nil
	}
	s.authFailures.WithLabelValues("forbidden").Inc()
	s.log.Debug("request forbidden", "route", c.Path(), "key_id", k.ID, "permission", perm)
	e := newError(http.StatusForbidden, "API key lacks permission %s", perm)
	e.body.Detail = map[string]any{"permission": perm}
	return e
}

// Echo context keys of the caller's key id and key on admin routes.
const (
	ctxKeyID = "abacus.key_id"
	ctxKey   = "abacus.key"
)

func (s *Server) unauthorized(c echo.Context, reason, msg string) error {
	s.authFailures.WithLabelValues(reason).Inc()
	s.log.Debug("request unauthenticated", "route", c.Path(), "reason", reason)
	h := `Bearer realm="abacus"`
	if reason != "missing" {
		h += `, error="invalid_token"`
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, h)
	return newError(http.StatusUnauthorized, "%s", msg)
}

// requestKey returns the key from X-API-Key, or from Authorization: Bearer.
func requestKey(r *http.Request) (string, bool) {
	// Indexed by the canonical form: Header.Get would canonicalize
	// "X-API-Key" into a new string on every request.
	if v := r.Header["X-Api-Key"]; len(v) > 0 && v[0] != "" {
		return strings.TrimSpace(v[0]), true
	}
	scheme, token, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != "" {
		return strings.TrimSpace(token), true
	}
	return "", false
}
