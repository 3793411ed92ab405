package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/validate"
)

// BenchmarkMiddlewareChain measures what input validation, rate limiting
// and authentication add to a request: the same assign request (a JSON
// body with a user id) through a server with the whole chain and through
// one without it (authentication off, no validator, no limiter), in
// alternation, on the same NATS. It reports each variant's p50 and p99
// and the difference of the p99s.
//
//	go test -run '^$' -bench MiddlewareChain -benchtime 20000x -count 3 ./api/
func BenchmarkMiddlewareChain(b *testing.B) {
	// local: the limiter of one replica. shared: the limiter shared
	// through NATS KV with leases of one token, as for a client whose
	// limits are under 100 per window: every request reserves its token
	// with a read and a compare-and-set (an in-process NATS here).
	for _, shared := range []bool{false, true} {
		name := "local"
		if shared {
			name = "shared-lease-1"
		}
		b.Run(name, func(b *testing.B) { benchmarkChain(b, shared) })
	}
}

func benchmarkChain(b *testing.B, shared bool) {
	h := newBenchHarness(b, shared)
	body := func(i int) string { return fmt.Sprintf(`{"user_id": "user-%d@example.com"}`, i) }
	full, bare := h.full.Handler(), h.bare.Handler()
	path := "/api/ab-testing/tests/" + h.testID + "/assign"
	var tFull, tBare []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for _, v := range []struct {
			h   http.Handler
			key string
			out *[]time.Duration
		}{{full, h.key, &tFull}, {bare, "", &tBare}} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body(i)))
			req.Header.Set("Content-Type", "application/json")
			if v.key != "" {
				req.Header.Set(HeaderAPIKey, v.key)
			}
			rec := httptest.NewRecorder()
			start := time.Now()
			v.h.ServeHTTP(rec, req)
			*v.out = append(*v.out, time.Since(start))
			if rec.Code != http.StatusOK {
				b.Fatalf("assign = %d %s", rec.Code, rec.Body)
			}
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(tFull, 0.5), "full-p50-µs")
	b.ReportMetric(pct(tBare, 0.5), "bare-p50-µs")
	b.ReportMetric(pct(tFull, 0.99), "full-p99-µs")
	b.ReportMetric(pct(tBare, 0.99), "bare-p99-µs")
	b.ReportMetric(pct(tFull, 0.99)-pct(tBare, 0.99), "added-p99-µs")
}

type benchHarness struct {
	full, bare *Server
	key        string
	testID     string
}

// newBenchHarness builds two servers on one harness: one with the whole
// chain (a key, the default validator, a limiter whose limits the
// benchmark cannot reach) and one bare.
func newBenchHarness(b *testing.B, shared bool) *benchHarness {
	b.Helper()
	h := newCore(b)
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lim, err := ratelimit.New(ratelimit.Config{}, log)
	if shared {
		lim, err = ratelimit.NewDistributed(b.Context(), h.bus.JS, ratelimit.Config{LeaseFraction: 1e-12}, log)
	}
	if err != nil {
		b.Fatal(err)
	}
	// Limits the benchmark cannot reach, one window each, on both planes
	// (assign is on the data plane).
	huge := ratelimit.Standard("global", 1_000_000_000, 0, 0)
	hugeData := ratelimit.Standard("data_plane", 1_000_000_000, 0, 0)
	full, err := New(Config{RateLimit: RateLimitConfig{Global: huge, DataPlane: hugeData}}, Deps{
		Registry: h.reg, Publisher: h.bus.JS, Requester: h.bus.NC, Keys: h.keys, Validator: v, Limiter: lim, Logger: h.log,
	})
	if err != nil {
		b.Fatal(err)
	}
	bare, err := New(Config{AuthDisabled: true}, Deps{Registry: h.reg, Publisher: h.bus.JS, Requester: h.bus.NC, Logger: h.log})
	if err != nil {
		b.Fatal(err)
	}
	return &benchHarness{full: full, bare: bare, key: h.key, testID: h.testID}
}
