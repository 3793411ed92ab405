package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/internal/registry"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats-server and the HTTP client keep a few package-level goroutines.
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).acceptConnections.func1"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

type harness struct {
	t    *testing.T
	srv  *server.Server
	bus  *eventbus.Bus
	api  *Server
	http *httptest.Server
	// keys is the API key store; key, an admin key ("*") that do sends.
	keys *auth.Store
	key  string
	logs *logBuffer // everything the server logged, at debug level
	// skew moves the key store's clock ahead of the wall clock.
	skew *atomic.Int64
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	s := eventbustest.RunServer(t)
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus, err := eventbus.Connect(t.Context(), eventbus.Config{URL: s.ClientURL()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	testsKV, err := bus.KV(t.Context(), eventbus.BucketTests)
	if err != nil {
		t.Fatal(err)
	}
	reportsKV, err := bus.KV(t.Context(), eventbus.BucketReports)
	if err != nil {
		t.Fatal(err)
	}
	store := registry.New(testsKV, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { store.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := store.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	skew := new(atomic.Int64)
	keys := startKeys(t, bus, log, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	// The cache as production wires it: Deps.Cache, whose analysis layer
	// holds the reports.
	a, err := New(cfg, Deps{Registry: store, Publisher: bus.JS, Requester: bus.NC, Reports: reportsKV, Cache: newTestCache(t, bus), Logger: log, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: s, bus: bus, api: a, http: httptest.NewServer(a.Handler()), keys: keys, logs: logs, skew: skew}
	h.key = h.newKey("*")
	t.Cleanup(h.http.Close)
	return h
}

// do sends a request and decodes the JSON answer into a map.
func (h *harness) do(method, path, body string) (int, map[string]any) {
	h.t.Helper()
	code, raw := h.doRaw(method, path, "application/json", body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			h.t.Fatalf("%s %s: response is not a JSON object: %q", method, path, raw)
		}
	}
	return code, m
}

func (h *harness) doRaw(method, path, contentType, body string) (int, []byte) {
	h.t.Helper()
	hdr := map[string]string{}
	if body != "" {
		hdr["Content-Type"] = contentType
	}
	if h.key != "" {
		hdr[HeaderAPIKey] = h.key
	}
	resp, raw := h.call(method, path, body, hdr)
	return resp.StatusCode, raw
}

const validCreate = `{
  "test_name": "Checkout flow",
  "test_type": "workflow",
  "variants": [
    {"variant_id": "control", "variant_name": "Control", "configuration": {"steps": 3}, "traffic_percentage": 50},
    {"variant_id": "one_page", "variant_name": "One page", "configuration": {"steps": 1}, "traffic_percentage": 50}
  ],
  "control_variant_id": "control",
  "primary_metric": "conversion"
}`

func (h *harness) createRunning() string {
	h.t.Helper()
	code, body := h.do("POST", "/api/ab-testing/tests", validCreate)
	if code != http.StatusCreated {
		h.t.Fatalf("create = %d %v, want 201", code, body)
	}
	id := body["test_id"].(string)
	if code, body := h.do("POST", "/api/ab-testing/tests/"+id+"/start", ""); code != http.StatusOK {
		h.t.Fatalf("start = %d %v, want 200", code, body)
	}
	return id
}

func TestCreateValidation(t *testing.T) {
	h := newHarness(t, Config{MaxBodyBytes: 4096})
	mutate := func(from, to string) string {
		if !strings.Contains(validCreate, from) {
			t.Fatalf("test bug: %q not in the valid body", from)
		}
		return strings.Replace(validCreate, from, to, 1)
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    int
		wantField   string
	}{
		{name: "valid", body: validCreate, wantCode: 201},
		{name: "wrong content type", contentType: "text/plain", body: validCreate, wantCode: 415},
		{name: "empty body", body: " ", wantCode: 400},
		{name: "malformed", body: `{"test_name": `, wantCode: 400},
		{name: "array body", body: `[1,2]`, wantCode: 400},
		{name: "trailing data", body: validCreate + `{}`, wantCode: 400},
		{name: "unknown field", body: mutate(`"primary_metric"`, `"primary_metrics": "x", "primary_metric"`), wantCode: 400, wantField: "primary_metrics"},
		{name: "wrong type", body: mutate(`"traffic_percentage": 50}`, `"traffic_percentage": "50"}`), wantCode: 400, wantField: "variants.traffic_percentage"},
		{name: "unknown test type", body: mutate(`"workflow"`, `"banner"`), wantCode: 400, wantField: "test_type"},
		{name: "sum not 100", body: mutate(`"traffic_percentage": 50}`, `"traffic_percentage": 40}`), wantCode: 400, wantField: "variants"},
		{name: "duplicate variant", body: mutate(`"one_page"`, `"control"`), wantCode: 400, wantField: "variants[1].variant_id"},
		{name: "control missing", body: mutate(`"control_variant_id": "control"`, `"control_variant_id": "nope"`), wantCode: 400, wantField: "control_variant_id"},
		{name: "no primary metric", body: mutate(`"primary_metric": "conversion"`, `"primary_metric": ""`), wantCode: 400, wantField: "primary_metric"},
		{name: "min sample 0", body: mutate(`"primary_metric"`, `"min_sample_size": 0, "primary_metric"`), wantCode: 400, wantField: "min_sample_size"},
		{name: "confidence 1.5", body: mutate(`"primary_metric"`, `"confidence_level": 1.5, "primary_metric"`), wantCode: 400, wantField: "confidence_level"},
		{name: "too large", body: mutate(`"steps": 3`, `"steps": "`+strings.Repeat("x", 5000)+`"`), wantCode: 413},
		{name: "huge number", body: mutate(`"traffic_percentage": 50}`, `"traffic_percentage": 1e400}`), wantCode: 400, wantField: "variants.traffic_percentage"},
		{name: "declared metrics", body: mutate(`"primary_metric"`, `"metrics": [{"name": "conversion", "type": "binary"}, {"name": "latency", "direction": "decrease", "role": "guardrail"}, {"name": "revenue", "winsorize_percentile": 99}], "multiple_comparison": "benjamini_hochberg", "primary_metric"`), wantCode: 201},
		{name: "bad metric type", body: mutate(`"primary_metric"`, `"metrics": [{"name": "latency", "type": "count"}], "primary_metric"`), wantCode: 400, wantField: "metrics[0].type"},
		{name: "unknown metric field", body: mutate(`"primary_metric"`, `"metrics": [{"name": "latency", "kind": "x"}], "primary_metric"`), wantCode: 400, wantField: "kind"},
		{name: "bad correction", body: mutate(`"primary_metric"`, `"multiple_comparison": "bonferroni", "primary_metric"`), wantCode: 400, wantField: "multiple_comparison"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			code, raw := h.doRaw("POST", "/api/ab-testing/tests", ct, tt.body)
			if code != tt.wantCode {
				t.Fatalf("POST /tests = %d %s, want %d", code, raw, tt.wantCode)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("response %q is not JSON: %v", raw, err)
			}
			if code >= 400 {
				if msg, _ := body["error"].(string); msg == "" {
					t.Errorf("error response %s has no error message", raw)
				}
				if got, _ := body["field"].(string); got != tt.wantField {
					t.Errorf("error field = %q, want %q (%s)", got, tt.wantField, raw)
				}
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, Config{})
	code, created := h.do("POST", "/api/ab-testing/tests", validCreate)
	if code != 201 {
		t.Fatalf("create = %d %v", code, created)
	}
	id := created["test_id"].(string)
	if created["status"] != "draft" || created["min_sample_size"] != 100.0 || created["confidence_level"] != 0.95 {
		t.Errorf("created test = %v, want draft with defaults 100 and 0.95", created)
	}
	path := "/api/ab-testing/tests/" + id

	steps := []struct {
		method, path string
		body         string
		wantCode     int
		wantStatus   string
	}{
		{"GET", path, "", 200, "draft"},
		{"POST", path + "/assign", `{"user_id": "u1"}`, 409, ""},
		{"POST", path + "/record", `{"user_id": "u1", "metrics": {"conversion": 1}}`, 409, ""},
		{"POST", path + "/stop", "", 409, ""},
		{"POST", path + "/start", "", 200, "running"},
		{"POST", path + "/start", "", 409, ""},
		{"GET", path, "", 200, "running"},
		{"POST", path + "/stop", "", 200, "stopped"},
		{"POST", path + "/start", "", 409, ""},
		{"POST", path + "/assign", `{"user_id": "u1"}`, 409, ""},
		{"GET", "/api/ab-testing/tests/does-not-exist", "", 404, ""},
		{"POST", "/api/ab-testing/tests/does-not-exist/start", "", 404, ""},
		{"POST", "/api/ab-testing/tests/does-not-exist/assign", `{"user_id": "u1"}`, 404, ""},
		{"GET", "/api/ab-testing/tests/bad%20id", "", 404, ""},
		{"DELETE", path, "", 405, ""},
		{"GET", "/api/ab-testing/nothing", "", 404, ""},
	}
	for _, s := range steps {
		code, body := h.do(s.method, s.path, s.body)
		if code != s.wantCode {
			t.Fatalf("%s %s = %d %v, want %d", s.method, s.path, code, body, s.wantCode)
		}
		if s.wantStatus != "" && body["status"] != s.wantStatus {
			t.Errorf("%s %s status = %v, want %s", s.method, s.path, body["status"], s.wantStatus)
		}
		if code >= 400 && body["error"] == nil {
			t.Errorf("%s %s = %d without an error message: %v", s.method, s.path, code, body)
		}
	}
	_, got := h.do("GET", path, "")
	if got["started_at"] == nil || got["stopped_at"] == nil {
		t.Errorf("stopped test lacks timestamps: %v", got)
	}
}

func TestList(t *testing.T) {
	h := newHarness(t, Config{})
	running := h.createRunning()
	code, draft := h.do("POST", "/api/ab-testing/tests", strings.Replace(validCreate, `"workflow"`, `"prompt"`, 1))
	if code != 201 {
		t.Fatal(code)
	}
	tests := []struct {
		query string
		want  []string
		code  int
	}{
		{"", []string{draft["test_id"].(string), running}, 200},
		{"?status=running", []string{running}, 200},
		{"?status=draft&test_type=prompt", []string{draft["test_id"].(string)}, 200},
		{"?test_type=model", nil, 200},
		{"?status=paused", nil, 400},
		{"?test_type=x", nil, 400},
	}
	for _, tt := range tests {
		code, body := h.do("GET", "/api/ab-testing/tests"+tt.query, "")
		if code != tt.code {
			t.Fatalf("GET /tests%s = %d %v, want %d", tt.query, code, body, tt.code)
		}
		if code != 200 {
			continue
		}
		var ids []string
		for _, x := range body["tests"].([]any) {
			ids = append(ids, x.(map[string]any)["test_id"].(string))
		}
		if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
			t.Errorf("GET /tests%s = %v, want %v", tt.query, ids, tt.want)
		}
	}
}

// streamEvents returns the JSON of every event of one kind in the stream
// (eventv1.SubjectAssignment or SubjectResult), whether published alone or
// as a line of a batch message.
func streamEvents(t *testing.T, js jetstream.JetStream, single string) [][]byte {
	t.Helper()
	batch := eventv1.SubjectResultBatch
	if single == eventv1.SubjectAssignment {
		batch = eventv1.SubjectAssignmentBatch
	}
	var out [][]byte
	for _, m := range streamMessages(t, js, single) {
		out = append(out, m.Data())
	}
	for _, m := range streamMessages(t, js, batch) {
		out = append(out, bytes.Split(m.Data(), []byte("\n"))...)
	}
	return out
}

// streamMessages reads every message of the event stream.
func streamMessages(t *testing.T, js jetstream.JetStream, subject string) []jetstream.Msg {
	t.Helper()
	ctx := t.Context()
	cons, err := js.OrderedConsumer(ctx, eventv1.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.NumPending)
	var out []jetstream.Msg
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
	}
	return out
}

func TestAssign(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.createRunning()
	path := "/api/ab-testing/tests/" + id + "/assign"
	seen := map[string]string{}
	for i := range 200 {
		user := fmt.Sprintf("user-%d", i)
		code, body := h.do("POST", path, `{"user_id": "`+user+`"}`)
		if code != 200 {
			t.Fatalf("assign = %d %v", code, body)
		}
		seen[user] = body["variant_id"].(string)
		if body["configuration"] == nil || body["variant_name"] == nil {
			t.Errorf("assign response lacks variant details: %v", body)
		}
	}
	// Same user, same variant.
	for user, v := range seen {
		_, body := h.do("POST", path, `{"user_id": "`+user+`"}`)
		if body["variant_id"] != v {
			t.Fatalf("user %s moved from %s to %v", user, v, body["variant_id"])
		}
	}
	// One event per user: repeats within the duplicate window are dropped.
	msgs := streamMessages(t, h.bus.JS, eventv1.SubjectAssignment)
	if len(msgs) != len(seen) {
		t.Errorf("stream holds %d assignment events, want %d (one per user)", len(msgs), len(seen))
	}
	for _, m := range msgs {
		var ev eventv1.Assignment
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("published assignment is invalid: %v", err)
		}
		if ev.TestID != id || seen[ev.UserID] != ev.VariantID {
			t.Errorf("event %+v does not match the answer %s", ev, seen[ev.UserID])
		}
		if want := "a:" + id + ":" + ev.EventID; m.Headers().Get(jetstream.MsgIDHeader) != want {
			t.Errorf("message id %q, want %q", m.Headers().Get(jetstream.MsgIDHeader), want)
		}
	}

	for _, bad := range []string{`{}`, `{"user_id": ""}`, `{"user_id": 5}`, `{"user_id": "a\u0000b"}`, `{"user_id": "` + strings.Repeat("x", 200) + `"}`} {
		if code, body := h.do("POST", path, bad); code != 400 {
			t.Errorf("assign %s = %d %v, want 400", bad, code, body)
		}
	}
}

func TestRecord(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.createRunning()
	path := "/api/ab-testing/tests/" + id + "/record"
	code, body := h.do("POST", path, `{"user_id": "u1", "metrics": {"conversion": 1, "latency_ms": 120.5}}`)
	if code != 202 || body["status"] != "accepted" || body["event_id"] == "" {
		t.Fatalf("record = %d %v, want 202 accepted with an event id", code, body)
	}
	// A retry with the client's event id is stored once.
	for i := range 2 {
		code, body = h.do("POST", path, `{"user_id": "u2", "metrics": {"conversion": 0}, "event_id": "client-evt-1"}`)
		if code != 202 || body["duplicate"] != (i == 1) {
			t.Fatalf("record #%d = %d %v, want 202 with duplicate=%v", i, code, body, i == 1)
		}
	}
	msgs := streamMessages(t, h.bus.JS, eventv1.SubjectResult)
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d result events, want 2", len(msgs))
	}
	var ev eventv1.Result
	if err := json.Unmarshal(msgs[0].Data(), &ev); err != nil {
		t.Fatal(err)
	}
	var def experiment.Test
	_, raw := h.doRaw("GET", "/api/ab-testing/tests/"+id, "", "")
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	assigned := experiment.Assign(&def, "u1").ID
	if ev.TestID != id || ev.UserID != "u1" || ev.VariantID != assigned || ev.Metrics["latency_ms"] != 120.5 || ev.Validate() != nil {
		t.Errorf("published result = %+v, want u1's assigned variant %s filled in", ev, assigned)
	}
	// A result naming another variant than the user's is rejected: a user
	// never counts in two arms.
	other := "control"
	if assigned == "control" {
		other = "one_page"
	}
	if code, body := h.do("POST", path, `{"user_id": "u1", "variant_id": "`+other+`", "metrics": {"m": 1}}`); code != 400 || body["field"] != "variant_id" {
		t.Errorf("record with u1 in %s (assigned %s) = %d %v, want 400 on variant_id", other, assigned, code, body)
	}

	tests := []struct {
		name, body string
		wantCode   int
		wantField  string
	}{
		{"unknown variant", `{"user_id": "u1", "variant_id": "nope", "metrics": {"m": 1}}`, 400, "variant_id"},
		{"no variant: the assigned one", `{"user_id": "u1", "metrics": {"m": 1}}`, 202, ""},
		{"no user", `{"metrics": {"m": 1}}`, 400, "user_id"},
		{"no metrics", `{"user_id": "u1", "metrics": {}}`, 400, "metrics"},
		{"string value", `{"user_id": "u1", "metrics": {"m": "1"}}`, 400, "metrics"},
		{"null value", `{"user_id": "u1", "metrics": {"m": null}}`, 400, "metrics.m"},
		{"overflow", `{"user_id": "u1", "metrics": {"m": 1e999}}`, 400, "metrics"},
		{"metrics not an object", `{"user_id": "u1", "metrics": [1]}`, 400, "metrics"},
		{"bad metric name", `{"user_id": "u1", "metrics": {"a b": 1}}`, 400, "metrics"},
		{"bad event id", `{"user_id": "u1", "metrics": {"m": 1}, "event_id": "a/b"}`, 400, "event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.do("POST", path, tt.body)
			if code != tt.wantCode {
				t.Fatalf("record %s = %d %v, want %d", tt.body, code, body, tt.wantCode)
			}
			if got, _ := body["field"].(string); got != tt.wantField {
				t.Errorf("field = %q, want %q (%v)", got, tt.wantField, body)
			}
		})
	}
	if code, _ := h.do("POST", "/api/ab-testing/tests/nope/record", `{"user_id": "u1", "metrics": {"m": 1}}`); code != 404 {
		t.Errorf("record on unknown test = %d, want 404", code)
	}
}

func TestWritesFailFastWhenNATSIsDown(t *testing.T) {
	h := newHarness(t, Config{PublishTimeout: 500 * time.Millisecond})
	id := h.createRunning()
	port, store := h.srv.Addr().(*net.TCPAddr).Port, filepath.Dir(h.srv.StoreDir())
	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	start := time.Now()
	code, body := h.do("POST", "/api/ab-testing/tests/"+id+"/record", `{"user_id": "u1", "metrics": {"m": 1}}`)
	if code != 503 || body["error"] == nil {
		t.Errorf("record with NATS down = %d %v, want 503 with an error", code, body)
	}
	if d, _ := body["detail"].(map[string]any); d == nil || d["event_id"] == "" {
		t.Errorf("503 for record names no event_id to retry with: %v", body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("record with NATS down took %v, want about the 500ms publish timeout", d)
	}
	// Reads that need no NATS keep working from memory.
	if code, _ := h.do("GET", "/api/ab-testing/tests/"+id, ""); code != 200 {
		t.Errorf("GET test with NATS down = %d, want 200", code)
	}

	// NATS comes back on the same address and store: writes recover by
	// themselves, with no restart of the API.
	eventbustest.RunServerAt(t, port, store)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body = h.do("POST", "/api/ab-testing/tests/"+id+"/record", `{"user_id": "u1", "metrics": {"m": 1}, "event_id": "after-outage"}`)
		if code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record 15s after NATS returned = %d %v, want 202", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(streamMessages(t, h.bus.JS, eventv1.SubjectResult)); n != 1 {
		t.Errorf("after recovery the stream holds %d results, want 1", n)
	}
}

func TestAnalyze(t *testing.T) {
	h := newHarness(t, Config{AnalyzeTimeout: 2 * time.Second, ReportMaxAge: time.Minute})
	id := h.createRunning()
	path := "/api/ab-testing/tests/" + id + "/analyze"

	// No analyzer running and no stored report: 503.
	if code, body := h.do("GET", path, ""); code != 503 {
		t.Fatalf("analyze without analyzer = %d %v, want 503", code, body)
	}

	// A stored fresh report is served without asking any analyzer.
	kv, _ := h.bus.KV(t.Context(), eventbus.BucketReports)
	stored, _ := json.Marshal(experiment.Report{TestID: id, ComputedAt: time.Now().UTC(), Decision: "stored"})
	if _, err := kv.Put(t.Context(), id, stored); err != nil {
		t.Fatal(err)
	}
	code, body := h.do("GET", path, "")
	if code != 200 || body["decision"] != "stored" {
		t.Errorf("analyze with a fresh stored report = %d %v, want the stored one", code, body)
	}

	// An analyzer that answers; the report comes back as it sent it.
	calls := 0
	sub, err := h.bus.NC.QueueSubscribe(eventv1.SubjectAnalyze, eventv1.QueueAnalyzers, func(m *nats.Msg) {
		calls++
		var req eventv1.AnalyzeRequest
		json.Unmarshal(m.Data, &req)
		rep := experiment.Report{TestID: req.TestID, ComputedAt: time.Now().UTC(), Decision: "no_data"}
		data, _ := json.Marshal(rep)
		m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	// max_age=0 forces a fresh one.
	code, body = h.do("GET", path+"?max_age=0", "")
	if code != 200 || body["test_id"] != id || body["decision"] != "no_data" || calls != 1 {
		t.Fatalf("analyze?max_age=0 = %d %v (analyzer calls %d), want a fresh report from the analyzer", code, body, calls)
	}
	// The fresh report is now cached in process: with the analyzer gone and
	// the stored report deleted, a hot read still gets it.
	sub.Unsubscribe()
	if err := kv.Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	code, body = h.do("GET", path, "")
	if code != 200 || body["decision"] != "no_data" || calls != 1 {
		t.Errorf("hot analyze = %d %v (calls %d), want the cached fresh report", code, body, calls)
	}
	// ... but not when it is older than the caller accepts.
	if code, body := h.do("GET", path+"?max_age=0", ""); code != 503 {
		t.Errorf("analyze?max_age=0 without analyzer = %d %v, want 503", code, body)
	}
	if code, _ := h.do("GET", path+"?max_age=-1", ""); code != 400 {
		t.Errorf("analyze?max_age=-1 = %d, want 400", code)
	}
	if code, _ := h.do("GET", "/api/ab-testing/tests/nope/analyze", ""); code != 404 {
		t.Errorf("analyze unknown test = %d, want 404", code)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, Config{})
	if code, body := h.do("GET", "/healthz", ""); code != 200 || body["status"] != "ok" {
		t.Errorf("healthz = %d %v", code, body)
	}
	if code, body := h.do("GET", "/readyz", ""); code != 200 || body["status"] != "ready" {
		t.Errorf("readyz = %d %v", code, body)
	}
	code, raw := h.doRaw("GET", "/metrics", "", "")
	if code != 200 || !bytes.Contains(raw, []byte("abacus_http_requests_total")) {
		t.Errorf("metrics = %d, missing abacus_http_requests_total:\n%.500s", code, raw)
	}
}

// TestEventIDsAreScopedToTheTest records the same client event id in two
// tests (one order counting in two experiments): both are stored, and only
// a repeat within one test is a duplicate.
func TestEventIDsAreScopedToTheTest(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := h.createRunning(), h.createRunning()
	body := `{"user_id": "u1", "metrics": {"m": 1}, "event_id": "order-7"}`
	for _, step := range []struct {
		test string
		dup  bool
	}{{a, false}, {b, false}, {a, true}} {
		code, resp := h.do("POST", "/api/ab-testing/tests/"+step.test+"/record", body)
		if code != 202 || resp["duplicate"] != step.dup {
			t.Errorf("record order-7 on %s = %d %v, want 202 with duplicate=%v", step.test, code, resp, step.dup)
		}
	}
	if n := len(streamMessages(t, h.bus.JS, eventv1.SubjectResult)); n != 2 {
		t.Errorf("stream holds %d results, want 2 (one per test)", n)
	}
}
