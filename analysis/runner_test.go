package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/abacus-ab/abacus/analysis/stats/statstest"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/internal/registry"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).acceptConnections.func1"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("github.com/ClickHouse/clickhouse-go/v2.(*connPool).runDrainPool"),
	)
}

type refFile struct {
	ConfidenceLevel float64 `json:"confidence_level"`
	Events          []struct {
		EventID   string             `json:"event_id"`
		UserID    string             `json:"user_id"`
		VariantID string             `json:"variant_id"`
		Metrics   map[string]float64 `json:"metrics"`
	} `json:"events"`
	Expected map[string]struct {
		Variants map[string]struct {
			N       int64   `json:"n"`
			Mean    float64 `json:"mean"`
			StdDev  float64 `json:"std_dev"`
			CILower float64 `json:"ci_lower"`
			CIUpper float64 `json:"ci_upper"`
		} `json:"variants"`
		Comparisons map[string]struct {
			Diff    float64 `json:"diff"`
			T       float64 `json:"t"`
			DoF     float64 `json:"dof"`
			PValue  float64 `json:"p_value"`
			CILower float64 `json:"ci_lower"`
			CIUpper float64 `json:"ci_upper"`
		} `json:"comparisons"`
	} `json:"expected"`
}

// TestAnalyzeMatchesSciPy stores the reference events in ClickHouse (with
// redelivered duplicates), runs the analyzer over NATS request-reply as the
// API does, and checks every number against SciPy's.
func TestAnalyzeMatchesSciPy(t *testing.T) {
	var ref refFile
	readReference(t, &ref)
	conn, _ := chdbtest.Conn(t)
	bus := eventbustest.Connect(t, eventbustest.RunServer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	def := &experiment.Test{
		ID: "ref-test", Name: "reference", Type: experiment.TypeModel,
		Variants: []experiment.Variant{
			{ID: "control", TrafficPercentage: 40}, {ID: "b", TrafficPercentage: 40}, {ID: "c", TrafficPercentage: 20},
		},
		ControlVariantID: "control", PrimaryMetric: "revenue", ConfidenceLevel: ref.ConfidenceLevel,
		MinSampleSize: 100, Status: experiment.StatusRunning, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	testsKV, _ := bus.KV(t.Context(), eventbus.BucketTests)
	reportsKV, _ := bus.KV(t.Context(), eventbus.BucketReports)
	store := registry.New(testsKV, log)
	if err := store.Create(t.Context(), def); err != nil {
		t.Fatal(err)
	}

	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range ref.Events {
		for m, v := range ev.Metrics {
			if err := batch.Append(def.ID, ev.VariantID, ev.UserID, m, v, ev.EventID, time.Now(), uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		// Another test's rows must not leak into this one.
		if err := batch.Append("other-test", ev.VariantID, ev.UserID, "revenue", 1e6, ev.EventID, time.Now(), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	runner, err := NewRunner(Config{Interval: time.Hour}, conn, store, reportsKV, bus.NC, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer startRunner(t, runner)()

	req, _ := json.Marshal(eventv1.AnalyzeRequest{TestID: def.ID})
	reply, err := bus.NC.Request(eventv1.SubjectAnalyze, req, 10*time.Second)
	if err != nil {
		t.Fatalf("analysis request: %v", err)
	}
	if e := reply.Header.Get(eventv1.HeaderError); e != "" {
		t.Fatalf("analysis failed: %s", e)
	}
	var rep experiment.Report
	if err := json.Unmarshal(reply.Data, &rep); err != nil {
		t.Fatal(err)
	}

	for _, m := range rep.Metrics {
		want, ok := ref.Expected[m.Metric]
		if !ok {
			t.Errorf("unexpected metric %s in report", m.Metric)
			continue
		}
		for _, v := range m.Variants {
			w := want.Variants[v.VariantID]
			name := fmt.Sprintf("%s/%s", m.Metric, v.VariantID)
			if v.SampleSize != w.N {
				t.Errorf("%s sample_size = %d, want %d", name, v.SampleSize, w.N)
			}
			checkFields(t, name, []fieldCheck{
				{"mean_value", v.MeanValue, w.Mean},
				{"std_dev", v.StdDev, w.StdDev},
				{"confidence_interval_lower", v.ConfidenceIntervalLower, w.CILower},
				{"confidence_interval_upper", v.ConfidenceIntervalUpper, w.CIUpper},
			})
		}
		for _, c := range m.Comparisons {
			w := want.Comparisons[c.VariantID]
			name := fmt.Sprintf("%s/%s vs control", m.Metric, c.VariantID)
			checkFields(t, name, []fieldCheck{
				{"absolute_difference", c.AbsoluteDifference, w.Diff},
				{"t_statistic", c.TStatistic, w.T},
				{"degrees_of_freedom", c.DegreesOfFreedom, w.DoF},
				{"p_value", c.PValue, w.PValue},
				{"confidence_interval_lower", c.ConfidenceIntervalLower, w.CILower},
				{"confidence_interval_upper", c.ConfidenceIntervalUpper, w.CIUpper},
			})
		}
	}
	if len(rep.Metrics) != 2 || rep.Metrics[0].Metric != "revenue" {
		t.Errorf("report metrics = %d, primary first; got %+v", len(rep.Metrics), rep.Metrics)
	}
	// b's revenue is significantly higher (p ~ 1e-5 in the reference): b wins.
	if rep.WinnerVariantID == nil || *rep.WinnerVariantID != "b" {
		t.Errorf("winner = %v (%s), want b", rep.WinnerVariantID, rep.Reason)
	}
	// The report is stored for the API.
	e, err := reportsKV.Get(t.Context(), def.ID)
	if err != nil {
		t.Fatalf("stored report: %v", err)
	}
	if string(e.Value()) != string(reply.Data) {
		t.Errorf("stored report differs from the reply")
	}

	// Unknown test: a 404 in the reply headers.
	req, _ = json.Marshal(eventv1.AnalyzeRequest{TestID: "nope"})
	reply, err = bus.NC.Request(eventv1.SubjectAnalyze, req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Header.Get(eventv1.HeaderStatus) != "404" {
		t.Errorf("analysis of an unknown test: status %q, want 404", reply.Header.Get(eventv1.HeaderStatus))
	}
}

// startRunner runs r until the returned stop is called, which cancels Run,
// waits for it and checks its result. It returns once r's subscriptions are
// up: Run logs "analyzer started" after subscribing, and a request on the
// connection r subscribed on reaches the server after the subscription.
func startRunner(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	started := make(chan struct{})
	r.log = slog.New(signalHandler{Handler: r.log.Handler(), msg: "analyzer started", once: new(sync.Once), ch: started})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("Run() = %v before it started", err)
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}
}

// signalHandler closes ch when a record with message msg is logged, and
// passes every record on to Handler.
type signalHandler struct {
	slog.Handler
	msg  string
	once *sync.Once
	ch   chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	if !h.Handler.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, rec)
}

func (h signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h signalHandler) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

// analyzeReport runs the analysis that timer runs and requests run, and
// decodes the report it stored and returned.
func analyzeReport(t *testing.T, r *Runner, def *experiment.Test) *experiment.Report {
	t.Helper()
	data, err := r.analyze(t.Context(), def, "test")
	if err != nil {
		t.Fatal(err)
	}
	var rep experiment.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// fieldCheck is one reported number and its reference value.
type fieldCheck struct {
	field string
	got   *float64
	want  float64
}

// checkFields compares reported numbers with SciPy's to statstest.RelTol
// (1e-9 relative).
func checkFields(t *testing.T, name string, fs []fieldCheck) {
	t.Helper()
	for _, f := range fs {
		if !statstest.ClosePtr(f.got, f.want) {
			t.Errorf("%s %s = %v, want %v (SciPy)", name, f.field, deref(f.got), f.want)
		}
	}
}

// readReference decodes testdata/report_reference.json into v.
func readReference(t *testing.T, v any) {
	t.Helper()
	raw, err := os.ReadFile("testdata/report_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// gatedConn holds the first query of a run until release is closed, and
// closes inFlight when that query arrives: the test knows a run is in flight
// without sleeping.
type gatedConn struct {
	driver.Conn
	once     sync.Once
	inFlight chan struct{}
	release  chan struct{}
	// testID is the first query's test, set before inFlight is closed.
	testID string
}

func (g *gatedConn) gate(args []any) {
	g.once.Do(func() {
		if len(args) > 0 {
			g.testID, _ = args[0].(string)
		}
		close(g.inFlight)
		<-g.release
	})
}

func (g *gatedConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	g.gate(args)
	return g.Conn.Query(ctx, query, args...)
}

func (g *gatedConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	g.gate(args)
	return g.Conn.QueryRow(ctx, query, args...)
}

func (g *gatedConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	g.gate(args)
	return g.Conn.Select(ctx, dest, query, args...)
}

func (g *gatedConn) Exec(ctx context.Context, query string, args ...any) error {
	g.gate(args)
	return g.Conn.Exec(ctx, query, args...)
}

// TestShutdownFinishesTheRunInFlight cancels the Runner's ctx while a timer
// run is inside its first ClickHouse query: the run finishes and stores its
// report before Run returns, and the cycle starts no other test.
func TestShutdownFinishesTheRunInFlight(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	bus := eventbustest.Connect(t, eventbustest.RunServer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	testsKV, _ := bus.KV(t.Context(), eventbus.BucketTests)
	reportsKV, _ := bus.KV(t.Context(), eventbus.BucketReports)
	store := registry.New(testsKV, log)
	ids := []string{"shutdown-a", "shutdown-b"}
	for _, id := range ids {
		def := &experiment.Test{
			ID: id, Name: id, Type: experiment.TypeModel,
			Variants:         []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
			ControlVariantID: "a", PrimaryMetric: "m", Status: experiment.StatusRunning,
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
		}
		def.SetDefaults()
		if err := store.Create(t.Context(), def); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		for _, id := range ids {
			if err := batch.Append(id, []string{"a", "b"}[i%2], fmt.Sprintf("u%d", i), "m", float64(i%5), fmt.Sprintf("%s-e%d", id, i), time.Now(), uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	gated := &gatedConn{Conn: conn, inFlight: make(chan struct{}), release: make(chan struct{})}
	// One worker: the second test waits for the first, so shutdown must
	// keep it from starting.
	runner, err := NewRunner(Config{Interval: time.Second, Concurrency: 1}, gated, store, reportsKV, bus.NC, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()

	select {
	case <-gated.inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("no timer run started")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a run was in flight", err)
	default:
	}
	// A request after shutdown began starts no analysis either: the
	// subscription is still up (Run waits for the run in flight), and it
	// answers 503 at once.
	other := ids[0]
	if other == gated.testID {
		other = ids[1]
	}
	req, _ := json.Marshal(eventv1.AnalyzeRequest{TestID: other})
	if reply, err := bus.NC.Request(eventv1.SubjectAnalyze, req, 10*time.Second); err != nil || reply.Header.Get(eventv1.HeaderStatus) != "503" {
		t.Errorf("request after shutdown began: %v, %v; want a 503 reply", reply, err)
	}
	close(gated.release)
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}

	stored := 0
	for _, id := range ids {
		e, err := reportsKV.Get(t.Context(), id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if id != gated.testID {
			t.Errorf("report of %s stored: a run started after shutdown", id)
		}
		var rep experiment.Report
		if err := json.Unmarshal(e.Value(), &rep); err != nil || rep.TestID != id {
			t.Errorf("stored report of %s = %s (%v)", id, e.Value(), err)
		}
		stored++
	}
	if stored != 1 {
		t.Errorf("%d reports stored, want 1: the run in flight (%s)", stored, gated.testID)
	}
	if ok, failed := testutil.ToFloat64(runner.runs.WithLabelValues("timer", "ok")), testutil.ToFloat64(runner.runs.WithLabelValues("timer", "error")); ok != 1 || failed != 0 {
		t.Errorf("timer runs: %v ok, %v failed; want the one in flight, ok", ok, failed)
	}
}
