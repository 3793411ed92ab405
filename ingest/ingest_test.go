package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).acceptConnections.func1"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
		// The connection pool of chdbtest's shared admin connection lives as long as the binary.
		goleak.IgnoreTopFunction("github.com/ClickHouse/clickhouse-go/v2.(*connPool).runDrainPool"),
	)
}

type env struct {
	bus  *eventbus.Bus
	conn driver.Conn
	log  *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	conn, _ := chdbtest.Conn(t)
	bus := eventbustest.Connect(t, eventbustest.RunServer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &env{bus: bus, conn: conn, log: log}
}

func (e *env) publish(t *testing.T, subject string, v any) {
	t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.bus.JS.Publish(t.Context(), subject, data); err != nil {
		t.Fatal(err)
	}
}

// start runs a consumer until the returned stop function is called.
func (e *env) start(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	c, err := New(cfg, e.bus.JS, e.conn, e.log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// consumer returns the durable consumer once Run has created it.
func (e *env) consumer(t *testing.T) jetstream.Consumer {
	t.Helper()
	var cons jetstream.Consumer
	waitFor(t, 10*time.Second, "the durable consumer", func() bool {
		var err error
		cons, err = e.bus.JS.Consumer(t.Context(), eventv1.Stream, eventv1.ConsumerIngest)
		return err == nil
	})
	return cons
}

func (e *env) count(t *testing.T, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := e.conn.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsumerStoresEvents(t *testing.T) {
	e := newEnv(t)
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const users = 500
	for i := range users {
		e.publish(t, eventv1.SubjectAssignment, eventv1.Assignment{
			EventID: fmt.Sprintf("a%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "control", Timestamp: ts,
		})
		e.publish(t, eventv1.SubjectResult, eventv1.Result{
			EventID: fmt.Sprintf("r%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "control",
			Metrics: map[string]float64{"revenue": float64(i), "conversion": float64(i % 2)}, Timestamp: ts,
		})
	}
	// Poison messages must not block the stream.
	e.publish(t, eventv1.SubjectResult, []byte("not json"))
	e.publish(t, eventv1.SubjectAssignment, []byte(`{"event_id": "x"}`))

	e.start(t, Config{BatchSize: 100, FlushInterval: 20 * time.Millisecond, Workers: 3})
	waitFor(t, 20*time.Second, "all rows in ClickHouse", func() bool {
		return e.count(t, "SELECT count() FROM results") == 2*users && e.count(t, "SELECT count() FROM assignments") == users
	})
	var sum float64
	var maxSeq uint64
	if err := e.conn.QueryRow(t.Context(), "SELECT sum(value), max(stream_seq) FROM results WHERE test_id = 't1' AND metric = 'revenue'").Scan(&sum, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if want := float64(users * (users - 1) / 2); sum != want {
		t.Errorf("sum(revenue) = %v, want %v", sum, want)
	}
	if maxSeq == 0 {
		t.Errorf("stream_seq not recorded")
	}
	var evTime time.Time
	if err := e.conn.QueryRow(t.Context(), "SELECT any(event_time) FROM assignments").Scan(&evTime); err != nil {
		t.Fatal(err)
	}
	if !evTime.Equal(ts) {
		t.Errorf("event_time = %v, want %v", evTime, ts)
	}
	// Everything acknowledged or terminated: nothing left pending.
	cons := e.consumer(t)
	waitFor(t, 10*time.Second, "no pending messages", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// TestConsumerRetriesUntilClickHouseAcceptsInserts makes every insert fail
// (the results table is renamed away), then repairs it: the consumer must
// redeliver and store every event exactly once it can.
func TestConsumerRetriesUntilClickHouseAcceptsInserts(t *testing.T) {
	e := newEnv(t)
	if err := e.conn.Exec(t.Context(), "RENAME TABLE results TO results_away"); err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UTC().Truncate(time.Second)
	for i := range 50 {
		e.publish(t, eventv1.SubjectResult, eventv1.Result{
			EventID: fmt.Sprintf("r%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "b",
			Metrics: map[string]float64{"m": 1}, Timestamp: ts,
		})
	}
	e.start(t, Config{BatchSize: 20, FlushInterval: 10 * time.Millisecond, Workers: 1, MaxBackoff: 300 * time.Millisecond})
	cons := e.consumer(t)
	waitFor(t, 10*time.Second, "a redelivery", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumRedelivered > 0
	})
	if err := e.conn.Exec(t.Context(), "RENAME TABLE results_away TO results"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "50 rows after recovery", func() bool {
		return e.count(t, "SELECT count() FROM results") >= 50
	})
	if n := e.count(t, "SELECT count() FROM results"); n != 50 {
		t.Errorf("results rows = %d, want 50", n)
	}
}

// TestShutdownFlushesBatchInHand stops the consumer while events flow: what
// was acknowledged is in ClickHouse, and the rest is still in the stream for
// the next consumer.
func TestShutdownLosesNothing(t *testing.T) {
	e := newEnv(t)
	const n = 2000
	ts := time.Now().UTC()
	for i := range n {
		e.publish(t, eventv1.SubjectResult, eventv1.Result{
			EventID: fmt.Sprintf("r%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "b",
			Metrics: map[string]float64{"m": 1}, Timestamp: ts,
		})
	}
	stop := e.start(t, Config{BatchSize: 100, FlushInterval: 10 * time.Millisecond, Workers: 2})
	waitFor(t, 10*time.Second, "some rows", func() bool { return e.count(t, "SELECT count() FROM results") > 0 })
	stop()
	cons := e.consumer(t)
	// The server applies acks on its own goroutine, a moment after it
	// received them; an ack that was never sent would stay pending for
	// AckWait (a minute), far longer than this wait.
	var info *jetstream.ConsumerInfo
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if info, err = cons.Info(t.Context()); err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 || time.Now().After(deadline) {
			break
		}
	}
	stored := e.count(t, "SELECT count() FROM results")
	if info.NumAckPending != 0 {
		t.Errorf("after shutdown %d messages are delivered but unacknowledged, want 0", info.NumAckPending)
	}
	if acked := info.AckFloor.Stream; stored < acked {
		t.Errorf("after shutdown %d rows stored but the ack floor is %d: acknowledged events were lost", stored, acked)
	}
	// A new consumer picks up the rest.
	e.start(t, Config{BatchSize: 500, FlushInterval: 10 * time.Millisecond, Workers: 1})
	waitFor(t, 20*time.Second, "all rows", func() bool { return e.count(t, "SELECT count() FROM results") >= n })
	if got := e.count(t, "SELECT uniqExact(event_id) FROM results"); got != n {
		t.Errorf("distinct events stored = %d, want %d", got, n)
	}
	if got := e.count(t, "SELECT count() FROM results"); got != n {
		t.Errorf("rows stored = %d, want %d (no duplicates)", got, n)
	}
}

func TestPoisonGoesToDeadLetter(t *testing.T) {
	e := newEnv(t)
	e.publish(t, eventv1.SubjectResult, []byte("not json"))
	e.publish(t, eventv1.SubjectAssignment, []byte(`{"event_id": "x"}`))
	e.publish(t, eventv1.SubjectResult, eventv1.Result{
		EventID: "ok", TestID: "t1", UserID: "u", VariantID: "b", Metrics: map[string]float64{"m": 1}, Timestamp: time.Now(),
	})
	e.start(t, Config{BatchSize: 10, FlushInterval: 10 * time.Millisecond, Workers: 1})
	waitFor(t, 10*time.Second, "the valid event", func() bool { return e.count(t, "SELECT count() FROM results") == 1 })

	var got []string
	for _, m := range e.deadLetters(t, 2) {
		reason := m.Headers().Get(eventv1.HeaderDeadLetterReason)
		if reason == "" || m.Headers().Get(eventv1.HeaderOriginalStreamSeq) == "" {
			t.Errorf("dead letter %q lacks reason or sequence headers: %v", m.Data(), m.Headers())
		}
		got = append(got, m.Headers().Get(eventv1.HeaderOriginalSubject)+" "+string(m.Data()))
	}
	want := []string{eventv1.SubjectResult + " not json", eventv1.SubjectAssignment + ` {"event_id": "x"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letters = %q, want %q", got, want)
	}
	cons := e.consumer(t)
	waitFor(t, 10*time.Second, "nothing pending", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// TestRedeliveryAfterCrashIsNotDuplicated simulates a process that inserted a
// batch and died before acknowledging it: the messages come back after
// AckWait, and the new consumer must acknowledge them without inserting the
// events a second time.
func TestRedeliveryAfterCrashIsNotDuplicated(t *testing.T) {
	e := newEnv(t)
	const n = 40
	ts := time.Now().UTC().Truncate(time.Second)
	for i := range n {
		e.publish(t, eventv1.SubjectResult, eventv1.Result{
			EventID: fmt.Sprintf("r%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "b",
			Metrics: map[string]float64{"m": 1, "k": 2}, Timestamp: ts,
		})
		e.publish(t, eventv1.SubjectAssignment, eventv1.Assignment{
			EventID: fmt.Sprintf("a%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "b", Timestamp: ts,
		})
	}
	cfg := Config{BatchSize: 1000, FlushInterval: 10 * time.Millisecond, Workers: 1, AckWait: 3 * time.Second, InsertTimeout: time.Second}
	c, err := New(cfg, e.bus.JS, e.conn, e.log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c2 := crashThenRecover(t, e, c, 2*n)
	if got := e.count(t, "SELECT count() FROM results"); got != 2*n {
		t.Errorf("results rows = %d, want %d (each event once, two metrics each)", got, 2*n)
	}
	if got := e.count(t, "SELECT count() FROM assignments"); got != n {
		t.Errorf("assignment rows = %d, want %d", got, n)
	}
	if got := e.count(t, "SELECT uniqExact(event_id) FROM results"); got != n {
		t.Errorf("distinct result events = %d, want %d", got, n)
	}
	if dup := testutil.ToFloat64(c2.metrics.duplicates); dup != n {
		t.Errorf("redelivered duplicates skipped = %v, want %d", dup, n)
	}
}

func TestLagIsMeasured(t *testing.T) {
	e := newEnv(t)
	e.publish(t, eventv1.SubjectResult, eventv1.Result{
		EventID: "old", TestID: "t1", UserID: "u", VariantID: "b", Metrics: map[string]float64{"m": 1}, Timestamp: time.Now(),
	})
	if err := e.conn.Exec(t.Context(), "RENAME TABLE results TO results_away"); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Workers: 1, FlushInterval: 10 * time.Millisecond, LagInterval: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		e.bus.JS, e.conn, e.log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "a lag of at least 500ms while inserts fail", func() bool {
		l, ok := c.Lag()
		return ok && l.OldestAge >= 500*time.Millisecond && l.Pending+uint64(l.AckPending) >= 1
	})
	if err := e.conn.Exec(t.Context(), "RENAME TABLE results_away TO results"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "lag back to zero", func() bool {
		l, ok := c.Lag()
		return ok && l.OldestAge == 0 && l.Pending == 0 && l.AckPending == 0
	})
}

// TestStoredLooksUpLargeBatches asks about more events than a ClickHouse
// query of the default size (256 KiB) can name, and finds the stored ones.
func TestStoredLooksUpLargeBatches(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	w := &Writer{conn: conn, metrics: newMetrics(prometheus.NewRegistry())}
	var b Batch
	var evs []event
	ts := time.Now().UTC()
	for i := range 25000 {
		r := &eventv1.Result{EventID: fmt.Sprintf("01a21858-058e-7872-9c41-%012d", i), TestID: "t1", UserID: "u", VariantID: "b",
			Metrics: map[string]float64{"m": 1}, Timestamp: ts}
		evs = append(evs, event{result: r})
		if i%3 == 0 {
			b.append(event{result: r}, uint64(i))
		}
	}
	if err := w.Write(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	got, err := w.stored(t.Context(), evs)
	if err != nil {
		t.Fatalf("stored(25000 events) = %v", err)
	}
	if len(got) != 8334 {
		t.Errorf("stored found %d events, want 8334", len(got))
	}
	if !got[evs[3].key()] || got[evs[4].key()] {
		t.Errorf("stored marks the wrong events")
	}
}

// BenchmarkWriterInsert is the bare ClickHouse ceiling that end-to-end
// ingestion is compared with: batches of 10,000 result rows (5,000 events
// with two metrics), column-wise, one connection.
func BenchmarkWriterInsert(b *testing.B) {
	conn, _ := chdbtest.Conn(b)
	w := &Writer{conn: conn, metrics: newMetrics(prometheus.NewRegistry())}
	var batch Batch
	ts := time.Now().UTC()
	for i := range 5000 {
		batch.append(event{result: &eventv1.Result{EventID: fmt.Sprintf("e%d", i), TestID: "bench", UserID: fmt.Sprintf("u%d", i%1000),
			VariantID: "b", Metrics: map[string]float64{"revenue": float64(i), "conversion": 1}, Timestamp: ts}}, uint64(i))
	}
	rows := len(batch.results.testID)
	b.ResetTimer()
	for b.Loop() {
		if err := w.Write(b.Context(), &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestHighWaterMarkAfterLostDeliveries simulates a crash that took the NATS
// server's record of deliveries with it: half the events are already in
// ClickHouse and an intent covers them, but JetStream delivers them as new
// (NumDelivered 1). The consumer must still store each event once.
func TestHighWaterMarkAfterLostDeliveries(t *testing.T) {
	e := newEnv(t)
	const n = 30
	ts := time.Now().UTC().Truncate(time.Second)
	var stored Batch
	var top uint64
	for i := range n {
		r := eventv1.Result{EventID: fmt.Sprintf("r%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "b",
			Metrics: map[string]float64{"m": 1}, Timestamp: ts}
		data, _ := json.Marshal(r)
		ack, err := e.bus.JS.Publish(t.Context(), eventv1.SubjectResult, data)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			stored.append(event{result: &r}, ack.Sequence)
			top = ack.Sequence
		}
	}
	st, err := e.bus.JS.Stream(t.Context(), eventv1.Stream)
	if err != nil {
		t.Fatal(err)
	}
	key := eventv1.ConsumerIngest + "@" + st.CachedInfo().Created.UTC().Format(time.RFC3339Nano)
	w := &Writer{conn: e.conn, metrics: newMetrics(prometheus.NewRegistry())}
	if err := w.recordIntent(t.Context(), key, top); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), &stored); err != nil {
		t.Fatal(err)
	}
	e.start(t, Config{BatchSize: 100, FlushInterval: 10 * time.Millisecond, Workers: 1})
	cons := e.consumer(t)
	waitFor(t, 10*time.Second, "every message acknowledged", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if got := e.count(t, "SELECT count() FROM results"); got != n {
		t.Errorf("results rows = %d, want %d: events at or below the high-water mark were inserted again", got, n)
	}
}

// crashThenRecover plays a process that fetched msgs messages, inserted the
// events of every other one and died before acknowledging any (c is its
// consumer), then runs a new consumer with c's configuration until every
// message is acknowledged, and returns it.
func crashThenRecover(t *testing.T, e *env, c *Consumer, msgs int) *Consumer {
	t.Helper()
	cons, err := e.bus.JS.CreateOrUpdateConsumer(t.Context(), eventv1.Stream, c.consumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(msgs, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	i := 0
	for m := range batch.Messages() {
		if i%2 == 0 {
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if err := addMessage(&b, m.Subject(), m.Data(), md.Sequence.Stream); err != nil {
				t.Fatal(err)
			}
		}
		i++
	}
	if i != msgs {
		t.Fatalf("fetched %d messages, want %d", i, msgs)
	}
	if err := c.writer.Write(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	c2, err := New(c.cfg, e.bus.JS, e.conn, e.log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c2.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 20*time.Second, "every message acknowledged", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	return c2
}

// deadLetters reads the first n messages of the dead-letter stream.
func (e *env) deadLetters(t *testing.T, n int) []jetstream.Msg {
	t.Helper()
	dl, err := e.bus.JS.OrderedConsumer(t.Context(), eventv1.StreamDeadLetter, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := dl.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	return out
}
