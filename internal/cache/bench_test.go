package cache

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"
)

// benchValue is about the size of a test definition.
var benchValue = make([]byte, 512)

func benchCache(b *testing.B, entries int) *Cache {
	c := newTestCache(b, Config{Query: LayerConfig{MaxEntries: entries, MaxMB: 64}}, nil)
	for i := range entries {
		if err := c.Set(LayerQuery, "key:"+strconv.Itoa(i), benchValue); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	return keys
}

// BenchmarkCacheHit reads a 512-byte value from a layer of 10,000 entries.
func BenchmarkCacheHit(b *testing.B) {
	c := benchCache(b, 10_000)
	keys := benchKeys(10_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(LayerQuery, keys[i%len(keys)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	c := benchCache(b, 10_000)
	keys := benchKeys(10_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(LayerQuery, keys[i%len(keys)])
			i++
		}
	})
}

func BenchmarkCacheMiss(b *testing.B) {
	c := benchCache(b, 10_000)
	keys := benchKeys(20_000)[10_000:]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(LayerQuery, keys[i%len(keys)]); ok {
			b.Fatal("hit")
		}
		i++
	}
}

// BenchmarkCacheSet stores distinct keys into a full layer: every Set
// evicts the oldest entry.
func BenchmarkCacheSet(b *testing.B) {
	c := benchCache(b, 10_000)
	keys := benchKeys(100_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Set(LayerQuery, keys[i%len(keys)], benchValue); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCachedHit is a warm CachedCodec call as the API makes it: a
// small JSON answer cached as bytes (Bytes).
func BenchmarkCachedHit(b *testing.B) {
	c := newTestCache(b, Config{}, nil)
	answer := []byte(`{"test_id":"t1","lift":0.25}`)
	fn := func(context.Context) ([]byte, error) { return answer, nil }
	ctx := b.Context()
	if _, err := CachedCodec(ctx, c, LayerAnalysis, "t1", Bytes{}, fn); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CachedCodec(ctx, c, LayerAnalysis, "t1", Bytes{}, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHitCompare reads hits from the three caches of the eviction
// study, each holding 10,000 512-byte values. bigcache copies the value
// (its hit allocates); the others return the stored slice.
func BenchmarkHitCompare(b *testing.B) {
	const n = 10_000
	keys := benchKeys(n)
	for i, c := range studyCaches(b, n) {
		c.stop()
		b.Run(c.name, func(b *testing.B) {
			c := studyCaches(b, n)[i]
			defer c.stop()
			for _, k := range keys {
				c.set(k, benchValue)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.get(keys[i%n])
				i++
			}
		})
	}
}

// BenchmarkGCWithFullCache measures a full garbage collection while each
// cache holds 200,000 entries of 512 bytes: the cost of pointer-heavy maps.
// ns/op is one runtime.GC; heap-objects is the cache's share of the heap.
func BenchmarkGCWithFullCache(b *testing.B) {
	const n = 200_000
	keys := benchKeys(n)
	makers := []struct {
		name string
		fill func() (keep any, stop func())
	}{
		{"none", func() (any, func()) { return nil, func() {} }},
		{"bigcache layer", func() (any, func()) {
			l, err := newLayer("gc", LayerConfig{TTL: time.Hour, MaxEntries: n, MaxMB: 256})
			if err != nil {
				b.Fatal(err)
			}
			for _, k := range keys {
				_, _ = l.set(k, benchValue, nil)
			}
			return l, func() { _ = l.big.Close() }
		}},
		{"golang-lru", func() (any, func()) {
			c, _ := lru.New[string, []byte](n)
			for _, k := range keys {
				c.Add(k, append([]byte(nil), benchValue...))
			}
			return c, func() {}
		}},
		{"otter", func() (any, func()) {
			c := otter.Must(&otter.Options[string, []byte]{MaximumSize: n})
			for _, k := range keys {
				c.Set(k, append([]byte(nil), benchValue...))
			}
			return c, func() { c.StopAllGoroutines() }
		}},
	}
	for _, m := range makers {
		b.Run(m.name, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			keep, stop := m.fill()
			defer stop()
			runtime.GC()
			runtime.ReadMemStats(&after)
			for b.Loop() {
				runtime.GC()
			}
			b.ReportMetric(float64(int64(after.HeapObjects)-int64(before.HeapObjects)), "heap-objects")
			runtime.KeepAlive(keep)
		})
	}
}
