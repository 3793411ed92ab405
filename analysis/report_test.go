package analysis

import (
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

func testDef() *experiment.Test {
	t := &experiment.Test{
		ID: "t1", Name: "n", Type: experiment.TypeWorkflow,
		Variants: []experiment.Variant{
			{ID: "control", TrafficPercentage: 34},
			{ID: "b", TrafficPercentage: 33},
			{ID: "c", TrafficPercentage: 33},
		},
		ControlVariantID: "control", PrimaryMetric: "revenue", Status: experiment.StatusRunning,
	}
	t.SetDefaults()
	return t
}

func TestDecisions(t *testing.T) {
	s := func(n int64, mean, sd float64) stats.Sample { return stats.Sample{N: n, Mean: mean, Variance: sd * sd} }
	tests := []struct {
		name       string
		samples    map[string]stats.Sample
		wantWinner string // "" for none
		wantDec    string
		wantReason string
	}{
		{
			name:    "no data",
			samples: nil,
			wantDec: experiment.DecisionNoData, wantReason: "no results",
		},
		{
			name:    "one variant below the minimum",
			samples: map[string]stats.Sample{"control": s(1000, 10, 3), "b": s(99, 12, 3), "c": s(1000, 10, 3)},
			wantDec: experiment.DecisionInsufficientSample, wantReason: "variant b has 99 of the 100",
		},
		{
			name:       "treatment b wins",
			samples:    map[string]stats.Sample{"control": s(1000, 10, 3), "b": s(1000, 11, 3), "c": s(1000, 10.05, 3)},
			wantWinner: "b", wantDec: experiment.DecisionWinner, wantReason: "variant b beats control",
		},
		{
			name:       "best of two significant treatments",
			samples:    map[string]stats.Sample{"control": s(1000, 10, 3), "b": s(1000, 11, 3), "c": s(1000, 12, 3)},
			wantWinner: "c", wantDec: experiment.DecisionWinner,
		},
		{
			name:       "control beats every treatment",
			samples:    map[string]stats.Sample{"control": s(1000, 12, 3), "b": s(1000, 11, 3), "c": s(1000, 10, 3)},
			wantWinner: "control", wantDec: experiment.DecisionWinner, wantReason: "control control beats every other variant",
		},
		{
			name:    "one worse, one equal: no winner",
			samples: map[string]stats.Sample{"control": s(1000, 12, 3), "b": s(1000, 11, 3), "c": s(1000, 12, 3)},
			wantDec: experiment.DecisionNotSignificant,
		},
		{
			name:    "no difference",
			samples: map[string]stats.Sample{"control": s(1000, 10, 3), "b": s(1000, 10.1, 3), "c": s(1000, 9.9, 3)},
			wantDec: experiment.DecisionNotSignificant,
		},
		{
			name:    "zero variance everywhere",
			samples: map[string]stats.Sample{"control": s(200, 1, 0), "b": s(200, 1, 0), "c": s(200, 1, 0)},
			wantDec: experiment.DecisionNotSignificant,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Data{Metrics: map[string]map[string]stats.Sample{}}
			if tt.samples != nil {
				d.Metrics["revenue"] = tt.samples
			}
			r := BuildReport(testDef(), d, time.Unix(0, 0))
			got := ""
			if r.WinnerVariantID != nil {
				got = *r.WinnerVariantID
			}
			if got != tt.wantWinner || r.Decision != tt.wantDec {
				t.Errorf("BuildReport() winner %q decision %q (%s), want %q %q", got, r.Decision, r.Reason, tt.wantWinner, tt.wantDec)
			}
			if !strings.Contains(r.Reason, tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", r.Reason, tt.wantReason)
			}
		})
	}
}

func TestReportShape(t *testing.T) {
	d := Data{
		Assignments: map[string]int64{"control": 10, "b": 12},
		Metrics: map[string]map[string]stats.Sample{
			"latency":  {"control": {N: 5, Mean: 1, Variance: 1}},
			"aaa":      {"b": {N: 1, Mean: 2}},
			"revenue":  {"control": {N: 3, Mean: 1, Variance: 1}, "b": {N: 3, Mean: 2, Variance: 1}},
			"zzz_last": {},
		},
	}
	r := BuildReport(testDef(), d, time.Unix(0, 0))
	var names []string
	for _, m := range r.Metrics {
		names = append(names, m.Metric)
	}
	if want := "revenue aaa latency zzz_last"; strings.Join(names, " ") != want {
		t.Errorf("metrics order = %v, want primary first then by name: %s", names, want)
	}
	if r.Assignments["c"] != 0 || r.Assignments["b"] != 12 {
		t.Errorf("assignments = %v", r.Assignments)
	}
	aaa := r.Metrics[1]
	if aaa.Variants[1].MeanValue == nil || aaa.Variants[1].StdDev != nil || aaa.Variants[0].MeanValue != nil {
		t.Errorf("one-user variant should have a mean and no sd; empty variant no mean: %+v", aaa.Variants)
	}
	if aaa.Comparisons[0].PValue != nil || aaa.Comparisons[0].Note == "" {
		t.Errorf("comparison without data should explain itself: %+v", aaa.Comparisons[0])
	}
}
