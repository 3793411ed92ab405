package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startKeys runs a real key store on the bus until the test ends, checking
// expiry against now.
func startKeys(t *testing.T, bus *eventbus.Bus, log *slog.Logger, now func() time.Time) *auth.Store {
	t.Helper()
	kv, err := bus.KV(t.Context(), eventbus.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := auth.NewStore(kv, auth.Config{Now: now}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := ks.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return ks
}

// newKey creates a key with the permissions directly in the store.
func (h *harness) newKey(perms ...string) string {
	h.t.Helper()
	_, plain, err := h.keys.Create(h.t.Context(), auth.NewKey{UserID: "test", Permissions: perms})
	if err != nil {
		h.t.Fatal(err)
	}
	return plain
}

// call sends a request with the given headers (and no default key).
func (h *harness) call(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.http.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, raw
}

var routeParam = regexp.MustCompile(`:[a-z_]+`)

// TestRouteTableEnforcesPermissions walks the router's whole route table: a
// public route answers without a key; every other route answers 401 without
// a key and 403 naming its permission with a key that has every permission
// but that one, and gets past authorization with a key that has only it.
func TestRouteTableEnforcesPermissions(t *testing.T) {
	h := newHarness(t, Config{})
	routes := h.api.Routes()
	if len(routes) < 17 {
		t.Fatalf("the router has %d routes; is the walk broken?", len(routes))
	}
	public := []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml"}
	for _, r := range routes {
		name := r.Method + " " + r.Path
		t.Run(name, func(t *testing.T) {
			perm, ok := h.api.Permission(r.Method, r.Path)
			if !ok || perm == "" {
				t.Fatalf("%s declares no permission", name)
			}
			path := routeParam.ReplaceAllString(r.Path, "x1")
			if perm == auth.Public {
				if !slices.Contains(public, name) {
					t.Errorf("%s is public; only %v may be", name, public)
				}
				if resp, raw := h.call(r.Method, path, "", nil); resp.StatusCode == 401 || resp.StatusCode == 403 {
					t.Errorf("public %s without a key = %d %s", name, resp.StatusCode, raw)
				}
				return
			}
			if !slices.Contains(auth.Known, perm) {
				t.Errorf("%s requires %q, which is not in auth.Known (the README's table)", name, perm)
			}
			// OFREP answers 401 and 403 without a body, as its spec says.
			ofrep := strings.HasPrefix(r.Path, ofrepPrefix)
			resp, raw := h.call(r.Method, path, "", nil)
			if ofrep && (resp.StatusCode != 401 || len(raw) != 0 || resp.Header.Get("WWW-Authenticate") == "") {
				t.Errorf("%s without a key = %d %s (WWW-Authenticate %q), want 401 with no body and a challenge",
					name, resp.StatusCode, raw, resp.Header.Get("WWW-Authenticate"))
			}
			if !ofrep && (resp.StatusCode != 401 || !bytes.Contains(raw, []byte(`"error"`)) || resp.Header.Get("WWW-Authenticate") == "") {
				t.Errorf("%s without a key = %d %s (WWW-Authenticate %q), want 401 with an error and a challenge",
					name, resp.StatusCode, raw, resp.Header.Get("WWW-Authenticate"))
			}
			var others []string
			for _, k := range auth.Known {
				if k != perm {
					others = append(others, string(k))
				}
			}
			resp, raw = h.call(r.Method, path, "", map[string]string{HeaderAPIKey: h.newKey(others...)})
			var body errorBody
			json.Unmarshal(raw, &body)
			if ofrep && (resp.StatusCode != 403 || len(raw) != 0) {
				t.Errorf("%s with a key lacking %s = %d %s, want 403 with no body", name, perm, resp.StatusCode, raw)
			}
			if !ofrep && (resp.StatusCode != 403 || !strings.Contains(body.Error, string(perm)) || body.Detail["permission"] != string(perm)) {
				t.Errorf("%s with a key lacking %s = %d %s, want 403 naming the permission", name, perm, resp.StatusCode, raw)
			}
			resp, raw = h.call(r.Method, path, "", map[string]string{HeaderAPIKey: h.newKey(string(perm))})
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				t.Errorf("%s with a key holding only %s = %d %s, want past authorization", name, perm, resp.StatusCode, raw)
			}
		})
	}
}

// TestRouteWithoutPermissionFailsNew checks that a route added to the
// router directly, or through handle without a permission, stops New.
func TestRouteWithoutPermissionFailsNew(t *testing.T) {
	s := newSpecServer(t)
	if err := s.checkRoutes(); err != nil {
		t.Fatalf("checkRoutes() on the real table = %v", err)
	}
	s.e.GET("/debug", func(echo.Context) error { return nil })
	if err := s.checkRoutes(); err == nil || !strings.Contains(err.Error(), "GET /debug") {
		t.Errorf("checkRoutes() with a route added directly = %v, want an error naming it", err)
	}
	s = newSpecServer(t)
	s.handle(http.MethodGet, "/debug", "", func(echo.Context) error { return nil })
	if err := s.checkRoutes(); err == nil || !strings.Contains(err.Error(), "declares no permission") {
		t.Errorf("checkRoutes() with an empty permission = %v, want an error", err)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, Config{})
	good := h.newKey("ab_testing.read")
	expiring := h.newKey("ab_testing.read")
	revoked := h.newKey("ab_testing.read")
	for _, k := range h.keys.List() {
		switch k.Prefix {
		case auth.DisplayPrefix(expiring):
			if _, _, _, err := h.keys.Rotate(t.Context(), k.ID, 0); err != nil {
				t.Fatal(err)
			}
		case auth.DisplayPrefix(revoked):
			if _, err := h.keys.Revoke(t.Context(), k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	unknown, _ := auth.GenerateKey()
	const list = "/api/ab-testing/tests"
	tests := []struct {
		name     string
		method   string
		path     string
		hdr      map[string]string
		wantCode int
		wantErr  string
	}{
		{"no key", "", list, nil, 401, "missing API key"},
		{"empty header", "", list, map[string]string{HeaderAPIKey: ""}, 401, "missing API key"},
		{"x-api-key", "", list, map[string]string{HeaderAPIKey: good}, 200, ""},
		{"bearer", "", list, map[string]string{"Authorization": "Bearer " + good}, 200, ""},
		{"bearer lower case", "", list, map[string]string{"Authorization": "bearer " + good}, 200, ""},
		{"basic scheme", "", list, map[string]string{"Authorization": "Basic " + good}, 401, "missing API key"},
		{"x-api-key wins", "", list, map[string]string{HeaderAPIKey: good, "Authorization": "Bearer " + unknown}, 200, ""},
		{"malformed", "", list, map[string]string{HeaderAPIKey: "changeme"}, 401, "malformed API key"},
		{"typo", "", list, map[string]string{HeaderAPIKey: good[:10] + flipCase(good[10]) + good[11:]}, 401, "malformed API key"},
		{"unknown", "", list, map[string]string{HeaderAPIKey: unknown}, 401, "invalid API key"},
		{"expired (rotated, no grace)", "", list, map[string]string{HeaderAPIKey: expiring}, 401, "API key expired"},
		{"revoked", "", list, map[string]string{HeaderAPIKey: revoked}, 401, "API key revoked"},
		{"unknown path without key", "", "/nope", nil, 401, "missing API key"},
		{"unknown path with key", "", "/nope", map[string]string{HeaderAPIKey: good}, 404, "not found"},
		{"wrong method with key", "PUT", "/api/ab-testing/tests/x1/start", map[string]string{HeaderAPIKey: good}, 405, "method not allowed"},
		{"public", "", "/healthz", map[string]string{HeaderAPIKey: unknown}, 200, ""},
		{"options without key", "OPTIONS", list, nil, 401, "missing API key"},
		{"options with key", "OPTIONS", list, map[string]string{HeaderAPIKey: good}, 204, ""},
		{"head on public route without key", "HEAD", "/healthz", nil, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, raw := h.call(method, tt.path, "", tt.hdr)
			var body errorBody
			json.Unmarshal(raw, &body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(body.Error, tt.wantErr) {
				t.Errorf("%s %s = %d %s, want %d with error %q", method, tt.path, resp.StatusCode, raw, tt.wantCode, tt.wantErr)
			}
			if resp.Header.Get(HeaderWarning) != "" {
				t.Errorf("production response carries %s", HeaderWarning)
			}
		})
	}
	var failures bytes.Buffer
	_, raw := h.call("GET", "/metrics", "", nil)
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, "abacus_auth_failures_total") {
			failures.WriteString(line)
		}
	}
	for _, reason := range []string{"missing", "malformed", "unknown", "expired", "revoked"} {
		if !strings.Contains(failures.String(), `reason="`+reason+`"`) {
			t.Errorf("abacus_auth_failures_total has no %s series:\n%s", reason, failures.String())
		}
	}
}

func flipCase(c byte) string {
	if c >= 'a' && c <= 'z' {
		return string(c - 32)
	}
	if c >= 'A' && c <= 'Z' {
		return string(c + 32)
	}
	return string('0' + (c-'0'+1)%10)
}

func TestDevelopmentModeBypassesAuth(t *testing.T) {
	h := newHarness(t, Config{AuthDisabled: true})
	for _, path := range []string{"/healthz", "/api/ab-testing/tests", "/api/admin/keys", "/nope"} {
		resp, raw := h.call("GET", path, "", nil)
		if resp.StatusCode == 401 || resp.StatusCode == 403 {
			t.Errorf("development GET %s without a key = %d %s, want no authentication", path, resp.StatusCode, raw)
		}
		if !strings.Contains(resp.Header.Get(HeaderWarning), "authentication is disabled") {
			t.Errorf("development GET %s: %s = %q, want a warning", path, HeaderWarning, resp.Header.Get(HeaderWarning))
		}
	}
}

// TestKeyEndpoints drives the admin endpoints, and checks that after the
// answer that creates a key, no response and no log line holds it.
func TestKeyEndpoints(t *testing.T) {
	h := newHarness(t, Config{})
	admin := map[string]string{HeaderAPIKey: h.key}
	jsonOf := func(raw []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("response %q is not a JSON object", raw)
		}
		return m
	}
	resp, raw := h.call("POST", "/api/admin/keys", `{"name": "ci", "user_id": "svc-ci", "permissions": ["ab_testing.read", "ab_testing.assign"], "rate_limit_multiplier": 2}`, admin)
	if resp.StatusCode != 201 {
		t.Fatalf("create = %d %s", resp.StatusCode, raw)
	}
	created := jsonOf(raw)
	plain, _ := created["key"].(string)
	id, _ := created["key_id"].(string)
	if auth.ParseKey(plain) != nil || id == "" || created["status"] != "active" || created["rate_limit_multiplier"] != 2.0 ||
		created["prefix"] != auth.DisplayPrefix(plain) || resp.Header.Get("Location") != "/api/admin/keys/"+id {
		t.Fatalf("create = %s (Location %q), want a well-formed key, its id, prefix and status", raw, resp.Header.Get("Location"))
	}
	if _, ok := created["digest"]; ok {
		t.Errorf("create answer holds the digest: %s", raw)
	}

	// From here on, nothing may contain the plaintext.
	var answers [][]byte
	do := func(method, path, body string, hdr map[string]string) (int, map[string]any) {
		t.Helper()
		resp, raw := h.call(method, path, body, hdr)
		answers = append(answers, raw)
		return resp.StatusCode, jsonOf(raw)
	}
	own := map[string]string{HeaderAPIKey: plain}
	if code, body := do("GET", "/api/ab-testing/tests", "", own); code != 200 {
		t.Errorf("list tests with the new key = %d %v", code, body)
	}
	if code, body := do("POST", "/api/ab-testing/tests", validCreate, own); code != 403 {
		t.Errorf("create test with a read/assign key = %d %v, want 403", code, body)
	}
	if code, body := do("GET", "/api/admin/keys", "", own); code != 403 || body["detail"].(map[string]any)["permission"] != "admin.keys" {
		t.Errorf("list keys with a non-admin key = %d %v, want 403 naming admin.keys", code, body)
	}
	code, list := do("GET", "/api/admin/keys", "", admin)
	if code != 200 || list["total"] != 2.0 {
		t.Fatalf("list keys = %d %v, want the admin key and the new one", code, list)
	}
	for _, k := range list["keys"].([]any) {
		km := k.(map[string]any)
		if km["key"] != nil || km["digest"] != nil || km["hash"] != nil {
			t.Errorf("listed key %v shows a secret or its digest", km)
		}
	}
	if code, got := do("GET", "/api/admin/keys/"+id, "", admin); code != 200 || got["user_id"] != "svc-ci" || got["last_used_at"] == nil {
		t.Errorf("get key = %d %v, want it with user_id and last_used_at", code, got)
	}

	// Rotation: both keys work during the grace period.
	resp, raw = h.call("POST", "/api/admin/keys/"+id+"/rotate", `{"grace_period_seconds": 3600}`, admin)
	if resp.StatusCode != 201 {
		t.Fatalf("rotate = %d %s", resp.StatusCode, raw)
	}
	rot := jsonOf(raw)
	next, _ := rot["key"].(string)
	prev, _ := rot["previous"].(map[string]any)
	if auth.ParseKey(next) != nil || next == plain || rot["rotated_from"] != id || prev["rotated_to"] != rot["key_id"] || prev["expires_at"] == nil || prev["key"] != nil {
		t.Fatalf("rotate = %s, want a new key linked to the old one, whose expiry is set", raw)
	}
	if strings.Contains(string(raw), plain) {
		t.Error("the rotate answer holds the old key")
	}
	for _, k := range []string{plain, next} {
		if resp, raw := h.call("GET", "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: k}); resp.StatusCode != 200 {
			t.Errorf("during the grace period a key answers %d %s", resp.StatusCode, raw)
		}
	}
	if code, body := do("POST", "/api/admin/keys/"+id+"/rotate", "", admin); code != 409 {
		t.Errorf("rotating twice = %d %v, want 409", code, body)
	}
	if code, body := do("POST", "/api/admin/keys/"+id+"/rotate", `{"grace_period_seconds": -1}`, admin); code != 400 || body["field"] != "grace_period_seconds" {
		t.Errorf("rotate with a negative grace = %d %v, want 400", code, body)
	}

	// Revocation takes effect at once.
	if code, body := do("DELETE", "/api/admin/keys/"+id, "", admin); code != 200 || body["status"] != "revoked" || body["revoked_at"] == nil {
		t.Errorf("revoke = %d %v", code, body)
	}
	if code, body := do("GET", "/api/ab-testing/tests", "", own); code != 401 || body["error"] != "API key revoked" {
		t.Errorf("revoked key = %d %v, want 401 revoked", code, body)
	}
	if code, _ := do("DELETE", "/api/admin/keys/"+id, "", admin); code != 200 {
		t.Errorf("revoking again = %d, want 200", code)
	}

	errTests := []struct {
		name, method, path, body string
		wantCode                 int
		wantField                string
	}{
		{"unknown id", "GET", "/api/admin/keys/key_0000000000000000", "", 404, ""},
		{"bad id", "GET", "/api/admin/keys/..%2f", "", 404, ""},
		{"revoke unknown", "DELETE", "/api/admin/keys/key_0000000000000000", "", 404, ""},
		{"rotate unknown", "POST", "/api/admin/keys/nope/rotate", "", 404, ""},
		{"no user", "POST", "/api/admin/keys", `{"permissions": ["*"]}`, 400, "user_id"},
		{"typo permission", "POST", "/api/admin/keys", `{"user_id": "u", "permissions": ["ab_testing.raed"]}`, 400, "permissions"},
		{"zero multiplier", "POST", "/api/admin/keys", `{"user_id": "u", "permissions": ["*"], "rate_limit_multiplier": 0}`, 400, "rate_limit_multiplier"},
		{"past expiry", "POST", "/api/admin/keys", `{"user_id": "u", "permissions": ["*"], "expires_at": "2001-01-01T00:00:00Z"}`, 400, "expires_at"},
		{"unknown field", "POST", "/api/admin/keys", `{"user_id": "u", "permissions": ["*"], "secret": "x"}`, 400, "secret"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.method, tt.path, tt.body, admin)
			if code != tt.wantCode || body["error"] == nil || body["field"] != nil && body["field"] != tt.wantField || tt.wantField != "" && body["field"] != tt.wantField {
				t.Errorf("%s %s = %d %v, want %d on field %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantField)
			}
		})
	}

	// A key with an expiry a moment away stops working when it passes.
	exp := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	resp, raw = h.call("POST", "/api/admin/keys", `{"user_id": "u", "permissions": ["ab_testing.read"], "expires_at": "`+exp+`"}`, admin)
	if resp.StatusCode != 201 {
		t.Fatalf("create expiring = %d %s", resp.StatusCode, raw)
	}
	short := jsonOf(raw)["key"].(string)
	if code, _ := do("GET", "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: short}); code != 200 {
		t.Errorf("before expiry = %d, want 200", code)
	}
	h.skew.Store(int64(2 * time.Second)) // the key store's clock passes the expiry
	if code, body := do("GET", "/api/ab-testing/tests", "", map[string]string{HeaderAPIKey: short}); code != 401 || body["error"] != "API key expired" {
		t.Errorf("after expiry = %d %v, want 401 expired", code, body)
	}

	for i, a := range answers {
		if bytes.Contains(a, []byte(plain)) || bytes.Contains(a, []byte(next)) {
			t.Errorf("answer %d after creation holds a key: %s", i, a)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "api key created") || !strings.Contains(logs, "request forbidden") {
		t.Fatalf("the server's log misses the audit lines; is the capture broken?\n%s", logs)
	}
	for _, k := range []string{plain, next, short, h.key} {
		if strings.Contains(logs, k) {
			t.Errorf("the server's log holds the key %s...", auth.DisplayPrefix(k))
		}
	}
}

// BenchmarkAuthenticate measures the admit middleware on a protected route
// without a limiter: header, parse, digest, lookup, expiry and permission,
// without the handler.
func BenchmarkAuthenticate(b *testing.B) {
	ns := eventbustest.RunServer(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := eventbus.Connect(b.Context(), eventbus.Config{URL: ns.ClientURL()}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	if err := bus.Provision(b.Context()); err != nil {
		b.Fatal(err)
	}
	kv, err := bus.KV(b.Context(), eventbus.BucketKeys)
	if err != nil {
		b.Fatal(err)
	}
	ks, err := auth.NewStore(kv, auth.Config{Pepper: []byte("bench-pepper-0123456789")}, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := ks.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	_, plain, err := ks.Create(b.Context(), auth.NewKey{UserID: "bench", Permissions: []string{"ab_testing.*"}})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{}, Deps{Logger: log, Keys: ks})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/ab-testing/tests/t1/assign", nil)
	req.Header.Set(HeaderAPIKey, plain)
	c := s.e.NewContext(req, httptest.NewRecorder())
	c.SetPath("/api/ab-testing/tests/:test_id/assign")
	h := s.admit(func(echo.Context) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := h(c); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeysCannotEscalate checks that a key can hand out only permissions it
// holds: a key with admin.keys alone must not mint a "*" key, or rotate a
// more powerful key into a successor it then holds.
func TestKeysCannotEscalate(t *testing.T) {
	h := newHarness(t, Config{})
	keyAdmin := map[string]string{HeaderAPIKey: h.newKey("admin.keys", "ab_testing.read")}
	tests := []struct {
		perms string
		want  int
	}{
		{`["*"]`, 403},
		{`["ab_testing.*"]`, 403},
		{`["ab_testing.create"]`, 403},
		{`["ab_testing.read"]`, 201},
		{`["admin.keys"]`, 201},
	}
	for _, tt := range tests {
		resp, raw := h.call("POST", "/api/admin/keys", `{"user_id": "u", "permissions": `+tt.perms+`}`, keyAdmin)
		if resp.StatusCode != tt.want {
			t.Errorf("create %s with an admin.keys+read key = %d %s, want %d", tt.perms, resp.StatusCode, raw, tt.want)
		}
	}
	// Rotating the full admin key would hand its successor "*" to the caller.
	full, _, err := h.keys.Create(t.Context(), auth.NewKey{UserID: "root", Permissions: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp, raw := h.call("POST", "/api/admin/keys/"+full.ID+"/rotate", "", keyAdmin); resp.StatusCode != 403 {
		t.Errorf("rotate a * key with an admin.keys key = %d %s, want 403", resp.StatusCode, raw)
	}
	// A * key may grant anything.
	if resp, raw := h.call("POST", "/api/admin/keys", `{"user_id": "u", "permissions": ["*"]}`, map[string]string{HeaderAPIKey: h.key}); resp.StatusCode != 201 {
		t.Errorf("create * with the admin key = %d %s, want 201", resp.StatusCode, raw)
	}
}
