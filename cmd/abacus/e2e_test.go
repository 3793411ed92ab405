package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/chdb"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

// TestMain lets the test binary act as the abacus binary: the end-to-end
// test re-executes itself with ABACUS_E2E_MAIN=1 to get a real process that
// it can signal.
func TestMain(m *testing.M) {
	if os.Getenv("ABACUS_E2E_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running abacus serve.
type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServe(t *testing.T, env []string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "ABACUS_E2E_MAIN=1")
	cmd.Env = append(cmd.Env, env...)
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("abacus serve output:\n%s", p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("abacus serve exited with %v after SIGTERM, want 0", p.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("abacus serve did not exit within 60s of SIGTERM")
	}
}

// devServer is an abacus serve in development mode (embedded NATS, no
// authentication) on a database and data folder of its own.
type devServer struct {
	proc   *proc
	client *client
	ch     *clickhouse.Options
	env    []string // to start it again on the same data
}

// startDev starts a devServer with these settings added to the defaults,
// and waits until it is ready.
func startDev(t *testing.T, extra ...string) *devServer {
	t.Helper()
	ch := chdbtest.Database(t)
	addr := freeAddr(t)
	env := append([]string{
		"ENVIRONMENT=development",
		"ABACUS_HTTP_ADDR=" + addr,
		"DATA_DIR=" + t.TempDir(),
		"CLICKHOUSE_URL=" + fmt.Sprintf("clickhouse://%s/%s", ch.Addr[0], ch.Auth.Database),
		"INGEST_FLUSH_INTERVAL=20ms",
		"ANALYSIS_INTERVAL=1h",
		"NATS_URL=",
	}, extra...)
	p := startServe(t, env)
	c := &client{t: t, base: "http://" + addr}
	c.waitReady(p)
	return &devServer{proc: p, client: c, ch: ch, env: env}
}

type client struct {
	t    *testing.T
	base string
}

func (c *client) call(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// runningAB creates and starts a test with variants a (control) and b at
// 50/50 and primary metric m, and returns its id.
func (c *client) runningAB(name string) string {
	c.t.Helper()
	var created struct {
		TestID string `json:"test_id"`
	}
	if code := c.call("POST", "/api/ab-testing/tests", map[string]any{
		"test_name": name, "test_type": "routing",
		"variants":           []map[string]any{{"variant_id": "a", "traffic_percentage": 50}, {"variant_id": "b", "traffic_percentage": 50}},
		"control_variant_id": "a", "primary_metric": "m",
	}, &created); code != 201 {
		c.t.Fatalf("create = %d", code)
	}
	if code := c.call("POST", "/api/ab-testing/tests/"+created.TestID+"/start", nil, nil); code != 200 {
		c.t.Fatalf("start = %d", code)
	}
	return created.TestID
}

// waitIngestIdle waits for a /readyz ingest lag snapshot measured after
// since that shows no pending and no unacknowledged events.
func (c *client) waitIngestIdle(since time.Time, limit time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var r struct {
			Details struct {
				IngestLag *struct {
					Pending    uint64    `json:"pending"`
					AckPending int       `json:"ack_pending"`
					MeasuredAt time.Time `json:"measured_at"`
				} `json:"ingest_lag"`
			} `json:"details"`
		}
		c.call("GET", "/readyz", nil, &r)
		if l := r.Details.IngestLag; l != nil && l.MeasuredAt.After(since) && l.Pending == 0 && l.AckPending == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("ingest still busy %v after %v", limit, since)
}

// waitReady waits until /readyz answers 200, asking every 100ms, and
// fails at once if the process exits first.
func (c *client) waitReady(p *proc) {
	c.t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(c.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			c.t.Fatalf("abacus serve exited early: %v\n%s", p.err, p.logs.String())
		case <-deadline.C:
			c.t.Fatalf("abacus serve not ready after 60s:\n%s", p.logs.String())
		case <-tick.C:
		}
	}
}

type report struct {
	WinnerVariantID *string `json:"winner_variant_id"`
	Decision        string  `json:"decision"`
	Verdict         struct {
		Code string `json:"code"`
	} `json:"verdict"`
	Health struct {
		SRM *struct {
			Detected bool    `json:"detected"`
			PValue   float64 `json:"p_value"`
		} `json:"srm"`
	} `json:"health"`
	Metrics []struct {
		Metric   string `json:"metric"`
		Variants []struct {
			VariantID  string   `json:"variant_id"`
			SampleSize int64    `json:"sample_size"`
			Mean       *float64 `json:"mean_value"`
			StdDev     *float64 `json:"std_dev"`
			Lo         *float64 `json:"confidence_interval_lower"`
			Hi         *float64 `json:"confidence_interval_upper"`
		} `json:"variants"`
		Comparisons []struct {
			VariantID string   `json:"variant_id"`
			Diff      *float64 `json:"absolute_difference"`
			Lo        *float64 `json:"confidence_interval_lower"`
			Hi        *float64 `json:"confidence_interval_upper"`
			PValue    *float64 `json:"p_value"`
		} `json:"comparisons"`
	} `json:"metrics"`
}

// TestEndToEnd runs the seed's flow against a real abacus serve process with
// embedded NATS and a real ClickHouse: create a workflow test with two 50/50
// variants, start it, assign 1,000 users, record results, analyze, stop,
// restart the process and check that nothing was lost.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	srv := startDev(t)
	p, c, chOpts, env := srv.proc, srv.client, srv.ch, srv.env

	var created struct {
		TestID string `json:"test_id"`
		Status string `json:"status"`
	}
	code := c.call("POST", "/api/ab-testing/tests", map[string]any{
		"test_name": "Checkout workflow",
		"test_type": "workflow",
		"variants": []map[string]any{
			{"variant_id": "control", "variant_name": "Current", "configuration": map[string]any{"steps": 3}, "traffic_percentage": 50},
			{"variant_id": "streamlined", "variant_name": "Streamlined", "configuration": map[string]any{"steps": 2}, "traffic_percentage": 50},
		},
		"control_variant_id": "control",
		"primary_metric":     "revenue",
		"min_sample_size":    100,
	}, &created)
	if code != 201 || created.Status != "draft" {
		t.Fatalf("create = %d %+v", code, created)
	}
	base := "/api/ab-testing/tests/" + created.TestID
	if code := c.call("POST", base+"/start", nil, nil); code != 200 {
		t.Fatalf("start = %d", code)
	}

	// Assign 1,000 users and record results: revenue (one to three values
	// per user, averaged per user by the analysis) and conversion.
	rng := rand.New(rand.NewPCG(1, 2))
	const users = 1000
	perUser := map[string]map[string][]float64{} // metric -> user -> values
	variantOf := map[string]string{}
	counts := map[string]int{}
	events, rows := 0, 0
	for i := range users {
		user := fmt.Sprintf("user-%04d", i)
		var a struct {
			VariantID string `json:"variant_id"`
		}
		if code := c.call("POST", base+"/assign", map[string]string{"user_id": user}, &a); code != 200 {
			t.Fatalf("assign = %d", code)
		}
		variantOf[user] = a.VariantID
		counts[a.VariantID]++
		mu := 10.0
		if a.VariantID == "streamlined" {
			mu = 11.0
		}
		for range 1 + rng.IntN(3) {
			rev := math.Round((mu+3*rng.NormFloat64())*1e4) / 1e4
			conv := 0.0
			if rng.Float64() < 0.3 {
				conv = 1
			}
			var rec struct {
				Status string `json:"status"`
			}
			code := c.call("POST", base+"/record", map[string]any{
				"user_id": user, "variant_id": a.VariantID,
				"metrics": map[string]float64{"revenue": rev, "conversion": conv},
			}, &rec)
			if code != 202 || rec.Status != "accepted" {
				t.Fatalf("record = %d %+v", code, rec)
			}
			for m, v := range map[string]float64{"revenue": rev, "conversion": conv} {
				if perUser[m] == nil {
					perUser[m] = map[string][]float64{}
				}
				perUser[m][user] = append(perUser[m][user], v)
			}
			events++
			rows += 2
		}
	}
	if d := math.Abs(float64(counts["control"])/users - 0.5); d > 0.05 {
		t.Errorf("split %v: control share off by %.3f from 0.5", counts, d)
	}

	// Every event reaches ClickHouse.
	conn, err := chdb.Open(t.Context(), chOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var gotRows, gotUsers uint64
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM results WHERE test_id = ?", created.TestID).Scan(&gotRows); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(t.Context(), "SELECT uniqExact(user_id) FROM assignments WHERE test_id = ?", created.TestID).Scan(&gotUsers); err != nil {
			t.Fatal(err)
		}
		if int(gotRows) >= rows && int(gotUsers) >= users {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s ClickHouse has %d of %d result rows and %d of %d users", gotRows, rows, gotUsers, users)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if int(gotRows) != rows {
		t.Errorf("ClickHouse has %d result rows, want %d", gotRows, rows)
	}

	var rep report
	if code := c.call("GET", base+"/analyze?max_age=0", nil, &rep); code != 200 {
		t.Fatalf("analyze = %d", code)
	}
	checkReport(t, rep, perUser, variantOf)
	var hist struct {
		Series []struct {
			VariantID string           `json:"variant_id"`
			Points    []map[string]any `json:"points"`
		} `json:"series"`
	}
	if code := c.call("GET", base+"/analyze/history?metric=revenue", nil, &hist); code != 200 ||
		len(hist.Series) != 2 || len(hist.Series[1].Points) == 0 {
		t.Errorf("analyze/history = %d %+v, want both variants with the snapshot just computed", code, hist)
	}

	if code := c.call("POST", base+"/stop", nil, nil); code != 200 {
		t.Fatalf("stop = %d", code)
	}
	if code := c.call("POST", base+"/assign", map[string]string{"user_id": "late"}, nil); code != 409 {
		t.Errorf("assign after stop = %d, want 409", code)
	}

	// Graceful shutdown, then a restart on the same data: the test survives.
	p.stop(t)
	if !strings.Contains(p.logs.String(), "abacus stopped") {
		t.Errorf("shutdown did not log its end:\n%s", p.logs.String())
	}
	p2 := startServe(t, env)
	c.waitReady(p2)
	var got struct {
		Status string `json:"status"`
	}
	if code := c.call("GET", base, nil, &got); code != 200 || got.Status != "stopped" {
		t.Errorf("after restart GET test = %d %+v, want the stopped test", code, got)
	}
	var after report
	if code := c.call("GET", base+"/analyze?max_age=0", nil, &after); code != 200 {
		t.Fatalf("analyze after restart = %d", code)
	}
	checkReport(t, after, perUser, variantOf)
	p2.stop(t)
}

// checkReport compares the report with statistics computed here from the
// values the test recorded, with gonum (per-user means, then Welch).
func checkReport(t *testing.T, rep report, perUser map[string]map[string][]float64, variantOf map[string]string) {
	t.Helper()
	near := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, deref(got), want)
		}
	}
	if len(rep.Metrics) != 2 || rep.Metrics[0].Metric != "revenue" {
		t.Fatalf("report metrics = %+v, want revenue then conversion", rep.Metrics)
	}
	if rep.Verdict.Code != rep.Decision || rep.Health.SRM == nil || rep.Health.SRM.Detected {
		t.Errorf("verdict %q (decision %q), srm %+v: want the verdict at the top and no sample ratio mismatch", rep.Verdict.Code, rep.Decision, rep.Health.SRM)
	}
	for _, m := range rep.Metrics {
		xs := map[string][]float64{}
		for user, vals := range perUser[m.Metric] {
			xs[variantOf[user]] = append(xs[variantOf[user]], stat.Mean(vals, nil))
		}
		type arm struct{ n, mean, v float64 }
		arms := map[string]arm{}
		for _, v := range m.Variants {
			mean, variance := stat.MeanVariance(xs[v.VariantID], nil)
			n := float64(len(xs[v.VariantID]))
			arms[v.VariantID] = arm{n, mean, variance}
			if v.SampleSize != int64(n) {
				t.Errorf("%s/%s sample_size = %d, want %v", m.Metric, v.VariantID, v.SampleSize, n)
			}
			near(m.Metric+"/"+v.VariantID+" mean", v.Mean, mean)
			near(m.Metric+"/"+v.VariantID+" std_dev", v.StdDev, math.Sqrt(variance))
			half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.Quantile(0.975) * math.Sqrt(variance/n)
			near(m.Metric+"/"+v.VariantID+" ci_lower", v.Lo, mean-half)
			near(m.Metric+"/"+v.VariantID+" ci_upper", v.Hi, mean+half)
		}
		for _, cmp := range m.Comparisons {
			a, b := arms["control"], arms[cmp.VariantID]
			va, vb := a.v/a.n, b.v/b.n
			se := math.Sqrt(va + vb)
			dof := (va + vb) * (va + vb) / (va*va/(a.n-1) + vb*vb/(b.n-1))
			diff := b.mean - a.mean
			dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: dof}
			p := 2 * dist.Survival(math.Abs(diff/se))
			crit := dist.Quantile(0.975)
			near(m.Metric+" diff", cmp.Diff, diff)
			near(m.Metric+" p_value", cmp.PValue, p)
			near(m.Metric+" diff ci_lower", cmp.Lo, diff-crit*se)
			near(m.Metric+" diff ci_upper", cmp.Hi, diff+crit*se)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestEndToEndProductionAuth runs abacus serve in production mode with an
// API_KEY: public routes answer without a key, the rest need one with the
// right permission, a key created over HTTP works at once and survives a
// restart, and no log line holds a key.
func TestEndToEndProductionAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	chOpts := chdbtest.Database(t)
	addr := freeAddr(t)
	admin, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"ENVIRONMENT=production",
		"API_KEY=" + admin,
		"API_KEY_PEPPER=e2e-pepper-0123456789",
		"ABACUS_HTTP_ADDR=" + addr,
		"DATA_DIR=" + t.TempDir(),
		"CLICKHOUSE_URL=" + fmt.Sprintf("clickhouse://%s/%s", chOpts.Addr[0], chOpts.Auth.Database),
		"ANALYSIS_INTERVAL=1h",
		"NATS_URL=",
	}
	p := startServe(t, env)
	c := &client{t: t, base: "http://" + addr}
	c.waitReady(p)

	call := func(method, path, key, body string) (int, map[string]any) {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, c.base+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("X-Abacus-Warning") != "" {
			t.Errorf("%s %s: production response carries X-Abacus-Warning", method, path)
		}
		var m map[string]any
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &m)
		return resp.StatusCode, m
	}
	if code, _ := call("GET", "/healthz", "", ""); code != 200 {
		t.Errorf("healthz without a key = %d, want 200", code)
	}
	if code, body := call("GET", "/api/ab-testing/tests", "", ""); code != 401 {
		t.Errorf("list tests without a key = %d %v, want 401", code, body)
	}
	if code, body := call("GET", "/api/ab-testing/tests", admin, ""); code != 200 {
		t.Errorf("list tests with API_KEY = %d %v, want 200", code, body)
	}
	code, created := call("POST", "/api/admin/keys", admin, `{"user_id": "dashboard", "permissions": ["ab_testing.read"]}`)
	reader, _ := created["key"].(string)
	if code != 201 || auth.ParseKey(reader) != nil {
		t.Fatalf("create key = %d %v", code, created)
	}
	if code, body := call("GET", "/api/ab-testing/tests", reader, ""); code != 200 {
		t.Errorf("list tests with the new read key = %d %v, want 200", code, body)
	}
	if code, body := call("POST", "/api/ab-testing/tests", reader, `{}`); code != 403 || body["detail"] == nil {
		t.Errorf("create test with a read key = %d %v, want 403 naming ab_testing.create", code, body)
	}

	p.stop(t)
	p2 := startServe(t, env)
	c.waitReady(p2)
	if code, body := call("GET", "/api/ab-testing/tests", reader, ""); code != 200 {
		t.Errorf("after restart the created key = %d %v, want 200", code, body)
	}
	p2.stop(t)
	for _, k := range []string{admin, reader} {
		if strings.Contains(p.logs.String()+p2.logs.String(), k) {
			t.Errorf("abacus serve logged the key %s...", auth.DisplayPrefix(k))
		}
	}
}
