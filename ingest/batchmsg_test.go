package ingest

import (
	stdjson "encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// batchData encodes events as a batch message: one JSON event per line.
func batchData(t *testing.T, events ...any) []byte {
	t.Helper()
	lines := make([]string, len(events))
	for i, ev := range events {
		if s, ok := ev.(string); ok {
			lines[i] = s
			continue
		}
		b, err := stdjson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = string(b)
	}
	return []byte(strings.Join(lines, "\n"))
}

// resultLines returns the per results of batch message m, one per user u0,
// u1, ..., with event ids r<m>-<i> and metric m = i.
func resultLines(m, per int, ts time.Time) []any {
	evs := make([]any, per)
	for i := range per {
		evs[i] = eventv1.Result{EventID: fmt.Sprintf("r%d-%d", m, i), TestID: "t1", UserID: fmt.Sprintf("u%d", i),
			VariantID: "b", Metrics: map[string]float64{"m": float64(i)}, Timestamp: ts}
	}
	return evs
}

func TestDecodeBatchMessage(t *testing.T) {
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ok := eventv1.Result{EventID: "e1", TestID: "t", UserID: "u", VariantID: "b", Metrics: map[string]float64{"m": 1}, Timestamp: ts}
	ok2 := ok
	ok2.EventID = "e2"
	data := batchData(t, ok, `{"event_id":"bad"}`, "", ok2, "not json")
	evs, poison, err := decodeMessage(eventv1.SubjectResultBatch, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].result.EventID != "e1" || evs[1].result.EventID != "e2" {
		t.Errorf("events = %+v, want e1 and e2", evs)
	}
	if len(poison) != 2 || poison[0].line != 1 || poison[1].line != 4 || string(poison[1].data) != "not json" {
		t.Errorf("poison = %+v, want lines 1 and 4", poison)
	}
	// An assignment line on the result batch subject is invalid.
	asg := eventv1.Assignment{EventID: "a", TestID: "t", UserID: "u", VariantID: "b", Timestamp: ts}
	if _, poison, _ := decodeMessage(eventv1.SubjectResultBatch, batchData(t, asg)); len(poison) != 1 {
		t.Errorf("an assignment on %s gave %d poison lines, want 1", eventv1.SubjectResultBatch, len(poison))
	}
	if evs, _, err := decodeMessage(eventv1.SubjectAssignmentBatch, batchData(t, asg, asg)); err != nil || len(evs) != 2 {
		t.Errorf("assignment batch = %d events, %v", len(evs), err)
	}
	if _, _, err := decodeMessage(eventv1.SubjectResultBatch, []byte("\n\n")); err == nil {
		t.Error("an empty batch message decoded without error")
	}
}

// TestBatchMessages stores batch messages, sends each invalid line to the
// dead-letter stream with its line number, and stores the other lines.
func TestBatchMessages(t *testing.T) {
	e := newEnv(t)
	ts := time.Now().UTC().Truncate(time.Second)
	const msgs, per = 5, 200
	for m := range msgs {
		evs := resultLines(m, per, ts)
		if m == 2 {
			evs[7] = `{"event_id": "poison"}`
		}
		e.publish(t, eventv1.SubjectResultBatch, batchData(t, evs...))
	}
	e.publish(t, eventv1.SubjectAssignmentBatch, batchData(t,
		eventv1.Assignment{EventID: "a1", TestID: "t1", UserID: "u1", VariantID: "b", Timestamp: ts},
		eventv1.Assignment{EventID: "a2", TestID: "t1", UserID: "u2", VariantID: "b", Timestamp: ts}))
	e.publish(t, eventv1.SubjectResultBatch, []byte("only garbage"))
	e.start(t, Config{BatchSize: 2, FlushInterval: 10 * time.Millisecond, Workers: 2})
	cons := e.consumer(t)
	waitFor(t, 20*time.Second, "nothing pending", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if got, want := e.count(t, "SELECT count() FROM results"), uint64(msgs*per-1); got != want {
		t.Errorf("result rows = %d, want %d", got, want)
	}
	if got := e.count(t, "SELECT count() FROM results WHERE event_id = 'r2-7'"); got != 0 {
		t.Errorf("the poison line was stored %d times", got)
	}
	if got := e.count(t, "SELECT count() FROM assignments"); got != 2 {
		t.Errorf("assignment rows = %d, want 2", got)
	}
	var got []string
	for _, m := range e.deadLetters(t, 2) {
		got = append(got, fmt.Sprintf("%s line=%q %s", m.Headers().Get(eventv1.HeaderOriginalSubject),
			m.Headers().Get(eventv1.HeaderOriginalLine), m.Data()))
	}
	want := []string{
		eventv1.SubjectResultBatch + ` line="0" only garbage`,
		eventv1.SubjectResultBatch + ` line="7" {"event_id": "poison"}`,
	}
	slices.Sort(got) // two workers: either message may come first
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letters = %q, want %q", got, want)
	}
}

// TestBatchRedeliveryAfterCrashIsNotDuplicated is the crash test for batch
// messages: a process inserts some messages' events and dies before the
// ack; the next one stores each event exactly once.
func TestBatchRedeliveryAfterCrashIsNotDuplicated(t *testing.T) {
	e := newEnv(t)
	ts := time.Now().UTC().Truncate(time.Second)
	const msgs, per = 6, 50
	for m := range msgs {
		e.publish(t, eventv1.SubjectResultBatch, batchData(t, resultLines(m, per, ts)...))
	}
	cfg := Config{BatchSize: 1000, FlushInterval: 10 * time.Millisecond, Workers: 1, AckWait: 3 * time.Second, InsertTimeout: time.Second}
	c, err := New(cfg, e.bus.JS, e.conn, e.log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c2 := crashThenRecover(t, e, c, msgs)
	if got := e.count(t, "SELECT count() FROM results"); got != msgs*per {
		t.Errorf("result rows = %d, want %d (each event once)", got, msgs*per)
	}
	if dup := testutil.ToFloat64(c2.metrics.duplicates); dup != msgs/2*per {
		t.Errorf("redelivered duplicates skipped = %v, want %d", dup, msgs/2*per)
	}
}

// BenchmarkDecode compares the parser ingest uses with encoding/json on a
// result event, in one run.
func BenchmarkDecode(b *testing.B) {
	res, err := os.ReadFile("../schemas/eventv1/testdata/result.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parser=encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r eventv1.Result
			if err := stdjson.Unmarshal(res, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parser=go-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decode(eventv1.SubjectResult, res); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"insert timeout at the bound", Config{InsertTimeout: MaxInsertTimeout, AckWait: 2 * MaxInsertTimeout}, true},
		{"insert timeout past the fold margin", Config{InsertTimeout: 3 * time.Minute, AckWait: 5 * time.Minute}, false},
		{"ack wait shorter than an insert", Config{InsertTimeout: 20 * time.Second, AckWait: 10 * time.Second}, false},
		{"batch too large", Config{BatchSize: 100_001}, false},
	} {
		cfg := tt.cfg
		cfg.setDefaults()
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
