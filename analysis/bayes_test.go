package analysis

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// TestBayesianBinary checks the Bayesian block of a binary metric against
// STATS.md's example: 100/1000 against 130/1000, flat prior, chance to win
// 0.967 on the relative lift.
func TestBayesianBinary(t *testing.T) {
	def := twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricBinary})
	def.Bayesian = &experiment.Bayesian{Enabled: true}
	def.SetDefaults()
	r := BuildReport(def, Data{Assignments: map[string]int64{"control": 1000, "b": 1000},
		Binary: map[string]map[string]stats.Proportion{"m": {"control": {N: 1000, Successes: 100}, "b": {N: 1000, Successes: 130}}}}, time.Now())
	b := r.Metrics[0].Comparisons[0].Bayesian
	if b == nil || b.ChanceToBeatControl == nil || math.Abs(*b.ChanceToBeatControl-0.967) > 5e-4 || b.Effect != "relative" {
		t.Fatalf("bayesian = %+v, want chance to win 0.967", b)
	}
	if !strings.Contains(b.Message, "not a p-value") {
		t.Errorf("message %q does not tell a chance from a p-value", b.Message)
	}
}
