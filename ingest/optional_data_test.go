package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// TestConsumerStoresAttributesAndCovariates publishes assignments with
// segment attributes and results with CUPED covariates, and finds them in
// their tables (migration 0004): attributes as sorted parallel arrays, one
// covariate row per (event, metric with a covariate).
func TestConsumerStoresAttributesAndCovariates(t *testing.T) {
	e := newEnv(t)
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const users = 50
	for i := range users {
		a := eventv1.Assignment{EventID: fmt.Sprintf("a%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "control", Timestamp: ts}
		if i%2 == 0 {
			a.Attributes = map[string]string{"platform": "ios", "country": fmt.Sprintf("c%d", i%3)}
		}
		e.publish(t, eventv1.SubjectAssignment, a)
		r := eventv1.Result{
			EventID: fmt.Sprintf("r%d", i), TestID: "t1", UserID: fmt.Sprintf("u%d", i), VariantID: "control",
			Metrics: map[string]float64{"revenue": float64(i), "conversion": 1}, Timestamp: ts,
		}
		if i%5 == 0 {
			r.Covariates = map[string]float64{"revenue": float64(i) / 2}
		}
		e.publish(t, eventv1.SubjectResult, r)
	}
	e.start(t, Config{BatchSize: 20, FlushInterval: 20 * time.Millisecond, Workers: 2})
	waitFor(t, 20*time.Second, "all rows in ClickHouse", func() bool {
		return e.count(t, "SELECT count() FROM results") == 2*users && e.count(t, "SELECT count() FROM assignments") == users
	})
	if n := e.count(t, "SELECT count() FROM assignment_attributes WHERE test_id = 't1'"); n != users/2 {
		t.Errorf("assignment_attributes rows = %d, want %d", n, users/2)
	}
	if n := e.count(t, "SELECT count() FROM result_covariates WHERE test_id = 't1' AND metric = 'revenue'"); n != users/5 {
		t.Errorf("result_covariates rows = %d, want %d", n, users/5)
	}
	var keys, values []string
	if err := e.conn.QueryRow(t.Context(), "SELECT attribute_keys, attribute_values FROM assignment_attributes WHERE user_id = 'u4'").Scan(&keys, &values); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"country", "platform"}, keys); d != "" {
		t.Errorf("attribute_keys (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"c1", "ios"}, values); d != "" {
		t.Errorf("attribute_values (-want +got):\n%s", d)
	}
	var cov float64
	var variant string
	if err := e.conn.QueryRow(t.Context(), "SELECT covariate, variant_id FROM result_covariates WHERE event_id = 'r10'").Scan(&cov, &variant); err != nil {
		t.Fatal(err)
	}
	if cov != 5 || variant != "control" {
		t.Errorf("covariate of r10 = %v in %q, want 5 in control", cov, variant)
	}
}
