package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/abacus-ab/abacus/internal/chdb"
)

// TestBatchRetriesCountOnce sends a batch, retries it unchanged (JetStream
// drops the retry: every event answers duplicate), then resends some of its
// events in another grouping, as a client that retries only some events
// would: those are stored again, and the analysis must still count each
// event_id once.
func TestBatchRetriesCountOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts abacus serve")
	}
	srv := startDev(t)
	defer srv.proc.stop(t)
	c, chOpts := srv.client, srv.ch
	testID := c.runningAB("retries")

	type item struct {
		Status    string `json:"status"`
		VariantID string `json:"variant_id"`
		Duplicate bool   `json:"duplicate"`
	}
	post := func(events []string) []item {
		t.Helper()
		resp, err := http.Post(c.base+"/api/ab-testing/events", "application/x-ndjson", bytes.NewBufferString(strings.Join(events, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Results []item `json:"results"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted || len(out.Results) != len(events) {
			t.Fatalf("POST /events = %d, %d results, %v", resp.StatusCode, len(out.Results), err)
		}
		return out.Results
	}

	const users, perUser = 60, 3
	rng := rand.New(rand.NewPCG(8, 9))
	var assigns, results []string
	values := map[string][]float64{}
	for u := range users {
		user := fmt.Sprintf("user-%d", u)
		assigns = append(assigns, fmt.Sprintf(`{"type":"assignment","test_id":%q,"user_id":%q}`, testID, user))
		for k := range perUser {
			v := math.Round(rng.NormFloat64()*300+1000) / 100
			values[user] = append(values[user], v)
			results = append(results, fmt.Sprintf(`{"type":"result","test_id":%q,"user_id":%q,"metrics":{"m":%v},"event_id":"ev-%d-%d"}`, testID, user, v, u, k))
		}
	}
	variantOf := map[string]string{}
	for i, it := range post(assigns) {
		variantOf[fmt.Sprintf("user-%d", i)] = it.VariantID
	}
	post(results)
	for i, it := range post(results) {
		if !it.Duplicate {
			t.Fatalf("the unchanged retry's event %d = %+v, want a duplicate", i, it)
		}
	}
	// The first event of each user: double counting would move every
	// user's mean (repeating all of a user's events would not).
	var some []string
	for i := 0; i < len(results); i += perUser {
		some = append(some, results[i])
	}
	regrouped := post(some)
	start := time.Now()

	// The regrouped half is stored a second time...
	conn, err := chdb.Open(t.Context(), chOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := uint64(len(results) + len(regrouped))
	var rows uint64
	for deadline := time.Now().Add(time.Minute); rows < want && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM results WHERE test_id = ?", testID).Scan(&rows); err != nil {
			t.Fatal(err)
		}
	}
	if rows != want {
		t.Fatalf("ClickHouse holds %d result rows, want %d (the regrouped retry stored again)", rows, want)
	}
	c.waitIngestIdle(start, time.Minute)

	// ...and counted once: the report equals the statistics of the distinct events.
	var rep report
	if code := c.call("GET", "/api/ab-testing/tests/"+testID+"/analyze?max_age=0", nil, &rep); code != 200 {
		t.Fatalf("analyze = %d", code)
	}
	means := map[string][]float64{}
	for user, vs := range values {
		means[variantOf[user]] = append(means[variantOf[user]], stat.Mean(vs, nil))
	}
	if len(rep.Metrics) == 0 || rep.Metrics[0].Metric != "m" {
		t.Fatalf("report metrics = %+v", rep.Metrics)
	}
	for _, v := range rep.Metrics[0].Variants {
		wantMean := stat.Mean(means[v.VariantID], nil)
		if v.SampleSize != int64(len(means[v.VariantID])) || v.Mean == nil || math.Abs(*v.Mean-wantMean) > 1e-9*math.Abs(wantMean) {
			t.Errorf("variant %s: %d users, mean %v; want %d users, mean %v (each event once)", v.VariantID, v.SampleSize, deref(v.Mean), len(means[v.VariantID]), wantMean)
		}
	}
}
