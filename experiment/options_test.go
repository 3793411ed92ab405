package experiment

import (
	"errors"
	"strings"
	"testing"
)

func TestAnalysisOptions(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	guardrail := func(margin *float64, kind string) []Metric {
		return []Metric{{Name: "latency", Role: RoleGuardrail, Direction: DirectionDecrease, NonInferiorityMargin: margin, NonInferiorityMarginType: kind}}
	}
	tests := []struct {
		name      string
		mutate    func(*Test)
		wantField string // "" for valid
	}{
		{name: "defaults", mutate: func(*Test) {}},
		{name: "sequential", mutate: func(t *Test) { t.AnalysisMethod = MethodSequential; t.SequentialTuningN = 20000 }},
		{name: "unknown method", mutate: func(t *Test) { t.AnalysisMethod = "bayes" }, wantField: "analysis_method"},
		{name: "tuning without sequential", mutate: func(t *Test) { t.SequentialTuningN = 20000 }, wantField: "sequential_tuning_n"},
		{name: "tuning too large", mutate: func(t *Test) { t.AnalysisMethod = MethodSequential; t.SequentialTuningN = 2e9 }, wantField: "sequential_tuning_n"},
		{name: "bayesian flat", mutate: func(t *Test) { t.Bayesian = &Bayesian{Enabled: true} }},
		{name: "bayesian normal", mutate: func(t *Test) { t.Bayesian = &Bayesian{Enabled: true, Prior: Prior{Normal: true, SD: 0.3}} }},
		{name: "prior sd", mutate: func(t *Test) { t.Bayesian = &Bayesian{Enabled: true, Prior: Prior{Normal: true, SD: -1}} }, wantField: "bayesian.prior.sd"},
		{name: "risk threshold", mutate: func(t *Test) { t.Bayesian = &Bayesian{Enabled: true, RiskThreshold: 1} }, wantField: "bayesian.risk_threshold"},
		{name: "cuped hours", mutate: func(t *Test) { t.CUPED = &CUPED{Enabled: true, Lookback: "336h"} }},
		{name: "cuped minutes", mutate: func(t *Test) { t.CUPED = &CUPED{Enabled: true, Lookback: "30m"} }, wantField: "cuped.lookback"},
		{name: "segments", mutate: func(t *Test) { t.Segments = []string{"platform", "country"} }},
		{name: "too many segments", mutate: func(t *Test) { t.Segments = []string{"a", "b", "c", "d", "e", "f"} }, wantField: "segments"},
		{name: "long segment key", mutate: func(t *Test) { t.Segments = []string{strings.Repeat("k", 65)} }, wantField: "segments[0]"},
		{name: "ratio", mutate: func(t *Test) {
			t.Metrics = []Metric{{Name: "rps", Type: MetricRatio, Numerator: "revenue", Denominator: "sessions"}}
		}},
		{name: "ratio as primary", mutate: func(t *Test) {
			t.PrimaryMetric = "rps"
			t.Metrics = []Metric{{Name: "rps", Type: MetricRatio, Numerator: "revenue", Denominator: "sessions"}}
		}},
		{name: "ratio of ratios", mutate: func(t *Test) {
			t.Metrics = []Metric{{Name: "rps", Type: MetricRatio, Numerator: "revenue", Denominator: "sessions"},
				{Name: "x", Type: MetricRatio, Numerator: "rps", Denominator: "sessions"}}
		}, wantField: "metrics[1].numerator"},
		{name: "ratio same parts", mutate: func(t *Test) {
			t.Metrics = []Metric{{Name: "rps", Type: MetricRatio, Numerator: "revenue", Denominator: "revenue"}}
		}, wantField: "metrics[0].denominator"},
		{name: "winsorized ratio", mutate: func(t *Test) {
			t.Metrics = []Metric{{Name: "rps", Type: MetricRatio, Numerator: "revenue", Denominator: "sessions", WinsorizePercentile: f(99)}}
		}, wantField: "metrics[0].winsorize_percentile"},
		{name: "relative margin", mutate: func(t *Test) { t.Metrics = guardrail(f(0.02), "") }},
		{name: "absolute margin", mutate: func(t *Test) { t.Metrics = guardrail(f(15), MarginAbsolute) }},
		{name: "relative margin too large", mutate: func(t *Test) { t.Metrics = guardrail(f(1.5), "") }, wantField: "metrics[0].non_inferiority_margin"},
		{name: "negative margin", mutate: func(t *Test) { t.Metrics = guardrail(f(-1), MarginAbsolute) }, wantField: "metrics[0].non_inferiority_margin"},
		{name: "margin type alone", mutate: func(t *Test) { t.Metrics = guardrail(nil, MarginAbsolute) }, wantField: "metrics[0].non_inferiority_margin_type"},
		{name: "margin on primary", mutate: func(t *Test) {
			t.Metrics = []Metric{{Name: "conversion", NonInferiorityMargin: f(0.1)}}
		}, wantField: "metrics[0].non_inferiority_margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := validTest()
			def.PrimaryMetric = "conversion"
			tt.mutate(def)
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

func TestAnalysisOptionDefaults(t *testing.T) {
	def := validTest()
	def.AnalysisMethod = MethodSequential
	def.Bayesian = &Bayesian{Enabled: true}
	def.CUPED = &CUPED{Enabled: true}
	def.Metrics = []Metric{{Name: "latency", Role: RoleGuardrail, NonInferiorityMargin: new(float64)}}
	def.SetDefaults()
	if def.SequentialTuningN != DefaultSequentialTuningN || def.Bayesian.RiskThreshold != DefaultRiskThreshold ||
		def.CUPED.Lookback != DefaultCUPEDLookback || def.Metrics[0].NonInferiorityMarginType != MarginRelative {
		t.Errorf("defaults = tuning %d, risk %v, lookback %q, margin type %q", def.SequentialTuningN, def.Bayesian.RiskThreshold,
			def.CUPED.Lookback, def.Metrics[0].NonInferiorityMarginType)
	}
	if d := def.CUPED.LookbackDuration(); d.Hours() != 14*24 {
		t.Errorf("LookbackDuration() = %v, want 336h", d)
	}
	plain := validTest()
	plain.SetDefaults()
	if plain.Method() != MethodFixedHorizon || plain.Sequential() || plain.TuningN() != DefaultSequentialTuningN {
		t.Errorf("plain test: method %q, sequential %v", plain.Method(), plain.Sequential())
	}
}
