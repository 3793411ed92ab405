package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/ratelimit"
)

// rateLimiter decides requests under plans (met by *ratelimit.Limiter).
type rateLimiter interface {
	Plan(policies ...ratelimit.Policy) (*ratelimit.Plan, error)
	Allow(ctx context.Context, p *ratelimit.Plan, key string, multiplier float64) ratelimit.Decision
}

// RateLimitConfig sets the limits that Deps.Limiter enforces.
type RateLimitConfig struct {
	// Global is every client's policy over all its requests, before the
	// API key's rate_limit_multiplier (default ratelimit.Global(): 60 per
	// minute, 1,000 per hour, 10,000 per day).
	Global ratelimit.Policy
	// DataPlane replaces Global on the data plane (assign, record, batch
	// events, OpenFeature evaluation), where one server-side key carries
	// the traffic of many end users (default ratelimit.DataPlane(): 120,000
	// per minute, 6,000,000 per hour, 100,000,000 per day, before the
	// multiplier). The data plane's requests do not count toward Global.
	DataPlane ratelimit.Policy
	// Endpoints are extra policies per route, keyed by "METHOD /path" as in
	// the route table ("POST /api/ab-testing/tests/:test_id/analyze"; the
	// OpenAPI form {test_id} works too). They apply in addition to Global.
	Endpoints map[string]ratelimit.Policy
	// AuthFailures limits requests that fail authentication, per client IP
	// (default 10 per minute, 100 per hour, 500 per day): guessing keys is
	// slow, and a flood of bad keys cannot mint fresh buckets.
	AuthFailures ratelimit.Policy
}

func (c *RateLimitConfig) setDefaults() {
	if len(c.Global.Windows) == 0 {
		c.Global = ratelimit.Global()
	}
	if len(c.DataPlane.Windows) == 0 {
		c.DataPlane = ratelimit.DataPlane()
	}
	if len(c.AuthFailures.Windows) == 0 {
		c.AuthFailures = ratelimit.Standard("auth_failure", 10, 100, 500)
	}
}

// limits holds the plans the server checks, built once in New. Clients
// known only by IP are limited by ipl, a limiter local to this replica:
// anonymous traffic never writes to the shared state, so a flood of
// addresses cannot fill it.
type limits struct {
	l        rateLimiter // keys (shared across replicas when so configured)
	ipl      rateLimiter // IPs, local
	routes   map[routeKey]*ratelimit.Plan
	fallback *ratelimit.Plan // routes Echo answers itself (404, 405)
	authFail *ratelimit.Plan
	rejected *prometheus.CounterVec
}

// newLimits builds a plan per route: the global policy plus the route's own,
// if any. An endpoint policy for a route that does not exist is an error.
func (s *Server) newLimits(l, ipl rateLimiter, cfg RateLimitConfig, reg prometheus.Registerer) (*limits, error) {
	cfg.setDefaults()
	lim := &limits{l: l, ipl: ipl, routes: map[routeKey]*ratelimit.Plan{}}
	if s.cfg.AuthDisabled {
		// Every client is an IP.
		l = ipl
		lim.l = ipl
	}
	var err error
	if lim.fallback, err = l.Plan(cfg.Global); err != nil {
		return nil, fmt.Errorf("global rate limit: %w", err)
	}
	if lim.authFail, err = ipl.Plan(cfg.AuthFailures); err != nil {
		return nil, fmt.Errorf("authentication failure rate limit: %w", err)
	}
	endpoints := map[routeKey]ratelimit.Policy{}
	for name, p := range cfg.Endpoints {
		k, err := parseRouteName(name)
		if err != nil {
			return nil, err
		}
		if _, ok := s.perms[k]; !ok {
			return nil, fmt.Errorf("rate limit for %q: no such route", name)
		}
		if p.Name == "" {
			p.Name = k.method + " " + k.path
		}
		endpoints[k] = p
	}
	for k := range s.perms {
		policies := []ratelimit.Policy{cfg.Global}
		if s.dataPlane[k] {
			policies[0] = cfg.DataPlane
		}
		if p, ok := endpoints[k]; ok {
			policies = append(policies, p)
		}
		if lim.routes[k], err = l.Plan(policies...); err != nil {
			return nil, fmt.Errorf("rate limit of %s %s: %w", k.method, k.path, err)
		}
	}
	lim.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "abacus_rate_limited_total",
		Help: "Requests answered 429, by the policy that denied them (global, an endpoint, auth_failure).",
	}, []string{"policy"})
	reg.MustRegister(lim.rejected)
	return lim, nil
}

// parseRouteName parses "METHOD /path", accepting {param} for :param.
func parseRouteName(s string) (routeKey, error) {
	method, path, ok := strings.Cut(strings.TrimSpace(s), " ")
	path = strings.TrimSpace(path)
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		return routeKey{}, fmt.Errorf("rate limit route %q: want \"METHOD /path\"", s)
	}
	var b strings.Builder
	for _, seg := range strings.Split(path, "/") {
		if b.Len() > 0 || seg != "" {
			b.WriteByte('/')
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			seg = ":" + seg[1:len(seg)-1]
		}
		b.WriteString(seg)
	}
	return routeKey{strings.ToUpper(method), b.String()}, nil
}

// plan returns the plan of the request's route.
func (lim *limits) plan(c echo.Context) *ratelimit.Plan {
	if p, ok := lim.routes[routeKey{c.Request().Method, c.Path()}]; ok {
		return p
	}
	return lim.fallback
}

// forKey checks a request of a verified key under its route's plan. With
// no limits (lim nil) every request passes, as in forIP and
// forAuthFailure.
func (lim *limits) forKey(c echo.Context, k *auth.Key) (denied bool, err error) {
	if lim == nil {
		return false, nil
	}
	return lim.check(c, lim.l, lim.plan(c), "key:"+k.LimitID(), k.RateLimitMultiplier)
}

// forIP checks a request known only by its client IP (development mode,
// authentication disabled) under its route's plan.
func (lim *limits) forIP(c echo.Context) (denied bool, err error) {
	if lim == nil {
		return false, nil
	}
	return lim.check(c, lim.ipl, lim.plan(c), clientIP(c), 1)
}

// forAuthFailure checks a request that failed authentication, by its
// client IP, under the auth-failure plan.
func (lim *limits) forAuthFailure(c echo.Context) (denied bool, err error) {
	if lim == nil {
		return false, nil
	}
	return lim.check(c, lim.ipl, lim.authFail, clientIP(c), 1)
}

// check decides the request of client under plan p with l and sets the
// rate-limit headers. When the request is denied it answers 429 and
// returns true (and the error of writing the answer).
func (lim *limits) check(c echo.Context, l rateLimiter, p *ratelimit.Plan, client string, multiplier float64) (denied bool, err error) {
	d := l.Allow(c.Request().Context(), p, client, multiplier)
	ws := d.Windows()
	setRateLimitHeaders(c.Response().Header(), ws)
	if d.Allowed {
		return false, nil
	}
	policy := "global"
	for _, w := range ws {
		if w.Remaining == 0 {
			policy = w.Policy
			break
		}
	}
	lim.rejected.WithLabelValues(policy).Inc()
	return true, tooManyRequests(c, d, ws, policy)
}

// rateLimitBody is the 429 body.
type rateLimitBody struct {
	Error      string                    `json:"error"`
	RetryAfter int64                     `json:"retry_after"`
	Policy     string                    `json:"policy"`
	Limits     map[string]rateLimitState `json:"limits"`
}

type rateLimitState struct {
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"`
	ResetAt   time.Time `json:"reset_at"`
}

func tooManyRequests(c echo.Context, d ratelimit.Decision, ws []ratelimit.WindowState, policy string) error {
	retry := int64(math.Ceil(d.RetryAfter.Seconds()))
	retry = max(retry, 1)
	body := rateLimitBody{Error: "Rate limit exceeded", RetryAfter: retry, Policy: policy, Limits: map[string]rateLimitState{}}
	for _, w := range tightest(ws) {
		body.Limits[w.Window] = rateLimitState{Limit: w.Limit, Remaining: w.Remaining, ResetAt: time.Unix(ceilUnix(w.Reset), 0).UTC()}
	}
	c.Response().Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	if strings.HasPrefix(c.Path(), ofrepPrefix) {
		// OFREP's 429 has no body: its providers read Retry-After.
		return c.NoContent(http.StatusTooManyRequests)
	}
	return c.JSON(http.StatusTooManyRequests, body)
}

// tightest returns, per window name (minute, hour, day), the window with
// the fewest requests remaining across the plan's policies.
func tightest(ws []ratelimit.WindowState) []ratelimit.WindowState {
	out := make([]ratelimit.WindowState, 0, 3)
next:
	for _, w := range ws {
		for i := range out {
			if out[i].Window == w.Window {
				if w.Remaining < out[i].Remaining {
					out[i] = w
				}
				continue next
			}
		}
		out = append(out, w)
	}
	return out
}

// Header names of the rate-limit fields, per window, in the seed's spelling
// (set in the header map directly, so the wire shows them as written; Go
// clients read them case-insensitively).
var xRateLimit = map[string][3]string{
	"minute": {"X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute", "X-RateLimit-Reset-Minute"},
	"hour":   {"X-RateLimit-Limit-Hour", "X-RateLimit-Remaining-Hour", "X-RateLimit-Reset-Hour"},
	"day":    {"X-RateLimit-Limit-Day", "X-RateLimit-Remaining-Day", "X-RateLimit-Reset-Day"},
}

// setRateLimitHeaders writes the seed's X-RateLimit-{Limit,Remaining,Reset}-
// {Minute,Hour,Day} fields (the tightest window of each name; Reset in Unix
// seconds) and the IETF RateLimit-Policy and RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers) with one item per window:
// "policy.window";q=limit;w=seconds and "policy.window";r=remaining;t=seconds
// until it is full again.
func setRateLimitHeaders(h http.Header, ws []ratelimit.WindowState) {
	var buf [24]byte
	for _, w := range tightest(ws) {
		names, ok := xRateLimit[w.Window]
		if !ok {
			continue
		}
		h[names[0]] = []string{string(strconv.AppendInt(buf[:0], int64(w.Limit), 10))}
		h[names[1]] = []string{string(strconv.AppendInt(buf[:0], int64(w.Remaining), 10))}
		h[names[2]] = []string{string(strconv.AppendInt(buf[:0], ceilUnix(w.Reset), 10))}
	}
	policy := make([]byte, 0, 48*len(ws))
	state := make([]byte, 0, 48*len(ws))
	for i, w := range ws {
		if i > 0 {
			policy = append(policy, ", "...)
			state = append(state, ", "...)
		}
		policy = appendItem(policy, w)
		policy = append(policy, ";q="...)
		policy = strconv.AppendInt(policy, int64(w.Limit), 10)
		policy = append(policy, ";w="...)
		policy = strconv.AppendInt(policy, int64(w.Period/time.Second), 10)
		state = appendItem(state, w)
		state = append(state, ";r="...)
		state = strconv.AppendInt(state, int64(w.Remaining), 10)
		state = append(state, ";t="...)
		state = strconv.AppendInt(state, int64(math.Ceil(w.ResetAfter.Seconds())), 10)
	}
	h["RateLimit-Policy"] = []string{string(policy)}
	h["RateLimit"] = []string{string(state)}
}

// appendItem appends the window's name as a structured-field string:
// printable ASCII, with quotes and backslashes escaped, others dropped.
func appendItem(b []byte, w ratelimit.WindowState) []byte {
	b = append(b, '"')
	for _, s := range [...]string{w.Policy, ".", w.Window} {
		for i := 0; i < len(s); i++ {
			switch ch := s[i]; {
			case ch == '"' || ch == '\\':
				b = append(b, '\\', ch)
			case ch >= 0x20 && ch < 0x7f:
				b = append(b, ch)
			}
		}
	}
	return append(b, '"')
}

// clientIP is the client's address as a rate-limit client: an IPv4
// address, or the /64 of an IPv6 one (one host usually holds a whole /64,
// so single addresses would be free buckets).
func clientIP(c echo.Context) string {
	raw := c.RealIP()
	ip := net.ParseIP(raw)
	if ip == nil {
		return "ip:" + raw
	}
	if ip4 := ip.To4(); ip4 != nil {
		return "ip:" + ip4.String()
	}
	return "ip:" + ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
