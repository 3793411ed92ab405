package ratelimit

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBucket is the JetStream KV bucket of a distributed Limiter's state.
const DefaultBucket = "AB_RATELIMIT"

// Config configures a Limiter. The zero value is usable.
type Config struct {
	// Shards is the number of independently locked parts of the client
	// table, rounded up to a power of two (default 256).
	Shards int
	// MaxEntries caps the clients held in memory (default 1<<20). At the
	// cap, a new client evicts an idle one, or else the sampled client
	// closest to idle, which forgets that client's usage.
	MaxEntries int
	// SweepInterval is how often Run drops idle clients (default 1m).
	SweepInterval time.Duration
	// Now is the clock the windows run on (default time.Now); tests move it
	// instead of sleeping.
	Now func() time.Time

	// The rest applies to NewDistributed only.

	// Bucket is the JetStream KV bucket of the shared state (default
	// DefaultBucket).
	Bucket string
	// BucketTTL is how long the bucket keeps a client's state after its last
	// update (default 25h). It must be at least the longest window's period.
	BucketTTL time.Duration
	// BucketMaxBytes bounds the bucket's memory (default 256 MiB); when it
	// is full, new clients are limited locally.
	BucketMaxBytes int64
	// Replicas of the bucket (default 1; 3 in a NATS cluster).
	Replicas int
	// LeaseTTL is how long a replica may serve tokens it reserved in the
	// shared state (default 500ms). Unused tokens are then dropped.
	LeaseTTL time.Duration
	// LeaseFraction caps a lease at max(1, limit × LeaseFraction) tokens
	// per window (default 0.01). It bounds the over-admission across
	// replicas; see the package documentation.
	LeaseFraction float64
	// RemoteTimeout bounds one reservation in the shared state, including
	// its retries after conflicts (default 250ms).
	RemoteTimeout time.Duration
	// RemoteBackoff is how long the limiter decides locally after the
	// shared state failed to answer (default 1s).
	RemoteBackoff time.Duration
}

func (c *Config) setDefaults() {
	if c.Shards == 0 {
		c.Shards = 256
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = 1 << 20
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.BucketTTL == 0 {
		c.BucketTTL = 25 * time.Hour
	}
	if c.BucketMaxBytes == 0 {
		c.BucketMaxBytes = 256 << 20
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 500 * time.Millisecond
	}
	if c.LeaseFraction == 0 {
		c.LeaseFraction = 0.01
	}
	if c.RemoteTimeout == 0 {
		c.RemoteTimeout = 250 * time.Millisecond
	}
	if c.RemoteBackoff == 0 {
		c.RemoteBackoff = time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Shards < 1 || c.Shards > 1<<16:
		return errors.New("rate limit shards must be in [1, 65536]")
	case c.MaxEntries < c.Shards:
		return errors.New("rate limit max entries must be at least the number of shards")
	case c.SweepInterval < 0 || c.BucketTTL < 0 || c.LeaseTTL < 0 || c.RemoteTimeout < 0 || c.RemoteBackoff < 0:
		return errors.New("rate limit durations must not be negative")
	case !(c.LeaseFraction > 0 && c.LeaseFraction <= 1):
		return errors.New("rate limit lease fraction must be in (0, 1]")
	}
	return nil
}

// Limiter enforces Plans per client. Its methods are safe for concurrent
// use. Each client's state lives in one shard; a shard's mutex is the only
// lock held while deciding, and no lock is held during network calls. The
// mutexes (regMu, each shard's mu) are never held together.
type Limiter struct {
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	seed   maphash.Seed
	shards []shard
	mask   uint64
	// shardCap is MaxEntries / len(shards).
	shardCap int

	regMu       sync.Mutex
	slotIDs     map[string]uint32
	slotPeriods []time.Duration

	remote *remote // nil for a local-only Limiter

	evicted   atomic.Uint64
	forced    atomic.Uint64
	fallbacks atomic.Uint64

	// sweepTicks, set by tests before Run, drives the sweeps instead of a
	// SweepInterval ticker.
	sweepTicks <-chan time.Time
}

type shard struct {
	mu sync.Mutex
	// m maps a client key's seeded 64-bit hash to its state.
	m map[uint64]entry
	// Keep neighbouring shards' mutexes on separate cache lines.
	_ [48]byte
}

// entry is one client's state.
type entry struct {
	// slots holds the local GCRA state of each policy window the client
	// used, by slot id.
	slots []slot
	// lease is the distributed state; nil for a local-only Limiter.
	lease *lease
}

type slot struct {
	id uint32
	// tat is the theoretical arrival time (unix ns): the window is full
	// again at tat and admits nothing more while tat+t > now+span.
	tat int64
}

// idle reports whether dropping e changes no decision: every window is
// full and no reserved tokens or reservation are pending.
func (e *entry) idle(now int64) bool {
	for i := range e.slots {
		if e.slots[i].tat > now {
			return false
		}
	}
	return e.lease == nil || e.lease.idle(now)
}

// expiry is the latest TAT of e, to choose whom to evict at the cap.
func (e *entry) expiry() int64 {
	var x int64
	for i := range e.slots {
		x = max(x, e.slots[i].tat)
	}
	return x
}

// New returns a local-only Limiter: its limits hold for the clients of
// this process. Call Run to drop idle clients periodically.
func New(cfg Config, log *slog.Logger) (*Limiter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := 1
	for n < cfg.Shards {
		n <<= 1
	}
	l := &Limiter{
		cfg:      cfg,
		now:      cfg.Now,
		log:      log,
		seed:     maphash.MakeSeed(),
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
		shardCap: max(cfg.MaxEntries/n, 1),
		slotIDs:  map[string]uint32{},
	}
	for i := range l.shards {
		l.shards[i].m = make(map[uint64]entry)
	}
	return l, nil
}

// Allow decides one request of the client key (an API key id, an IP with
// a prefix of the caller's choosing) under plan p, which must come from
// l.Plan, with the client's
// multiplier (the API key's rate_limit_multiplier; 0 means 1). An admitted
// request consumes one token from every window of p; a denied one consumes
// nothing. A distributed Limiter may block for up to Config.RemoteTimeout
// when it reserves tokens in the shared state; it never fails a request
// because NATS is unreachable.
func (l *Limiter) Allow(ctx context.Context, p *Plan, key string, multiplier float64) (d Decision) {
	var gs [MaxWindows]gcra
	m := normMultiplier(multiplier)
	for i := range p.slots {
		s := &p.slots[i]
		gs[i] = newGCRA(effectiveLimit(s.limit, m), s.period)
	}
	if l.remote != nil {
		l.allowShared(ctx, &d, p, key, &gs)
		return d
	}
	h := l.hash(key)
	sh := l.shard(h)
	now := l.now().UnixNano()
	sh.mu.Lock()
	var idx [MaxWindows]int
	e := l.lookup(sh, h, p, &idx, now)
	decideLocal(&d, p, e, &idx, &gs, now)
	sh.mu.Unlock()
	return d
}

// hash identifies a client. Two clients whose hashes collide share their
// windows; with a secret random seed per process that becomes likely only
// around 2^32 clients, and cannot be provoked.
func (l *Limiter) hash(key string) uint64 {
	return maphash.String(l.seed, key)
}

func (l *Limiter) shard(h uint64) *shard {
	return &l.shards[h&l.mask]
}

// lookup returns key's entry with a slot for each window of p, whose
// indexes it stores in idx, inserting what is missing. sh.mu is held.
func (l *Limiter) lookup(sh *shard, h uint64, p *Plan, idx *[MaxWindows]int, now int64) entry {
	e, ok := sh.m[h]
	if !ok {
		l.makeRoom(sh, now)
		e.slots = make([]slot, 0, len(p.slots))
		if l.remote != nil {
			e.lease = &lease{}
		}
	}
	changed := !ok
	for i := range p.slots {
		id := p.slots[i].id
		j := 0
		for j < len(e.slots) && e.slots[j].id != id {
			j++
		}
		if j == len(e.slots) {
			e.slots = append(e.slots, slot{id: id})
			changed = true
		}
		idx[i] = j
	}
	if changed {
		sh.m[h] = e
	}
	// e.slots shares its array with the stored entry, so writes through
	// the returned copy reach the table.
	return e
}

// decideLocal runs GCRA over e's windows, all-or-nothing, into d.
func decideLocal(d *Decision, p *Plan, e entry, idx *[MaxWindows]int, gs *[MaxWindows]gcra, now int64) {
	d.n = len(p.slots)
	d.Allowed = true
	for i := range p.slots {
		g, tat := gs[i], e.slots[idx[i]].tat
		if at := g.admitAt(tat); at > now {
			d.Allowed = false
			d.RetryAfter = max(d.RetryAfter, time.Duration(at-now))
		}
	}
	for i := range p.slots {
		s := &e.slots[idx[i]]
		if d.Allowed {
			s.tat = max(s.tat, now) + gs[i].t
		}
		d.setWindow(i, &p.slots[i], gs[i], s.tat, now, 0)
	}
}

// makeRoom is called before inserting into sh (locked). It drops up to a
// few idle entries, so that a flood of new clients cleans up after itself,
// and at the cap evicts the sampled entry closest to idle.
func (l *Limiter) makeRoom(sh *shard, now int64) {
	probe := 2
	full := len(sh.m) >= l.shardCap
	if full {
		probe = 16
	}
	var (
		victim uint64
		vexp   int64
		found  bool
	)
	for k, e := range sh.m {
		if probe == 0 {
			break
		}
		probe--
		if e.idle(now) {
			delete(sh.m, k)
			l.evicted.Add(1)
			full = false
			continue
		}
		if e.lease != nil && e.lease.inflight != nil {
			continue
		}
		if x := e.expiry(); !found || x < vexp {
			victim, vexp, found = k, x, true
		}
	}
	if full && found {
		delete(sh.m, victim)
		l.forced.Add(1)
	}
}

// Sweep drops every idle client, as Run does periodically.
func (l *Limiter) Sweep() {
	for i := range l.shards {
		sh := &l.shards[i]
		now := l.now().UnixNano()
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.idle(now) {
				delete(sh.m, k)
				l.evicted.Add(1)
			}
		}
		sh.mu.Unlock()
	}
}

// Run sweeps idle clients every Config.SweepInterval until ctx is done,
// then returns nil. Without Run, idle clients are still dropped as new
// ones arrive, but memory is not returned when traffic stops.
func (l *Limiter) Run(ctx context.Context) error {
	ticks := l.sweepTicks
	if ticks == nil {
		t := time.NewTicker(l.cfg.SweepInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			l.Sweep()
		}
	}
}

// Stats are counters of a Limiter, for metrics.
type Stats struct {
	// Entries is the number of clients held in memory.
	Entries int
	// Evicted counts idle clients dropped; Forced counts clients dropped at
	// the MaxEntries cap while their windows were not yet full.
	Evicted, Forced uint64
	// Reservations counts successful reservations in the shared state,
	// Conflicts their retries after another replica's concurrent update.
	Reservations, Conflicts uint64
	// Fallbacks counts decisions made locally because the shared state
	// was unreachable or too contended.
	Fallbacks uint64
}

// Stats returns the current counters. Entries locks each shard in turn.
func (l *Limiter) Stats() Stats {
	st := Stats{Evicted: l.evicted.Load(), Forced: l.forced.Load(), Fallbacks: l.fallbacks.Load()}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		st.Entries += len(sh.m)
		sh.mu.Unlock()
	}
	if l.remote != nil {
		st.Reservations = l.remote.reservations.Load()
		st.Conflicts = l.remote.conflicts.Load()
	}
	return st
}
