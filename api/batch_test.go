package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
	if n := len(streamEvents(t, h.bus.JS, eventv1.SubjectResult)); n != 50 {
		t.Errorf("stream holds %d results, want 50", n)
	}
	// JetStream's cost is per message: the 50 results travel as one.
	if n := len(streamMessages(t, h.bus.JS, eventv1.SubjectResultBatch)); n != 1 {
		t.Errorf("the results took %d messages, want 1", n)
	}

	// The same events again as NDJSON: every one is a duplicate, nothing new stored.
	code, r = h.batch("application/x-ndjson", strings.Join(events, "\n")+"\n")
	if code != 202 || r.Duplicates != 100 {
		t.Errorf("retried batch = %d accepted %d duplicates %d, want 202 with 100 duplicates", code, r.Accepted, r.Duplicates)
	}
	if n := len(streamEvents(t, h.bus.JS, eventv1.SubjectResult)); n != 50 {
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

func TestPackBatch(t *testing.T) {
	var valid []element
	for i := range 2500 {
		subject := eventv1.SubjectResult
		if i%5 == 0 {
			subject = eventv1.SubjectAssignment
		}
		// 400 bytes a result: 1,311 fit in 512 KiB, so the event bound binds.
		data := []byte(fmt.Sprintf(`{"event_id":"e%d","pad":"%s"}`, i, strings.Repeat("x", 380)))
		valid = append(valid, element{index: i, subject: subject, testID: "t", eventID: fmt.Sprintf("e%d", i), data: data})
	}
	msgs := packBatch(valid)
	var order []int
	counts := map[string]int{}
	for _, m := range msgs {
		lines := bytes.Split(m.data, []byte("\n"))
		if len(lines) != len(m.elements) || len(m.elements) > eventv1.MaxBatchEvents || len(m.data) > eventv1.MaxBatchBytes {
			t.Fatalf("message %s: %d lines, %d elements, %d bytes", m.subject, len(lines), len(m.elements), len(m.data))
		}
		for i, el := range m.elements {
			if !bytes.Equal(lines[i], el.data) {
				t.Fatalf("line %d of a %s message is not its element", i, m.subject)
			}
			order = append(order, el.index)
		}
		counts[m.subject] += len(m.elements)
	}
	if counts[eventv1.SubjectAssignmentBatch] != 500 || counts[eventv1.SubjectResultBatch] != 2000 || len(msgs) != 3 {
		t.Errorf("packed %v into %d messages, want 500 assignments and 2000 results in 3", counts, len(msgs))
	}
	for kind, idx := range map[string][]int{"assignments": order[:500], "results": order[500:]} {
		if !slices.IsSorted(idx) {
			t.Errorf("%s are out of order", kind)
		}
	}

	// Big events: the byte bound splits.
	big := make([]element, 300)
	for i := range big {
		big[i] = element{index: i, subject: eventv1.SubjectResult, testID: "t", eventID: fmt.Sprint(i), data: bytes.Repeat([]byte("y"), 4000)}
	}
	if got := packBatch(big); len(got) != 3 || len(got[0].elements) != 131 {
		t.Errorf("300 events of 4000 bytes = %d messages (first %d events), want 3 of at most 131", len(got), len(got[0].elements))
	}

	// Ids: the same events give the same id (a retried batch is a duplicate),
	// others a different one.
	again := packBatch(valid)
	other := packBatch(append(valid[:1:1], valid[2:]...))
	if again[1].id != msgs[1].id || other[1].id == msgs[1].id || msgs[0].id == msgs[1].id {
		t.Errorf("message ids: %s, again %s, other batch %s", msgs[1].id, again[1].id, other[1].id)
	}
}

// TestEncodeEventMatchesEncodingJSON checks that the encoder the API uses
// for events writes what encoding/json writes, byte for byte, for the
// values events carry: awkward strings, floats across the exponent range,
// attributes and covariates.
func TestEncodeEventMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"plain", "<script>&'\"", "ünïcødé ☃", "tab\tnew\nline", "\u2028\u2029", "x\\y", "\x7f", strings.Repeat("z", 128)}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-7, 1e-6, 1e20, 1e21, 123456789.123456789, math.MaxFloat64, math.SmallestNonzeroFloat64, -2.5e-300}
	ts := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	for i := range 2000 {
		s := func() string { return strs[rng.IntN(len(strs))] }
		f := func() float64 {
			if i%2 == 0 {
				return floats[rng.IntN(len(floats))]
			}
			return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(40)-20))
		}
		r := eventv1.Result{EventID: s(), TestID: s(), UserID: s(), VariantID: s(), Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			Metrics: map[string]float64{s(): f(), s(): f()}, Covariates: map[string]float64{s(): f()}}
		a := eventv1.Assignment{EventID: s(), TestID: s(), UserID: s(), VariantID: s(), Timestamp: ts, Attributes: map[string]string{s(): s(), s(): s()}}
		for _, v := range []any{&r, &a} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeEvent(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encodeEvent:\n%s\nencoding/json:\n%s", got, want)
			}
		}
	}
}

// TestBatchRepeatsInOneRequest: an event sent twice in one batch is
// published once; the repeat is accepted as a duplicate.
func TestBatchRepeatsInOneRequest(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.createRunning()
	ev := fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": "u1", "metrics": {"m": 1}, "event_id": "same"}`, id)
	other := fmt.Sprintf(`{"type": "result", "test_id": %q, "user_id": "u2", "metrics": {"m": 2}, "event_id": "other"}`, id)
	asg := fmt.Sprintf(`{"type": "assignment", "test_id": %q, "user_id": "u1"}`, id)
	code, r := h.batch("application/json", "["+strings.Join([]string{ev, asg, other, ev, asg}, ",")+"]")
	if code != 202 || r.Accepted != 5 || r.Duplicates != 2 {
		t.Fatalf("batch with repeats = %d %+v, want 202 with 5 accepted and 2 duplicates", code, r)
	}
	for i, wantDup := range []bool{false, false, false, true, true} {
		if r.Results[i].Duplicate != wantDup || r.Results[i].EventID != r.Results[[]int{0, 1, 2, 0, 1}[i]].EventID {
			t.Errorf("results[%d] = %+v, want duplicate %v with its first occurrence's event_id", i, r.Results[i], wantDup)
		}
	}
	if n := len(streamEvents(t, h.bus.JS, eventv1.SubjectResult)); n != 2 {
		t.Errorf("the stream holds %d results, want 2", n)
	}
	if n := len(streamEvents(t, h.bus.JS, eventv1.SubjectAssignment)); n != 1 {
		t.Errorf("the stream holds %d assignments, want 1", n)
	}
}
