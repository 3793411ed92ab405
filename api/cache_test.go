package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/internal/registry"
)

func newTestCache(t *testing.T, bus *eventbus.Bus) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.DefaultConfig(), bus.NC, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// replica is a second API server on the harness's NATS, with a registry
// and a cache of its own, as another process would have.
func (h *harness) replica() (*httptest.Server, *cache.Cache) {
	t := h.t
	t.Helper()
	bus := eventbustest.Connect(t, h.srv)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	testsKV, err := bus.KV(t.Context(), eventbus.BucketTests)
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
	c := newTestCache(t, bus)
	a, err := New(Config{}, Deps{Registry: store, Publisher: bus.JS, Requester: bus.NC, Logger: log, Keys: h.keys, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv, c
}

func (h *harness) getFrom(base, path string) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set(HeaderAPIKey, h.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestCachedReadsFollowChanges caches a test and the test list on a second
// replica, changes the test on the first, and checks that the second
// serves the change within a second; and that repeated reads are hits.
func TestCachedReadsFollowChanges(t *testing.T) {
	h := newHarness(t, Config{})
	other, otherCache := h.replica()

	code, created := h.do(http.MethodPost, "/api/ab-testing/tests", validCreate)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, created)
	}
	id := created["test_id"].(string)
	var first map[string]any
	for start := time.Now(); ; {
		// The other replica may need a moment to see the new test.
		if code, first = h.getFrom(other.URL, "/api/ab-testing/tests/"+id); code == http.StatusOK || time.Since(start) > time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if first["status"] != "draft" {
		t.Fatalf("GET on the other replica = %d %v", code, first)
	}
	_, list := h.getFrom(other.URL, "/api/ab-testing/tests?status=running")
	if list["total"] != 0.0 {
		t.Fatalf("running tests on the other replica before the start: %v", list)
	}
	for range 5 {
		h.getFrom(other.URL, "/api/ab-testing/tests/"+id)
	}
	if st := otherCache.Stats()[cache.LayerTests]; st.Hits < 5 || st.Entries != 1 {
		t.Errorf("tests layer after 6 reads of one test: %+v, want at least 5 hits and 1 entry", st)
	}

	if code, body := h.do(http.MethodPost, "/api/ab-testing/tests/"+id+"/start", ""); code != http.StatusOK {
		t.Fatalf("start = %d %v", code, body)
	}
	start := time.Now()
	for {
		_, got := h.getFrom(other.URL, "/api/ab-testing/tests/"+id)
		_, list := h.getFrom(other.URL, "/api/ab-testing/tests?status=running")
		if got["status"] == "running" && list["total"] == 1.0 {
			t.Logf("the other replica served the started test after %v", time.Since(start).Round(time.Microsecond))
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("a second after the start the other replica serves %v and %v", got["status"], list)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheAdmin checks the statistics and clearing endpoints.
func TestCacheAdmin(t *testing.T) {
	var c *cache.Cache
	h := newHarnessWith(t, Config{}, func(h *harness, d *Deps) {
		c = newTestCache(t, h.bus)
		d.Cache = c
	})

	id := h.createRunning()
	for range 3 {
		h.do(http.MethodGet, "/api/ab-testing/tests/"+id, "")
	}
	code, body := h.do(http.MethodGet, "/api/admin/cache/stats", "")
	layers, _ := body["layers"].(map[string]any)
	if code != http.StatusOK || len(layers) != 4 {
		t.Fatalf("stats = %d %v, want the 4 layers", code, body)
	}
	tests := layers["tests"].(map[string]any)
	if tests["hits"].(float64) < 2 || tests["entries"].(float64) != 1 || tests["hit_rate"].(float64) <= 0 {
		t.Errorf("tests layer = %v, want 1 entry, 2+ hits", tests)
	}

	code, body = h.do(http.MethodPost, "/api/admin/clear-cache?category=tests", "")
	if code != http.StatusOK || body["cleared"] != "tests" {
		t.Fatalf("clear tests = %d %v", code, body)
	}
	if n := c.Stats()[cache.LayerTests].Entries; n != 0 {
		t.Errorf("tests layer holds %d entries after clearing it", n)
	}
	code, body = h.do(http.MethodPost, "/api/admin/clear-cache", `{"category": "everything"}`)
	if code != http.StatusBadRequest || body["field"] != "category" {
		t.Errorf("unknown category = %d %v, want 400 naming category", code, body)
	}
	code, body = h.do(http.MethodPost, "/api/admin/clear-cache", "")
	if code != http.StatusOK || body["cleared"] != "all" {
		t.Errorf("clear all = %d %v", code, body)
	}
	reader := h.newKey("ab_testing.read")
	resp, raw := h.call(http.MethodPost, "/api/admin/clear-cache", "", map[string]string{HeaderAPIKey: reader})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(raw), "admin.cache") {
		t.Errorf("clear with a read-only key = %d %s, want 403 naming admin.cache", resp.StatusCode, raw)
	}
}
