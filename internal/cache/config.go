package cache

import (
	"fmt"
	"time"
)

// Layer names. Each layer is one bigcache with its own TTL and limits.
const (
	// LayerTests holds test definitions for the assign path. Every change
	// to a test invalidates its entry (Delete) on every replica.
	LayerTests = "tests"
	// LayerAnalysis holds the latest analysis results; its TTL follows
	// the analyzer interval.
	LayerAnalysis = "analysis"
	// LayerQuery holds dashboard and list query results.
	LayerQuery = "query"
	// LayerGeneral holds everything else.
	LayerGeneral = "general"
)

// Layers lists the layer names in a fixed order.
var Layers = []string{LayerTests, LayerAnalysis, LayerQuery, LayerGeneral}

// LayerConfig sizes one layer.
type LayerConfig struct {
	// TTL is how long an entry is served after it was set. bigcache
	// counts whole seconds, so an entry is served for TTL to TTL+1s; TTL
	// must be at least 1s.
	TTL time.Duration
	// MaxEntries caps the number of entries; the oldest entry (by
	// insertion) makes room for a new one.
	MaxEntries int
	// MaxMB caps the memory of the layer's byte queues (bigcache
	// HardMaxCacheSize), at least 1. A single value may be at most about
	// MaxMB divided by the layer's shard count (see shardsFor).
	MaxMB int
	// Disabled turns the layer off: Get misses, Set does nothing and
	// CachedCodec always computes.
	Disabled bool
}

// Config sizes every layer. The wiring reads it from the environment; the
// variable each field comes from is named beside it. A zero field takes
// its default (DefaultConfig).
type Config struct {
	// Tests: CACHE_TESTS_TTL, CACHE_TESTS_SIZE (entries), CACHE_TESTS_MAX_MB.
	// Default 5 min, 10,000 entries, 16 MB. The TTL only bounds how long a
	// lost invalidation can leave an entry stale.
	Tests LayerConfig
	// Analysis: CACHE_ANALYSIS_TTL (the wiring should default it to
	// ANALYSIS_INTERVAL), CACHE_ANALYSIS_SIZE, CACHE_ANALYSIS_MAX_MB.
	// Default 60 s (the analyzer's default interval), 2,000 entries, 64 MB.
	Analysis LayerConfig
	// Query: CACHE_QUERY_TTL, CACHE_QUERY_SIZE (entries), CACHE_QUERY_MAX_MB.
	// Default 30 min, 5,000 entries, 32 MB.
	Query LayerConfig
	// General: CACHE_DEFAULT_TTL, CACHE_GENERAL_SIZE (entries),
	// CACHE_GENERAL_MAX_MB. Default 3600 s, 1,000 entries, 16 MB.
	General LayerConfig
	// Subject carries invalidations between replicas; default
	// SubjectInvalidate.
	Subject string
}

// DefaultConfig returns the default size of every layer.
func DefaultConfig() Config {
	return Config{
		Tests:    LayerConfig{TTL: 5 * time.Minute, MaxEntries: 10_000, MaxMB: 16},
		Analysis: LayerConfig{TTL: time.Minute, MaxEntries: 2_000, MaxMB: 64},
		Query:    LayerConfig{TTL: 30 * time.Minute, MaxEntries: 5_000, MaxMB: 32},
		General:  LayerConfig{TTL: 3600 * time.Second, MaxEntries: 1_000, MaxMB: 16},
		Subject:  SubjectInvalidate,
	}
}

// layers returns the layer configs by name.
func (c *Config) layers() map[string]*LayerConfig {
	return map[string]*LayerConfig{
		LayerTests:    &c.Tests,
		LayerAnalysis: &c.Analysis,
		LayerQuery:    &c.Query,
		LayerGeneral:  &c.General,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	def := d.layers()
	for name, l := range c.layers() {
		if l.TTL == 0 {
			l.TTL = def[name].TTL
		}
		if l.MaxEntries == 0 {
			l.MaxEntries = def[name].MaxEntries
		}
		if l.MaxMB == 0 {
			l.MaxMB = def[name].MaxMB
		}
	}
	if c.Subject == "" {
		c.Subject = d.Subject
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	for _, name := range Layers {
		l := c.layers()[name]
		if l.Disabled {
			continue
		}
		switch {
		case l.TTL < time.Second:
			return fmt.Errorf("cache layer %s: TTL %v: want at least 1s", name, l.TTL)
		case l.MaxEntries < 1:
			return fmt.Errorf("cache layer %s: max entries %d: want at least 1", name, l.MaxEntries)
		case l.MaxMB < 1:
			return fmt.Errorf("cache layer %s: max size %d MB: want at least 1", name, l.MaxMB)
		}
	}
	if c.Subject == "" {
		return fmt.Errorf("cache invalidation subject is empty")
	}
	return nil
}

// shardsFor picks a power-of-two shard count for a layer of maxMB: at most
// 32 (plenty for a few cores), and few enough that each shard holds at
// least 256 KiB, since no single value can exceed one shard.
func shardsFor(maxMB int) int {
	n := 32
	for n > 1 && maxMB<<20/n < 256<<10 {
		n /= 2
	}
	return n
}
