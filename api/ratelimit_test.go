package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/ratelimit"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newHarnessWith is newHarness with deps changed by with: the server is
// rebuilt on the harness's NATS, registry and key store.
func newHarnessWith(t *testing.T, cfg Config, with func(*harness, *Deps)) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	d := Deps{
		Registry: h.api.reg, Publisher: h.bus.JS, Requester: h.bus.NC, Reports: h.api.reports,
		Logger: h.api.log, Keys: h.keys,
	}
	with(h, &d)
	a, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	h.http.Close()
	h.api, h.http = a, httptest.NewServer(a.Handler())
	t.Cleanup(h.http.Close)
	return h
}

// newLimitedHarness is newHarness with a rate limiter on a fake clock.
func newLimitedHarness(t *testing.T, cfg Config) (*harness, *fakeClock, *ratelimit.Limiter) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim, err := ratelimit.New(ratelimit.Config{Now: clock.Now}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, cfg, func(_ *harness, d *Deps) { d.Limiter = lim })
	return h, clock, lim
}

func limitBody(t *testing.T, raw []byte) rateLimitBody {
	t.Helper()
	var b rateLimitBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("429 body %q: %v", raw, err)
	}
	return b
}

// TestRateLimit checks the global limit per key: the seed's headers count
// down, the IETF fields are present, the request over the limit gets 429
// with Retry-After and the seed's body, and one request is admitted again
// after the emission interval (12 s for 5 per minute).
func TestRateLimit(t *testing.T) {
	h, clock, _ := newLimitedHarness(t, Config{RateLimit: RateLimitConfig{Global: ratelimit.Standard("global", 5, 100, 1000)}})
	key := map[string]string{HeaderAPIKey: h.key}
	for i := range 5 {
		resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests", "", key)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d = %d %s, want 200", i+1, resp.StatusCode, raw)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining-Minute"), strconv.Itoa(4-i); got != want {
			t.Errorf("request %d: X-RateLimit-Remaining-Minute %q, want %q", i+1, got, want)
		}
		if resp.Header.Get("X-RateLimit-Limit-Minute") != "5" || resp.Header.Get("X-RateLimit-Limit-Hour") != "100" ||
			resp.Header.Get("X-RateLimit-Limit-Day") != "1000" || resp.Header.Get("X-RateLimit-Reset-Day") == "" {
			t.Errorf("request %d: limit headers %v", i+1, resp.Header)
		}
		if got := resp.Header.Get("RateLimit-Policy"); !strings.Contains(got, `"global.minute";q=5;w=60`) || !strings.Contains(got, `"global.day";q=1000;w=86400`) {
			t.Errorf("RateLimit-Policy %q", got)
		}
		// Full again 12 s (one emission interval) per request taken.
		if got := resp.Header.Get("RateLimit"); !strings.Contains(got, fmt.Sprintf(`"global.minute";r=%d;t=%d,`, 4-i, 12*(i+1))) {
			t.Errorf("RateLimit %q", got)
		}
	}
	resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests", "", key)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th request = %d %s, want 429", resp.StatusCode, raw)
	}
	b := limitBody(t, raw)
	if b.Error != "Rate limit exceeded" || b.RetryAfter != 12 || resp.Header.Get("Retry-After") != "12" || b.Policy != "global" {
		t.Errorf("429: Retry-After %q, body %+v; want retry_after 12 from the global policy", resp.Header.Get("Retry-After"), b)
	}
	if m := b.Limits["minute"]; m.Limit != 5 || m.Remaining != 0 || m.ResetAt.IsZero() {
		t.Errorf("429 limits.minute = %+v", m)
	}
	if hr := b.Limits["hour"]; hr.Limit != 100 || hr.Remaining != 95 {
		t.Errorf("429 limits.hour = %+v, want 95 of 100 left: a denied request consumes nothing", hr)
	}

	clock.Add(11 * time.Second)
	if resp, _ := h.call(http.MethodGet, "/api/ab-testing/tests", "", key); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after 11 s = %d, want 429", resp.StatusCode)
	}
	clock.Add(time.Second)
	if resp, _ := h.call(http.MethodGet, "/api/ab-testing/tests", "", key); resp.StatusCode != http.StatusOK {
		t.Errorf("after 12 s = %d, want 200", resp.StatusCode)
	}
	// Health checks and metrics are never limited.
	for range 10 {
		if resp, _ := h.call(http.MethodGet, "/healthz", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz = %d", resp.StatusCode)
		}
	}
}

// TestRateLimitPerKeyAndMultiplier checks that each key has its own
// windows, scaled by its rate_limit_multiplier.
func TestRateLimitPerKeyAndMultiplier(t *testing.T) {
	h, _, _ := newLimitedHarness(t, Config{RateLimit: RateLimitConfig{Global: ratelimit.Standard("global", 3, 0, 0)}})
	_, double, err := h.keys.Create(t.Context(), auth.NewKey{UserID: "big", Permissions: []string{"*"}, RateLimitMultiplier: 2})
	if err != nil {
		t.Fatal(err)
	}
	admitted := func(key string) int {
		n := 0
		for range 10 {
			if resp, _ := h.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: key}); resp.StatusCode == http.StatusOK {
				n++
			}
		}
		return n
	}
	if got := admitted(h.key); got != 3 {
		t.Errorf("key with multiplier 1 admitted %d of 10, want 3", got)
	}
	if got := admitted(double); got != 6 {
		t.Errorf("key with multiplier 2 admitted %d of 10, want 6", got)
	}
}

// TestRateLimitPerEndpoint checks that an endpoint's own policy applies in
// addition to the global one, to that route only.
func TestRateLimitPerEndpoint(t *testing.T) {
	h, _, _ := newLimitedHarness(t, Config{RateLimit: RateLimitConfig{
		Global:    ratelimit.Standard("global", 50, 0, 0),
		Endpoints: map[string]ratelimit.Policy{"GET /api/ab-testing/tests/{test_id}": ratelimit.Standard("", 2, 0, 0)},
	}})
	key := map[string]string{HeaderAPIKey: h.key}
	for i := range 2 {
		if resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests/t"+strconv.Itoa(i), "", key); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET test %d = %d %s, want 404", i+1, resp.StatusCode, raw)
		}
	}
	resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests/t3", "", key)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("3rd GET test = %d %s, want 429", resp.StatusCode, raw)
	}
	if b := limitBody(t, raw); b.Policy != "GET /api/ab-testing/tests/:test_id" || b.Limits["minute"].Limit != 2 {
		t.Errorf("429 body %+v, want the endpoint's policy and limit", b)
	}
	resp, _ = h.call(http.MethodGet, "/api/ab-testing/tests", "", key)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Remaining-Minute") != "47" {
		t.Errorf("GET /tests after = %d, remaining %q; want 200 and 47 of 50 (3 requests before)", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining-Minute"))
	}
	if _, err := parseRouteName("GET /api/ab-testing/tests/{test_id}"); err != nil {
		t.Error(err)
	}
	_, err := New(Config{RateLimit: RateLimitConfig{Endpoints: map[string]ratelimit.Policy{"GET /nope": ratelimit.Standard("", 1, 0, 0)}}},
		Deps{Registry: h.api.reg, Keys: h.keys, Limiter: mustLimiter(t), Logger: h.api.log})
	if err == nil || !strings.Contains(err.Error(), "no such route") {
		t.Errorf("a limit for an unknown route: err %v, want one naming it", err)
	}
}

func mustLimiter(t *testing.T) *ratelimit.Limiter {
	l, err := ratelimit.New(ratelimit.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRateLimitAuthFailures checks that failed authentication is limited
// per IP by the tighter policy, that random keys do not get buckets of
// their own, and that a valid key from the same IP is not affected.
func TestRateLimitAuthFailures(t *testing.T) {
	h, _, lim := newLimitedHarness(t, Config{RateLimit: RateLimitConfig{AuthFailures: ratelimit.Standard("auth_failure", 4, 0, 0)}})
	codes := map[int]int{}
	for i := range 20 {
		bogus := fmt.Sprintf("rac_bogus%d", i)
		resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: bogus})
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && limitBody(t, raw).Policy != "auth_failure" {
			t.Errorf("429 body %s, want policy auth_failure", raw)
		}
	}
	if codes[401] != 4 || codes[429] != 16 {
		t.Errorf("20 requests with random keys: %v, want 4×401 then 16×429", codes)
	}
	if n := lim.Stats().Entries; n != 1 {
		t.Errorf("limiter holds %d clients after 20 random keys from one IP, want 1", n)
	}
	if resp, _ := h.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: h.key}); resp.StatusCode != http.StatusOK {
		t.Errorf("a valid key from the same IP = %d, want 200", resp.StatusCode)
	}
}

// TestRateLimitKeysCannotEscape checks the two ways a key holder could
// get a bigger budget: minting a key with a larger multiplier (403 unless
// the caller holds "*"), and rotating a key (the successor shares the
// budget of its chain).
func TestRateLimitKeysCannotEscape(t *testing.T) {
	h, _, _ := newLimitedHarness(t, Config{RateLimit: RateLimitConfig{Global: ratelimit.Standard("global", 3, 0, 0)}})
	_, minter, err := h.keys.Create(t.Context(), auth.NewKey{UserID: "ops", Permissions: []string{"admin.keys", "ab_testing.read"}})
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{HeaderAPIKey: minter}
	resp, raw := h.call(http.MethodPost, "/api/admin/keys", `{"user_id": "x", "permissions": ["ab_testing.read"], "rate_limit_multiplier": 1000}`, hdr)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(raw), "rate_limit_multiplier") {
		t.Errorf("minting multiplier 1000 with a multiplier-1 key = %d %s, want 403", resp.StatusCode, raw)
	}
	resp, raw = h.call(http.MethodPost, "/api/admin/keys", `{"user_id": "x", "permissions": ["ab_testing.read"], "rate_limit_multiplier": 1000}`, map[string]string{HeaderAPIKey: h.key})
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("minting multiplier 1000 with a * key = %d %s, want 201", resp.StatusCode, raw)
	}

	// The minter used 1 of its 3 requests (the refused mint); it and its
	// successor share the 2 left.
	resp, raw = h.call(http.MethodPost, "/api/admin/keys/"+keyID(t, h, minter)+"/rotate", "", map[string]string{HeaderAPIKey: h.key})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("rotate = %d %s", resp.StatusCode, raw)
	}
	var rotated struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(raw, &rotated); err != nil || rotated.Key == "" {
		t.Fatalf("rotate answer %s", raw)
	}
	codes := []int{}
	for _, k := range []string{rotated.Key, minter, rotated.Key} {
		resp, _ := h.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: k})
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("successor, old key, successor = %v, want [200 200 429]: the chain shares one budget", codes)
	}
}

func keyID(t *testing.T, h *harness, plain string) string {
	t.Helper()
	k, err := h.keys.Verify(plain)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}

func TestClientIPGroupsIPv6By64(t *testing.T) {
	e := echo.New()
	for _, tt := range []struct{ peer, want string }{
		{"192.0.2.7:1", "ip:192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:1", "ip:2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:1", "ip:2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "ip:192.0.2.7"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.peer
		if got := clientIP(e.NewContext(r, httptest.NewRecorder())); got != tt.want {
			t.Errorf("clientIP(%s) = %q, want %q", tt.peer, got, tt.want)
		}
	}
}

// TestDataPlaneLimits checks the default limits of the two planes: one key
// assigns and records for 10,000 users without a 429 (the data plane's
// 120,000 a minute), while the management plane keeps the seed's 60 a
// minute, and neither plane's requests count toward the other's limit.
func TestDataPlaneLimits(t *testing.T) {
	h, _, _ := newLimitedHarness(t, Config{})
	id := h.createRunning()
	key := map[string]string{HeaderAPIKey: h.key, "Content-Type": "application/json"}
	for i := range 10_000 {
		path, body := "/api/ab-testing/tests/"+id+"/assign", fmt.Sprintf(`{"user_id": "user-%d"}`, i)
		if i%10 == 9 {
			path, body = "/api/ab-testing/tests/"+id+"/record", fmt.Sprintf(`{"user_id": "user-%d", "metrics": {"m": 1}}`, i-1)
		}
		resp, raw := h.call(http.MethodPost, path, body, key)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 300 {
			t.Fatalf("data plane request %d = %d %s, want success", i+1, resp.StatusCode, raw)
		}
		if i == 0 && resp.Header.Get("X-RateLimit-Limit-Minute") != "120000" {
			t.Errorf("data plane X-RateLimit-Limit-Minute = %q, want 120000", resp.Header.Get("X-RateLimit-Limit-Minute"))
		}
	}
	// The management plane: the create and start above took 2 of 60.
	for i := range 58 {
		if resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests", "", key); resp.StatusCode != http.StatusOK {
			t.Fatalf("management request %d = %d %s, want 200", i+3, resp.StatusCode, raw)
		}
	}
	resp, raw := h.call(http.MethodGet, "/api/ab-testing/tests", "", key)
	if resp.StatusCode != http.StatusTooManyRequests || limitBody(t, raw).Policy != "global" {
		t.Fatalf("management request 61 = %d %s, want 429 from the global policy", resp.StatusCode, raw)
	}
	// An exhausted management plane leaves the data plane open.
	if resp, raw := h.call(http.MethodPost, "/api/ab-testing/tests/"+id+"/assign", `{"user_id": "late"}`, key); resp.StatusCode != http.StatusOK {
		t.Errorf("assign after the management plane's 429 = %d %s, want 200", resp.StatusCode, raw)
	}
}
