package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/internal/auth"
)

// TestRateLimitAcrossReplicas runs three abacus API processes on one NATS
// (the first embeds it and listens for the others) and hammers them all
// with one API key: together they must admit what one process would,
// within the documented bound, and never much less. The API-only replicas
// get a ClickHouse URL where nothing listens: they must not need it.
func TestRateLimitAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	admin, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := freeAddr(t)
	const perMinute = 300
	common := []string{
		"ENVIRONMENT=production",
		"ABACUS_TARGET=api",
		"API_KEY=" + admin,
		"API_KEY_PEPPER=ratelimit-pepper-0123456789",
		// API-only replicas never use ClickHouse: this one does not exist.
		"CLICKHOUSE_URL=clickhouse://127.0.0.1:1/none",
		fmt.Sprintf("RATE_LIMIT_REQUESTS_PER_MINUTE=%d", perMinute),
		"RATE_LIMIT_REQUESTS_PER_HOUR=1000000",
		"RATE_LIMIT_REQUESTS_PER_DAY=10000000",
		"RATE_LIMIT_SHARED=true",
	}
	var clients []*client
	for i := range 3 {
		addr := freeAddr(t)
		env := append([]string{"ABACUS_HTTP_ADDR=" + addr, "DATA_DIR=" + t.TempDir()}, common...)
		if i == 0 {
			env = append(env, "NATS_URL=", "NATS_EMBEDDED_LISTEN="+natsAddr)
		} else {
			env = append(env, "NATS_URL=nats://"+natsAddr)
		}
		p := startServe(t, env)
		c := &client{t: t, base: "http://" + addr}
		c.waitReady(p)
		clients = append(clients, c)
	}

	// 8 concurrent clients per replica for 2 s. GCRA admits at most the
	// burst (300) plus one every 200 ms (5 per second) of elapsed time.
	const workers, duration = 8, 2 * time.Second
	var admitted, limited, other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DialContext: (&net.Dialer{}).DialContext}}
	for _, c := range clients {
		for range workers {
			wg.Go(func() {
				for time.Since(start) < duration {
					req, _ := http.NewRequest(http.MethodGet, c.base+"/api/ab-testing/tests", nil)
					req.Header.Set("X-API-Key", admin)
					resp, err := hc.Do(req)
					if err != nil {
						other.Add(1)
						continue
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						admitted.Add(1)
					case http.StatusTooManyRequests:
						limited.Add(1)
					default:
						other.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	single := float64(perMinute) + elapsed.Seconds()*perMinute/60 // one process's GCRA bound
	got := float64(admitted.Load())
	t.Logf("3 replicas, %v: admitted %d, limited %d, other %d; one process would admit at most %.0f (%.1f%% of it)",
		elapsed.Round(time.Millisecond), admitted.Load(), limited.Load(), other.Load(), single, 100*got/single)
	if other.Load() > 0 {
		t.Errorf("%d requests neither succeeded nor were limited", other.Load())
	}
	if limited.Load() == 0 {
		t.Fatalf("no request was limited: the load did not reach the limit")
	}
	if got > 1.05*single {
		t.Errorf("admitted %v across 3 replicas, more than 5%% over the single-process bound %.0f", got, single)
	}
	if got < 0.9*perMinute {
		t.Errorf("admitted %v across 3 replicas, less than 90%% of the %d burst", got, perMinute)
	}
	// The replicas went through the shared state, and /metrics shows it.
	resp, err := http.Get(clients[1].base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^abacus_ratelimit_reservations_total (\S+)$`).FindSubmatch(metrics)
	if m == nil || string(m[1]) == "0" {
		t.Errorf("abacus_ratelimit_reservations_total on replica 2 = %q, want > 0", m)
	}
}
