package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
	abacusclient "github.com/abacus-ab/abacus/sdk/go/client"
	"github.com/abacus-ab/abacus/sdk/go/provider"
)

// TestOpenFeatureGo evaluates Abacus tests from Go's OpenFeature SDK
// against a real abacus serve: through the published OFREP provider, and
// through our local provider (sdk/go/provider). Both give every user the
// variant /assign gives; disabled and unknown flags give the default with
// the right reason or error code; and what the local provider sends
// (exposures, Track results) reaches the analysis.
func TestOpenFeatureGo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	srv := startDev(t)
	base := srv.client.base
	ctx := t.Context()
	api, err := abacusclient.NewClientWithResponses(base)
	if err != nil {
		t.Fatal(err)
	}

	values := map[string]string{"one": "one-step", "two": "two-step", "three": "three-step"}
	checkout := createFlag(t, api, "checkout-flow", "revenue", true,
		flagVariant("one", 20, values["one"]), flagVariant("two", 30, values["two"]), flagVariant("three", 50, values["three"]))
	nav := createFlag(t, api, "new-nav", "clicks", true, flagVariant("on", 50, true), flagVariant("off", 50, false))
	createFlag(t, api, "draft-flag", "m", false, flagVariant("a", 50, "a"), flagVariant("b", 50, "b"))
	stopped := createFlag(t, api, "stopped-flag", "m", true, flagVariant("a", 50, "a"), flagVariant("b", 50, "b"))
	if r, err := api.StopTestWithResponse(ctx, stopped); err != nil || r.StatusCode() != http.StatusOK {
		t.Fatalf("stop = %v %v", r.Status(), err)
	}

	// What /assign gives 10,000 users.
	const users = 10_000
	assigned := make([]string, users)
	inParallel(users, func(i int) {
		r, err := api.AssignVariantWithResponse(ctx, checkout, abacusclient.AssignRequest{UserId: userID(i)})
		if err != nil || r.JSON200 == nil {
			t.Errorf("assign %s = %v %v", userID(i), r.Status(), err)
			return
		}
		assigned[i] = r.JSON200.VariantId
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("ofrep provider", func(t *testing.T) {
		of := isolated.NewAPI()
		defer func() { _ = of.Shutdown(context.Background()) }()
		if err := of.SetProviderAndWait(ctx, ofrep.NewProvider(base)); err != nil {
			t.Fatal(err)
		}
		c := of.NewClient()
		var mismatches atomic.Int64
		inParallel(users, func(i int) {
			d, err := c.StringValueDetails(ctx, "checkout-flow", "default", openfeature.NewEvaluationContext(userID(i), nil))
			if err != nil || d.Variant != assigned[i] || d.Value != values[assigned[i]] || d.Reason != openfeature.SplitReason {
				if mismatches.Add(1) <= 3 {
					t.Errorf("OFREP %s = %+v, %v; /assign gave %s", userID(i), d, err, assigned[i])
				}
			}
		})
		checkDefaults(t, c)
	})

	t.Run("local provider", func(t *testing.T) {
		var drops atomic.Int64
		p, err := provider.New(provider.Config{
			BaseURL: base, PollInterval: 100 * time.Millisecond,
			QueueSize: 200_000, BatchSize: 1000, FlushInterval: 20 * time.Millisecond,
			OnDrop: func(n int, err error) {
				if drops.Add(int64(n)) == int64(n) {
					t.Errorf("events dropped: %v", err)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		of := isolated.NewAPI()
		defer func() { _ = of.Shutdown(context.Background()) }()
		if err := of.SetProviderAndWait(ctx, p); err != nil {
			t.Fatal(err)
		}
		c := of.NewClient()

		// The server's definitions, for experiment.Decide here.
		var defs struct {
			Tests []*experiment.Test `json:"tests"`
		}
		if code := srv.client.call("GET", "/api/ab-testing/flags", nil, &defs); code != 200 {
			t.Fatalf("GET /flags = %d", code)
		}
		def := map[string]*experiment.Test{}
		for _, x := range defs.Tests {
			def[x.ID] = x
		}

		// 100,000 users against Decide, the first 10,000 against /assign.
		const many = 100_000
		wantCheckout := map[string]int64{}
		for i := range many {
			u := userID(i)
			want := experiment.Decide(def[checkout], experiment.EvalContext{UserID: u}).Variant
			d, err := c.StringValueDetails(ctx, "checkout-flow", "default", openfeature.NewEvaluationContext(u, nil))
			if err != nil || d.Variant != want.ID || d.Value != want.Value || d.Reason != openfeature.SplitReason || (i < users && d.Variant != assigned[i]) {
				t.Fatalf("local %s = %+v, %v; Decide gives %s", u, d, err, want.ID)
			}
			if i < users && d.Variant != assigned[i] {
				t.Fatalf("local %s = %s, /assign gave %s", u, d.Variant, assigned[i])
			}
			if d.FlagMetadata["test_id"] != checkout || d.FlagMetadata["variant_name"] != "Variant "+want.ID {
				t.Fatalf("local %s metadata = %v", u, d.FlagMetadata)
			}
			wantCheckout[want.ID]++
		}
		checkDefaults(t, c)

		// Track: 300 users see the navigation flag and click 1 to 5 times.
		const tracked = 300
		wantClicks := map[string]int64{}
		wantNav := map[string]int64{}
		for i := range tracked {
			ec := openfeature.NewEvaluationContext(userID(i), map[string]any{"platform": "ios"})
			d, err := c.BooleanValueDetails(ctx, "new-nav", false, ec)
			if err != nil || d.Reason != openfeature.SplitReason {
				t.Fatalf("new-nav %s = %+v, %v", userID(i), d, err)
			}
			c.Track(ctx, "clicks", ec, openfeature.NewTrackingEventDetails(float64(1+i%5)))
			wantClicks[d.Variant]++
			wantNav[d.Variant]++
		}
		// Shutdown sends what is queued.
		if err := of.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if s := p.Stats(); s.Sent != many+2*tracked || s.Dropped != 0 {
			t.Errorf("Stats = %+v, want %d sent and none dropped", s, many+2*tracked)
		}

		waitReport(t, srv.client, checkout, func(r *flagReport) bool {
			return cmp.Equal(r.Assignments, wantCheckout)
		}, func(r *flagReport) string {
			return fmt.Sprintf("assignments %v, want %v (exposures of 100,000 users)", r.Assignments, wantCheckout)
		})
		waitReport(t, srv.client, nav, func(r *flagReport) bool {
			return cmp.Equal(r.Assignments, wantNav) && cmp.Equal(r.users("clicks"), wantClicks)
		}, func(r *flagReport) string {
			return fmt.Sprintf("assignments %v and clicks users %v, want %v and %v", r.Assignments, r.users("clicks"), wantNav, wantClicks)
		})
	})
}

// TestOpenFeatureGoAPIKey runs both providers against a production
// server: with the admin key they evaluate and the local provider's events
// are accepted; with an unknown key the local provider's Init fails as
// PROVIDER_FATAL and the OFREP provider gives the default.
func TestOpenFeatureGoAPIKey(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	ch := chdbtest.Database(t)
	addr := freeAddr(t)
	admin, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := startServe(t, []string{
		"ENVIRONMENT=production", "API_KEY=" + admin, "API_KEY_PEPPER=e2e-pepper-0123456789",
		"ABACUS_HTTP_ADDR=" + addr, "DATA_DIR=" + t.TempDir(),
		"CLICKHOUSE_URL=" + fmt.Sprintf("clickhouse://%s/%s", ch.Addr[0], ch.Auth.Database),
		"ANALYSIS_INTERVAL=1h", "NATS_URL=",
	})
	base := "http://" + addr
	(&client{t: t, base: base}).waitReady(p)
	api, err := abacusclient.NewClientWithResponses(base, abacusclient.WithAPIKey(admin))
	if err != nil {
		t.Fatal(err)
	}
	createFlag(t, api, "keyed-flag", "m", true, flagVariant("a", 50, "a"), flagVariant("b", 50, "b"))
	ctx := t.Context()
	ec := openfeature.NewEvaluationContext("user-1", nil)

	local, err := provider.New(provider.Config{BaseURL: base, APIKey: admin, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	remote := ofrep.NewProvider(base, ofrep.WithApiKeyAuth(admin))
	for name, fp := range map[string]openfeature.FeatureProvider{"local": local, "ofrep": remote} {
		of := isolated.NewAPI()
		if err := of.SetProviderAndWait(ctx, fp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d, err := of.NewClient().StringValueDetails(ctx, "keyed-flag", "d", ec); err != nil || d.Reason != openfeature.SplitReason {
			t.Errorf("%s with the admin key = %+v, %v; want a SPLIT", name, d, err)
		}
		if err := of.Shutdown(ctx); err != nil {
			t.Errorf("%s: shutdown: %v", name, err)
		}
	}
	if s := local.Stats(); s.Sent != 1 || s.Dropped != 0 {
		t.Errorf("local provider Stats = %+v, want its exposure sent", s)
	}

	wrong, err := provider.New(provider.Config{BaseURL: base, APIKey: "not-a-key"})
	if err != nil {
		t.Fatal(err)
	}
	var ie *openfeature.ProviderInitError
	if err := wrong.InitWithContext(ctx, openfeature.EvaluationContext{}); !errors.As(err, &ie) || ie.ErrorCode != openfeature.ProviderFatalCode {
		t.Errorf("local provider Init with an unknown key = %v, want PROVIDER_FATAL", err)
	}
	wrong.Shutdown()
	of := isolated.NewAPI()
	defer func() { _ = of.Shutdown(context.Background()) }()
	if err := of.SetProviderAndWait(ctx, ofrep.NewProvider(base, ofrep.WithApiKeyAuth("not-a-key"))); err != nil {
		t.Fatal(err)
	}
	if d, _ := of.NewClient().StringValueDetails(ctx, "keyed-flag", "d", ec); d.Value != "d" || d.Reason != openfeature.ErrorReason {
		t.Errorf("OFREP with an unknown key = %+v, want the default with an error", d)
	}
}

// checkDefaults checks the answers that give the default value.
func checkDefaults(t *testing.T, c *openfeature.Client) {
	t.Helper()
	ctx := t.Context()
	// A user of the 10,000: OFREP's server records an exposure for every
	// evaluation of a running test, even one the client then rejects as a
	// TYPE_MISMATCH, and the exposure counts must stay those of the users.
	ec := openfeature.NewEvaluationContext(userID(1), nil)
	tests := []struct {
		name   string
		flag   string
		ec     openfeature.EvaluationContext
		reason openfeature.Reason
		code   openfeature.ErrorCode
	}{
		{"draft", "draft-flag", ec, openfeature.DisabledReason, ""},
		{"stopped", "stopped-flag", ec, openfeature.DisabledReason, ""},
		{"unknown", "no-such-flag", ec, openfeature.ErrorReason, openfeature.FlagNotFoundCode},
		{"no targeting key", "checkout-flow", openfeature.NewTargetlessEvaluationContext(nil), openfeature.ErrorReason, openfeature.TargetingKeyMissingCode},
	}
	for _, tt := range tests {
		d, _ := c.StringValueDetails(ctx, tt.flag, "the-default", tt.ec)
		if d.Value != "the-default" || d.Reason != tt.reason || d.ErrorCode != tt.code {
			t.Errorf("%s: %s = %q, reason %s, error %q; want the default, %s, %q", tt.name, tt.flag, d.Value, d.Reason, d.ErrorCode, tt.reason, tt.code)
		}
	}
	if d, _ := c.BooleanValueDetails(ctx, "checkout-flow", true, ec); d.Value != true || d.ErrorCode != openfeature.TypeMismatchCode {
		t.Errorf("boolean of a string flag = %v, error %q; want the default, TYPE_MISMATCH", d.Value, d.ErrorCode)
	}
}

func userID(i int) string { return fmt.Sprintf("of-user-%06d", i) }

// inParallel calls f(0) ... f(n-1) from 8 goroutines.
func inParallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

func flagVariant(id string, pct float64, value any) abacusclient.VariantInput {
	name := "Variant " + id
	v := abacusclient.VariantInput{VariantId: id, VariantName: &name, TrafficPercentage: pct}
	var fv abacusclient.FlagValue
	var err error
	switch x := value.(type) {
	case bool:
		err = fv.FromFlagValue0(x)
	case string:
		err = fv.FromFlagValue1(x)
	}
	if err != nil {
		panic(err)
	}
	v.Value = &fv
	return v
}

// createFlag creates a test with the typed client, starts it when asked,
// and returns its id.
func createFlag(t testing.TB, api *abacusclient.ClientWithResponses, key, metric string, start bool, variants ...abacusclient.VariantInput) string {
	t.Helper()
	r, err := api.CreateTestWithResponse(t.Context(), abacusclient.CreateTestRequest{
		TestName: key, Key: &key, TestType: abacusclient.Routing, Variants: variants,
		ControlVariantId: variants[0].VariantId, PrimaryMetric: &metric,
	})
	if err != nil || r.JSON201 == nil {
		t.Fatalf("create %s = %v %v: %s", key, r.Status(), err, r.Body)
	}
	if start {
		if s, err := api.StartTestWithResponse(t.Context(), r.JSON201.TestId); err != nil || s.StatusCode() != http.StatusOK {
			t.Fatalf("start %s = %v %v", key, s.Status(), err)
		}
	}
	return r.JSON201.TestId
}

type flagReport struct {
	Assignments map[string]int64 `json:"assignments"`
	Metrics     []struct {
		Metric   string `json:"metric"`
		Variants []struct {
			VariantID  string `json:"variant_id"`
			SampleSize int64  `json:"sample_size"`
		} `json:"variants"`
	} `json:"metrics"`
}

// users is the number of users per variant with a value of metric m.
func (r *flagReport) users(m string) map[string]int64 {
	out := map[string]int64{}
	for _, x := range r.Metrics {
		if x.Metric == m {
			for _, v := range x.Variants {
				out[v.VariantID] = v.SampleSize
			}
		}
	}
	return out
}

// waitReport asks for fresh reports of test id until done accepts one,
// for at most 60 s.
func waitReport(t *testing.T, c *client, id string, done func(*flagReport) bool, describe func(*flagReport) string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var r flagReport
		code := c.call("GET", "/api/ab-testing/tests/"+id+"/analyze?max_age=0", nil, &r)
		if code == 200 && done(&r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("report of %s after 60s (status %d): %s", id, code, describe(&r))
		}
		<-tick.C
	}
}

// serveForBenchmark starts an abacus serve in development mode on a
// database of its own, as startDev does for tests, and returns its URL.
func serveForBenchmark(b *testing.B) string {
	b.Helper()
	ch := chdbtest.Database(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // free for serve to take
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "ABACUS_E2E_MAIN=1", "ENVIRONMENT=development", "ABACUS_HTTP_ADDR="+addr,
		"DATA_DIR="+b.TempDir(), fmt.Sprintf("CLICKHOUSE_URL=clickhouse://%s/%s", ch.Addr[0], ch.Auth.Database),
		"INGEST_FLUSH_INTERVAL=20ms", "ANALYSIS_INTERVAL=1h", "NATS_URL=")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // the status does not matter to a benchmark
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fails only when it exited already
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr
			}
		}
		select {
		case <-exited:
			b.Fatalf("abacus serve exited early:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("abacus serve not ready after 60s:\n%s", logs.String())
		}
	}
}

// BenchmarkProviderSend measures the local provider's background sender:
// result events tracked as fast as the queue takes them, posted in
// batches of 1,000 by 4 senders to a real POST /api/ab-testing/events
// (embedded NATS), until Shutdown has sent the last one. events/s is
// the rate from the first Track to the end of Shutdown.
func BenchmarkProviderSend(b *testing.B) {
	if testing.Short() {
		b.Skip("needs abacus serve")
	}
	base := serveForBenchmark(b)
	api, err := abacusclient.NewClientWithResponses(base)
	if err != nil {
		b.Fatal(err)
	}
	createFlag(b, api, "bench-flag", "latency", true, flagVariant("a", 50, "a"), flagVariant("b", 50, "b"))
	const queue = 50_000
	p, err := provider.New(provider.Config{BaseURL: base, QueueSize: queue, BatchSize: 1000, Senders: 4, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.InitWithContext(b.Context(), openfeature.EvaluationContext{}); err != nil {
		b.Fatal(err)
	}
	ecs := make([]openfeature.EvaluationContext, 10_000)
	for i := range ecs {
		ecs[i] = openfeature.NewEvaluationContext(userID(i), nil)
	}
	details := openfeature.NewTrackingEventDetails(12.5)
	ctx := b.Context()
	b.ReportAllocs()
	began := time.Now()
	n := 0
	for b.Loop() {
		for p.Stats().Queued >= queue-1 { // wait for room rather than drop
			time.Sleep(50 * time.Microsecond)
		}
		p.Track(ctx, "latency", ecs[n%len(ecs)], details)
		n++
	}
	if err := p.ShutdownWithContext(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(began)
	if s := p.Stats(); s.Sent != uint64(n) || s.Dropped != 0 {
		b.Fatalf("Stats = %+v, want %d sent, none dropped", s, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
}
