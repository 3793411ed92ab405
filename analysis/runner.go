package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// Config tunes the runner.
type Config struct {
	// Interval between timer runs over every running test.
	Interval time.Duration
	// QueryTimeout bounds one test's analysis (or history request), also
	// when shutdown begins while it runs.
	QueryTimeout time.Duration
	// Concurrency bounds the on-demand analyses in flight, and the timer
	// cycle's workers.
	Concurrency int
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 20 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	if c.Interval < time.Second {
		return fmt.Errorf("analysis interval %v: want at least 1s", c.Interval)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("analysis concurrency %d: want at least 1", c.Concurrency)
	}
	return nil
}

// tests is the registry of test definitions (met by *registry.Store).
type tests interface {
	Get(ctx context.Context, id string) (*experiment.Test, error)
	List() []*experiment.Test
}

// reportStore keeps the latest report per test (met by jetstream.KeyValue).
type reportStore interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// Runner computes reports on a timer and on request.
type Runner struct {
	cfg     Config
	conn    driver.Conn
	tests   tests
	reports reportStore
	nc      *nats.Conn
	log     *slog.Logger
	now     func() time.Time
	// flight makes concurrent requests for one test share one computation.
	flight singleflight.Group

	runs     *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewRunner returns a runner. Call Run to start it.
func NewRunner(cfg Config, conn driver.Conn, t tests, reports reportStore, nc *nats.Conn, log *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{
		cfg: cfg, conn: conn, tests: t, reports: reports, nc: nc, log: log, now: time.Now,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_analysis_runs_total",
			Help: "Test analyses by trigger (timer, request) and outcome (ok, error).",
		}, []string{"trigger", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "abacus_analysis_duration_seconds",
			Help:    "Time to analyze one test, queries included.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	reg.MustRegister(r.runs, r.duration)
	return r, nil
}

// Run serves analysis and history requests and runs the timer until ctx is
// done. Then it starts no further analysis, and returns after the
// subscriptions are closed and every analysis in flight has finished, each
// within QueryTimeout of its start.
func (r *Runner) Run(ctx context.Context) error {
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, r.cfg.Concurrency)
		// mu guards stopped, which stop sets before it waits, so that no
		// request starts (wg.Add) once the wait has begun.
		mu      sync.Mutex
		stopped bool
	)
	var subs []*nats.Subscription
	stop := func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		for _, sub := range subs {
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				r.log.Warn("unsubscribing analyzer", "subject", sub.Subject, "err", err)
			}
		}
		wg.Wait()
	}
	// A request that arrives after ctx is done starts nothing; its answer
	// lets the API fall back to the stored report at once.
	shuttingDown := func(m *nats.Msg) { r.replyError(m, http.StatusServiceUnavailable, "the analyzer is shutting down") }
	for _, h := range []struct {
		subject string
		serve   func(context.Context, *nats.Msg)
	}{
		{eventv1.SubjectAnalyze, r.serve},
		{eventv1.SubjectHistory, r.serveHistory},
	} {
		sub, err := r.nc.QueueSubscribe(h.subject, eventv1.QueueAnalyzers, func(m *nats.Msg) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				shuttingDown(m)
				return
			}
			mu.Lock()
			if stopped || ctx.Err() != nil {
				mu.Unlock()
				<-sem
				shuttingDown(m)
				return
			}
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer func() { <-sem; wg.Done() }()
				h.serve(ctx, m)
			}()
		})
		if err != nil {
			stop()
			return fmt.Errorf("subscribing to %s: %w", h.subject, err)
		}
		subs = append(subs, sub)
	}
	r.log.Info("analyzer started", "interval", r.cfg.Interval)

	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			r.log.Info("analyzer stopped")
			return nil
		case <-t.C:
			// A tick and shutdown can be ready together: never start a
			// cycle after ctx is done.
			if ctx.Err() == nil {
				r.runAll(ctx)
			}
		}
	}
}

// runAll analyzes every running test, and every stopped test whose stored
// report predates its stop. A report younger than half the interval (written
// by another replica) is left alone, so replicas share the work. Once ctx is
// done no further test starts; the runs in flight finish (see analyze).
func (r *Runner) runAll(ctx context.Context) {
	// Tests are analyzed by Concurrency workers; the cycle returns when all
	// are done, so cycles never overlap.
	work := make(chan *experiment.Test)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				r.runOne(ctx, t)
			}
		}()
	}
feed:
	for _, t := range r.tests.List() {
		if t.Status == experiment.StatusDraft {
			continue
		}
		select {
		case work <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// runOne analyzes one test on the timer unless its stored report is recent
// enough (written by another replica, or final after a stop).
func (r *Runner) runOne(ctx context.Context, t *experiment.Test) {
	if ctx.Err() != nil {
		return
	}
	computed, err := r.storedAt(ctx, t.ID)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.log.Warn("reading stored report", "experiment_id", t.ID, "err", err)
	}
	if t.Status == experiment.StatusStopped && t.StoppedAt != nil && computed.After(*t.StoppedAt) {
		return
	}
	if r.now().Sub(computed) < r.cfg.Interval/2 && !computed.Before(t.UpdatedAt) {
		return
	}
	// Through the same flight as requests: a timer run and a request never
	// compute one test at once (and never store an older report over a
	// newer one).
	if _, err, _ := r.flight.Do(t.ID, func() (any, error) { return r.analyze(ctx, t, "timer") }); err != nil {
		r.log.Error("analyzing test", "experiment_id", t.ID, "err", err)
	}
}

func (r *Runner) storedAt(ctx context.Context, testID string) (time.Time, error) {
	e, err := r.reports.Get(ctx, testID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return experiment.ReportComputedAt(e.Value())
}

// requestedTest decodes a request into req, whose test id testID points
// into, and returns the test. On failure it has replied with the error.
func (r *Runner) requestedTest(ctx context.Context, m *nats.Msg, req any, testID *string, what string) (*experiment.Test, bool) {
	if err := json.Unmarshal(m.Data, req); err != nil || *testID == "" {
		r.replyError(m, http.StatusBadRequest, "malformed "+what+" request")
		return nil, false
	}
	t, err := r.tests.Get(ctx, *testID)
	if errors.Is(err, experiment.ErrNotFound) {
		r.replyError(m, http.StatusNotFound, "test not found")
		return nil, false
	}
	if err != nil {
		r.log.Error("reading test for "+what, "experiment_id", *testID, "err", err)
		r.replyError(m, http.StatusServiceUnavailable, "reading the test failed")
		return nil, false
	}
	return t, true
}

// serve answers one analysis request.
func (r *Runner) serve(ctx context.Context, m *nats.Msg) {
	var req eventv1.AnalyzeRequest
	t, ok := r.requestedTest(ctx, m, &req, &req.TestID, "analysis")
	if !ok {
		return
	}
	v, err, _ := r.flight.Do(t.ID, func() (any, error) { return r.analyze(ctx, t, "request") })
	if err != nil {
		r.log.Error("analyzing test", "experiment_id", t.ID, "err", err)
		r.replyError(m, http.StatusInternalServerError, err.Error())
		return
	}
	if err := m.Respond(v.([]byte)); err != nil {
		r.log.Debug("replying to analysis request", "err", err)
	}
}

func (r *Runner) replyError(m *nats.Msg, status int, msg string) {
	reply := nats.NewMsg(m.Reply)
	reply.Header.Set(eventv1.HeaderError, msg)
	reply.Header.Set(eventv1.HeaderStatus, strconv.Itoa(status))
	if err := m.RespondMsg(reply); err != nil {
		r.log.Debug("replying to analysis request", "err", err)
	}
}

// analyze computes t's report from ClickHouse, stores it and returns its
// JSON. Timer runs (runOne) and requests (serve) both come here, through
// the flight.
func (r *Runner) analyze(ctx context.Context, t *experiment.Test, trigger string) ([]byte, error) {
	start := time.Now()
	// The run has its own deadline and ignores ctx's cancellation: one in
	// flight at shutdown finishes (or hits QueryTimeout) and stores its
	// report; Run waits for it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.QueryTimeout)
	defer cancel()
	now := r.now()
	d, err := load(ctx, r.conn, t)
	if err != nil {
		r.runs.WithLabelValues(trigger, "error").Inc()
		return nil, err
	}
	rep := BuildReport(t, d, now)
	data, err := json.Marshal(rep)
	if err != nil {
		r.runs.WithLabelValues(trigger, "error").Inc()
		return nil, fmt.Errorf("encoding report: %w", err)
	}
	// The snapshot goes first: the API caches a history under the revision
	// of the stored report, so the new revision must not exist before the
	// point it brings. The history is best effort: a failed snapshot loses
	// one point of a dashboard's series, not the report.
	if err := writeSnapshot(ctx, r.conn, rep, trigger); err != nil {
		r.log.Error("writing the analysis snapshot", "experiment_id", t.ID, "err", err)
	}
	if _, err := r.reports.Put(ctx, t.ID, data); err != nil {
		r.runs.WithLabelValues(trigger, "error").Inc()
		return nil, fmt.Errorf("storing report: %w", err)
	}
	r.runs.WithLabelValues(trigger, "ok").Inc()
	r.duration.Observe(time.Since(start).Seconds())
	r.log.Debug("test analyzed", "experiment_id", t.ID, "trigger", trigger, "decision", rep.Decision)
	return data, nil
}

// serveHistory answers a history request.
func (r *Runner) serveHistory(ctx context.Context, m *nats.Msg) {
	var req eventv1.HistoryRequest
	t, ok := r.requestedTest(ctx, m, &req, &req.TestID, "history")
	if !ok {
		return
	}
	metric := req.Metric
	if metric == "" {
		metric = t.PrimaryMetric
	}
	if !experiment.ValidID(metric) {
		r.replyError(m, http.StatusBadRequest, "metric is not a valid metric name")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.QueryTimeout)
	defer cancel()
	h, err := loadHistory(ctx, r.conn, t, metric)
	if err != nil {
		r.log.Error("reading the history", "experiment_id", t.ID, "err", err)
		r.replyError(m, http.StatusInternalServerError, err.Error())
		return
	}
	r.reply(m, h)
}

func (r *Runner) reply(m *nats.Msg, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		r.replyError(m, http.StatusInternalServerError, "encoding the reply failed")
		return
	}
	if err := m.Respond(data); err != nil {
		r.log.Debug("replying to a request", "subject", m.Subject, "err", err)
	}
}
