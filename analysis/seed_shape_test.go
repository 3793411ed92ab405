package analysis

import (
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// TestSeedResultShape checks the report's top-level p_value and
// variant_results, the seed's shape of the primary metric: with two
// variants p_value is the comparison's; with three it is the winner's
// adjusted p-value, else the smallest adjusted one; every variant has its
// row, and each treatment's row its comparison's adjusted p-value.
func TestSeedResultShape(t *testing.T) {
	s := func(n int64, mean, sd float64) stats.Sample { return stats.Sample{N: n, Mean: mean, Variance: sd * sd} }
	two := twoArmDef()
	r := BuildReport(two, Data{Assignments: map[string]int64{"control": 1000, "b": 1000}, Metrics: map[string]map[string]stats.Sample{
		"m": {"control": s(1000, 10, 3), "b": s(1000, 10.4, 3)}}}, time.Now())
	c := r.Metrics[0].Comparisons[0]
	if r.PValue == nil || c.PValue == nil || *r.PValue != *c.PValue {
		t.Fatalf("two variants: p_value %v, want the comparison's %v", r.PValue, c.PValue)
	}
	if len(r.VariantResults) != 2 || r.VariantResults[0].VariantID != "control" || r.VariantResults[0].PValue != nil ||
		r.VariantResults[1].PValue == nil || *r.VariantResults[1].PValue != *c.PValueAdjusted ||
		r.VariantResults[1].MeanValue == nil || *r.VariantResults[1].MeanValue != 10.4 {
		t.Fatalf("two variants: variant_results %+v", r.VariantResults)
	}

	three := &experiment.Test{
		ID: "t3", Name: "n", Type: experiment.TypeWorkflow, Status: experiment.StatusRunning, ControlVariantID: "control", PrimaryMetric: "m",
		Variants: []experiment.Variant{{ID: "control", TrafficPercentage: 34}, {ID: "b", TrafficPercentage: 33}, {ID: "c", TrafficPercentage: 33}},
	}
	three.SetDefaults()
	assigned := map[string]int64{"control": 1020, "b": 990, "c": 990}
	for _, tc := range []struct {
		name   string
		b, c   float64
		winner string
	}{
		{"a winner", 10.05, 10.6, "c"},
		{"no winner", 10.05, 10.1, ""},
	} {
		r := BuildReport(three, Data{Assignments: assigned, Metrics: map[string]map[string]stats.Sample{
			"m": {"control": s(1020, 10, 3), "b": s(990, tc.b, 3), "c": s(990, tc.c, 3)}}}, time.Now())
		adj := map[string]float64{}
		smallest := 2.0
		for _, cmp := range r.Metrics[0].Comparisons {
			adj[cmp.VariantID] = *cmp.PValueAdjusted
			smallest = min(smallest, *cmp.PValueAdjusted)
		}
		got := ""
		if r.WinnerVariantID != nil {
			got = *r.WinnerVariantID
		}
		if got != tc.winner {
			t.Fatalf("%s: winner %q, want %q", tc.name, got, tc.winner)
		}
		want := smallest
		if tc.winner != "" {
			want = adj[tc.winner]
		}
		if r.PValue == nil || *r.PValue != want {
			t.Errorf("%s: p_value %v, want %v (adjusted %v)", tc.name, r.PValue, want, adj)
		}
		for _, row := range r.VariantResults[1:] {
			if row.PValue == nil || *row.PValue != adj[row.VariantID] {
				t.Errorf("%s: row %s p_value %v, want %v", tc.name, row.VariantID, row.PValue, adj[row.VariantID])
			}
		}
	}
}
