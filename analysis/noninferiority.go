package analysis

import (
	"fmt"
	"math"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Non-inferiority of guardrails with a non_inferiority_margin: the
// one-sided test (always-valid for sequential tests) of each treatment, and
// the treatments whose non-inferiority is not shown, which withhold the
// winner.

// Non-inferiority tests.
const (
	NonInferiorityWelch = "welch_t_test_one_sided"
	NonInferiorityZ     = "z_test_one_sided"
	// NonInferioritySequential is the always-valid one-sided test of
	// sequential tests (sequentialNonInferiority).
	NonInferioritySequential = "confidence_sequence_one_sided"
)

// nonInferiorityResult is the one-sided test of a guardrail's margin.
func nonInferiorityResult(t *experiment.Test, spec experiment.Metric, control, treatment arm, variantID string) *experiment.NonInferiorityResult {
	if spec.NonInferiorityMargin == nil {
		return nil
	}
	alpha := alphaOf(t)
	res := &experiment.NonInferiorityResult{
		Margin: *spec.NonInferiorityMargin, MarginType: spec.NonInferiorityMarginType, Test: NonInferiorityWelch, Alpha: alpha,
	}
	cfg := stats.NonInferiorityConfig{
		Margin: *spec.NonInferiorityMargin, Relative: spec.NonInferiorityMarginType != experiment.MarginAbsolute,
		Direction: direction(spec.Direction), Alpha: alpha,
	}
	var (
		r   stats.NonInferiority
		err error
	)
	switch {
	case t.Sequential():
		res.Test = NonInferioritySequential
		r, err = sequentialNonInferiority(t, spec, control, treatment, cfg)
	case spec.Type == experiment.MetricBinary:
		res.Test = NonInferiorityZ
		r, err = stats.NonInferiorityProportions(control.prop, treatment.prop, cfg)
	default:
		r, err = stats.NonInferiorityMeans(control.sample, treatment.sample, cfg)
	}
	if err != nil {
		res.Message = fmt.Sprintf("non-inferiority of variant %s on %s is not shown: %s", variantID, spec.Name, noTestNote(err))
		return res
	}
	res.AbsoluteMargin, res.Statistic, res.PValue, res.Bound = ptr(r.Margin), ptr(r.Statistic), ptr(r.PValue), ptr(r.Bound)
	res.NotWorse = r.NotWorse
	side, limit := "lower", -r.Margin
	if spec.Direction == experiment.DirectionDecrease {
		side, limit = "upper", r.Margin
	}
	kind := "one-sided"
	if t.Sequential() {
		kind = "always-valid one-sided"
	}
	margin := fmt.Sprintf("%.3g", r.Margin)
	if cfg.Relative {
		margin = fmt.Sprintf("%.3g%% of the control mean (%.3g)", 100**spec.NonInferiorityMargin, r.Margin)
	}
	if r.NotWorse {
		res.Message = fmt.Sprintf("variant %s is not worse than control on %s by more than the margin %s: %s p = %.3g, "+
			"%.3g %s bound of the difference %.3g is within %.3g", variantID, spec.Name, margin, kind, r.PValue, 1-alpha, side, r.Bound, limit)
	} else {
		res.Message = fmt.Sprintf("variant %s is not shown to be within the margin %s of control on %s: %s p = %.3g, "+
			"%.3g %s bound of the difference %.3g is beyond %.3g", variantID, margin, spec.Name, kind, r.PValue, 1-alpha, side, r.Bound, limit)
	}
	return res
}

// sequentialNonInferiority is the non-inferiority test of a sequential
// test, valid however often it is looked at. The difference shifted by the
// margin (diff + margin, or diff - margin for a lower-is-better metric) is
// tested with the confidence sequence at level 1 - 2·alpha, whose bound on
// the side of harm is a time-uniform one-sided 1 - alpha bound: treatment is
// not worse when it is within the margin. The one-sided p-value is half the
// two-sided always-valid one when the shifted estimate is on the good side
// (1 minus that otherwise), so that p <= alpha exactly when the bound is
// within the margin.
func sequentialNonInferiority(t *experiment.Test, spec experiment.Metric, control, treatment arm, cfg stats.NonInferiorityConfig) (stats.NonInferiority, error) {
	c, tr := control.sample, treatment.sample
	if spec.Type == experiment.MetricBinary {
		// The unpooled variance of a rate, as SequentialProportions.
		c = stats.Sample{N: control.prop.N, Mean: control.prop.Rate()}
		c.Variance = c.Mean * (1 - c.Mean)
		tr = stats.Sample{N: treatment.prop.N, Mean: treatment.prop.Rate()}
		tr.Variance = tr.Mean * (1 - tr.Mean)
	}
	m := cfg.Margin
	if cfg.Relative {
		if c.Mean == 0 {
			return stats.NonInferiority{}, stats.ErrZeroControlMean
		}
		m *= math.Abs(c.Mean)
	}
	sign := 1.0 // the shift that makes "not worse by the margin" positive
	if cfg.Direction == stats.LowerIsBetter {
		sign = -1
	}
	shifted := tr
	shifted.Mean += sign * m
	s, err := stats.SequentialMeans(c, shifted, stats.SequentialConfig{Alpha: 2 * cfg.Alpha, TuningN: float64(t.TuningN())})
	if err != nil {
		return stats.NonInferiority{}, err
	}
	r := stats.NonInferiority{Diff: s.Diff - sign*m, StdErr: s.StdErr, DoF: math.Inf(1), Margin: m, Statistic: s.Diff / s.StdErr}
	good := sign*s.Diff > 0
	r.PValue = s.PValue / 2
	if !good {
		r.PValue = 1 - s.PValue/2
	}
	if sign > 0 {
		r.Bound = s.Lower - m
		r.NotWorse = s.Lower > 0
	} else {
		r.Bound = s.Upper + m
		r.NotWorse = s.Upper < 0
	}
	return r, nil
}

// nonInferiorityNotShown lists, for guardrails with a margin, the
// treatments whose non-inferiority is not shown.
func nonInferiorityNotShown(ms []experiment.MetricReport) []experiment.GuardrailViolation {
	out := []experiment.GuardrailViolation{}
	for _, m := range ms {
		if m.Role != experiment.RoleGuardrail {
			continue
		}
		for _, c := range m.Comparisons {
			ni := c.NonInferiority
			if ni == nil || ni.NotWorse {
				continue
			}
			p := 1.0
			if ni.PValue != nil {
				p = *ni.PValue
			}
			out = append(out, experiment.GuardrailViolation{Metric: m.Metric, VariantID: c.VariantID, PValue: p, Message: ni.Message})
		}
	}
	return out
}
