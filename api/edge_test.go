package api

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestCORS checks that a configured origin gets the CORS headers, on a
// preflight and on the request itself, and that another origin gets none.
func TestCORS(t *testing.T) {
	h := newHarness(t, Config{CORSOrigins: []string{"https://dash.example.com"}})
	pre := map[string]string{"Origin": "https://dash.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key, content-type"}
	resp, _ := h.call(http.MethodOptions, "/api/ab-testing/tests", "", pre)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
		t.Errorf("preflight from an allowed origin = %d, Allow-Origin %q; want 204 and the origin", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = h.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{"Origin": "https://dash.example.com", HeaderAPIKey: h.key})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
		t.Errorf("GET from an allowed origin = %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = h.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{"Origin": "https://evil.example.net", HeaderAPIKey: h.key})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("GET from another origin: Allow-Origin %q, want none", got)
	}

	plain := newHarness(t, Config{})
	resp, _ = plain.call(http.MethodGet, "/api/ab-testing/tests", "", map[string]string{"Origin": "https://dash.example.com", HeaderAPIKey: plain.key})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no origins configured: Allow-Origin %q, want none", got)
	}
}

// TestClientIP checks that X-Forwarded-For names the client only when the
// peer is a trusted proxy.
func TestClientIP(t *testing.T) {
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	tests := []struct {
		name    string
		trusted []*net.IPNet
		peer    string
		xff     string
		want    string
	}{
		{"no proxies: header ignored", nil, "192.0.2.7:5555", "203.0.113.9", "192.0.2.7"},
		{"untrusted peer: header ignored", []*net.IPNet{proxies}, "192.0.2.7:5555", "203.0.113.9", "192.0.2.7"},
		{"trusted proxy", []*net.IPNet{proxies}, "10.1.2.3:5555", "203.0.113.9", "203.0.113.9"},
		{"client-forged hop before the proxy", []*net.IPNet{proxies}, "10.1.2.3:5555", "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"chain of trusted proxies", []*net.IPNet{proxies}, "10.1.2.3:5555", "203.0.113.9, 10.9.9.9", "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set(echo.HeaderXForwardedFor, tt.xff)
			if got := ipExtractor(tt.trusted)(r); got != tt.want {
				t.Errorf("client IP = %q, want %q", got, tt.want)
			}
		})
	}
}
