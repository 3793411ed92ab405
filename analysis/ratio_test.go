package analysis

import (
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// TestRatioWithoutDenominator: a variant without any denominator has no
// ratio; every block says so instead of testing a ratio of 0.
func TestRatioWithoutDenominator(t *testing.T) {
	def := twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricRatio, Numerator: "revenue", Denominator: "sessions"},
		experiment.Metric{Name: "rpo", Type: experiment.MetricRatio, Numerator: "revenue", Denominator: "orders", Role: experiment.RoleGuardrail, NonInferiorityMargin: ptr(0.1)})
	def.AnalysisMethod, def.Bayesian = experiment.MethodSequential, &experiment.Bayesian{Enabled: true}
	def.SetDefaults()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	ok := stats.RatioSample{N: 500, NumeratorMean: 10, NumeratorVariance: 4, DenominatorMean: 2, DenominatorVariance: 1, Covariance: 1}
	none := stats.RatioSample{N: 500, NumeratorMean: 10, NumeratorVariance: 4}
	r := BuildReport(def, Data{Assignments: map[string]int64{"control": 500, "b": 500},
		Ratios: map[string]map[string]stats.RatioSample{"m": {"control": ok, "b": ok}, "rpo": {"control": none, "b": ok}}}, time.Now())
	if c := r.Metrics[0].Comparisons[0]; c.PValue == nil || c.Sequential == nil || c.Sequential.PValue == nil {
		t.Errorf("m = %+v, want a test", c)
	}
	c := r.Metrics[1].Comparisons[0]
	if c.PValue != nil || c.Sequential == nil || c.Sequential.PValue != nil || c.Bayesian == nil || c.Bayesian.ChanceToBeatControl != nil ||
		c.NonInferiority == nil || c.NonInferiority.NotWorse || !strings.Contains(c.Note, "orders is 0") {
		t.Errorf("rpo = %+v, want no test and the reason", c)
	}
	if r.Verdict.Code != experiment.DecisionNotSignificant && r.Verdict.Code != experiment.DecisionNonInferiority {
		t.Errorf("verdict %s", r.Verdict.Code)
	}
}
