package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownLayer is returned for a layer name that is not one of Layers.
var ErrUnknownLayer = errors.New("unknown cache layer")

// Cache is the in-process cache of one replica: one bigcache per layer,
// kept consistent with the other replicas by invalidation messages over
// NATS. It is safe for concurrent use.
type Cache struct {
	cfg     Config
	layers  map[string]*layer // fixed by New
	log     *slog.Logger
	flights singleflight.Group

	nc     *nats.Conn // nil: invalidations stay local
	sub    *nats.Subscription
	origin string // this instance's id in invalidation messages

	closed    atomic.Bool
	closeOnce sync.Once
}

// New builds the layers of cfg. With nc not nil it subscribes to cfg.Subject
// for invalidations from other replicas (until Close) and chains a
// reconnect handler onto nc that clears every layer (see the package
// documentation). A nil nc keeps invalidations local, for a single
// replica. Close the cache to free its memory and stop its goroutines.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Cache, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails
	c := &Cache{
		cfg:    cfg,
		layers: make(map[string]*layer, len(Layers)),
		log:    log,
		nc:     nc,
		origin: hex.EncodeToString(id[:]),
	}
	for name, lc := range cfg.layers() {
		l, err := newLayer(name, *lc)
		if err != nil {
			c.closeLayers()
			return nil, err
		}
		c.layers[name] = l
	}
	if nc != nil {
		if err := c.subscribe(); err != nil {
			c.closeLayers()
			return nil, err
		}
	}
	log.Info("cache started", "subject", cfg.Subject, "distributed", nc != nil,
		"tests_max_entries", cfg.Tests.MaxEntries, "analysis_ttl", cfg.Analysis.TTL,
		"query_max_entries", cfg.Query.MaxEntries, "general_ttl", cfg.General.TTL)
	return c, nil
}

func (c *Cache) layer(name string) (*layer, error) {
	l, ok := c.layers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownLayer, name)
	}
	return l, nil
}

// Get returns a copy of the value stored under key in layer, or false on a
// miss (also for an unknown layer).
func (c *Cache) Get(layer, key string) ([]byte, bool) {
	l, ok := c.layers[layer]
	if !ok {
		return nil, false
	}
	return l.get(key)
}

// Set stores value under key in layer, evicting the layer's oldest entry
// when it is full; a value larger than a shard is refused with ErrTooLarge. A value read from a source before an invalidation and
// set after it stays until its TTL: to cache a computed value safely, use
// CachedCodec, which checks for invalidations in between.
func (c *Cache) Set(layer, key string, value []byte) error {
	l, err := c.layer(layer)
	if err != nil {
		return err
	}
	_, err = l.set(key, value, nil)
	return err
}

// Delete removes key from layer here and, through NATS, on every other
// replica. The local delete has happened when Delete returns; an error
// means the message could not be published.
func (c *Cache) Delete(layer, key string) error {
	l, err := c.layer(layer)
	if err != nil {
		return err
	}
	l.delete(key)
	return c.broadcast(invalidation{Layer: layer, Key: &key})
}

// InvalidateCategory removes every entry of layer here and on every other
// replica.
func (c *Cache) InvalidateCategory(layer string) error {
	l, err := c.layer(layer)
	if err != nil {
		return err
	}
	l.invalidate()
	return c.broadcast(invalidation{Layer: layer})
}

// Clear removes every entry of every layer here and on every other replica.
func (c *Cache) Clear() error {
	c.clearLocal()
	return c.broadcast(invalidation{Layer: allLayers})
}

func (c *Cache) clearLocal() {
	for _, l := range c.layers {
		l.invalidate()
	}
}

// LayerStats describes one layer, for GET /api/admin/cache/stats.
type LayerStats struct {
	Entries    int `json:"entries"`
	MaxEntries int `json:"max_entries"`
	// Hits and Misses count Get calls (CachedCodec included) since New; an
	// expired entry is a miss.
	Hits    uint64  `json:"hits"`
	Misses  uint64  `json:"misses"`
	HitRate float64 `json:"hit_rate"`
	// Evictions counts entries removed to make room (entry or size cap),
	// Expirations those removed by the TTL cleanup, Invalidations the
	// Delete, InvalidateCategory and Clear calls applied (local or remote).
	Evictions     uint64 `json:"evictions"`
	Expirations   uint64 `json:"expirations"`
	Invalidations uint64 `json:"invalidations"`
	// SizeBytes is the memory held by the layer's byte queues (bigcache
	// Capacity), at most MaxMB; the key index adds about 12 bytes per entry.
	SizeBytes int64   `json:"size_bytes"`
	SizeMB    float64 `json:"size_mb"`
	// TotalSizeMB is SizeMB under the seed's name, for its clients.
	TotalSizeMB float64 `json:"total_size_mb"`
	MaxMB       int     `json:"max_mb"`
	TTLSeconds  float64 `json:"ttl_seconds"`
	// Collisions counts reads that found another key with the same 64-bit
	// hash (bigcache keeps one of them); each is also a miss.
	Collisions int64 `json:"collisions"`
	// Generation counts the layer's invalidations of all entries.
	Generation uint64 `json:"generation"`
	Disabled   bool   `json:"disabled,omitempty"`
}

// Stats returns the statistics of every layer, by layer name.
func (c *Cache) Stats() map[string]LayerStats {
	out := make(map[string]LayerStats, len(c.layers))
	for name, l := range c.layers {
		out[name] = l.stats()
	}
	return out
}

// Close unsubscribes from invalidations and frees the layers; the
// reconnect handler chained by New stays on the connection and does
// nothing. The cache must not be used afterwards. Close is idempotent.
func (c *Cache) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.sub != nil {
			if uerr := c.sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
				err = fmt.Errorf("unsubscribing from cache invalidations: %w", uerr)
			}
		}
		c.closeLayers()
	})
	return err
}

func (c *Cache) closeLayers() {
	for _, l := range c.layers {
		if l.big != nil {
			_ = l.big.Close() // always nil
		}
	}
}
