package analysis

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/internal/registry"
)

// BenchmarkAnalyzeSmallTest is one timer run's work for one running test
// with 2 variants, 200 users and 2 metrics, from ClickHouse to the stored
// report and snapshot. Times 1,000 it bounds a cycle over 1,000 tests.
func BenchmarkAnalyzeSmallTest(b *testing.B) {
	conn, _ := chdbtest.Conn(b)
	bus := eventbustest.Connect(b, eventbustest.RunServer(b))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	testsKV, err := bus.KV(b.Context(), eventbus.BucketTests)
	if err != nil {
		b.Fatal(err)
	}
	reportsKV, err := bus.KV(b.Context(), eventbus.BucketReports)
	if err != nil {
		b.Fatal(err)
	}
	def := &experiment.Test{
		ID: "bench", Name: "bench", Type: experiment.TypeWorkflow, ControlVariantID: "a", PrimaryMetric: "m",
		Variants:  []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		Status:    experiment.StatusRunning,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	def.SetDefaults()
	store := registry.New(testsKV, log)
	if err := store.Create(b.Context(), def); err != nil {
		b.Fatal(err)
	}
	batch, err := conn.PrepareBatch(b.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 400 {
		v := []string{"a", "b"}[i%2]
		for _, m := range []string{"m", "k"} {
			if err := batch.Append(def.ID, v, fmt.Sprintf("u%d", i%200), m, float64(i%7), fmt.Sprintf("e%d", i), time.Now(), uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		b.Fatal(err)
	}
	r, err := NewRunner(Config{}, conn, store, reportsKV, bus.NC, log, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.analyze(b.Context(), def, "timer"); err != nil {
			b.Fatal(err)
		}
	}
}

// timerFixture stores n running tests with a few results each.
func timerFixture(tb testing.TB, n int) (*Runner, []*experiment.Test) {
	tb.Helper()
	conn, _ := chdbtest.Conn(tb)
	bus := eventbustest.Connect(tb, eventbustest.RunServer(tb))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	testsKV, _ := bus.KV(tb.Context(), eventbus.BucketTests)
	reportsKV, _ := bus.KV(tb.Context(), eventbus.BucketReports)
	store := registry.New(testsKV, log)
	batch, err := conn.PrepareBatch(tb.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		tb.Fatal(err)
	}
	var defs []*experiment.Test
	for i := range n {
		def := &experiment.Test{
			ID: fmt.Sprintf("t%04d", i), Name: "t", Type: experiment.TypeWorkflow, ControlVariantID: "a", PrimaryMetric: "m",
			Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
			Status:   experiment.StatusRunning, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
		}
		def.SetDefaults()
		if err := store.Create(tb.Context(), def); err != nil {
			tb.Fatal(err)
		}
		defs = append(defs, def)
		for u := range 20 {
			if err := batch.Append(def.ID, []string{"a", "b"}[u%2], fmt.Sprintf("u%d", u), "m", float64(u), fmt.Sprintf("e%d", u), time.Now(), uint64(u)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		tb.Fatal(err)
	}
	r, err := NewRunner(Config{Interval: time.Hour}, conn, store, reportsKV, bus.NC, log, prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return r, defs
}

// TestTimerCycleAnalyzesEveryRunningTest runs one timer cycle over 30
// running tests and finds a stored report for each.
func TestTimerCycleAnalyzesEveryRunningTest(t *testing.T) {
	r, defs := timerFixture(t, 30)
	r.runAll(t.Context())
	for _, d := range defs {
		at, err := r.storedAt(t.Context(), d.ID)
		if err != nil || at.IsZero() {
			t.Errorf("test %s has no stored report after a cycle (err %v)", d.ID, err)
		}
	}
}

// BenchmarkTimerCycle100 is one timer cycle over 100 small running tests;
// ten times it is the cycle over 1,000.
func BenchmarkTimerCycle100(b *testing.B) {
	r, _ := timerFixture(b, 100)
	day := 0
	for b.Loop() {
		// A day later each cycle: every report is due again.
		day++
		at := time.Now().Add(time.Duration(day) * 24 * time.Hour)
		r.now = func() time.Time { return at }
		r.runAll(b.Context())
	}
}

// BenchmarkAnalyze10M is the size: one test with 10 million result
// rows from 1 million users (one continuous metric, two variants), loaded
// and turned into a report. The rows arrived an hour ago and were folded
// as they came (the first, cold fold is timed apart and logged), as the
// periodic analyzer keeps them. Loading 10M rows takes a minute, so it runs
// only with ABACUS_BENCH_BIG=1:
//
//	ABACUS_BENCH_BIG=1 go test -run '^$' -bench Analyze10M -benchtime 5x -count 3 ./analysis/
func BenchmarkAnalyze10M(b *testing.B) {
	if os.Getenv("ABACUS_BENCH_BIG") != "1" {
		b.Skip("set ABACUS_BENCH_BIG=1: loads 10M rows into ClickHouse")
	}
	conn, _ := chdbtest.Conn(b)
	ctx := b.Context()
	const rows, users = 10_000_000, 1_000_000
	def := &experiment.Test{
		ID: "big", Name: "big", Type: experiment.TypeWorkflow, ControlVariantID: "a", PrimaryMetric: "revenue",
		Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
	}
	def.SetDefaults()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO assignments (test_id, variant_id, user_id, event_id, event_time, stream_seq, ingested_at)
			SELECT 'big', if(number %% 2 = 0, 'a', 'b'), concat('user-', toString(number)), concat('as-', toString(number)),
			       now() - 3600, number, now() - 3600
			FROM system.numbers LIMIT %d`, users),
		fmt.Sprintf(`INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq, ingested_at)
			SELECT 'big', if(u %% 2 = 0, 'a', 'b'), concat('user-', toString(u)), 'revenue', (rand() %% 10000) / 100 + if(u %% 2 = 0, 0, 0.05),
			       concat('ev-', toString(number)), now() - 3600, number, now() - 3600
			FROM (SELECT number, intHash64(number) %% %d AS u FROM system.numbers LIMIT %d)`, users, rows),
	} {
		if err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := load(ctx, conn, def); err != nil {
		b.Fatal(err)
	}
	b.Logf("cold fold and first load of %d rows: %v", rows, time.Since(start).Round(time.Millisecond))
	for b.Loop() {
		d, err := load(ctx, conn, def)
		if err != nil {
			b.Fatal(err)
		}
		if s := d.Metrics["revenue"]["a"]; s.N < users/2-5000 {
			b.Fatalf("variant a has %d users, want about %d", s.N, users/2)
		}
		BuildReport(def, d, time.Now())
	}
	b.StopTimer()
	// Data keeps coming: 100k new rows (about 95k users touched) make the
	// next load recompute those users.
	if err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)
		SELECT 'big', if(u %% 2 = 0, 'a', 'b'), concat('user-', toString(u)), 'revenue', (rand() %% 10000) / 100,
		       concat('new-', toString(number)), now(), number
		FROM (SELECT number, intHash64(number + %d) %% %d AS u FROM system.numbers LIMIT 100000)`, rows, users)); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if _, err := load(ctx, conn, def); err != nil {
		b.Fatal(err)
	}
	b.Logf("load after 100k new rows (incremental fold): %v", time.Since(start).Round(time.Millisecond))
}
