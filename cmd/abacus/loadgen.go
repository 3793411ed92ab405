package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/time/rate"

	"github.com/abacus-ab/abacus/internal/chdb"
	"github.com/abacus-ab/abacus/internal/loadcheck"
)

// loadgenConfig is what `abacus loadgen` is told.
type loadgenConfig struct {
	URL           string
	APIKey        string
	TestID        string
	Mode          string
	BatchSize     int
	Users         int
	Events        int
	Duration      time.Duration
	Rate          float64
	Concurrency   int
	BaselineMean  float64
	BaselineSD    float64
	Effect        float64
	ConvRate      float64
	ClickHouseURL string
	VerifyTimeout time.Duration
	Seed          uint64
	AllowRemote   bool
	CompareBare   bool
}

func parseLoadgen(args []string, getenv func(string) string, stderr io.Writer) (*loadgenConfig, error) {
	c := &loadgenConfig{}
	fs := flag.NewFlagSet("abacus loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ch := getenv("CLICKHOUSE_URL")
	if ch == "" {
		ch = "clickhouse://127.0.0.1:9000/abacus"
	}
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8000", "base URL of a running abacus serve")
	fs.StringVar(&c.APIKey, "api-key", getenv("ABACUS_API_KEY"), "API key sent as X-API-Key (env ABACUS_API_KEY)")
	fs.StringVar(&c.TestID, "test-id", "", "reuse this running test (default: create and start one)")
	fs.StringVar(&c.Mode, "mode", "batch", "single (assign + record per event) or batch (POST /events)")
	fs.IntVar(&c.BatchSize, "batch-size", 1000, "events per batch request in batch mode (at most 10000)")
	fs.IntVar(&c.Users, "users", 10000, "distinct simulated users")
	fs.IntVar(&c.Events, "events", 100000, "result events to send (0: until -duration)")
	fs.DurationVar(&c.Duration, "duration", 0, "send for this long instead of a fixed number of events")
	fs.Float64Var(&c.Rate, "rate", 0, "target result events per second (0: as fast as possible)")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "concurrent HTTP clients")
	fs.Float64Var(&c.BaselineMean, "mean", 10, "control's mean of the continuous metric \"revenue\"")
	fs.Float64Var(&c.BaselineSD, "sd", 3, "standard deviation of \"revenue\"")
	fs.Float64Var(&c.Effect, "effect", 0.05, "true relative lift of the treatment on revenue and conversion")
	fs.Float64Var(&c.ConvRate, "conversion", 0.1, "control's conversion rate of the binary metric \"conversion\"")
	fs.StringVar(&c.ClickHouseURL, "clickhouse-url", ch, "ClickHouse to check counts in (env CLICKHOUSE_URL); empty skips the check")
	fs.DurationVar(&c.VerifyTimeout, "verify-timeout", 5*time.Minute, "how long to wait for ingestion to finish")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.BoolVar(&c.CompareBare, "compare-bare", false, "after the run, insert as many rows straight into a scratch ClickHouse table and print end to end / bare")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case c.Mode != "single" && c.Mode != "batch":
		return nil, fmt.Errorf("-mode %q: want single or batch", c.Mode)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return nil, fmt.Errorf("-batch-size %d: want 1 to 10000", c.BatchSize)
	case c.Users < 1:
		return nil, errors.New("-users: want at least 1")
	case c.Events <= 0 && c.Duration <= 0:
		return nil, errors.New("give -events or -duration")
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return nil, fmt.Errorf("-concurrency %d: want 1 to 1024", c.Concurrency)
	case c.ConvRate < 0 || c.ConvRate > 1 || c.ConvRate*(1+c.Effect) > 1:
		return nil, errors.New("-conversion (times 1 + -effect) must be a probability")
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://host:port", c.URL)
	}
	if !c.AllowRemote && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("-url %q is not a loopback address; load tests target this machine unless -allow-remote is given", c.URL)
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadgenStats collects what the run measured.
type loadgenStats struct {
	mu         sync.Mutex
	latencies  []time.Duration
	ackTimes   []time.Time // when each acknowledged result event was acknowledged
	resultsOK  atomic.Int64
	assignOK   atomic.Int64
	rejected   atomic.Int64
	failed     atomic.Int64
	httpErrors atomic.Int64
}

func (s *loadgenStats) observe(d time.Duration, acked int, at time.Time) {
	s.mu.Lock()
	s.latencies = append(s.latencies, d)
	for range acked {
		s.ackTimes = append(s.ackTimes, at)
	}
	s.mu.Unlock()
}

type loadgen struct {
	cfg    *loadgenConfig
	client *http.Client
	out    io.Writer
	stats  loadgenStats
	testID string
}

// runLoadgen drives a running Abacus over HTTP as clients would, then checks
// that ClickHouse holds exactly the acknowledged events.
func runLoadgen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseLoadgen(args, getenv, stderr)
	if err != nil {
		return err
	}
	lg := &loadgen{cfg: cfg, out: stdout, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2},
	}}
	if err := lg.setup(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loadgen: test %s, mode %s, %d users, concurrency %d\n", lg.testID, cfg.Mode, cfg.Users, cfg.Concurrency)
	var conn driver.Conn
	if cfg.ClickHouseURL != "" {
		opts, err := chdb.ParseURL(cfg.ClickHouseURL)
		if err != nil {
			return err
		}
		if conn, err = chdb.Open(ctx, opts); err != nil {
			return err
		}
		defer conn.Close()
	}
	// Sample ClickHouse's row count while sending, for the ingest lag.
	pollCtx, stopPoll := context.WithCancel(ctx)
	samples := make(chan []countSample, 1)
	go func() { samples <- lg.poll(pollCtx, conn) }()
	start := time.Now()
	sendErr := lg.send(ctx, stderr)
	elapsed := time.Since(start)
	lg.report(elapsed)
	if sendErr != nil {
		stopPoll()
		<-samples
		return sendErr
	}
	if conn == nil {
		stopPoll()
		<-samples
		fmt.Fprintln(stdout, "count check: skipped (no -clickhouse-url)")
		return nil
	}
	e2e, err := lg.verify(ctx, conn, start, stopPoll, samples)
	e2eTook := time.Since(start)
	if err != nil || !cfg.CompareBare {
		return err
	}
	rows := uint64(lg.stats.resultsOK.Load()) * 2
	if rows == 0 {
		fmt.Fprintln(stdout, "bare insert: skipped (no result event was acknowledged)")
		return nil
	}
	scratch, err := loadcheck.NewScratch(ctx, conn)
	if err != nil {
		return err
	}
	defer func() {
		if err := scratch.Drop(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(stderr, "loadgen: dropping", scratch.Table+":", err)
		}
	}()
	bare, inserted, took, err := scratch.Insert(ctx, rows, e2eTook)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bare insert: %.0f rows/s (%d rows in %.1fs, %d-row batches on one connection, into a scratch copy of the results table)\n",
		bare, inserted, took.Seconds(), loadcheck.BareBatchRows)
	fmt.Fprintf(stdout, "end to end / bare insert: %.0f%%\n", 100*e2e/bare)
	return nil
}

// countSample is ClickHouse's number of result rows of the test at a time.
type countSample struct {
	at   time.Time
	rows uint64
}

// poll samples the row count every 100ms until ctx is done and the count
// reaches what was acknowledged, or ctx is cancelled.
func (lg *loadgen) poll(ctx context.Context, conn driver.Conn) []countSample {
	var out []countSample
	if conn == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if rows, err := loadcheck.ResultRows(ctx, conn, lg.testID); err == nil {
			out = append(out, countSample{time.Now(), rows})
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

func (lg *loadgen) do(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(lg.cfg.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if lg.cfg.APIKey != "" {
		req.Header.Set("X-API-Key", lg.cfg.APIKey)
	}
	resp, err := lg.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil && resp.StatusCode < 300 {
			return resp.StatusCode, fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusMultiStatus && out == nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return resp.StatusCode, nil
}

func (lg *loadgen) setup(ctx context.Context) error {
	if lg.cfg.TestID != "" {
		lg.testID = lg.cfg.TestID
		var t struct {
			Status string `json:"status"`
		}
		code, err := lg.do(ctx, "GET", "/api/ab-testing/tests/"+url.PathEscape(lg.testID), "", nil, &t)
		if err != nil || code != 200 {
			return fmt.Errorf("reading test %s: %d %v", lg.testID, code, err)
		}
		if t.Status != "running" {
			return fmt.Errorf("test %s is %s, want running", lg.testID, t.Status)
		}
		return nil
	}
	body, _ := json.Marshal(map[string]any{
		"test_name": fmt.Sprintf("loadgen %s", time.Now().UTC().Format(time.RFC3339)),
		"test_type": "workflow",
		"variants": []map[string]any{
			{"variant_id": "control", "variant_name": "Control", "traffic_percentage": 50},
			{"variant_id": "treatment", "variant_name": "Treatment", "traffic_percentage": 50},
		},
		"control_variant_id": "control",
		"primary_metric":     "revenue",
	})
	var created struct {
		TestID string `json:"test_id"`
		Error  string `json:"error"`
	}
	code, err := lg.do(ctx, "POST", "/api/ab-testing/tests", "application/json", body, &created)
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("creating the test: %d %v %s", code, err, created.Error)
	}
	lg.testID = created.TestID
	if _, err := lg.do(ctx, "POST", "/api/ab-testing/tests/"+lg.testID+"/start", "", nil, nil); err != nil {
		return fmt.Errorf("starting the test: %w", err)
	}
	return nil
}

// user is one simulated user: assigned once, then sending results.
type user struct {
	id       string
	variant  string
	assigned bool
}

// send runs the workers until the event budget or the duration is spent.
func (lg *loadgen) send(ctx context.Context, stderr io.Writer) error {
	cfg := lg.cfg
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var limiter *rate.Limiter
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/10), cfg.BatchSize))
	}
	users := make([]user, cfg.Users)
	for i := range users {
		users[i].id = fmt.Sprintf("lg-%s-%d", lg.testID[:8], i)
	}
	// Each worker owns the users i with i % concurrency == worker, so a
	// user's assignment always precedes its results.
	var budget atomic.Int64
	budget.Store(int64(cfg.Events))
	if cfg.Events <= 0 {
		budget.Store(math.MaxInt64)
	}
	stop := make(chan struct{})
	go lg.progress(ctx, stderr, stop)
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Concurrency)
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			var mine []int
			for i := w; i < len(users); i += cfg.Concurrency {
				mine = append(mine, i)
			}
			if len(mine) == 0 {
				return
			}
			if err := lg.worker(ctx, rng, users, mine, &budget, limiter); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errc)
	fmt.Fprintln(stderr)
	return <-errc
}

func (lg *loadgen) take(budget *atomic.Int64, n int) int {
	for {
		left := budget.Load()
		if left <= 0 {
			return 0
		}
		k := min(int64(n), left)
		if budget.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

func (lg *loadgen) sample(rng *rand.Rand, variant string) map[string]float64 {
	mean, p := lg.cfg.BaselineMean, lg.cfg.ConvRate
	if variant == "treatment" {
		mean *= 1 + lg.cfg.Effect
		p *= 1 + lg.cfg.Effect
	}
	conv := 0.0
	if rng.Float64() < p {
		conv = 1
	}
	return map[string]float64{"revenue": math.Round((mean+lg.cfg.BaselineSD*rng.NormFloat64())*100) / 100, "conversion": conv}
}

func (lg *loadgen) worker(ctx context.Context, rng *rand.Rand, users []user, mine []int, budget *atomic.Int64, limiter *rate.Limiter) error {
	per := 1
	if lg.cfg.Mode == "batch" {
		per = lg.cfg.BatchSize
	}
	base := "/api/ab-testing/tests/" + lg.testID
	for ctx.Err() == nil {
		n := lg.take(budget, per)
		if n == 0 {
			return nil
		}
		if limiter != nil {
			if err := limiter.WaitN(ctx, n); err != nil {
				return nil
			}
		}
		if lg.cfg.Mode == "single" {
			u := &users[mine[rng.IntN(len(mine))]]
			if !u.assigned {
				var a struct {
					VariantID string `json:"variant_id"`
				}
				body, _ := json.Marshal(map[string]string{"user_id": u.id})
				code, err := lg.do(ctx, "POST", base+"/assign", "application/json", body, &a)
				if err != nil || code != 200 {
					lg.stats.httpErrors.Add(1)
					continue
				}
				u.variant, u.assigned = a.VariantID, true
				lg.stats.assignOK.Add(1)
			}
			body, _ := json.Marshal(map[string]any{"user_id": u.id, "variant_id": u.variant, "metrics": lg.sample(rng, u.variant)})
			t0 := time.Now()
			code, err := lg.do(ctx, "POST", base+"/record", "application/json", body, &struct{}{})
			if err != nil || code != http.StatusAccepted {
				if ctx.Err() == nil {
					lg.stats.httpErrors.Add(1)
				}
				continue
			}
			now := time.Now()
			lg.stats.observe(now.Sub(t0), 1, now)
			lg.stats.resultsOK.Add(1)
			continue
		}
		if err := lg.sendBatch(ctx, rng, users, mine, n); err != nil {
			return err
		}
	}
	return nil
}

// sendBatch sends n result events, preceded by a batch of assignment events
// for the users not assigned yet; the server computes their variants and
// returns them, so the results name the right variant.
func (lg *loadgen) sendBatch(ctx context.Context, rng *rand.Rand, users []user, mine []int, n int) error {
	// First assign the users this batch will use, in one batch of assignments.
	picked := make([]*user, n)
	var toAssign []*user
	for i := range picked {
		u := &users[mine[rng.IntN(len(mine))]]
		picked[i] = u
		if !u.assigned && !slices.Contains(toAssign, u) {
			toAssign = append(toAssign, u)
		}
	}
	if len(toAssign) > 0 {
		var events []map[string]any
		for _, u := range toAssign {
			events = append(events, map[string]any{"type": "assignment", "test_id": lg.testID, "user_id": u.id})
		}
		body, _ := json.Marshal(events)
		var resp struct {
			Results []struct {
				Status    string `json:"status"`
				VariantID string `json:"variant_id"`
			} `json:"results"`
		}
		code, err := lg.do(ctx, "POST", "/api/ab-testing/events", "application/json", body, &resp)
		if err != nil || code != http.StatusAccepted || len(resp.Results) != len(toAssign) {
			if ctx.Err() == nil {
				lg.stats.httpErrors.Add(1)
			}
			return nil
		}
		for i, u := range toAssign {
			u.variant, u.assigned = resp.Results[i].VariantID, true
			lg.stats.assignOK.Add(1)
		}
	}
	// A struct, not a map: encoding it costs the load generator a third
	// as much CPU, which it shares with the server it measures.
	type metrics struct {
		Revenue    float64 `json:"revenue"`
		Conversion float64 `json:"conversion"`
	}
	type result struct {
		Type      string  `json:"type"`
		TestID    string  `json:"test_id"`
		UserID    string  `json:"user_id"`
		VariantID string  `json:"variant_id"`
		Metrics   metrics `json:"metrics"`
	}
	events := make([]result, n)
	for i, u := range picked {
		m := lg.sample(rng, u.variant)
		events[i] = result{Type: "result", TestID: lg.testID, UserID: u.id, VariantID: u.variant, Metrics: metrics{Revenue: m["revenue"], Conversion: m["conversion"]}}
	}
	body, _ := json.Marshal(events)
	var resp struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Failed   int `json:"failed"`
	}
	t0 := time.Now()
	code, err := lg.do(ctx, "POST", "/api/ab-testing/events", "application/json", body, &resp)
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			lg.stats.httpErrors.Add(1)
		}
		return nil
	}
	if code >= 500 && resp.Accepted == 0 && resp.Failed == 0 {
		lg.stats.httpErrors.Add(1)
		return nil
	}
	lg.stats.observe(now.Sub(t0), resp.Accepted, now)
	lg.stats.resultsOK.Add(int64(resp.Accepted))
	lg.stats.rejected.Add(int64(resp.Rejected))
	lg.stats.failed.Add(int64(resp.Failed))
	return nil
}

func (lg *loadgen) progress(ctx context.Context, w io.Writer, stop <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		done := lg.stats.resultsOK.Load()
		el := time.Since(start).Seconds()
		frac := 0.0
		if lg.cfg.Events > 0 {
			frac = float64(done) / float64(lg.cfg.Events)
		} else if lg.cfg.Duration > 0 {
			frac = el / lg.cfg.Duration.Seconds()
		}
		frac = min(frac, 1)
		bar := strings.Repeat("=", int(frac*30)) + strings.Repeat(" ", 30-int(frac*30))
		fmt.Fprintf(w, "\r[%s] %3.0f%% %d events, %.0f events/s, errors %d", bar, frac*100, done, float64(done)/el, lg.stats.httpErrors.Load())
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (lg *loadgen) report(elapsed time.Duration) {
	s := &lg.stats
	s.mu.Lock()
	lat := slices.Clone(s.latencies)
	s.mu.Unlock()
	slices.Sort(lat)
	ok := s.resultsOK.Load()
	fmt.Fprintf(lg.out, "sent: %d result events acknowledged, %d assignments, %d rejected, %d failed, %d HTTP errors in %.1fs\n",
		ok, s.assignOK.Load(), s.rejected.Load(), s.failed.Load(), s.httpErrors.Load(), elapsed.Seconds())
	fmt.Fprintf(lg.out, "throughput: %.0f result events/s\n", float64(ok)/elapsed.Seconds())
	fmt.Fprintf(lg.out, "latency per %s request: p50 %v p95 %v p99 %v max %v (%d requests)\n", lg.cfg.Mode,
		percentile(lat, .5).Round(time.Microsecond), percentile(lat, .95).Round(time.Microsecond),
		percentile(lat, .99).Round(time.Microsecond), percentile(lat, 1).Round(time.Microsecond), len(lat))
}

// verify waits until ClickHouse holds as many distinct result events of the
// test as were acknowledged and checks the counts. The ingest lag comes from
// the row-count samples: the k-th acknowledged event counts as ingested at
// the first sample holding more than k events (resolution: the 100ms poll).
func (lg *loadgen) verify(ctx context.Context, conn driver.Conn, start time.Time, stopPoll func(), samples <-chan []countSample) (rowsPerSec float64, err error) {
	lg.stats.mu.Lock()
	acks := slices.Clone(lg.stats.ackTimes)
	lg.stats.mu.Unlock()
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	want := uint64(len(acks))
	const metrics = 2 // revenue and conversion per result event
	deadline := time.Now().Add(lg.cfg.VerifyTimeout)
	var got uint64
	for {
		var err error
		if got, err = loadcheck.ResultEvents(ctx, conn, lg.testID); err != nil {
			stopPoll()
			<-samples
			return 0, fmt.Errorf("counting events: %w", err)
		}
		if got >= want || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	done := time.Now()
	stopPoll()
	series := <-samples
	var lags []time.Duration
	next := 0
	for _, smp := range series {
		for next < len(acks) && uint64(next) < smp.rows/metrics {
			if d := smp.at.Sub(acks[next]); d >= 0 {
				lags = append(lags, d)
			} else {
				lags = append(lags, 0)
			}
			next++
		}
	}
	for ; next < len(acks) && uint64(next) < got; next++ {
		lags = append(lags, done.Sub(acks[next]))
	}
	rows, err := loadcheck.ResultRows(ctx, conn, lg.testID)
	if err != nil {
		return 0, fmt.Errorf("counting rows: %w", err)
	}
	users, err := loadcheck.AssignedUsers(ctx, conn, lg.testID)
	if err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	slices.Sort(lags)
	fmt.Fprintf(lg.out, "ingest lag (ack to visible in ClickHouse): p50 %v p99 %v\n",
		percentile(lags, .5).Round(time.Millisecond), percentile(lags, .99).Round(time.Millisecond))
	fmt.Fprintf(lg.out, "end to end: %.0f events/s (%.0f rows/s) from the first request to the last event in ClickHouse\n",
		float64(got)/done.Sub(start).Seconds(), float64(rows)/done.Sub(start).Seconds())
	ok := got == want && rows == want*metrics && users == uint64(lg.stats.assignOK.Load())
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Fprintf(lg.out, "count check: %s: ClickHouse holds %d distinct result events (%d rows) and %d assigned users; acknowledged %d events (%d rows) and %d users\n",
		verdict, got, rows, users, want, want*metrics, lg.stats.assignOK.Load())
	if !ok {
		return 0, errors.New("count check failed: ClickHouse does not hold exactly the acknowledged events")
	}
	return float64(rows) / done.Sub(start).Seconds(), nil
}
