package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test clock that moves only when told.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newLocal(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustPlan(t testing.TB, l *Limiter, ps ...Policy) *Plan {
	t.Helper()
	p, err := l.Plan(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func window(name string, limit int, period time.Duration) Policy {
	return Policy{Name: name, Windows: []Window{{Name: "w", Limit: limit, Period: period}}}
}

// burst sends requests at the current instant until one is denied and
// returns how many were admitted and the denial.
func burst(t testing.TB, l *Limiter, p *Plan, key string, mult float64) (int, Decision) {
	t.Helper()
	for n := 0; ; n++ {
		d := l.Allow(t.Context(), p, key, mult)
		if !d.Allowed {
			return n, d
		}
		if n > 1e6 {
			t.Fatal("no denial after a million requests")
		}
	}
}

func TestWindowSemantics(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		period time.Duration
		mult   float64
		want   int // admitted at once by an idle client
	}{
		{"60 a minute", 60, time.Minute, 1, 60},
		{"1000 an hour", 1000, time.Hour, 1, 1000},
		{"10000 a day", 10000, 24 * time.Hour, 1, 10000},
		{"7 a minute (inexact interval)", 7, time.Minute, 1, 7},
		{"multiplier 2.5", 60, time.Minute, 2.5, 150},
		{"multiplier 0.5", 60, time.Minute, 0.5, 30},
		{"tiny multiplier keeps one", 60, time.Minute, 0.001, 1},
		{"multiplier 0 means 1", 60, time.Minute, 0, 60},
		{"multiplier above 1000 is capped", 1, time.Minute, 5000, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := newLocal(t, Config{Now: c.Now})
			p := mustPlan(t, l, window("p", tt.limit, tt.period))
			start := c.Now()

			first := l.Allow(t.Context(), p, "k", tt.mult)
			w := first.Windows()[0]
			if !first.Allowed || w.Limit != tt.want || w.Remaining != tt.want-1 {
				t.Fatalf("first request: allowed=%v limit=%d remaining=%d, want true %d %d", first.Allowed, w.Limit, w.Remaining, tt.want, tt.want-1)
			}
			n, d := burst(t, l, p, "k", tt.mult)
			if got := n + 1; got != tt.want {
				t.Fatalf("idle client admitted %d at once, want %d", got, tt.want)
			}
			interval := tt.period / time.Duration(tt.want)
			w = d.Windows()[0]
			if w.Remaining != 0 || d.RetryAfter != interval || w.RetryAfter != interval {
				t.Errorf("denial: remaining=%d retry_after=%v (window %v), want 0 and %v", w.Remaining, d.RetryAfter, w.RetryAfter, interval)
			}
			if wantReset := start.Add(interval * time.Duration(tt.want)); !w.Reset.Equal(wantReset) {
				t.Errorf("reset = %v, want %v (TAT after %d requests)", w.Reset, wantReset, tt.want)
			}

			// One emission interval later exactly one more is admitted.
			c.Advance(interval - 1)
			if d := l.Allow(t.Context(), p, "k", tt.mult); d.Allowed {
				t.Fatalf("admitted 1ns before the emission interval elapsed")
			}
			c.Advance(1)
			if n, _ := burst(t, l, p, "k", tt.mult); n != 1 {
				t.Fatalf("after one interval admitted %d, want 1", n)
			}
			// After a full period the window is full again.
			c.Advance(tt.period)
			if n, _ := burst(t, l, p, "k", tt.mult); n != tt.want {
				t.Fatalf("after a period admitted %d, want %d", n, tt.want)
			}
		})
	}
}

// TestNoDoubleBurst checks the GCRA property that fixed windows lack: a
// client that used its burst at the end of one minute gets one request per
// interval, not a new burst, at the start of the next.
func TestNoDoubleBurst(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	p := mustPlan(t, l, window("p", 60, time.Minute))
	if n, _ := burst(t, l, p, "k", 1); n != 60 {
		t.Fatalf("burst admitted %d, want 60", n)
	}
	total := 60
	for range 60 { // the next minute, one attempt burst per second
		c.Advance(time.Second)
		n, _ := burst(t, l, p, "k", 1)
		total += n
	}
	if total != 120 {
		t.Errorf("admitted %d over two minutes of saturation, want 120 (60 burst + 60 refilled)", total)
	}
}

func TestWindowsAreIndependentPerClient(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	p := mustPlan(t, l, window("p", 3, time.Minute))
	if n, _ := burst(t, l, p, "a", 1); n != 3 {
		t.Fatalf("client a admitted %d, want 3", n)
	}
	if n, _ := burst(t, l, p, "b", 1); n != 3 {
		t.Fatalf("client b admitted %d after a was exhausted, want 3", n)
	}
}

func TestAllOrNothing(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	global := Standard("global", 5, 100, 1000)
	endpoint := Standard("POST /x", 2, 0, 0)
	both := mustPlan(t, l, global, endpoint)
	onlyGlobal := mustPlan(t, l, global)

	n, d := burst(t, l, both, "k", 1)
	if n != 2 {
		t.Fatalf("global+endpoint admitted %d, want 2 (the endpoint limit)", n)
	}
	// The denying window is the endpoint's; the global ones still admit.
	for _, w := range d.Windows() {
		denies := w.Policy == "POST /x"
		if (w.RetryAfter > 0) != denies {
			t.Errorf("window %s/%s retry_after = %v, want >0 only for the endpoint", w.Policy, w.Window, w.RetryAfter)
		}
		if w.Policy == "global" && w.Window == "minute" && w.Remaining != 3 {
			t.Errorf("global minute remaining = %d after a denial, want 3 (denials consume nothing)", w.Remaining)
		}
	}
	// Denied requests consumed nothing: the global minute has 3 left.
	if n, _ := burst(t, l, onlyGlobal, "k", 1); n != 3 {
		t.Errorf("global alone admitted %d after the endpoint denials, want 3", n)
	}
	// And now the global window denies the endpoint plan too, without
	// consuming the endpoint's refill.
	c.Advance(time.Minute / 2) // endpoint refills 1 (T=30s); global 2 (T=12s)
	if n, _ := burst(t, l, both, "k", 1); n != 1 {
		t.Errorf("after 30s the endpoint plan admitted %d, want 1", n)
	}
	if n, _ := burst(t, l, onlyGlobal, "k", 1); n != 1 {
		t.Errorf("after 30s the global plan admitted %d, want 1 (2 refilled, 1 used by the endpoint plan)", n)
	}
}

func TestDecisionWindows(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	p := mustPlan(t, l, Global(), Standard("POST /x", 10, 0, 0))
	d := l.Allow(t.Context(), p, "k", 2)
	want := []struct {
		policy, window string
		limit          int
		period         time.Duration
	}{
		{"global", "minute", 120, time.Minute},
		{"global", "hour", 2000, time.Hour},
		{"global", "day", 20000, 24 * time.Hour},
		{"POST /x", "minute", 20, time.Minute},
	}
	ws := d.Windows()
	if len(ws) != len(want) {
		t.Fatalf("Windows() has %d entries, want %d", len(ws), len(want))
	}
	for i, w := range want {
		g := ws[i]
		if g.Policy != w.policy || g.Window != w.window || g.Limit != w.limit || g.Period != w.period || g.Remaining != w.limit-1 {
			t.Errorf("window %d = %s/%s limit %d period %v remaining %d, want %s/%s %d %v %d",
				i, g.Policy, g.Window, g.Limit, g.Period, g.Remaining, w.policy, w.window, w.limit, w.period, w.limit-1)
		}
		// Reset is when the one consumed token is back: one interval.
		if wantReset := c.Now().Add(w.period / time.Duration(w.limit)); !g.Reset.Equal(wantReset) {
			t.Errorf("window %s/%s reset = %v, want %v", w.policy, w.window, g.Reset, wantReset)
		}
	}
}

func TestPlanValidation(t *testing.T) {
	l := newLocal(t, Config{})
	if _, err := l.Plan(window("a", 1, time.Minute)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ps   []Policy
	}{
		{"no policies", nil},
		{"unnamed policy", []Policy{{Windows: []Window{{Name: "w", Limit: 1, Period: time.Second}}}}},
		{"no windows", []Policy{{Name: "p"}}},
		{"zero limit", []Policy{window("p", 0, time.Minute)}},
		{"negative period", []Policy{window("p", 1, -time.Minute)}},
		{"duplicate window", []Policy{window("p", 1, time.Minute), window("p", 2, time.Minute)}},
		{"period differs from an earlier plan", []Policy{window("a", 1, time.Hour)}},
		{"too many windows", []Policy{Global(), Standard("x", 1, 1, 1), Standard("y", 1, 1, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Plan(tt.ps...); err == nil {
				t.Errorf("Plan(%v) = nil error, want an error", tt.ps)
			}
		})
	}
}

// TestConcurrentExact hammers one client from 64 goroutines with a frozen
// clock: exactly the limit is admitted, never more.
func TestConcurrentExact(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	p := mustPlan(t, l, Standard("global", 1000, 5000, 10000))
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 100 {
				if l.Allow(t.Context(), p, "k", 1).Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 1000 {
		t.Errorf("64 goroutines × 100 requests admitted %d, want exactly 1000", got)
	}
}

func TestIdleClientsAreDropped(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	p := mustPlan(t, l, Global())
	for i := range 1000 {
		l.Allow(t.Context(), p, strconv.Itoa(i), 1)
	}
	l.Allow(t.Context(), p, "busy", 1)
	l.Allow(t.Context(), p, "busy", 1)
	if n := l.Stats().Entries; n != 1001 {
		t.Fatalf("Entries = %d, want 1001", n)
	}
	// One request consumed an interval of each window; the day window's
	// interval is 8.64s. After it, every one-request client is full again.
	c.Advance(24 * time.Hour / DefaultPerDay)
	l.Sweep()
	if st := l.Stats(); st.Entries != 1 || st.Evicted != 1000 {
		t.Fatalf("after sweep: Entries = %d, Evicted = %d, want 1 (the client with two requests) and 1000", st.Entries, st.Evicted)
	}
	// A dropped client starts fresh, which is what its state said anyway.
	if d := l.Allow(t.Context(), p, "0", 1); d.Windows()[0].Remaining != DefaultPerMinute-1 {
		t.Errorf("returning client remaining = %d, want %d", d.Windows()[0].Remaining, DefaultPerMinute-1)
	}
}

func TestRunSweeps(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now, SweepInterval: 5 * time.Millisecond})
	p := mustPlan(t, l, window("p", 10, time.Minute))
	for i := range 100 {
		l.Allow(t.Context(), p, strconv.Itoa(i), 1)
	}
	// The test ticks: Run takes the next tick only after the sweep in
	// hand, so the second send returns once the first sweep is done.
	ticks := make(chan time.Time)
	l.sweepTicks = ticks
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	c.Advance(6 * time.Second) // one request's interval: everyone is full
	ticks <- c.Now()
	ticks <- c.Now()
	if n := l.Stats().Entries; n != 0 {
		t.Fatalf("Run left %d idle clients after a sweep", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after cancel, want nil", err)
	}
}

// TestFloodStaysBounded sends a million distinct clients with an advancing
// clock and no sweeper: the table holds about the clients still active,
// not everyone ever seen.
func TestFloodStaysBounded(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now})
	p := mustPlan(t, l, window("p", 60, time.Minute)) // one request: full again after 1s
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 200_000
	}
	peak := 0
	for i := range n {
		c.Advance(time.Millisecond) // ~1000 clients active at any time
		l.Allow(t.Context(), p, strconv.Itoa(i), 1)
		if i%10_000 == 0 {
			peak = max(peak, l.Stats().Entries)
		}
	}
	st := l.Stats()
	t.Logf("%d clients: peak %d entries, final %d, evicted %d, forced %d", n, peak, st.Entries, st.Evicted, st.Forced)
	if peak > 20_000 || st.Forced != 0 {
		t.Errorf("peak %d entries (forced evictions %d) for ~1000 active clients, want < 20000 and none forced", peak, st.Forced)
	}
}

// TestCapEvictsUnderFlood floods with a frozen clock: nobody is idle, so
// the cap must hold by evicting live clients.
func TestCapEvictsUnderFlood(t *testing.T) {
	c := newClock()
	l := newLocal(t, Config{Now: c.Now, Shards: 16, MaxEntries: 4096})
	p := mustPlan(t, l, Global())
	for i := range 50_000 {
		l.Allow(t.Context(), p, strconv.Itoa(i), 1)
	}
	if st := l.Stats(); st.Entries > 4096 || st.Forced == 0 {
		t.Errorf("Entries = %d, Forced = %d after 50000 live clients, want <= 4096 and > 0", st.Entries, st.Forced)
	}
}

func TestMemoryMillionClients(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million clients")
	}
	c := newClock()
	l := newLocal(t, Config{Now: c.Now, MaxEntries: 2_000_000})
	p := mustPlan(t, l, Global())
	n, limitMB := 1_000_000, 200.0
	if raceEnabled {
		n, limitMB = 200_000, 40
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		// A fresh key string per request, as from an HTTP header.
		l.Allow(t.Context(), p, fmt.Sprintf("key_%020d", i), 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := l.Stats().Entries; got != n {
		t.Fatalf("Entries = %d, want %d", got, n)
	}
	mb := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	t.Logf("%d clients with the global policy: %.1f MB of heap (%.0f bytes each)", n, mb, mb*(1<<20)/float64(n))
	if mb > limitMB {
		t.Errorf("%d clients take %.1f MB, want < %.0f", n, mb, limitMB)
	}
}

// BenchmarkAllow measures a check of the global policy for a client that
// is already known (the hot path) and, in new_keys, the first request of a
// client.
func BenchmarkAllow(b *testing.B) {
	c := newClock()
	l := newLocal(b, Config{Now: c.Now, MaxEntries: 1 << 22})
	p := mustPlan(b, l, Standard("global", 1e9, 1e9, 1e9))
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = "key_" + strconv.Itoa(i)
		l.Allow(b.Context(), p, keys[i], 1)
	}
	b.Run("single_key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(b.Context(), p, "key_0", 1)
		}
	})
	for _, n := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("keys_%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(b.Context(), p, keys[i&(n-1)], 1)
				i++
			}
		})
		b.Run(fmt.Sprintf("parallel_keys_%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					l.Allow(b.Context(), p, keys[i&(n-1)], 1)
					i++
				}
			})
		})
	}
	b.Run("parallel_single_key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(b.Context(), p, "key_0", 1)
			}
		})
	})
	b.Run("new_keys", func(b *testing.B) {
		b.ReportAllocs()
		l := newLocal(b, Config{Now: c.Now, MaxEntries: 1 << 22})
		p := mustPlan(b, l, Global())
		i := 0
		for b.Loop() {
			l.Allow(b.Context(), p, keys[i&(len(keys)-1)], 1)
			i++
		}
	})
}
