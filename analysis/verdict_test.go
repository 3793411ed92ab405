package analysis

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

func twoArmDef(metrics ...experiment.Metric) *experiment.Test {
	t := &experiment.Test{
		ID: "t2", Name: "n", Type: experiment.TypeWorkflow,
		Variants:         []experiment.Variant{{ID: "control", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		ControlVariantID: "control", PrimaryMetric: "m", Status: experiment.StatusRunning, Metrics: metrics,
	}
	t.SetDefaults()
	return t
}

func TestVerdict(t *testing.T) {
	s := func(n int64, mean, sd float64) stats.Sample { return stats.Sample{N: n, Mean: mean, Variance: sd * sd} }
	balanced := map[string]int64{"control": 1000, "b": 1000}
	tests := []struct {
		name        string
		def         *experiment.Test
		data        Data
		wantWinner  string
		wantCode    string
		wantMessage string
	}{
		{
			name: "decrease metric: lower wins",
			def:  twoArmDef(experiment.Metric{Name: "m", Direction: experiment.DirectionDecrease}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(1000, 200, 30), "b": s(1000, 180, 30)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner, wantMessage: "lower is better",
		},
		{
			name: "decrease metric: higher loses to control",
			def:  twoArmDef(experiment.Metric{Name: "m", Direction: experiment.DirectionDecrease}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(1000, 200, 30), "b": s(1000, 220, 30)}}},
			wantWinner: "control", wantCode: experiment.DecisionWinner,
		},
		{
			name: "sample ratio mismatch withholds the winner",
			def:  twoArmDef(),
			data: Data{Assignments: map[string]int64{"control": 1000, "b": 1200}, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(1000, 10, 3), "b": s(1200, 11, 3)}}},
			wantCode: experiment.DecisionSRM, wantMessage: "Sample ratio mismatch: the variants received control 1000, b 1200 users",
		},
		{
			name: "guardrail violation withholds the winner",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(1000, 10, 3), "b": s(1000, 11, 3)},
				"latency": {"control": s(1000, 100, 10), "b": s(1000, 103, 10)}}},
			wantCode: experiment.DecisionGuardrail, wantMessage: "guardrail metric latency",
		},
		{
			name: "guardrail better: winner stands",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(1000, 10, 3), "b": s(1000, 11, 3)},
				"latency": {"control": s(1000, 100, 10), "b": s(1000, 97, 10)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "binary: assigned users count, z-test decides",
			def:  twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricBinary}),
			data: Data{Assignments: balanced, Binary: map[string]map[string]stats.Proportion{
				"m": {"control": {N: 1000, Successes: 100}, "b": {N: 1000, Successes: 130}}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "binary all zero everywhere: no test, no NaN",
			def:  twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricBinary}),
			data: Data{Assignments: balanced, Binary: map[string]map[string]stats.Proportion{
				"m": {"control": {N: 1000}, "b": {N: 1000}}}},
			wantCode: experiment.DecisionNotSignificant,
		},
		{
			name:     "empty variant",
			def:      twoArmDef(),
			data:     Data{Metrics: map[string]map[string]stats.Sample{"m": {"control": s(500, 1, 1)}}},
			wantCode: experiment.DecisionInsufficientSample,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := BuildReport(tt.def, tt.data, time.Unix(0, 0))
			got := ""
			if r.Verdict.WinnerVariantID != nil {
				got = *r.Verdict.WinnerVariantID
			}
			if got != tt.wantWinner || r.Verdict.Code != tt.wantCode {
				t.Errorf("BuildReport() verdict %q %q (%s), want %q %q", got, r.Verdict.Code, r.Verdict.Message, tt.wantWinner, tt.wantCode)
			}
			if !strings.Contains(r.Verdict.Message, tt.wantMessage) {
				t.Errorf("verdict message %q, want it to contain %q", r.Verdict.Message, tt.wantMessage)
			}
			if r.Decision != r.Verdict.Code || r.Reason != r.Verdict.Message || (r.WinnerVariantID == nil) != (r.Verdict.WinnerVariantID == nil) {
				t.Errorf("top-level decision %q %q differs from the verdict %+v", r.Decision, r.Reason, r.Verdict)
			}
			if _, err := json.Marshal(r); err != nil { // NaN or Inf would fail here
				t.Errorf("json.Marshal(report) = %v", err)
			}
		})
	}
}

func TestBinaryComparisonFields(t *testing.T) {
	def := twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricBinary})
	r := BuildReport(def, Data{Binary: map[string]map[string]stats.Proportion{
		"m": {"control": {N: 1000, Successes: 100}, "b": {N: 1000, Successes: 130}}}}, time.Unix(0, 0))
	c := r.Metrics[0].Comparisons[0]
	// STATS.md: 100/1000 vs 130/1000, Fieller CI (0.018, 0.675).
	if c.RelativeCILower == nil || c.RelativeCIUpper == nil ||
		!(*c.RelativeCILower > 0.018 && *c.RelativeCILower < 0.0185 && *c.RelativeCIUpper > 0.674 && *c.RelativeCIUpper < 0.676) {
		t.Errorf("relative CI = (%v, %v), want about (0.018, 0.675)", deref(c.RelativeCILower), deref(c.RelativeCIUpper))
	}
	if c.ZStatistic == nil || c.TStatistic != nil || c.PValuePooled == nil || c.RelativeCIMethod != "fieller" || r.Metrics[0].Test != TestProportion {
		t.Errorf("binary comparison = %+v, want z statistic, pooled p, no t", c)
	}
	if c.MinimumDetectableEffect == nil || c.UsersStillNeeded != 0 {
		t.Errorf("mde %v users still needed %d", deref(c.MinimumDetectableEffect), c.UsersStillNeeded)
	}
	v := r.Metrics[0].Variants[0]
	if v.Conversions == nil || *v.Conversions != 100 || v.SampleSize != 1000 {
		t.Errorf("control = %+v", v)
	}
}

func TestUsersStillNeeded(t *testing.T) {
	def := twoArmDef()
	def.MinSampleSize = 500
	r := BuildReport(def, Data{Metrics: map[string]map[string]stats.Sample{
		"m": {"control": {N: 300, Mean: 1, Variance: 1}, "b": {N: 450, Mean: 1, Variance: 1}}}}, time.Unix(0, 0))
	if got := r.Metrics[0].Comparisons[0].UsersStillNeeded; got != 250 {
		t.Errorf("users_still_needed = %d, want 200 + 50", got)
	}
}

func BenchmarkBuildReport(b *testing.B) {
	def := &experiment.Test{
		ID: "bench", Name: "bench", Type: experiment.TypeWorkflow, ControlVariantID: "a", PrimaryMetric: "m",
		Variants: []experiment.Variant{
			{ID: "a", TrafficPercentage: 25}, {ID: "b", TrafficPercentage: 25},
			{ID: "c", TrafficPercentage: 25}, {ID: "d", TrafficPercentage: 25},
		},
		Metrics: []experiment.Metric{{Name: "conv", Type: experiment.MetricBinary}},
	}
	def.SetDefaults()
	d := Data{
		Assignments: map[string]int64{"a": 10000, "b": 10050, "c": 9990, "d": 10010},
		Metrics:     map[string]map[string]stats.Sample{"m": {}},
		Binary:      map[string]map[string]stats.Proportion{"conv": {}},
	}
	for i, v := range def.Variants {
		d.Metrics["m"][v.ID] = stats.Sample{N: 10000, Mean: 10 + float64(i)/10, Variance: 9}
		d.Binary["conv"][v.ID] = stats.Proportion{N: 10000, Successes: int64(1000 + 20*i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		BuildReport(def, d, time.Time{})
	}
}

// TestVerdictOptions checks the decision rules of the test options on
// sufficient statistics.
func TestVerdictOptions(t *testing.T) {
	s := func(n int64, mean, sd float64) stats.Sample { return stats.Sample{N: n, Mean: mean, Variance: sd * sd} }
	balanced := map[string]int64{"control": 2000, "b": 2000}
	margin := func(m float64) *float64 { return &m }
	sequential := func(d *experiment.Test) *experiment.Test {
		d.AnalysisMethod = experiment.MethodSequential
		d.SetDefaults()
		return d
	}
	// Significant at a fixed horizon (p = 0.0032) but not under
	// continuous monitoring at N = 4000.
	peek := map[string]stats.Sample{"control": s(2000, 10, 3), "b": s(2000, 10.28, 3)}
	tests := []struct {
		name       string
		def        *experiment.Test
		data       Data
		wantWinner string
		wantCode   string
		wantIn     string
	}{
		{
			name: "fixed horizon decides on the fixed p-value", def: twoArmDef(),
			data:       Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{"m": peek}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "sequential decides on the always-valid p-value", def: sequential(twoArmDef()),
			data:     Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{"m": peek}},
			wantCode: experiment.DecisionNotSignificant, wantIn: "always-valid",
		},
		{
			name: "sequential winner", def: sequential(twoArmDef()),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(2000, 10, 3), "b": s(2000, 10.6, 3)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner, wantIn: "always-valid adjusted p",
		},
		{
			name: "guardrail within its margin lets the winner through, though significantly worse",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.05)}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(2000, 10, 3), "b": s(2000, 11, 3)},
				"latency": {"control": s(2000, 200, 10), "b": s(2000, 202, 10)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "guardrail beyond its margin withholds the winner",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.005)}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(2000, 10, 3), "b": s(2000, 11, 3)},
				"latency": {"control": s(2000, 200, 10), "b": s(2000, 200.5, 10)}}},
			wantCode: experiment.DecisionNonInferiority, wantIn: "not shown to be within the margin 0.5% of the control mean (1)",
		},
		{
			name: "guardrail within its margin at a fixed horizon",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.015)}),
			data: Data{Assignments: map[string]int64{"control": 300, "b": 300}, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(300, 10, 3), "b": s(300, 12, 3)},
				"latency": {"control": s(300, 200, 10), "b": s(300, 201, 10)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "the same guardrail not yet shown within its margin under continuous monitoring",
			def: sequential(twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.015)})),
			data: Data{Assignments: map[string]int64{"control": 300, "b": 300}, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(300, 10, 3), "b": s(300, 12, 3)},
				"latency": {"control": s(300, 200, 10), "b": s(300, 201, 10)}}},
			wantCode: experiment.DecisionNonInferiority, wantIn: "always-valid one-sided p",
		},
		{
			name: "guardrail without data withholds the winner when it has a margin",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.05)}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(2000, 10, 3), "b": s(2000, 11, 3)}}},
			wantCode: experiment.DecisionNonInferiority,
		},
		{
			name: "sequential SRM",
			def:  sequential(twoArmDef()),
			data: Data{Assignments: map[string]int64{"control": 2000, "b": 2300}, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(2000, 10, 3), "b": s(2300, 11, 3)}}},
			wantCode: experiment.DecisionSRM, wantIn: "stays valid however often",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.def.Validate(); err != nil {
				t.Fatal(err)
			}
			r := BuildReport(tt.def, tt.data, time.Now())
			winner := ""
			if r.Verdict.WinnerVariantID != nil {
				winner = *r.Verdict.WinnerVariantID
			}
			if winner != tt.wantWinner || r.Verdict.Code != tt.wantCode || !strings.Contains(r.Verdict.Message+r.Reason, tt.wantIn) {
				t.Errorf("verdict = %q %s %q, want %q %s containing %q", winner, r.Verdict.Code, r.Verdict.Message, tt.wantWinner, tt.wantCode, tt.wantIn)
			}
			if tt.def.Sequential() != (r.Metrics[0].Comparisons[0].Sequential != nil) {
				t.Errorf("sequential block = %+v on a %s test", r.Metrics[0].Comparisons[0].Sequential, tt.def.Method())
			}
		})
	}
}
