package cache

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type report struct {
	TestID string  `json:"test_id"`
	Lift   float64 `json:"lift"`
}

// jsonCodec stores values of T as JSON, so that the tests can check
// CachedCodec with typed values; the API caches bytes (Bytes).
type jsonCodec[T any] struct{}

func (jsonCodec[T]) Marshal(v T) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec[T]) Unmarshal(data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// cached is CachedCodec with jsonCodec.
func cached[T any](ctx context.Context, c *Cache, layer, key string, fn func(context.Context) (T, error)) (T, error) {
	return CachedCodec(ctx, c, layer, key, jsonCodec[T]{}, fn)
}

func TestCachedStampede(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (report, error) {
		calls.Add(1)
		<-release
		return report{TestID: "t1", Lift: 0.25}, nil
	}
	const callers = 100
	var wg sync.WaitGroup
	results := make([]report, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			results[i], errs[i] = cached(t.Context(), c, LayerAnalysis, Key("report", "t1"), fn)
		})
	}
	// Let the callers pile up on the cold key (each counts a miss before
	// it joins the flight), then finish the one computation. Late callers
	// hit the cache or the re-check in the flight: the count is 1 however
	// they interleave.
	eventually(t, 5*time.Second, "every caller missed", func() bool {
		return c.Stats()[LayerAnalysis].Misses == callers
	})
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d callers of one cold key ran fn %d times, want 1", callers, n)
	}
	for i := range callers {
		if errs[i] != nil || results[i] != (report{"t1", 0.25}) {
			t.Fatalf("caller %d got %+v, %v", i, results[i], errs[i])
		}
	}
	// Now it is cached.
	if _, err := cached(t.Context(), c, LayerAnalysis, Key("report", "t1"), fn); err != nil || calls.Load() != 1 {
		t.Errorf("warm call: err %v, fn ran %d times, want 1", err, calls.Load())
	}
}

func TestCachedErrorsNotCached(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	boom := errors.New("boom")
	var calls int
	fn := func(context.Context) (int, error) {
		calls++
		if calls == 1 {
			return 0, boom
		}
		return 42, nil
	}
	if _, err := cached(t.Context(), c, LayerGeneral, "k", fn); !errors.Is(err, boom) {
		t.Fatalf("first call: %v, want boom", err)
	}
	if e := c.Stats()[LayerGeneral].Entries; e != 0 {
		t.Errorf("an error left %d entries", e)
	}
	v, err := cached(t.Context(), c, LayerGeneral, "k", fn)
	if err != nil || v != 42 {
		t.Fatalf("second call = %d, %v, want 42", v, err)
	}
	v, err = cached(t.Context(), c, LayerGeneral, "k", fn)
	if err != nil || v != 42 || calls != 2 {
		t.Errorf("third call = %d, %v after %d computations, want 42 from the cache after 2", v, err, calls)
	}
}

// TestCachedInvalidatedWhileComputing: a value computed across an
// invalidation is returned but not cached.
func TestCachedInvalidatedWhileComputing(t *testing.T) {
	tests := []struct {
		name       string
		invalidate func(c *Cache) error
	}{
		{"key", func(c *Cache) error { return c.Delete(LayerTests, "t1") }},
		{"layer", func(c *Cache) error { return c.InvalidateCategory(LayerTests) }},
		{"all", func(c *Cache) error { return c.Clear() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config{}, nil)
			v, err := cached(t.Context(), c, LayerTests, "t1", func(context.Context) (string, error) {
				if err := tt.invalidate(c); err != nil {
					return "", err
				}
				return "old definition", nil
			})
			if err != nil || v != "old definition" {
				t.Fatalf("CachedCodec = %q, %v", v, err)
			}
			if _, ok := c.Get(LayerTests, "t1"); ok {
				t.Error("a value computed across an invalidation was cached")
			}
		})
	}
}

func TestCachedContext(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	release, started := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := cached(ctx, c, LayerQuery, "slow", func(ctx context.Context) (int, error) {
			close(started)
			<-release
			return 7, ctx.Err() // not canceled with the caller
		})
		done <- err
	}()
	<-started // the caller waits on the computation
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled caller got %v, want context.Canceled", err)
	}
	close(release)
	// The computation finishes for the cache anyway.
	eventually(t, time.Second, "cached after the caller left", func() bool {
		_, ok := c.Get(LayerQuery, "slow")
		return ok
	})
}

func TestCachedCodecBytes(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	fn := func(context.Context) ([]byte, error) { return []byte(`{"raw":true}`), nil }
	for range 2 {
		v, err := CachedCodec(t.Context(), c, LayerQuery, "raw", Bytes{}, fn)
		if err != nil || string(v) != `{"raw":true}` {
			t.Fatalf("CachedCodec = %q, %v", v, err)
		}
	}
	if s := c.Stats()[LayerQuery]; s.Hits != 1 || s.Misses != 1 {
		t.Errorf("hits %d misses %d, want 1 and 1", s.Hits, s.Misses)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"list_tests", []any{"running", 50}, `list_tests("running",50)`},
		{"f", nil, `f()`},
		{"f", []any{"a,b"}, `f("a,b")`},
		{"f", []any{"a", "b"}, `f("a","b")`},
		{"f", []any{func() {}}, ``}, // not JSON: %#v, checked below
	}
	for _, tt := range tests {
		got := Key(tt.name, tt.args...)
		if tt.want != "" && got != tt.want {
			t.Errorf("Key(%q, %v) = %s, want %s", tt.name, tt.args, got, tt.want)
		}
	}
	if Key("f", "a,b") == Key("f", "a", "b") {
		t.Error("Key does not tell one argument with a comma from two")
	}
}
