package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/analysis/stats/statstest"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

// TestLoadCountsEachEventOnce stores the same events in two tests, the
// second with some events stored two or three times (client retries after
// the duplicate window), and checks that both load the same statistics:
// the users without duplicates take the fast path, the others the exact
// one, and winsorization reads both kinds.
func TestLoadCountsEachEventOnce(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	p90 := 90.0
	def := func(id string) *experiment.Test {
		d := &experiment.Test{
			ID: id, Name: id, Type: experiment.TypeModel, ControlVariantID: "a", PrimaryMetric: "m",
			Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
			Metrics:  []experiment.Metric{{Name: "capped", WinsorizePercentile: &p90}},
		}
		d.SetDefaults()
		return d
	}
	clean, dup := def("once"), def("dups")
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	duplicated := 0
	for i := range 3000 {
		user := rng.IntN(500)
		variant := []string{"a", "b"}[user%2]
		metric := []string{"m", "capped"}[i%2]
		value := math.Round(rng.ExpFloat64()*1000) / 100
		id := fmt.Sprintf("e%d", i)
		copies := 1
		if i%50 < 2 { // both metrics
			copies = 2 + i%3
			duplicated++
		}
		if err := batch.Append(clean.ID, variant, fmt.Sprintf("u%d", user), metric, value, id, time.Now(), uint64(i)); err != nil {
			t.Fatal(err)
		}
		for range copies {
			if err := batch.Append(dup.ID, variant, fmt.Sprintf("u%d", user), metric, value, id, time.Now(), uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	want, err := load(t.Context(), conn, clean)
	if err != nil {
		t.Fatal(err)
	}
	got, err := load(t.Context(), conn, dup)
	if err != nil {
		t.Fatal(err)
	}
	if duplicated == 0 || len(want.Metrics) != 2 || want.Caps["capped"] == 0 {
		t.Fatalf("fixture: %d duplicated events, metrics %v, caps %v", duplicated, want.Metrics, want.Caps)
	}
	for metric, byVariant := range want.Metrics {
		for v, w := range byVariant {
			g := got.Metrics[metric][v]
			if g.N != w.N || !statstest.Close(g.Mean, w.Mean) || !statstest.Close(g.Variance, w.Variance) {
				t.Errorf("%s/%s with duplicates = %+v, want %+v", metric, v, g, w)
			}
		}
	}
	if !statstest.Close(got.Caps["capped"], want.Caps["capped"]) {
		t.Errorf("cap with duplicates = %v, want %v", got.Caps["capped"], want.Caps["capped"])
	}
}

// sampleOf returns the Sample of xs, one value per user: the tests' oracle
// for what ClickHouse aggregates.
func sampleOf(xs []float64) stats.Sample {
	n, mean, variance := statstest.Moments(xs)
	return stats.Sample{N: n, Mean: mean, Variance: variance}
}
