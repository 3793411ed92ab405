package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/validate"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// flagCreate is a test with a key and boolean flag values.
const flagCreate = `{
  "test_name": "New checkout",
  "key": "new-checkout",
  "test_type": "workflow",
  "variants": [
    {"variant_id": "off", "variant_name": "Old", "value": false, "traffic_percentage": 50},
    {"variant_id": "on", "variant_name": "New", "value": true, "configuration": {"steps": 1}, "traffic_percentage": 50}
  ],
  "control_variant_id": "off",
  "primary_metric": "conversion"
}`

type ofrepAnswer struct {
	Key          string         `json:"key"`
	Value        any            `json:"value"`
	Reason       string         `json:"reason"`
	Variant      string         `json:"variant"`
	Metadata     map[string]any `json:"metadata"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails"`
}

func (h *harness) ofrep(path, body string, hdr map[string]string) (*http.Response, ofrepAnswer, []byte) {
	h.t.Helper()
	if hdr == nil {
		hdr = map[string]string{}
	}
	hdr["Content-Type"] = "application/json"
	if _, ok := hdr[HeaderAPIKey]; !ok {
		hdr[HeaderAPIKey] = h.key
	}
	resp, raw := h.call(http.MethodPost, path, body, hdr)
	var a ofrepAnswer
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a); err != nil {
			h.t.Fatalf("POST %s: %q is not JSON", path, raw)
		}
	}
	return resp, a, raw
}

func (h *harness) create(body string) (int, map[string]any) {
	h.t.Helper()
	return h.do("POST", "/api/ab-testing/tests", body)
}

// TestOFREPEvaluate checks single flag evaluation: by key and by id it
// gives every user the variant and value that assign gives, publishes the
// exposure, answers DISABLED for a draft or stopped test, and answers each
// error with OFREP's status and code.
func TestOFREPEvaluate(t *testing.T) {
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, Config{}, func(_ *harness, d *Deps) { d.Validator = v })
	code, body := h.create(flagCreate)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, body)
	}
	id := body["test_id"].(string)
	const path = "/ofrep/v1/evaluate/flags/"
	// Draft: disabled, no value.
	resp, a, raw := h.ofrep(path+"new-checkout", `{"context": {"targetingKey": "u1"}}`, nil)
	if resp.StatusCode != 200 || a.Reason != "DISABLED" || a.Value != nil || a.Variant != "" || strings.Contains(string(raw), `"value"`) {
		t.Fatalf("draft evaluation = %d %s, want 200 DISABLED without a value", resp.StatusCode, raw)
	}
	if code, body := h.do("POST", "/api/ab-testing/tests/"+id+"/start", ""); code != 200 {
		t.Fatalf("start = %d %v", code, body)
	}
	for i := range 200 {
		user := fmt.Sprintf("user-%d", i)
		_, assigned := h.do("POST", "/api/ab-testing/tests/"+id+"/assign", fmt.Sprintf(`{"user_id": %q}`, user))
		for _, key := range []string{"new-checkout", id} {
			resp, a, raw := h.ofrep(path+key, fmt.Sprintf(`{"context": {"targetingKey": %q, "platform": "ios", "age": 41, "beta": true}}`, user), nil)
			if resp.StatusCode != 200 || a.Reason != "SPLIT" || a.Variant != assigned["variant_id"] || a.Key != key {
				t.Fatalf("evaluate %s for %s = %d %s, want SPLIT with assign's variant %v", key, user, resp.StatusCode, raw, assigned["variant_id"])
			}
			if want := a.Variant == "on"; a.Value != want {
				t.Fatalf("value for variant %s = %v, want %v", a.Variant, a.Value, want)
			}
			if a.Metadata["test_id"] != id || a.Metadata["test_key"] != "new-checkout" || a.Metadata["variant_name"] != assigned["variant_name"] {
				t.Fatalf("metadata = %v", a.Metadata)
			}
		}
	}
	// An evaluation publishes the exposure assign publishes, with the
	// context's attributes; for a user assign exposed first, it is the
	// same event (one id per user and test).
	if resp, _, raw := h.ofrep(path+"new-checkout", `{"context": {"targetingKey": "fresh", "platform": "ios", "age": 41, "beta": true}}`, nil); resp.StatusCode != 200 {
		t.Fatalf("evaluate = %d %s", resp.StatusCode, raw)
	}
	var withAttrs int
	seen := map[string]bool{}
	for _, data := range streamEvents(t, h.bus.JS, eventv1.SubjectAssignment) {
		var ev eventv1.Assignment
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		seen[ev.EventID] = true
		if ev.Attributes["platform"] == "ios" && ev.Attributes["age"] == "41" && ev.Attributes["beta"] == "true" {
			withAttrs++
		}
	}
	if len(seen) != 201 || withAttrs != 1 {
		t.Errorf("the stream holds %d distinct exposures (%d with the context's attributes), want 201 (1)", len(seen), withAttrs)
	}

	for _, c := range []struct {
		name, key, body string
		status          int
		code            string
	}{
		{"unknown flag", "no-such-flag", `{"context": {"targetingKey": "u1"}}`, 404, "FLAG_NOT_FOUND"},
		{"no context", "new-checkout", `{}`, 400, "TARGETING_KEY_MISSING"},
		{"empty body", "new-checkout", ``, 400, "TARGETING_KEY_MISSING"},
		{"no targeting key", "new-checkout", `{"context": {"platform": "ios"}}`, 400, "TARGETING_KEY_MISSING"},
		{"empty targeting key", "new-checkout", `{"context": {"targetingKey": ""}}`, 400, "TARGETING_KEY_MISSING"},
		{"numeric targeting key", "new-checkout", `{"context": {"targetingKey": 42}}`, 400, "INVALID_CONTEXT"},
		{"nested attribute", "new-checkout", `{"context": {"targetingKey": "u1", "address": {"city": "Bonn"}}}`, 400, "INVALID_CONTEXT"},
		{"bad attribute key", "new-checkout", `{"context": {"targetingKey": "u1", "first name": "Ada"}}`, 400, "INVALID_CONTEXT"},
		{"malformed JSON", "new-checkout", `{"context": `, 400, "PARSE_ERROR"},
		{"injection in the context", "new-checkout", `{"context": {"targetingKey": "u1", "q": "<script>alert(1)</script>"}}`, 400, "INVALID_CONTEXT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, a, raw := h.ofrep(path+c.key, c.body, nil)
			if resp.StatusCode != c.status || a.ErrorCode != c.code || a.ErrorDetails == "" || a.Key != c.key {
				t.Errorf("%s = %d %s, want %d %s with key and details", c.name, resp.StatusCode, raw, c.status, c.code)
			}
		})
	}

	if code, body := h.do("POST", "/api/ab-testing/tests/"+id+"/stop", ""); code != 200 {
		t.Fatalf("stop = %d %v", code, body)
	}
	if resp, a, raw := h.ofrep(path+id, `{"context": {"targetingKey": "u1"}}`, nil); resp.StatusCode != 200 || a.Reason != "DISABLED" || a.Value != nil {
		t.Errorf("stopped evaluation = %d %s, want 200 DISABLED without a value", resp.StatusCode, raw)
	}
}

// TestOFREPBulk checks bulk evaluation: every running test by key (id
// when it has none) with assign's variants, an ETag that If-None-Match
// turns into 304, and a new ETag when the tests change.
func TestOFREPBulk(t *testing.T) {
	h := newHarness(t, Config{})
	code, body := h.create(flagCreate)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, body)
	}
	keyed := body["test_id"].(string)
	h.do("POST", "/api/ab-testing/tests/"+keyed+"/start", "")
	plain := h.createRunning()
	_, draft := h.create(strings.Replace(flagCreate, `"new-checkout"`, `"draft-flag"`, 1))
	const path = "/ofrep/v1/evaluate/flags"
	ctx := `{"context": {"targetingKey": "user-7"}}`
	resp, _, raw := h.ofrep(path, ctx, nil)
	var bulk struct{ Flags []ofrepAnswer }
	if err := json.Unmarshal(raw, &bulk); err != nil || resp.StatusCode != 200 {
		t.Fatalf("bulk = %d %s", resp.StatusCode, raw)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || len(bulk.Flags) != 2 {
		t.Fatalf("bulk = %s (ETag %q), want the 2 running tests and an ETag", raw, etag)
	}
	for _, f := range bulk.Flags {
		id := f.Key
		if f.Key == "new-checkout" {
			id = keyed
		}
		if f.Key == draft["test_id"] {
			t.Errorf("bulk lists the draft test")
		}
		_, assigned := h.do("POST", "/api/ab-testing/tests/"+id+"/assign", `{"user_id": "user-7"}`)
		if f.Reason != "SPLIT" || f.Variant != assigned["variant_id"] {
			t.Errorf("bulk flag %s = %+v, want assign's variant %v", f.Key, f, assigned["variant_id"])
		}
		if f.Key == plain && f.Value == nil {
			t.Errorf("a test without values gives no value: %+v, want its configuration", f)
		}
	}
	if resp, _, raw := h.ofrep(path, ctx, map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 || len(raw) != 0 {
		t.Errorf("bulk with If-None-Match = %d %q, want 304 without a body", resp.StatusCode, raw)
	}
	if resp, _, _ := h.ofrep(path, `{"context": {"targetingKey": "user-8"}}`, map[string]string{"If-None-Match": etag}); resp.StatusCode == 304 {
		t.Errorf("another user's bulk answered 304 to the first user's ETag")
	}
	h.do("POST", "/api/ab-testing/tests/"+plain+"/stop", "")
	resp, _, raw = h.ofrep(path, ctx, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag || strings.Contains(string(raw), plain) {
		t.Errorf("bulk after a stop = %d %s (ETag %q), want 200 without the stopped test and a new ETag", resp.StatusCode, raw, resp.Header.Get("ETag"))
	}
	if resp, a, raw := h.ofrep(path, `{"context": {}}`, nil); resp.StatusCode != 400 || a.ErrorCode != "TARGETING_KEY_MISSING" {
		t.Errorf("bulk without a targeting key = %d %s", resp.StatusCode, raw)
	}
}

// TestOFREPRateLimited checks OFREP's 429: no body and an integer
// Retry-After, which OpenFeature's providers parse.
func TestOFREPRateLimited(t *testing.T) {
	h, _, _ := newLimitedHarness(t, Config{RateLimit: RateLimitConfig{DataPlane: ratelimit.Standard("data_plane", 2, 100, 1000)}})
	id := h.createRunning()
	var resp *http.Response
	var raw []byte
	for range 3 {
		resp, _, raw = h.ofrep("/ofrep/v1/evaluate/flags/"+id, `{"context": {"targetingKey": "u1"}}`, nil)
	}
	if resp.StatusCode != 429 || len(raw) != 0 || resp.Header.Get("Retry-After") == "" || strings.ContainsAny(resp.Header.Get("Retry-After"), " :") {
		t.Errorf("over the limit = %d %q (Retry-After %q), want 429 without a body and integer seconds", resp.StatusCode, raw, resp.Header.Get("Retry-After"))
	}
}

// TestTestKeysAndValues checks the definition side: a key is unique (409
// naming the holder) and well formed, and flag values are all set or
// none, of one JSON type.
func TestTestKeysAndValues(t *testing.T) {
	h := newHarness(t, Config{})
	code, first := h.create(flagCreate)
	if code != http.StatusCreated || first["key"] != "new-checkout" {
		t.Fatalf("create = %d %v", code, first)
	}
	code, body := h.create(flagCreate)
	if code != http.StatusConflict || body["field"] != "key" || !strings.Contains(body["error"].(string), first["test_id"].(string)) {
		t.Errorf("a second test with the key = %d %v, want 409 naming %v", code, body, first["test_id"])
	}
	for name, c := range map[string]struct{ from, to, field string }{
		"bad key":         {`"key": "new-checkout"`, `"key": "new checkout!"`, "key"},
		"some values":     {`"value": false, `, ``, "variants[1].value"},
		"mixed types":     {`"value": false`, `"value": "off"`, "variants[1].value"},
		"array value":     {`"value": false`, `"value": [1]`, "variants[0].value"},
		"string values":   {`"value": false`, `"value": "old"`, ""},
		"object values":   {`"value": false`, `"value": {"a": 1}`, ""},
		"numbers, no key": {`"value": false`, `"value": 1`, ""},
	} {
		body := strings.Replace(flagCreate, c.from, c.to, 1)
		if c.field == "" {
			body = strings.Replace(strings.Replace(body, `"value": true`, strings.TrimPrefix(c.to, `"value": `), 1), `"key": "new-checkout",`, ``, 1)
			body = strings.Replace(body, strings.TrimPrefix(c.to, `"value": `)+`, "configuration"`, `"value": `+strings.TrimPrefix(c.to, `"value": `)+`, "configuration"`, 1)
			if code, resp := h.create(strings.Replace(body, `"on", "variant_name": "New", `+strings.TrimPrefix(c.to, `"value": `), `"on", "variant_name": "New", "value": `+strings.TrimPrefix(c.to, `"value": `), 1)); code != http.StatusCreated {
				t.Errorf("%s: create = %d %v, want 201", name, code, resp)
			}
			continue
		}
		if code, resp := h.create(body); code != http.StatusBadRequest || resp["field"] != c.field {
			t.Errorf("%s: create = %d %v, want 400 on %s", name, code, resp, c.field)
		}
	}
	var def experiment.Test
	_, raw := h.doRaw("GET", "/api/ab-testing/tests/"+first["test_id"].(string), "", "")
	if err := json.Unmarshal(raw, &def); err != nil || def.Key != "new-checkout" || def.Variants[1].Value != true {
		t.Errorf("GET test = %s, want its key and values", raw)
	}
}

// TestListFlags checks the definitions for local evaluation: every test
// with its key and values, an ETag that If-None-Match turns into 304
// until a test changes.
func TestListFlags(t *testing.T) {
	h := newHarness(t, Config{})
	_, created := h.create(flagCreate)
	id := created["test_id"].(string)
	get := func(etag string) (*http.Response, []byte) {
		hdr := map[string]string{HeaderAPIKey: h.key}
		if etag != "" {
			hdr["If-None-Match"] = etag
		}
		return h.call(http.MethodGet, "/api/ab-testing/flags", "", hdr)
	}
	resp, raw := get("")
	var defs struct{ Tests []experiment.Test }
	if err := json.Unmarshal(raw, &defs); err != nil || resp.StatusCode != 200 || len(defs.Tests) != 1 {
		t.Fatalf("flags = %d %s", resp.StatusCode, raw)
	}
	if d := defs.Tests[0]; d.ID != id || d.Key != "new-checkout" || d.Status != experiment.StatusDraft || d.Variants[1].Value != true {
		t.Errorf("flags[0] = %+v", d)
	}
	etag := resp.Header.Get("ETag")
	if resp, raw := get(etag); resp.StatusCode != 304 || len(raw) != 0 {
		t.Errorf("flags with If-None-Match = %d %q, want 304", resp.StatusCode, raw)
	}
	h.do("POST", "/api/ab-testing/tests/"+id+"/start", "")
	if resp, raw := get(etag); resp.StatusCode != 200 || resp.Header.Get("ETag") == etag || !strings.Contains(string(raw), `"status":"running"`) {
		t.Errorf("flags after a start = %d %s, want 200 with a new ETag", resp.StatusCode, raw)
	}
}
