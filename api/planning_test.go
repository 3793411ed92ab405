package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// TestPower checks that the API plans POST /power itself (no analyzer
// runs here), answers 400 with Plan's reason for a request it cannot plan,
// and keeps plans in the general layer. The statistics are tested against
// statsmodels in analysis/stats.
func TestPower(t *testing.T) {
	h := newHarness(t, Config{})
	const body = `{"metric_type": "binary", "baseline_rate": 0.1, "mde": 0.1}`
	want, err := stats.Plan(stats.PowerRequest{MetricType: "binary", BaselineRate: ptrTo(0.1), MDE: ptrTo(0.1)}, experiment.MaxVariants)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		code, raw := h.doRaw("POST", "/api/ab-testing/power", "application/json", body)
		var got stats.PowerResponse
		if err := json.Unmarshal(raw, &got); code != 200 || err != nil || got.TotalUsers != want.TotalUsers || got.TotalUsers < 29000 {
			t.Errorf("power = %d %s, want the plan of %d users", code, raw, want.TotalUsers)
		}
	}
	if st := h.api.cache.Stats()[cache.LayerGeneral]; st.Entries != 1 || st.Hits != 1 {
		t.Errorf("general layer after two equal plans: %+v, want 1 entry and 1 hit", st)
	}
	// The plan that the analyzer used to answer over NATS.
	code, raw := h.doRaw("POST", "/api/ab-testing/power", "application/json", `{"metric_type": "binary", "baseline_rate": 0.1, "mde": 0.2}`)
	var plan stats.PowerResponse
	if err := json.Unmarshal(raw, &plan); code != 200 || err != nil || plan.TotalUsers < 1000 {
		t.Errorf("power = %d %s (%v), want a plan of at least 1000 users", code, raw, err)
	}

	code, got := h.do("POST", "/api/ab-testing/power", `{"baseline_rate": 0.1}`)
	if msg := "a continuous metric needs baseline_mean and baseline_std_dev (not baseline_rate)"; code != 400 || got["error"] != msg {
		t.Errorf("power with a bad request = %d %v, want 400 %q", code, got, msg)
	}
	for _, body := range []string{
		`[1]`,
		`not json`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "unknown": 1}`,
		`{}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "total_users": 100}`,
		`{"baseline_mean": 10, "baseline_std_dev": 0, "mde": 0.1}`,
		`{"metric_type": "binary", "baseline_rate": 1.2, "mde": 0.1}`,
		`{"metric_type": "binary", "baseline_rate": 0.9, "mde": 0.2}`,
		`{"metric_type": "binary", "baseline_mean": 0.5, "mde": 0.2}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "alpha": 0.7}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "traffic_percentages": [50, 40]}`,
		`{"baseline_mean": 0, "baseline_std_dev": 3, "mde": 0.1}`,
	} {
		if code, got := h.doRaw("POST", "/api/ab-testing/power", "application/json", body); code != 400 {
			t.Errorf("power(%s) = %d %s, want 400", body, code, got)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestHistory checks that the API forwards history requests to an analyzer
// over NATS and maps its answers. The analyzer's own computation is tested
// in package analysis.
func TestHistory(t *testing.T) {
	h := newHarness(t, Config{AnalyzeTimeout: 2 * time.Second})
	id := h.createRunning()
	history := "/api/ab-testing/tests/" + id + "/analyze/history"

	if code, body := h.do("GET", history, ""); code != 503 {
		t.Errorf("history without analyzer = %d %v, want 503", code, body)
	}

	var gotHistory eventv1.HistoryRequest
	sub, err := h.bus.NC.QueueSubscribe(eventv1.SubjectHistory, eventv1.QueueAnalyzers, func(m *nats.Msg) {
		json.Unmarshal(m.Data, &gotHistory)
		m.Respond([]byte(`{"test_id": "` + gotHistory.TestID + `", "metric": "` + gotHistory.Metric + `", "series": []}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	code, body := h.do("GET", history+"?metric=latency", "")
	if code != 200 || body["metric"] != "latency" || gotHistory.TestID != id {
		t.Errorf("history = %d %v, want the analyzer's answer for %s", code, body, id)
	}
	if code, _ := h.do("GET", history+"?metric=a%20b", ""); code != 400 {
		t.Errorf("history with a bad metric = %d, want 400", code)
	}
	if code, _ := h.do("GET", "/api/ab-testing/tests/nope/analyze/history", ""); code != 404 {
		t.Errorf("history of an unknown test = %d, want 404", code)
	}
}
