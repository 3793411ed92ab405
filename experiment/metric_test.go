package experiment

import (
	"errors"
	"testing"
)

func TestMetricDeclarations(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name      string
		primary   string
		metrics   []Metric
		mc        string
		wantField string // "" for valid
	}{
		{name: "none declared", primary: "conversion"},
		{name: "defaults filled", primary: "conversion", metrics: []Metric{{Name: "conversion"}, {Name: "latency", Direction: DirectionDecrease}}},
		{name: "primary from role", primary: "", metrics: []Metric{{Name: "conversion", Type: MetricBinary, Role: RolePrimary}}},
		{name: "winsorized", primary: "revenue", metrics: []Metric{{Name: "revenue", WinsorizePercentile: f(99)}}},
		{name: "bh", primary: "conversion", mc: CorrectionBenjaminiHochberg},
		{name: "unknown correction", primary: "conversion", mc: "bonferroni", wantField: "multiple_comparison"},
		{name: "bad type", primary: "conversion", metrics: []Metric{{Name: "x", Type: "count"}}, wantField: "metrics[0].type"},
		{name: "bad direction", primary: "conversion", metrics: []Metric{{Name: "x", Direction: "up"}}, wantField: "metrics[0].direction"},
		{name: "bad role", primary: "conversion", metrics: []Metric{{Name: "x", Role: "main"}}, wantField: "metrics[0].role"},
		{name: "duplicate", primary: "conversion", metrics: []Metric{{Name: "x"}, {Name: "x"}}, wantField: "metrics[1].name"},
		{name: "bad name", primary: "conversion", metrics: []Metric{{Name: "a b"}}, wantField: "metrics[0].name"},
		{name: "second primary", primary: "conversion", metrics: []Metric{{Name: "x", Role: RolePrimary}}, wantField: "metrics[0].role"},
		{name: "primary as guardrail", primary: "conversion", metrics: []Metric{{Name: "conversion", Role: RoleGuardrail}}, wantField: "metrics[0].role"},
		{name: "winsorize binary", primary: "conversion", metrics: []Metric{{Name: "conversion", Type: MetricBinary, WinsorizePercentile: f(99)}}, wantField: "metrics[0].winsorize_percentile"},
		{name: "winsorize 100", primary: "revenue", metrics: []Metric{{Name: "revenue", WinsorizePercentile: f(100)}}, wantField: "metrics[0].winsorize_percentile"},
		{name: "winsorize fraction", primary: "revenue", metrics: []Metric{{Name: "revenue", WinsorizePercentile: f(0.99)}}, wantField: "metrics[0].winsorize_percentile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := validTest()
			def.PrimaryMetric, def.Metrics, def.MultipleComparison = tt.primary, tt.metrics, tt.mc
			def.SetDefaults()
			err := def.Validate()
			var ve *ValidationError
			switch {
			case tt.wantField == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantField != "" && (!errors.As(err, &ve) || ve.Field != tt.wantField):
				t.Errorf("Validate() = %v, want an error on %s", err, tt.wantField)
			}
		})
	}
}

func TestMetricSpec(t *testing.T) {
	def := validTest()
	def.PrimaryMetric = "conversion"
	def.Metrics = []Metric{{Name: "latency", Direction: DirectionDecrease, Role: RoleGuardrail}}
	def.SetDefaults()
	if got := def.MetricSpec("latency"); got.Type != MetricContinuous || got.Direction != DirectionDecrease || got.Role != RoleGuardrail {
		t.Errorf("MetricSpec(latency) = %+v", got)
	}
	if got := def.MetricSpec("conversion"); got.Role != RolePrimary || got.Type != MetricContinuous || got.Direction != DirectionIncrease {
		t.Errorf("MetricSpec(conversion) = %+v, want the primary default", got)
	}
	if got := def.MetricSpec("other"); got.Role != RoleSecondary {
		t.Errorf("MetricSpec(other) = %+v, want secondary", got)
	}
	if def.Correction() != CorrectionHolm {
		t.Errorf("Correction() = %q, want holm", def.Correction())
	}
}
