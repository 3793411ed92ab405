package ratelimit

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errContended reports a reservation that kept losing compare-and-set races
// until Config.RemoteTimeout.
var errContended = errors.New("shared rate limit state too contended")

// errRejected reports a write the NATS server refused for this client
// (the bucket is full): decided locally for this client only.
var errRejected = errors.New("shared rate limit state refused the write")

// NewDistributed returns a Limiter whose limits hold across every replica
// connected to the same JetStream: it creates or updates the bucket
// Config.Bucket and keeps each client's windows there (see the package
// documentation). It fails only if the bucket cannot be provisioned; after
// that, an unreachable NATS makes the Limiter decide locally, never fail.
func NewDistributed(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Limiter, error) {
	l, err := New(cfg, log)
	if err != nil {
		return nil, err
	}
	r := &remote{js: js, conn: js.Conn(), cfg: l.cfg, log: log}
	if r.kv, err = r.provision(ctx); err != nil {
		return nil, err
	}
	l.remote = r
	return l, nil
}

// provision creates or updates the bucket. The state is in memory: a NATS
// restart loses it, which gives every client full windows once.
func (r *remote) provision(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      r.cfg.Bucket,
		Description: "Abacus rate limit state: per client, the TAT of each window",
		History:     1,
		TTL:         r.cfg.BucketTTL,
		MaxBytes:    r.cfg.BucketMaxBytes,
		Storage:     jetstream.MemoryStorage,
		Replicas:    r.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning KV bucket %s: %w", r.cfg.Bucket, err)
	}
	// A full bucket drops its oldest records (the clients idle longest,
	// which then start with full windows) rather than refusing writes,
	// which would leave every client to per-replica limits.
	stream, err := r.js.Stream(ctx, "KV_"+r.cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of KV bucket %s: %w", r.cfg.Bucket, err)
	}
	if sc := stream.CachedInfo().Config; sc.Discard != jetstream.DiscardOld {
		sc.Discard = jetstream.DiscardOld
		if _, err := r.js.UpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("setting discard-old on KV bucket %s: %w", r.cfg.Bucket, err)
		}
	}
	return kv, nil
}

// missingBucket reports the errors of a read or write on a bucket that does
// not exist (any more).
func missingBucket(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)
}

// kvStore is the part of jetstream.KeyValue the limiter uses.
type kvStore interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

var _ kvStore = jetstream.KeyValue(nil)

// remote is the shared state of a distributed Limiter.
type remote struct {
	kv kvStore
	// js re-creates the bucket if it disappears (a NATS restart loses it).
	js   jetstream.JetStream
	conn *nats.Conn
	cfg  Config
	log  *slog.Logger

	// downUntil (unix ns, wall clock) is when to try the shared state
	// again after a failure.
	downUntil atomic.Int64
	down      atomic.Bool

	reservations atomic.Uint64
	conflicts    atomic.Uint64
}

// lease is a client's distributed state on this replica.
type lease struct {
	slots []leaseSlot
	// inflight is closed when the running reservation ends; nil when none
	// runs. waiters counts the requests waiting for it.
	inflight chan struct{}
	waiters  int
	// localUntil (unix ns, wall clock) is when to try the shared state
	// again for this client after its reservation kept losing races.
	localUntil int64
}

type leaseSlot struct {
	id uint32
	// have tokens were reserved in the shared state and not yet served;
	// they may be served until exp.
	have, exp int64
	// k is the last lease size and last the time it was reserved.
	k, last int64
	// shared is the window's shared TAT as last seen.
	shared int64
	// deniedUntil is the earliest time the shared window can admit again,
	// after a reservation found it exhausted. Other replicas only move it
	// later, so denying locally until then is exact.
	deniedUntil int64
}

func (ls *lease) idle(now int64) bool {
	if ls.inflight != nil {
		return false
	}
	for i := range ls.slots {
		if s := &ls.slots[i]; s.have > 0 && s.exp > now {
			return false
		}
	}
	return true
}

func (ls *lease) slot(id uint32) int {
	for j := range ls.slots {
		if ls.slots[j].id == id {
			return j
		}
	}
	ls.slots = append(ls.slots, leaseSlot{id: id})
	return len(ls.slots) - 1
}

// reservation is one compare-and-set on a client's shared state.
type reservation struct {
	// required windows have no token here; want is the lease size asked.
	required [MaxWindows]bool
	want     [MaxWindows]int64
	// Results: denied means a required window had no token, and nothing
	// was written. tat is each window's shared TAT after the update.
	denied      bool
	grant       [MaxWindows]int64
	tat         [MaxWindows]int64
	deniedUntil [MaxWindows]int64
}

// allowShared is Allow for a distributed Limiter: serve from this replica's
// leases when every window has one, else reserve in the shared state.
func (l *Limiter) allowShared(ctx context.Context, d *Decision, p *Plan, key string, gs *[MaxWindows]gcra) {
	h := l.hash(key)
	sh := l.shard(h)
	var idx, lidx [MaxWindows]int
	n := len(p.slots)
	sh.mu.Lock()
	for {
		now := l.now().UnixNano()
		e := l.lookup(sh, h, p, &idx, now)
		ls := e.lease
		ready := true
		var deniedUntil int64
		for i := range n {
			lidx[i] = ls.slot(p.slots[i].id)
			s := &ls.slots[lidx[i]]
			if s.have > 0 && s.exp > now {
				continue
			}
			ready = false
			deniedUntil = max(deniedUntil, s.deniedUntil)
		}
		if ready {
			d.Allowed, d.n = true, n
			for i := range n {
				s, g := &ls.slots[lidx[i]], gs[i]
				s.have--
				// The local TAT follows this replica's own admissions,
				// for when it must decide alone.
				t := &e.slots[idx[i]]
				t.tat = min(max(t.tat, now)+g.t, now+g.span)
				d.setWindow(i, &p.slots[i], g, s.shared, now, s.have)
			}
			sh.mu.Unlock()
			return
		}
		if deniedUntil > now {
			d.n, d.RetryAfter = n, time.Duration(deniedUntil-now)
			for i := range n {
				s := &ls.slots[lidx[i]]
				d.setWindow(i, &p.slots[i], gs[i], s.shared, now, s.usable(now))
			}
			sh.mu.Unlock()
			return
		}
		if l.remote.unavailable() || time.Now().UnixNano() < ls.localUntil {
			decideLocal(d, p, e, &idx, gs, now)
			d.Local = true
			sh.mu.Unlock()
			l.fallbacks.Add(1)
			return
		}
		if ls.inflight != nil {
			ch := ls.inflight
			ls.waiters++
			sh.mu.Unlock()
			<-ch
			sh.mu.Lock()
			continue
		}

		var r reservation
		for i := range n {
			s := &ls.slots[lidx[i]]
			if s.have > 0 && s.exp > now {
				continue
			}
			r.required[i] = true
			kmax := max(1, int64(float64(gs[i].limit)*l.cfg.LeaseFraction))
			want := int64(1 + ls.waiters)
			if s.last != 0 && now-s.last <= int64(l.cfg.LeaseTTL) {
				// Busy client: grow the lease.
				want = max(want, 2*s.k)
			}
			r.want[i] = min(want, kmax)
		}
		ch := make(chan struct{})
		ls.inflight = ch
		sh.mu.Unlock()

		err := l.remote.reserve(ctx, key, p, gs, &r, now)

		sh.mu.Lock()
		ls.inflight, ls.waiters = nil, 0
		close(ch)
		if err != nil {
			if errors.Is(err, errContended) || errors.Is(err, errRejected) {
				// Don't let the waiters retry one after another.
				ls.localUntil = time.Now().Add(l.cfg.RemoteBackoff).UnixNano()
			}
			l.remote.fail(err)
			e = l.lookup(sh, h, p, &idx, now)
			decideLocal(d, p, e, &idx, gs, now)
			d.Local = true
			sh.mu.Unlock()
			l.fallbacks.Add(1)
			return
		}
		for i := range n {
			s := &ls.slots[lidx[i]]
			s.shared = r.tat[i]
			switch {
			case r.denied:
				if r.required[i] {
					s.deniedUntil = r.deniedUntil[i]
				}
			case r.grant[i] > 0:
				s.have, s.exp = r.grant[i], now+int64(l.cfg.LeaseTTL)
				s.k, s.last = r.want[i], now
			}
		}
		// Serve from the new lease, or deny from deniedUntil, on the next
		// pass; another request may take the tokens first.
	}
}

// usable is the number of leased tokens that may be served at now.
func (s *leaseSlot) usable(now int64) int64 {
	if s.exp > now {
		return s.have
	}
	return 0
}

// unavailable reports whether to decide locally without trying NATS.
func (r *remote) unavailable() bool {
	if r.conn != nil && r.conn.Status() != nats.CONNECTED {
		return true
	}
	return time.Now().UnixNano() < r.downUntil.Load()
}

func (r *remote) fail(err error) {
	if errors.Is(err, errContended) || errors.Is(err, errRejected) {
		return // one client's trouble, not NATS's
	}
	r.downUntil.Store(time.Now().Add(r.cfg.RemoteBackoff).UnixNano())
	if !r.down.Swap(true) {
		r.log.Warn("shared rate limit state unreachable, limiting per replica", "bucket", r.cfg.Bucket, "err", err)
	}
}

// reserve reads the client's shared state, takes the required windows'
// leases (all or none) and writes it back if no other replica wrote in
// between, retrying otherwise.
func (r *remote) reserve(ctx context.Context, key string, p *Plan, gs *[MaxWindows]gcra, res *reservation, now int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.RemoteTimeout)
	defer cancel()
	k := kvKey(key)
	reprovisioned := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// Lost a race: back off by a random fraction of a growing
			// delay, so that replicas stop colliding.
			d := rand.N(time.Duration(100<<min(attempt, 6)) * time.Microsecond)
			select {
			case <-ctx.Done():
				return errContended
			case <-time.After(d):
			}
		}
		var (
			rev uint64
			rec record
		)
		ent, err := r.kv.Get(ctx, k)
		if missingBucket(err) && r.js != nil && !reprovisioned {
			if _, err := r.provision(ctx); err != nil {
				return err
			}
			r.log.Info("re-created the rate limit bucket", "bucket", r.cfg.Bucket)
			reprovisioned = true
			continue
		}
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil && attempt > 0 && ctx.Err() != nil:
			return errContended
		case err != nil:
			return fmt.Errorf("reading rate limit state: %w", err)
		default:
			rev = ent.Revision()
			if rec, err = decodeRecord(ent.Value()); err != nil {
				// Unreadable state is replaced: the client gets fresh windows.
				r.log.Warn("replacing unreadable rate limit state", "bucket", r.cfg.Bucket, "err", err)
			}
		}
		res.denied = false
		for i := range p.slots {
			tat := rec.get(p.slots[i].name)
			res.tat[i], res.grant[i] = tat, 0
			if !res.required[i] {
				continue
			}
			a := gs[i].avail(tat, now)
			if a < 1 {
				res.denied = true
				res.deniedUntil[i] = gs[i].admitAt(tat)
				continue
			}
			res.grant[i] = min(res.want[i], a)
		}
		if res.denied {
			r.ok()
			return nil
		}
		for i := range p.slots {
			if res.grant[i] > 0 {
				res.tat[i] = max(res.tat[i], now) + res.grant[i]*gs[i].t
				rec = rec.set(p.slots[i].name, res.tat[i])
			}
		}
		_, err = r.kv.Update(ctx, k, rec.encode(now), rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			r.conflicts.Add(1)
			continue
		}
		if err != nil && attempt > 0 && ctx.Err() != nil {
			return errContended
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			// The server answered and refused this write (a full bucket):
			// NATS works, so only this client is decided locally.
			return fmt.Errorf("%w: %w", errRejected, err)
		}
		if err != nil {
			return fmt.Errorf("writing rate limit state: %w", err)
		}
		r.reservations.Add(1)
		r.ok()
		return nil
	}
}

func (r *remote) ok() {
	if r.down.Swap(false) {
		r.log.Info("shared rate limit state reachable again", "bucket", r.cfg.Bucket)
	}
}

// kvKey maps any client key to a valid KV key.
func kvKey(key string) string {
	return "c" + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// record is a client's shared state: the TAT of each policy window it used.
type record []recordSlot

type recordSlot struct {
	name string
	tat  int64
}

const recordVersion = 1

func (rec record) get(name string) int64 {
	for _, s := range rec {
		if s.name == name {
			return s.tat
		}
	}
	return 0
}

func (rec record) set(name string, tat int64) record {
	for i := range rec {
		if rec[i].name == name {
			rec[i].tat = tat
			return rec
		}
	}
	return append(rec, recordSlot{name, tat})
}

// encode writes rec without the windows that are full at now: a TAT in the
// past means the same as no TAT.
func (rec record) encode(now int64) []byte {
	b := []byte{recordVersion}
	n := 0
	for _, s := range rec {
		if s.tat > now {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, s := range rec {
		if s.tat > now {
			b = binary.AppendUvarint(b, uint64(len(s.name)))
			b = append(b, s.name...)
			b = binary.AppendVarint(b, s.tat)
		}
	}
	return b
}

func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, errors.New("unknown rate limit record version")
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errors.New("corrupt rate limit record")
	}
	b = b[k:]
	rec := make(record, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errors.New("corrupt rate limit record")
		}
		name := string(b[k : k+int(l)])
		b = b[k+int(l):]
		tat, k := binary.Varint(b)
		if k <= 0 {
			return nil, errors.New("corrupt rate limit record")
		}
		b = b[k:]
		rec = append(rec, recordSlot{name, tat})
	}
	return rec, nil
}
