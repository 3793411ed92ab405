package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/internal/registry"
	"github.com/abacus-ab/abacus/internal/validate"
)

// core is what a server needs, built on an embedded NATS for any test or
// benchmark: the registry and key store running, and a running test.
type core struct {
	bus    *eventbus.Bus
	reg    *registry.Store
	keys   *auth.Store
	log    *slog.Logger
	key    string // an admin key
	testID string // a running test
}

func newCore(tb testing.TB) *core {
	tb.Helper()
	c := &core{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c.bus = eventbustest.Connect(tb, eventbustest.RunServer(tb))
	kv := func(name string) jetstream.KeyValue {
		b, err := c.bus.KV(context.Background(), name)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	c.reg = registry.New(kv(eventbus.BucketTests), c.log)
	keys, err := auth.NewStore(kv(eventbus.BucketKeys), auth.Config{}, c.log)
	if err != nil {
		tb.Fatal(err)
	}
	c.keys = keys
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { c.reg.Run(ctx); done <- struct{}{} }()
	go func() { c.keys.Run(ctx); done <- struct{}{} }()
	tb.Cleanup(func() { cancel(); <-done; <-done })
	if err := c.reg.WaitReady(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if err := c.keys.WaitReady(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if _, c.key, err = c.keys.Create(context.Background(), auth.NewKey{UserID: "core", Permissions: []string{auth.All}}); err != nil {
		tb.Fatal(err)
	}
	s, err := New(Config{AuthDisabled: true}, Deps{Registry: c.reg, Publisher: c.bus.JS, Requester: c.bus.NC, Logger: c.log})
	if err != nil {
		tb.Fatal(err)
	}
	post := func(path, body string) []byte {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		s.Handler().ServeHTTP(rec, req)
		if rec.Code >= 300 {
			tb.Fatalf("setup %s = %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	var created struct {
		ID string `json:"test_id"`
	}
	if err := json.Unmarshal(post("/api/ab-testing/tests", validCreate), &created); err != nil {
		tb.Fatal(err)
	}
	post("/api/ab-testing/tests/"+created.ID+"/start", "")
	c.testID = created.ID
	return c
}

// fuzzServer is a server with every JSON handler live, with input
// validation on and authentication off, and the id of a running test.
func fuzzServer(tb testing.TB) (http.Handler, string) {
	tb.Helper()
	c := newCore(tb)
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	reports, err := c.bus.KV(context.Background(), eventbus.BucketReports)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Config{AuthDisabled: true, MaxBodyBytes: 64 << 10}, Deps{
		Registry: c.reg, Publisher: c.bus.JS, Requester: c.bus.NC, Reports: reports,
		Keys: c.keys, Validator: v, Logger: c.log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s.Handler(), c.testID
}

// fuzzRoutes are the routes that read a JSON body; TEST is the running
// test's id.
var fuzzRoutes = []string{
	"/api/ab-testing/tests",
	"/api/ab-testing/tests/TEST/assign",
	"/api/ab-testing/tests/TEST/record",
	"/api/ab-testing/events",
	"/api/ab-testing/power",
	"/api/admin/keys",
	"/api/admin/clear-cache",
}

// FuzzJSONHandlers sends arbitrary bodies to every JSON handler: none may
// panic or answer 500. Power needs an analyzer, which is not running: it
// may answer 503, and nothing else may.
func FuzzJSONHandlers(f *testing.F) {
	for i := range fuzzRoutes {
		for _, seed := range []string{
			validCreate,
			`{"user_id": "u1"}`,
			`{"user_id": "u1", "metrics": {"m": 1.5}, "event_id": "e1"}`,
			`[{"type": "result", "test_id": "TEST", "user_id": "u2", "metrics": {"m": 1}}, {"type": "assignment", "test_id": "TEST", "user_id": "u3"}]`,
			`{"baseline_mean": 0.1, "mde": 0.01, "metric_type": "binary"}`,
			`{"user_id": "svc", "permissions": ["ab_testing.read"]}`,
			`{"category": "query"}`,
			`{"user_id": "\u0000' OR 1=1 --", "metrics": {"<script>": 1e308}}`,
			`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`,
			``,
		} {
			f.Add(uint8(i), []byte(seed))
		}
	}
	h, testID := fuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := strings.Replace(fuzzRoutes[int(route)%len(fuzzRoutes)], "TEST", testID, 1)
		body = bytes.ReplaceAll(body, []byte("TEST"), []byte(testID))
		for _, ct := range []string{"application/json", "application/x-ndjson"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 && !(rec.Code == http.StatusServiceUnavailable && path == "/api/ab-testing/power") {
				t.Fatalf("POST %s (%s) with %q = %d %s", path, ct, body, rec.Code, rec.Body)
			}
		}
	})
}
