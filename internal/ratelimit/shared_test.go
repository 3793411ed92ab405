package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// replicas starts n distributed Limiters, each on its own connection to s.
// Unless the test sets them, the remote timeouts are long, so that a slow
// machine does not turn a test of the shared state into one of the
// fallback.
func replicas(t *testing.T, s *server.Server, n int, cfg Config) []*Limiter {
	t.Helper()
	if cfg.RemoteTimeout == 0 {
		cfg.RemoteTimeout = 10 * time.Second
	}
	ls := make([]*Limiter, n)
	for i := range ls {
		bus := eventbustest.ConnectURL(t, s.ClientURL())
		l, err := NewDistributed(t.Context(), bus.JS, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
	}
	return ls
}

func plans(t *testing.T, ls []*Limiter, ps ...Policy) []*Plan {
	t.Helper()
	out := make([]*Plan, len(ls))
	for i, l := range ls {
		out[i] = mustPlan(t, l, ps...)
	}
	return out
}

// TestReplicasShareLimit hammers one client through three replicas at a
// frozen instant: together they admit the limit, not three times it.
func TestReplicasShareLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int
	}{
		{"300 a minute (lease cap 3)", 300},
		{"1000 a minute (lease cap 10)", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			ls := replicas(t, eventbustest.RunServer(t), 3, Config{Now: c.Now})
			ps := plans(t, ls, Standard("global", tt.limit, 100_000, 1_000_000))
			var admitted [3]atomic.Int64
			var wg sync.WaitGroup
			for r := range ls {
				for range 16 {
					wg.Go(func() {
						for range 2 * tt.limit / 16 {
							if ls[r].Allow(t.Context(), ps[r], "client", 1).Allowed {
								admitted[r].Add(1)
							}
						}
					})
				}
			}
			wg.Wait()
			total := admitted[0].Load() + admitted[1].Load() + admitted[2].Load()
			var conflicts, reservations, fallbacks uint64
			for _, l := range ls {
				st := l.Stats()
				conflicts += st.Conflicts
				reservations += st.Reservations
				fallbacks += st.Fallbacks
			}
			t.Logf("limit %d: admitted %d (%d + %d + %d), %d reservations, %d conflicts, %d fallbacks",
				tt.limit, total, admitted[0].Load(), admitted[1].Load(), admitted[2].Load(), reservations, conflicts, fallbacks)
			if fallbacks != 0 {
				t.Fatalf("%d local fallbacks with NATS up", fallbacks)
			}
			if hi, lo := int64(tt.limit)*105/100, int64(tt.limit)*90/100; total > hi || total < lo {
				t.Errorf("three replicas admitted %d, want within [%d, %d]", total, lo, hi)
			}
		})
	}
}

// TestReplicasRefill checks that one replica sees another's usage and that
// the shared windows refill with the clock.
func TestReplicasRefill(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 2, Config{Now: c.Now})
	ps := plans(t, ls, window("p", 60, time.Minute))
	a, b := ls[0], ls[1]

	if n, _ := burst(t, a, ps[0], "client", 1); n != 60 {
		t.Fatalf("replica a admitted %d, want 60", n)
	}
	n, d := burst(t, b, ps[1], "client", 1)
	if n != 0 || d.RetryAfter != time.Second {
		t.Fatalf("replica b after a's burst: admitted %d, retry_after %v, want 0 and 1s", n, d.RetryAfter)
	}
	if w := d.Windows()[0]; w.Remaining != 0 || !w.Reset.Equal(c.Now().Add(time.Minute)) {
		t.Errorf("replica b sees remaining %d reset %v, want 0 and %v", w.Remaining, w.Reset, c.Now().Add(time.Minute))
	}

	// One interval later exactly one request is admitted, by whichever
	// replica asks first.
	c.Advance(time.Second)
	if n, _ := burst(t, b, ps[1], "client", 1); n != 1 {
		t.Fatalf("replica b one second later admitted %d, want 1", n)
	}
	if n, _ := burst(t, a, ps[0], "client", 1); n != 0 {
		t.Fatalf("replica a after b took the refill admitted %d, want 0", n)
	}

	// A full period later the window is full again for both, together.
	c.Advance(time.Minute)
	na, _ := burst(t, a, ps[0], "client", 1)
	nb, _ := burst(t, b, ps[1], "client", 1)
	if na+nb != 60 {
		t.Errorf("after a minute replicas admitted %d + %d, want 60 in total", na, nb)
	}
}

// TestReplicasSustainedRate runs three replicas saturated for two simulated
// minutes with leases expiring: the admitted count stays within 5% of the
// GCRA bound L + elapsed/T.
func TestReplicasSustainedRate(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 3, Config{Now: c.Now})
	ps := plans(t, ls, window("p", 1000, time.Minute)) // T = 60ms, lease cap 10
	const (
		step  = 20 * time.Millisecond
		steps = 6000 // two minutes
	)
	admitted := 0
	for range steps {
		c.Advance(step)
		for r, l := range ls {
			for range 2 {
				if l.Allow(t.Context(), ps[r], "client", 1).Allowed {
					admitted++
				}
			}
		}
	}
	bound := 1000 + int(steps*step/(60*time.Millisecond))
	t.Logf("admitted %d over %v, GCRA bound %d", admitted, steps*step, bound)
	for _, l := range ls {
		if st := l.Stats(); st.Fallbacks != 0 {
			t.Fatalf("%d local fallbacks with NATS up", st.Fallbacks)
		}
	}
	if admitted > bound*105/100 || admitted < bound*90/100 {
		t.Errorf("admitted %d, want within [%d, %d]", admitted, bound*90/100, bound*105/100)
	}
}

// TestReplicasConcurrentMovingClock is TestReplicasSustainedRate with
// concurrent requests on every replica while the clock runs, so that
// leases are served late and expire at arbitrary points.
func TestReplicasConcurrentMovingClock(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 3, Config{Now: c.Now})
	ps := plans(t, ls, window("p", 1000, time.Minute)) // T = 60ms, lease cap 10
	const (
		elapsed = 2 * time.Minute
		step    = 5 * time.Millisecond
	)
	// The requests drive the clock: every 8th moves it one step, whichever
	// goroutine sends it, so time passes at the pace the requests arrive.
	end := c.Now().Add(elapsed)
	var admitted, sent atomic.Int64
	var wg sync.WaitGroup
	for r := range ls {
		for range 8 {
			wg.Go(func() {
				for c.Now().Before(end) {
					if ls[r].Allow(t.Context(), ps[r], "client", 1).Allowed {
						admitted.Add(1)
					}
					if sent.Add(1)%8 == 0 {
						c.Advance(step)
					}
				}
			})
		}
	}
	wg.Wait()
	bound := 1000 + int64(elapsed/(60*time.Millisecond))
	got := admitted.Load()
	t.Logf("admitted %d over %v, GCRA bound %d, with leases %d", got, elapsed, bound, bound+3*10)
	for _, l := range ls {
		if st := l.Stats(); st.Fallbacks != 0 {
			t.Fatalf("%d local fallbacks with NATS up", st.Fallbacks)
		}
	}
	if got > bound*105/100 || got < bound*90/100 {
		t.Errorf("admitted %d, want within [%d, %d]", got, bound*90/100, bound*105/100)
	}
}

// TestLeases follows one replica's leases: they double while the client is
// busy, up to 1% of the limit, and tokens left when a lease expires are
// dropped rather than served late.
func TestLeases(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 2, Config{Now: c.Now})
	ps := plans(t, ls, window("p", 1000, time.Minute)) // T = 60ms, lease cap 10
	a, b := ls[0], ls[1]
	for i := range 20 {
		if !a.Allow(t.Context(), ps[0], "client", 1).Allowed {
			t.Fatalf("request %d denied", i)
		}
	}
	// Leases of 1, 2, 4, 8 and 10 tokens: 25 reserved, 20 served.
	if got := a.Stats().Reservations; got != 5 {
		t.Errorf("20 requests took %d reservations, want 5 (leases 1, 2, 4, 8, 10)", got)
	}
	c.Advance(500 * time.Millisecond) // the lease expires; 8 tokens refill
	if n, _ := burst(t, b, ps[1], "client", 1); n != 1000-25+8 {
		t.Errorf("replica b admitted %d, want %d (a's 25 reserved tokens are spent)", n, 1000-25+8)
	}
	if n, _ := burst(t, a, ps[0], "client", 1); n != 0 {
		t.Errorf("replica a admitted %d from an expired lease, want 0", n)
	}
	if got := b.Stats().Reservations; got > 110 {
		t.Errorf("983 requests took %d reservations, want about 100 (leases of 10)", got)
	}
}

// TestAllOrNothingShared checks all-or-nothing across policies in the
// shared state: the endpoint's denials leave the global window untouched
// for the other replica.
func TestAllOrNothingShared(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 2, Config{Now: c.Now})
	global, endpoint := Standard("global", 10, 0, 0), Standard("POST /x", 3, 0, 0)
	a := mustPlan(t, ls[0], global, endpoint)
	b := mustPlan(t, ls[1], global)
	if n, _ := burst(t, ls[0], a, "client", 1); n != 3 {
		t.Fatalf("global+endpoint admitted %d, want 3", n)
	}
	if n, _ := burst(t, ls[1], b, "client", 1); n != 7 {
		t.Errorf("global on the other replica admitted %d, want 7", n)
	}
}

func TestFallbackWhenNATSDown(t *testing.T) {
	c := newClock()
	s := eventbustest.RunServer(t)
	ls := replicas(t, s, 1, Config{Now: c.Now, RemoteTimeout: 100 * time.Millisecond})
	l, p := ls[0], mustPlan(t, ls[0], window("p", 50, time.Minute))
	if d := l.Allow(t.Context(), p, "a", 1); !d.Allowed || d.Local {
		t.Fatalf("with NATS up: allowed %v local %v, want true false", d.Allowed, d.Local)
	}
	s.Shutdown()
	s.WaitForShutdown()

	start := time.Now()
	n, d := burst(t, l, p, "a", 1)
	if n != 49 || !d.Local {
		t.Errorf("with NATS down the client admitted %d more (local %v), want 49 (its local window) and local", n, d.Local)
	}
	if n, _ := burst(t, l, p, "b", 1); n != 50 {
		t.Errorf("a new client with NATS down admitted %d, want 50", n)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("101 decisions with NATS down took %v, want well under a second", el)
	}
	if st := l.Stats(); st.Fallbacks < 101 {
		t.Errorf("Stats.Fallbacks = %d, want >= 101", st.Fallbacks)
	}
}

// TestRecovery checks that a Limiter goes back to the shared state after a
// NATS restart, which loses the in-memory bucket.
func TestRecovery(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	s := eventbustest.RunServerAt(t, -1, dir)
	port := s.Addr().(*net.TCPAddr).Port
	ls := replicas(t, s, 2, Config{Now: c.Now, RemoteTimeout: time.Second, RemoteBackoff: 10 * time.Millisecond})
	ps := plans(t, ls, window("p", 100, time.Minute))
	if d := ls[0].Allow(t.Context(), ps[0], "client", 1); !d.Allowed || d.Local {
		t.Fatalf("before the restart: allowed %v local %v, want true false", d.Allowed, d.Local)
	}
	s.Shutdown()
	s.WaitForShutdown()
	if d := ls[0].Allow(t.Context(), ps[0], "client", 1); !d.Allowed || !d.Local {
		t.Fatalf("NATS down: allowed %v local %v, want true true", d.Allowed, d.Local)
	}
	eventbustest.RunServerAt(t, port, dir)
	deadline := time.Now().Add(10 * time.Second)
	for i, l := range ls {
		for l.Allow(t.Context(), ps[i], "client", 1).Local {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d still decides locally 10s after NATS came back", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The shared state works again: the other replica sees this one's use.
	c.Advance(time.Minute)
	n0, _ := burst(t, ls[0], ps[0], "client", 1)
	n1, d := burst(t, ls[1], ps[1], "client", 1)
	if n0 != 100 || n1 != 0 || d.Local {
		t.Errorf("after recovery replicas admitted %d and %d (local %v), want 100, 0 and shared", n0, n1, d.Local)
	}
}

// conflictingKV is a bucket in which every write loses a race.
type conflictingKV struct{ gets atomic.Int64 }

func (f *conflictingKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	f.gets.Add(1)
	return nil, jetstream.ErrKeyNotFound
}

func (f *conflictingKV) Update(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, jetstream.ErrKeyRevisionMismatch
}

// TestContentionFallsBackOnce checks that a client whose reservations keep
// losing is decided locally after RemoteTimeout, once for all its waiting
// requests rather than a timeout each, and that other clients still use
// the shared state.
func TestContentionFallsBackOnce(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now, RemoteTimeout: 100 * time.Millisecond, RemoteBackoff: time.Minute})
	kv := &conflictingKV{}
	l.remote = &remote{kv: kv, cfg: l.cfg, log: slog.New(slog.DiscardHandler)}
	p := mustPlan(t, l, window("p", 10, time.Minute))

	start := time.Now()
	var wg sync.WaitGroup
	var local atomic.Int64
	for range 16 {
		wg.Go(func() {
			if d := l.Allow(t.Context(), p, "hot", 1); d.Allowed && d.Local {
				local.Add(1)
			}
		})
	}
	wg.Wait()
	if el := time.Since(start); el > time.Second {
		t.Errorf("16 concurrent requests took %v, want about one RemoteTimeout (100ms)", el)
	}
	if local.Load() != 10 {
		t.Errorf("%d of 16 requests admitted locally, want 10 (the local window)", local.Load())
	}
	before := kv.gets.Load()
	l.Allow(t.Context(), p, "other", 1)
	if kv.gets.Load() == before {
		t.Error("another client did not try the shared state: one contended client disabled it for all")
	}
}

func TestOddClientKeys(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 1, Config{Now: c.Now})
	p := mustPlan(t, ls[0], window("p", 2, time.Minute))
	for _, k := range []string{"", "ip:2001:db8::1", "a.b.*.>", "ключ", "key with spaces/and=signs"} {
		if n, d := burst(t, ls[0], p, k, 1); n != 2 || d.Local {
			t.Errorf("client %q admitted %d (local %v), want 2 from the shared state", k, n, d.Local)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	rec := record{{"global/minute", 200}, {"global/day", 50}, {"POST /x/minute", 300}}
	got, err := decodeRecord(rec.encode(100))
	if err != nil {
		t.Fatal(err)
	}
	// The day window's TAT is in the past: dropped, as it means "full".
	want := record{{"global/minute", 200}, {"POST /x/minute", 300}}
	if !slices.Equal(got, want) {
		t.Errorf("decodeRecord(encode()) = %v, want %v", got, want)
	}
	for _, b := range [][]byte{nil, {9}, {recordVersion, 5}, {recordVersion, 1, 200}} {
		if _, err := decodeRecord(b); err == nil {
			t.Errorf("decodeRecord(%v) = nil error, want an error", b)
		}
	}
}

func BenchmarkAllowShared(b *testing.B) {
	s := eventbustest.RunServer(b)
	bus := eventbustest.Connect(b, s)
	l, err := NewDistributed(b.Context(), bus.JS, Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	// 1e8 a minute: leases of 1e6 tokens, so nearly every check is local.
	p := mustPlan(b, l, Standard("global", 1e8, 1e9, 1e9))
	b.Run("single_key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(b.Context(), p, "k", 1)
		}
	})
	b.Run("parallel_single_key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(b.Context(), p, "k", 1)
			}
		})
	})
	// Leases of one token: every check is a read and a compare-and-set on
	// the embedded server, the cost of a quiet client's request.
	b.Run("reserve_each_request", func(b *testing.B) {
		l, err := NewDistributed(b.Context(), bus.JS, Config{LeaseFraction: 1e-9}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		p := mustPlan(b, l, Standard("global", 1e8, 1e9, 1e9))
		b.ReportAllocs()
		for b.Loop() {
			if !l.Allow(b.Context(), p, "k2", 1).Allowed {
				b.Fatal("denied")
			}
		}
		if st := l.Stats(); st.Fallbacks != 0 {
			b.Fatalf("%d fallbacks", st.Fallbacks)
		}
	})
}

// TestFullBucketDropsOldestClients fills a small shared bucket with many
// clients (as a flood would) and checks that sharing stays on: the bucket
// drops its oldest records instead of refusing writes, which would leave
// every client to per-replica limits (twice the limit across 2 replicas).
func TestFullBucketDropsOldestClients(t *testing.T) {
	c := newClock()
	ls := replicas(t, eventbustest.RunServer(t), 2, Config{Now: c.Now, BucketMaxBytes: 64 << 10, RemoteBackoff: time.Hour})
	ps := plans(t, ls, Standard("global", 10, 0, 0))
	if !ls[0].Allow(t.Context(), ps[0], "key:victim", 1).Allowed {
		t.Fatal("first request denied")
	}
	for i := range 3000 {
		ls[0].Allow(t.Context(), ps[0], fmt.Sprintf("ip:2001:db8::%x", i), 1)
		ls[1].Allow(t.Context(), ps[1], fmt.Sprintf("ip:2001:db8:1::%x", i), 1)
	}
	admitted := 0
	for range 20 {
		for r := range ls {
			if ls[r].Allow(t.Context(), ps[r], "key:victim", 1).Allowed {
				admitted++
			}
		}
	}
	st := ls[0].Stats()
	t.Logf("replica 1: %+v; victim admitted %d after the flood, limit 10", st, admitted)
	// 9 would mean its first record survived 6,000 others in 64 KiB; 20,
	// that each replica limited it alone.
	if admitted != 10 || st.Fallbacks != 0 {
		t.Errorf("victim admitted %d after the flood with %d local fallbacks, want 10 (its record dropped, limits still shared) and none", admitted, st.Fallbacks)
	}
}
