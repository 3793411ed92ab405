package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allegro/bigcache/v3"
)

// seqBytes is the header of every stored value: the sequence number of the
// Set that stored it, so that the entry cap can tell a key's latest Set
// from an older one (see layer.set).
const seqBytes = 8

// layer is one bigcache with its own TTL, an entry cap, a generation and
// counters.
//
// bigcache caps only bytes, so the entry cap is a FIFO ring of the keys
// set, which matches bigcache's own oldest-first eviction: when the ring is
// full, its oldest key is deleted before a new one is stored. Every live
// entry has its latest Set in the ring, so Len never exceeds MaxEntries.
type layer struct {
	name string
	cfg  LayerConfig
	big  *bigcache.BigCache // nil when the layer is disabled

	// prefix is "<generation>:", prepended to every key. Bumping the
	// generation makes every older entry unreachable at once.
	prefix atomic.Pointer[string]
	gen    atomic.Uint64
	// epoch is bumped by every invalidation of the layer (a key or all),
	// before the entries go. CachedCodec stores a computed value only if the
	// epoch it read before computing is still current.
	epoch atomic.Uint64

	// mu serializes mutations (set, delete, invalidate) so that the ring
	// and bigcache agree. Reads never take it.
	mu   sync.Mutex
	ring *keyRing
	seq  uint64
	buf  []byte // scratch for header+value, under mu (bigcache copies it)

	hits, misses, evictions, expirations, invalidations atomic.Uint64
}

func newLayer(name string, cfg LayerConfig) (*layer, error) {
	l := &layer{name: name, cfg: cfg}
	l.setPrefix(0)
	if cfg.Disabled {
		return l, nil
	}
	shards := shardsFor(cfg.MaxMB)
	// Preallocate about 256 bytes per entry (at most MaxMB); the queues
	// grow up to MaxMB as values arrive.
	entrySize := max(min(256, cfg.MaxMB<<20/cfg.MaxEntries), 32)
	bc := bigcache.Config{
		Shards:             shards,
		LifeWindow:         cfg.TTL,
		CleanWindow:        min(max(cfg.TTL, time.Second), time.Minute),
		MaxEntriesInWindow: cfg.MaxEntries,
		MaxEntrySize:       entrySize,
		HardMaxCacheSize:   cfg.MaxMB,
		Verbose:            false,
		OnRemoveWithReason: func(_ string, _ []byte, reason bigcache.RemoveReason) {
			switch reason {
			case bigcache.Expired:
				l.expirations.Add(1)
			case bigcache.NoSpace:
				l.evictions.Add(1)
			}
		},
	}.OnRemoveFilterSet(bigcache.Expired, bigcache.NoSpace)
	// bigcache's cleanup goroutine ends on Close; it is not given a
	// context because it prints to stdout when one ends.
	big, err := bigcache.New(context.Background(), bc)
	if err != nil {
		return nil, fmt.Errorf("creating cache layer %s: %w", name, err)
	}
	l.big = big
	l.ring = newKeyRing(cfg.MaxEntries)
	return l, nil
}

func (l *layer) setPrefix(gen uint64) {
	p := strconv.FormatUint(gen, 36) + ":"
	l.prefix.Store(&p)
}

// get returns a copy of the value stored under key, or false.
func (l *layer) get(key string) ([]byte, bool) {
	if l.big == nil {
		return nil, false
	}
	v, resp, err := l.big.GetWithInfo(*l.prefix.Load() + key)
	// bigcache's Get serves an expired entry until its cleanup runs;
	// GetWithInfo says so, and it counts as a miss here.
	if err != nil || resp.EntryStatus == bigcache.Expired || len(v) < seqBytes {
		l.misses.Add(1)
		return nil, false
	}
	l.hits.Add(1)
	return v[seqBytes:], true
}

// peek is get without counting a hit or a miss.
func (l *layer) peek(key string) ([]byte, bool) {
	v, resp, err := l.big.GetWithInfo(*l.prefix.Load() + key)
	if err != nil || resp.EntryStatus == bigcache.Expired || len(v) < seqBytes {
		return nil, false
	}
	return v[seqBytes:], true
}

// ErrTooLarge is returned by Set for a value larger than one shard of the
// layer (about MaxMB/shards; see shardsFor).
var ErrTooLarge = errors.New("value is larger than a cache shard")

// set stores value under key. When epoch is not nil, it stores only if
// the layer's epoch still equals *epoch (no invalidation since).
func (l *layer) set(key string, value []byte, epoch *uint64) (stored bool, err error) {
	if l.big == nil {
		return false, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if epoch != nil && l.epoch.Load() != *epoch {
		return false, nil
	}
	full := *l.prefix.Load() + key
	if l.ring.full() {
		l.evictOldest()
	}
	l.seq++
	l.buf = binary.BigEndian.AppendUint64(l.buf[:0], l.seq)
	l.buf = append(l.buf, value...)
	if err := l.big.Set(full, l.buf); err != nil {
		return false, fmt.Errorf("caching %d bytes in layer %s: %w (%w)", len(value), l.name, ErrTooLarge, err)
	}
	if cap(l.buf) > 64<<10 {
		l.buf = nil // don't pin one huge value's buffer
	}
	l.ring.push(full, l.seq)
	return true, nil
}

// evictOldest pops the oldest slot and deletes its key if that slot is the
// key's latest Set (a later Set of the same key has its own slot). l.mu
// is held.
func (l *layer) evictOldest() {
	k, seq := l.ring.pop()
	key := string(k)
	v, err := l.big.Get(key)
	if err != nil || len(v) < seqBytes || binary.BigEndian.Uint64(v) != seq {
		return // gone already (expired, deleted, invalidated) or set again
	}
	if l.big.Delete(key) == nil {
		l.evictions.Add(1)
	}
}

// delete removes one key.
func (l *layer) delete(key string) {
	if l.big == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch.Add(1)
	l.invalidations.Add(1)
	_ = l.big.Delete(*l.prefix.Load() + key) // ErrEntryNotFound is fine
}

// invalidate drops every entry: a new generation makes them unreachable
// at once, then Reset frees their memory.
func (l *layer) invalidate() {
	if l.big == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch.Add(1)
	l.invalidations.Add(1)
	l.setPrefix(l.gen.Add(1))
	_ = l.big.Reset() // always nil
	l.ring.reset()
}

func (l *layer) stats() LayerStats {
	s := LayerStats{
		MaxEntries:    l.cfg.MaxEntries,
		MaxMB:         l.cfg.MaxMB,
		TTLSeconds:    l.cfg.TTL.Seconds(),
		Hits:          l.hits.Load(),
		Misses:        l.misses.Load(),
		Evictions:     l.evictions.Load(),
		Expirations:   l.expirations.Load(),
		Invalidations: l.invalidations.Load(),
		Generation:    l.gen.Load(),
		Disabled:      l.big == nil,
	}
	if l.big != nil {
		s.Entries = l.big.Len()
		s.Collisions = l.big.Stats().Collisions
		s.SizeBytes = int64(l.big.Capacity())
		s.SizeMB = float64(s.SizeBytes) / (1 << 20)
		s.TotalSizeMB = s.SizeMB
	}
	if n := s.Hits + s.Misses; n > 0 {
		s.HitRate = float64(s.Hits) / float64(n)
	}
	return s
}
