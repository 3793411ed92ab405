package main

import (
	"fmt"
	"testing"
)

// TestConsistentAnalysis records results and analyzes at once with
// consistent=true against a real abacus serve whose ingest flushes only
// every second: the report counts every user whose results were answered
// 202 before the request, and carries the seed's top-level fields.
func TestConsistentAnalysis(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	srv := startDev(t, "INGEST_FLUSH_INTERVAL=1s")
	c := srv.client
	id := c.runningAB("consistent")
	const users = 300
	var events []map[string]any
	for i := range users {
		events = append(events, map[string]any{"type": "result", "test_id": id, "user_id": fmt.Sprintf("u%d", i), "metrics": map[string]any{"m": float64(i % 7)}})
	}
	if code := c.call("POST", "/api/ab-testing/events", events, nil); code != 202 {
		t.Fatalf("batch = %d", code)
	}
	var r struct {
		report
		PValue         *float64 `json:"p_value"`
		VariantResults []struct {
			VariantID  string   `json:"variant_id"`
			SampleSize int64    `json:"sample_size"`
			MeanValue  *float64 `json:"mean_value"`
			PValue     *float64 `json:"p_value"`
		} `json:"variant_results"`
	}
	if code := c.call("GET", "/api/ab-testing/tests/"+id+"/analyze?consistent=true", nil, &r); code != 200 {
		t.Fatalf("analyze?consistent=true = %d", code)
	}
	var n int64
	for _, v := range r.Metrics[0].Variants {
		n += v.SampleSize
	}
	if n != users {
		t.Fatalf("consistent report counts %d users, want all %d recorded before it", n, users)
	}
	if len(r.VariantResults) != 2 || r.VariantResults[0].SampleSize+r.VariantResults[1].SampleSize != users ||
		r.VariantResults[1].PValue == nil || r.PValue == nil || *r.PValue != *r.Metrics[0].Comparisons[0].PValue {
		t.Errorf("seed fields: p_value %v, variant_results %+v", r.PValue, r.VariantResults)
	}
	if code := c.call("GET", "/api/ab-testing/tests/"+id+"/analyze?consistent=maybe", nil, nil); code != 400 {
		t.Errorf("consistent=maybe = %d, want 400", code)
	}
}
