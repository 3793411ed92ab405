package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// TestPowerAndHistory checks that the API forwards power and history
// requests to an analyzer over NATS and maps its answers. The analyzer's
// own computation is tested in package analysis.
func TestPowerAndHistory(t *testing.T) {
	h := newHarness(t, Config{AnalyzeTimeout: 2 * time.Second})
	id := h.createRunning()
	history := "/api/ab-testing/tests/" + id + "/analyze/history"

	if code, body := h.do("POST", "/api/ab-testing/power", `{"baseline_rate": 0.1}`); code != 503 {
		t.Errorf("power without analyzer = %d %v, want 503", code, body)
	}

	var gotPower []byte
	var gotHistory eventv1.HistoryRequest
	for _, s := range []struct {
		subject string
		fn      nats.MsgHandler
	}{
		{eventv1.SubjectPower, func(m *nats.Msg) {
			gotPower = m.Data
			var req map[string]any
			json.Unmarshal(m.Data, &req)
			if req["mde"] == nil {
				r := nats.NewMsg(m.Reply)
				r.Header.Set(eventv1.HeaderError, "give exactly one of mde and total_users")
				r.Header.Set(eventv1.HeaderStatus, "400")
				m.RespondMsg(r)
				return
			}
			m.Respond([]byte(`{"total_users": 29000}`))
		}},
		{eventv1.SubjectHistory, func(m *nats.Msg) {
			json.Unmarshal(m.Data, &gotHistory)
			m.Respond([]byte(`{"test_id": "` + gotHistory.TestID + `", "metric": "` + gotHistory.Metric + `", "series": []}`))
		}},
	} {
		sub, err := h.bus.NC.QueueSubscribe(s.subject, eventv1.QueueAnalyzers, s.fn)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}

	code, body := h.do("POST", "/api/ab-testing/power", `{"metric_type": "binary", "baseline_rate": 0.1, "mde": 0.1}`)
	if code != 200 || body["total_users"] != 29000.0 || string(gotPower) != `{"metric_type": "binary", "baseline_rate": 0.1, "mde": 0.1}` {
		t.Errorf("power = %d %v (analyzer got %s), want the analyzer's plan", code, body, gotPower)
	}
	code, body = h.do("POST", "/api/ab-testing/power", `{"baseline_rate": 0.1}`)
	if code != 400 || body["error"] != "give exactly one of mde and total_users" {
		t.Errorf("power with a bad request = %d %v, want the analyzer's 400", code, body)
	}
	if code, _ := h.do("POST", "/api/ab-testing/power", `[1]`); code != 400 {
		t.Errorf("power with an array = %d, want 400", code)
	}

	code, body = h.do("GET", history+"?metric=latency", "")
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
