package analysis

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// The analyses beyond the fixed-horizon tests (issue 5): the sequential
// test, Bayesian results, non-inferiority of guardrails, ratio metrics,
// CUPED and segments. The statistics are analysis/stats'; this file maps a
// test's options and data onto them and their results onto the report.

// Names a report states.
const (
	// TestRatio is the test of ratio metrics: a z-test of the difference of
	// the ratios with delta-method variances (numerator-denominator
	// covariance included).
	TestRatio = "delta_method_z_test"
	// SequentialMethod is the always-valid test of sequential tests.
	SequentialMethod = "asymptotic_confidence_sequence"
	// SRM check methods.
	SRMChiSquare  = "chi_square"
	SRMSequential = "sequential_bayes_factor"
	// CUPED covariate sources.
	CUPEDFromCovariates = "covariates"
	CUPEDFromLookback   = "lookback"
	// Non-inferiority tests.
	NonInferiorityWelch = "welch_t_test_one_sided"
	NonInferiorityZ     = "z_test_one_sided"
	// NonInferioritySequential is the always-valid one-sided test of
	// sequential tests (sequentialNonInferiority).
	NonInferioritySequential = "confidence_sequence_one_sided"
	// Segment names for users without the attribute and for the values
	// beyond the MaxSegmentValues largest.
	SegmentNone  = "(none)"
	SegmentOther = "(other)"
	// MaxSegmentValues is how many values of an attribute are analysed one
	// by one; the others are pooled into SegmentOther.
	MaxSegmentValues = 20
	// MaxSegmentComparisons bounds the segment comparisons of a report
	// (see segmentValueLimit).
	MaxSegmentComparisons = 400
)

// CUPEDData is one metric's covariate moments per variant.
type CUPEDData struct {
	Source   string // CUPEDFromCovariates or CUPEDFromLookback
	Lookback string // the test's lookback, for CUPEDFromLookback
	Arms     map[string]stats.CovariateSample
	// WithCovariate counts per variant the users who have a covariate
	// (the others count with covariate 0).
	WithCovariate map[string]int64
}

// SegmentData is the primary metric by the values of one attribute: per
// value and variant, continuous or binary statistics.
type SegmentData struct {
	Continuous map[string]map[string]stats.Sample
	Binary     map[string]map[string]stats.Proportion
}

// direction maps a metric's direction onto stats'.
func direction(d experiment.Direction) stats.Direction {
	if d == experiment.DirectionDecrease {
		return stats.LowerIsBetter
	}
	return stats.HigherIsBetter
}

// ratioArm returns a ratio metric's arm.
func ratioArm(r stats.RatioSample) arm {
	a := arm{sample: stats.Sample{N: r.N}}
	if r.N == 0 {
		return a
	}
	a.ratio = &r
	if r.DenominatorMean != 0 {
		a.sample.Mean = r.Ratio()
		if r.N > 1 {
			a.sample.Variance = r.RatioVariance() * float64(r.N)
		}
	}
	return a
}

func ratioVariantStats(t *experiment.Test, v experiment.Variant, a arm) experiment.VariantStats {
	vs := experiment.VariantStats{VariantID: v.ID, VariantName: v.Name, SampleSize: a.sample.N}
	r := a.ratio
	if r == nil {
		return vs
	}
	vs.Ratio = &experiment.RatioStats{
		NumeratorMean: r.NumeratorMean, DenominatorMean: r.DenominatorMean,
		NumeratorVariance: r.NumeratorVariance, DenominatorVariance: r.DenominatorVariance, Covariance: r.Covariance,
	}
	if r.DenominatorMean == 0 {
		return vs
	}
	vs.MeanValue = ptr(r.Ratio())
	if r.N > 1 {
		rv := r.RatioVariance()
		vs.Ratio.RatioVariance = ptr(rv)
		vs.StdDev = ptr(math.Sqrt(a.sample.Variance))
		h := stats.NormalCritical(1-t.ConfidenceLevel) * math.Sqrt(rv)
		vs.ConfidenceIntervalLower, vs.ConfidenceIntervalUpper = ptr(r.Ratio()-h), ptr(r.Ratio()+h)
	}
	return vs
}

// compareBeyond is one treatment against control with every analysis the
// test asks for: CUPED-adjusted arms when covariates exist, then the
// fixed-horizon test and, on the same arms, the sequential, Bayesian and
// non-inferiority results.
func compareBeyond(t *experiment.Test, spec experiment.Metric, data Data, control, treatment arm, variantID string) experiment.Comparison {
	var cu *experiment.CUPEDResult
	if cd, ok := data.CUPED[spec.Name]; ok && spec.Type == experiment.MetricContinuous && spec.WinsorizePercentile == nil {
		control, treatment, cu = cupedArms(t, cd, control, treatment, variantID)
	}
	var c experiment.Comparison
	if spec.Type == experiment.MetricRatio {
		c = compareRatio(t, spec, control, treatment, variantID)
	} else {
		c = compare(t, spec, control, treatment, variantID)
	}
	c.CUPED = cu
	if spec.Type == experiment.MetricRatio && c.PValue == nil {
		// No users, or a zero denominator: the arms hold no usable ratio.
		return withoutTest(t, spec, c)
	}
	c.Sequential = sequentialResult(t, spec, control, treatment)
	c.Bayesian = bayesianResult(t, spec, control, treatment)
	c.NonInferiority = nonInferiorityResult(t, spec, control, treatment, variantID)
	return c
}

// withoutTest fills the blocks the test asks for with the reason why no
// test was possible (c.Note).
func withoutTest(t *experiment.Test, spec experiment.Metric, c experiment.Comparison) experiment.Comparison {
	if t.Sequential() {
		c.Sequential = &experiment.SequentialResult{Method: SequentialMethod, TuningN: t.TuningN(), Note: c.Note}
	}
	if b := t.Bayesian; b != nil && b.Enabled {
		c.Bayesian = &experiment.BayesianResult{Effect: "relative", Prior: b.Prior, RiskThreshold: b.RiskThreshold,
			Decision: string(stats.DecisionKeepRunning), Message: "no posterior yet: " + c.Note}
	}
	if m := spec.NonInferiorityMargin; m != nil {
		c.NonInferiority = &experiment.NonInferiorityResult{Margin: *m, MarginType: spec.NonInferiorityMarginType, Test: NonInferiorityWelch,
			Alpha: alphaOf(t), Message: fmt.Sprintf("non-inferiority of variant %s on %s is not shown: %s", c.VariantID, spec.Name, c.Note)}
		if t.Sequential() {
			c.NonInferiority.Test = NonInferioritySequential
		}
	}
	return c
}

// compareRatio tests a ratio metric (CompareRatios).
func compareRatio(t *experiment.Test, spec experiment.Metric, control, treatment arm, variantID string) experiment.Comparison {
	c := experiment.Comparison{VariantID: variantID, ControlVariantID: t.ControlVariantID, RelativeCIMethod: RelativeCIMethod}
	for _, n := range []int64{control.sample.N, treatment.sample.N} {
		c.UsersStillNeeded += max(0, t.MinSampleSize-n)
	}
	if control.ratio == nil || treatment.ratio == nil {
		c.Note = "each variant needs at least 2 users for a test"
		return c
	}
	cr, tr := *control.ratio, *treatment.ratio
	if cr.DenominatorMean != 0 && tr.DenominatorMean != 0 {
		mc, mt := cr.Ratio(), tr.Ratio()
		c.AbsoluteDifference = ptr(mt - mc)
		if mc != 0 {
			c.RelativeDifference = ptr((mt - mc) / math.Abs(mc))
		}
		c.Better = ptr(mt > mc)
		if spec.Direction == experiment.DirectionDecrease {
			c.Better = ptr(mt < mc)
		}
	}
	r, err := stats.CompareRatios(cr, tr, t.ConfidenceLevel)
	switch {
	case errors.Is(err, stats.ErrInsufficientData):
		c.Note = "each variant needs at least 2 users for a test"
		return c
	case errors.Is(err, stats.ErrZeroDenominator):
		c.Note = fmt.Sprintf("a variant's mean %s is 0: the ratio is undefined", spec.Denominator)
		return c
	case errors.Is(err, stats.ErrZeroVariance):
		c.Note = "both variants have zero variance: no test is possible"
		return c
	case err != nil:
		c.Note = err.Error()
		return c
	}
	c.ConfidenceIntervalLower, c.ConfidenceIntervalUpper = ptr(r.CILower), ptr(r.CIUpper)
	c.ZStatistic, c.PValue = ptr(r.Z), ptr(r.PValue)
	c.Significant = r.PValue < 1-t.ConfidenceLevel
	c.MinimumDetectableEffect = ptr(stats.CurrentMDE(r.StdErr, 1-t.ConfidenceLevel, mdePower))
	if r.Lift.Bounded {
		c.RelativeCILower, c.RelativeCIUpper = ptr(r.Lift.Lower), ptr(r.Lift.Upper)
	}
	return c
}

// cupedArms returns the CUPED-adjusted arms of a comparison and the
// report of the adjustment; the arms are unchanged when it is impossible.
func cupedArms(t *experiment.Test, cd CUPEDData, control, treatment arm, variantID string) (arm, arm, *experiment.CUPEDResult) {
	res := &experiment.CUPEDResult{Source: cd.Source, UsersWithCovariate: cd.WithCovariate[t.ControlVariantID] + cd.WithCovariate[variantID]}
	if cd.Source == CUPEDFromLookback {
		res.Lookback = cd.Lookback
	}
	cc, okc := cd.Arms[t.ControlVariantID]
	ct, okt := cd.Arms[variantID]
	if !okc || !okt {
		res.Note = "no adjustment: a variant has no users with results"
		return control, treatment, res
	}
	r, err := stats.CUPEDTest(cc, ct, t.ConfidenceLevel)
	if err != nil {
		res.Note = "no adjustment: " + err.Error()
		return control, treatment, res
	}
	res.Theta, res.VarianceReduction = r.Theta, r.VarianceReduction
	res.UnadjustedDifference = ptr(r.Unadjusted.Diff)
	res.UnadjustedCILower, res.UnadjustedCIUpper = ptr(r.Unadjusted.CILower), ptr(r.Unadjusted.CIUpper)
	res.UnadjustedPValue = ptr(r.Unadjusted.PValue)
	res.AdjustedControlMean, res.AdjustedTreatmentMean = ptr(r.Control.Mean), ptr(r.Treatment.Mean)
	return arm{sample: r.Control}, arm{sample: r.Treatment}, res
}

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

func noTestNote(err error) string {
	switch {
	case errors.Is(err, stats.ErrInsufficientData):
		return "each variant needs at least 2 users for a test"
	case errors.Is(err, stats.ErrZeroVariance):
		return "zero variance: no test is possible"
	case errors.Is(err, stats.ErrZeroControlMean):
		return "the control mean is 0: the relative lift is undefined"
	}
	return err.Error()
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

// bayesianResult is the posterior of a comparison's relative lift (tests
// with bayesian.enabled only).
func bayesianResult(t *experiment.Test, spec experiment.Metric, control, treatment arm) *experiment.BayesianResult {
	b := t.Bayesian
	if b == nil || !b.Enabled {
		return nil
	}
	threshold := b.RiskThreshold
	if threshold == 0 {
		threshold = experiment.DefaultRiskThreshold
	}
	res := &experiment.BayesianResult{Effect: "relative", Prior: b.Prior, RiskThreshold: threshold, Decision: string(stats.DecisionKeepRunning)}
	cfg := stats.BayesConfig{Relative: true, Direction: direction(spec.Direction), Level: t.ConfidenceLevel, RiskThreshold: threshold}
	if b.Prior.Normal {
		cfg.Prior = &stats.NormalPrior{Mean: b.Prior.Mean, Variance: b.Prior.SD * b.Prior.SD}
	}
	var (
		p   stats.Bayes
		err error
	)
	if spec.Type == experiment.MetricBinary {
		p, err = stats.BayesProportions(control.prop, treatment.prop, cfg)
	} else {
		p, err = stats.BayesMeans(control.sample, treatment.sample, cfg)
	}
	if err != nil {
		res.Message = "no posterior yet: " + noTestNote(err)
		return res
	}
	res.PosteriorMean, res.PosteriorStdDev = ptr(p.Mean), ptr(p.StdDev)
	res.CredibleIntervalLower, res.CredibleIntervalUpper = ptr(p.CILower), ptr(p.CIUpper)
	res.ChanceToBeatControl = ptr(p.ChanceToWin)
	res.RiskTreatment, res.RiskControl = ptr(p.RiskTreatment), ptr(p.RiskControl)
	res.Decision = string(p.Decision)
	what := map[stats.Decision]string{
		stats.DecisionShipTreatment: "ship the treatment",
		stats.DecisionKeepControl:   "keep control",
		stats.DecisionKeepRunning:   "keep the test running",
	}[p.Decision]
	res.Message = fmt.Sprintf("%s chance that the treatment is better than control on %s (a probability, not a p-value); "+
		"shipping it risks an expected loss of %s of the control mean, keeping control %s; with a risk threshold of %.3g%%: %s",
		percent(p.ChanceToWin), spec.Name, percent(p.RiskTreatment), percent(p.RiskControl), 100*threshold, what)
	return res
}

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

// segmentReports analyses the primary metric by each declared attribute.
// Each segment's comparisons are those of the whole test; their p-values
// are adjusted over every segment and treatment of the attribute, and a
// heterogeneity scan per treatment flags segments whose effect differs
// from the rest's.
func segmentReports(t *experiment.Test, spec experiment.Metric, data Data) []experiment.SegmentReport {
	if len(t.Segments) == 0 {
		return nil
	}
	out := make([]experiment.SegmentReport, 0, len(t.Segments))
	binary := spec.Type == experiment.MetricBinary
	for _, attr := range t.Segments {
		sr := experiment.SegmentReport{Attribute: attr, Metric: spec.Name, Segments: []experiment.SegmentResult{}, Heterogeneity: []experiment.HeterogeneityScan{}}
		if spec.Type == experiment.MetricRatio {
			sr.Note = "segments are analysed for continuous and binary primary metrics, not ratio metrics"
			out = append(out, sr)
			continue
		}
		sd := data.Segments[attr]
		values := segmentValues(sd, binary)
		// Effects per treatment for the scan.
		effects := map[string][]stats.SegmentEffect{}
		for _, value := range values {
			arms := make(map[string]arm, len(t.Variants))
			res := experiment.SegmentResult{Value: value}
			for _, v := range t.Variants {
				var a arm
				if binary {
					a.prop = sd.Binary[value][v.ID]
					a.sample = stats.Sample{N: a.prop.N, Mean: a.prop.Rate()}
					if a.prop.N > 1 {
						p := a.sample.Mean
						a.sample.Variance = p * (1 - p) * float64(a.prop.N) / float64(a.prop.N-1)
					}
				} else {
					a.sample = sd.Continuous[value][v.ID]
				}
				arms[v.ID] = a
				res.Variants = append(res.Variants, variantStats(t, v, a, binary))
			}
			control := arms[t.ControlVariantID]
			for _, v := range t.Variants {
				if v.ID == t.ControlVariantID {
					continue
				}
				c := compare(t, spec, control, arms[v.ID], v.ID)
				c.Sequential = sequentialResult(t, spec, control, arms[v.ID])
				res.Comparisons = append(res.Comparisons, c)
				if se := effectStdErr(control, arms[v.ID], binary); c.AbsoluteDifference != nil && se > 0 && c.PValue != nil {
					effects[v.ID] = append(effects[v.ID], stats.SegmentEffect{Name: value, Effect: *c.AbsoluteDifference, StdErr: se})
				}
			}
			sr.Segments = append(sr.Segments, res)
		}
		adjustSegments(t, sr.Segments)
		for _, v := range t.Variants {
			if v.ID != t.ControlVariantID {
				sr.Heterogeneity = append(sr.Heterogeneity, heterogeneity(t, v.ID, effects[v.ID]))
			}
		}
		out = append(out, sr)
	}
	return out
}

// segmentValues orders an attribute's values by users, largest first.
func segmentValues(sd SegmentData, binary bool) []string {
	users := map[string]int64{}
	if binary {
		for value, arms := range sd.Binary {
			for _, p := range arms {
				users[value] += p.N
			}
		}
	} else {
		for value, arms := range sd.Continuous {
			for _, s := range arms {
				users[value] += s.N
			}
		}
	}
	values := make([]string, 0, len(users))
	for v := range users {
		values = append(values, v)
	}
	sort.Slice(values, func(i, j int) bool {
		if users[values[i]] != users[values[j]] {
			return users[values[i]] > users[values[j]]
		}
		return values[i] < values[j]
	})
	return values
}

// effectStdErr is the standard error of the difference of two arms, as
// the fixed-horizon tests compute it.
func effectStdErr(control, treatment arm, binary bool) float64 {
	if binary {
		if control.prop.N == 0 || treatment.prop.N == 0 {
			return 0
		}
		pc, pt := control.prop.Rate(), treatment.prop.Rate()
		return math.Sqrt(pc*(1-pc)/float64(control.prop.N) + pt*(1-pt)/float64(treatment.prop.N))
	}
	if control.sample.N < 2 || treatment.sample.N < 2 {
		return 0
	}
	return math.Sqrt(control.sample.Variance/float64(control.sample.N) + treatment.sample.Variance/float64(treatment.sample.N))
}

// adjustSegments corrects the p-values of every segment's comparisons as
// one family (segments x treatments), fixed-horizon and sequential alike.
func adjustSegments(t *experiment.Test, segs []experiment.SegmentResult) {
	var cs []*experiment.Comparison
	for i := range segs {
		for j := range segs[i].Comparisons {
			cs = append(cs, &segs[i].Comparisons[j])
		}
	}
	flat := make([]experiment.Comparison, len(cs))
	for i, c := range cs {
		flat[i] = *c
	}
	adjust(t, flat)
	adjustSequential(t, flat)
	for i, c := range cs {
		*c = flat[i]
	}
}

// heterogeneity runs the scan of one treatment over the segments with a
// test.
func heterogeneity(t *experiment.Test, variantID string, effects []stats.SegmentEffect) experiment.HeterogeneityScan {
	h := experiment.HeterogeneityScan{VariantID: variantID, Flagged: []string{}, Segments: []experiment.SegmentHeterogeneity{}}
	s, err := stats.ScanSegments(effects, 1-t.ConfidenceLevel, t.Correction())
	if err != nil {
		h.Note = "the scan needs at least 2 segments with a test: " + noTestNote(err)
		return h
	}
	h.Pooled, h.Q, h.DoF, h.QPValue, h.I2 = ptr(s.Pooled), ptr(s.Q), ptr(s.DoF), ptr(s.QPValue), ptr(s.I2)
	for _, d := range s.Segments {
		h.Segments = append(h.Segments, experiment.SegmentHeterogeneity{
			Value: d.Name, Effect: d.Effect, StdErr: d.StdErr, Rest: d.Rest, Difference: d.Diff, Z: d.Z,
			PValue: d.PValue, PValueAdjusted: d.AdjustedPValue, Flagged: d.Flagged,
		})
		if d.Flagged {
			h.Flagged = append(h.Flagged, d.Name)
		}
	}
	return h
}

// alphaOf returns 1 - confidence level without the rounding noise of the
// subtraction (0.05, not 0.050000000000000044).
func alphaOf(t *experiment.Test) float64 {
	a, _ := strconv.ParseFloat(strconv.FormatFloat(1-t.ConfidenceLevel, 'g', 12, 64), 64)
	return a
}

// percent formats a probability or a share for a message. A posterior is
// never certain, so values rounding to 0% or 100% are said as bounds.
func percent(p float64) string {
	switch {
	case p < 0.001:
		return "less than 0.1%"
	case p > 0.999:
		return "more than 99.9%"
	}
	return strconv.FormatFloat(100*p, 'f', 1, 64) + "%"
}
