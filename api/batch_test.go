package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

type batchResult struct {
	Accepted, Rejected, Failed, Duplicates int
	Results                                []batchItem
}

func (h *harness) batch(contentType, body string) (int, batchResult) {
	h.t.Helper()
	code, raw := h.doRaw("POST", "/api/ab-testing/events", contentType, body)
	var r batchResult
	if err := json.Unmarshal(raw, &r); err != nil {
		h.t.Fatalf("batch response %q: %v", raw, err)
	}
	return code, r
}

func TestBatch(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.createRunning()
	var events []string
	for i := range 50 {
		user := fmt.Sprintf("u%d", i)
		events = append(events, fmt.Sprintf(`{"type": "assignment", "test_id": %q, "user_id": %q}`, id, user))
		events = append(events, fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": %q, "metrics": {"revenue": %d}, "event_id": "e-%d"}`, id, user, i, i))
	}
	code, r := h.batch("application/json", "["+strings.Join(events, ",")+"]")
	if code != 202 || r.Accepted != 100 || r.Rejected != 0 || r.Failed != 0 {
		t.Fatalf("batch of 100 = %d %+v, want 202 with 100 accepted", code, r)
	}
	for i, it := range r.Results {
		if it.Index != i || it.Status != "accepted" || it.EventID == "" {
			t.Fatalf("results[%d] = %+v", i, it)
		}
	}
	// Assignment elements report the variant the hash gives.
	var tdef experiment.Test
	_, got := h.doRaw("GET", "/api/ab-testing/tests/"+id, "", "")
	json.Unmarshal(got, &tdef)
	if want := experiment.Assign(&tdef, "u7").ID; r.Results[14].VariantID != want {
		t.Errorf("assignment variant = %q, want %q", r.Results[14].VariantID, want)
	}
	if n := len(streamMessages(t, h.bus.JS, eventv1.SubjectResult)); n != 50 {
		t.Errorf("stream holds %d results, want 50", n)
	}

	// The same events again as NDJSON: every one is a duplicate, nothing new stored.
	code, r = h.batch("application/x-ndjson", strings.Join(events, "\n")+"\n")
	if code != 202 || r.Duplicates != 100 {
		t.Errorf("retried batch = %d accepted %d duplicates %d, want 202 with 100 duplicates", code, r.Accepted, r.Duplicates)
	}
	if n := len(streamMessages(t, h.bus.JS, eventv1.SubjectResult)); n != 50 {
		t.Errorf("after the retry the stream holds %d results, want 50", n)
	}

	// Mixed validity: 207, with each bad element named.
	mixed := []string{
		fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": "x", "metrics": {"m": 1}}`, id),
		fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": "x", "variant_id": "nope", "metrics": {"m": 1}}`, id),
		`{"type": "result", "test_id": "missing", "user_id": "x", "metrics": {"m": 1}}`,
		fmt.Sprintf(`{"type": "click", "test_id": %q, "user_id": "x"}`, id),
		fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": "x", "metrics": {"m": null}}`, id),
		fmt.Sprintf(`{"type": "assignment", "test_id": %q, "user_id": "x", "variant_id": "wrong"}`, id),
		fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": "x", "metrics": {"m": 1}, "timestamp": %q}`, id, time.Now().Add(time.Hour).Format(time.RFC3339)),
		`{"type": "result", "extra": 1}`,
		`[1]`,
	}
	code, r = h.batch("application/json", "["+strings.Join(mixed, ",")+"]")
	if code != 207 || r.Accepted != 1 || r.Rejected != len(mixed)-1 {
		t.Fatalf("mixed batch = %d %+v, want 207 with 1 accepted", code, r)
	}
	wantField := []string{"", "variant_id", "test_id", "type", "metrics.m", "variant_id", "timestamp", "extra", ""}
	for i, it := range r.Results {
		if i > 0 && (it.Status != "rejected" || it.Error == "") {
			t.Errorf("results[%d] = %+v, want rejected with a reason", i, it)
		}
		if it.Field != wantField[i] {
			t.Errorf("results[%d].field = %q, want %q (%s)", i, it.Field, wantField[i], it.Error)
		}
	}

	// Whole-request errors.
	tests := []struct {
		name, ct, body string
		want           int
	}{
		{"empty array", "application/json", "[]", 400},
		{"not an array", "application/json", `{"type": "result"}`, 400},
		{"wrong content type", "text/csv", "a,b", 415},
		{"all invalid", "application/json", `[{"type": "x"}]`, 400},
		{"too many", "application/x-ndjson", strings.Repeat("{}\n", MaxBatchEvents+1), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw := h.doRaw("POST", "/api/ab-testing/events", tt.ct, tt.body)
			if code != tt.want {
				t.Errorf("POST /events (%s) = %d %s, want %d", tt.name, code, raw, tt.want)
			}
		})
	}
}

func TestBatchWhenNATSIsDown(t *testing.T) {
	h := newHarness(t, Config{PublishTimeout: 500 * time.Millisecond})
	id := h.createRunning()
	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	body := fmt.Sprintf(`[{"type": "result", "test_id": %q, "user_id": "u", "metrics": {"m": 1}, "event_id": "keep-me"}]`, id)
	start := time.Now()
	code, r := h.batch("application/json", body)
	if code != 503 || r.Failed != 1 || r.Results[0].EventID != "keep-me" {
		t.Errorf("batch with NATS down = %d %+v, want 503 with the event failed and its id", code, r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("batch with NATS down took %v, want about the publish timeout", d)
	}
}
