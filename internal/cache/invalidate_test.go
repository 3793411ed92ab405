package cache

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// eventually polls cond every 5 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// replicas returns two caches on two connections to one server.
func replicas(t *testing.T) (a, b *Cache) {
	t.Helper()
	s := eventbustest.RunServer(t)
	a = newTestCache(t, Config{}, eventbustest.Connect(t, s).NC)
	b = newTestCache(t, Config{}, eventbustest.ConnectURL(t, s.ClientURL()).NC)
	return a, b
}

func setBoth(t *testing.T, layer, key string, caches ...*Cache) {
	t.Helper()
	for _, c := range caches {
		if err := c.Set(layer, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInvalidationAcrossReplicas: an invalidation on replica A must reach
// reads on replica B within one second.
func TestInvalidationAcrossReplicas(t *testing.T) {
	a, b := replicas(t)
	tests := []struct {
		name       string
		invalidate func() error
		gone       []string // "layer/key" that must miss on B
		kept       []string // that must still hit on B
	}{
		{"one key", func() error { return a.Delete(LayerTests, "t1") },
			[]string{"tests/t1"}, []string{"tests/t2", "query/q1"}},
		{"empty key is a key", func() error { return a.Delete(LayerTests, "") },
			[]string{"tests/"}, []string{"tests/t1", "query/q1"}},
		{"one layer", func() error { return a.InvalidateCategory(LayerTests) },
			[]string{"tests/t1", "tests/t2"}, []string{"query/q1", "general/g1"}},
		{"all", a.Clear,
			[]string{"tests/t1", "query/q1", "analysis/a1", "general/g1"}, nil},
	}
	split := func(s string) (string, string) {
		for i := range s {
			if s[i] == '/' {
				return s[:i], s[i+1:]
			}
		}
		return s, ""
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, lk := range []string{"tests/t1", "tests/t2", "tests/", "query/q1", "analysis/a1", "general/g1"} {
				layer, key := split(lk)
				setBoth(t, layer, key, a, b)
			}
			if err := tt.invalidate(); err != nil {
				t.Fatal(err)
			}
			for _, lk := range tt.gone {
				layer, key := split(lk)
				if _, ok := a.Get(layer, key); ok {
					t.Errorf("A still serves %s after invalidating it", lk)
				}
				d := eventually(t, time.Second, "B misses "+lk, func() bool {
					_, ok := b.Get(layer, key)
					return !ok
				})
				t.Logf("B stopped serving %s after %v", lk, d)
			}
			for _, lk := range tt.kept {
				layer, key := split(lk)
				if _, ok := b.Get(layer, key); !ok {
					t.Errorf("B lost %s, which was not invalidated", lk)
				}
			}
		})
	}
}

// TestOwnInvalidationIgnored: a replica skips its own messages, and a
// message applied twice is harmless.
func TestOwnInvalidationIgnored(t *testing.T) {
	a, b := replicas(t)
	setBoth(t, LayerQuery, "q", a, b)
	if err := a.InvalidateCategory(LayerQuery); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "B misses", func() bool { _, ok := b.Get(LayerQuery, "q"); return !ok })
	if g := a.Stats()[LayerQuery].Generation; g != 1 {
		t.Errorf("A's query generation = %d, want 1 (its own message skipped)", g)
	}
	// B applies the same message again: still empty, still working.
	key := "q"
	data, _ := json.Marshal(invalidation{Origin: a.origin, Layer: LayerQuery, Key: &key})
	for range 2 {
		b.receive(&nats.Msg{Subject: SubjectInvalidate, Data: data})
	}
	if _, ok := b.Get(LayerQuery, "q"); ok {
		t.Error("B serves q after the repeated invalidation")
	}
	setBoth(t, LayerQuery, "q", b)
	mustGet(t, b, LayerQuery, "q")
	// Garbage and unknown layers are ignored.
	b.receive(&nats.Msg{Subject: SubjectInvalidate, Data: []byte("{")})
	b.receive(&nats.Msg{Subject: SubjectInvalidate, Data: []byte(`{"origin":"x","layer":"future"}`)})
	mustGet(t, b, LayerQuery, "q")
}

// TestReconnectClears: invalidations sent while a replica is disconnected
// are lost, so a reconnect clears its layers; afterwards invalidations
// flow again.
func TestReconnectClears(t *testing.T) {
	dir := t.TempDir()
	s := eventbustest.RunServerAt(t, -1, dir)
	port := s.Addr().(*net.TCPAddr).Port
	busA := eventbustest.ConnectURL(t, s.ClientURL())
	reconnects := make(chan struct{}, 1)
	prev := busA.NC.Opts.ReconnectedCB
	busA.NC.SetReconnectHandler(func(nc *nats.Conn) {
		prev(nc)
		reconnects <- struct{}{}
	})
	a := newTestCache(t, Config{}, busA.NC)
	b := newTestCache(t, Config{}, eventbustest.ConnectURL(t, s.ClientURL()).NC)
	setBoth(t, LayerTests, "t1", a, b)

	s.Shutdown()
	s.WaitForShutdown()
	eventbustest.RunServerAt(t, port, dir)
	select {
	case <-reconnects: // the handler set before New still runs
	case <-time.After(10 * time.Second):
		t.Fatal("A did not reconnect within 10s")
	}
	eventually(t, time.Second, "A cleared after reconnecting", func() bool {
		_, ok := a.Get(LayerTests, "t1")
		return !ok
	})
	eventually(t, 10*time.Second, "B cleared after reconnecting", func() bool {
		_, ok := b.Get(LayerTests, "t1")
		return !ok
	})

	setBoth(t, LayerTests, "t2", a, b)
	if err := a.Delete(LayerTests, "t2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "B misses t2 after the reconnect", func() bool {
		_, ok := b.Get(LayerTests, "t2")
		return !ok
	})
}

func TestPublishWhileDisconnected(t *testing.T) {
	s := eventbustest.RunServer(t)
	bus := eventbustest.Connect(t, s)
	c := newTestCache(t, Config{}, bus.NC)
	setBoth(t, LayerTests, "t1", c)
	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, 5*time.Second, "disconnected", func() bool { return !bus.NC.IsConnected() })
	if err := c.Delete(LayerTests, "t1"); err == nil {
		t.Error("Delete while disconnected = nil, want the publish error")
	}
	if _, ok := c.Get(LayerTests, "t1"); ok {
		t.Error("the local delete did not happen")
	}
}
