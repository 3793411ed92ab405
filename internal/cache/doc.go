// Package cache is Abacus's in-process cache for hot reads: one bigcache
// per layer, each with its own TTL, entry cap and size cap, with
// statistics, a memoizing helper with stampede protection, and
// invalidation across replicas over NATS.
//
// # Layers
//
// bigcache has one LifeWindow per cache, so each layer is its own bigcache
// (see Config for defaults and the environment variables they come from):
//
//   - tests: test definitions for the assign path. Every change to a test
//     must Delete its entry; the TTL (5 min) only bounds the damage of a
//     lost invalidation.
//   - analysis: the latest analysis results; the TTL follows the analyzer
//     interval (60 s by default).
//   - query: dashboard and list queries; 30 min, 5,000 entries.
//   - general: everything else; 3600 s, 1,000 entries.
//
// Each bigcache is sized from the layer's MaxEntries and MaxMB (bigcache's
// default configuration preallocates about 300 MB): HardMaxCacheSize is
// MaxMB, MaxEntriesInWindow is MaxEntries, about 256 bytes per entry are
// preallocated and the queues grow up to MaxMB. The shard count (at most
// 32) keeps each shard at 256 KiB or more, because no value can be larger
// than a shard: a 1 MB layer takes values up to about 256 KiB.
//
// An entry is served for TTL to TTL+1s (bigcache counts whole seconds).
// bigcache's Get returns an expired entry until its cleanup goroutine
// removes it; the layers read with GetWithInfo and treat that as a miss.
//
// bigcache caps bytes, not entries. The entry cap is a FIFO ring of the
// keys set (ring.go), evicting oldest-first like bigcache itself; it holds
// no pointer per key. Sets take a per-layer mutex so that the ring and
// bigcache agree; reads never do.
//
// # Invalidation
//
// Delete removes one key, InvalidateCategory one layer and Clear every
// layer. bigcache has no prefix delete, so every stored key starts with the
// layer's generation: InvalidateCategory bumps it, which makes every older
// entry unreachable at once, then resets the bigcache to free the memory.
// Each invalidation also bumps the layer's epoch, and CachedCodec stores a
// computed value only if no invalidation happened while it computed: a
// value read from the source before a change and finished after its
// invalidation is returned but never cached.
//
// Every invalidation is applied locally, then published on
// SubjectInvalidate (NATS core pub/sub) as JSON naming the layer ("all"
// for Clear) and, for Delete, the key. Other replicas apply it; a replica
// skips its own messages, and applying one twice is harmless. In tests a
// Delete on one replica is visible to reads on another within a few
// milliseconds (the requirement is one second). New waits for the server
// to confirm the subscription, so that invalidations published right after
// New are not lost; in a NATS cluster a new subscription still takes a
// moment to propagate to the other servers.
//
// NATS core delivers at most once: invalidations published while a
// replica is disconnected are lost. New therefore chains a reconnect
// handler onto the connection (keeping the one already set, which eventbus
// uses for logging) that clears every layer of the replica when the
// connection comes back. Every layer takes invalidations, so every layer
// is cleared; a reconnect is rare and refilling costs one source read per
// hot key. Whatever still slips through (a message dropped by a slow
// consumer, a publish that failed: Delete returns that error) is bounded
// by the layer's TTL. Code that calls SetReconnectHandler on the
// connection after New replaces the handler and loses this.
//
// # CachedCodec
//
// CachedCodec (the seed's @cached decorator) returns the value cached
// under a key, built from the function's arguments with Key, or computes
// it; the API caches its JSON answers as they are (codec Bytes). Per
// replica, one computation per layer and key runs at a time
// (singleflight), and its callers each decode their own copy; errors are
// not cached.
//
// # Eviction policy: FIFO (bigcache) against LRU and W-TinyLFU
//
// The seed asked for LRU; bigcache evicts the oldest entry by insertion.
// TestZipfHitRatios replays Zipf traces (P(rank k) ∝ 1/k^s; 1M requests
// over 100k keys; hit ratio over the second half, after warm-up) against a
// layer, hashicorp/golang-lru/v2 and otter/v2 holding 1%, 5% and 10% of
// the keys:
//
//	| s   | capacity     | bigcache layer (FIFO) | golang-lru/v2 (LRU) | otter/v2 (W-TinyLFU) |
//	| 1.1 | 1% (1,000)   | 0.626                 | 0.666               | 0.713                |
//	| 1.1 | 5% (5,000)   | 0.762                 | 0.793               | 0.837                |
//	| 1.1 | 10% (10,000) | 0.817                 | 0.844               | 0.870                |
//	| 0.9 | 1% (1,000)   | 0.305                 | 0.341               | 0.444                |
//	| 0.9 | 5% (5,000)   | 0.473                 | 0.514               | 0.608                |
//	| 0.9 | 10% (10,000) | 0.562                 | 0.604               | 0.682                |
//
// The trace is seeded, so the first two columns repeat exactly; otter's
// move by up to 0.02 between runs (0.734 for s=1.1 at 1% in another run).
// FIFO trails LRU by 3-4 points and otter by 5-14 points; with twice the
// entries FIFO beats LRU (0.817 at 10% against 0.793 at 5%) but not otter.
//
// Cost (bench_test.go, 2-core machine shared with other work; medians of
// -count 3, with the range over three such runs in brackets): a layer hit
// of a 512-byte value takes 0.57 µs [0.55-1.0] with 3 allocations
// (bigcache copies the value and the key it compares; the generation
// prefix is the third), a miss 0.13 µs with 1, a Set into a full layer
// (which evicts) 0.88 µs [0.88-1.3] with 4. golang-lru and otter return
// the stored slice in 36 and 52 ns without allocating; but the copy is
// small next to the request around it (a CachedCodec hit of a 28-byte
// JSON answer with Bytes, as the API calls it: 0.21 µs [0.21-0.29, one
// run of -count 3], 3 allocations). The garbage collector is where they differ: with
// 200,000 entries of 512 bytes, a full GC took 4.6 ms with a layer (1,340
// heap objects) against 4.1 ms with no cache, 25 ms with otter and 49 ms
// with golang-lru (about 400,000 heap objects each), and that work recurs
// on every GC cycle of the API process.
//
// Choice, per layer: bigcache for all four.
//
//   - tests and analysis: their working sets (one entry per test, one per
//     running test) fit within the caps (10,000 and 2,000), so the
//     eviction policy hardly matters and TTL and invalidation decide.
//   - general: 1,000 small entries; the policy's few points do not pay
//     for a second cache implementation.
//   - query: the one layer where the difference can be large, because a
//     miss is a ClickHouse query and list/dashboard keys can have a long
//     tail: at 10% capacity otter has 25-29% fewer misses than FIFO. Its
//     stats show it (hit_rate with evictions climbing): the first remedy
//     is more entries (CACHE_QUERY_SIZE), which bigcache keeps off the
//     GC's books; if memory is tight, this layer is the one to move to
//     otter/v2 (ExpiryWriting for the TTL, a Weigher for MaxMB).
//
// # Goroutines
//
// Each layer's bigcache runs a cleanup goroutine every min(TTL, 1 min)
// (at least 1 s); Close ends them. The NATS subscription's callback runs
// on nats.go's goroutine until Close unsubscribes. A CachedCodec computation
// whose callers have all given up runs to completion on its own goroutine.
//
// # Locks
//
// Each layer has one mutex (layer.mu) for its mutations; no code holds two
// layers' mutexes at once. bigcache calls back into the layer (eviction
// counters) under its shard locks; the callback only touches atomics.
package cache
