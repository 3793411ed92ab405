package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats/statstest"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

// resultRow is one row of the results table.
type resultRow struct {
	user, metric, event string
	value               float64
	ingested            time.Time // zero: ClickHouse's now()
}

func insertResults(t *testing.T, conn driver.Conn, testID string, rows []resultRow) {
	t.Helper()
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		at := r.ingested
		if at.IsZero() {
			at = time.Now()
		}
		var u int
		fmt.Sscanf(r.user, "u%d", &u)
		if err := batch.Append(testID, []string{"a", "b"}[u%2], r.user, r.metric, r.value, r.event, time.Now(), uint64(i), at); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

func foldDef(id string) *experiment.Test {
	p90 := 90.0
	d := &experiment.Test{
		ID: id, Name: id, Type: experiment.TypeModel, ControlVariantID: "a", PrimaryMetric: "m",
		Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		Metrics: []experiment.Metric{
			{Name: "capped", WinsorizePercentile: &p90},
			{Name: "conv", Type: experiment.MetricBinary},
		},
	}
	d.SetDefaults()
	return d
}

func sameData(t *testing.T, what string, got, want Data) {
	t.Helper()
	for metric, byVariant := range want.Metrics {
		for v, w := range byVariant {
			g := got.Metrics[metric][v]
			if g.N != w.N || !statstest.Close(g.Mean, w.Mean) || !statstest.Close(g.Variance, w.Variance) {
				t.Errorf("%s: %s/%s = %+v, want %+v", what, metric, v, g, w)
			}
		}
	}
	for metric, byVariant := range want.Binary {
		for v, w := range byVariant {
			if g := got.Binary[metric][v]; g != w {
				t.Errorf("%s: binary %s/%s = %+v, want %+v", what, metric, v, g, w)
			}
		}
	}
	if !statstest.Close(got.Caps["capped"], want.Caps["capped"]) {
		t.Errorf("%s: cap = %v, want %v", what, got.Caps["capped"], want.Caps["capped"])
	}
}

// TestFoldIsIncremental analyzes a test, adds rows (new users, more events
// of folded users, repeats of folded events, a row whose insert began a
// minute ago), analyzes again, and checks the result against a test that
// received all the rows before its first analysis: the incremental fold
// must equal the fold from scratch.
func TestFoldIsIncremental(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	rng := rand.New(rand.NewPCG(5, 6))
	var first, later []resultRow
	// The first rows arrived an hour ago: the second fold recomputes only
	// the users that the later rows touch.
	hourAgo := time.Now().Add(-time.Hour)
	for i := range 2000 {
		first = append(first, resultRow{user: fmt.Sprintf("u%d", rng.IntN(300)), metric: []string{"m", "capped", "conv"}[i%3],
			event: fmt.Sprintf("e%d", i), value: math.Round(rng.ExpFloat64()*100) / 100, ingested: hourAgo})
	}
	for i := range 600 {
		r := resultRow{user: fmt.Sprintf("u%d", rng.IntN(400)), metric: []string{"m", "capped", "conv"}[i%3],
			event: fmt.Sprintf("f%d", i), value: math.Round(rng.ExpFloat64()*100) / 100}
		if i%10 == 0 {
			r = first[rng.IntN(len(first))] // a client's late retry of a folded event
			r.ingested = time.Time{}
		}
		if i%7 == 0 {
			r.ingested = time.Now().Add(-time.Minute) // an insert that began before the fold finished
		}
		later = append(later, r)
	}

	inc, scratch := foldDef("incremental"), foldDef("scratch")
	insertResults(t, conn, inc.ID, first)
	if _, err := load(t.Context(), conn, inc); err != nil {
		t.Fatal(err)
	}
	insertResults(t, conn, inc.ID, later)
	got, err := load(t.Context(), conn, inc)
	if err != nil {
		t.Fatal(err)
	}
	insertResults(t, conn, scratch.ID, append(append([]resultRow{}, first...), later...))
	want, err := load(t.Context(), conn, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Metrics["m"]) != 2 || len(want.Binary["conv"]) != 2 {
		t.Fatalf("fixture: metrics %v, binary %v", want.Metrics, want.Binary)
	}
	sameData(t, "incremental fold", got, want)

	// One row per user and metric, every one exact.
	var rows, users, pending uint64
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(metric, user_id), countIf(dups != 0) FROM user_aggregates FINAL WHERE test_id = ?", inc.ID).Scan(&rows, &users, &pending); err != nil {
		t.Fatal(err)
	}
	if rows != users || pending != 0 {
		t.Errorf("user_aggregates: %d rows for %d users, %d pending, want one exact row per user", rows, users, pending)
	}
}

// TestFoldFinishesAfterCrash leaves a row as a fold that died between its
// two steps would (dups > 0, counting a duplicate twice); the next analysis
// must finish the exact step before it reads.
func TestFoldFinishesAfterCrash(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	def, ref := foldDef("crashed"), foldDef("reference")
	rows := []resultRow{
		{user: "u1", metric: "m", event: "e1", value: 10},
		{user: "u1", metric: "m", event: "e1", value: 10}, // stored twice
		{user: "u1", metric: "m", event: "e2", value: 2},
		{user: "u2", metric: "m", event: "e3", value: 5},
		{user: "u3", metric: "m", event: "e4", value: 7},
		{user: "u4", metric: "m", event: "e5", value: 1},
	}
	insertResults(t, conn, def.ID, rows)
	insertResults(t, conn, ref.ID, append(rows[:1:1], rows[2:]...))
	if err := fold(t.Context(), conn, def.ID); err != nil { // the clean step only
		t.Fatal(err)
	}
	var pending uint64
	if err := conn.QueryRow(t.Context(), "SELECT countIf(dups != 0) FROM user_aggregates FINAL WHERE test_id = ?", def.ID).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 1 {
		t.Fatalf("after the clean step %d rows wait for the exact step, want 1 (u1)", pending)
	}
	got, err := load(t.Context(), conn, def)
	if err != nil {
		t.Fatal(err)
	}
	want, err := load(t.Context(), conn, ref)
	if err != nil {
		t.Fatal(err)
	}
	sameData(t, "after a crash between the steps", got, want)
	if s := got.Metrics["m"]["b"]; s.N != 2 || !statstest.Close(s.Mean, 6.5) {
		t.Errorf("variant b = %+v, want the mean of u1's 6 and u3's 7 over 2 users", s)
	}
}

// TestFoldStaleSnapshotLoses writes, after a fold, the row that a slower
// fold of an older snapshot would write last: a fold of u1's first two rows,
// run after the fold of all three and copied over. The newer row must win,
// whatever the order of the inserts and the clock.
func TestFoldStaleSnapshotLoses(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	def, older := foldDef("stale"), foldDef("older-snapshot")
	first := []resultRow{
		{user: "u1", metric: "m", event: "e1", value: 1},
		{user: "u1", metric: "m", event: "e2", value: 3},
		{user: "u3", metric: "m", event: "e4", value: 6},
	}
	insertResults(t, conn, def.ID, append(first, resultRow{user: "u1", metric: "m", event: "e5", value: 8}))
	if _, err := load(t.Context(), conn, def); err != nil {
		t.Fatal(err)
	}
	insertResults(t, conn, older.ID, first)
	if err := fold(t.Context(), conn, older.ID); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), `INSERT INTO user_aggregates (test_id, metric, variant_id, user_id, events, total, nonzero, dups, version)
		SELECT ?, metric, variant_id, user_id, events, total, nonzero, dups, version
		FROM user_aggregates FINAL WHERE test_id = ? AND user_id = 'u1'`, def.ID, older.ID); err != nil {
		t.Fatal(err)
	}
	// Read without folding again, which would heal a stale row.
	got, _, err := queryResults(t.Context(), conn, def)
	if err != nil {
		t.Fatal(err)
	}
	if s := got["m"]["b"]; s.N != 2 || !statstest.Close(s.Mean, 5) {
		t.Errorf("variant b = %+v, want u1's mean 4 (three rows) and u3's 6: mean 5", s)
	}
}
