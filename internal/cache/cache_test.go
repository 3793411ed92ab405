package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestCache builds a cache closed when the test ends.
func newTestCache(t testing.TB, cfg Config, nc *nats.Conn) *Cache {
	t.Helper()
	c, err := New(cfg, nc, discard())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustGet(t *testing.T, c *Cache, layer, key string) []byte {
	t.Helper()
	v, ok := c.Get(layer, key)
	if !ok {
		t.Fatalf("Get(%q, %q) missed, want a hit", layer, key)
	}
	return v
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	// The defaults for the query and general layers.
	if cfg.Query.TTL != 30*time.Minute || cfg.Query.MaxEntries != 5000 {
		t.Errorf("query layer = %+v, want TTL 30m and 5,000 entries", cfg.Query)
	}
	if cfg.General.TTL != 3600*time.Second || cfg.General.MaxEntries != 1000 {
		t.Errorf("general layer = %+v, want TTL 3600s and 1,000 entries", cfg.General)
	}
	// A zero Config takes the defaults.
	var zero Config
	zero.setDefaults()
	if diff := cmp.Diff(cfg, zero); diff != "" {
		t.Errorf("zero Config after setDefaults (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"TTL under a second", func(c *Config) { c.Tests.TTL = 500 * time.Millisecond }, "tests: TTL"},
		{"negative entries", func(c *Config) { c.Query.MaxEntries = -1 }, "query: max entries"},
		{"negative size", func(c *Config) { c.General.MaxMB = -1 }, "general: max size"},
		{"disabled layer is not checked", func(c *Config) { c.Analysis = LayerConfig{Disabled: true, TTL: -1} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestShardsFor(t *testing.T) {
	tests := []struct{ mb, want int }{{1, 4}, {2, 8}, {4, 16}, {8, 32}, {64, 32}}
	for _, tt := range tests {
		if got := shardsFor(tt.mb); got != tt.want {
			t.Errorf("shardsFor(%d) = %d, want %d", tt.mb, got, tt.want)
		}
	}
}

func TestGetSetDelete(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	for _, layer := range Layers {
		if err := c.Set(layer, "k", []byte("v-"+layer)); err != nil {
			t.Fatalf("Set(%q): %v", layer, err)
		}
	}
	// Layers are separate: the same key holds a value per layer.
	for _, layer := range Layers {
		if got := mustGet(t, c, layer, "k"); string(got) != "v-"+layer {
			t.Errorf("Get(%q, k) = %q, want %q", layer, got, "v-"+layer)
		}
	}
	// The value returned is the caller's copy.
	v := mustGet(t, c, LayerTests, "k")
	v[0] = 'X'
	if got := mustGet(t, c, LayerTests, "k"); string(got) != "v-tests" {
		t.Errorf("after changing a returned value, Get = %q, want v-tests", got)
	}

	if err := c.Delete(LayerTests, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := c.Get(LayerTests, "k"); ok {
		t.Error("Get after Delete hit, want a miss")
	}
	if got := mustGet(t, c, LayerQuery, "k"); string(got) != "v-query" {
		t.Errorf("Delete of a tests key changed the query layer: %q", got)
	}

	if err := c.Set("nope", "k", nil); !errors.Is(err, ErrUnknownLayer) {
		t.Errorf("Set(unknown layer) = %v, want ErrUnknownLayer", err)
	}
	if err := c.Delete("nope", "k"); !errors.Is(err, ErrUnknownLayer) {
		t.Errorf("Delete(unknown layer) = %v, want ErrUnknownLayer", err)
	}
	if _, ok := c.Get("nope", "k"); ok {
		t.Error("Get(unknown layer) hit")
	}
}

func TestInvalidateCategoryAndClear(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	fill := func() {
		for _, layer := range Layers {
			for i := range 10 {
				if err := c.Set(layer, fmt.Sprint(i), []byte("v")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	fill()
	if err := c.InvalidateCategory(LayerQuery); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	for _, layer := range Layers {
		want := 10
		if layer == LayerQuery {
			want = 0
		}
		if st[layer].Entries != want {
			t.Errorf("after InvalidateCategory(query), %s has %d entries, want %d", layer, st[layer].Entries, want)
		}
	}
	if st[LayerQuery].Generation != 1 {
		t.Errorf("query generation = %d, want 1", st[LayerQuery].Generation)
	}
	// The layer works after an invalidation.
	if err := c.Set(LayerQuery, "new", []byte("n")); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, LayerQuery, "new")

	fill()
	if err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	for layer, s := range c.Stats() {
		if s.Entries != 0 {
			t.Errorf("after Clear, %s has %d entries", layer, s.Entries)
		}
		if _, ok := c.Get(layer, "1"); ok {
			t.Errorf("after Clear, Get(%s, 1) hit", layer)
		}
	}
}

func TestTooLarge(t *testing.T) {
	c := newTestCache(t, Config{Query: LayerConfig{MaxMB: 1}}, nil) // 4 shards of 256 KiB
	if err := c.Set(LayerQuery, "big", make([]byte, 300<<10)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Set of 300 KiB into a 1 MB layer = %v, want ErrTooLarge", err)
	}
	if err := c.Set(LayerQuery, "fits", make([]byte, 200<<10)); err != nil {
		t.Errorf("Set of 200 KiB into a 1 MB layer = %v", err)
	}
	mustGet(t, c, LayerQuery, "fits")
}

func TestTTL(t *testing.T) {
	c := newTestCache(t, Config{General: LayerConfig{TTL: time.Second}}, nil)
	start := time.Now()
	if err := c.Set(LayerGeneral, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, LayerGeneral, "k")
	// bigcache reads its own clock: poll for the expiry.
	eventually(t, 5*time.Second, "entry with a 1s TTL no longer served", func() bool {
		_, ok := c.Get(LayerGeneral, "k")
		return !ok
	})
	if age := time.Since(start); age < time.Second {
		t.Errorf("entry with a 1s TTL expired after %v", age)
	}
}

func TestDisabledLayer(t *testing.T) {
	c := newTestCache(t, Config{Analysis: LayerConfig{Disabled: true}}, nil)
	if err := c.Set(LayerAnalysis, "k", []byte("v")); err != nil {
		t.Fatalf("Set on a disabled layer: %v", err)
	}
	if _, ok := c.Get(LayerAnalysis, "k"); ok {
		t.Error("a disabled layer hit")
	}
	if !c.Stats()[LayerAnalysis].Disabled {
		t.Error("Stats does not mark the layer disabled")
	}
}

// TestFlood floods a layer with ten times its capacity of distinct keys:
// it must stay within its entry and size caps.
func TestFlood(t *testing.T) {
	tests := []struct {
		name       string
		maxEntries int
		valueSize  int
		// bytesBind: the size cap, not the entry cap, limits the layer.
		bytesBind bool
	}{
		{"entry cap binds", 1000, 100, false},
		{"size cap binds", 1000, 4000, true},
		{"one entry", 1, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config{Query: LayerConfig{MaxEntries: tt.maxEntries, MaxMB: 1}}, nil)
			value := bytes.Repeat([]byte("x"), tt.valueSize)
			n := 10 * tt.maxEntries
			for i := range n {
				if err := c.Set(LayerQuery, fmt.Sprintf("key-%d", i), value); err != nil {
					t.Fatalf("Set #%d: %v", i, err)
				}
				if i%97 == 0 {
					if e := c.Stats()[LayerQuery].Entries; e > tt.maxEntries {
						t.Fatalf("after %d sets, %d entries, want <= %d", i+1, e, tt.maxEntries)
					}
				}
			}
			s := c.Stats()[LayerQuery]
			if s.Entries > tt.maxEntries || s.Entries == 0 {
				t.Errorf("entries = %d, want 1..%d", s.Entries, tt.maxEntries)
			}
			if s.SizeBytes > 1<<20 {
				t.Errorf("size = %d bytes, want <= 1 MiB", s.SizeBytes)
			}
			if !tt.bytesBind && s.Entries != tt.maxEntries {
				t.Errorf("entries = %d, want the cap %d (the size cap should not bind)", s.Entries, tt.maxEntries)
			}
			if tt.bytesBind && s.Entries >= tt.maxEntries {
				t.Errorf("entries = %d, want < %d with %d-byte values in 1 MB", s.Entries, tt.maxEntries, tt.valueSize)
			}
			if got := uint64(s.Entries) + s.Evictions; got != uint64(n) {
				t.Errorf("entries + evictions = %d, want the %d sets", got, n)
			}
			// The newest key survives FIFO eviction, the oldest does not.
			mustGet(t, c, LayerQuery, fmt.Sprintf("key-%d", n-1))
			if _, ok := c.Get(LayerQuery, "key-0"); ok {
				t.Error("the oldest key survived the flood")
			}
		})
	}
}

// TestEntryCapAfterOverwrite checks that setting one key again does not
// shrink the layer: the older slot of the key is skipped, not evicted.
func TestEntryCapAfterOverwrite(t *testing.T) {
	c := newTestCache(t, Config{Query: LayerConfig{MaxEntries: 3}}, nil)
	set := func(k, v string) {
		t.Helper()
		if err := c.Set(LayerQuery, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	set("a", "1")
	set("b", "1")
	set("a", "2") // ring: a1 b1 a2
	set("c", "1") // pops a1, a stale slot: a2 stays
	if got := mustGet(t, c, LayerQuery, "a"); string(got) != "2" {
		t.Errorf("Get(a) = %q, want 2", got)
	}
	mustGet(t, c, LayerQuery, "b")
	mustGet(t, c, LayerQuery, "c")
	set("d", "1") // pops b1
	if _, ok := c.Get(LayerQuery, "b"); ok {
		t.Error("b survived, want it evicted as the oldest")
	}
	if e := c.Stats()[LayerQuery].Entries; e != 3 {
		t.Errorf("entries = %d, want 3", e)
	}
}

func TestStats(t *testing.T) {
	c := newTestCache(t, Config{Tests: LayerConfig{MaxEntries: 2}}, nil)
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(LayerTests, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	c.Get(LayerTests, "a") // evicted: miss
	c.Get(LayerTests, "b")
	c.Get(LayerTests, "c")
	c.Get(LayerTests, "c")
	if err := c.Delete(LayerTests, "c"); err != nil {
		t.Fatal(err)
	}
	got := c.Stats()[LayerTests]
	want := LayerStats{
		Entries: 1, MaxEntries: 2, Hits: 3, Misses: 1, HitRate: 0.75, Evictions: 1,
		Invalidations: 1, MaxMB: 16, TTLSeconds: 300,
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		f := p.Last().String()
		return f == ".SizeBytes" || f == ".SizeMB" || f == ".TotalSizeMB"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("Stats()[tests] (-want +got):\n%s", diff)
	}
	if got.SizeBytes <= 0 || got.SizeBytes > 16<<20 {
		t.Errorf("size = %d bytes, want within (0, 16 MiB]", got.SizeBytes)
	}
	if got.TotalSizeMB != got.SizeMB || got.SizeMB != float64(got.SizeBytes)/(1<<20) {
		t.Errorf("size_mb %v, total_size_mb %v, want both %d bytes in MiB", got.SizeMB, got.TotalSizeMB, got.SizeBytes)
	}
	// The admin endpoint serves Stats as JSON with snake_case fields.
	j, err := json.Marshal(c.Stats())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"tests":{`, `"hit_rate":0.75`, `"size_bytes":`, `"total_size_mb":`, `"max_entries":2`} {
		if !strings.Contains(string(j), f) {
			t.Errorf("Stats JSON lacks %s: %s", f, j)
		}
	}
}

func TestCollector(t *testing.T) {
	c := newTestCache(t, Config{}, nil)
	if err := c.Set(LayerQuery, "a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	c.Get(LayerQuery, "a")
	c.Get(LayerQuery, "b")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP abacus_cache_hits_total Cache reads that found a live entry.
# TYPE abacus_cache_hits_total counter
abacus_cache_hits_total{layer="analysis"} 0
abacus_cache_hits_total{layer="general"} 0
abacus_cache_hits_total{layer="query"} 1
abacus_cache_hits_total{layer="tests"} 0
# HELP abacus_cache_misses_total Cache reads that found no live entry.
# TYPE abacus_cache_misses_total counter
abacus_cache_misses_total{layer="analysis"} 0
abacus_cache_misses_total{layer="general"} 0
abacus_cache_misses_total{layer="query"} 1
abacus_cache_misses_total{layer="tests"} 0
# HELP abacus_cache_entries Entries in the cache, expired ones not yet cleaned up included.
# TYPE abacus_cache_entries gauge
abacus_cache_entries{layer="analysis"} 0
abacus_cache_entries{layer="general"} 0
abacus_cache_entries{layer="query"} 1
abacus_cache_entries{layer="tests"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"abacus_cache_hits_total", "abacus_cache_misses_total", "abacus_cache_entries"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	if want := 8 * len(Layers); n != want {
		t.Errorf("%d metrics, want %d (8 per layer)", n, want)
	}
}

func TestCloseTwice(t *testing.T) {
	c, err := New(Config{}, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
