package analysis

import (
	"math"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Sequential tests (analysis_method sequential): the always-valid p-value
// and confidence sequence of each comparison, their correction over a
// metric's comparisons, and the winner decided on them.

// SequentialMethod is the always-valid test of sequential tests.
const SequentialMethod = "asymptotic_confidence_sequence"

// sequentialResult is the always-valid test of a comparison (sequential
// tests only).
func sequentialResult(t *experiment.Test, spec experiment.Metric, control, treatment arm) *experiment.SequentialResult {
	if !t.Sequential() {
		return nil
	}
	res := &experiment.SequentialResult{Method: SequentialMethod, TuningN: t.TuningN()}
	cfg := stats.SequentialConfig{Alpha: alphaOf(t), TuningN: float64(t.TuningN())}
	var (
		s   stats.Sequential
		err error
	)
	if spec.Type == experiment.MetricBinary {
		s, err = stats.SequentialProportions(control.prop, treatment.prop, cfg)
	} else {
		s, err = stats.SequentialMeans(control.sample, treatment.sample, cfg)
	}
	if err != nil {
		res.Note = noTestNote(err)
		return res
	}
	res.ConfidenceSequenceLower, res.ConfidenceSequenceUpper = ptr(s.Lower), ptr(s.Upper)
	res.PValue, res.Significant = ptr(s.PValue), s.Significant
	return res
}

// adjustSequential corrects the always-valid p-values of a metric's
// comparisons as adjust does the fixed-horizon ones.
func adjustSequential(t *experiment.Test, cs []experiment.Comparison) {
	if !t.Sequential() {
		return
	}
	ps := make([]float64, len(cs))
	for i, c := range cs {
		ps[i] = math.NaN()
		if c.Sequential != nil && c.Sequential.PValue != nil {
			ps[i] = *c.Sequential.PValue
		}
	}
	adj, err := stats.AdjustPValues(ps, t.Correction())
	if err != nil {
		return
	}
	for i := range cs {
		if !math.IsNaN(adj[i]) {
			cs[i].Sequential.PValueAdjusted = ptr(adj[i])
			// p <= alpha exactly when the confidence sequence excludes 0.
			cs[i].Sequential.SignificantAdjusted = adj[i] <= 1-t.ConfidenceLevel
		}
	}
}

// decisive returns what the winner is decided on: the adjusted always-valid
// result for a sequential test, the adjusted fixed-horizon one otherwise.
func decisive(t *experiment.Test, c *experiment.Comparison) (bool, *float64) {
	if t.Sequential() {
		if c.Sequential == nil || c.Sequential.PValueAdjusted == nil {
			return false, nil
		}
		return c.Sequential.SignificantAdjusted, c.Sequential.PValueAdjusted
	}
	return c.SignificantAdjusted, c.PValueAdjusted
}
